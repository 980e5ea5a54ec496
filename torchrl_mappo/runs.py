"""Run directories: one per ``train``, holding the resolved config and the metrics."""
from __future__ import annotations

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
    if run_dir.exists():
        raise ConfigError(
            f"run.name={name!r}: run directory {str(run_dir)!r} already exists; "
            "choose another run.name (or leave it null for a timestamped one)"
        )
    return run_dir


def make_run_dir(cfg: Config, run_dir: Path) -> Path:
    """Create ``run_dir`` and write ``config.yaml``, the fully resolved config."""
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
    return run_dir
