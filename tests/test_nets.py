"""``Tanh`` (2 * sigmoid(2x) - 1 on CPU) is nn.Tanh: same values, gradients, MAPPO loss and gradients."""
import pytest
import torch
from torch import nn

from conftest import small_cfg
from torchrl_mappo import make_actor, make_critic, make_env, make_loss
from torchrl_mappo.modules.nets import ACTIVATIONS, Tanh

GROUP = "agents"


def test_tanh_matches_torch_tanh_in_value_and_gradient():
    x = (torch.randn(500, 3, 64) * 4).requires_grad_()
    x.data[0, 0, :4] = torch.tensor([0.0, 30.0, -30.0, 1e-6])  # zero, saturation both ways, tiny
    y_ref = torch.tanh(x)
    g = torch.randn_like(y_ref)
    (gx_ref,) = torch.autograd.grad(y_ref, x, g)
    y = Tanh()(x)
    (gx,) = torch.autograd.grad(y, x, g)
    torch.testing.assert_close(y, y_ref, atol=1e-6, rtol=0)
    # y within 2e-7 makes tanh's gradient (1 - y^2) * g differ by at most 2 * 2e-7 * |g|
    torch.testing.assert_close(gx, gx_ref, atol=4e-7 * float(g.abs().max()), rtol=0)
    assert y.abs().max() <= 1.0


def test_tanh_of_a_bf16_input_is_bf16_tanh():
    """Under autocast the activation's input is bf16: the output and its gradient stay bf16, tanh to bf16's precision."""
    x = (torch.randn(200, 64) * 3).to(torch.bfloat16).requires_grad_()
    g = torch.randn(200, 64).to(torch.bfloat16)
    y = Tanh()(x)
    (gx,) = torch.autograd.grad(y, x, g)
    assert y.dtype == torch.bfloat16 and gx.dtype == torch.bfloat16
    y_ref = torch.tanh(x.detach().float())
    torch.testing.assert_close(y.float(), y_ref, atol=2 ** -6, rtol=0)
    torch.testing.assert_close(gx.float(), (1 - y_ref ** 2) * g.float(), atol=2 ** -4, rtol=2 ** -6)


def test_tanh_without_a_graph_is_the_same_function():
    """Collection runs it under no_grad (no autograd Function then); an input that needs no grad likewise."""
    x = torch.randn(120, 3, 32) * 3
    with torch.no_grad():
        y = Tanh()(x.requires_grad_())
    assert not y.requires_grad
    torch.testing.assert_close(y, torch.tanh(x.detach()), atol=1e-6, rtol=0)
    torch.testing.assert_close(Tanh()(x.detach()), y, atol=0, rtol=0)


def test_tanh_works_under_vmap():
    x = torch.randn(4, 7, 5)
    out = torch.func.vmap(Tanh())(x)
    assert (out - torch.tanh(x)).abs().max() < 1e-6


def test_model_activation_tanh_uses_the_fast_module():
    assert ACTIVATIONS["tanh"] is Tanh


@pytest.mark.parametrize("continuous", [True, False], ids=["continuous", "discrete"])
@pytest.mark.parametrize("share", [True, False], ids=["shared", "per_agent"])
def test_mappo_loss_and_gradients_equal_those_with_nn_tanh(monkeypatch, continuous, share):
    """The issue's bar for any faster path: TorchRL's MAPPOLoss gives the same loss and gradients to 1e-6."""
    cfg = small_cfg(env={"continuous_actions": continuous}, model={"share_params": share, "activation": "tanh"})
    env = make_env(cfg.env, seed=0)
    results = []
    for cls in (nn.Tanh, Tanh):
        monkeypatch.setitem(ACTIVATIONS, "tanh", cls)
        torch.manual_seed(0)
        actor, critic = make_actor(env, GROUP, cfg.model), make_critic(env, GROUP, cfg.model)
        assert any(isinstance(m, cls) for m in actor.modules()) and any(isinstance(m, cls) for m in critic.modules())
        loss = make_loss(actor, critic, env, GROUP, cfg.loss)
        if not results:
            with torch.no_grad():
                torch.manual_seed(1)
                batch = env.rollout(25, actor, break_when_any_done=False)
                loss.value_estimator(batch)
        torch.manual_seed(2)  # a TanhNormal's entropy is estimated from samples
        out = loss(batch.clone())
        total = out["loss_objective"] + out["loss_critic"] + out["loss_entropy"]
        total.backward()
        grads = [p.grad.clone() for p in [*actor.parameters(), *critic.parameters()]]
        results.append((total.detach(), grads))
    (l_ref, g_ref), (l_new, g_new) = results
    assert len(g_ref) == len(g_new) > 0
    assert abs(float(l_ref - l_new)) < 1e-6
    assert max(float((a - b).abs().max()) for a, b in zip(g_ref, g_new)) < 1e-6
