"""Our TorchRL transforms; each works on its own in any TorchRL pipeline."""
from __future__ import annotations

from typing import Mapping

import torch
from tensordict import TensorDictBase
from torchrl.data import Composite, Unbounded
from torchrl.envs import Transform

from torchrl_mappo import keys
from torchrl_mappo.config import RewardShare


class RewardSharing(Transform):
    """Share each team's reward among its agents.

    For every configured group, with ``r`` the group's per-agent reward
    ``(group, "reward")`` of shape ``[*B, n_agents, 1]`` and ``m`` its mean
    over the agents:

    - ``"individual"``: ``r`` unchanged;
    - ``"shared"``: every agent gets ``m``;
    - ``"mixed"`` with weight ``w``: ``w * m + (1 - w) * r``.

    Where the env marks live agents with ``(group, "mask")`` (MAgent2 with
    ``use_mask=True``), the team mean is over the live agents only and dead
    agents keep their own reward.

    Args:
        modes: ``{group: RewardShare}`` (what :meth:`EnvConfig.reward_shares`
            gives), or for short ``{group: mode}`` / ``{group: (mode, weight)}``,
            read by the same parser as the config (:meth:`RewardShare.parse`,
            whose ``ConfigError`` is a ``ValueError``); groups left out are
            unchanged.

    Example:
        >>> env = TransformedEnv(base, RewardSharing({"agents": ("mixed", 0.5)}))
    """

    def __init__(self, modes: Mapping[str, RewardShare | str | tuple[str, float]]):
        self.shares = {
            group: RewardShare.parse(spec, f"reward sharing for group {group!r}") for group, spec in modes.items()
        }
        reward_keys = [keys.reward(g) for g in self.shares]
        super().__init__(in_keys=reward_keys, out_keys=reward_keys)

    @staticmethod
    def share(reward: torch.Tensor, weight: float, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``weight * team_mean + (1 - weight) * reward`` over the agent dim (-2)."""
        if weight == 0.0:
            return reward
        if mask is None:
            mean = reward.mean(dim=-2, keepdim=True)
            return weight * mean + (1.0 - weight) * reward
        mask = mask.reshape(reward.shape[:-1] + (1,)).to(reward.dtype)
        mean = (reward * mask).sum(-2, keepdim=True) / mask.sum(-2, keepdim=True).clamp_min(1)
        return torch.where(mask.bool(), weight * mean + (1.0 - weight) * reward, reward)

    def _call(self, next_tensordict: TensorDictBase) -> TensorDictBase:
        for group, share in self.shares.items():
            reward = next_tensordict.get(keys.reward(group))
            mask = next_tensordict.get(keys.mask(group), None)
            next_tensordict.set(keys.reward(group), self.share(reward, share.weight, mask))
        return next_tensordict

    def _reset(self, tensordict: TensorDictBase, tensordict_reset: TensorDictBase) -> TensorDictBase:
        return tensordict_reset

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        # Offline use (a stored batch): share the rewards stored under "next".
        self._call(tensordict.get(keys.NEXT))
        return tensordict


class BroadcastReward(Transform):
    """Copy a team reward at the root (``"reward"``, ``[*B, 1]``) to every agent of each group.

    For envs of your own that reward the team only: ``(group, "reward")``
    becomes the root reward expanded to ``[*B, n_agents, 1]``, the per-agent
    reward the loss reads. It is safe because the root reward is one number
    per env: every agent of every group gets the same team reward.

    Args:
        group_sizes: ``{group: n_agents}`` of the groups to fill in.
    """

    def __init__(self, group_sizes: Mapping[str, int]):
        self.group_sizes = dict(group_sizes)
        super().__init__(in_keys=[keys.REWARD], out_keys=[keys.reward(g) for g in self.group_sizes])

    def _call(self, next_tensordict: TensorDictBase) -> TensorDictBase:
        reward = next_tensordict.get(keys.REWARD)
        for group, n in self.group_sizes.items():
            next_tensordict.set(keys.reward(group), reward.unsqueeze(-2).expand(*reward.shape[:-1], n, 1).clone())
        return next_tensordict

    def _reset(self, tensordict: TensorDictBase, tensordict_reset: TensorDictBase) -> TensorDictBase:
        return tensordict_reset

    def transform_reward_spec(self, reward_spec: Composite) -> Composite:
        root = reward_spec[keys.REWARD]
        batch = root.shape[:-1]
        for group, n in self.group_sizes.items():
            leaf = Unbounded(shape=(*batch, n, 1), dtype=root.dtype, device=root.device)
            if group in reward_spec.keys():
                reward_spec[group][keys.REWARD] = leaf
            else:
                reward_spec[group] = Composite({keys.REWARD: leaf}, shape=(*batch, n), device=root.device)
        return reward_spec


class ObservationToVector(Transform):
    """Make each group's ``(group, "observation")`` a floating-point tensor the networks can take.

    PettingZoo envs with dict observation spaces (``{"observation": board}``
    once TorchRL has taken out ``"action_mask"``) give ``(group,
    "observation")`` as a nested entry: its leaves are flattened per agent
    and concatenated into ``[*B, n_agents, D]``. Integer or boolean
    observations (a board of ``int8``) are cast to ``float32``, their shape
    kept.

    Args:
        groups: the groups to convert.
    """

    def __init__(self, groups: list[str]):
        self.groups = list(groups)
        obs = [keys.observation(g) for g in self.groups]
        super().__init__(in_keys=obs, out_keys=obs)

    @staticmethod
    def _vector(value, agent_dims: int) -> torch.Tensor:
        if isinstance(value, TensorDictBase):
            leaves = [value.get(k) for k in sorted(value.keys(True, True), key=str)]
            return torch.cat([v.flatten(agent_dims).to(torch.float32) for v in leaves], -1)
        return value.to(torch.float32)

    def _call(self, next_tensordict: TensorDictBase) -> TensorDictBase:
        for group in self.groups:
            key = keys.observation(group)
            value = next_tensordict.get(key, None)
            if value is None:
                continue
            agent_dims = next_tensordict.get(group).batch_dims
            next_tensordict.del_(key)
            next_tensordict.set(key, self._vector(value, agent_dims))
        return next_tensordict

    def _reset(self, tensordict: TensorDictBase, tensordict_reset: TensorDictBase) -> TensorDictBase:
        return self._call(tensordict_reset)

    def transform_observation_spec(self, observation_spec: Composite) -> Composite:
        for group in self.groups:
            group_spec = observation_spec[group]
            spec = group_spec[keys.OBSERVATION]
            if isinstance(spec, Composite):
                leaves = [spec[k] for k in sorted(spec.keys(True, True), key=str)]
                width = sum(leaf.shape[len(group_spec.shape):].numel() for leaf in leaves)
                shape = (*group_spec.shape, width)
            else:
                shape = spec.shape
            group_spec[keys.OBSERVATION] = Unbounded(shape=shape, dtype=torch.float32, device=spec.device)
        return observation_spec


class GroupTransform(Transform):
    """A transform over some groups' observations: ``groups``, or every group of the env it is
    appended to (read from the parent's ``group_map`` on first use)."""

    def __init__(self, groups=None, *, in_keys=(), out_keys=()):
        super().__init__(in_keys=list(in_keys), out_keys=list(out_keys))
        self._groups = list(groups) if groups is not None else None

    @property
    def groups(self) -> list[str]:
        if self._groups is None:
            self._groups = list(self.parent.group_map)
        return self._groups


class PrivateFeatures(GroupTransform):
    """A hidden-information task on any multi-agent env: some features only a few agents see.

    Features ``features`` (indices of the last dim of ``(group, "observation")``)
    are kept for the first ``seen_by`` agents of each group and set to 0 for
    the others, at reset and at every step. E.g. VMAS navigation with one goal
    for all (``agents_with_same_goal: n_agents``) and ``features=[4, 5]`` (the
    agent-to-goal vector), ``seen_by=1``: only the first agent knows where
    the goal is, and the others can learn it only from messages
    (``model.communication: attention``).

    Args:
        features: indices into the observation's last dim.
        seen_by: how many agents (the first of each group) keep them (>= 1).
        groups: the groups whose observations are masked (default: all of
            the env's, at the first call).

    Example:
        >>> env = TransformedEnv(VmasEnv("navigation", num_envs=8, n_agents=3, collisions=False,
        ...                              agents_with_same_goal=3), PrivateFeatures([4, 5]))
    """

    def __init__(self, features: list[int], seen_by: int = 1, groups: list[str] | None = None):
        if seen_by < 1:
            raise ValueError(f"PrivateFeatures: seen_by={seen_by} must be >= 1")
        super().__init__(groups)
        self.features = list(features)
        self.seen_by = seen_by

    def _call(self, next_tensordict: TensorDictBase) -> TensorDictBase:
        for g in self.groups:
            obs = next_tensordict.get(keys.observation(g))
            agent_dim = next_tensordict.batch_dims  # [*B, n, ...]: the agent dim follows the batch
            n = obs.shape[agent_dim]
            blind = torch.arange(n, device=obs.device) >= self.seen_by
            feat = torch.zeros(obs.shape[-1], dtype=torch.bool, device=obs.device)
            feat[self.features] = True
            hide = blind.reshape(n, *([1] * (obs.ndim - agent_dim - 2)), 1) & feat
            next_tensordict.set(keys.observation(g), obs.masked_fill(hide, 0.0))
        return next_tensordict

    def _reset(self, tensordict: TensorDictBase, tensordict_reset: TensorDictBase) -> TensorDictBase:
        return self._call(tensordict_reset)

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        return self._call(tensordict)
