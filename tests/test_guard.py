"""guard.py: non-finite losses, gradients and weights never reach the model."""
import math

import pytest
import torch
from tensordict import TensorDict
from torch import nn

from torchrl_mappo.guard import NonFiniteGuard, NonFiniteLossError

TERMS = ("loss_objective", "loss_critic")


def test_first_bad_names_the_term_or_the_gradient():
    ok = TensorDict({"loss_objective": torch.tensor(1.0), "loss_critic": torch.tensor(2.0)})
    assert NonFiniteGuard.first_bad(ok, torch.tensor(3.0), [1.0], TERMS) is None
    bad = ok.clone().set("loss_critic", torch.tensor(float("nan")))
    assert NonFiniteGuard.first_bad(bad, torch.tensor(float("nan")), [1.0], TERMS) == "loss_critic"
    assert NonFiniteGuard.first_bad(ok, torch.tensor(3.0), [float("inf")], TERMS) == "gradient"


def test_a_rollback_restores_weights_and_optimizer_state():
    net = nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    net(torch.ones(1, 3)).sum().backward()
    opt.step()  # some Adam state to restore
    guard = NonFiniteGuard(3)
    guard.remember({"g": net}, {"g": [opt]})
    before = [p.detach().clone() for p in net.parameters()]
    steps = opt.state_dict()["state"][0]["step"].clone()
    net(torch.ones(1, 3)).sum().backward()
    opt.step()
    with torch.no_grad():
        net.weight.fill_(float("inf"))
    assert not NonFiniteGuard.weights_finite([opt])
    guard.rollback("g", net, [opt])
    assert NonFiniteGuard.weights_finite([opt])
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
    assert torch.equal(opt.state_dict()["state"][0]["step"], steps)


def test_skips_in_a_row_stop_and_a_good_step_resets_the_count():
    net = nn.Linear(2, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    guard = NonFiniteGuard(2)
    with pytest.warns(RuntimeWarning, match="non-finite loss_critic; update skipped \\(1 in a row, stop at 2\\)"):
        guard.skip("g", "loss_critic", [opt], iteration=4)
    guard.passed()
    with pytest.warns(RuntimeWarning):
        guard.skip("g", "gradient", [opt], iteration=5)
    with pytest.warns(RuntimeWarning), pytest.raises(NonFiniteLossError, match="2 consecutive updates"):
        guard.skip("g", "gradient", [opt], iteration=5)


def test_huge_but_finite_weights_count_as_finite():
    net = nn.Linear(2, 2)
    with torch.no_grad():
        net.weight.fill_(3e38)  # finite in float32, though its L2 norm would overflow
    assert NonFiniteGuard.weights_finite([torch.optim.SGD(net.parameters(), lr=0.1)])


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_one_non_finite_weight_anywhere_is_found(bad):
    nets = [nn.Linear(4, 3), nn.Linear(3, 2)]
    opts = [torch.optim.SGD(n.parameters(), lr=0.1) for n in nets]
    assert NonFiniteGuard.weights_finite(opts)
    with torch.no_grad():
        nets[1].bias[1] = bad
    assert not NonFiniteGuard.weights_finite(opts)
    with torch.no_grad():
        nets[1].bias[1] = 0.0
        nets[0].weight.fill_(3e38)  # and a huge finite tensor beside a non-finite one
        nets[0].bias[0] = bad
    assert not NonFiniteGuard.weights_finite(opts)


def test_two_rollbacks_in_one_update_both_restore_the_start():
    net = nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    net(torch.ones(1, 3)).sum().backward()
    opt.step()
    guard = NonFiniteGuard(3)
    guard.remember({"g": net}, {"g": [opt]})
    start = opt.state_dict()["state"][0]["exp_avg"].clone()
    for _ in range(2):  # a step changes the optimizer state in place, then is rolled back
        net(torch.ones(1, 3)).sum().backward()
        opt.step()
        guard.rollback("g", net, [opt])
        assert torch.equal(opt.state_dict()["state"][0]["exp_avg"], start)


def _grads(scale: float, dtypes=(torch.float32,), none_at=None) -> list[nn.Parameter]:
    gen = torch.Generator().manual_seed(0)
    shapes = [(256, 18), (256,), (256, 256), (2,), (3, 54)]
    params = [nn.Parameter(torch.zeros(s, dtype=dtypes[i % len(dtypes)])) for i, s in enumerate(shapes)]
    for i, p in enumerate(params):
        if i != none_at:
            p.grad = (torch.randn(p.shape, generator=gen) * scale).to(p.dtype)
    return params


@pytest.mark.parametrize("case", ["clipped", "clipped, small", "not clipped", "no max", "a parameter without gradient",
                                  "nan gradient", "two dtypes", "no gradients"])
def test_clip_grad_norm_is_torchs_bit_for_bit(case):
    from torchrl_mappo.guard import clip_grad_norm

    kwargs = {"scale": {"clipped": 10.0, "clipped, small": 1e-5}.get(case, 1e-3)}
    if case == "a parameter without gradient":
        kwargs["none_at"] = 2
    if case == "two dtypes":
        kwargs["dtypes"] = (torch.float32, torch.float64)
    max_norm = {"no max": float("inf"), "clipped, small": 1e-3}.get(case, 0.5)
    ours, torchs = _grads(**kwargs), _grads(**kwargs)
    if case == "nan gradient":
        for ps in (ours, torchs):
            ps[1].grad[3] = float("nan")
    if case == "no gradients":
        for ps in (ours, torchs):
            for p in ps:
                p.grad = None
    norm = clip_grad_norm(ours, max_norm)
    expected = float(nn.utils.clip_grad_norm_(torchs, max_norm))
    assert norm == expected or (math.isnan(norm) and math.isnan(expected))
    for a, b in zip(ours, torchs):
        assert (a.grad is None) == (b.grad is None)
        if a.grad is not None:
            assert torch.equal(a.grad.isnan(), b.grad.isnan())
            assert torch.equal(a.grad.nan_to_num(), b.grad.nan_to_num())
    if case.startswith("clipped"):  # it did clip: the clipped gradients' norm is the maximum
        total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in ours]))
        assert norm > 2 * max_norm and abs(float(total) - max_norm) < 1e-3 * max_norm
