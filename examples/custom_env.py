"""A batched torch ``EnvBase`` of your own, trained by torchrl_mappo (``env.family: torchrl``).

"Guide and go": a small cooperative task with two groups in ``num_envs``
parallel copies, all in torch (no simulator).

- ``movers`` (2 agents, continuous velocity in [-1, 1]^2) start at random
  points of the square [-1, 1]^2 and must reach a shared goal; each sees its
  own position and the goal's offset, and earns ``-distance to the goal``.
- ``guides`` (2 agents, 5 discrete actions: stay, +x, -x, +y, -y) see the
  goal and the movers' centroid and earn 1 when they name the move that
  brings the centroid closest to the goal (``stay`` once it is within 0.1).

Rewards are per agent (``(group, "reward")``, shape ``[num_envs, 2, 1]``);
the episode ends by time only, with ``done`` at the root (torchrl_mappo
broadcasts it to the agents). Train it with::

    python -m torchrl_mappo train configs/custom_env.yaml

or from Python: ``Trainer.from_config(cfg, env=GuideAndGo(num_envs=32))``.
"""
from __future__ import annotations

import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Bounded, Categorical, Composite, Unbounded
from torchrl.envs import EnvBase

MOVES = torch.tensor([[0.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])


class GuideAndGo(EnvBase):
    """Two groups, ``movers`` (continuous) and ``guides`` (discrete), ``num_envs`` copies at once."""

    def __init__(self, num_envs: int = 32, max_steps: int = 25, n_movers: int = 2, n_guides: int = 2,
                 speed: float = 0.1, device: str = "cpu"):
        super().__init__(batch_size=torch.Size([num_envs]), device=device)
        self.max_steps, self.speed = max_steps, speed
        self.group_map = {"movers": [f"mover_{i}" for i in range(n_movers)],
                          "guides": [f"guide_{i}" for i in range(n_guides)]}
        b, m, g = (num_envs,), n_movers, n_guides
        self.observation_spec = Composite(
            movers=Composite(observation=Unbounded((*b, m, 4)), shape=(*b, m)),
            guides=Composite(observation=Unbounded((*b, g, 4)), shape=(*b, g)),
            shape=b,
        )
        self.action_spec = Composite(
            movers=Composite(action=Bounded(-1.0, 1.0, (*b, m, 2)), shape=(*b, m)),
            guides=Composite(action=Categorical(len(MOVES), (*b, g)), shape=(*b, g)),
            shape=b,
        )
        self.reward_spec = Composite(
            movers=Composite(reward=Unbounded((*b, m, 1)), shape=(*b, m)),
            guides=Composite(reward=Unbounded((*b, g, 1)), shape=(*b, g)),
            shape=b,
        )
        self.done_spec = Composite(
            done=Categorical(2, (*b, 1), dtype=torch.bool),
            terminated=Categorical(2, (*b, 1), dtype=torch.bool),
            truncated=Categorical(2, (*b, 1), dtype=torch.bool),
            shape=b,
        )
        self.pos = torch.zeros(num_envs, m, 2, device=self.device)
        self.goal = torch.zeros(num_envs, 2, device=self.device)
        self.t = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        self.rng = torch.Generator(device=self.device)

    def _uniform(self, *shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=self.rng, device=self.device) * 2 - 1

    def _observe(self, reward: tuple[torch.Tensor, torch.Tensor] | None = None) -> TensorDict:
        goal = self.goal.unsqueeze(1)
        centroid = self.pos.mean(1, keepdim=True)
        n_guides = len(self.group_map["guides"])
        out = {
            "movers": {"observation": torch.cat([self.pos, goal - self.pos], -1)},
            "guides": {"observation": torch.cat([goal, centroid], -1).expand(-1, n_guides, -1)},
        }
        if reward is not None:
            out["movers"]["reward"], out["guides"]["reward"] = reward
        out = {g: TensorDict(v, batch_size=v["observation"].shape[:2]) for g, v in out.items()}
        if reward is not None:
            done = (self.t >= self.max_steps).unsqueeze(-1)
            out.update(done=done, terminated=torch.zeros_like(done), truncated=done.clone())
        return TensorDict(out, batch_size=self.batch_size, device=self.device)

    def _reset(self, tensordict: TensorDictBase | None) -> TensorDictBase:
        reset = tensordict.get("_reset", None) if tensordict is not None else None
        which = reset.reshape(-1) if reset is not None else torch.ones_like(self.t, dtype=torch.bool)
        n = int(which.sum())
        self.pos[which] = self._uniform(n, self.pos.shape[1], 2)
        self.goal[which] = self._uniform(n, 2)
        self.t[which] = 0
        return self._observe()

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        # The guides are judged on the state they saw, before the movers move.
        offset = self.goal - self.pos.mean(1)
        after = (offset.unsqueeze(1) - self.speed * MOVES.to(self.device)).norm(dim=-1)  # [B, 5]
        best = torch.where(offset.norm(dim=-1) < 0.1, 0, after[:, 1:].argmin(-1) + 1)
        guide_reward = (tensordict.get(("guides", "action")) == best.unsqueeze(-1)).float().unsqueeze(-1)
        move = tensordict.get(("movers", "action")).clamp(-1, 1)
        self.pos = (self.pos + self.speed * move).clamp(-1.5, 1.5)
        mover_reward = -(self.goal.unsqueeze(1) - self.pos).norm(dim=-1, keepdim=True)
        self.t += 1
        return self._observe((mover_reward, guide_reward))

    def _set_seed(self, seed: int | None) -> None:
        self.rng.manual_seed(int(seed) if seed is not None else torch.seed())


def make_env(num_envs: int = 32, max_steps: int = 25, device: str = "cpu") -> GuideAndGo:
    """What ``env.make: examples/custom_env.py:make_env`` calls; it takes ``num_envs`` (a batched env)."""
    return GuideAndGo(num_envs=num_envs, max_steps=max_steps, device=device)


if __name__ == "__main__":
    from torchrl.envs.utils import check_env_specs

    env = make_env(num_envs=4)
    check_env_specs(env)
    print(env.rollout(5))
