"""Issue 11's targets 1 and 2, measured through the runner (``torchrl-mappo sweep``'s code):

1. speed next to one busy process (``nice``, pinned to the last core) over
   speed alone, for ``train.num_threads=auto`` (the default) and ``null``
   (torch's choice, the old default), runs alternating;
2. ``--seeds 0 1 --jobs 2``: aggregate frames/s over one seed alone;
0. (``--targets 0``) the machine's own ceiling for target 2: the same ratio for a fixed
   one-thread torch workload with no I/O, no Python-heavy code and no start-up (MAPPO-sized
   matmuls, forward and backward), one process alone vs two at once. Two processes on "2 cores"
   of a VM can stay below 2x when the host's cores are shared (SMT siblings, memory bandwidth).

    python benchmarks/targets.py [--targets 0 1 2] [--frames 60000] [--reps 2] [--out FILE]

Frames/s are over each run's training loop (``metrics.csv``'s ``wall_time``);
target 2 also gives frames over the whole command's wall time (start-up
included). Prints a markdown report.
"""
from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))  # this checkout's runner

from threads import busy_core  # noqa: E402  (benchmarks/threads.py)
from torchrl_mappo.runner import sweep  # noqa: E402
from torchrl_mappo.summary import run_record  # noqa: E402
from torchrl_mappo.threads import available_cores  # noqa: E402

CONFIG = str(REPO / "configs/vmas_navigation.yaml")


def runs(root: Path, frames: int, grid=(), seeds=(0,), jobs=1) -> tuple[list[dict], float]:
    """One sweep; its runs' records and the whole command's wall seconds."""
    start = time.perf_counter()
    _, done, _ = sweep(CONFIG, grid=list(grid), seeds=list(seeds), jobs=jobs, stream=io.StringIO(),
                       overrides=[f"train.total_frames={frames}", f"run.dir={root}"])
    wall = time.perf_counter() - start
    records = [run_record(r, None) for r in done]
    bad = [r for r in records if r["status"] != "done"]
    if bad:
        raise SystemExit(f"runs failed: {bad}")
    return records, wall


CEILING_WORK = """
import time, torch
torch.set_num_threads(1)
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.Tanh(), torch.nn.Linear(64, 64), torch.nn.Tanh(),
                          torch.nn.Linear(64, 2))
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
x = torch.randn(1000, 64)
steps, end = 0, time.perf_counter() + {seconds}
while time.perf_counter() < end:
    loss = net(x).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    steps += 1
print(steps / {seconds})
"""


def ceiling(seconds: float) -> tuple[float, float]:
    """(steps/s of one process alone, summed steps/s of two at once) of :data:`CEILING_WORK`."""
    import os
    import subprocess

    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    code = CEILING_WORK.format(seconds=seconds)

    def start():
        return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)

    alone = float(start().communicate()[0])
    pair = [start(), start()]
    return alone, sum(float(p.communicate()[0]) for p in pair)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=60_000)
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--targets", type=int, nargs="+", default=[1, 2])
    p.add_argument("--threads", nargs="+", default=["auto", "null"], help="train.num_threads values of target 1")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="targets-"))
    lines = [f"navigation config, {args.frames} frames per run, {available_cores()} cores, {args.reps} rep(s); "
             f"frames/s over the training loop.", ""]
    if 0 in args.targets:
        rows = []
        for rep in range(args.reps):
            rows.append(ceiling(10.0))
            print(f"[{time.strftime('%H:%M:%S')}] ceiling rep {rep}: {rows[-1]}", flush=True)
        lines += ["## The machine's ceiling for target 2: a fixed one-thread torch workload", "",
                  "10 s of Adam steps on a 64x64 MLP, minibatch 1000 (no env, no start-up in the timing).", "",
                  "| rep | alone: steps/s | two at once: summed steps/s | two / one |", "|---|---|---|---|"]
        for i, (a, b) in enumerate(rows):
            lines.append(f"| {i} | {a:.0f} | {b:.0f} | {b / a:.2f}x |")
        lines.append("")
    if 1 in args.targets:
        speed: dict[tuple[str, bool], list[float]] = {}
        for rep in range(args.reps):
            for busy in (False, True):
                neighbour = busy_core() if busy else None
                try:
                    records, _ = runs(root, args.frames, grid=[f"train.num_threads={','.join(args.threads)}"])
                finally:
                    if neighbour is not None:
                        neighbour.kill()
                        neighbour.wait()
                for r in records:
                    speed.setdefault((r["point"], busy), []).append(r["frames_per_s"])
                print(f"[{time.strftime('%H:%M:%S')}] rep {rep} busy={busy}: "
                      f"{[(r['point'], round(r['frames_per_s'])) for r in records]}", flush=True)
        lines += ["## Target 1: next to one busy process", "",
                  "| num_threads | frames/s alone | frames/s, busy core | busy / alone | every run (alone; busy) |",
                  "|---|---|---|---|---|"]
        for point in (f"num_threads={t}" for t in args.threads):
            alone, busy = speed[(point, False)], speed[(point, True)]
            lines.append(f"| {point.split('=')[1]} | {statistics.median(alone):.0f} | {statistics.median(busy):.0f} "
                         f"| {statistics.median(busy) / statistics.median(alone):.2f}x "
                         f"| {', '.join(f'{x:.0f}' for x in alone)}; {', '.join(f'{x:.0f}' for x in busy)} |")
        lines.append("")
    if 2 in args.targets:
        rows = []
        for rep in range(args.reps):
            one, wall1 = runs(root, args.frames, seeds=[0], jobs=1)
            two, wall2 = runs(root, args.frames, seeds=[0, 1], jobs=2)
            rows.append((one[0]["frames_per_s"], args.frames / wall1, sum(r["frames_per_s"] for r in two),
                         2 * args.frames / wall2))
            print(f"[{time.strftime('%H:%M:%S')}] rep {rep}: {rows[-1]}", flush=True)
        lines += ["## Target 2: `--seeds 0 1 --jobs 2` against one seed alone", "",
                  "| rep | 1 seed: loop frames/s | 1 seed: frames / command wall s | 2 seeds: sum of loop frames/s "
                  "| 2 seeds: frames / command wall s | aggregate / alone (loop) | (command) |",
                  "|---|---|---|---|---|---|---|"]
        for i, (a, aw, b, bw) in enumerate(rows):
            lines.append(f"| {i} | {a:.0f} | {aw:.0f} | {b:.0f} | {bw:.0f} | {b / a:.2f}x | {bw / aw:.2f}x |")
        lines.append("")
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
