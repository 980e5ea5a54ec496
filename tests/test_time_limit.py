"""VMAS's time limit is a truncation (bootstrapped by GAE), not a termination (issue 12)."""
import torch

from conftest import small_cfg
from torchrl_mappo.build import build
from torchrl_mappo.envs import make_env
from torchrl_mappo.config import EnvConfig


def test_a_timed_out_vmas_episode_is_truncated_not_terminated():
    env = make_env(EnvConfig(num_envs=3, max_steps=5, scenario_kwargs={"n_agents": 2}), seed=0)
    td = env.rollout(12, break_when_any_done=False)
    done = td["next", "done"].squeeze(-1)
    assert done[:, [4, 9]].all() and done.sum() == 6  # every 5 steps, only then
    assert not td["next", "terminated"].any()
    assert td["next", "truncated"].squeeze(-1)[:, [4, 9]].all()


def test_gae_bootstraps_the_value_at_a_time_limit():
    """At a truncated step the value target is r + gamma * V(next), not r alone."""
    cfg = small_cfg(env={"max_steps": 20}, loss={"lmbda": 0.0, "gamma": 0.9})
    p = build(cfg)
    batch = next(iter(p.collector))
    loss = p.losses["agents"]
    with torch.no_grad():
        loss.value_estimator(batch)
    truncated = batch["next", "truncated"].squeeze(-1)  # [envs, T]
    assert truncated.any()
    target = batch["agents", "value_target"][truncated]
    reward = batch["next", "agents", "reward"][truncated]
    with torch.no_grad():
        next_value = loss.critic_network(batch["next"].clone())["agents", "state_value"][truncated]
    torch.testing.assert_close(target, reward + 0.9 * next_value)
    p.collector.shutdown()
