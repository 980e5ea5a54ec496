"""``lean_sampler``: the collector's stand-in for a group's ``ProbabilisticActor`` while it samples.

At every collected step a ``ProbabilisticActor`` writes its network's outputs
through ``TensorDictModule`` (which passes each output tensor through
``TensorDict.from_any``, a filesystem lookup for pandas in tensordict 0.14.3),
then builds its distribution and samples through
``ProbabilisticTensorDictModule``. :class:`LeanSampler` does the same calls on
the same objects: the actor's network on the observation, the actor's
distribution class with its kwargs, TorchRL's ``sample_and_log_prob`` (the
call ``SafeProbabilisticModule`` makes), and writes the same entries: the
same actions, log-probs and RNG draws (tests/test_lean.py), about a
third less time per step.

It only samples: under any interaction type but ``RANDOM`` (deterministic
evaluation, ``MODE``, ``MEAN``) it calls the actor itself. :func:`lean_sampler`
returns ``None`` for actors it does not reproduce exactly (see
:func:`plain_actor`); the trainer's loss, checkpoints and evaluation always
use the actor itself.
"""
from __future__ import annotations

import torch
from tensordict import TensorDictBase
from tensordict.nn import (
    InteractionType,
    ProbabilisticTensorDictModule,
    ProbabilisticTensorDictSequential,
    TensorDictModule,
    TensorDictModuleBase,
    TensorDictSequential,
)
from tensordict.nn.distributions import CompositeDistribution
from tensordict.nn.probabilistic import interaction_type
from torchrl.modules import SafeProbabilisticModule
from torchrl.modules.distributions.utils import sample_and_log_prob

__all__ = ["LeanSampler", "distribution", "dist_keys", "has_hooks", "lean_sampler", "net_outputs", "plain_actor",
           "sampling_policy"]


def has_hooks(module: torch.nn.Module) -> bool:
    """Forward hooks or pre-hooks on ``module`` itself (a lean path calling its parts would skip them)."""
    return bool(module._forward_hooks or module._forward_pre_hooks)


def plain_actor(actor: TensorDictModuleBase) -> str | None:
    """Why ``actor`` is not one ``TensorDictModule`` network followed by its distribution (``None``: it is).

    Such an actor's network output is ``net.module(*inputs)`` and its distribution
    ``distribution_class(**outputs, **distribution_kwargs)`` (the network may
    be recurrent or communicating: its in/out keys say what it reads and
    writes); anything else (several modules, ``TensorDictModule``
    subclasses, composite distributions, hooks) is not.
    """
    if (not isinstance(actor, ProbabilisticTensorDictSequential) or len(actor.module) != 2
            or actor.return_composite):
        return "the actor is not one network followed by its distribution"
    net, dist = actor.module
    if type(net) is not TensorDictModule or not isinstance(dist, ProbabilisticTensorDictModule):
        return "the actor is not one network followed by its distribution"
    if issubclass(dist.distribution_class, CompositeDistribution):
        return "a composite distribution"
    if any(has_hooks(m) for m in (actor, net, dist)):
        return "forward hooks on the actor"
    return None


def dist_keys(dist_module: ProbabilisticTensorDictModule) -> list[tuple[str, object]]:
    """``[(distribution kwarg, entry it reads)]`` of ``dist_module``, as its ``get_dist`` pairs them."""
    return [(k[-1] if isinstance(k, tuple) else k, td_key)
            for k, td_key in zip(dist_module.dist_keys, dist_module.in_keys)]


def net_outputs(net: TensorDictModule, get) -> dict:
    """``{out_key: tensor}`` of a plain ``TensorDictModule`` on the entries ``get(key)`` returns."""
    out = net.module(*(get(k) for k in net.in_keys))
    return dict(zip(net.out_keys, out if isinstance(out, tuple) else (out,)))


def distribution(dist_module: ProbabilisticTensorDictModule, keys: list, outs: dict, get):
    """``dist_module``'s distribution from the network's ``outs``, other entries (a mask) from ``get``."""
    kwargs = {name: outs[key] if key in outs else get(key) for name, key in keys}
    return dist_module.distribution_class(**kwargs, **dict(dist_module.distribution_kwargs))


def lean_sampler(actor: TensorDictModuleBase) -> "LeanSampler | None":
    """A :class:`LeanSampler` over ``actor``, or ``None`` where it would not sample exactly as the actor."""
    if plain_actor(actor) is not None:
        return None
    dist = actor.module[1]
    # SafeProbabilisticModule (ProbabilisticActor's) samples with sample_and_log_prob, as we do.
    exact = (isinstance(dist, SafeProbabilisticModule) and dist.return_log_prob and dist.num_samples is None
             and not dist.safe and dist._generator is None and dist._generator_key is None)
    return LeanSampler(actor) if exact else None


class LeanSampler(TensorDictModuleBase):
    """``actor``'s sampling step (``RANDOM`` interaction) without its TensorDict plumbing.

    Reads and writes what ``actor`` does: its network's in_keys; its
    network's out_keys (e.g. ``(group, "loc")``, ``(group, "scale")``), the
    action and the log-prob. Built by :func:`lean_sampler`.
    """

    def __init__(self, actor: ProbabilisticTensorDictSequential) -> None:
        super().__init__()
        self.actor = actor
        self.in_keys = list(actor.in_keys)
        self.out_keys = list(actor.out_keys)
        dist = actor.module[1]
        self._dist_keys = dist_keys(dist)
        (self._action,) = dist.dist_sample_keys
        self._log_prob = dist.log_prob_key

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        net, dist_module = self.actor.module
        if (interaction_type() or dist_module.default_interaction_type) is not InteractionType.RANDOM:
            return self.actor(tensordict)
        outs = net_outputs(net, tensordict.get)
        dist = distribution(dist_module, self._dist_keys, outs, tensordict.get)
        action, log_prob = sample_and_log_prob(dist, torch.Size(), reparameterize=dist.has_rsample)
        for key, value in outs.items():
            tensordict.set(key, value)
        tensordict.set(self._action, action)
        tensordict.set(self._log_prob, log_prob)
        return tensordict


def sampling_policy(modules, lean: bool) -> TensorDictSequential:
    """The collector's policy: ``modules`` in order, each plain actor a :class:`LeanSampler` when ``lean``."""
    return TensorDictSequential(*((lean_sampler(m) or m) if lean else m for m in modules))
