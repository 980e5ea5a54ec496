"""What an opponent pool adds to iteration time (issue 16, target 3): the shipped battle config
(configs/magent_battle.yaml: red learns, 12v12 on map_size 20, 2000 frames per iteration) with
blue acting at random (no pool) and with blue playing a pool of red's snapshots, side by side.

Each measurement trains a few iterations in a fresh process; the variants alternate
(A B, B A, A B, ...) so that a change of the machine's load hits both alike. Reports, per
variant, the median over the iterations after the first of the iteration time (collection +
update, the pool's snapshot and draw included), collection and update, and the ratio pool /
no pool per repetition and overall, as a markdown table; then, in one process with the two
interleaved (``--parts-reps``), the pool's own work: blue's action by a snapshot vs at random
per env step and the snapshot + draw per iteration, as a share of the no-pool iteration:

    nice -n 10 python benchmarks/selfplay_cost.py [--reps 3] [--iters 5] [--snapshot-every 1] [--out FILE]
        [--set section.field=value ...]

``--snapshot-every 1`` (the default) snapshots every iteration: the pool's worst case. The
pool's opponent is an MLP forward per step where random draws uniform actions, so the figure
includes that inference. Like ``run.py`` it imports no torch itself.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VARIANTS = {
    "no pool": ["per_group.blue.policy=random"],
    "pool": ["per_group.blue.policy=pool", "per_group.blue.pool_size=10", "per_group.blue.pool_sampling=latest"],
}


def child(args) -> int:
    sys.path.insert(0, str(REPO))
    from torchrl_mappo.config import load_config
    from torchrl_mappo.trainer import Trainer

    extra = list(VARIANTS[args.variant])
    if args.variant == "pool":
        extra.append(f"per_group.blue.snapshot_every={args.snapshot_every}")
    cfg = load_config(REPO / "configs/magent_battle.yaml", [
        *extra, "train.num_threads=1", f"train.frames_per_batch={args.frames_per_batch}",
        f"train.total_frames={args.frames_per_batch * args.iters}", "train.seed=0",
        "run.progress_bar=false", *args.set,
    ])
    history = Trainer.from_config(cfg).train()[1:]  # the first iteration warms up; no run directory
    print(json.dumps({
        "iteration_s": statistics.median(r["train_time"] + r["collect_time"] for r in history),
        "collect_s": statistics.median(r["collect_time"] for r in history),
        "update_s": statistics.median(r["train_time"] for r in history),
        "pool_size": history[-1].get("blue/pool_size"),
    }))
    return 0


def parts(args) -> int:
    """The pool's own work, timed in one process with the two alternatives interleaved (little
    affected by the load moving between processes): blue's action by a snapshot's MLP vs a
    uniform draw, per env step, and the snapshot + draw after an update."""
    sys.path.insert(0, str(REPO))
    import torch

    from torchrl_mappo.build import build
    from torchrl_mappo.config import load_config
    from torchrl_mappo.modules.actor import make_random_actor

    cfg = load_config(REPO / "configs/magent_battle.yaml", [
        *VARIANTS["pool"], "per_group.blue.snapshot_every=1", "train.num_threads=1",
        f"train.frames_per_batch={args.frames_per_batch}", "run.progress_bar=false", *args.set,
    ])
    torch.set_num_threads(1)
    p = build(cfg)
    pool, td = p.pools["blue"], p.env.reset()
    random_actor = make_random_actor(p.env, "blue")
    timed = {"pool actor": p.actors["blue"], "random": random_actor}
    spent = {k: [] for k in timed}
    with torch.no_grad():
        for _ in range(args.parts_reps):
            for name, actor in timed.items():
                t = time.perf_counter()
                actor(td.clone(False))
                spent[name].append(time.perf_counter() - t)
    snap = []
    for k in range(1, 21):
        t = time.perf_counter()
        pool.after_update(k)
        snap.append(time.perf_counter() - t)
    p.collector.shutdown()
    steps = args.frames_per_batch // cfg.env.num_envs  # env steps (calls of blue's actor) per iteration
    out = {k: statistics.median(v) for k, v in spent.items()}
    out.update(after_update=statistics.median(snap), steps=steps)
    print(json.dumps(out))
    return 0


def measure(variant: str, args) -> dict:
    cmd = [sys.executable, __file__, "--child", "--variant", variant, "--iters", str(args.iters),
           "--frames-per-batch", str(args.frames_per_batch), "--snapshot-every", str(args.snapshot_every),
           "--set", *args.set]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=3, help="measurements per variant (alternating)")
    p.add_argument("--iters", type=int, default=5, help="iterations per measurement")
    p.add_argument("--frames-per-batch", type=int, default=2000, help="frames per iteration (the config's 2000)")
    p.add_argument("--snapshot-every", type=int, default=1)
    p.add_argument("--out", default=None, help="also write the markdown table here")
    p.add_argument("--set", nargs="*", default=[], metavar="section.field=value",
                   help="further config overrides for both variants (tests: a tiny budget)")
    p.add_argument("--parts-reps", type=int, default=200,
                   help="interleaved calls of each blue actor for the in-process part (0: skip it)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--parts-child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--variant", choices=list(VARIANTS), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(args)
    if args.parts_child:
        return parts(args)
    if args.reps < 1 or args.iters < 2:
        p.error("--reps must be >= 1 and --iters >= 2 (the first iteration is not counted)")
    loads = [load()]
    rows = []
    for rep in range(args.reps):
        order = list(VARIANTS) if rep % 2 == 0 else list(reversed(VARIANTS))
        for variant in order:
            r = measure(variant, args)
            rows.append({"rep": rep, "variant": variant, **r})
            print(f"[{time.strftime('%H:%M:%S')}] {load()} {rows[-1]}", flush=True)
        loads.append(load())
    by = {(r["rep"], r["variant"]): r for r in rows}
    lines = [f"configs/magent_battle.yaml{' ' + ' '.join(args.set) if args.set else ''}, "
             f"{args.frames_per_batch} frames per iteration, {args.iters} iterations per measurement "
             f"(median over the {args.iters - 1} after the first); pool: snapshot every {args.snapshot_every} "
             f"iteration(s), latest-biased draw; {args.reps} alternating repetitions; "
             f"{os.cpu_count()} cores; {loads[0]} at the start, {loads[-1]} at the end.", "",
             "| rep | variant | iteration s | collect s | update s | pool / no pool |", "|---|---|---|---|---|---|"]
    for r in rows:
        ratio = r["iteration_s"] / by[(r["rep"], "no pool")]["iteration_s"]
        lines.append(f"| {r['rep']} | {r['variant']} | {r['iteration_s']:.2f} | {r['collect_s']:.2f} "
                     f"| {r['update_s']:.2f} | {ratio:.3f} |")
    med = {v: statistics.median(r["iteration_s"] for r in rows if r["variant"] == v) for v in VARIANTS}
    ratios = [by[(k, "pool")]["iteration_s"] / by[(k, "no pool")]["iteration_s"] for k in range(args.reps)]
    lines += ["", f"median iteration: no pool {med['no pool']:.2f} s, pool {med['pool']:.2f} s; "
              f"pool / no pool: {med['pool'] / med['no pool']:.3f} (medians), per repetition "
              + ", ".join(f"{x:.3f}" for x in ratios) + "."]
    if args.parts_reps > 0:
        cmd = [sys.executable, __file__, "--parts-child", "--parts-reps", str(args.parts_reps),
               "--frames-per-batch", str(args.frames_per_batch), "--set", *args.set]
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(done.stderr[-2000:])
        q = json.loads(done.stdout.strip().splitlines()[-1])
        added = q["steps"] * (q["pool actor"] - q["random"]) + q["after_update"]
        lines += ["", f"The pool's own work, one process, {args.parts_reps} interleaved calls each ({load()}): "
                  f"blue's action {1e3 * q['pool actor']:.2f} ms by a snapshot vs {1e3 * q['random']:.2f} ms at "
                  f"random per env step, snapshot + draw {1e3 * q['after_update']:.2f} ms per iteration: "
                  f"{added:.2f} s per iteration of {q['steps']} env steps = {added / med['no pool']:.3f} of the "
                  f"median no-pool iteration."]
    table = "\n".join(lines)
    print(table)
    if args.out:
        Path(args.out).write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
