"""The VMAS suite: one recipe on every task, evaluation returns at 120k frames and at the end, vs BenchMARL.

    python benchmarks/suite.py --out examples/results/suite                    # every task, 3 seeds, 1M frames
    python benchmarks/suite.py --tasks dispersion wheel --frames 120000 --seeds 0 1 2 --jobs 2
    python benchmarks/suite.py --out examples/results/suite --vs benchmarl --benchmarl-seeds 0 1 2
    python benchmarks/suite.py --out examples/results/suite --report-only      # tables from the runs already there

Each task runs ``torchrl-mappo train CONFIG`` (default ``configs/vmas.yaml``)
with BenchMARL 1.5.2's task kwargs (:data:`TASKS`, read from its
``conf/task/vmas/*.yaml``), ``train.total_frames=--frames`` and an evaluation
(``train.eval_every``: deterministic, ``--eval-episodes`` episodes on an env
of its own) every ``--eval-every`` frames, so one run gives the return at
120k frames and at the end. ``--vs benchmarl`` also runs BenchMARL's MAPPO
with its own defaults for ``--benchmarl-frames`` (120k) frames in its
virtualenv (``bash benchmarks/setup_benchmarl.sh``); its evaluation (10
deterministic episodes at each 120k frames) is read from its curve.

Runs go through :mod:`torchrl_mappo.runner`, ``--jobs`` at a time with the
cores split between them; a run whose directory already holds a finished
curve is not run again, so an interrupted suite continues where it stopped.

Per task it reports: evaluation return at 120k frames and at the end (mean
± std over seeds), the best evaluation, stability (end >= 0.9 x best, for a
positive best), frames/s, and BenchMARL's evaluation return at 120k; as
``suite.md``, ``suite.csv`` and ``suite.png`` (a heatmap: task x budget, ours
and BenchMARL, each cell the return relative to the task's best).
"""
from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))  # this checkout's package

from torchrl_mappo.runner import Process, run_processes  # noqa: E402
from torchrl_mappo.summary import mean_std, read_rows  # noqa: E402
from torchrl_mappo.threads import core_budget, thread_env  # noqa: E402

BENCHMARL_PYTHON = HERE / ".venv-benchmarl" / "bin" / "python"

# BenchMARL 1.5.2's VMAS task configs (conf/task/vmas/<task>.yaml), max_steps apart.
TASKS: dict[str, dict] = {
    "navigation": {"max_steps": 100, "kwargs": {
        "n_agents": 3, "collisions": True, "agents_with_same_goal": 1, "split_goals": False,
        "observe_all_goals": False, "shared_rew": False, "lidar_range": 0.35, "agent_radius": 0.1}},
    "balance": {"max_steps": 100, "kwargs": {"n_agents": 4, "random_package_pos_on_line": True, "package_mass": 5}},
    "sampling": {"max_steps": 100, "kwargs": {
        "n_agents": 3, "shared_rew": False, "n_gaussians": 3, "lidar_range": 0.2, "cov": 0.05, "collisions": True,
        "spawn_same_pos": False}},
    "dispersion": {"max_steps": 100, "kwargs": {
        "n_agents": 4, "n_food": 4, "share_reward": True, "food_radius": 0.02, "penalise_by_time": False}},
    "wheel": {"max_steps": 100, "kwargs": {"n_agents": 4, "line_length": 1, "line_mass": 30, "desired_velocity": 0.05}},
    "transport": {"max_steps": 100, "kwargs": {
        "n_agents": 4, "n_packages": 1, "package_width": 0.15, "package_length": 0.15, "package_mass": 50}},
    "reverse_transport": {"max_steps": 100, "kwargs": {
        "n_agents": 4, "package_width": 0.6, "package_length": 0.6, "package_mass": 50}},
    "give_way": {"max_steps": 100, "kwargs": {
        "mirror_passage": False, "observe_rel_pos": False, "done_on_completion": False, "final_reward": 0.01}},
    "passage": {"max_steps": 500, "kwargs": {"n_passages": 1, "shared_reward": True}},
    "discovery": {"max_steps": 100, "kwargs": {
        "n_agents": 5, "n_targets": 7, "lidar_range": 0.35, "covering_range": 0.25, "agents_per_target": 2,
        "targets_respawn": True, "shared_reward": True}},
}
AT = 120_000  # the frames at which ours and BenchMARL are compared


def yaml_flow(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {yaml_flow(v)}" for k, v in value.items()) + "}"
    return str(value)


def ours_cmd(args, task: str, seed: int, run_dir: Path) -> list[str]:
    spec = TASKS[task]
    return [sys.executable, "-m", "torchrl_mappo", "train", str(args.config),
            f"env.scenario={task}", f"env.scenario_kwargs={yaml_flow(spec['kwargs'])}",
            f"env.max_steps={spec['max_steps']}", f"train.total_frames={args.frames}", f"train.seed={seed}",
            f"train.eval_every={args.eval_every}", f"train.eval_episodes={args.eval_episodes}",
            "run.progress_bar=false", "run.checkpoint_every=0", f"run.dir={run_dir.parent}",
            f"run.name={run_dir.name}", *args.set]


def benchmarl_cmd(args, task: str, seed: int, run_dir: Path) -> list[str]:
    return [str(args.benchmarl_python), str(HERE / "benchmarl_runner.py"), "--task", task, "--seed", str(seed),
            "--frames", str(args.benchmarl_frames), "--out", str(run_dir)]


def ours_done(run_dir: Path, frames: int) -> bool:
    rows = read_rows(run_dir)
    return bool(rows) and rows[-1].get("frames", 0) >= frames


def benchmarl_curve(run_dir: Path) -> list[dict]:
    path = run_dir / "curve.csv"
    if not path.is_file():
        return []
    with path.open() as f:
        return [{k: float(v) if v not in ("", None) else math.nan for k, v in row.items()} for row in csv.DictReader(f)]


def benchmarl_done(run_dir: Path, frames: int) -> bool:
    curve = benchmarl_curve(run_dir)
    return (run_dir / "meta.json").is_file() and bool(curve) and curve[-1]["frames"] >= frames


# --------------------------------------------------------------------------- #
def evals(rows: list[dict]) -> list[tuple[float, float]]:
    """(frames, evaluation return over the learning groups) of a run's evaluations."""
    out = []
    for row in rows:
        values = [v for k, v in row.items() if k.startswith("eval/") and k.endswith("/episode_return")
                  and not math.isnan(v)]
        if values:
            out.append((row["frames"], statistics.fmean(values)))
    return out


def eval_episodes(run_dir: Path) -> int | None:
    """The ``train.eval_episodes`` a run was trained with (its config.yaml), None if unknown."""
    import yaml

    config = run_dir / "config.yaml"
    if not config.is_file():
        return None
    return (yaml.safe_load(config.read_text()) or {}).get("train", {}).get("eval_episodes")


def eval_se(rows: list[dict], run_dir: Path) -> float:
    """How precise one of a run's evaluations is: the standard error of its mean (the episodes' std over
    the square root of the run's ``train.eval_episodes``), averaged over its evaluations and learning
    groups; nan without evaluations."""
    episodes = eval_episodes(run_dir)
    stds = [v for row in rows for k, v in row.items()
            if k.startswith("eval/") and k.endswith("/episode_return_std") and not math.isnan(v)]
    if not episodes or not stds:
        return math.nan
    return statistics.fmean(stds) / math.sqrt(episodes)


def at(points: list[tuple[float, float]], frames: float) -> float:
    """The evaluation at ``frames`` (the first at or after it)."""
    for f, v in points:
        if f >= frames:
            return v
    return math.nan


def task_record(args, task: str) -> dict:
    runs, fps, se = [], [], []
    for seed in args.seeds:
        run_dir = args.out / "runs" / task / f"seed{seed}"
        rows = read_rows(run_dir)
        if not rows:
            continue
        points = evals(rows)
        if points:
            runs.append(points)
            se.append(eval_se(rows, run_dir))
        loop = rows[-1].get("wall_time", math.nan)
        fps.append(rows[-1]["frames"] / loop if loop and loop == loop else math.nan)
    theirs = []
    for seed in args.benchmarl_seeds:
        curve = benchmarl_curve(args.out / "benchmarl" / task / f"seed{seed}")
        values = [(r["frames"], r.get("eval_return", math.nan)) for r in curve if not math.isnan(r.get("eval_return", math.nan))]
        theirs.append(at(values, AT))
    at_120k = [at(p, AT) for p in runs]
    end = [p[-1][1] for p in runs]
    best = [max(v for _, v in p) for p in runs]
    # Stable: the last evaluation keeps 90% of the best (for a positive best; else end >= best - 0.1 |best|).
    stable = [e >= (0.9 * b if b > 0 else b - 0.1 * abs(b)) for e, b in zip(end, best)]
    end_frames = max((p[-1][0] for p in runs), default=math.nan)
    return {
        "task": task, "seeds": len(runs), "eval_120k": mean_std(at_120k), "eval_end": mean_std(end),
        "best": mean_std(best), "eval_se": mean_std(se), "stable": sum(stable),
        "end_ge_120k": sum(e >= a for e, a in zip(end, at_120k)),
        "end_frames": end_frames, "fps": mean_std(fps), "benchmarl_120k": mean_std(theirs),
        "benchmarl_seeds": sum(not math.isnan(v) for v in theirs),
        # The seeds this task has (the report's seed list is the union over tasks).
        "raw": {"eval_120k": at_120k, "eval_end": end, "best": best,
                "benchmarl_120k": [v for v in theirs if not math.isnan(v)]},
    }


def verdict(r: dict) -> str:
    (ours, ours_sd), (theirs, theirs_sd) = r["eval_120k"], r["benchmarl_120k"]
    if math.isnan(ours) or math.isnan(theirs):
        return "-"
    if ours >= theirs:
        return "ours >= BenchMARL"
    noise = max(ours_sd, theirs_sd, 1e-9)
    return "below, within one std" if theirs - ours <= noise else "below"


def report(args) -> str:
    records = [task_record(args, t) for t in args.tasks]
    # The runs' own evaluation size (a --report-only call need not repeat --eval-episodes).
    sizes = sorted({n for t in args.tasks for seed in args.seeds
                    if (n := eval_episodes(args.out / "runs" / t / f"seed{seed}")) is not None})
    episodes = "/".join(map(str, sizes)) if sizes else str(args.eval_episodes)
    lines = [
        f"# VMAS suite: `{Path(args.config).relative_to(REPO) if Path(args.config).is_relative_to(REPO) else args.config}`"
        f" vs BenchMARL 1.5.2 MAPPO", "",
        f"Evaluation return (deterministic, {episodes} episodes, every {args.eval_every} frames), mean ± std "
        f"over seeds; BenchMARL: its own evaluation (10 deterministic episodes) at {AT} frames, its defaults. "
        "s.e.: the standard error of one evaluation's mean (episode std / sqrt(episodes)), averaged over a run's "
        "evaluations, mean over seeds: differences between evaluations within about twice it are noise. "
        "Stable: seeds whose last evaluation keeps >= 0.9 x their best; end >= 120k: seeds whose last evaluation "
        "is at least their 120k one.", "",
        "| task | seeds | eval @120k | BenchMARL @120k | 120k verdict | eval @end | frames | best | s.e. | stable "
        "| end >= 120k | frames/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        lines.append(
            f"| {r['task']} | {r['seeds']} | {fmt(r['eval_120k'])} | {fmt(r['benchmarl_120k'])} "
            f"({r['benchmarl_seeds']}) | {verdict(r)} | {fmt(r['eval_end'])} | {fmt_frames(r['end_frames'])} "
            f"| {fmt(r['best'])} | {fmt_value(r['eval_se'][0])} | {r['stable']}/{r['seeds']} "
            f"| {r['end_ge_120k']}/{r['seeds']} "
            f"| {fmt(r['fps'], '.0f')} |")
    text = "\n".join(lines) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "suite.md").write_text(text)
    with (args.out / "suite.csv").open("w", newline="") as f:
        fields = ["task", "seeds", "eval_120k_mean", "eval_120k_std", "benchmarl_120k_mean", "benchmarl_120k_std",
                  "benchmarl_seeds", "eval_end_mean", "eval_end_std", "end_frames", "best_mean", "eval_se_mean",
                  "stable",
                  "end_ge_120k", "fps_mean", "per_seed_eval_120k", "per_seed_eval_end", "per_seed_benchmarl_120k"]
        w = csv.DictWriter(f, fields)
        w.writeheader()
        for r in records:
            w.writerow({
                "task": r["task"], "seeds": r["seeds"], "eval_120k_mean": r["eval_120k"][0],
                "eval_120k_std": r["eval_120k"][1], "benchmarl_120k_mean": r["benchmarl_120k"][0],
                "benchmarl_120k_std": r["benchmarl_120k"][1], "benchmarl_seeds": r["benchmarl_seeds"],
                "eval_end_mean": r["eval_end"][0], "eval_end_std": r["eval_end"][1], "end_frames": r["end_frames"],
                "best_mean": r["best"][0], "eval_se_mean": r["eval_se"][0], "stable": r["stable"],
                "end_ge_120k": r["end_ge_120k"],
                "fps_mean": r["fps"][0], "per_seed_eval_120k": " ".join(f"{v:.4f}" for v in r["raw"]["eval_120k"]),
                "per_seed_eval_end": " ".join(f"{v:.4f}" for v in r["raw"]["eval_end"]),
                "per_seed_benchmarl_120k": " ".join(f"{v:.4f}" for v in r["raw"]["benchmarl_120k"]),
            })
    heatmap(records, args.out / "suite.png")
    return text


def fmt(ms: tuple[float, float], spec: str = ".3f") -> str:
    m, s = ms
    return "-" if math.isnan(m) else f"{m:{spec}} ± {s:{spec}}"


def fmt_value(v: float, spec: str = ".3f") -> str:
    return "-" if math.isnan(v) else f"{v:{spec}}"


def fmt_frames(f: float) -> str:
    return "-" if math.isnan(f) else f"{f / 1e6:.2f}M" if f >= 1e6 else f"{f / 1e3:.0f}k"


def heatmap(records: list[dict], path: Path) -> None:
    """Task x (ours @120k, BenchMARL @120k, ours @end): each cell the mean return, coloured by its
    share of the task's range over the three (so tasks with different scales share one colour map)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = ["ours @120k", "BenchMARL @120k", "ours @end"]
    values = [[r["eval_120k"][0], r["benchmarl_120k"][0], r["eval_end"][0]] for r in records]
    shade = []
    for row in values:
        finite = [v for v in row if not math.isnan(v)]
        lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
        shade.append([math.nan if math.isnan(v) else (v - lo) / (hi - lo) if hi > lo else 0.5 for v in row])
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(records) + 1.5))
    ax.imshow(shade, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(cols)), cols)
    ax.set_yticks(range(len(records)), [r["task"] for r in records])
    for i, row in enumerate(values):
        for j, v in enumerate(row):
            ax.text(j, i, "-" if math.isnan(v) else f"{v:.3g}", ha="center", va="center",
                    color="white" if not math.isnan(shade[i][j]) and shade[i][j] < 0.5 else "black", fontsize=8)
    ax.set_title("VMAS suite: evaluation return (colour: share of the task's range)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------- #
def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS), metavar="TASK")
    p.add_argument("--config", type=Path, default=REPO / "configs" / "vmas.yaml")
    p.add_argument("--frames", type=int, default=1_000_000, help="our budget per run (default 1M)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--eval-every", type=int, default=60_000, help="frames between evaluations (default 60k)")
    p.add_argument("--eval-episodes", type=int, default=30)
    p.add_argument("--set", nargs="*", default=[], metavar="section.field=value",
                   help="more overrides for our runs (e.g. train.frames_per_batch=6000)")
    p.add_argument("--vs", choices=["benchmarl"], default=None)
    p.add_argument("--benchmarl-seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--benchmarl-frames", type=int, default=AT)
    p.add_argument("--benchmarl-python", type=Path, default=BENCHMARL_PYTHON)
    p.add_argument("--benchmarl-only", action="store_true", help="with --vs benchmarl: run only BenchMARL's runs")
    p.add_argument("--jobs", type=int, default=1, help="runs at a time, the cores split between them (default 1)")
    p.add_argument("--threads", type=int, default=None,
                   help="math-library threads per run, both systems (default: cores / jobs with --jobs > 1, "
                        "else each system's own default); on a busy machine 1 avoids torch's oversubscription")
    p.add_argument("--out", type=Path, default=REPO / "examples" / "results" / "suite")
    p.add_argument("--report-only", action="store_true", help="only write the tables from the runs already there")
    args = p.parse_args(argv)
    if args.jobs < 1:
        p.error("--jobs must be >= 1")
    if args.vs == "benchmarl" and not args.report_only and not args.benchmarl_python.is_file():
        p.error(f"--vs benchmarl: no BenchMARL at {args.benchmarl_python}; run `bash benchmarks/setup_benchmarl.sh`")
    if args.eval_every <= 0 or AT % args.eval_every:
        p.error(f"--eval-every must divide {AT} (the frames both systems are compared at)")
    args.out = args.out.resolve()
    args.config = args.config.resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.vs:  # report BenchMARL runs already there, whatever the seeds
        args.benchmarl_seeds = sorted({int(p.name[4:]) for t in args.tasks
                                       for p in (args.out / "benchmarl" / t).glob("seed*")})
    procs: list[Process] = []
    if not args.report_only:
        threads = args.threads if args.threads is not None else (
            max(1, core_budget() // args.jobs) if args.jobs > 1 else None)
        env = thread_env(threads) if threads is not None else {}
        for task in args.tasks:
            for seed in [] if args.benchmarl_only else args.seeds:
                run_dir = args.out / "runs" / task / f"seed{seed}"
                if not ours_done(run_dir, args.frames):
                    if run_dir.exists():
                        print(f"{run_dir} is unfinished: move it away to rerun it; skipped", flush=True)
                        continue
                    run_dir.parent.mkdir(parents=True, exist_ok=True)
                    procs.append(Process(ours_cmd(args, task, seed, run_dir), run_dir.parent / f"seed{seed}.log", env))
            if args.vs == "benchmarl":
                for seed in args.benchmarl_seeds:
                    run_dir = args.out / "benchmarl" / task / f"seed{seed}"
                    if not benchmarl_done(run_dir, args.benchmarl_frames):
                        run_dir.mkdir(parents=True, exist_ok=True)
                        procs.append(Process(benchmarl_cmd(args, task, seed, run_dir), run_dir / "output.log", env))

        def started(p: Process) -> None:
            print(f"[{time.strftime('%H:%M:%S')}] start: {' '.join(p.cmd[1:])}", flush=True)

        def ended(p: Process) -> None:
            print(f"[{time.strftime('%H:%M:%S')}] exit {p.exit_code} after {p.wall_s:.0f} s: {p.log}", flush=True)

        print(f"{len(procs)} runs to do, {args.jobs} at a time", flush=True)
        if not run_processes(procs, args.jobs, on_start=started, on_end=ended, cwd=REPO):
            print("stopped: the runs that finished are reported", flush=True)
    print(report(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
