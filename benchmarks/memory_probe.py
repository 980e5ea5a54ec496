"""Does a trained recurrent policy use its memory? Its return with memory vs with the memory wiped every step.

    python benchmarks/memory_probe.py RUN_DIR [RUN_DIR ...] [--episodes 60] [--seed 12345]

For each run (a checkpoint of a ``model.recurrent: gru`` run), plays
``--episodes`` episodes twice with the same seed and deterministic actions:
as trained, then with ``"is_init"`` forced to true at every step, so the GRU
restarts from a zero state each step and acts on the current observation
only. The gap is what the memory is worth to the trained policy. Prints a
Markdown table.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+")
    p.add_argument("--episodes", type=int, default=60)
    p.add_argument("--seed", type=int, default=12345)
    args = p.parse_args(argv)

    import torch
    from tensordict.nn import TensorDictModule, TensorDictSequential

    from torchrl_mappo import keys
    from torchrl_mappo.config import config_from_dict
    from torchrl_mappo.envs import make_env
    from torchrl_mappo.evaluate import build_policy, evaluate_seeded, load_checkpoint
    from torchrl_mappo.modules.recurrent import recurrent_env_transforms

    torch.set_num_threads(1)
    forget = TensorDictModule(lambda init: torch.ones_like(init), in_keys=[keys.IS_INIT], out_keys=[keys.IS_INIT])
    print("| run | return with memory | memory wiped every step | difference |")
    print("|---|---|---|---|")
    gaps = []
    for run in args.runs:
        state, file = load_checkpoint(run)
        cfg = config_from_dict(state["config"], origin=str(file))
        cfg.env.num_envs = min(cfg.env.num_envs, args.episodes)
        env = make_env(cfg.env, seed=args.seed)
        policy, _ = build_policy(cfg, env, state["actors"])
        env = recurrent_env_transforms(env, policy)
        groups = list(state["actors"])
        out = {}
        for name, pol in (("memory", policy), ("wiped", TensorDictSequential(forget, policy))):
            result = evaluate_seeded(env, pol, groups, args.seed, episodes=args.episodes, deterministic=True)
            out[name] = statistics.mean(result["groups"][g]["return_mean"] for g in groups)
        gaps.append(out["memory"] - out["wiped"])
        print(f"| `{run}` | {out['memory']:.3f} | {out['wiped']:.3f} | {gaps[-1]:+.3f} |")
        env.close()
    print(f"\nmean difference {statistics.mean(gaps):+.3f} over {len(gaps)} run(s), {args.episodes} episodes each, "
          f"deterministic actions, seed {args.seed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
