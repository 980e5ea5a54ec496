"""``env.family: gymnasium_ma``: multi-agent gymnasium envs in EPyMARL's convention, as a TorchRL env.

EPyMARL's envs (``lbforaging`` 2, ``rware`` 2 ...) are plain gymnasium envs
whose observation and action spaces are ``Tuple``s with one entry per agent,
whose reward is a list (one per agent) and whose ``terminated``/``truncated``
are the team's. :class:`GymnasiumMAEnv` makes one a TorchRL ``EnvBase``
with one group ``"agents"``: ``("agents", "observation")`` ``[n, obs_dim]``,
``("agents", "action")`` (Categorical), ``("agents", "reward")`` ``[n, 1]``,
and the team's done at the root. ``num_envs`` copies step in TorchRL's
``SerialEnv``. The env has no global state: the centralized critic reads the
agents' observations concatenated (``critic_input: auto``), as in EPyMARL.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Categorical, Composite, Unbounded
from torchrl.envs import EnvBase

from torchrl_mappo.config import EnvConfig
from torchrl_mappo.envs.scenarios import gym_id
from torchrl_mappo.errors import ConfigError

__all__ = ["GymnasiumMAEnv", "make_gymnasium_ma_env"]

GROUP = "agents"


class GymnasiumMAEnv(EnvBase):
    """One EPyMARL-style gymnasium env (Tuple spaces, list rewards) as a TorchRL env, group ``"agents"``.

    Args:
        env: the gymnasium env (``gymnasium.make(id)``).
        device: where its tensors go.
    """

    def __init__(self, env: Any, device: str = "cpu"):
        super().__init__(device=device, batch_size=torch.Size([]))
        self._env = env
        obs_spaces, act_spaces = _tuple(env.observation_space, "observation"), _tuple(env.action_space, "action")
        n = len(obs_spaces)
        dims = {int(np.prod(s.shape)) for s in obs_spaces}
        n_actions = {getattr(s, "n", None) for s in act_spaces}
        if len(dims) != 1 or len(n_actions) != 1 or None in n_actions:
            raise ConfigError(
                f"env.scenario: gymnasium_ma needs every agent to have the same observation size and the same "
                f"Discrete action space (got observation sizes {sorted(dims)}, actions {env.action_space})"
            )
        self.n_agents, dim, k = n, dims.pop(), int(n_actions.pop())
        self.group_map = {GROUP: [f"agent_{i}" for i in range(n)]}
        self.observation_spec = Composite(
            {GROUP: Composite(observation=Unbounded((n, dim), device=device), shape=(n,))})
        self.action_spec = Composite(
            {GROUP: Composite(action=Categorical(k, (n,), device=device), shape=(n,))})
        self.reward_spec = Composite({GROUP: Composite(reward=Unbounded((n, 1), device=device), shape=(n,))})
        self.done_spec = Composite(
            done=Categorical(2, (1,), dtype=torch.bool, device=device),
            terminated=Categorical(2, (1,), dtype=torch.bool, device=device),
            truncated=Categorical(2, (1,), dtype=torch.bool, device=device),
        )
        self._next_seed: int | None = None

    def _obs(self, obs) -> TensorDict:
        stacked = torch.as_tensor(np.stack([np.asarray(o, dtype=np.float32).reshape(-1) for o in obs]),
                                  device=self.device)
        return TensorDict({"observation": stacked}, batch_size=[self.n_agents], device=self.device)

    def _reset(self, tensordict: TensorDictBase | None) -> TensorDictBase:
        obs, _ = self._env.reset(seed=self._next_seed)
        self._next_seed = None  # seeded once; later episodes follow the env's own RNG
        return TensorDict({GROUP: self._obs(obs)}, batch_size=[], device=self.device)

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        actions = tuple(int(a) for a in tensordict.get((GROUP, "action")).reshape(-1).tolist())
        obs, reward, terminated, truncated, _ = self._env.step(actions)
        terminated, truncated = bool(np.all(terminated)), bool(np.all(truncated))
        group = self._obs(obs)
        group.set("reward", torch.as_tensor(np.asarray(reward, dtype=np.float32), device=self.device).reshape(-1, 1))
        done = torch.tensor([terminated or truncated], device=self.device)
        return TensorDict(
            {GROUP: group, "done": done, "terminated": torch.tensor([terminated], device=self.device),
             "truncated": torch.tensor([truncated], device=self.device)},
            batch_size=[], device=self.device,
        )

    def _set_seed(self, seed: int | None) -> None:
        self._next_seed = None if seed is None else int(seed)

    def close(self, *, raise_if_closed: bool = True) -> None:
        self._env.close()
        super().close(raise_if_closed=raise_if_closed)


def _tuple(space: Any, what: str) -> list:
    spaces = getattr(space, "spaces", None)
    if not isinstance(spaces, (tuple, list)):
        raise ConfigError(
            f"env.scenario: gymnasium_ma expects EPyMARL's convention, a Tuple {what} space with one entry per "
            f"agent (got {space}); wrap other gymnasium envs yourself and use env.family: torchrl"
        )
    return list(spaces)


def make_gymnasium_ma_env(cfg: EnvConfig, seed: int | None, device: str, batch: Callable) -> EnvBase:
    """``cfg.num_envs`` copies of ``gymnasium.make(cfg.scenario, max_episode_steps=cfg.max_steps, **kwargs)``."""
    import gymnasium

    env_id = gym_id(cfg)
    if cfg.group_map not in (None, "all_in_one"):
        raise ConfigError(
            f"env.group_map={cfg.group_map!r}: gymnasium_ma envs have one group 'agents' (EPyMARL's convention); "
            "drop env.group_map"
        )

    def make_one() -> EnvBase:
        try:
            # EPyMARL envs return list rewards by design: gymnasium's single-agent checker would warn.
            raw = gymnasium.make(env_id, max_episode_steps=cfg.max_steps, disable_env_checker=True,
                                 **cfg.scenario_kwargs)
        except TypeError as err:
            raise ConfigError(f"env.scenario_kwargs: {env_id} rejected them: {err}") from None
        return GymnasiumMAEnv(raw, device=device)

    return batch(make_one, cfg.num_envs, seed)
