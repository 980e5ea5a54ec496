"""How many torch threads one training process should use: the measurements behind ``num_threads: auto``.

For each network size x minibatch size x thread count it trains the shipped
navigation config for a few iterations in a fresh process (threads cannot be
changed back once parallel work started) and reports the median update time
and whole-iteration time over the iterations after the first, alone and with
one busy process (``nice``, pinned to the last core) beside it, as a
markdown table:

    python benchmarks/threads.py [--threads 1 2] [--hidden 64 256] [--minibatch 1000 400] [--out FILE]

Like ``run.py`` it imports no torch itself.
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
BUSY = "while True: pass"


def child(args) -> int:
    sys.path.insert(0, str(REPO))
    import torch

    from torchrl_mappo.config import load_config
    from torchrl_mappo.trainer import Trainer

    cfg = load_config(REPO / "configs/vmas_navigation.yaml", [
        f"model.hidden_sizes=[{args.hidden},{args.hidden}]", f"train.minibatch_size={args.minibatch}",
        f"train.num_threads={args.threads}", f"train.total_frames={3000 * args.iters}",
        "train.seed=0", "run.progress_bar=false",
    ])
    history = Trainer.from_config(cfg).train()[1:]  # the first iteration warms up
    print(json.dumps({
        "threads": torch.get_num_threads(),
        "update_s": statistics.median(r["train_time"] for r in history),
        "iteration_s": statistics.median(r["train_time"] + r["collect_time"] for r in history),
    }))
    return 0


def measure(hidden: int, minibatch: int, threads: int, iters: int) -> dict:
    cmd = [sys.executable, __file__, "--child", "--hidden", str(hidden), "--minibatch", str(minibatch),
           "--threads", str(threads), "--iters", str(iters)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def busy_core() -> subprocess.Popen:
    """One niced busy loop pinned to the last core this process may use (kill it when done)."""
    core = sorted(os.sched_getaffinity(0))[-1]
    return subprocess.Popen(["nice", "taskset", "-c", str(core), sys.executable, "-c", BUSY])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--hidden", type=int, nargs="+", default=[64, 256], help="width of both hidden layers")
    p.add_argument("--minibatch", type=int, nargs="+", default=[1000, 400])
    p.add_argument("--iters", type=int, default=6, help="iterations of 3000 frames per measurement")
    p.add_argument("--busy", choices=["no", "yes", "both"], default="both")
    p.add_argument("--out", default=None, help="also write the markdown table here")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        args.threads, args.hidden, args.minibatch = args.threads[0], args.hidden[0], args.minibatch[0]
        return child(args)
    cores = sorted(os.sched_getaffinity(0))
    conditions = {"no": [False], "yes": [True], "both": [False, True]}[args.busy]
    rows = []
    for busy in conditions:
        neighbour = busy_core() if busy else None
        try:
            for hidden in args.hidden:
                for minibatch in args.minibatch:
                    for threads in args.threads:
                        r = measure(hidden, minibatch, threads, args.iters)
                        rows.append({"busy": busy, "hidden": hidden, "minibatch": minibatch, **r})
                        print(f"[{time.strftime('%H:%M:%S')}] {rows[-1]}", flush=True)
        finally:
            if neighbour is not None:
                neighbour.kill()
                neighbour.wait()
    base = {(r["busy"], r["hidden"], r["minibatch"]): r for r in rows if r["threads"] == args.threads[0]}
    alone = {(r["hidden"], r["minibatch"], r["threads"]): r for r in rows if not r["busy"]}
    lines = [f"{len(cores)} cores available (os.sched_getaffinity); navigation config, 3000 frames per "
             f"iteration, 10 epochs; median over {args.iters - 1} iterations after the first.", "",
             "| neighbour | hidden | minibatch | threads | update s | iteration s | "
             f"iteration vs {args.threads[0]} thread(s) | speed vs alone |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ref = base[(r["busy"], r["hidden"], r["minibatch"])]
        solo = alone.get((r["hidden"], r["minibatch"], r["threads"]))
        keep = f"{solo['iteration_s'] / r['iteration_s']:.2f}x" if solo else "-"
        lines.append(f"| {'busy core' if r['busy'] else 'none'} | {r['hidden']}x{r['hidden']} | {r['minibatch']} "
                     f"| {r['threads']} | {r['update_s']:.3f} | {r['iteration_s']:.3f} "
                     f"| {ref['iteration_s'] / r['iteration_s']:.2f}x | {keep} |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        Path(args.out).write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
