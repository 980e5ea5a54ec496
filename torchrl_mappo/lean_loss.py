"""``lean_terms``: a ``MAPPOLoss``'s terms computed on plain tensors, for the trainer's minibatches.

TorchRL's ``MAPPOLoss`` does its maths on tensors, but around it every call
clones the minibatch's TensorDict, writes the networks' outputs into it,
builds the distribution through ``ProbabilisticTensorDictModule``, fills an
output TensorDict, reduces it with ``named_apply`` and computes diagnostics
the trainer never reads (ESS, max/mean ratio). With the small networks MAPPO
uses on a CPU that bookkeeping is most of the loss's forward.

:class:`LeanTerms` computes the same terms from the same loss: it calls the
loss's own actor and critic networks (their ``nn.Module``, on the
minibatch's tensors), builds the loss's own distribution class with its
kwargs, and reuses the loss's tensor-level methods (advantage
standardisation, entropy, entropy weighting, the value-norm hook). Its
``loss_objective``, ``loss_critic``, ``loss_entropy``, ``entropy``,
``kl_approx`` and ``clip_fraction`` equal the loss's to 1e-6, and so do the
gradients (tests/test_lean.py, on 12 loss variants).

:func:`lean_terms` accepts only losses whose forward it reproduces exactly
and returns ``None`` for any other (the trainer then calls the loss
itself): masked agents, recurrent or multi-module actors, composite or
masked distributions, value clipping, a target actor, importance-ratio caps,
advantage scaling, a functional loss, a reduction other than ``mean``, or a
subclass of ``MAPPOLoss`` other than this package's own.
"""
from __future__ import annotations

from typing import Mapping

import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torchrl.objectives import LossModule
from torchrl.objectives.multiagent import MAPPOLoss
from torchrl.objectives.utils import distance_loss

from torchrl_mappo.loss import MaskedMAPPOLoss
from torchrl_mappo.modules.recurrent import is_recurrent
from torchrl_mappo.modules.sampler import dist_keys, distribution, has_hooks, net_outputs, plain_actor

__all__ = ["LeanTerms", "lean_terms", "why_not_lean"]

# The advantage standardisation reads an optional mask from a TensorDict; a minibatch here has none.
_NO_MASK = TensorDict()


def why_not_lean(loss: LossModule) -> str | None:
    """Why :class:`LeanTerms` cannot stand in for ``loss`` (``None``: it can)."""
    if type(loss) not in (MAPPOLoss, MaskedMAPPOLoss):
        return f"the loss is a {type(loss).__name__}, not MAPPOLoss"
    if loss.functional:
        return "a functional loss (its parameters are swapped in on every call)"
    checks = {
        "a loss mask (masked agents or turns)": loss._loss_mask_key is not None,
        "value clipping": bool(loss.clip_value),
        "a delayed (target) actor": loss.delay_actor,
        "an importance-ratio cap": loss.max_importance_ratio is not None,
        "advantage scaling (advantage_norm)": loss.advantage_norm is not None,
        f"reduction {loss.reduction!r}": loss.reduction != "mean",
        "per-head entropy coefficients": loss._entropy_coeff_map is not None,
        "no critic": not loss._has_critic or loss.critic_network is None,
    }
    for reason, present in checks.items():
        if present:
            return reason
    actor, critic = loss.actor_network, loss.critic_network
    if is_recurrent(actor) or is_recurrent(critic):
        return "a recurrent network"
    reason = plain_actor(actor)
    if reason is not None:
        return reason
    net, dist = actor.module
    if not set(dist.in_keys) <= set(net.out_keys):
        return "the distribution reads entries its network does not write (an action mask)"
    if (type(critic) is not TensorDictModule or list(critic.out_keys) != [loss.tensor_keys.value]
            or has_hooks(critic)):
        return "the critic is not one network writing the state value"
    return None


def lean_terms(loss: LossModule) -> "LeanTerms | None":
    """A :class:`LeanTerms` for ``loss``, or ``None`` where it cannot reproduce the loss exactly
    (:func:`why_not_lean` says why)."""
    return LeanTerms(loss) if why_not_lean(loss) is None else None


class LeanTerms:
    """``loss``'s terms on a minibatch given as ``{key: tensor}`` (the keys of :attr:`in_keys`).

    Calling it returns a dict with ``loss_objective``, ``loss_critic``,
    ``clip_fraction``, ``kl_approx``, and with the loss's ``entropy_bonus``
    (read on every call) ``entropy`` and ``loss_entropy``: scalars equal to
    those of ``loss(td)`` on the same data. Only losses :func:`why_not_lean`
    accepts.
    """

    def __init__(self, loss: LossModule) -> None:
        self.loss = loss
        self.net, self.dist_module = loss.actor_network.module
        self.critic = loss.critic_network
        tk = loss.tensor_keys
        self.action, self.old_log_prob = tk.action, tk.sample_log_prob
        self.advantage, self.value_target = tk.advantage, tk.value_target
        self.dist_keys = dist_keys(self.dist_module)
        self.in_keys = list(dict.fromkeys([
            *self.net.in_keys, *self.critic.in_keys,
            self.action, self.old_log_prob, self.advantage, self.value_target,
        ]))

    def parameters(self):
        """The loss's parameters (the actor's and the critic's)."""
        return self.loss.parameters()

    def distribution(self, data: Mapping) -> torch.distributions.Distribution:
        """The current policy's distribution on ``data`` (the actor's network, then its distribution class)."""
        return distribution(self.dist_module, self.dist_keys, net_outputs(self.net, data.__getitem__), data.__getitem__)

    def __call__(self, data: Mapping) -> dict[str, torch.Tensor]:
        loss = self.loss
        advantage = data[self.advantage]
        if loss.normalize_advantage and advantage.numel() > 1:
            advantage = loss._standardize_advantage(advantage, _NO_MASK)
        dist = self.distribution(data)
        log_prob = dist.log_prob(data[self.action])
        old = data[self.old_log_prob]
        log_weight = (log_prob - old).unsqueeze(-1)
        gain1 = log_weight.exp() * advantage
        log_weight_clip = log_weight.clamp(*loss._clip_bounds)
        gain2 = log_weight_clip.exp() * advantage
        gain = torch.stack([gain1, gain2], -1).min(dim=-1).values
        out = {
            "loss_objective": (-gain).mean(),
            "clip_fraction": (log_weight_clip != log_weight).to(log_weight.dtype).mean(),
            "kl_approx": (old - log_prob).unsqueeze(-1).detach().mean(),
        }
        if loss.entropy_bonus:
            entropy = loss._get_entropy(dist, adv_shape=advantage.shape[:-1])
            out["entropy"] = entropy.detach().mean()
            out["loss_entropy"] = loss._weighted_loss_entropy(entropy).mean()
        value = net_outputs(self.critic, data.__getitem__)[loss.tensor_keys.value]
        target, value, _ = loss._critic_loss_inputs(data[self.value_target], value, None)
        out["loss_critic"] = (loss.critic_coeff * distance_loss(target, value, loss_function=loss.loss_critic_type)).mean()
        return out
