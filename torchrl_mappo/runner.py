"""Many runs at once: seeds, sweeps and ablations as ``torchrl-mappo train`` processes.

Each run (a grid point x a seed) is a process of its own (threads and crashes
stay in it), ``jobs`` at a time, the cores split between them: each gets a budget of
``cores // jobs`` threads (``OMP_NUM_THREADS`` etc., which
``train.num_threads: auto`` stays within). Every
run writes its run directory under one parent that is created new::

    PARENT/
      <point>/seed0/  ...         one run directory per run (``<point>/`` only for sweeps)
      <point>/seed0.log           the run's console output
      summary.md  summary.csv     per run and mean ± std per grid point
      curves.png                  return vs frames: mean line, min-max band per grid point

Ctrl-C (SIGINT) or SIGTERM goes to every running run, which finishes its
iteration, writes a checkpoint and prints its resume command; runs not
started yet are not started. A second Ctrl-C kills them. A run that fails is
reported and the others go on.

The runner itself does no torch work: the runs do.
"""
from __future__ import annotations

import csv
import itertools
import math
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence, TextIO

from torchrl_mappo.config import Config, ConfigError, load_config
from torchrl_mappo.threads import core_budget, thread_env

FINAL_ITERS = 3
POLL_S = 0.2


# --------------------------------------------------------------------------- #
# A pool of processes, N at a time
# --------------------------------------------------------------------------- #
@dataclass
class Process:
    """One command to run, and (once it ran) how it went."""

    cmd: list[str]
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    timeout: float | None = None
    exit_code: int | None = None
    start: float = math.nan  # unix time
    wall_s: float = math.nan
    peak_rss_mib: float = math.nan
    cpu_s: float = math.nan
    interrupted: bool = False  # got the stop signal while running
    popen: subprocess.Popen | None = None


def run_processes(
    procs: Sequence[Process],
    jobs: int,
    *,
    on_start: Callable[[Process], None] | None = None,
    on_end: Callable[[Process], None] | None = None,
    on_poll: Callable[[], None] | None = None,
    cwd: str | Path | None = None,
) -> bool:
    """Run ``procs``, ``jobs`` at a time, in order; return ``False`` if a stop signal cut it short.

    Each process runs in a session of its own (it and any worker it starts),
    its output to its log. SIGINT/SIGTERM to this process is forwarded to
    every running one (SIGINT) and nothing more is started; a second one
    SIGKILLs them. ``exit_code``, ``wall_s``, peak RSS and CPU seconds (this
    process's own, from ``os.wait4``) are filled in; a process past its
    ``timeout`` is killed with its session.
    """
    pending, running = list(procs), []
    stops: list[int] = []  # the handler only records; the loop forwards (no race with a start)
    forwarded = 0
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {s: signal.signal(s, lambda signum, frame: stops.append(signum))
                    for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while pending or running:
            if len(stops) > forwarded:
                forwarded = len(stops)
                pending.clear()
                for p in running:
                    _signal_group(p, signal.SIGINT if forwarded == 1 else signal.SIGKILL)
                    p.interrupted = True
            while pending and len(running) < jobs and not stops:
                p = pending.pop(0)
                p.log.parent.mkdir(parents=True, exist_ok=True)
                with p.log.open("w") as out:
                    p.start = time.time()
                    p.popen = subprocess.Popen(
                        p.cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                        env={**os.environ, "PYTHONUNBUFFERED": "1", **p.env}, start_new_session=True,
                    )
                running.append(p)
                if on_start is not None:
                    on_start(p)
            for p in list(running):
                pid, status, usage = os.wait4(p.popen.pid, os.WNOHANG)
                if not pid and p.timeout is not None and time.time() - p.start > p.timeout:
                    _signal_group(p, signal.SIGKILL)
                    pid, status, usage = os.wait4(p.popen.pid, 0)
                    with p.log.open("a") as out:
                        out.write(f"\n[runner] killed after {p.timeout:.0f} s (timeout)\n")
                if pid:
                    p.wall_s = time.time() - p.start
                    p.exit_code = p.popen.returncode = os.waitstatus_to_exitcode(status)
                    p.peak_rss_mib, p.cpu_s = usage.ru_maxrss / 1024.0, usage.ru_utime + usage.ru_stime
                    running.remove(p)
                    if on_end is not None:
                        on_end(p)
            if on_poll is not None:
                on_poll()
            if running:
                time.sleep(POLL_S)
    finally:
        for p in running:  # an exception in a callback: leave nothing behind
            _signal_group(p, signal.SIGKILL)
            p.popen.wait()
        for s, handler in previous.items():
            signal.signal(s, handler)
    return not stops


def _signal_group(p: Process, sig: int) -> None:
    try:
        os.killpg(p.popen.pid, sig)
    except ProcessLookupError:
        pass


# --------------------------------------------------------------------------- #
# Runs of torchrl-mappo train: plan, validate, launch, summarise
# --------------------------------------------------------------------------- #
@dataclass
class Run:
    """One training run: a grid point (its overrides) and a seed."""

    point: str  # "" for plain seeds
    grid: list[str]  # the point's overrides
    overrides: list[str]  # everything the run is given: the user's, then the point's, then its seed
    seed: int
    run_dir: Path
    process: Process | None = None
    rows: list[dict] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.point} seed {self.seed}" if self.point else f"seed {self.seed}"


def parse_grid(specs: Sequence[str]) -> list[tuple[str, list[str]]]:
    """``["loss.clip_epsilon=0.2,0.3", ...]`` -> ``[("loss.clip_epsilon", ["0.2", "0.3"]), ...]``.

    Values are split on commas outside brackets, so ``model.hidden_sizes=[64,64],[256,256]``
    gives two values.
    """
    grid = []
    for spec in specs:
        key, eq, raw = spec.partition("=")
        key = key.strip()
        values = _split_top_level(raw)
        if not eq or "." not in key or not all(key.split(".")) or not all(values):
            raise ConfigError(
                f"--grid {spec!r}: expected section.field=value1,value2,... e.g. --grid train.lr=3e-4,1e-3"
            )
        if key in (k for k, _ in grid):
            raise ConfigError(f"--grid {spec!r}: {key} is already a grid axis; give its values in one --grid")
        grid.append((key, values))
    return grid


def _split_top_level(raw: str) -> list[str]:
    values, depth, current = [], 0, ""
    for ch in raw:
        depth += (ch in "[{") - (ch in "]}")
        if ch == "," and depth == 0:
            values.append(current.strip())
            current = ""
        else:
            current += ch
    values.append(current.strip())
    return values


def parse_seeds(items: Sequence[str]) -> tuple[list[int], list[str]]:
    """``--seeds`` items as seeds, and the ``section.field=value`` overrides that followed them."""
    seeds, overrides = [], []
    for item in items:
        if "=" in item:
            overrides.append(item)
            continue
        try:
            seeds.append(int(item))
        except ValueError:
            raise ConfigError(f"--seeds: {item!r} is not a seed; give integers, e.g. --seeds 0 1 2") from None
    return seeds, overrides


def grid_points(grid: Sequence[tuple[str, list[str]]]) -> dict[str, list[str]]:
    """Every combination of the grid: ``{label: overrides}``, the label usable as a directory name."""
    fields = [key.split(".")[-1] for key, _ in grid]
    names = fields if len(set(fields)) == len(fields) else [key for key, _ in grid]
    points = {}
    for combo in itertools.product(*(values for _, values in grid)):
        overrides = [f"{key}={value}" for (key, _), value in zip(grid, combo)]
        label = ",".join(f"{name}={_plain(value)}" for name, value in zip(names, combo))
        if label in points:
            raise ConfigError(f"--grid: two values of one axis give the same run ({label}); drop the duplicate")
        points[label] = overrides
    return points


def _plain(value: str) -> str:
    """A grid value as part of a directory name: ``[64,64]`` -> ``64-64``."""
    value = value.replace(",", "-").replace(" ", "")
    return "".join(c if c.isalnum() or c in ".-_+" else "" for c in value) or "_"


def plan_runs(
    config: str | Path, points: dict[str, list[str]], seeds: Sequence[int], overrides: Sequence[str], parent: Path
) -> list[Run]:
    """One run per grid point x seed, each config loaded (and so validated) before anything starts."""
    if not seeds:
        raise ConfigError("--seeds: give at least one seed, e.g. --seeds 0 1 2")
    if any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds {' '.join(map(str, seeds))}: seeds must be distinct and >= 0")
    runs = []
    for point, point_overrides in points.items():
        for seed in seeds:
            where = parent / point if point else parent
            run = Run(point, point_overrides, [*overrides, *point_overrides, f"train.seed={seed}"], seed,
                      where / f"seed{seed}")
            try:
                load_config(config, run.overrides)
            except ConfigError as err:
                raise ConfigError(f"grid point {point}: {err}" if point else str(err)) from None
            runs.append(run)
    return runs


def make_parent(base: Config, config: str | Path, kind: str, out: str | Path | None) -> Path:
    """A new directory for the runs: ``out``, or ``<run.dir>/<config stem>-<kind>-<time>[-N]``.

    Created with ``mkdir(exist_ok=False)``: an existing path is never reused.
    """
    if out is not None:
        path = Path(out)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.mkdir()
        except FileExistsError:
            raise ConfigError(f"--out {str(out)!r} already exists; choose a new directory") from None
        return path
    root = Path(base.run.dir)
    root.mkdir(parents=True, exist_ok=True)
    name = f"{Path(config).stem}-{kind}-{time.strftime('%Y%m%d-%H%M%S')}"
    for n in itertools.count():
        path = root / (name if n == 0 else f"{name}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise AssertionError("unreachable")


def train_command(config: str | Path, run: Run, extra: Sequence[str] = ()) -> list[str]:
    """``python -m torchrl_mappo train CONFIG ...`` for ``run`` (its run directory last)."""
    return [
        sys.executable, "-m", "torchrl_mappo", "train", str(config), *run.overrides, *extra,
        "run.progress_bar=false", f"run.dir={run.run_dir.parent}", f"run.name={run.run_dir.name}",
    ]


def child_env(threads: int) -> dict[str, str]:
    """A budget of ``threads`` cores for the child (``OMP_NUM_THREADS`` ...: ``num_threads: auto``
    stays within it, ``null`` takes all of it, a number is used as given), and this checkout of
    the package first on its path."""
    package_root = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
    return {**thread_env(threads), "PYTHONPATH": path}


def run_all(
    config: str | Path,
    runs: list[Run],
    *,
    jobs: int | None,
    parent: Path,
    cores: int | None = None,
    extra: Sequence[str] = (),
    stream: TextIO | None = None,
) -> bool:
    """Train every run, ``jobs`` at a time (default: one per core), one progress line per run on ``stream``.

    Returns ``False`` if Ctrl-C / SIGTERM stopped it (runs then checkpoint
    and print their resume command). Every run's metrics rows end up in
    :attr:`Run.rows`.
    """
    cores = core_budget() if cores is None else cores
    jobs = cores if jobs is None else jobs
    if jobs < 1:
        raise ConfigError(f"--jobs={jobs}: must be a positive integer")
    jobs = min(jobs, len(runs))
    threads = max(1, cores // jobs)
    stream = stream if stream is not None else sys.stdout
    for run in runs:
        run.process = Process(train_command(config, run, extra), run.run_dir.with_suffix(".log"),
                              child_env(threads))
    progress = Progress(runs, stream)
    print(f"{len(runs)} runs, {jobs} at a time, at most {threads} thread(s) each ({cores} cores): {parent}",
          file=stream, flush=True)
    finished = run_processes([r.process for r in runs], jobs, on_start=progress.started,
                             on_end=progress.ended, on_poll=progress.poll)
    for run in runs:
        run.rows = read_rows(run.run_dir)
    return finished


# --------------------------------------------------------------------------- #
# Progress: one line per run
# --------------------------------------------------------------------------- #
class Progress:
    """One line per run: redrawn in place on a terminal, else printed at start, every ``every`` s, and end."""

    def __init__(self, runs: list[Run], stream: TextIO, every: float = 30.0):
        self.runs, self.stream, self.every = runs, stream, every
        self.by_proc = {id(r.process): r for r in runs}
        self.tty = stream.isatty()
        self.drawn = 0
        self.last = time.time()

    def line(self, run: Run) -> str:
        p = run.process
        if p.popen is None:
            return f"{run.label}: waiting"
        rows = read_rows(run.run_dir)
        state = "running" if p.exit_code is None else status(run)
        if not rows:
            return f"{run.label}: {state}, starting ({time.time() - p.start:.0f} s)"
        last = rows[-1]
        seconds = time.time() - p.start if p.exit_code is None else p.wall_s
        return (f"{run.label}: {state}, {last['frames']:.0f} frames, return {mean_return(last):.3f}, "
                f"{last['frames'] / last['wall_time']:.0f} frames/s, {seconds:.0f} s")

    def started(self, p: Process) -> None:
        if not self.tty:
            print(f"[{time.strftime('%H:%M:%S')}] started {self.by_proc[id(p)].label}: log {p.log}",
                  file=self.stream, flush=True)

    def ended(self, p: Process) -> None:
        self.last = 0.0  # redraw now: a terminal shows every run's final line
        if not self.tty:
            run = self.by_proc[id(p)]
            print(f"[{time.strftime('%H:%M:%S')}] {self.line(run)}{_failure_hint(run)}", file=self.stream, flush=True)

    def poll(self) -> None:
        now = time.time()
        if self.tty:
            if now - self.last < 1.0:
                return
            if self.drawn:
                self.stream.write(f"\x1b[{self.drawn}F")
            lines = [self.line(r) for r in self.runs]
            self.stream.write("".join(f"\x1b[2K{text}\n" for text in lines))
            self.stream.flush()
            self.drawn, self.last = len(lines), now
        elif now - self.last >= self.every:
            for r in self.runs:
                if r.process.popen is not None and r.process.exit_code is None:
                    print(f"[{time.strftime('%H:%M:%S')}] {self.line(r)}", file=self.stream, flush=True)
            self.last = now


def _failure_hint(run: Run) -> str:
    if status(run) != "failed":
        return ""
    return f" ({last_line(run.process.log)}; log {run.process.log})"


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
CSV_FIELDS = ["point", "overrides", "seed", "status", "exit_code", "frames", "final_return", "time_to_target_s",
              "frames_to_target", "frames_per_s", "wall_s", "run_dir"]


def run_record(run: Run, target: float | None) -> dict:
    rows, p = run.rows, run.process
    last = rows[-1] if rows else {}
    t, f = to_target(rows, target)
    loop = last.get("wall_time", math.nan)
    return {
        "point": run.point, "overrides": " ".join(run.grid), "seed": run.seed, "status": status(run),
        "exit_code": p.exit_code if p is not None else None, "frames": last.get("frames", 0),
        "final_return": final_return(rows), "time_to_target_s": t, "frames_to_target": f,
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
             "training loop; mean ± std over the seeds that finished.", "",
             "| point | seeds ok | final return | s to target | frames to target | frames/s |",
             "|---|---|---|---|---|---|"]
    for point in points:
        ok = [r for r in records if r["point"] == point and r["status"] == "done"]
        seeds = [r for r in records if r["point"] == point]
        lines.append(
            f"| {point or '(config)'} | {len(ok)}/{len(seeds)} | {_pm([r['final_return'] for r in ok], '.3f')} "
            f"| {_pm([r['time_to_target_s'] for r in ok], '.1f')} | {_pm([r['frames_to_target'] for r in ok], '.0f')} "
            f"| {_pm([r['frames_per_s'] for r in ok], '.0f')} |")
    lines += ["", "| point | seed | status | frames | final return | s to target | frames to target | frames/s "
                  "| wall s | run |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        lines.append(
            f"| {r['point'] or '(config)'} | {r['seed']} | {r['status']} | {_fmt(r['frames'], '.0f')} "
            f"| {_fmt(r['final_return'], '.3f')} | {_fmt(r['time_to_target_s'], '.1f')} "
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
def sweep(
    config: str | Path,
    *,
    grid: Sequence[str] = (),
    seeds: Sequence[int] = (0,),
    jobs: int | None = None,
    overrides: Sequence[str] = (),
    out: str | Path | None = None,
    kind: str = "sweep",
    target: float | None = None,
    stream: TextIO | None = None,
) -> tuple[Path, list[Run], bool]:
    """Train the product of ``grid`` x ``seeds``; write the summary into a new parent directory.

    ``target``: the return the summary times (default ``train.target_return``,
    which also stops each run when reached; this one does not). Returns
    (parent directory, runs, whether every run finished). Bad input
    (grid syntax, an override the config rejects, ``jobs`` < 1) raises
    :class:`ConfigError` before anything is created or started.
    """
    if jobs is not None and jobs < 1:
        raise ConfigError(f"--jobs={jobs}: must be a positive integer")
    points = grid_points(parse_grid(grid)) if grid else {"": []}
    base = load_config(config, overrides)
    plan_runs(config, points, seeds, overrides, Path("."))  # validate every run before creating anything
    parent = make_parent(base, config, kind, out)
    runs = plan_runs(config, points, seeds, overrides, parent)
    finished = run_all(config, runs, jobs=jobs, parent=parent, stream=stream)
    title = f"{kind} of {config}: {len(points)} point(s) x {len(seeds)} seed(s)"
    target = target if target is not None else base.train.target_return
    write_summary(parent, title, runs, target)
    return parent, runs, finished


def report(parent: Path, runs: list[Run], finished: bool, stream: TextIO | None = None) -> int:
    """Print the summary and each stopped run's resume command; the exit code of the whole."""
    stream = stream if stream is not None else sys.stdout
    print((parent / "summary.md").read_text(), file=stream)
    for run in runs:
        if status(run) == "stopped":
            print(f"{run.label}: resume with: torchrl-mappo train --resume {run.run_dir}", file=stream)
    print(f"table: {parent / 'summary.md'}\ncsv: {parent / 'summary.csv'}\nplot: {parent / 'curves.png'}",
          file=stream, flush=True)
    if not finished:
        return 130
    return 0 if all(status(r) == "done" for r in runs) else 1
