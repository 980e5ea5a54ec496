"""Reading runs back and summarising them: final returns, time and frames to a target,
mean ± std per grid point, as ``summary.md``, ``summary.csv`` and ``curves.png``.

Used by :mod:`torchrl_mappo.runner` (seeds, sweeps) and the ablation runner.
No torch: it reads ``metrics.csv`` files.
"""
from __future__ import annotations

import csv
import math
import os
import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from torchrl_mappo.runner import Run

FINAL_ITERS = 3


# --------------------------------------------------------------------------- #
# Reading runs back
# --------------------------------------------------------------------------- #
def read_rows(run_dir: Path) -> list[dict]:
    """The run's ``metrics.csv`` rows as numbers ([] while it has none)."""
    path = run_dir / "metrics.csv"
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        rows = []
        for row in csv.DictReader(f):
            try:
                rows.append({k: float(v) if v not in ("", None) else math.nan for k, v in row.items()})
            except ValueError:  # a row being written
                break
        return rows


def learning_groups(row: dict) -> list[str]:
    """Groups with an update (a loss) in the metrics: the ones whose return is the run's."""
    groups = [k[: -len("/loss_objective")] for k in row if k.endswith("/loss_objective")]
    return groups or [k[: -len("/episode_return")] for k in row if k.endswith("/episode_return") and k.count("/") == 1]


def mean_return(row: dict) -> float:
    values = [row[f"{g}/episode_return"] for g in learning_groups(row)]
    values = [v for v in values if not math.isnan(v)]
    return statistics.fmean(values) if values else math.nan


def final_return(rows: list[dict]) -> float:
    """Mean episode return (over the learning groups) of the last ``FINAL_ITERS`` iterations."""
    values = [mean_return(r) for r in rows[-FINAL_ITERS:]]
    values = [v for v in values if not math.isnan(v)]
    return statistics.fmean(values) if values else math.nan


def final_eval(rows: list[dict]) -> float:
    """The last evaluation's return (``train.eval_every``), mean over the learning groups; NaN without one."""
    for row in reversed(rows):
        values = [row.get(f"eval/{g}/episode_return", math.nan) for g in learning_groups(row)]
        values = [v for v in values if not math.isnan(v)]
        if values:
            return statistics.fmean(values)
    return math.nan


def to_target(rows: list[dict], target: float | None) -> tuple[float, float]:
    """(training seconds, frames) at the first iteration where every learning group reached ``target``."""
    if target is None:
        return math.nan, math.nan
    for row in rows:
        values = [row[f"{g}/episode_return"] for g in learning_groups(row)]
        if values and all(v >= target for v in values):
            return row["wall_time"], row["frames"]
    return math.inf, math.inf


def status(run: Run) -> str:
    p = run.process
    if p is None or p.popen is None:
        return "not started"
    if p.exit_code is None:
        return "running"
    if p.exit_code == 0 and "resume with:" in _read(p.log):
        return "stopped"
    if p.exit_code == 0:
        return "done"
    return "interrupted" if p.interrupted else "failed"


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def last_line(path: Path) -> str:
    lines = [line for line in _read(path).splitlines() if line.strip()]
    return lines[-1].strip() if lines else "(no output)"


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population std over the finite values (nan, nan if none); inf if any is inf."""
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return math.nan, math.nan
    if any(math.isinf(v) for v in values):
        return math.inf, math.nan
    return statistics.fmean(values), (statistics.pstdev(values) if len(values) > 1 else 0.0)


# --------------------------------------------------------------------------- #
# Summary: markdown, CSV, plot
# --------------------------------------------------------------------------- #
CSV_FIELDS = ["point", "overrides", "seed", "status", "exit_code", "frames", "final_return", "final_eval_return",
              "time_to_target_s",
              "frames_to_target", "frames_per_s", "wall_s", "run_dir"]


def run_record(run: Run, target: float | None) -> dict:
    rows, p = run.rows, run.process
    last = rows[-1] if rows else {}
    t, f = to_target(rows, target)
    loop = last.get("wall_time", math.nan)
    return {
        "point": run.point, "overrides": " ".join(run.grid), "seed": run.seed, "status": status(run),
        "exit_code": p.exit_code if p is not None else None, "frames": last.get("frames", 0),
        "final_return": final_return(rows), "final_eval_return": final_eval(rows), "time_to_target_s": t, "frames_to_target": f,
        "frames_per_s": last["frames"] / loop if loop and loop == loop else math.nan,
        "wall_s": p.wall_s if p is not None else math.nan, "run_dir": str(run.run_dir),
    }


def _fmt(x: float, spec: str) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float) and math.isinf(x):
        return "not reached"
    return format(x, spec)


def _pm(values: Sequence[float], spec: str) -> str:
    mean, std = mean_std(values)
    if math.isinf(mean):
        reached = [v for v in values if math.isfinite(v)]
        return f"not reached by {len(values) - len(reached)}/{len(values)}"
    return "-" if math.isnan(mean) else f"{format(mean, spec)} ± {format(std, spec)}"


def summary_markdown(title: str, runs: list[Run], target: float | None, parent: Path | None = None) -> str:
    """The summary tables; paths relative to ``parent`` (where ``summary.md`` lives) when given."""

    def rel(path) -> str:
        return os.path.relpath(path, parent) if parent is not None else str(path)

    records = [run_record(r, target) for r in runs]
    points = list(dict.fromkeys(r["point"] for r in records))
    lines = [f"# {title}", "", f"final return: mean episode return (learning groups) of the last {FINAL_ITERS} "
             f"iterations; to target: training seconds and frames until every learning group's return reached "
             f"{'the target (none set)' if target is None else f'{target:g}'}; frames/s: over the "
             "training loop; eval return: the last evaluation (`train.eval_every`, deterministic), '-' without "
             "one; mean ± std over the seeds that finished.", "",
             "| point | seeds ok | final return | eval return | s to target | frames to target | frames/s |",
             "|---|---|---|---|---|---|---|"]
    for point in points:
        ok = [r for r in records if r["point"] == point and r["status"] == "done"]
        seeds = [r for r in records if r["point"] == point]
        lines.append(
            f"| {point or '(config)'} | {len(ok)}/{len(seeds)} | {_pm([r['final_return'] for r in ok], '.3f')} "
            f"| {_pm([r['final_eval_return'] for r in ok], '.3f')} | {_pm([r['time_to_target_s'] for r in ok], '.1f')} | {_pm([r['frames_to_target'] for r in ok], '.0f')} "
            f"| {_pm([r['frames_per_s'] for r in ok], '.0f')} |")
    lines += ["", "| point | seed | status | frames | final return | eval return | s to target | frames to target "
                  "| frames/s | wall s | run |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        lines.append(
            f"| {r['point'] or '(config)'} | {r['seed']} | {r['status']} | {_fmt(r['frames'], '.0f')} "
            f"| {_fmt(r['final_return'], '.3f')} | {_fmt(r['final_eval_return'], '.3f')} "
            f"| {_fmt(r['time_to_target_s'], '.1f')} "
            f"| {_fmt(r['frames_to_target'], '.0f')} | {_fmt(r['frames_per_s'], '.0f')} | {_fmt(r['wall_s'], '.1f')} "
            f"| `{rel(r['run_dir'])}` |")
    notes = [f"- {run.label}: {status(run)}: {last_line(run.process.log)} (log `{rel(run.process.log)}`)"
             for run in runs if status(run) in ("failed", "interrupted", "stopped", "not started")
             and run.process is not None]
    if notes:
        lines += ["", "Runs that did not finish:", "", *notes]
    return "\n".join(lines) + "\n"


def write_summary(parent: Path, title: str, runs: list[Run], target: float | None) -> str:
    """``summary.md``, ``summary.csv`` and ``curves.png`` in ``parent``; returns the markdown."""
    text = summary_markdown(title, runs, target, parent)
    (parent / "summary.md").write_text(text)
    with (parent / "summary.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, CSV_FIELDS)
        writer.writeheader()
        writer.writerows(run_record(r, target) for r in runs)
    plot_points(parent / "curves.png", title, runs, target)
    return text


def plot_points(path: Path, title: str, runs: list[Run], target: float | None) -> None:
    """Return vs frames per grid point: the mean over its seeds and a min-max band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(8, 5))
    for point in dict.fromkeys(r.point for r in runs):
        curves = [r.rows for r in runs if r.point == point and r.rows]
        if not curves:
            continue
        length = min(len(c) for c in curves)
        frames = [row["frames"] for row in curves[0][:length]]
        # A batch in which no episode ended has no return: carry the last one over it.
        values = np.array([_carry_forward([mean_return(row) for row in c[:length]]) for c in curves])
        with np.errstate(all="ignore"), __import__("warnings").catch_warnings():
            __import__("warnings").simplefilter("ignore", RuntimeWarning)  # an all-nan column: no episode yet
            mean, low, high = np.nanmean(values, 0), np.nanmin(values, 0), np.nanmax(values, 0)
        line, = ax.plot(frames, mean, label=f"{point or 'config'} ({len(curves)} seeds)")
        ax.fill_between(frames, low, high, alpha=0.15, color=line.get_color())
    if target is not None:
        ax.axhline(target, color="grey", linestyle="--", linewidth=1)
    ax.set_title(title)
    ax.set_xlabel("frames")
    ax.set_ylabel("mean episode return (mean, min-max over seeds)")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _carry_forward(values: list[float]) -> list[float]:
    out, last = [], math.nan
    for v in values:
        last = last if math.isnan(v) else v
        out.append(last)
    return out


# --------------------------------------------------------------------------- #
# The commands: train --seeds, sweep
# --------------------------------------------------------------------------- #
