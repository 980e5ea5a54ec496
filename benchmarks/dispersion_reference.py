"""What VMAS dispersion pays a policy that steers to food, against what a trained run does (issue 12).

Dispersion (the suite's kwargs: 4 agents, 4 foods of radius 0.02, shared
reward) pays every agent +1 for each food any agent touches, so an episode
returns 0 to 4. This script plays, on the same seeded episodes:

- ``random``: uniform actions;
- ``nearest``: every agent steers to the nearest uneaten food (a
  proportional controller; the agents need no ids and move as one);
- ``own``: agent ``i`` steers to food ``i``, then to the nearest uneaten one;
- each ``RUN`` given (a run directory or checkpoint), deterministic, with how
  well its agents head for food: the mean cosine between an agent's velocity
  and the direction of its nearest uneaten food (1: straight at it, 0: no
  relation), and the agents' mean distance from the origin they start at.

    python benchmarks/dispersion_reference.py [RUN ...] --episodes 300
"""
from __future__ import annotations

import argparse

import torch

KWARGS = {"n_agents": 4, "n_food": 4, "share_reward": True, "food_radius": 0.02, "penalise_by_time": False}


def _steer(rel: torch.Tensor, vel: torch.Tensor) -> torch.Tensor:
    return (3.0 * rel - vel).clamp(-1.0, 1.0)


def scripted(mode: str, episodes: int, seed: int) -> tuple[float, float]:
    """Mean and std of the episode return of a scripted team (``random``, ``nearest``, ``own``)."""
    import vmas

    torch.manual_seed(seed)
    env = vmas.make_env("dispersion", num_envs=episodes, continuous_actions=True, max_steps=100, seed=seed, **KWARGS)
    obs = env.reset()
    ret = torch.zeros(episodes)
    finished = torch.zeros(episodes, dtype=torch.bool)
    rows = torch.arange(episodes)
    for _ in range(100):
        actions = []
        for i, o in enumerate(obs):
            food = o[:, 4:].reshape(episodes, -1, 3)  # per food: position relative to the agent, eaten flag
            rel, eaten = food[..., :2], food[..., 2] > 0
            nearest = (rel.norm(dim=-1) + eaten * 100).argmin(-1)
            if mode == "random":
                actions.append(torch.rand(episodes, 2) * 2 - 1)
                continue
            target = nearest
            if mode == "own":
                own = torch.full_like(nearest, i % food.shape[1])
                target = torch.where(eaten[rows, own], nearest, own)
            actions.append(_steer(rel[rows, target], o[:, 2:4]))
        obs, rews, dones, _ = env.step(actions)
        ret += rews[0] * ~finished
        finished |= dones
    return ret.mean().item(), ret.std().item()


def trained(run: str, episodes: int, seed: int) -> tuple[float, float, float]:
    """A run's deterministic return, mean cos(velocity, nearest uneaten food), mean distance from the origin."""
    from torchrl_mappo.config import config_from_dict
    from torchrl_mappo.envs import make_env, snapshot
    from torchrl_mappo.evaluate import build_policy, evaluate_seeded, load_checkpoint

    state, file = load_checkpoint(run)
    cfg = config_from_dict(state["config"], origin=str(file))
    if cfg.env.scenario != "dispersion":
        raise SystemExit(f"{run}: a dispersion run is needed (env.scenario is {cfg.env.scenario!r})")
    cfg.env.num_envs = episodes
    env = make_env(cfg.env, seed=seed)
    policy, _ = build_policy(cfg, env, state["actors"])
    world = snapshot.vmas_simulator(env).world
    cosines, distances = [], []

    def record(_td) -> None:
        for agent in world.agents:
            rel = torch.stack([food.state.pos - agent.state.pos for food in world.landmarks], 1)
            eaten = torch.stack([food.eaten for food in world.landmarks], 1)
            nearest = (rel.norm(dim=-1) + eaten * 100).argmin(-1)
            heading = rel[torch.arange(len(nearest)), nearest]
            moving = agent.state.vel.norm(dim=-1) > 1e-3
            cos = torch.nn.functional.cosine_similarity(agent.state.vel, heading, dim=-1)
            if moving.any():
                cosines.append(cos[moving].mean())
            distances.append(agent.state.pos.norm(dim=-1).mean())

    result = evaluate_seeded(env, policy, list(env.group_map), seed, episodes=episodes, deterministic=True,
                             on_step=record)
    env.close()
    group = next(iter(result["groups"]))
    heading = float(torch.stack(cosines).mean()) if cosines else float("nan")  # nan: no agent ever moved
    return result["groups"][group]["return_mean"], heading, float(torch.stack(distances).mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", help="dispersion run directories or checkpoint files")
    parser.add_argument("--episodes", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(f"dispersion {KWARGS}, {args.episodes} episodes, seed {args.seed}")
    print("| team | return | cos(velocity, nearest food) | distance from origin |")
    print("|---|---|---|---|")
    for mode in ("random", "nearest", "own"):
        mean, std = scripted(mode, args.episodes, args.seed)
        print(f"| scripted: {mode} | {mean:.3f} ± {std:.3f} | - | - |")
    for run in args.runs:
        ret, cos, dist = trained(run, args.episodes, args.seed)
        print(f"| {run} | {ret:.3f} | {cos:.3f} | {dist:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
