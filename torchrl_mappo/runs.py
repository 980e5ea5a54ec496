"""Run directories: one per ``train``, holding the resolved config and the metrics."""
from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import yaml

from torchrl_mappo.config import Config, ConfigError, config_to_dict


def run_dir_for(cfg: Config) -> Path:
    """The run directory ``cfg`` names, checked to be new (nothing is created).

    ``run.name: null`` names the run ``<config stem>-<YYYYmmdd-HHMMSS>``
    (with a ``-N`` suffix if two runs start within one second). An existing
    run directory is never reused: naming one is a config error.
    """
    name = cfg.run.name
    if name is None:
        stem = Path(cfg.source).stem if cfg.source else "run"
        name = f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
        run_dir, suffix = Path(cfg.run.dir) / name, 1
        while run_dir.exists():
            run_dir, suffix = Path(cfg.run.dir) / f"{name}-{suffix}", suffix + 1
        return run_dir
    run_dir = Path(cfg.run.dir) / name
    if run_dir.exists() and not cfg.run.overwrite:
        raise ConfigError(
            f"run.name={name!r}: run directory {str(run_dir)!r} already exists; "
            "choose another run.name, leave it null for a timestamped one, or set run.overwrite=true"
        )
    return run_dir


def make_run_dir(cfg: Config, run_dir: Path) -> Path:
    """Create ``run_dir`` (replacing it if ``run.overwrite``) and write ``config.yaml``."""
    if run_dir.exists() and cfg.run.overwrite:
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
    return run_dir


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
