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

import itertools
import math
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence, TextIO

from torchrl_mappo.config import Config, ConfigError, load_config
from torchrl_mappo.summary import last_line, mean_return, read_rows, status, write_summary
from torchrl_mappo.threads import core_budget, thread_env

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
