"""Learning curves from run directories: return per group vs frames and vs wall time."""
from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Sequence

from torchrl_mappo.config import ConfigError
from torchrl_mappo.metrics import read_metrics


IMAGE_SUFFIXES = (".png", ".pdf", ".svg")


def check_writable(path: Path, what: str) -> None:
    """Fail before any work if ``path`` cannot be written (its folder missing or read-only)."""
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ConfigError(f"{what} {path}: is a directory; give a file name")
    if not folder.is_dir():
        raise ConfigError(f"{what} {path}: folder {str(folder)!r} does not exist; create it first")
    try:  # os.access says yes to root on read-only mounts: try it for real
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".torchrl_mappo_probe-"):
            pass
        writable = not path.exists() or os.access(path, os.W_OK)
    except OSError:
        writable = False
    if not writable:
        raise ConfigError(f"{what} {path}: not writable; choose a path you can write to")


def _finite_returns(rows: list[dict[str, float]]) -> bool:
    return any(k.endswith("/episode_return") and not math.isnan(v) for r in rows for k, v in r.items())


def plot_runs(run_dirs: Sequence[str | Path], out: str | Path | None = None) -> Path:
    """Write a PNG with two panels (return vs frames, return vs wall seconds), runs overlaid.

    Each run contributes one line per group (``<run>: <group>``). Iterations
    where no episode ended (return NaN) are skipped.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not run_dirs:
        raise ConfigError("plot: give at least one run directory")
    out = Path(out) if out is not None else Path(run_dirs[0]) / "learning_curves.png"
    if out.suffix.lower() not in IMAGE_SUFFIXES:
        raise ConfigError(f"plot --out {out}: give an image file name ending in {', '.join(IMAGE_SUFFIXES)}")
    check_writable(out, "plot --out")
    runs = []
    for rd in run_dirs:
        path = Path(rd) / "metrics.csv"
        if not path.is_file():
            raise ConfigError(f"plot: no metrics.csv in {str(rd)!r}; give run directories made by 'torchrl-mappo train'")
        try:
            rows = read_metrics(path)
        except (ValueError, KeyError) as err:
            raise ConfigError(f"plot: {path} is not a metrics table ({err})") from None
        if not rows:
            raise ConfigError(f"plot: {path} has no iterations yet")
        runs.append((Path(rd), rows))
    if not any(_finite_returns(rows) for _, rows in runs):
        raise ConfigError(
            f"plot: no episode has finished yet in {', '.join(str(rd) for rd, _ in runs)} (every "
            "episode_return is empty); train longer, or with episodes shorter than a batch"
        )
    fig, (by_frames, by_time) = plt.subplots(1, 2, figsize=(12, 4.5))
    names = [rd.name for rd, _ in runs]
    unique = len(set(names)) == len(names)
    for rd, rows in runs:
        name = rd.name if unique else f"{rd.parent.name}/{rd.name}"
        groups = [k[: -len("/episode_return")] for k in rows[0] if k.endswith("/episode_return")
                  and k.count("/") == 1]
        for g in groups:
            pts = [(r["frames"], r["wall_time"], r[f"{g}/episode_return"]) for r in rows
                   if not math.isnan(r[f"{g}/episode_return"])]
            if not pts:
                continue
            frames, wall, ret = zip(*pts)
            label = f"{name}: {g}" if len(groups) > 1 else name
            by_frames.plot(frames, ret, label=label)
            by_time.plot(wall, ret, label=label)
    by_frames.set_xlabel("frames")
    by_time.set_xlabel("wall time (s)")
    for ax in (by_frames, by_time):
        ax.set_ylabel("mean episode return")
        ax.grid(alpha=0.3)
    by_frames.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
