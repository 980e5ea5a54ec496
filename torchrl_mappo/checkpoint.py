"""Checkpoints: everything a run needs to continue exactly where it stopped.

A checkpoint holds every learning group's actor, loss (critic, value
normaliser, scheduled coefficients) and optimizers, the iteration / frame /
wall-time counters, the RNG states (torch, numpy, python), the config, the
collector's carried tensordict (the observations and running episode returns
of the episodes in flight) and, for VMAS, the simulator's tensors (positions,
velocities, goals...) and its own RNG states. Restoring all of it on the same machine makes a
resumed run produce the same metrics as one that never stopped.

PettingZoo and MAgent2 keep their state in Python/C++ objects that cannot be
captured; a resumed run of those restarts the episodes in flight (weights,
optimizers, counters and RNG still continue exactly).
The same holds for multi-process and Ray collectors (``collector.kind`` other
than ``sync``): their episodes in flight live in the workers, so the
checkpoint stores ``carrier`` and ``simulator`` as ``None``.

Files are written to a temporary name and renamed, so a crash never leaves a
half-written checkpoint, and weights that are not finite are never written.
"""
from __future__ import annotations

import random
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from torchrl_mappo.config import ConfigError

# 2: losses are not functionalized (MAPPOLoss(functional=False)): their
# state dicts hold the actor/critic modules' parameters, not *_network_params.
FORMAT = 2
LATEST = "checkpoint.pt"
FOLDER = "checkpoints"


# --------------------------------------------------------------------------- #
# RNG
# --------------------------------------------------------------------------- #
def rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


# --------------------------------------------------------------------------- #
# Files
# --------------------------------------------------------------------------- #
def all_finite(state_dicts: Any) -> bool:
    if isinstance(state_dicts, torch.Tensor):
        return not state_dicts.is_floating_point() or bool(torch.isfinite(state_dicts).all())
    if isinstance(state_dicts, dict):
        return all(all_finite(v) for v in state_dicts.values())
    if isinstance(state_dicts, (list, tuple)):
        return all(all_finite(v) for v in state_dicts)
    return True


class CheckpointWriteError(RuntimeError):
    """A checkpoint could not be written (disk full, permissions...); the previous one is intact."""


def _save_atomic(write, path: Path) -> None:
    """``write(tmp)`` then rename ``tmp`` to ``path``; on failure remove ``tmp`` and raise one line."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        tmp.replace(path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise CheckpointWriteError(
            f"could not write {path} ({err.strerror or err}); the previous checkpoint is intact"
        ) from None


def write(state: dict[str, Any], run_dir: Path, keep: int) -> Path:
    """Write ``checkpoints/iter_NNNNNN.pt`` and ``checkpoint.pt`` (latest); keep the last ``keep``."""
    if not all_finite(state["actors"]) or not all_finite(state["losses"]):
        raise ValueError("refusing to write a checkpoint with non-finite weights")
    folder = run_dir / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"iter_{state['iteration']:06d}.pt"
    _save_atomic(lambda tmp: torch.save(state, tmp), path)
    _save_atomic(lambda tmp: shutil.copyfile(path, tmp), run_dir / LATEST)
    if keep > 0:
        for old in sorted(folder.glob("iter_*.pt"))[:-keep]:
            old.unlink()
    return path


def _load(file: Path) -> dict[str, Any]:
    """One checkpoint file, checked; a ConfigError (one line) for a corrupt, truncated or foreign one."""
    try:
        state = torch.load(file, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises many kinds on corrupt or truncated files
        raise ConfigError(
            f"{file}: not a readable checkpoint ({type(err).__name__}: {str(err).splitlines()[0][:120]})"
        ) from None
    if not isinstance(state, dict) or "actors" not in state or not state.get("config"):
        raise ConfigError(f"{file}: not a torchrl_mappo checkpoint (no actors/config in it)")
    if state.get("format") != FORMAT:
        raise ConfigError(
            f"{file}: checkpoint format {state.get('format')!r}, this torchrl_mappo reads format {FORMAT} "
            "(format 1 came before the losses stopped being functionalized); evaluate or resume it with "
            "the version that wrote it, or train again"
        )
    return state


def checkpoint_files(run_dir: Path) -> list[Path]:
    """A run directory's checkpoint files, newest iteration first, ``checkpoint.pt`` last."""
    numbered = sorted((run_dir / FOLDER).glob("iter_*.pt"), reverse=True)
    return [f for f in (*numbered, run_dir / LATEST) if f.is_file()]


def read(path: str | Path) -> tuple[dict[str, Any], Path]:
    """Load a checkpoint from a run directory (its newest readable one) or a ``.pt`` file.

    In a run directory an iteration file is renamed into place before
    ``checkpoint.pt`` is refreshed, so the newest readable of the two wins; an
    unreadable newer file is skipped with a note on stderr.

    Raises ``ConfigError`` (one clear line) for a missing, corrupt, truncated
    or foreign file (in a run directory: when none is readable).
    """
    path = Path(path)
    if not path.is_dir():
        if not path.is_file():
            raise ConfigError(f"no checkpoint at {str(path)!r}; give a run directory or a checkpoint .pt file")
        return _load(path), path
    files = checkpoint_files(path)
    if not files:
        raise ConfigError(f"no checkpoint at {str(path / LATEST)!r}; give a run directory or a checkpoint .pt file")
    best, skipped, first_error = None, [], None
    for file in files:
        if best is not None and file.name != LATEST:
            continue  # an older iteration file: the newest readable one is found
        try:
            state = _load(file)
        except ConfigError as err:
            skipped.append(file)
            first_error = first_error or err
            continue
        if best is None or state["iteration"] > best[0]["iteration"]:
            best = (state, file)
    if best is None:
        raise first_error
    for file in skipped:
        print(f"note: skipped unreadable checkpoint {file}; using {best[1]} (iteration {best[0]['iteration']})",
              file=sys.stderr)
    return best


def load_into(module: torch.nn.Module, saved: dict, what: str) -> None:
    """``module.load_state_dict(saved)`` with a one-line error naming the first mismatch."""
    current = module.state_dict()
    for key in sorted(set(saved) | set(current)):
        if key not in current:
            raise ConfigError(f"checkpoint {what}: has {key!r}, which this config does not build")
        if key not in saved:
            raise ConfigError(f"checkpoint {what}: lacks {key!r}, which this config builds")
        a, b = saved[key], current[key]
        if isinstance(a, torch.Tensor) and a.shape != b.shape:
            raise ConfigError(
                f"checkpoint {what}: {key!r} has shape {tuple(a.shape)} but this config builds "
                f"{tuple(b.shape)} (different sizes or number of agents)"
            )
    module.load_state_dict(saved)
