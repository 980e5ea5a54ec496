"""``make_env``: a TorchRL multi-agent env with per-group episode returns.

Every env comes out of here as a TorchRL ``EnvBase`` with TorchRL's
multi-agent layout (``env.group_map``; per-agent data under
``(group, ...)``) and a ``RewardSum`` per group writing
``(group, "episode_reward")``, which the trainer reads for returns.
"""
from __future__ import annotations

import re
import warnings

from torchrl.envs import EnvBase, RewardSum, TransformedEnv

from torchrl_mappo import keys
from torchrl_mappo.config import ConfigError, EnvConfig


def _make_vmas(cfg: EnvConfig, seed: int | None, device: str) -> EnvBase:
    from torchrl.envs.libs.vmas import VmasEnv

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            env = VmasEnv(
                scenario=cfg.scenario,
                num_envs=cfg.num_envs,
                continuous_actions=cfg.continuous_actions,
                max_steps=cfg.max_steps,
                device=device,
                seed=seed,
                **cfg.scenario_kwargs,
            )
        except TypeError as err:
            raise ConfigError(
                f"env.scenario_kwargs: VMAS scenario {cfg.scenario!r} rejected them: {err}"
            ) from None
    for w in caught:
        # VMAS only warns about kwargs its scenario ignores: a typo would
        # silently train on the defaults, so it is an error here.
        match = re.search(r"Scenario kwargs: (.*) passed but not used", str(w.message))
        if match:
            raise ConfigError(
                f"env.scenario_kwargs: {match.group(1)} not used by VMAS scenario "
                f"{cfg.scenario!r}; remove or rename them"
            )
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return env


_FAMILIES = {"vmas": _make_vmas}


def make_env(cfg_env: EnvConfig, *, seed: int | None = None, device: str = "cpu") -> EnvBase:
    """Build the env named by ``cfg_env`` through TorchRL's own wrapper.

    Args:
        cfg_env: family, scenario, number of vectorized envs, episode length,
            action type and scenario kwargs.
        seed: seeds the simulator (``None``: unseeded).
        device: where the simulator runs.

    Returns:
        A ``TransformedEnv`` over the wrapper. For each group of
        ``env.group_map`` it writes ``(group, "episode_reward")``: the sum of
        ``(group, "reward")`` since the last reset (reset at every reset,
        read at ``done``).
    """
    try:
        factory = _FAMILIES[cfg_env.family]
    except KeyError:
        raise ConfigError(
            f"env.family={cfg_env.family!r} is not supported; use one of {', '.join(_FAMILIES)}"
        ) from None
    base = factory(cfg_env, seed, device)
    groups = list(base.group_map)
    reward_keys = [keys.reward(g) for g in groups]
    missing = [k for k in reward_keys if k not in base.reward_keys]
    if missing:
        raise ConfigError(
            f"env {cfg_env.family}/{cfg_env.scenario}: no per-group reward at {missing}; "
            "torchrl_mappo needs one reward entry per group"
        )
    return TransformedEnv(
        base,
        RewardSum(in_keys=reward_keys, out_keys=[keys.episode_reward(g) for g in groups]),
    )
