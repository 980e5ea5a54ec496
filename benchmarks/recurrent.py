"""Recurrent vs feed-forward MAPPO at the same sizes, side by side, and where a recurrent update's time goes.

    python benchmarks/recurrent.py --config configs/vmas_navigation_memory.yaml [--iterations 4] [section.field=value ...]

Builds two trainers from the same config, ``model.recurrent=gru`` (actor and
critic) and ``model.recurrent=none``, and runs their iterations alternately
in one process (GRU, MLP, GRU, MLP ...), so a busy machine slows both alike.
The first iteration of each warms up. Per iteration: collection, GAE and
update seconds; frames/s = frames / (collection + GAE + update), the
median over iterations. Then the recurrent update split into: the actor's
and the critic's forward (each split into the MLP encoder, the GRU time loop
and the rest), the backward, the optimizer, and the rest of the update.

Prints a Markdown table; the machine's load average goes with it.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def clock(module, parts: dict, name: str, method: str = "forward"):
    """Add the seconds spent in ``module.<method>`` to ``parts[name]`` (wraps the bound method)."""
    fn = getattr(module, method)

    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            parts[name] = parts.get(name, 0.0) + time.perf_counter() - t0

    setattr(module, method, wrapper)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True)
    p.add_argument("--iterations", type=int, default=4)
    p.add_argument("overrides", nargs="*")
    args = p.parse_args(argv)

    import torch
    from breakdown import phase_timers

    from torchrl_mappo.config import load_config
    from torchrl_mappo.modules.recurrent import RecurrentNet
    from torchrl_mappo.trainer import Trainer

    n_iter = args.iterations + 1
    trainers = {}
    for name, kind in (("gru", "gru"), ("mlp", "none")):
        cfg = load_config(args.config, [*args.overrides, f"model.recurrent={kind}", "run.progress_bar=false"])
        cfg.train.total_frames = cfg.train.frames_per_batch * n_iter
        trainers[name] = Trainer.from_config(cfg)
    parts: dict[str, float] = {}
    for role, loss_net in (("actor", "actor_network"), ("critic", "critic_network")):
        net = next(m for m in getattr(trainers["gru"].losses[next(iter(trainers["gru"].losses))], loss_net).modules()
                   if isinstance(m, RecurrentNet))
        clock(net, parts, f"{role} net")
        clock(net.encoder, parts, f"{role} MLP encoder")
        clock(net.gru, parts, f"{role} GRU time loop", "sequence")
    cfg = trainers["gru"].config
    rows = {name: [] for name in trainers}
    iters = {name: iter(t.collector) for name, t in trainers.items()}
    load = [os.getloadavg()[0]]
    for i in range(n_iter):
        for name, trainer in trainers.items():
            t0 = time.perf_counter()
            batch = next(iters[name])
            t_collect = time.perf_counter() - t0
            t0 = time.perf_counter()
            trainer.compute_advantages(batch)
            t_gae = time.perf_counter() - t0
            parts.clear()
            with phase_timers(trainer) as phases:
                t0 = time.perf_counter()
                trainer.update(batch)
                t_update = time.perf_counter() - t0
            if i:
                rows[name].append(dict(collect=t_collect, gae=t_gae, update=t_update, **phases,
                                       **(dict(parts) if name == "gru" else {})))
        load.append(os.getloadavg()[0])
    for t in trainers.values():
        t.collector.shutdown()

    med = {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for name, rs in rows.items()}
    frames = cfg.train.frames_per_batch
    fps = {name: frames / (m["collect"] + m["gae"] + m["update"]) for name, m in med.items()}
    m = cfg.model
    print(f"`python benchmarks/recurrent.py --config {args.config} --iterations {args.iterations} "
          f"{' '.join(args.overrides)}`".replace("  ", " ").replace(" `", "`"))
    print()
    print(f"{frames} frames per iteration ({cfg.env.num_envs} envs), MLP {m.hidden_sizes}, GRU hidden "
          f"{m.recurrent_hidden} x {m.recurrent_layers}, chunks of {cfg.train.chunk_length} steps, "
          f"{cfg.train.num_epochs} epochs x {frames // cfg.train.minibatch_size} minibatches, "
          f"torch threads {torch.get_num_threads()}; median of {args.iterations} iterations each, alternated; "
          f"load average {min(load):.1f}-{max(load):.1f} (1 min)")
    print()
    print("| model | collection s | GAE s | update s | frames/s | vs feed-forward |")
    print("|---|---|---|---|---|---|")
    for name in ("mlp", "gru"):
        x = med[name]
        print(f"| {'GRU (actor and critic)' if name == 'gru' else 'MLP'} | {x['collect']:.2f} | {x['gae']:.2f} | "
              f"{x['update']:.2f} | {fps[name]:.0f} | {fps[name] / fps['mlp']:.2f}x |")
    g = med["gru"]
    print()
    print("Where the recurrent update goes (seconds per iteration, share of the update):")
    print()
    print("| part | s | share |")
    print("|---|---|---|")
    lines = [("loss forward", g["loss_forward"])]
    for role in ("actor", "critic"):
        net = g[f"{role} net"]
        lines += [(f"  {role} net", net), ("    MLP encoder", g[f"{role} MLP encoder"]),
                  (f"    GRU time loop ({cfg.train.chunk_length} steps)", g[f"{role} GRU time loop"]),
                  ("    head, resets", net - g[f"{role} MLP encoder"] - g[f"{role} GRU time loop"])]
    lines += [("  rest of the loss (distribution, PPO terms)",
               g["loss_forward"] - g["actor net"] - g["critic net"]),
              ("backward", g["backward"]), ("grad clip", g["grad_clip"]), ("optimizer step", g["optimizer_step"]),
              ("other (chunking, minibatch indexing, metrics)",
               g["update"] - g["loss_forward"] - g["backward"] - g["grad_clip"] - g["optimizer_step"])]
    for name, sec in lines:
        depth = (len(name) - len(name.lstrip())) // 2
        print(f"| {'&nbsp;&nbsp;' * depth}{name.strip()} | {sec:.3f} | {100 * sec / g['update']:.0f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
