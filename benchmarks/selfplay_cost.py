"""What an opponent pool adds to iteration time (issue 16, target 3): the shipped battle config
(configs/magent_battle.yaml: red learns, 12v12 on map_size 20, 2000 frames per iteration) with
blue acting at random (no pool) and with blue playing a pool of red's snapshots, side by side.

Each measurement trains a few iterations in a fresh process; the variants alternate
(A B, B A, A B, ...) so that a change of the machine's load hits both alike. Reports, per
variant, the median over the iterations after the first of the iteration time (collection +
update, the pool's snapshot and draw included), collection and update, and the ratio pool /
no pool per repetition and overall, as a markdown table:

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
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--variant", choices=list(VARIANTS), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(args)
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
    table = "\n".join(lines)
    print(table)
    if args.out:
        Path(args.out).write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
