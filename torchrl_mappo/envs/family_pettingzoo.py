"""``env.family: pettingzoo`` by import path: any PettingZoo env, parallel or turn-based (AEC).

``env.scenario`` names a module with ``parallel_env()`` (used when present)
or ``env()`` (AEC: one agent acts per step). Both go through TorchRL's
``PettingZooWrapper`` with ``use_mask=True`` (``(group, "mask")`` marks the
agents alive, or the one whose turn it is) and ``done_on_any=False`` (an
episode ends when every agent is done, so agents may die or arrive);
action masks come out as ``(group, "action_mask")``, which the actor
honours. ``env.max_steps`` is passed as ``max_cycles`` where the env takes
it; the env's global state is returned where it has one.
"""
from __future__ import annotations

import warnings
from typing import Any, Callable

from torchrl.envs import EnvBase

from torchrl_mappo.config import EnvConfig
from torchrl_mappo.envs.family_magent import magent_fixed
from torchrl_mappo.envs.scenarios import import_scenario
from torchrl_mappo.errors import ConfigError

__all__ = ["make_pettingzoo_module_env", "space_signature", "turn_based"]


def space_signature(space: Any) -> Any:
    """Something equal for equal observation spaces (dict spaces have no ``shape``)."""
    shape = getattr(space, "shape", None)
    if shape is not None:
        return tuple(shape)
    sub = getattr(space, "spaces", None)
    if isinstance(sub, dict):
        return tuple((k, space_signature(v)) for k, v in sub.items())
    return repr(space)


def _factory(module: Any) -> tuple[Callable, bool]:
    if callable(getattr(module, "parallel_env", None)):
        return module.parallel_env, True
    return module.env, False


def _call(factory: Callable, cfg: EnvConfig) -> Any:
    """The raw env, with ``max_cycles`` when it takes it."""
    try:
        return factory(max_cycles=cfg.max_steps, **cfg.scenario_kwargs)
    except TypeError as err:
        if "max_cycles" not in str(err):
            raise ConfigError(f"env.scenario_kwargs: {cfg.scenario} rejected them: {err}") from None
    try:
        return factory(**cfg.scenario_kwargs)
    except TypeError as err:
        raise ConfigError(f"env.scenario_kwargs: {cfg.scenario} rejected them: {err}") from None


def _has_state(raw: Any) -> bool:
    """Whether ``state()`` gives an array (rps_v2's ``state`` is a dict; many envs raise)."""
    try:
        raw.reset(seed=0)
        return hasattr(raw.state(), "shape")
    except Exception:  # NotImplementedError, AttributeError, or an attribute that is no method
        return False


def pettingzoo_wrapper(raw: Any, **kwargs: Any) -> EnvBase:
    """TorchRL's ``PettingZooWrapper(raw, **kwargs)``, without its warning on every build that PettingZoo
    is not 1.24.3 (this package runs and is tested with the PettingZoo it pins; TorchRL warns per env
    copy, twice or more per run)."""
    from torchrl.envs.libs.pettingzoo import PettingZooWrapper

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PettingZoo in TorchRL is tested using version", category=UserWarning)
        return PettingZooWrapper(raw, **kwargs)


def make_pettingzoo_module_env(cfg: EnvConfig, seed: int | None, device: str,
                               resolve_group_map: Callable, batch: Callable) -> EnvBase:
    """The env of ``cfg.scenario`` (an import path) in ``cfg.num_envs`` copies."""
    factory, parallel = _factory(import_scenario(cfg))
    probe = magent_fixed(_call(factory, cfg))
    agents = list(probe.possible_agents)
    shapes = {a: space_signature(probe.observation_space(a)) for a in agents}
    group_map = resolve_group_map(cfg.group_map, agents, shapes)
    return_state = cfg.return_state and _has_state(probe)
    probe.close()

    def make_one() -> EnvBase:
        return pettingzoo_wrapper(
            magent_fixed(_call(factory, cfg)),  # a magent2 env by import path: its bugs worked around too
            return_state=return_state,
            group_map=group_map,
            use_mask=True,
            done_on_any=False,
            categorical_actions=True,
            device=device,
        )

    return batch(make_one, cfg.num_envs, seed)


def turn_based(env: EnvBase) -> bool:
    """Whether ``env`` plays a turn-based (AEC) PettingZoo env through TorchRL's ``PettingZooWrapper``.

    There one agent acts per step and ``(group, "mask")`` marks whose turn it
    is, not who is alive, so survivors mean nothing and a game's winner is
    read from the returns (:func:`torchrl_mappo.metrics.episode_win_rates`).
    Looks through transforms and the copies of a started ``SerialEnv`` (every
    env :func:`~torchrl_mappo.envs.make_env` returns has been stepped by its
    check, so its copies exist); copies in other processes (``ParallelEnv``)
    cannot be seen: ``False``.
    """
    from torchrl.envs import SerialEnv, TransformedEnv
    from torchrl.envs.libs.pettingzoo import PettingZooWrapper

    while isinstance(env, TransformedEnv):
        env = env.base_env
    if isinstance(env, SerialEnv):
        copies = env.__dict__.get("_envs") or []
        return bool(copies) and turn_based(copies[0])
    return isinstance(env, PettingZooWrapper) and not env.parallel
