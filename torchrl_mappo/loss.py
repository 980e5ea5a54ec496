"""``make_loss``: TorchRL's ``MAPPOLoss`` with its keys set for one group and its GAE."""
from __future__ import annotations

import warnings
from typing import Mapping

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import TensorDictModule, TensorDictModuleBase
from torchrl.envs import EnvBase
from torchrl.modules import PopArtValueNorm, ProbabilisticActor, RunningValueNorm
from torchrl.objectives import LossModule, ValueEstimators
from torchrl.objectives.multiagent import MAPPOLoss

from torchrl_mappo import keys
from torchrl_mappo.config import LossConfig
from torchrl_mappo.modules.recurrent import is_recurrent
from torchrl_mappo.sequences import recurrent_values
from torchrl_mappo.modules.attention import AttentionCritic

# We standardise advantages over the agent dim on purpose (MAPPO spec: over
# the batch, not per agent); TorchRL warns about it on every call.
warnings.filterwarnings(
    "ignore", message="You requested advantage normalization", category=UserWarning
)


def _group_or_root(env: EnvBase, group: str, group_key, root_key: str, available):
    """The group's own entry if the env has one, else the team-level root entry.

    VMAS, for one, has per-agent rewards but only a root ``done``;
    ``MultiAgentGAE`` broadcasts root entries to the agents.
    """
    return group_key if group_key in available else root_key


class MaskedMAPPOLoss(MAPPOLoss):
    """``MAPPOLoss`` whose advantage standardisation also skips dead agents.

    TorchRL already drops masked positions (``loss_mask_key``) from every
    loss term; its advantage standardisation only honours the time-padding
    mask ``"shifted_valid"``. This hook feeds it the live-agent mask instead,
    so a dead agent's advantage cannot shift the live agents' statistics.
    """

    def _standardize_advantage(self, advantage: torch.Tensor, tensordict: TensorDictBase) -> torch.Tensor:
        alive = tensordict.get(self.loss_mask_key, None) if isinstance(self.loss_mask_key, tuple) else None
        if alive is not None:
            tensordict = TensorDict({"shifted_valid": alive}, batch_size=tensordict.batch_size)
        return super()._standardize_advantage(advantage, tensordict)


def make_loss(
    actor: ProbabilisticActor,
    critic: TensorDictModule,
    env: EnvBase,
    group: str,
    cfg_loss: LossConfig,
) -> MAPPOLoss:
    """TorchRL's ``MAPPOLoss`` for ``group`` with a ``MultiAgentGAE`` value estimator.

    Keys: action ``(group, "action")``, log-prob ``(group, "action_log_prob")``,
    value ``(group, "state_value")``, reward ``(group, "reward")``; done and
    terminated from ``(group, ...)`` when the env has them, else the root.
    GAE writes ``(group, "advantage")`` and ``(group, "value_target")``, so
    several groups' losses can share one batch.

    Advantages are standardised over the whole minibatch, agents included
    (the MAPPO spec; ``MAPPOLoss``'s own default is per agent).
    ``cfg_loss.value_norm`` attaches TorchRL's ``PopArtValueNorm`` or
    ``RunningValueNorm`` (critic targets and predictions normalised by
    running statistics of the returns before the distance). Both are
    normalised with the same statistics, so the mean cancels: the critic
    loss is divided by the running variance, and the critic keeps predicting
    real-scale values (its last layer is never rescaled, unlike the PopArt
    of the MAPPO paper).

    Where the env marks live agents with ``(group, "mask")`` (MAgent2), the
    loss reads it as its ``loss_mask_key``: a dead agent's steps add nothing
    to the policy, critic or entropy terms, nor to their gradients, nor to
    the advantage standardisation (:class:`MaskedMAPPOLoss`).

    The loss is not functionalized (``functional=False``): it calls the
    actor and critic modules with their own parameters, the ones the
    collector's policy uses.

    With ``entropy_coeff`` 0 (and no ``entropy_coeff_end`` above 0) the
    loss has ``entropy_bonus=False``: no entropy term, no ``loss_entropy``.

    A recurrent critic's GAE gets no value network: :func:`compute_advantages`
    writes the values first (:func:`torchrl_mappo.sequences.recurrent_values`),
    because TorchRL's own call resets the next-state memory at episode starts.
    """
    masked = keys.mask(group) in env.observation_spec.keys(True)
    loss_cls = MaskedMAPPOLoss if masked else MAPPOLoss
    value_norm = {"none": None, "popart": PopArtValueNorm, "running": RunningValueNorm}[cfg_loss.value_norm]
    loss = loss_cls(
        actor,
        critic,
        value_norm=value_norm(shape=1) if value_norm is not None else None,
        clip_epsilon=cfg_loss.clip_epsilon,
        entropy_coeff=cfg_loss.entropy_coeff,
        # Coefficient 0 all along: skip the entropy (a Monte-Carlo estimate for
        # TanhNormal) and its backward; the trainer still measures it.
        entropy_bonus=cfg_loss.entropy_coeff > 0 or (cfg_loss.entropy_coeff_end or 0.0) > 0,
        critic_coeff=cfg_loss.critic_coeff,
        loss_critic_type=cfg_loss.loss_critic_type,
        normalize_advantage=cfg_loss.normalize_advantage,
        normalize_advantage_exclude_dims=(),
        clip_value=cfg_loss.clip_value,
        # The actor and critic are called as they are: no parameter swap
        # (``to_module``) on every call, ~5% of an update on CPU. The loss's
        # ``*_network_params`` are then None (GAE takes ``params=None``).
        functional=False,
    )
    loss.set_keys(
        action=keys.action(group),
        sample_log_prob=keys.action_log_prob(group),
        value=keys.state_value(group),
        reward=keys.reward(group),
        done=_group_or_root(env, group, keys.done(group), keys.DONE, env.done_keys),
        terminated=_group_or_root(env, group, keys.terminated(group), keys.TERMINATED, env.done_keys),
        advantage=keys.advantage(group),
        value_target=keys.value_target(group),
    )
    # A recurrent critic's values are written by compute_advantages, not by the estimator.
    no_net = {"value_network": None} if is_recurrent(critic) else {}
    # GAE values s_t and s_{t+1} in one vmapped call; torch has no vmap rule for attention
    # (a warned slow fallback), so the attention critic is called on each in turn.
    attention = isinstance(getattr(critic, "module", None), AttentionCritic)
    loss.make_value_estimator(ValueEstimators.MAGAE, gamma=cfg_loss.gamma, lmbda=cfg_loss.lmbda,
                              deactivate_vmap=attention, **no_net)
    # Agents die (MAgent2): only steps where the agent is alive carry loss.
    loss.loss_mask_key = keys.mask(group) if masked else None
    return loss


def compute_advantages(
    batch: TensorDictBase, losses: Mapping[str, LossModule], actors: Mapping[str, TensorDictModuleBase]
) -> None:
    """Each learning group's GAE, written in place as ``(group, "advantage"/"value_target")``.

    A joint-action critic (``critic_joint_actions``) values s_{t+1} with the
    other agents' NEXT actions: they are sampled from the group's current
    policy (``actors[group]``) before GAE runs.
    A recurrent critic's values (state and next state) come from
    :func:`~torchrl_mappo.sequences.recurrent_values` before GAE runs.
    Where a group marks live agents (``loss.loss_mask_key``), a dead
    agent's advantage is set to 0 and its value target to its value: with
    the loss masked too, steps after death carry nothing.
    """
    with torch.no_grad():
        for group, loss in losses.items():
            if keys.action(group) in loss.critic_network.in_keys:
                nxt = batch.get(keys.NEXT)
                nxt.set(keys.action(group), actors[group](nxt.clone(False)).get(keys.action(group)))
            if is_recurrent(loss.critic_network):
                recurrent_values(batch, loss.critic_network, loss.tensor_keys.value)
            loss.value_estimator(
                batch,
                params=loss.critic_network_params,
                target_params=loss.target_critic_network_params,
            )
            if isinstance(loss.loss_mask_key, tuple):
                tk = loss.tensor_keys
                alive = batch.get(loss.loss_mask_key).unsqueeze(-1)
                batch.set(tk.advantage, torch.where(alive, batch.get(tk.advantage), 0.0))
                batch.set(tk.value_target, torch.where(alive, batch.get(tk.value_target), batch.get(tk.value)))
