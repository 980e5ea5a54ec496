"""What PPO epochs and minibatch sizes cost per iteration, and in seconds to a target.

    python benchmarks/update_cost.py --config configs/vmas_navigation.yaml \
        --points 10x1000 6x1000 4x1000 10x1500 [--reps 5] [--sweep SUMMARY.csv] [section.field=value ...]

Builds the trainer from the config once (one torch thread unless the config
says otherwise), collects a few batches (the median is the collection time
of one iteration), computes GAE on one of them, then times
``Trainer.update`` on that same batch for every ``EPOCHSxMINIBATCH`` point,
the points alternating within each repetition so that a drift of the machine
hits them all alike (the first repetition is a warm-up). Prints, per point,
the minibatch steps per iteration, the update's median seconds and the
iteration's (collection + GAE + update).

With ``--sweep``, the ``summary.csv`` of a ``torchrl-mappo sweep`` over
``train.num_epochs`` (and ``train.minibatch_size``) with
``train.target_return`` set, the table adds each point's median and mean
frames to the target over the sweep's seeds and the seconds of training they
cost at this machine's iteration time (frames / frames_per_batch x
iteration): sample efficiency and speed in one figure. A seed that never
reached the target counts as infinitely slow (it moves the median only if it
is in the middle).
"""
from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def parse_point(text: str) -> tuple[int, int]:
    try:
        epochs, minibatch = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected EPOCHSxMINIBATCH, e.g. 10x1000") from None
    if epochs < 1 or minibatch < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: epochs and minibatch must be >= 1")
    return epochs, minibatch


def sweep_frames(path: Path, epochs: int, minibatch: int) -> dict[tuple[int, int], list[float]]:
    """Frames to target per (epochs, minibatch) point of a sweep's summary.csv (inf: not reached);
    a point that does not set one of the two has the config's value (``epochs``, ``minibatch``)."""
    out: dict[tuple[int, int], list[float]] = {}
    for row in csv.DictReader(path.open()):
        if row["status"] != "done":
            continue
        settings = dict(part.split("=", 1) for part in row["overrides"].split())
        key = (int(settings.get("train.num_epochs", epochs)), int(settings.get("train.minibatch_size", minibatch)))
        value = row["frames_to_target"]
        out.setdefault(key, []).append(float(value) if value not in ("", "nan", "None") else math.inf)
    return out


def kilo(frames: float) -> str:
    return "not reached" if math.isinf(frames) else f"{frames / 1000:.1f}k"


def seconds(value: float) -> str:
    return "-" if math.isinf(value) else f"{value:.2f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True)
    p.add_argument("--points", nargs="+", type=parse_point, required=True, metavar="EPOCHSxMINIBATCH")
    p.add_argument("--reps", type=int, default=5, help="repetitions per point (the first is a warm-up)")
    p.add_argument("--sweep", type=Path, help="a sweep's summary.csv (frames to target per point)")
    p.add_argument("overrides", nargs="*", metavar="section.field=value")
    args = p.parse_args(argv)
    if args.reps < 2:
        p.error("--reps must be >= 2 (the first repetition is a warm-up)")

    import torch

    from torchrl_mappo.config import load_config
    from torchrl_mappo.trainer import Trainer

    cfg = load_config(args.config, [*args.overrides, "run.progress_bar=false"])
    defaults = cfg.train.num_epochs, cfg.train.minibatch_size
    trainer = Trainer.from_config(cfg)
    it = iter(trainer.collector)
    batch = next(it)
    collect = []
    for _ in range(3):
        t0 = time.perf_counter()
        next(it)
        collect.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    trainer.compute_advantages(batch)
    gae = time.perf_counter() - t0
    times: dict[tuple[int, int], list[float]] = {pt: [] for pt in args.points}
    for rep in range(args.reps):
        for epochs, minibatch in args.points:
            trainer.t.num_epochs, trainer.t.minibatch_size = epochs, minibatch
            t0 = time.perf_counter()
            trainer.update(batch)
            if rep:
                times[(epochs, minibatch)].append(time.perf_counter() - t0)
    frames = sweep_frames(args.sweep, *defaults) if args.sweep else {}
    fpb = cfg.train.frames_per_batch
    t_collect = statistics.median(collect)
    print(f"{args.config} {' '.join(args.overrides)}")
    print(f"{fpb} frames/iteration, torch threads {torch.get_num_threads()}; collection {t_collect:.4f} s, "
          f"GAE {gae:.4f} s; median of {args.reps - 1} updates per point, alternating")
    head = "| epochs x minibatch | steps | update s | iteration s | frames/s |"
    if frames:
        head += " frames to target (median / mean) | s of training to target (median / mean) |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for (epochs, minibatch), ts in times.items():
        update = statistics.median(ts)
        steps = epochs * math.ceil(fpb / minibatch)
        iteration = t_collect + gae + update
        line = f"| {epochs} x {minibatch} | {steps} | {update:.4f} | {iteration:.4f} | {fpb / iteration:.0f} |"
        if frames:
            f = frames.get((epochs, minibatch))
            if f:
                med, mean = statistics.median(f), sum(f) / len(f)
                missed = sum(math.isinf(x) for x in f)
                note = f", {missed} not reached" if missed else ""
                line += (f" {kilo(med)} / {kilo(mean)} ({len(f)} seeds{note}) |"
                         f" {seconds(med / fpb * iteration)} / {seconds(mean / fpb * iteration)} |")
            else:
                line += " - | - |"
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
