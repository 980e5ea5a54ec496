"""The MAPPO ablation table, for real: every variant trained from scratch over several seeds.

Variants (seed 004's ablation table, plus value normalisation), each a set
of config overrides applied on top of the given config ("full MAPPO"):

=================  ==========================================
full               the config as given
ippo               ``model.centralized=false`` (no centralized critic)
no_layer_norm      ``model.layer_norm=false``
no_adv_norm        ``loss.normalize_advantage=false``
clip_0.1           ``loss.clip_epsilon=0.1``
clip_0.3           ``loss.clip_epsilon=0.3``
no_param_sharing   ``model.share_params=false``
value_norm         value normalisation toggled: ``popart`` if the config
                   has none, ``none`` if it has one
=================  ==========================================

A run's final return is the mean episode return (over its groups) of its
last ``FINAL_ITERS`` iterations; the table gives its mean ± std over seeds
and its % of full MAPPO's mean.
"""
from __future__ import annotations

import csv
import io
import math
import statistics
from pathlib import Path
from typing import Sequence

from torchrl_mappo import runner, summary
from torchrl_mappo.config import Config, ConfigError, load_config
from torchrl_mappo.summary import FINAL_ITERS, final_return
VARIANTS: dict[str, list[str]] = {
    "full": [],
    "ippo": ["model.centralized=false"],
    "no_layer_norm": ["model.layer_norm=false"],
    "no_adv_norm": ["loss.normalize_advantage=false"],
    "clip_0.1": ["loss.clip_epsilon=0.1"],
    "clip_0.3": ["loss.clip_epsilon=0.3"],
    "no_param_sharing": ["model.share_params=false"],
    "value_norm": [],  # filled in by variant_overrides: the config's value norm, toggled
}


def variant_overrides(name: str, cfg: Config) -> list[str]:
    if name not in VARIANTS:
        raise ConfigError(f"--variants: unknown variant {name!r}; choose from {', '.join(VARIANTS)}")
    if name == "value_norm":
        return ["loss.value_norm=none" if cfg.loss.value_norm != "none" else "loss.value_norm=popart"]
    return VARIANTS[name]


def variant_label(name: str, cfg: Config) -> str:
    if name == "value_norm":
        return "value_norm_off" if cfg.loss.value_norm != "none" else "value_norm_on (popart)"
    return name


def run_ablation(
    config: str | Path,
    *,
    seeds: int = 3,
    frames: int | None = None,
    variants: Sequence[str] | None = None,
    overrides: Sequence[str] = (),
    out_dir: str | Path | None = None,
    progress: bool = True,
    jobs: int | None = None,
) -> Path:
    """Train every variant for every seed; write ``ablation.md``, ``ablation.csv``, ``ablation.png``.

    Each run is a ``torchrl-mappo train`` process (:mod:`torchrl_mappo.runner`),
    ``jobs`` at a time (default: one per core). Returns the directory holding
    the tables and every run's directory (``<variant>/seed<N>/``).
    """
    base = load_config(config, overrides)
    names = list(variants) if variants else list(VARIANTS)
    if "full" not in names:
        names.insert(0, "full")  # the reference for "% of full"
    common = [*overrides, *([f"train.total_frames={frames}"] if frames is not None else [])]
    points = {n: variant_overrides(n, base) for n in names}
    plans = {n: load_config(config, [*common, *points[n]]) for n in names}  # validate all first
    if seeds <= 0:
        raise ConfigError(f"--seeds={seeds}: must be a positive integer")
    if jobs is not None and jobs < 1:
        raise ConfigError(f"--jobs={jobs}: must be a positive integer")
    out = runner.make_parent(base, config, "ablation", out_dir)
    runs = runner.plan_runs(config, points, list(range(seeds)), common, out)
    finished = runner.run_all(config, runs, jobs=jobs, parent=out,
                              stream=None if progress else io.StringIO())
    results: dict[str, list[dict]] = {n: [] for n in names}
    for run in runs:
        results[run.point].append({"seed": run.seed, "history": run.rows, "final": final_return(run.rows),
                                   "wall": run.process.wall_s, "status": summary.status(run)})
    _write_table(out, base, plans, results, config, seeds)
    _write_plot(out / "ablation.png", results, base, plans)
    if not finished:
        raise KeyboardInterrupt  # the runs checkpointed; the table holds what was done
    return out


def _summary(finals: list[float]) -> tuple[float, float]:
    return summary.mean_std(finals)


def _write_table(out: Path, base: Config, plans: dict, results: dict, config, seeds: int) -> None:
    full_mean = _summary([r["final"] for r in results["full"]])[0]
    frames = plans["full"].train.total_frames
    lines = [
        f"# MAPPO ablation: {config}",
        "",
        f"{seeds} seeds per variant, {frames} frames per run; final return = mean episode return "
        f"of the last {FINAL_ITERS} iterations. Wall time summed over the runs "
        f"{sum(r['wall'] for rs in results.values() for r in rs if r['wall'] == r['wall']):.0f} s.",
        "",
        "| variant | overrides | final return (mean ± std) | % of full | wall s / run |",
        "|---|---|---|---|---|",
    ]
    rows = []
    for name, runs in results.items():
        mean, std = _summary([r["final"] for r in runs])
        pct = 100.0 * mean / full_mean if full_mean not in (0.0,) and not math.isnan(full_mean) else float("nan")
        overrides = ", ".join(variant_overrides(name, base)) or "(config as given)"
        wall = statistics.fmean(r["wall"] for r in runs)
        lines.append(f"| {variant_label(name, base)} | `{overrides}` | {mean:.3f} ± {std:.3f} | {pct:.0f}% | {wall:.1f} |")
        for r in runs:
            rows.append([variant_label(name, base), r["seed"], f"{r['final']:.6g}", f"{r['wall']:.2f}", r["status"]])
    if full_mean < 0:
        lines += ["", "Note: full MAPPO's return is negative, so % of full reads inverted (lower % is better)."]
    (out / "ablation.md").write_text("\n".join(lines) + "\n")
    with (out / "ablation.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["variant", "seed", "final_return", "wall_s", "status"])
        w.writerows(rows)


def _write_plot(path: Path, results: dict, base: Config, plans: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(8, 5))
    for name, runs in results.items():
        runs = [r for r in runs if r["history"]]  # a run that failed before its first iteration
        if not runs:
            continue
        curves = [[summary.mean_return(row) for row in r["history"]] for r in runs]
        length = min(len(c) for c in curves)
        curves = np.array([c[:length] for c in curves])
        frames = [row["frames"] for row in runs[0]["history"][:length]]
        mean, std = np.nanmean(curves, 0), np.nanstd(curves, 0)
        ax.plot(frames, mean, label=variant_label(name, base), lw=2.2 if name == "full" else 1.4)
        ax.fill_between(frames, mean - std, mean + std, alpha=0.15)
    env = plans["full"].env
    ax.set_title(f"MAPPO ablation: {env.family}/{env.scenario} ({len(next(iter(results.values())))} seeds, mean ± std)")
    ax.set_xlabel("frames")
    ax.set_ylabel("mean episode return")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
