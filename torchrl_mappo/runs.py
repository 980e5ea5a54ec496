"""Run directories: one per ``train``, holding the resolved config, the metrics and checkpoints.

Safety rules (a run directory may hold the only copy of a week's training):

- A run directory is claimed atomically (``mkdir`` without ``exist_ok``) the
  moment its name is chosen, so two launches never share one; the
  ``-N`` suffix of a timestamped name really applies.
- Every run directory this package creates holds a marker file
  (:data:`MARKER`). ``run.overwrite`` only ever replaces a directory with
  that marker, directly below ``run.dir`` and not a symlink, and only once
  the new run has been built: the old one is first moved aside, then deleted
  once the new run starts (it is moved back if the new one fails to build).
- The process that trains a run holds an exclusive lock on its directory
  (``flock``: released by the kernel when the process dies, even by
  SIGKILL); a second writer (``--resume`` of a run still training,
  an overwrite of it) is refused with one line.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import yaml

from torchrl_mappo import startup
from torchrl_mappo.config import Config, ConfigError, config_to_dict

MARKER = ".torchrl_mappo_run"
"""Written in every run directory this package creates (and only there)."""
CONFIG = "config.yaml"


class RunLock:
    """An exclusive ``flock`` on the run directory itself (no file is written for it).

    Raises a ConfigError (one line) if another process holds it. The kernel
    drops the lock when the process ends, however it ends.
    """

    def __init__(self, run_dir: Path):
        self.fd: int | None = os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.release()
            raise ConfigError(
                f"run directory {str(run_dir)!r} is in use by another torchrl_mappo process; wait for it "
                "to finish or stop it (Ctrl-C checkpoints it) before resuming or replacing this run"
            ) from None

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the lock
            self.fd = None


def _mark(run_dir: Path) -> None:
    (run_dir / MARKER).write_text("created by torchrl_mappo: 'run.overwrite' may replace this directory\n")


def is_run_dir(path: Path) -> bool:
    """A directory this package created as a run (its marker is inside; not a symlink)."""
    return path.is_dir() and not path.is_symlink() and (path / MARKER).is_file()


class RunClaim:
    """A run directory claimed for a new run: locked, marked, and undone by :meth:`abandon`.

    ``replaced``: the old run moved aside by ``run.overwrite`` (deleted by
    :meth:`commit`, put back by :meth:`abandon`).
    """

    def __init__(self, run_dir: Path, lock: RunLock, replaced: Path | None = None):
        self.run_dir, self.lock, self.replaced = run_dir, lock, replaced

    def commit(self, cfg: Config) -> None:
        """The new run was built: write its config and delete the run it replaces."""
        write_config(self.run_dir, cfg)
        if self.replaced is not None:
            shutil.rmtree(self.replaced)  # a marked run directory that this claim moved aside
            self.replaced = None

    def abandon(self) -> None:
        """The new run could not start: remove the directory this claim made moments ago (still
        locked by this process, so nothing else wrote into it) and put back the run it moved aside."""
        if is_run_dir(self.run_dir):
            shutil.rmtree(self.run_dir)
        self.lock.release()
        if self.replaced is not None:
            self.replaced.rename(self.run_dir)
            self.replaced = None


def _new_dir(path: Path) -> RunClaim | None:
    """``mkdir`` ``path`` (not its parents' existence); ``None`` if it already exists."""
    try:
        path.mkdir()
    except FileExistsError:
        return None
    _mark(path)
    return RunClaim(path, RunLock(path))


def claim_run_dir(cfg: Config) -> RunClaim:
    """Create and lock the run directory ``cfg.run`` names (see the module docstring).

    ``run.name: null`` names the run ``<config stem>-<YYYYmmdd-HHMMSS>`` (with a
    ``-N`` suffix if that name is taken). A named run that exists is an error
    unless ``run.overwrite`` and it is a run directory of this package that no
    process is training.
    """
    root = Path(cfg.run.dir)
    if root.exists() and not root.is_dir():
        raise ConfigError(f"run.dir={cfg.run.dir!r} is a file; give a directory for the runs")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"run.dir={cfg.run.dir!r}: cannot create it ({err.strerror})") from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise ConfigError(f"run.dir={cfg.run.dir!r}: not writable; give a directory you can write to")
    name = cfg.run.name
    if name is None:
        stem = Path(cfg.source).stem if cfg.source else "run"
        base = f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
        for suffix in range(10_000):
            claim = _new_dir(root / (base if suffix == 0 else f"{base}-{suffix}"))
            if claim is not None:
                return claim
        raise ConfigError(f"run.dir={cfg.run.dir!r}: 10000 runs named {base}-N already exist; set run.name")
    run_dir = root / name
    claim = _new_dir(run_dir)
    if claim is not None:
        return claim
    if not cfg.run.overwrite:
        raise ConfigError(
            f"run.name={name!r}: {str(run_dir)!r} already exists; choose another run.name, leave it null "
            "for a timestamped one, or set run.overwrite=true to replace that run"
        )
    if not is_run_dir(run_dir):
        raise ConfigError(
            f"run.overwrite: {str(run_dir)!r} was not made by torchrl_mappo (no {MARKER} in it), so it is "
            "never replaced; choose another run.name or move it away yourself"
        )
    old_lock = RunLock(run_dir)  # refuses a run that another process is training
    aside = root / f".{name}.replaced-{os.getpid()}-{time.time_ns()}"
    run_dir.rename(aside)
    old_lock.release()
    claim = _new_dir(run_dir)
    if claim is None:  # another launch took the name in between: the old run stays aside, intact
        raise ConfigError(
            f"run.name={name!r}: another launch created {str(run_dir)!r} at the same moment; "
            f"the run it replaced is kept, intact, at {str(aside)!r}"
        )
    claim.replaced = aside
    return claim


def write_config(run_dir: Path, cfg: Config) -> None:
    """Write ``config.yaml`` atomically; a different config already there is kept as
    ``config.before-<time>.yaml`` (a resume with overrides changes the run's config)."""
    text = yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
    path = run_dir / CONFIG
    if path.is_file():
        if path.read_text() == text:
            return
        path.replace(run_dir / f"config.before-{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() % 10**9}.yaml")
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(text)
    tmp.replace(path)


# --------------------------------------------------------------------------- #
# The run lifecycle shared by the CLI and Python: start or resume, then train
# --------------------------------------------------------------------------- #
RESUME_FIXED = ("run.name", "run.dir", "run.overwrite", "train.seed")
"""Settings a resumed run cannot change: it keeps its directory, and its RNG continues from the checkpoint."""


class RunError(RuntimeError):
    """Training stopped on an error after the run started (exit 1); the message is one line."""


def _check_resume_overrides(overrides: Sequence[str]) -> None:
    for override in overrides:
        key = str(override).partition("=")[0].strip()
        if key in RESUME_FIXED or any(key.startswith(k + ".") for k in RESUME_FIXED):
            raise ConfigError(
                f"train --resume: {key} cannot change when resuming (the run keeps its directory, and its "
                f"random state continues from the checkpoint); drop {override!r}, or start a new run"
            )


@dataclass
class Run:
    """A run ready to train: its trainer, its directory (locked by this process) and what to say first."""

    trainer: Any
    run_dir: Path
    hello: str
    lock: RunLock


def start_run(config: str | Path | Config, overrides: Sequence[str] = ()) -> Run:
    """Claim a new run directory and build its trainer.

    Nothing is left on disk if the build fails (the env rejects the config,
    the logger cannot start...).
    """
    from torchrl_mappo.config import load_config

    cfg = config if isinstance(config, Config) else load_config(config, overrides)
    from torchrl_mappo.trainer import Trainer  # torch and TorchRL: only once the config is good

    startup.imports_done()
    claim = claim_run_dir(cfg)
    try:
        trainer = Trainer.from_config(cfg, run_dir=claim.run_dir)
        trainer.metrics_sink.open()
    except BaseException:
        claim.abandon()
        raise
    claim.commit(trainer.config)  # as built (an ``auto`` resolved)
    return Run(trainer, claim.run_dir, f"run directory: {claim.run_dir}", claim.lock)


def resume_run(target: str | Path, overrides: Sequence[str] = ()) -> Run:
    """Continue the run at ``target`` (a run directory or a checkpoint file).

    From its newest readable checkpoint; or, if it stopped before its first
    checkpoint, again from its ``config.yaml`` (its old ``metrics.csv`` is
    kept as ``metrics.before-restart-*.csv``). Overrides apply and are
    written back to ``config.yaml`` (the previous one is kept); the
    :data:`RESUME_FIXED` ones are refused.
    """
    from torchrl_mappo import checkpoint as ckpt
    from torchrl_mappo.config import load_config
    from torchrl_mappo.trainer import Trainer

    startup.imports_done()

    _check_resume_overrides(overrides)
    target = Path(target)
    restart = (target.is_dir() and not ckpt.checkpoint_files(target) and is_run_dir(target)
               and (target / CONFIG).is_file())
    if restart:
        state, run_dir = None, target
    else:
        state, file = ckpt.read(target)
        run_dir = file.parent.parent if file.parent.name == ckpt.FOLDER else file.parent
    lock = RunLock(run_dir)
    try:
        cfg = load_config(run_dir / CONFIG, overrides)
        trainer = Trainer.from_config(cfg, run_dir=run_dir, resume=state)
        trainer.metrics_sink.open()
    except BaseException:
        lock.release()
        raise
    write_config(run_dir, trainer.config)
    if not restart:
        hello = f"resuming {run_dir} at iteration {trainer.iteration} ({trainer.frames} frames)"
        return Run(trainer, run_dir, hello, lock)
    metrics = run_dir / "metrics.csv"
    if metrics.is_file():
        metrics.rename(run_dir / f"metrics.before-restart-{time.strftime('%Y%m%d-%H%M%S')}.csv")
    return Run(trainer, run_dir, f"no checkpoint in {run_dir} yet: starting it again from its {CONFIG}", lock)


def train(config: str | Path | Config | None = None, overrides: Sequence[str] = (), *,
          resume: str | Path | None = None) -> Path:
    """What ``torchrl-mappo train`` does, from Python: a run directory with ``config.yaml``,
    ``metrics.csv``, ``console.log`` and checkpoints. Returns the run directory.

    ``config``: a YAML path (with ``overrides``) or a :class:`Config`; or
    ``resume``: a run directory to continue (``overrides`` apply).
    Raises :class:`ConfigError` on bad input (nothing written) and
    :class:`RunError` when training stops on an error (non-finite updates,
    a checkpoint that cannot be written); the last good checkpoint is kept.
    """
    if resume is not None:
        run = resume_run(resume, overrides)
    elif config is not None:
        run = start_run(config, overrides)
    else:
        raise ConfigError("train: give a config file (e.g. configs/vmas_navigation.yaml) or --resume RUN_DIR")
    from torchrl_mappo.checkpoint import CheckpointWriteError
    from torchrl_mappo.trainer import NonFiniteLossError

    with Console(run.run_dir / "console.log"), warnings.catch_warnings():
        warnings.showwarning = _one_line_warning
        print(run.hello, flush=True)
        try:
            run.trainer.train()
        except NonFiniteLossError as err:
            message = f"{err}; checkpoint of the last good weights: {run.run_dir / 'checkpoint.pt'}"
            print(f"error: {message}", file=sys.stderr)
            raise RunError(message) from None
        except CheckpointWriteError as err:
            print(f"error: {err}", file=sys.stderr)
            raise RunError(str(err)) from None
        finally:
            run.lock.release()
        print(_final_line(run.trainer, run.run_dir))
    return run.run_dir


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _final_line(trainer, run_dir: Path) -> str:
    ckpt = run_dir / "checkpoint.pt"
    if trainer.stopped_by is not None:
        return (f"stopped by {trainer.stopped_by} after iteration {trainer.iteration} ({trainer.frames} frames); "
                f"checkpoint: {ckpt}\nresume with: torchrl-mappo train --resume {run_dir}")
    if not trainer.history:
        return "nothing to do"
    last = trainer.history[-1]
    evals = ", ".join(f"{k.split('/')[1]}={v:.3f}" for k, v in trainer.last_eval.items()
                      if k.endswith("/episode_return"))
    n = trainer.config.train.eval_episodes
    evals = f"; last evaluation ({n} episode{'' if n == 1 else 's'}): {evals}" if evals else ""
    return (f"done: {last['frames']} frames in {last['wall_time']:.1f} s; "
            f"{trainer.recent.summary()}{evals}; metrics: {run_dir / 'metrics.csv'}; checkpoint: {ckpt}")


class _Tee:
    def __init__(self, stream, log):
        self.stream, self.log = stream, log

    def write(self, text: str) -> int:
        self.log.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.log.flush()
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def __getattr__(self, name):
        return getattr(self.stream, name)


class Console:
    """Copy everything printed (stdout and stderr, the progress bar too) to ``path`` (appending)."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self) -> "Console":
        self.log = self.path.open("a", buffering=1)
        self.saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = _Tee(sys.stdout, self.log), _Tee(sys.stderr, self.log)
        return self

    def __exit__(self, *exc) -> None:
        sys.stdout, sys.stderr = self.saved
        self.log.close()
