"""``train.lean``: ``lean_loss`` gives the terms and gradients of TorchRL's MAPPOLoss to 1e-6, ``LeanSampler``
the actor's actions and log-probs; what each refuses; training with them is training without them."""
import copy

import pytest
import torch
from tensordict.nn import InteractionType, TensorDictSequential, set_interaction_type

from conftest import small_cfg
from torchrl_mappo import make_actor, make_critic, make_env, make_loss
from torchrl_mappo.config import config_from_dict
from torchrl_mappo.lean_loss import lean_terms, why_not_lean
from torchrl_mappo.loss import compute_advantages
from torchrl_mappo.modules.sampler import LeanSampler, lean_sampler, plain_actor
from torchrl_mappo.trainer import Trainer

GROUP = "agents"
TERMS = ("loss_objective", "loss_critic", "loss_entropy")

CASES = {
    "continuous": ({}, {}, {}),
    "discrete": ({"continuous_actions": False}, {}, {}),
    "per_agent": ({}, {"share_params": False}, {}),
    "per_agent_discrete": ({"continuous_actions": False}, {"share_params": False, "centralized": False}, {}),
    "entropy_bonus": ({}, {}, {"entropy_coeff": 0.05}),
    "entropy_bonus_discrete": ({"continuous_actions": False}, {}, {"entropy_coeff": 0.05}),
    "popart": ({}, {}, {"value_norm": "popart"}),
    "running_norm_l1": ({}, {}, {"value_norm": "running", "loss_critic_type": "smooth_l1"}),
    "state_dependent_std": ({}, {"state_dependent_std": True, "actor_agent_id": True}, {}),
    "joint_action_critic": ({}, {"critic_joint_actions": True}, {}),
    "attention": ({}, {"critic": "attention", "communication": "attention"}, {}),
    "no_adv_norm": ({}, {}, {"normalize_advantage": False, "critic_coeff": 0.5}),
}


def _setup(env_kw, model_kw, loss_kw):
    cfg = small_cfg(env=env_kw, model={"activation": "tanh", **model_kw}, loss=loss_kw)
    env = make_env(cfg.env, seed=0)
    actor, critic = make_actor(env, GROUP, cfg.model), make_critic(env, GROUP, cfg.model)
    loss = make_loss(actor, critic, env, GROUP, cfg.loss)
    with torch.no_grad():
        batch = env.rollout(25, actor, break_when_any_done=False)
        compute_advantages(batch, {GROUP: loss}, {GROUP: actor})
        for p in actor.parameters():  # the policy moved since collection: ratios away from 1, some clipped
            p.add_(torch.randn_like(p) * 0.3)
    return loss, batch.reshape(-1)


def _terms_and_grads(loss, fn, data):
    torch.manual_seed(2)  # a TanhNormal's entropy is estimated from samples
    out = fn(data)
    total = sum(out[t] for t in TERMS if t in out.keys())
    params = list(loss.parameters())
    grads = torch.autograd.grad(total, params, allow_unused=True)
    return {k: out[k].detach() for k in out.keys()}, grads


@pytest.mark.parametrize("case", list(CASES))
def test_lean_terms_and_gradients_equal_mappo_loss(case):
    """The issue's bar for a faster path: TorchRL's MAPPOLoss terms and gradients to 1e-6."""
    loss, flat = _setup(*CASES[case])
    assert why_not_lean(loss) is None
    lean = lean_terms(loss)
    state = copy.deepcopy(loss.state_dict())  # a value norm's running statistics move on each call
    for bonus in (False, True):
        loss.entropy_bonus = bonus
        loss.load_state_dict(state)
        ref, g_ref = _terms_and_grads(loss, loss, flat.clone())
        loss.load_state_dict(state)
        new, g_new = _terms_and_grads(loss, lean, {k: flat.get(k) for k in lean.in_keys})
        wanted = {"loss_objective", "loss_critic", "clip_fraction", "kl_approx"} | (
            {"entropy", "loss_entropy"} if bonus else set())
        assert wanted <= set(new) and wanted <= set(ref.keys())
        for term in wanted:
            torch.testing.assert_close(new[term], ref[term], atol=1e-6, rtol=1e-6, msg=f"{case}: {term}")
        assert sum(g is not None for g in g_new) == sum(g is not None for g in g_ref) > 0
        for a, b in zip(g_new, g_ref):
            if a is not None or b is not None:
                torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
        # the check has teeth: the data was off-policy enough to clip, and the terms are not trivial
        assert float(ref["clip_fraction"]) > 0 and float(ref["loss_objective"].abs()) > 0


def test_value_norm_statistics_advance_alike_through_either_path():
    """A value norm's statistics advance the same way through either path."""
    loss, flat = _setup({}, {}, {"value_norm": "running"})
    lean = lean_terms(loss)
    state = copy.deepcopy(loss.state_dict())
    before = copy.deepcopy(loss.value_norm.state_dict())
    loss(flat.clone())
    after_loss = copy.deepcopy(loss.value_norm.state_dict())
    assert any(not torch.equal(before[k], after_loss[k]) for k in before)  # the call moved them
    loss.load_state_dict(state)
    lean({k: flat.get(k) for k in lean.in_keys})
    for k, v in loss.value_norm.state_dict().items():
        torch.testing.assert_close(v, after_loss[k], atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("model_kw, loss_kw, reason", [
    ({}, {"clip_value": 0.2}, "value clipping"),
    ({"recurrent": "gru"}, {}, "a recurrent network"),
])
def test_losses_it_cannot_reproduce_are_refused(model_kw, loss_kw, reason):
    cfg = small_cfg(model=model_kw, loss=loss_kw)
    env = make_env(cfg.env, seed=0)
    loss = make_loss(make_actor(env, GROUP, cfg.model), make_critic(env, GROUP, cfg.model), env, GROUP, cfg.loss)
    assert why_not_lean(loss) == reason and lean_terms(loss) is None


def test_masked_and_reduced_losses_are_refused():
    cfg = small_cfg()
    env = make_env(cfg.env, seed=0)
    loss = make_loss(make_actor(env, GROUP, cfg.model), make_critic(env, GROUP, cfg.model), env, GROUP, cfg.loss)
    loss.loss_mask_key = (GROUP, "mask")
    assert why_not_lean(loss) == "a loss mask (masked agents or turns)"
    loss.loss_mask_key = None
    loss.reduction = "sum"
    assert why_not_lean(loss) == "reduction 'sum'"


def _train(lean: bool, model: dict):
    cfg = small_cfg(train={"lean": lean, "total_frames": 240}, loss={"entropy_coeff": 0.01}, model=model)
    torch.manual_seed(0)
    trainer = Trainer.from_config(cfg)
    assert bool(trainer._lean) == (lean and "recurrent" not in model)
    assert any(isinstance(m, LeanSampler) for m in trainer.collector.policy.module) == lean
    start = [p.detach().clone() for p in trainer.losses[GROUP].parameters()]
    history = trainer.train()
    end = [p.detach().clone() for p in trainer.losses[GROUP].parameters()]
    assert max(float((a - b).abs().max()) for a, b in zip(start, end)) > 1e-3  # it trained
    return end, history


@pytest.mark.parametrize("model", [{}, {"recurrent": "gru"}, {"communication": "attention", "critic": "attention"}],
                         ids=["mlp", "recurrent", "attention"])
def test_training_with_the_lean_paths_is_training_without_them(model):
    """Three seeded iterations give the same weights and logged terms either way (the recurrent
    actor samples through LeanSampler; its loss, on chunks, is MAPPOLoss itself)."""
    (p_lean, h_lean), (p_ref, h_ref) = _train(True, model), _train(False, model)
    assert len(p_lean) == len(p_ref) > 0
    for a, b in zip(p_lean, p_ref):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
    for key in ("agents/loss_objective", "agents/loss_critic", "agents/loss_entropy", "agents/kl_approx"):
        assert len(h_lean) == len(h_ref) == 3
        for row_lean, row_ref in zip(h_lean, h_ref):
            assert row_lean[key] == pytest.approx(row_ref[key], rel=1e-5, abs=1e-6)


SAMPLER_CASES = {
    "continuous": ({}, {}),
    "discrete": ({"continuous_actions": False}, {}),
    "per_agent": ({}, {"share_params": False}),
    "state_dependent_std": ({}, {"state_dependent_std": True}),
}


@pytest.mark.parametrize("case", list(SAMPLER_CASES))
def test_lean_sampler_samples_what_the_actor_samples(case):
    env_kw, model_kw = SAMPLER_CASES[case]
    cfg = small_cfg(env=env_kw, model=model_kw)
    env = make_env(cfg.env, seed=0)
    actor = make_actor(env, GROUP, cfg.model)
    sampler = lean_sampler(actor)
    assert isinstance(sampler, LeanSampler)
    td = env.reset()
    with torch.no_grad():
        for mode in (InteractionType.RANDOM, InteractionType.DETERMINISTIC):
            with set_interaction_type(mode):
                torch.manual_seed(3)
                ref = actor(td.clone())
                torch.manual_seed(3)
                new = sampler(td.clone())
                after = torch.rand(1)  # the same RNG draws: the next number agrees too
                torch.manual_seed(3)
                actor(td.clone())
                assert torch.equal(after, torch.rand(1))
            assert set(new.keys(True, True)) == set(ref.keys(True, True))
            for key in ref.keys(True, True):
                torch.testing.assert_close(new.get(key), ref.get(key), atol=1e-6, rtol=1e-6, msg=f"{mode}: {key}")
    # and it samples: two draws differ (the comparison above is not of constants)
    with set_interaction_type(InteractionType.RANDOM), torch.no_grad():
        a, b = sampler(td.clone()), sampler(td.clone())
    assert not torch.equal(a.get((GROUP, "action")), b.get((GROUP, "action")))


def test_lean_sampler_reads_an_action_mask_from_the_data():
    """PettingZoo's masks reach the MaskedCategorical from the env's entries: only legal moves, as the actor."""
    cfg = config_from_dict({"env": {"family": "pettingzoo", "scenario": "pettingzoo.classic.tictactoe_v3",
                                    "num_envs": 2}, "model": {"hidden_sizes": [16]}, "run": {"progress_bar": False}})
    env = make_env(cfg.env, seed=0)
    actor = make_actor(env, "player_1", cfg.model)
    sampler = lean_sampler(actor)
    assert sampler is not None
    td = env.reset()
    with torch.no_grad(), set_interaction_type(InteractionType.RANDOM):
        torch.manual_seed(5)
        ref = actor(td.clone())
        torch.manual_seed(5)
        new = sampler(td.clone())
    key = ("player_1", "action")
    assert torch.equal(new.get(key), ref.get(key))
    torch.testing.assert_close(new.get(("player_1", "action_log_prob")), ref.get(("player_1", "action_log_prob")))


def test_actors_the_sampler_cannot_reproduce_are_left_alone():
    cfg = small_cfg()
    actor = make_actor(make_env(cfg.env, seed=0), GROUP, cfg.model)
    actor.module[0].register_forward_hook(lambda *a: None)
    assert plain_actor(actor) == "forward hooks on the actor" and lean_sampler(actor) is None


@pytest.mark.parametrize("lean", [True, False])
def test_the_sync_collector_samples_through_lean_samplers_only_with_train_lean(lean):
    cfg = small_cfg(train={"lean": lean})
    trainer = Trainer.from_config(cfg)
    policy = trainer.collector.policy
    assert isinstance(policy, TensorDictSequential)
    assert any(isinstance(m, LeanSampler) for m in policy.module) == lean
