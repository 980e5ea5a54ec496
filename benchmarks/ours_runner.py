"""Train torchrl_mappo once and write its learning curve with wall-clock stamps.

Run by ``benchmarks/run.py`` in a process of its own (so its peak RSS is
this process's), from this checkout:

    python benchmarks/ours_runner.py --config configs/vmas_navigation.yaml --seed 0 \
        --frames 120000 --out DIR [section.field=value ...]

Writes ``DIR/curve.csv`` (one row per iteration, stamped when its update
ends: ``iteration, frames, unix_time, episode_return, collect_s, train_s,
eval_s``; ``episode_return`` is the mean over the learning groups of the
batch's finished episodes, as BenchMARL's ``mean_return``) and
``DIR/meta.json`` (when training started and ended, the number of agents,
the resolved config).
Nothing else: no run directory, checkpoints or progress bar, so the
measured time is training. The garbage collector is handled as the
``torchrl-mappo`` command handles it (:mod:`torchrl_mappo.startup`).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # measure this checkout, not whatever is installed

FIELDS = ["iteration", "frames", "unix_time", "episode_return", "collect_s", "train_s", "eval_s"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--frames", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)

    from torchrl_mappo import startup
    from torchrl_mappo.config import config_to_dict, load_config
    from torchrl_mappo.trainer import Trainer

    startup.imports_done()

    cfg = load_config(args.config, [
        *args.overrides, f"train.seed={args.seed}", f"train.total_frames={args.frames}",
        "run.progress_bar=false",
    ])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_build = time.time()
    trainer = Trainer.from_config(cfg)
    groups = list(trainer.losses)
    with (out / "curve.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()

        def sink(row):
            returns = [row[f"{g}/episode_return"] for g in groups]
            writer.writerow({
                "iteration": row["iteration"], "frames": row["frames"], "unix_time": time.time(),
                "episode_return": sum(returns) / len(returns) if all(map(math.isfinite, returns)) else math.nan,
                "collect_s": row["collect_time"], "train_s": row["train_time"], "eval_s": 0.0,
            })
            f.flush()

        trainer.metrics_sink = sink
        t_start = time.time()
        trainer.train()
        t_end = time.time()
    meta = {"system": "torchrl_mappo", "n_agents": sum(len(a) for a in trainer.agent_names.values()),
            "unix_time_build": t_build, "unix_time_train_start": t_start, "unix_time_end": t_end,
            "config": config_to_dict(cfg)}
    (out / "meta.json").write_text(json.dumps(meta, indent=1, default=str))
    return 0


if __name__ == "__main__":
    from torchrl_mappo.startup import one_command

    with one_command():  # as the torchrl-mappo command runs (torchrl_mappo/startup.py)
        code = main()
    sys.exit(code)
