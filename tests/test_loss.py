"""make_loss: keys wired for the group, GAE written per group, finite gradients."""
import math

import pytest
import torch
from torchrl.objectives.multiagent import MAPPOLoss

from conftest import small_cfg
from torchrl_mappo import keys, make_actor, make_critic, make_env, make_loss
from torchrl_mappo.config import config_from_dict

GROUP = "agents"


@pytest.mark.parametrize("continuous", [True, False], ids=["continuous", "discrete"])
@pytest.mark.parametrize("share", [True, False], ids=["shared", "per_agent"])
def test_loss_gives_finite_gradients_to_actor_and_critic(continuous, share):
    cfg = small_cfg(env={"continuous_actions": continuous}, model={"share_params": share})
    env = make_env(cfg.env, seed=0)
    actor, critic = make_actor(env, GROUP, cfg.model), make_critic(env, GROUP, cfg.model)
    loss = make_loss(actor, critic, env, GROUP, cfg.loss)
    with torch.no_grad():
        batch = env.rollout(25, actor, break_when_any_done=False)  # crosses an episode end (max_steps=20)
        loss.value_estimator(batch, params=loss.critic_network_params,
                             target_params=loss.target_critic_network_params)
    assert batch[keys.advantage(GROUP)].shape == (4, 25, 3, 1)
    assert batch[keys.value_target(GROUP)].shape == (4, 25, 3, 1)

    out = loss(batch)
    total = out["loss_objective"] + out["loss_critic"] + out["loss_entropy"]
    assert math.isfinite(total.item())
    total.backward()
    for name, module in (("actor", actor), ("critic", critic)):
        grads = [p.grad for p in module.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads), name
        assert sum(g.abs().sum() for g in grads) > 0, f"{name} received no gradient"


def test_loss_keys_follow_the_env():
    cfg = small_cfg()
    env = make_env(cfg.env, seed=0)
    loss = make_loss(make_actor(env, GROUP, cfg.model), make_critic(env, GROUP, cfg.model), env, GROUP, cfg.loss)
    tk = loss.tensor_keys
    assert tk.action == keys.action(GROUP)
    assert tk.sample_log_prob == keys.action_log_prob(GROUP)
    assert tk.reward == keys.reward(GROUP)
    assert tk.done == "done" and tk.terminated == "terminated"  # VMAS: only a root done
    assert type(loss) is MAPPOLoss  # agents never die here: no masked subclass
    assert loss.critic_network_params is None  # not functionalized: GAE calls the critic as it is
    assert loss.clip_epsilon.item() == pytest.approx(cfg.loss.clip_epsilon)
    assert loss.value_estimator.gamma.item() == pytest.approx(cfg.loss.gamma)
    assert loss.value_estimator.lmbda.item() == pytest.approx(cfg.loss.lmbda)


def test_loss_reads_the_groups_own_done_where_the_env_has_one():
    cfg = config_from_dict({"env": {"family": "pettingzoo", "scenario": "simple_spread_v3", "num_envs": 1,
                                    "max_steps": 5, "continuous_actions": False}, "model": {"hidden_sizes": [8]}})
    env, g = make_env(cfg.env, seed=0), "agent"  # mpe2 names its one group 'agent'
    loss = make_loss(make_actor(env, g, cfg.model), make_critic(env, g, cfg.model), env, g, cfg.loss)
    assert loss.tensor_keys.done == (g, "done") and loss.tensor_keys.terminated == (g, "terminated")


def test_gae_matches_hand_computation():
    """One agent-step chain by hand: advantage = sum (gamma*lmbda)^k delta_k, reset at done."""
    cfg = small_cfg(loss={"gamma": 0.9, "lmbda": 0.8})
    env = make_env(cfg.env, seed=0)
    actor, critic = make_actor(env, GROUP, cfg.model), make_critic(env, GROUP, cfg.model)
    loss = make_loss(actor, critic, env, GROUP, cfg.loss)
    with torch.no_grad():
        batch = env.rollout(25, actor, break_when_any_done=False)
        loss.value_estimator(batch, params=loss.critic_network_params,
                             target_params=loss.target_critic_network_params)
        v = critic(batch.clone())[keys.state_value(GROUP)][0, :, 1, 0]
        v_next = critic(batch["next"].clone())[keys.state_value(GROUP)][0, :, 1, 0]
    r = batch["next", GROUP, "reward"][0, :, 1, 0]
    done = batch["next", "done"][0, :, 0].float()
    term = batch["next", "terminated"][0, :, 0].float()
    adv, running = torch.zeros(25), 0.0
    for t in reversed(range(25)):
        delta = r[t] + 0.9 * v_next[t] * (1 - term[t]) - v[t]
        running = delta + 0.9 * 0.8 * (1 - done[t]) * running
        adv[t] = running
    torch.testing.assert_close(batch[keys.advantage(GROUP)][0, :, 1, 0], adv, rtol=1e-4, atol=1e-4)
