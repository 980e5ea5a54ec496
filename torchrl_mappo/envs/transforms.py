"""Our TorchRL transforms; each works on its own in any TorchRL pipeline."""
from __future__ import annotations

from typing import Mapping

import torch
from tensordict import TensorDictBase
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
