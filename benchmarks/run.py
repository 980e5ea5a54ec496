"""Benchmark harness: torchrl_mappo (and BenchMARL) on the same task, same machine.

Every training run is a process of its own, so wall time includes start-up
(imports, env and network construction) and peak RSS is that process's
(from ``os.wait4``; with worker processes, the largest single one). Per run and as the median over seeds it reports: wall
time, frames/s (whole process and training loop), the time and frames to
reach the target return, the final return and the peak RSS; and writes a
markdown table, a CSV of every run, the learning curves and a PNG (return vs
wall time and vs frames) into the output directory.

    python benchmarks/run.py --task vmas/navigation --frames 120000 --seeds 3 --vs benchmarl
    python benchmarks/run.py --task vmas/navigation --frames 120000 --seeds 3 --vs benchmarl --mode matched
    python benchmarks/run.py --task vmas/navigation --frames 120000 --seeds 3 --vs benchmarl --mode default matched
    python benchmarks/run.py --task vmas/navigation --frames 60000 --seeds 3 --agents 3 6 12 24
    python benchmarks/run.py --task mpe/simple_spread --frames 20000 --seeds 3 --collectors sync multi_sync:2

``--vs benchmarl`` runs BenchMARL 1.5.2's MAPPO in its own virtualenv
(``bash benchmarks/setup_benchmarl.sh``), alternating with ours (ours,
theirs, ours, theirs...) so that slow drifts of the machine hit both.
``--mode default``: each system with its own default config (ours: the
task's YAML in ``configs/``). ``--mode matched``: ours with BenchMARL's MAPPO
hyperparameters (:data:`MATCHED`). Both modes at once: BenchMARL (which always
runs its own defaults) runs once per seed and is compared with each.

Runs go through :mod:`torchrl_mappo.runner`, one at a time unless
``--jobs N`` (then each gets cores/N threads: ``train.num_threads`` for ours,
``OMP_NUM_THREADS`` for both); with one job ours uses its config's
``num_threads`` (``auto``) and BenchMARL torch's default. Every run is a
process of its own, so what this script imports adds nothing to them.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))  # this checkout's runner

from torchrl_mappo.runner import Process, run_processes  # noqa: E402
from torchrl_mappo.threads import core_budget, thread_env  # noqa: E402

BENCHMARL_PYTHON = HERE / ".venv-benchmarl" / "bin" / "python"

# task -> our config, the default target return (from the issue's BenchMARL
# anchors: return reached by BenchMARL's MAPPO in 120k frames) and BenchMARL's
# BenchMARL task name (None: BenchMARL is not run on it); ``benchmarl_env``: our
# overrides that give ours BenchMARL's env with ``--vs benchmarl`` (its MPE tasks
# run 100 steps with continuous actions). ``scale_world``: with
# ``--agents``, the spawning area grows with the agents (same density as 4
# agents in VMAS's default [-1, 1]^2); at the default size 24 agents and their
# 24 goals do not fit and VMAS's spawn loop never ends.
TASKS = {
    "vmas/navigation": {"config": "configs/vmas_navigation.yaml", "target": 0.9, "benchmarl": "navigation",
                        "scale_world": True},
    "vmas/balance": {"config": "configs/vmas_balance.yaml", "target": 27.0, "benchmarl": "balance"},
    "mpe/simple_spread": {"config": "configs/mpe_simple_spread.yaml", "target": None,
                          "benchmarl": "pettingzoo/simple_spread",
                          "benchmarl_env": ["env.max_steps=100", "env.continuous_actions=true"]},
}

# BenchMARL 1.5.2's defaults (conf/experiment/base_experiment.yaml,
# conf/algorithm/mappo.yaml, conf/model/layers/mlp.yaml) as our overrides.
# What cannot be matched: BenchMARL's policy std is an output of the network
# (biased softplus), ours a learned state-independent parameter; its Adam
# has eps=1e-6 (ours 1e-8); it evaluates every 120k frames.
MATCHED = [
    "train.frames_per_batch=6000",   # on_policy_collected_frames_per_batch
    "env.num_envs=10",               # on_policy_n_envs_per_worker
    "train.num_epochs=45",           # on_policy_n_minibatch_iters (each a pass over the batch)
    "train.minibatch_size=400",      # on_policy_minibatch_size
    "train.lr=5e-5",                 # lr
    "train.lr_schedule=constant",    # BenchMARL anneals no learning rate
    "train.max_grad_norm=5",         # clip_grad_norm: True, clip_grad_val: 5
    "loss.gamma=0.99",               # gamma
    "loss.lmbda=0.9",                # lmbda
    "loss.clip_epsilon=0.2",         # clip_epsilon
    "loss.entropy_coeff=0.0",        # entropy_coef
    "loss.critic_coeff=1.0",         # critic_coef
    "loss.loss_critic_type=l2",      # loss_critic_type
    "loss.normalize_advantage=false",  # ClipPPOLoss(normalize_advantage=False)
    "model.hidden_sizes=[256,256]",  # num_cells
    "model.activation=tanh",         # activation_class: Tanh
    "model.layer_norm=false",        # norm_class: null
    "model.share_params=true",       # share_policy_params, share_param_critic
    "model.critic_input=concat_obs",  # centralised critic over every agent's observation
]


@dataclass
class Variant:
    """One configuration measured for every seed: a label and our overrides."""

    label: str
    overrides: list[str] = field(default_factory=list)
    scenario_kwargs: dict[str, str] = field(default_factory=dict)  # both systems' env
    n_agents: int | None = None
    collector: str | None = None
    benchmarl: bool = True  # also run BenchMARL on it (with --vs benchmarl)
    benchmarl_label: str | None = None  # the BenchMARL run it is compared with (default: its own label)


@dataclass
class Result:
    system: str
    variant: str
    seed: int
    exit_code: int
    wall_s: float
    peak_rss_mib: float
    cpu_s: float
    curve: list[dict]
    meta: dict
    log: Path
    target: float | None
    startup_s: float = math.nan  # process start -> training loop start (the first frame is collected next)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and bool(self.curve)

    @property
    def frames(self) -> int:
        return int(self.curve[-1]["frames"]) if self.curve else 0

    @property
    def fps(self) -> float:
        """Frames per second of the whole process (start-up included)."""
        return self.frames / self.wall_s if self.wall_s > 0 else math.nan

    @property
    def loop_fps(self) -> float:
        """Frames per second of the training loop (start-up excluded)."""
        span = self.meta.get("unix_time_end", math.nan) - self.meta.get("unix_time_train_start", math.nan)
        return self.frames / span if span > 0 else math.nan

    @property
    def n_agents(self) -> int | None:
        return self.meta.get("n_agents")

    @property
    def agent_steps_per_s(self) -> float:
        return self.loop_fps * self.n_agents if self.n_agents else math.nan

    def to_target(self) -> tuple[float, float]:
        """(seconds since the process started, frames) at the first iteration whose return >= target."""
        if self.target is None:
            return math.nan, math.nan
        for row in self.curve:
            if row["episode_return"] >= self.target:
                return row["t"], row["frames"]
        return math.inf, math.inf

    @property
    def final_return(self) -> float:
        """Mean training return of the last 3 iterations (one iteration is noisy)."""
        values = [r["episode_return"] for r in self.curve[-3:] if math.isfinite(r["episode_return"])]
        return sum(values) / len(values) if values else math.nan

    @property
    def collect_share(self) -> float:
        c = sum(r.get("collect_s") or 0.0 for r in self.curve)
        t = sum(r.get("train_s") or 0.0 for r in self.curve)
        return c / (c + t) if c + t > 0 else math.nan


# --------------------------------------------------------------------------- #
# Running the training processes (torchrl_mappo.runner: N at a time, Ctrl-C forwarded)
# --------------------------------------------------------------------------- #
@dataclass
class Task:
    """One training process to run: which system, variant and seed, and its command."""

    system: str
    variant: Variant
    seed: int
    cmd: list[str]
    run_dir: Path
    process: object = None


def read_curve(run_dir: Path, t0: float) -> tuple[list[dict], dict]:
    curve, meta = [], {}
    if (run_dir / "curve.csv").is_file():
        with (run_dir / "curve.csv").open() as f:
            for row in csv.DictReader(f):
                parsed = {k: (float(v) if v not in ("", None) else math.nan) for k, v in row.items()}
                parsed["t"] = parsed["unix_time"] - t0
                curve.append(parsed)
    if (run_dir / "meta.json").is_file():
        meta = json.loads((run_dir / "meta.json").read_text())
    return curve, meta


def our_overrides(args, variant: Variant) -> list[str]:
    """Our config overrides for ``variant``: with ``--vs benchmarl`` the task's ``benchmarl_env`` first,
    then the variant's own, then ``--set``, then its scenario kwargs."""
    threads = [f"train.num_threads={args.threads}"] if args.threads else []
    same_env = TASKS[args.task].get("benchmarl_env", []) if args.vs == "benchmarl" else []
    return [*same_env, *variant.overrides, *threads, *args.set,
            *(f"env.scenario_kwargs.{k}={v}" for k, v in variant.scenario_kwargs.items())]


def task_ours(args, variant: Variant, seed: int, out: Path) -> Task:
    run_dir = out / "runs" / f"ours-{variant.label}-seed{seed}"
    cmd = [sys.executable, str(HERE / "ours_runner.py"), "--config", str(REPO / TASKS[args.task]["config"]),
           "--seed", str(seed), "--frames", str(args.frames), "--out", str(run_dir), *our_overrides(args, variant)]
    return Task("torchrl_mappo", variant, seed, cmd, run_dir)


def thread_share(jobs: int) -> int:
    return max(1, core_budget() // jobs)


def simulator_speed(args, variant: Variant) -> dict:
    """The bare simulator's frames/s and agent-steps/s for ``variant``'s env (``breakdown.py --simulator-only``)."""
    cmd = [sys.executable, str(HERE / "breakdown.py"), "--simulator-only", "--config",
           str(REPO / TASKS[args.task]["config"]), *our_overrides(args, variant)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        print(f"    simulator speed of {variant.label} failed: {done.stderr.strip()[-300:]}", flush=True)
        return {}
    speed = json.loads(lines[-1])
    print(f"[{time.strftime('%H:%M:%S')}] bare simulator {variant.label}: {speed}", flush=True)
    return speed


def task_benchmarl(args, variant: Variant, seed: int, out: Path) -> Task:
    run_dir = out / "runs" / f"benchmarl-{variant.label}-seed{seed}"
    cmd = [str(args.benchmarl_python), str(HERE / "benchmarl_runner.py"), "--task", TASKS[args.task]["benchmarl"],
           "--seed", str(seed), "--frames", str(args.frames), "--out", str(run_dir),
           "--model", args.benchmarl_model, "--critic-model", args.benchmarl_critic_model]
    for k, v in variant.scenario_kwargs.items():
        cmd += ["--kwarg", f"{k}={v}"]
    return Task("benchmarl", variant, seed, cmd, run_dir)


def run_tasks(args, tasks: list[Task]) -> tuple[list[Result], bool]:
    """Run the tasks ``args.jobs`` at a time (1: alone, for timings); return their results, and False on Ctrl-C."""
    # Side by side, each run gets a budget of cores/jobs threads (ours: ``auto`` stays within it).
    env = thread_env(args.threads or thread_share(args.jobs)) if args.jobs > 1 or args.threads else {}
    for t in tasks:
        t.run_dir.mkdir(parents=True, exist_ok=True)
        t.process = Process(t.cmd, t.run_dir / "output.log", env, args.timeout)
    by_proc = {id(t.process): t for t in tasks}

    def started(p: Process) -> None:
        t = by_proc[id(p)]
        print(f"[{time.strftime('%H:%M:%S')}] {t.system} {t.variant.label} seed {t.seed}: {' '.join(t.cmd)}", flush=True)

    finished = run_processes([t.process for t in tasks], args.jobs, on_start=started,
                             on_end=lambda p: report_run(by_proc[id(p)], args), cwd=REPO)
    # A run stopped by Ctrl-C has a partial curve: it is left out of the tables.
    return [result_of(t, args) for t in tasks if t.process.exit_code is not None and not t.process.interrupted], finished


def result_of(t: Task, args) -> Result:
    p = t.process
    curve, meta = read_curve(t.run_dir, p.start)
    startup = meta.get("unix_time_train_start", math.nan) - p.start
    return Result(t.system, t.variant.label, t.seed, p.exit_code, p.wall_s, p.peak_rss_mib, p.cpu_s, curve, meta,
                  p.log, args.target, startup)


def results_from_dir(out: Path, args) -> list[Result]:
    """The results of the runs already under ``out/runs`` (``--rescore``): each run's
    ``process.json`` and curve, scored against ``args.target``."""
    results = []
    for path in sorted((out / "runs").glob("*/process.json")):
        p = json.loads(path.read_text())
        system, _, rest = path.parent.name.partition("-")
        variant, _, seed = rest.rpartition("-seed")
        curve, meta = read_curve(path.parent, p["unix_time_start"])
        startup = meta.get("unix_time_train_start", math.nan) - p["unix_time_start"]
        results.append(Result("torchrl_mappo" if system == "ours" else system, variant, int(seed), p["exit_code"],
                              p["wall_s"], p["peak_rss_mib"], p["cpu_s"], curve, meta, path.parent / "output.log",
                              args.target, startup))
    return results


def report_run(t: Task, args) -> None:
    p = t.process
    (t.run_dir / "process.json").write_text(json.dumps(
        {"cmd": t.cmd, "exit_code": p.exit_code, "unix_time_start": p.start, "wall_s": p.wall_s,
         "peak_rss_mib": p.peak_rss_mib, "cpu_s": p.cpu_s, "jobs": args.jobs}))
    result = result_of(t, args)
    if not result.ok:
        tail = p.log.read_text().strip().splitlines()[-1:] if p.log.is_file() else []
        print(f"    {t.system} {t.variant.label} seed {t.seed} FAILED (exit {p.exit_code}): "
              f"{tail[0] if tail else ''}  -- see {p.log}", flush=True)
    else:
        ttt, _ = result.to_target()
        print(f"    {t.system} {t.variant.label} seed {t.seed}: {p.wall_s:.1f} s, {result.fps:.0f} frames/s, "
              f"final return {result.final_return:.3f}, to target {fmt_s(ttt)}, peak RSS {p.peak_rss_mib:.0f} MiB",
              flush=True)


# --------------------------------------------------------------------------- #
# Tables and plot
# --------------------------------------------------------------------------- #
def fmt_s(x: float) -> str:
    if isinstance(x, float) and math.isinf(x):
        return "not reached"
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.1f}"


def fmt(x, spec: str) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float) and math.isinf(x):
        return "not reached"
    return format(x, spec)


def median(values: list[float]) -> float:
    values = [v for v in values if not (isinstance(v, float) and math.isnan(v))]
    return statistics.median(values) if values else math.nan


COLUMNS = ["system", "variant", "seed", "wall s", "s to first frame", "frames", "frames/s", "loop frames/s", "agent-steps/s",
           "t→target s", "frames→target", "final return", "peak RSS MiB", "collect %", "CPU cores"]


def row_of(r: Result) -> dict:
    ttt, ftt = r.to_target()
    return {
        "system": r.system, "variant": r.variant, "seed": r.seed, "wall s": r.wall_s,
        "s to first frame": r.startup_s, "frames": r.frames,
        "frames/s": r.fps, "loop frames/s": r.loop_fps, "agent-steps/s": r.agent_steps_per_s,
        "t→target s": ttt, "frames→target": ftt, "final return": r.final_return,
        "peak RSS MiB": r.peak_rss_mib, "collect %": 100 * r.collect_share,
        "CPU cores": r.cpu_s / r.wall_s if r.wall_s > 0 else math.nan,
    }


SPECS = {"wall s": ".1f", "s to first frame": ".1f", "frames": ".0f", "frames/s": ".0f", "loop frames/s": ".0f", "agent-steps/s": ".0f",
         "t→target s": ".1f", "frames→target": ".0f", "final return": ".3f", "peak RSS MiB": ".0f",
         "collect %": ".0f", "CPU cores": ".2f"}


def markdown(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        cells = [fmt(row[c], SPECS[c]) if c in SPECS else str(row[c]) for c in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summarise(results: list[Result]) -> list[dict]:
    """Median over seeds per (system, variant); time to target: a seed that never got there counts as inf."""
    groups: dict[tuple[str, str], list[Result]] = {}
    for r in results:
        if r.ok:
            groups.setdefault((r.system, r.variant), []).append(r)
    out = []
    for (system, variant), rs in groups.items():
        rows = [row_of(r) for r in rs]
        med = {"system": system, "variant": variant, "seed": f"median of {len(rs)}"}
        for c in SPECS:
            values = [row[c] for row in rows]
            # A seed that never reached the target counts (as inf): the median stays honest.
            to_target = c in ("t→target s", "frames→target") and rs[0].target is not None
            med[c] = statistics.median(values) if to_target else median(values)
        reached = sum(math.isfinite(row["t→target s"]) for row in rows)
        if rs[0].target is not None:
            med["seed"] += f" ({reached}/{len(rs)} reached)"
        out.append(med)
    return out


def comparison(medians: list[dict], variants: list[Variant]) -> list[str]:
    """Ours / BenchMARL ratios for every variant of ours that has a BenchMARL run to compare with."""
    by = {(m["system"], m["variant"]): m for m in medians}
    against = {v.label: v.benchmarl_label or v.label for v in variants}
    lines = []
    for (system, variant), ours in by.items():
        theirs = by.get(("benchmarl", against.get(variant, variant)))
        if system != "torchrl_mappo" or theirs is None:
            continue

        def ratio(key, invert=False):
            a, b = ours[key], theirs[key]
            if not (isinstance(a, float) and isinstance(b, float)) or not (math.isfinite(a) and math.isfinite(b)) or not b:
                return "-"
            return f"{(b / a if invert else a / b):.2f}x"

        lines.append(
            f"- {variant}: time to target BenchMARL/ours = {ratio('t→target s', invert=True)}, "
            f"frames to target BenchMARL/ours = {ratio('frames→target', invert=True)}, "
            f"frames/s ours/BenchMARL = {ratio('frames/s')} (loop {ratio('loop frames/s')}), "
            f"peak RSS ours/BenchMARL = {ratio('peak RSS MiB')}, "
            f"final return {fmt(ours['final return'], '.3f')} vs {fmt(theirs['final return'], '.3f')}"
        )
    return lines


def scaling(medians: list[dict], variants: list[Variant], simulator: dict[str, dict]) -> list[str]:
    """Agent-steps/s against the number of agents, per system and collector, and the bare simulator's."""
    lines = []
    sim = [(v.n_agents, simulator[v.label].get("agent_steps_per_s")) for v in variants
           if v.n_agents is not None and simulator.get(v.label, {}).get("agent_steps_per_s")]
    sim = list(dict(sim).items())
    if len(sim) >= 2:
        (n0, a0), (n1, a1) = sim[0], sim[-1]
        lines.append("- bare simulator (no learning, zero actions): agent-steps/s "
                     + ", ".join(f"{n} agents {a:.0f}" for n, a in sim) + f"; {n0} -> {n1} agents: x{a1 / a0:.2f}")
    for system in sorted({m["system"] for m in medians}):
        for collector in dict.fromkeys(v.collector for v in variants):
            points = [(v.n_agents, m["agent-steps/s"]) for v in variants for m in medians
                      if m["system"] == system and m["variant"] == v.label and v.n_agents is not None
                      and v.collector == collector]
            if len(points) < 2:
                continue
            (n0, a0), (n1, a1) = points[0], points[-1]
            change = f"; {n0} -> {n1} agents: x{a1 / a0:.2f}" if a0 else ""
            name = system + (f" {collector}" if collector else "")
            lines.append(f"- {name}: agent-steps/s " + ", ".join(f"{n} agents {a:.0f}" for n, a in points) + change)
            sim_of = dict(sim)
            if system == "torchrl_mappo" and all(sim_of.get(n) for n, _ in points):
                lines.append(f"  - {name} time per agent-step beyond the bare simulator's (us): " + ", ".join(
                    f"{n} agents {1e6 * (1 / a - 1 / sim_of[n]):.1f}" for n, a in points))
    return lines


def speedups(medians: list[dict], variants: list[Variant]) -> list[str]:
    """Our frames/s with each collector against the first one named (same number of agents)."""
    ours = {m["variant"]: m for m in medians if m["system"] == "torchrl_mappo"}
    lines = []
    for n in dict.fromkeys(v.n_agents for v in variants):
        same = [v for v in variants if v.n_agents == n and v.label in ours]
        if len(same) < 2:
            continue
        base = ours[same[0].label]
        lines += [f"- {v.label}: frames/s x{ours[v.label]['frames/s'] / base['frames/s']:.2f}, loop frames/s "
                  f"x{ours[v.label]['loop frames/s'] / base['loop frames/s']:.2f} vs {same[0].label}"
                  for v in same[1:]]
    return lines


def plot(results: list[Result], target: float | None, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_f) = plt.subplots(1, 2, figsize=(12, 4.5))
    colors: dict[str, str] = {}
    labelled: set[str] = set()
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for r in results:
        if not r.curve:
            continue
        key = f"{r.system} {r.variant}"
        color = colors.setdefault(key, palette[len(colors) % len(palette)])
        # A batch that finished no episode has no return (NaN): draw through it.
        rows = [row for row in r.curve if math.isfinite(row["episode_return"])]
        t = [row["t"] for row in rows]
        f = [row["frames"] for row in rows]
        y = [row["episode_return"] for row in rows]
        label = None if key in labelled else key  # one legend entry per system/variant
        labelled.add(key)
        ax_t.plot(t, y, color=color, alpha=0.8, label=label)
        ax_f.plot(f, y, color=color, alpha=0.8)
    for ax, xlabel in ((ax_t, "wall time since process start (s)"), (ax_f, "frames")):
        if target is not None:
            ax.axhline(target, color="grey", linestyle="--", linewidth=1)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("training episode return")
        ax.grid(alpha=0.3)
    ax_t.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------- #
def variants_of(args) -> list[Variant]:
    """One variant per mode x number of agents x collector.

    BenchMARL always runs its own defaults, so it runs once per seed with the
    first mode's variants and every mode is compared with that run.
    """
    collectors = args.collectors or [None]
    agents = args.agents or [None]
    out = []
    for mode in args.mode:
        for n in agents:
            for spec in collectors:
                parts, overrides, kwargs = [], list(MATCHED) if mode == "matched" else [], dict(args.scenario)
                if n is not None:
                    parts.append(f"{n}agents")
                    kwargs["n_agents"] = str(n)
                    if TASKS[args.task].get("scale_world") and n > 4:
                        side = f"{math.sqrt(n / 4):.3f}"
                        kwargs.update(world_spawning_x=side, world_spawning_y=side)
                if spec is not None:
                    kind, _, workers = spec.partition(":")
                    workers = workers or "1"
                    parts.append(kind if kind == "sync" else f"{kind}x{workers}")
                    overrides += [f"collector.kind={kind}", f"collector.workers={workers}"]

                def name(m: str) -> str:
                    named = [m] if len(args.mode) > 1 or not parts else []
                    return "-".join(named + parts)

                out.append(Variant(name(mode), overrides, kwargs, n, parts[-1] if spec else None,
                                   benchmarl=(spec is None or spec == "sync") and mode == args.mode[0],
                                   benchmarl_label=name(args.mode[0])))
    return out


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=sorted(TASKS), default="vmas/navigation")
    p.add_argument("--frames", type=int, default=120_000, help="frame budget of every run (default 120000)")
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default 3)")
    p.add_argument("--target", type=float, default=None,
                   help="target training return (default: navigation 0.9, balance 27)")
    p.add_argument("--vs", choices=["benchmarl"], default=None, help="also run BenchMARL 1.5.2 MAPPO, alternating")
    p.add_argument("--mode", choices=["default", "matched"], nargs="+", default=["default"],
                   help="default: each its own defaults; matched: ours with BenchMARL's MAPPO hyperparameters "
                        "(both: one BenchMARL run per seed, compared with each)")
    p.add_argument("--agents", type=int, nargs="+", default=None, metavar="N",
                   help="scaling: one variant per number of agents (env.scenario_kwargs.n_agents)")
    p.add_argument("--collectors", nargs="+", default=None, metavar="KIND[:WORKERS]",
                   help="one variant per collector, e.g. sync multi_sync:2 multi_async:2 (speed-up vs the first)")
    p.add_argument("--scenario", nargs="+", default=[], metavar="KEY=VALUE",
                   help="scenario kwargs for both systems' env, e.g. collisions=false")
    p.add_argument("--set", nargs="+", default=[], metavar="section.field=value",
                   help="extra overrides for our runs (after --mode's)")
    p.add_argument("--out", default=None, help="output directory (default benchmarks/results/<task>-<mode>-<time>)")
    p.add_argument("--timeout", type=float, default=None, help="kill a run after this many seconds")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="runs at a time, each with cores/N threads (default 1: every run alone, for timings)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="N threads for every run (OMP/MKL/OpenBLAS_NUM_THREADS, and train.num_threads for ours) "
                        "instead of cores/jobs, e.g. 1 on a shared machine")
    p.add_argument("--benchmarl-model", choices=["mlp", "gru"], default="mlp",
                   help="BenchMARL's policy model: its layers/mlp.yaml or layers/gru.yaml (default mlp)")
    p.add_argument("--benchmarl-critic-model", choices=["mlp", "gru"], default="mlp",
                   help="BenchMARL's critic model (default mlp)")
    p.add_argument("--rescore", action="store_true",
                   help="run nothing: rebuild the tables and plot of the runs already in --out (e.g. with "
                        "another --target)")
    p.add_argument("--benchmarl-python", default=str(BENCHMARL_PYTHON),
                   help="python of BenchMARL's virtualenv (bash benchmarks/setup_benchmarl.sh)")
    args = p.parse_args(argv)
    if args.target is None:
        args.target = TASKS[args.task]["target"]
    bad = [item for item in args.scenario if "=" not in item]
    if bad:
        p.error(f"--scenario: expected KEY=VALUE, got {bad}")
    args.scenario = [tuple(item.split("=", 1)) for item in args.scenario]
    if args.vs == "benchmarl":
        if TASKS[args.task]["benchmarl"] is None:
            p.error(f"--vs benchmarl: no BenchMARL task for {args.task}")
        if not Path(args.benchmarl_python).is_file():
            p.error(f"--vs benchmarl: {args.benchmarl_python} not found; run: bash benchmarks/setup_benchmarl.sh")
    if args.rescore and not args.out:
        p.error("--rescore: give the --out DIR of the runs to score again")
    args.mode = list(dict.fromkeys(args.mode))
    if args.seeds < 1 or args.frames < 1 or args.jobs < 1 or (args.threads is not None and args.threads < 1):
        p.error("--seeds, --frames, --jobs and --threads must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else HERE / "results" / f"{args.task.replace('/', '_')}-{'+'.join(args.mode)}-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    variants = variants_of(args)
    simulator = {}
    if args.agents and TASKS[args.task]["config"].startswith("configs/vmas"):
        simulator = {v.label: simulator_speed(args, v) for v in variants}
    if args.rescore:
        results, finished = results_from_dir(out, args), True
        if not results:
            print(f"--rescore: no runs under {out / 'runs'}", file=sys.stderr)
            return 2
    else:
        tasks = []
        for seed in range(args.seeds):
            for variant in variants:
                tasks.append(task_ours(args, variant, seed, out))
                if args.vs == "benchmarl" and variant.benchmarl:
                    tasks.append(task_benchmarl(args, variant, seed, out))
        results, finished = run_tasks(args, tasks)

    budget = (f"{args.frames} frames, {args.seeds} seed(s)" if not args.rescore else
              f"runs of {'/'.join(str(f) for f in sorted({r.frames for r in results}))} frames, "
              f"{len({r.seed for r in results})} seed(s)")
    title = (f"{args.task}, {budget}, mode {'+'.join(args.mode)}"
             + (f", target {args.target:g}" if args.target is not None else ""))
    per_run = [row_of(r) for r in results if r.ok]
    medians = summarise(results)
    failed = [r for r in results if not r.ok]
    report = [f"# Benchmark: {title}", "", f"`{' '.join(['python', 'benchmarks/run.py', *(argv or sys.argv[1:])])}`", ""]
    if "matched" in args.mode:
        report += ["ours with BenchMARL's MAPPO hyperparameters: `" + " ".join(MATCHED) + "`", ""]
    if args.vs == "benchmarl":
        report += [f"BenchMARL models: policy `layers/{args.benchmarl_model}.yaml`, critic "
                   f"`layers/{args.benchmarl_critic_model}.yaml` (its defaults)", ""]
        if TASKS[args.task].get("benchmarl_env"):
            report += ["ours on BenchMARL's env: `" + " ".join(TASKS[args.task]["benchmarl_env"]) + "`", ""]
    if args.threads:
        report += [f"threads per run: {args.threads}", ""]
    if args.set:
        report += ["extra overrides (ours): `" + " ".join(args.set) + "`", ""]
    report += ["## Median over seeds", "", markdown(medians), ""]
    extra = comparison(medians, variants) + scaling(medians, variants, simulator) + (speedups(medians, variants) if args.collectors else [])
    if extra:
        report += extra + [""]
    report += ["## Every run", "", markdown(per_run), ""]
    report += [
        "wall s: the whole process (start-up included); frames/s = frames / wall s; loop frames/s: from "
        "the start to the end of training; t→target: seconds since the process started to the end of the "
        "first iteration whose training return reached the target; final return: mean training return "
        "of the last 3 iterations; peak RSS: the run's largest single process (os.wait4; worker "
        "processes are not added up); collect %: collection share "
        "of collection + update time; CPU cores: CPU seconds / wall seconds.", "",
    ]
    if failed:
        report += ["## Failed runs", ""] + [f"- {r.system} {r.variant} seed {r.seed}: exit {r.exit_code}, log {r.log}"
                                            for r in failed] + [""]
    text = "\n".join(report)
    (out / "results.md").write_text(text)
    with (out / "runs.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS + ["exit_code", "log"])
        writer.writeheader()
        for r in results:
            writer.writerow({**(row_of(r) if r.ok else {"system": r.system, "variant": r.variant, "seed": r.seed}),
                             "exit_code": r.exit_code, "log": str(r.log)})
    plot(results, args.target, out / "results.png", title)
    print()
    print(text)
    print(f"table: {out / 'results.md'}\nplot: {out / 'results.png'}\nruns: {out / 'runs.csv'}")
    if not finished:
        return 130
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
