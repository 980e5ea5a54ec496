"""``HideAfter``: turn any multi-agent env into a memory task (a TorchRL transform)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from tensordict import TensorDictBase
from torchrl.data import Composite, Unbounded

from torchrl_mappo import keys
from torchrl_mappo.envs.transforms import GroupTransform


class HideAfter(GroupTransform):
    """Show some observation features only during an episode's first ``steps`` steps.

    After step ``steps`` of each episode, features ``features`` (indices of
    the last dim of ``(group, "observation")``) of every agent of ``groups``
    are set to 0: e.g. VMAS navigation's agent-to-goal vector, which an agent
    then has to remember. A feed-forward policy sees the goal only while the
    cue lasts; a recurrent one can keep it.

    The episode's step count lives in the tensordict (root ``"memory_step"``,
    ``[*B, 1]``, 0 at reset), so partial resets, collectors and checkpoints
    of the episodes in flight need nothing else. The reset observation
    (step 0) is always shown.

    Args:
        steps: how many observations of an episode show the features (>= 1).
        features: indices into the observation's last dim.
        groups: the groups whose observations are masked (default: all of
            the env's, at the first reset).

    Example:
        >>> env = TransformedEnv(VmasEnv("navigation", num_envs=8), HideAfter(5, [4, 5]))
    """

    def __init__(self, steps: int, features: Sequence[int], groups: Sequence[str] | None = None):
        if steps < 1:
            raise ValueError(f"HideAfter: steps={steps} must be >= 1")
        super().__init__(groups, out_keys=[keys.MEMORY_STEP])
        self.steps = steps
        self.features = list(features)

    def _hide(self, td: TensorDictBase, count: torch.Tensor) -> None:
        idx = torch.as_tensor(self.features, device=count.device)
        for g in self.groups:
            obs = td.get(keys.observation(g))
            late = (count >= self.steps).reshape(*count.shape[:-1], *([1] * (obs.ndim - count.ndim + 1)))
            hidden = obs.index_fill(-1, idx, 0.0)
            td.set(keys.observation(g), torch.where(late, hidden, obs))

    def _reset(self, tensordict: TensorDictBase, tensordict_reset: TensorDictBase) -> TensorDictBase:
        shape = (*tensordict_reset.batch_size, 1)
        reset = tensordict.get("_reset", None) if tensordict is not None else None
        count = tensordict.get(keys.MEMORY_STEP, None) if tensordict is not None else None
        if count is None or reset is None:
            count = torch.zeros(shape, dtype=torch.int64, device=tensordict_reset.device)
        else:
            count = torch.where(reset.reshape(shape), 0, count.reshape(shape))
        tensordict_reset.set(keys.MEMORY_STEP, count)
        self._hide(tensordict_reset, count)
        return tensordict_reset

    def _step(self, tensordict: TensorDictBase, next_tensordict: TensorDictBase) -> TensorDictBase:
        count = tensordict.get(keys.MEMORY_STEP) + 1
        next_tensordict.set(keys.MEMORY_STEP, count)
        self._hide(next_tensordict, count)
        return next_tensordict

    def transform_observation_spec(self, observation_spec: Composite) -> Composite:
        shape = (*observation_spec.shape, 1)
        observation_spec[keys.MEMORY_STEP] = Unbounded(shape=shape, dtype=torch.int64, device=observation_spec.device)
        return observation_spec

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        raise NotImplementedError("HideAfter works inside an env (TransformedEnv), not on stored data")
