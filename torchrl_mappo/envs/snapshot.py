"""The only code that reaches into TorchRL's and VMAS's private state: the episodes in flight.

A checkpoint that resumes exactly needs what no public API exposes:

- the sync ``Collector``'s carried tensordict (``_carrier``: the observations
  and running episode returns of the episodes in flight);
- the VMAS simulator under TorchRL's ``VmasWrapper`` (``_env``): every tensor
  reachable from it (positions, velocities, goals...) and VMAS's own RNG
  states, kept on its class.

Keeping these reads and writes here means a TorchRL or VMAS upgrade that
renames them breaks one small module, not the trainer and the evaluator.
"""
from __future__ import annotations

import contextlib
import copy
import sys
from typing import Any, Iterator

import torch
from tensordict import TensorDictBase

from torchrl_mappo.config import ConfigError

_VMAS_RNG = "__vmas_random_state__"


@contextlib.contextmanager
def isolated_rng() -> Iterator[None]:
    """Run a block (e.g. an evaluation on an env of its own) without moving any RNG training uses.

    Restores torch's, numpy's and Python's global RNGs and VMAS's own RNG states afterwards: VMAS
    keeps those on its ``Environment`` class, shared by every VMAS env of the process, so building,
    seeding or stepping another VMAS env would otherwise change the training env's next resets.
    """
    from torchrl_mappo.checkpoint import rng_state, set_rng_state

    saved = rng_state()
    vmas_env = sys.modules.get("vmas.simulator.environment.environment")
    vmas_cls = getattr(vmas_env, "Environment", None)
    vmas_saved = copy.deepcopy(list(vmas_cls.vmas_random_state)) if vmas_cls is not None else None
    try:
        yield
    finally:
        set_rng_state(saved)
        vmas_cls = getattr(sys.modules.get("vmas.simulator.environment.environment"), "Environment", None)
        if vmas_cls is not None and vmas_saved is not None:
            vmas_cls.vmas_random_state[:] = vmas_saved  # in place: VMAS's decorators hold this list


def carrier(collector) -> TensorDictBase | None:
    """The episodes in flight of a sync ``Collector``; ``None`` for multi-process and Ray
    collectors (their episodes live in the workers)."""
    return getattr(collector, "_carrier", None)


def check_carrier(collector, td: TensorDictBase) -> None:
    """The saved episodes in flight ``td`` fit this sync collector (same number of envs)."""
    current = carrier(collector)
    if current is not None and td.batch_size != current.batch_size:
        raise ConfigError(
            f"checkpoint: it was collecting {tuple(td.batch_size)} envs, this config "
            f"{tuple(current.batch_size)} (env.num_envs changed)"
        )


def carrier_fits(collector, td: TensorDictBase) -> bool:
    """The saved episodes in flight carry the entries this collector's do (a checkpoint written
    before the env gained one, e.g. VMAS's ``step_count``, does not: its episodes restart)."""
    current = carrier(collector)
    return current is None or not set(current.keys(True, True)) - set(td.keys(True, True))


def set_carrier(collector, td: TensorDictBase) -> None:
    """Continue the episodes in flight of ``td`` (from :func:`carrier`) in a sync ``Collector``."""
    check_carrier(collector, td)
    collector._carrier = td


def _walk(obj: Any, path: str, seen: set[int], out: dict[str, torch.Tensor], depth: int) -> None:
    if depth > 8 or id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        out[path] = obj
        return
    if isinstance(obj, dict):
        # Dicts keyed by objects (VMAS's per-step force buffers) are rebuilt each step.
        items = [(k, v) for k, v in obj.items() if isinstance(k, (str, int))]
    elif isinstance(obj, (list, tuple)):
        items = enumerate(obj)
    elif hasattr(obj, "__dict__") and not isinstance(obj, (type, torch.nn.Module)) and not callable(obj):
        items = vars(obj).items()
    else:
        return
    for key, value in items:
        if isinstance(value, (str, bytes, int, float, bool, type(None))):
            continue
        _walk(value, f"{path}/{key}", seen, out, depth + 1)


def first_copy(env):
    """The TorchRL env under ``env``'s first copy: through transforms and the copies of a started
    ``SerialEnv``; ``None`` while its copies are not built (copies in other processes, a
    ``ParallelEnv``, cannot be seen: it is returned itself)."""
    from torchrl.envs import SerialEnv, TransformedEnv

    while True:
        if isinstance(env, TransformedEnv):
            env = env.base_env
        elif isinstance(env, SerialEnv):
            copies = env.__dict__.get("_envs") or []  # (attribute reads on a SerialEnv go to its copies)
            if not copies:
                return None
            env = copies[0]
        else:
            return env


def first_raw_env(env):
    """The simulator object under ``env``'s first copy (the TorchRL wrapper's ``_env``): a
    PettingZoo/MAgent2 env, a VMAS simulator; ``None`` if none."""
    copy = first_copy(env)
    return None if copy is None else vars(copy).get("_env")


def vmas_simulator(env):
    """The VMAS simulator under ``env`` (``None`` for other envs)."""
    from torchrl.envs.libs.vmas import VmasWrapper

    copy = first_copy(env)
    return copy._env if isinstance(copy, VmasWrapper) else None


def simulator_tensors(env) -> dict[str, torch.Tensor] | None:
    """Every tensor reachable from a VMAS simulator, by attribute path (``None`` for other envs)."""
    sim = vmas_simulator(env)
    if sim is None:
        return None
    out: dict[str, torch.Tensor] = {}
    _walk(sim, "", set(), out, 0)
    snapshot: dict[str, Any] = {k: v.detach().clone() for k, v in out.items()}
    # VMAS draws its randomness from its own RNG states, kept on the class.
    snapshot[_VMAS_RNG] = copy.deepcopy(list(type(sim).vmas_random_state))
    return snapshot


def _child(obj: Any, key: str) -> Any:
    if isinstance(obj, dict):
        return obj[key] if key in obj else obj[int(key)]
    if isinstance(obj, (list, tuple)):
        return obj[int(key)]
    return getattr(obj, key)


def restore_simulator_tensors(env, saved: dict[str, torch.Tensor]) -> None:
    """Put the saved tensors back at their paths in a simulator built from the same config."""
    sim = vmas_simulator(env)
    saved = dict(saved)
    rng = saved.pop(_VMAS_RNG, None)
    if rng is not None:
        type(sim).vmas_random_state[:] = copy.deepcopy(rng)  # in place: VMAS's decorators hold this list
    for path, value in saved.items():
        *parents, name = path.strip("/").split("/")
        try:
            parent = sim
            for key in parents:
                parent = _child(parent, key)
        except (AttributeError, KeyError, IndexError, ValueError):
            parent = None
        try:
            current = _child(parent, name) if parent is not None else None
        except (AttributeError, KeyError, IndexError, ValueError):
            current = None  # set during a step (e.g. an action buffer): created below
        if parent is None:
            raise ConfigError(
                f"checkpoint: the simulator has no {path!r} (was the env config changed?)"
            )
        if isinstance(current, torch.Tensor) and current.shape == value.shape:
            current.copy_(value)
        elif isinstance(current, torch.Tensor):
            raise ConfigError(
                f"checkpoint: simulator entry {path!r} has shape {tuple(value.shape)}, this env "
                f"{tuple(current.shape)}; was the env config changed?"
            )
        elif isinstance(parent, (list, dict)):
            parent[int(name) if isinstance(parent, list) else name] = value.clone()
        else:
            setattr(parent, name, value.clone())


