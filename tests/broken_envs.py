"""Small batched TorchRL envs for the env checker's tests: one valid, each other broken in one way.

Used through ``env.family: torchrl`` with ``env.make: <this file>:<function>``.
"""
from __future__ import annotations

import torch
from tensordict import TensorDict
from torchrl.data import Categorical, Composite, Unbounded
from torchrl.envs import EnvBase

N = 2  # agents in the group "agents"


class Tiny(EnvBase):
    """Group ``agents`` (2 agents, 3 actions, observation [3]); reward 1 for action 0; 5-step episodes."""

    def __init__(self, num_envs=4, *, reward_shape=(N, 1), obs_key="observation", batched_specs=True,
                 nan_after=None, team_reward=False, root_key=None):
        super().__init__(batch_size=torch.Size([num_envs]))
        self.obs_key, self.nan_after, self.team_reward, self.root_key = obs_key, nan_after, team_reward, root_key
        b = (num_envs,) if batched_specs else ()
        self.observation_spec = Composite(
            agents=Composite({obs_key: Unbounded((*b, N, 3))}, shape=(*b, N)), shape=b)
        if root_key is not None:  # one more observation at the root, a plain tensor
            self.observation_spec[root_key] = Unbounded((*b, 1))
        self.action_spec = Composite(agents=Composite(action=Categorical(3, (*b, N)), shape=(*b, N)), shape=b)
        if team_reward:
            self.reward_spec = Composite(reward=Unbounded((*b, 1)), shape=b)
        else:
            self.reward_spec = Composite(agents=Composite(reward=Unbounded((*b, *reward_shape)), shape=(*b, N)),
                                         shape=b)
        self.done_spec = Composite(done=Categorical(2, (*b, 1), dtype=torch.bool),
                                   terminated=Categorical(2, (*b, 1), dtype=torch.bool), shape=b)
        self.reward_shape = reward_shape
        self.t = torch.zeros(num_envs, dtype=torch.long)

    def _obs(self):
        obs = torch.randn(*self.batch_size, N, 3)
        if self.nan_after is not None and (self.t >= self.nan_after).any():
            obs[self.t >= self.nan_after] = float("nan")
        return obs

    def _reset(self, td):
        reset = td.get("_reset", None) if td is not None else None
        which = reset.reshape(-1) if reset is not None else torch.ones_like(self.t, dtype=torch.bool)
        self.t[which] = 0
        agents = TensorDict({self.obs_key: self._obs()}, batch_size=(*self.batch_size, N))
        out = TensorDict(agents=agents, batch_size=self.batch_size)
        if self.root_key is not None:
            out.set(self.root_key, torch.zeros(*self.batch_size, 1))
        return out

    def _step(self, td):
        self.t += 1
        good = (td.get(("agents", "action")) == 0).float()  # [B, N]
        agents = TensorDict({self.obs_key: self._obs()}, batch_size=(*self.batch_size, N))
        out = {"agents": agents}
        if self.team_reward:
            out["reward"] = good.mean(-1, keepdim=True)
        else:
            agents.set("reward", good.reshape(*self.batch_size, *self.reward_shape))
        done = (self.t >= 5).unsqueeze(-1)
        out.update(done=done, terminated=done.clone())
        if self.root_key is not None:
            out[self.root_key] = torch.zeros(*self.batch_size, 1)
        return TensorDict(out, batch_size=self.batch_size)

    def _set_seed(self, seed):
        torch.manual_seed(seed if seed is not None else 0)


def valid(num_envs=4):
    return Tiny(num_envs)


def team_reward(num_envs=4):
    """Valid: a team reward at the root only (torchrl_mappo copies it to the agents)."""
    return Tiny(num_envs, team_reward=True)


def wrong_reward_shape(num_envs=4):
    """Reward [B, n_agents] where MAPPO needs [B, n_agents, 1]."""
    return Tiny(num_envs, reward_shape=(N,))


def missing_group_key(num_envs=4):
    return Tiny(num_envs, obs_key="obs")


def unbatched_spec(num_envs=4):
    return Tiny(num_envs, batched_specs=False)


def nan_observations(num_envs=4):
    return Tiny(num_envs, nan_after=2)


def unbatched_single():
    """Valid, without num_envs: copies go in a SerialEnv."""
    return Tiny(1)


def collector_key(num_envs=4):
    """Passes TorchRL's env check, but has a root entry named like TorchRL's collector's own
    ("collector"), where the collector writes its trajectory ids: it fails on the collector's first reset."""
    return Tiny(num_envs, root_key="collector")


def not_an_env(num_envs=4):
    return {"not": "an env"}
