"""How far apart a trained VMAS team's agents get: deterministic vs sampled play (issue 12).

A policy whose agents share one network and see identical observations
acts identically when it is played deterministically: in VMAS dispersion
every agent starts at the origin, so without something that tells the
agents apart they move as one for the whole episode, and a team of four
eats the foods one at a time. This script shows it on a run's checkpoint:
per mode, the episode return and the mean distance between every pair of
agents over the episode's steps (0.0: the agents never separate).

    python benchmarks/agent_spread.py RUN_DIR [RUN_DIR ...] --episodes 30

Each run plays the same seeded episodes in both modes (``--seed``).
"""
from __future__ import annotations

import argparse
import itertools
import sys

import torch


def spread(run: str, episodes: int, seed: int, deterministic: bool) -> dict[str, float]:
    """Play ``episodes`` episodes of ``run``'s checkpoint; its return and the agents' mean pairwise distance."""
    from torchrl_mappo.config import config_from_dict
    from torchrl_mappo.envs import make_env, snapshot
    from torchrl_mappo.evaluate import build_policy, evaluate_seeded, load_checkpoint

    state, file = load_checkpoint(run)
    cfg = config_from_dict(state["config"], origin=str(file))
    if cfg.env.family != "vmas":
        raise SystemExit(f"{run}: a VMAS run is needed (env.family is {cfg.env.family!r})")
    cfg.env.num_envs = episodes  # one episode per env, all in step
    env = make_env(cfg.env, seed=seed)
    policy, _ = build_policy(cfg, env, state["actors"])
    sim = snapshot.vmas_simulator(env)
    distances: list[torch.Tensor] = []

    def record(_td) -> None:
        pos = [agent.state.pos for agent in sim.agents]  # [envs, 2] each
        pairs = [torch.linalg.vector_norm(a - b, dim=-1) for a, b in itertools.combinations(pos, 2)]
        distances.append(torch.stack(pairs, -1).mean(-1))

    result = evaluate_seeded(env, policy, list(env.group_map), seed, episodes=episodes,
                             deterministic=deterministic, on_step=record)
    env.close()
    group = next(iter(result["groups"]))
    return {"return": result["groups"][group]["return_mean"],
            "spread": float(torch.stack(distances).mean()) if distances else float("nan")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run directories (or checkpoint files) of VMAS runs")
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print("| run | deterministic return | deterministic agent spread | sampled return | sampled agent spread |")
    print("|---|---|---|---|---|")
    for run in args.runs:
        det = spread(run, args.episodes, args.seed, True)
        smp = spread(run, args.episodes, args.seed, False)
        print(f"| {run} | {det['return']:.3f} | {det['spread']:.3f} | {smp['return']:.3f} | {smp['spread']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
