"""``env.family: torchrl``: your own TorchRL ``EnvBase``, from ``env.make`` or handed in ready.

``env.make`` names a callable, ``package.module:callable`` or
``path/to/file.py:callable``; it gets ``env.kwargs``, plus ``num_envs``,
``device``, ``seed`` and ``max_steps`` where its signature names them. A
callable that takes ``num_envs`` is a batched env; any other is called
``num_envs`` times, the copies stepping in TorchRL's ``SerialEnv``.
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from pathlib import Path
from typing import Any, Callable

from torchrl.data import Composite
from torchrl.envs import EnvBase, SerialEnv

from torchrl_mappo.config import EnvConfig
from torchrl_mappo.errors import ConfigError

__all__ = ["ensure_group_map", "load_callable", "make_torchrl_env"]


def _import(module: str, where: str):
    if module.endswith(".py") or "/" in module or os.sep in module:
        path = Path(module).expanduser()
        if not path.is_file():
            raise ConfigError(f"{where}: no file {str(path)!r} (relative paths start at {os.getcwd()})")
        name = f"torchrl_mappo_user_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod  # pickling (worker processes) finds the module again
        spec.loader.exec_module(mod)
        return mod
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name != module.split(".")[0] or os.getcwd() in sys.path:
            raise ConfigError(f"{where}: cannot import {module!r} ({err})") from None
    sys.path.insert(0, os.getcwd())  # `torchrl-mappo` does not put the working folder on the path
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        raise ConfigError(f"{where}: cannot import {module!r} ({err}); is it on PYTHONPATH?") from None


def load_callable(spec: str, where: str = "env.make") -> Callable[..., Any]:
    """``"package.module:callable"`` or ``"path/to/file.py:callable"`` -> the callable."""
    module, _, name = spec.rpartition(":")
    where = f"{where}={spec!r}"
    mod = _import(module, where)
    fn = getattr(mod, name, None)
    if not callable(fn):
        raise ConfigError(f"{where}: {module} has no callable {name!r}")
    return fn


def _named_args(fn: Callable) -> set[str]:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return set()
    return {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _checked(env: Any, where: str) -> EnvBase:
    if not isinstance(env, EnvBase):
        raise ConfigError(
            f"{where}: returned a {type(env).__name__}, not a TorchRL EnvBase; wrap it (PettingZooWrapper, "
            "GymWrapper, ...) or use env.family: pettingzoo / gymnasium_ma"
        )
    return env


def ensure_group_map(env: EnvBase) -> dict[str, list[str]]:
    """The env's ``group_map``; where it has none, read off its specs (every root entry of the
    observation spec with an agent dim after the batch dims; agents ``<group>_<i>``) and set on the env."""
    group_map = getattr(env, "group_map", None)
    if isinstance(group_map, dict) and group_map:
        return {g: list(agents) for g, agents in group_map.items()}
    if isinstance(group_map, list):  # a SerialEnv answers with one per copy
        group_map = group_map[0]
    if not group_map:
        spec = env.observation_spec
        group_map = {}
        for group in spec.keys():
            entry = spec[group]
            if isinstance(entry, Composite) and len(entry.shape) > env.batch_dims:
                group_map[group] = [f"{group}_{i}" for i in range(entry.shape[env.batch_dims])]
    group_map = {g: list(agents) for g, agents in dict(group_map).items()}
    env.group_map = group_map
    return group_map


def make_torchrl_env(cfg: EnvConfig, seed: int | None, device: str) -> EnvBase:
    """Call ``cfg.make`` (batched when it takes ``num_envs``, else ``num_envs`` copies in a ``SerialEnv``)."""
    fn = load_callable(cfg.make)
    where = f"env.make={cfg.make!r}"
    named = _named_args(fn)
    extra = {"device": device, "seed": seed, "max_steps": cfg.max_steps}
    kwargs = {**{k: v for k, v in extra.items() if k in named and k not in cfg.kwargs}, **cfg.kwargs}

    def call(**more) -> EnvBase:
        try:
            return _checked(fn(**kwargs, **more), where)
        except TypeError as err:
            if "argument" in str(err):
                raise ConfigError(f"env.kwargs: {cfg.make} rejected them: {err}") from None
            raise

    if "num_envs" in named:
        env = call(num_envs=cfg.num_envs)
    elif cfg.num_envs == 1:
        env = call()
    else:
        first = call()
        group_map = ensure_group_map(first)
        first.close()
        env = SerialEnv(cfg.num_envs, call)
        env.group_map = group_map
    if seed is not None:
        env.set_seed(seed)
    return env
