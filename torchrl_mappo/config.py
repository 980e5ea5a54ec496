"""The config schema: one dataclass per section, a docstring under each field, each section's
range checks in its ``check(where)`` right under its fields (:meth:`Config.check` runs them all).

The dataclasses mirror the arguments of what they configure; their defaults are the only ones
in the package. YAML, overrides and types: :mod:`torchrl_mappo.config_io` (``load_config``,
``config_from_dict`` and ``config_to_dict`` stay importable from here). Anything that does not
fit raises :class:`ConfigError` with the field's full name and the fix.
"""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import Any, Literal

from torchrl_mappo.errors import ConfigError
from torchrl_mappo.groups import (  # noqa: F401  (importable from here too)
    GROUP_MAP_PRESETS, RESERVED_GROUP_NAMES, REWARD_SHARING_MODES, RewardShare, check_group_map, check_group_name,
    check_groups_exist,
)

__all__ = [
    "AlternateConfig", "CollectorConfig", "Config", "ConfigError", "EnvConfig", "GroupConfig", "LossConfig", "ModelConfig",
    "RunConfig", "TrainConfig", "load_config", "config_from_dict", "config_to_dict",
]

_IO = ("load_config", "config_from_dict", "config_to_dict")


def __getattr__(name: str) -> Any:
    # The loader imports this schema, so its entry points are re-exported on first use.
    if name in _IO:
        from torchrl_mappo import config_io

        return getattr(config_io, name)
    raise AttributeError(f"module 'torchrl_mappo.config' has no attribute {name!r}")


class _Section:
    """Base of the section dataclasses: the one-line range error naming the field."""

    def _need(self, ok: bool, where: str, name: str, msg: str) -> None:
        if not ok:
            raise ConfigError(f"{where}.{name}={getattr(self, name)!r}: {msg}")


# --- env -------------------------------------------------------------------
@dataclass
class EnvConfig(_Section):
    """Arguments of :func:`torchrl_mappo.make_env`."""

    family: Literal["vmas", "pettingzoo", "magent", "torchrl", "gymnasium_ma"] = "vmas"
    """``vmas`` (``VmasEnv``), ``pettingzoo`` (any PettingZoo env, parallel or turn-based (AEC),
    through ``PettingZooWrapper``), ``magent`` (a ``magent2`` env: ``battle_v4``, ``tiger_deer_v4``...), ``torchrl`` (your own
    TorchRL ``EnvBase``, from ``env.make``) or ``gymnasium_ma`` (EPyMARL-style multi-agent gymnasium
    envs: ``lbforaging``, ``rware``). See the README, "Your own environment"."""
    scenario: str = "navigation"
    """A scenario of the family: a VMAS scenario; for ``pettingzoo`` a bare mpe2 name
    (``simple_spread_v3``) or any module with ``parallel_env()``/``env()`` by import path
    (``pettingzoo.sisl.pursuit_v5``, ``pettingzoo.classic.tictactoe_v3``, your own); for ``magent``
    a ``magent2.environments`` module (``battle_v4``, ``battlefield_v5``, ``adversarial_pursuit_v4``,
    ``gather_v5``, ``tiger_deer_v4``, ``combined_arms_v6``);
    for ``gymnasium_ma`` a registered gymnasium id (``Foraging-8x8-2p-2f-coop-v3``,
    ``rware-tiny-2ag-v2``, or ``module:id``). Checked against the installed packages once every field
    is valid (:mod:`torchrl_mappo.envs.scenarios`); ``torchrl`` ignores it."""
    make: str | None = None
    """``torchrl`` only: ``package.module:callable`` or ``path/to/file.py:callable`` returning a
    TorchRL ``EnvBase`` with the multi-agent layout; it gets ``num_envs`` (and ``device``, ``seed``,
    ``max_steps``) when its signature takes them, else ``num_envs`` copies run in a ``SerialEnv``."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """``torchrl`` only: keyword arguments of ``env.make``'s callable."""
    num_envs: int = 60
    """Environments stepped together (VMAS, and ``torchrl`` callables taking ``num_envs``: vectorized;
    PettingZoo, MAgent2, gymnasium_ma and other ``torchrl`` envs: copies in a ``SerialEnv``)."""
    max_steps: int = 100
    """Episode length in steps (``torchrl``: passed as ``max_steps`` when the callable takes it; gymnasium_ma:
    ``gymnasium.make``'s ``max_episode_steps``, a time limit on top of the env's own)."""
    continuous_actions: bool = True
    """``false``: discrete actions (a Categorical policy). MAgent2 has only discrete actions."""
    scenario_kwargs: dict[str, Any] = field(default_factory=dict)
    """Passed straight to the scenario (VMAS: ``n_agents``, ``shared_rew``, ``lidar_range`` ...;
    MAgent2: ``map_size`` ...); a kwarg the scenario ignores is an error when the env is built."""
    group_map: str | dict[str, list[str]] | None = None
    """How agents form groups (TorchRL's ``group_map``): ``null`` (the env's default: by name prefix),
    ``per_agent``, ``all_in_one``, or ``{team: [agent names]}`` (each agent in exactly one team).
    The agents themselves are checked against the env in :func:`torchrl_mappo.make_env`."""
    reward_sharing: dict[str, Any] = field(default_factory=dict)
    """Per group: ``individual``, ``shared`` or ``{mode: mixed, weight: w}``, parsed once by
    :class:`~torchrl_mappo.groups.RewardShare` (:meth:`reward_shares`); groups left out keep their own reward."""
    return_state: bool = True
    """PettingZoo/MAgent2: put the env's global state at the root ``"state"`` (the centralized
    critic's input)."""
    memory_steps: int | None = None
    """A memory task on any env (:class:`~torchrl_mappo.envs.memory.HideAfter`): every group's
    observation features ``memory_features`` are shown only during the first ``memory_steps`` steps
    of each episode and zeroed afterwards (>= 1; ``null``: observations unchanged)."""
    memory_features: list[int] = field(default_factory=list)
    """Indices (last dim of ``(group, "observation")``) hidden after ``memory_steps``, e.g. ``[4, 5]``:
    VMAS navigation's agent-to-goal vector. Checked against the env's observation size."""
    private_features: list[int] = field(default_factory=list)
    """A hidden-information task on any env (:class:`~torchrl_mappo.envs.transforms.PrivateFeatures`):
    these observation features (indices of the last dim) are shown only to the first ``private_to``
    agents of each group and zeroed for the others, e.g. ``[4, 5]`` on VMAS navigation with one goal
    for all (``agents_with_same_goal: n_agents``): the others learn where it is only from messages
    (``model.communication: attention``). Empty: observations unchanged."""
    private_to: int = 1
    """How many agents (the first of each group) see ``private_features``, >= 1."""

    def check(self, where: str) -> None:
        """Range checks; ``where`` is ``"<origin>: env"``."""
        self._need(self.num_envs > 0, where, "num_envs", "must be a positive integer")
        self._need(self.max_steps > 0, where, "max_steps", "must be a positive integer")
        self._need(not (self.family == "magent" and self.continuous_actions), where, "continuous_actions",
                   "MAgent2 has only discrete actions; set env.continuous_actions: false")
        self._check_make(where)
        check_group_map(self.group_map, where)
        self.reward_shares(where)
        self._need(self.memory_steps is None or self.memory_steps >= 1, where, "memory_steps",
                   "must be a positive number of steps, or null for no memory task")
        self._need(self.memory_steps is None or bool(self.memory_features), where, "memory_steps",
                   "hides env.memory_features, which is empty; list the observation features to hide, e.g. [4, 5]")
        self._need(self.memory_steps is not None or not self.memory_features, where, "memory_features",
                   "are hidden after env.memory_steps, which is null; set it, e.g. env.memory_steps=5")
        self._need(len(set(self.memory_features)) == len(self.memory_features), where, "memory_features",
                   "lists a feature twice")
        self._need(len(set(self.private_features)) == len(self.private_features), where, "private_features",
                   "lists a feature twice")
        self._need(self.private_to >= 1, where, "private_to",
                   "must be a positive number of agents (the first of each group see env.private_features), e.g. 1")

    def _check_make(self, where: str) -> None:
        """``make``/``kwargs`` belong to ``family: torchrl``, ``scenario_kwargs`` to the others."""
        if self.family != "torchrl":
            self._need(self.make is None, where, "make", f"only used by env.family: torchrl (family is "
                       f"{self.family!r}); remove it, or set env.family: torchrl")
            self._need(not self.kwargs, where, "kwargs", "only used by env.family: torchrl (the callable's "
                       "arguments); use env.scenario_kwargs for the other families")
            return
        module, _, func = (self.make or "").rpartition(":")
        self._need(bool(module.strip() and func.isidentifier()), where, "make",
                   "env.family: torchrl needs 'package.module:callable' or 'path/to/file.py:callable' "
                   "returning a TorchRL EnvBase, e.g. env.make=examples/custom_env.py:make_env")
        self._need(not self.scenario_kwargs, where, "scenario_kwargs",
                   "env.family: torchrl passes env.kwargs to the callable; move them to env.kwargs")

    def reward_shares(self, where: str = "env") -> dict[str, RewardShare]:
        """``reward_sharing`` parsed: ``{group: RewardShare}`` (the only parser of that field)."""
        return {g: RewardShare.parse(spec, f"{where}.reward_sharing.{g}") for g, spec in self.reward_sharing.items()}

    def check_groups(self, groups: list[str]) -> None:
        """``reward_sharing`` must name groups the env has (called by :func:`make_env`)."""
        check_groups_exist("env.reward_sharing", self.reward_sharing, groups)


# --- model, loss -----------------------------------------------------------
@dataclass
class ModelConfig(_Section):
    """Arguments of :func:`make_actor` and :func:`make_critic`.

    The default network is ``[Linear(256) -> LayerNorm -> Tanh] x 2`` (the MAPPO paper's).
    """

    hidden_sizes: list[int] = field(default_factory=lambda: [256, 256])
    """MLP hidden layer sizes, for the actor and the critic (at least one, each positive)."""
    activation: Literal["tanh", "relu", "elu", "gelu", "silu", "leaky_relu"] = "tanh"
    """Activation after each hidden layer."""
    layer_norm: bool = True
    """``Linear -> LayerNorm -> activation`` in each hidden layer."""
    share_params: bool = True
    """One network for all agents of a group; ``false``: one per agent, evaluated in a single
    vmapped call (``MultiAgentMLP``)."""
    centralized: bool = True
    """The critic sees the global state (or all the group's observations): MAPPO; ``false`` gives
    IPPO's local critic."""
    critic_input: Literal["auto", "state", "concat_obs", "all_obs", "agent_specific", "local"] = "auto"
    """``auto`` (the env's global state if it has one, else ``concat_obs``), ``state``, ``concat_obs``
    (the group's own observations, concatenated), ``all_obs`` (every group's observations),
    ``agent_specific`` (the global input + the agent's own observation + a one-hot agent id, as in
    the MAPPO paper) or ``local`` (same as ``centralized: false``)."""
    critic_joint_actions: bool = False
    """The critic also sees the OTHER agents' actions (never the agent's own: a baseline that
    depends on the agent's own action would bias its policy gradient)."""
    actor_agent_id: bool | Literal["auto"] = False
    """Append a one-hot agent id to the actor's input (lets shared parameters tell agents apart).
    ``auto``: only where, on a reset of the env, two agents of the group observe exactly the same
    (VMAS dispersion: all start at the origin), which a shared policy played deterministically could
    never split; with ``share_params: false`` or communicating actors, no id. Resolved once when the
    run is built; the run's ``config.yaml`` and checkpoints hold the answer."""
    critic_agent_id: bool = False
    """Append a one-hot agent id to the critic's input."""
    orthogonal_init: bool = False
    """Orthogonal weights (gain sqrt(2); 0.01 for the policy head, 1 for the value head), zero biases."""
    init_log_std: float = 0.0
    """Initial log standard deviation of the continuous policy (std 1)."""
    state_dependent_std: bool = False
    """Continuous policies: ``false``: the std is a learned parameter per action dimension, the same in
    every state (TorchRL's ``AddStateIndependentNormalScale``); ``true``: the network outputs it
    with the mean (TorchRL's ``NormalParamExtractor``, biased softplus: ``exp(init_log_std)`` at a
    zero output), as BenchMARL's MAPPO does."""
    recurrent: Literal["none", "gru", "lstm"] = "none"
    """``gru``: the actor has memory (rMAPPO): ``MLP -> GRU -> head``, its hidden state carried
    from step to step through the collector and reset at each episode start
    (:mod:`torchrl_mappo.modules.recurrent`); ``lstm``: the same with an LSTM (its state is
    ``[h, c]``); ``none``: a feed-forward MLP."""
    critic_recurrent: Literal["none", "gru", "lstm"] | None = None
    """The critic's memory, like ``recurrent``; ``null``: the same as ``recurrent``."""
    recurrent_hidden: int = 64
    """Width of the GRU's (LSTM's) hidden state (and of the MLP features it reads), >= 1."""
    recurrent_layers: int = 1
    """Stacked GRU (LSTM) layers, >= 1."""

    @property
    def is_recurrent(self) -> bool:
        """The actor or the critic has memory (training then runs on sequence chunks)."""
        return self.recurrent != "none" or self.critic_memory != "none"

    @property
    def critic_memory(self) -> str:
        """``critic_recurrent`` with ``null`` resolved to ``recurrent``."""
        return self.recurrent if self.critic_recurrent is None else self.critic_recurrent
    critic: Literal["mlp", "attention"] = "mlp"
    """``mlp``: the critic input of ``critic_input`` into an MLP (its size fixed by the agent count);
    ``attention``: each agent's embedding attends over every agent of the group (plus the other
    groups' agents for ``all_obs``, the global state where there is one); one value per agent,
    permutation-equivariant and independent of the agent count (:mod:`torchrl_mappo.modules.attention`)."""
    communication: Literal["none", "attention"] = "none"
    """``none``: each agent's policy sees its own observation only; ``attention``: communicating actors:
    each agent embeds its observation (its message) and attends over the messages of its group's agents
    at every step, then acts (:class:`~torchrl_mappo.modules.attention.CommunicatingNet`):
    differentiable within the step, decentralized apart from the messages, any number of agents, a dead
    agent's message left out. Needs ``share_params: true`` and a feed-forward actor."""
    attention_heads: int = 4
    """``critic: attention`` and ``communication: attention``: attention heads; they split the embedding
    (``hidden_sizes[-1]`` wide)."""

    def check(self, where: str) -> None:
        """Range checks; ``where`` is ``"<origin>: model"`` (or ``...: per_group.<g>.model``)."""
        self._need(len(self.hidden_sizes) > 0, where, "hidden_sizes", "give at least one layer size, e.g. [256, 256]")
        self._need(all(h > 0 for h in self.hidden_sizes), where, "hidden_sizes", "every layer size must be positive")
        self._need(self.recurrent_hidden >= 1, where, "recurrent_hidden", "must be a positive integer, e.g. 64")
        self._need(self.recurrent_layers >= 1, where, "recurrent_layers", "must be a positive integer, e.g. 1")
        # Pairs that would be accepted and do nothing (README: "Combinations refused").
        self._need(self.centralized or self.critic_input in ("auto", "local"), where, "critic_input",
                   "model.centralized: false gives a local critic (IPPO) that ignores it; "
                   "set model.centralized: true, or drop model.critic_input")
        self._need(not (self.critic_agent_id and self.critic_input == "agent_specific"), where, "critic_agent_id",
                   "critic_input 'agent_specific' already appends the agent id; drop model.critic_agent_id")
        self._check_attention(where)
        self._check_communication(where)
        for net in ("critic", "actor"):
            self._need(not (getattr(self, f"{net}_agent_id") is True and not self.share_params), where, f"{net}_agent_id",
                       f"with model.share_params: false every agent has its own {net}, for which its id is a "
                       "constant input (a bias); drop it, or set model.share_params: true")

    def _check_heads(self, where: str) -> None:
        self._need(self.attention_heads >= 1 and self.hidden_sizes[-1] % self.attention_heads == 0, where,
                   "attention_heads", f"must be >= 1 and divide the embedding width hidden_sizes[-1]="
                   f"{self.hidden_sizes[-1]}, e.g. 4")

    def _check_communication(self, where: str) -> None:
        if self.communication == "none":
            return
        self._check_heads(where)
        self._need(self.share_params, where, "share_params",
                   "model.communication: attention is one network shared by the group's agents (per-agent "
                   "communicating actors are not built); set model.share_params: true, or model.communication: none")
        self._need(self.recurrent == "none", where, "recurrent",
                   "model.communication: attention has no memory (a recurrent communicating actor is not built); "
                   "set model.recurrent: none, or model.communication: none")
        self._need(self.actor_agent_id is not True, where, "actor_agent_id",
                   "model.communication: attention tells agents apart by their messages, and agent ids would tie "
                   "the actor to the agent count; drop it, or set model.communication: none")

    def _check_attention(self, where: str) -> None:
        if self.critic != "attention":
            return
        self._check_heads(where)
        self._need(self.centralized and self.critic_input not in ("local", "agent_specific"), where, "critic",
                   "the attention critic attends over the group's agents (critic_input auto, state, concat_obs "
                   "or all_obs, centralized: true); use model.critic: mlp for a local or agent_specific critic")
        for name, why in (("critic_joint_actions", "it does not take actions"),
                          ("critic_agent_id", "agent ids would tie it to the agent count"),):
            self._need(not getattr(self, name), where, name,
                       f"model.critic: attention does not use it ({why}); drop it, or use model.critic: mlp")
        self._need(self.share_params, where, "share_params",
                   "model.critic: attention is one network for any number of agents; set model.share_params: "
                   "true, or use model.critic: mlp")
        self._need(self.critic_memory == "none", where, "critic",
                   f"the attention critic has no memory, and the critic's is {self.critic_memory!r} "
                   "(model.critic_recurrent, or model.recurrent when that is null); set model.critic_recurrent: "
                   "none (the actor keeps its GRU), or use model.critic: mlp")


@dataclass
class LossConfig(_Section):
    """Arguments of :func:`make_loss` (TorchRL's ``MAPPOLoss`` and its GAE)."""

    clip_epsilon: float = 0.2
    """PPO's ratio clipping radius, in (0, 1)."""
    entropy_coeff: float = 0.01
    """Weight of the entropy bonus (>= 0)."""
    critic_coeff: float = 0.5
    """Weight of the critic's loss (>= 0)."""
    gamma: float = 0.99
    """Discount factor, in (0, 1]."""
    lmbda: float = 0.95
    """GAE's lambda, in [0, 1] (TorchRL's spelling)."""
    normalize_advantage: bool = True
    """Standardise advantages over the minibatch and all its agents together (not per agent)."""
    clip_value: float | None = None
    """PPO value clipping radius (> 0); ``null``: no value clipping."""
    loss_critic_type: Literal["l1", "l2", "smooth_l1"] = "l2"
    """The critic's loss: ``l2``, ``l1`` or ``smooth_l1`` (Huber)."""
    value_norm: Literal["none", "popart", "running"] = "none"
    """Normalise the critic's targets: TorchRL's ``PopArtValueNorm`` (``popart``), ``RunningValueNorm``
    (``running``) or ``none``. Target and real-scale prediction share the statistics, so this divides
    the critic loss by the running variance (no output-preserving rescale of the critic, unlike the
    MAPPO paper's PopArt; see the README)."""
    entropy_coeff_end: float | None = None
    """Anneal the entropy coefficient linearly to this value over training (>= 0); ``null``: constant."""

    def check(self, where: str) -> None:
        """Range checks; ``where`` is ``"<origin>: loss"`` (or ``...: per_group.<g>.loss``)."""
        self._need(0 < self.clip_epsilon < 1, where, "clip_epsilon", "must be in (0, 1), e.g. 0.2")
        self._need(self.entropy_coeff >= 0, where, "entropy_coeff", "must be >= 0")
        self._need(self.critic_coeff >= 0, where, "critic_coeff", "must be >= 0")
        self._need(0 < self.gamma <= 1, where, "gamma", "must be in (0, 1], e.g. 0.99")
        self._need(0 <= self.lmbda <= 1, where, "lmbda", "must be in [0, 1], e.g. 0.95")
        self._need(self.clip_value is None or self.clip_value > 0, where, "clip_value",
                   "must be > 0, or null to disable")
        self._need(self.entropy_coeff_end is None or self.entropy_coeff_end >= 0, where, "entropy_coeff_end",
                   "must be >= 0 or null")


# --- train -----------------------------------------------------------------
@dataclass
class TrainConfig(_Section):
    """Arguments of :class:`torchrl_mappo.Trainer` (the loop and its budget)."""

    frames_per_batch: int = 6000
    """Frames (env steps summed over the envs) collected per iteration; a multiple of
    ``env.num_envs`` (every env steps the same number of times)."""
    total_frames: int = 120_000
    """The training budget in frames; a multiple of ``frames_per_batch``."""
    num_epochs: int = 10
    """Passes over each batch."""
    minibatch_size: int = 1000
    """Frames per gradient step; at most ``frames_per_batch``."""
    lr: float = 3e-4
    """Adam's learning rate."""
    max_grad_norm: float = 0.5
    """Gradient norm clipping (> 0)."""
    seed: int = 0
    """Seeds torch and the simulator; in [0, 2**32)."""
    device: str = "cpu"
    """``cpu``, ``cuda``, ``cuda:N`` or ``mps``; checked against what this torch sees."""
    target_return: float | None = None
    """Stop as soon as every group's mean episode return in an iteration reaches it (``null``: run
    the whole ``total_frames``)."""
    num_threads: int | Literal["auto"] | None = "auto"
    """Torch intra-op and inter-op threads: ``auto`` (one for the small networks MAPPO uses on CPU,
    more only for large minibatch x width work, never more than the cores this process may use; see
    :mod:`torchrl_mappo.threads`), a number (1 to the CPU cores), or ``null`` (torch's default:
    every core)."""
    separate_optimizers: bool = False
    """One Adam for the actor and one for the critic, each clipped to ``max_grad_norm`` on its own."""
    critic_lr: float | None = None
    """The critic's learning rate (``null``: ``lr``); needs ``separate_optimizers: true``."""
    lr_schedule: Literal["constant", "linear"] = "constant"
    """``constant``, or ``linear``: batch k of K trains at ``lr * (1 - k/K)`` (never at 0)."""
    target_kl: float | None = None
    """Stop an iteration's epochs once an epoch's mean approx KL exceeds it (``null``: never)."""
    log_std_end: float | None = None
    """Decay the policy's log-std linearly from ``model.init_log_std`` to this value (it is then
    scheduled, not learned); ``null``: learned."""
    autocast: bool = False
    """Run the loss under ``torch.autocast`` (bfloat16 on CPU, float16 on CUDA)."""
    lean: bool = True
    """Leaner paths through the same TorchRL objects (the same numbers, less time on CPU): each
    group's ``MAPPOLoss`` terms computed on the minibatch's tensors (:mod:`torchrl_mappo.lean_loss`:
    terms and gradients equal to 1e-6), and with ``collector.kind: sync`` the actors' actions sampled
    without their TensorDict plumbing (:mod:`torchrl_mappo.modules.sampler`: the same actions and
    log-probs). Losses and actors they cannot reproduce exactly (masked agents or turns, recurrent
    losses, value clipping, functional or subclassed losses, hooked modules...) are called as they
    are; ``false``: always call them."""
    eval_every: int | None = None
    """Evaluate the current policy every this many frames (after the iteration that reaches each
    multiple, and after the last one): deterministic actions, ``eval_episodes`` whole episodes on an
    env of its own seeded apart from training's, the same episodes every time. Writes
    ``eval/<group>/episode_return`` (and ``_std``) to metrics.csv, the logger and the progress bar;
    training is unchanged (its RNG is restored). ``null``: never."""
    eval_episodes: int = 10
    """Episodes per evaluation (``train.eval_every``); run on ``min(env.num_envs, eval_episodes)`` envs."""
    max_nonfinite_updates: int = 10
    """An update whose loss, gradients or resulting weights are not finite is skipped (rolled back)
    with a warning; this many in a row stop training (with a checkpoint of the last good weights)."""
    chunk_length: int = 10
    """Recurrent models only: minibatches are sets of sequence chunks of this many steps, each
    starting from the hidden state stored at collection (rMAPPO's ``data_chunk_length``). It must
    divide the steps each env makes per batch (``frames_per_batch / num_envs``) and
    ``minibatch_size`` (a minibatch is ``minibatch_size / chunk_length`` chunks)."""
    curriculum: list[dict[str, Any]] = field(default_factory=list)
    """Training in stages (``[]``: none), each ``{overrides: {env.<field>: value}, until: {frames: N}
    and/or {return: R}}``; the last has no ``until``. The env and collector are rebuilt at a stage
    change, the model carries on (:mod:`torchrl_mappo.curriculum`)."""

    def check(self, where: str, env: EnvConfig, recurrent: bool = False) -> None:
        """Range checks; ``where`` is ``"<origin>: train"``. The batch must split over ``env.num_envs``;
        with a ``recurrent`` model, into chunks of ``chunk_length`` steps."""
        need = self._need
        need(self.critic_lr is None or self.critic_lr > 0, where, "critic_lr", "must be a positive number or null")
        need(self.critic_lr is None or self.separate_optimizers, where, "critic_lr",
             "needs train.separate_optimizers: true (one optimizer has one learning rate)")
        need(self.target_kl is None or self.target_kl > 0, where, "target_kl", "must be > 0 or null")
        need(self.frames_per_batch > 0, where, "frames_per_batch", "must be a positive integer")
        need(self.frames_per_batch % env.num_envs == 0, where, "frames_per_batch",
             f"must be a multiple of env.num_envs={env.num_envs} (every env steps the same number of times)")
        need(self.total_frames >= self.frames_per_batch and self.total_frames % self.frames_per_batch == 0,
             where, "total_frames", f"must be a multiple of train.frames_per_batch={self.frames_per_batch}")
        need(self.num_epochs > 0, where, "num_epochs", "must be a positive integer")
        need(self.minibatch_size > 0, where, "minibatch_size", "must be a positive integer")
        need(self.minibatch_size <= self.frames_per_batch, where, "minibatch_size",
             f"must not exceed train.frames_per_batch={self.frames_per_batch}")
        need(self.lr > 0 and math.isfinite(self.lr), where, "lr", "must be a positive number, e.g. 3e-4")
        need(self.max_grad_norm > 0, where, "max_grad_norm", "must be > 0")
        need(self.target_kl is None or self.num_epochs > 1, where, "target_kl",
             "it stops the epochs after one whose KL exceeds it, and train.num_epochs=1 leaves none to stop; "
             "raise train.num_epochs or drop train.target_kl")
        need(0 <= self.seed < 2**32, where, "seed", "must be in [0, 2**32), e.g. 0")
        cores = os.cpu_count() or 1
        need(self.num_threads in (None, "auto") or 0 < self.num_threads <= cores, where, "num_threads",
             f"must be 'auto', a number between 1 and the number of CPU cores ({cores}), or null")
        self._check_device(where)
        need(self.max_nonfinite_updates >= 1, where, "max_nonfinite_updates", "must be >= 1")
        need(self.chunk_length >= 1, where, "chunk_length", "must be a positive integer, e.g. 10")
        if recurrent and self.frames_per_batch % env.num_envs == 0:
            steps = self.frames_per_batch // env.num_envs
            need(steps % self.chunk_length == 0, where, "chunk_length",
                 f"a recurrent model trains on chunks of it, which must divide the {steps} steps each env makes "
                 "per batch (train.frames_per_batch / env.num_envs); e.g. train.chunk_length="
                 f"{next(c for c in (10, 8, 5, 4, 2, 1) if steps % c == 0)}")
            need(self.minibatch_size % self.chunk_length == 0, where, "minibatch_size",
                 f"with a recurrent model a minibatch is whole chunks of train.chunk_length={self.chunk_length} "
                 "steps; make it a multiple of train.chunk_length")
        need(self.eval_every is None or self.eval_every > 0, where, "eval_every",
             "must be a positive number of frames, e.g. train.eval_every=30000, or null for no evaluation")
        need(self.eval_episodes >= 1, where, "eval_episodes", "must be >= 1")
        from torchrl_mappo.curriculum import check_stages

        check_stages(self.curriculum, where, self.total_frames, self.eval_every)

    def _check_device(self, where: str) -> None:
        where = f"{where}.device={self.device!r}"
        device = self.device
        if device == "cpu":
            return
        if not (device == "cuda" or device.startswith("cuda:") or device == "mps"):
            raise ConfigError(f"{where}: use 'cpu', 'cuda', 'cuda:N' or 'mps'")
        import torch  # only for a device other than the CPU: config errors stay torch-free

        if device == "mps":
            if not torch.backends.mps.is_available():
                raise ConfigError(f"{where}: this torch has no MPS device; use train.device=cpu")
            return
        if not torch.cuda.is_available():
            raise ConfigError(f"{where}: this torch sees no CUDA device (a CPU-only build, or no GPU); "
                              "use train.device=cpu")
        index = device.partition(":")[2]
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            raise ConfigError(f"{where}: this machine has CUDA devices 0..{torch.cuda.device_count() - 1}")


# --- run, collector --------------------------------------------------------
@dataclass
class RunConfig(_Section):
    """Where and how a run records itself (see :mod:`torchrl_mappo.runs`)."""

    dir: str = "runs"
    """The folder holding run directories: a run lives in ``<dir>/<name>``."""
    name: str | None = None
    """One plain directory name (no ``/``, not starting with ``.``); ``null``:
    ``<config file stem>-<date>-<time>``."""
    overwrite: bool = False
    """An existing run directory is never touched unless ``true``, which replaces it only if this
    package made it."""
    logger: Literal["csv", "tensorboard", "wandb", "mlflow"] = "csv"
    """``metrics.csv`` (one row per iteration) is always written; this TorchRL logger also gets the
    metrics, under ``<run dir>/<logger>``: ``csv`` (TorchRL's ``CSVLogger``), ``tensorboard``,
    ``wandb`` (offline unless ``logger_options: {offline: false}``) or ``mlflow`` (local file store)."""
    logger_options: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the logger's constructor."""
    per_agent_metrics: bool = False
    """Also report each agent's episode return."""
    progress_bar: bool = True
    """A progress bar on the console while training."""
    checkpoint_every: int = 10
    """Iterations between checkpoints (there is always one after the first iteration and one at
    the end; 0: only those)."""
    keep_checkpoints: int = 3
    """How many checkpoints to keep (>= 1)."""

    def check(self, where: str) -> None:
        """Range checks; ``where`` is ``"<origin>: run"``."""
        self._need(bool(self.dir), where, "dir", "must be a non-empty path")
        name = self.name
        # The run directory is always run.dir/<name>: a name must not reach anywhere else.
        if name is not None and (name in ("", ".", "..") or name.startswith(".")
                                 or any(c in name for c in "/\\\0") or name != name.strip()):
            raise ConfigError(
                f"{where}.name={name!r}: must be one plain directory name (no '/', not empty, not "
                "starting with '.', no surrounding spaces), e.g. run.name=nav-seed1; or null for a timestamped one"
            )
        self._need(self.checkpoint_every >= 0, where, "checkpoint_every", "must be >= 0 (0: only at the end)")
        self._need(self.keep_checkpoints >= 1, where, "keep_checkpoints", "must be >= 1")


@dataclass
class CollectorConfig(_Section):
    """Which TorchRL collector gathers the batches (:func:`torchrl_mappo.make_collector`)."""

    kind: Literal["sync", "multi_sync", "multi_async", "ray"] = "sync"
    """``sync`` (TorchRL's ``Collector`` in the trainer's process), ``multi_sync``
    (``MultiSyncCollector``: ``workers`` processes, each batch stacks one slice per worker),
    ``multi_async`` (``MultiAsyncCollector``: each batch is the first one a worker finishes,
    collected while the trainer was updating) or ``ray`` (``RayCollector``: ``workers`` Ray actors,
    synchronous, on a local Ray instance or a cluster)."""
    workers: int = 1
    """Worker processes or Ray actors (1 for ``sync``). ``env.num_envs`` is the total over the
    workers: each steps ``num_envs / workers`` of them, so it must split evenly."""
    ray_address: str | None = None
    """``ray`` only: ``null`` starts a private Ray instance on 127.0.0.1 for the run; ``auto`` or
    ``HOST:PORT`` joins a running cluster (``ray start --head``)."""
    ray_init_config: dict[str, Any] = field(default_factory=dict)
    """``ray`` only: extra ``ray.init`` kwargs (``num_cpus``, ``runtime_env`` ...; not ``address``)."""
    remote_configs: dict[str, Any] = field(default_factory=lambda: {"num_cpus": 1})
    """The resources Ray reserves for each worker actor (``ray.remote`` kwargs). TorchRL's default
    also reserves 2 GiB of memory (and 0.2 GPU where CUDA is visible) per actor, which keeps small
    nodes from scheduling workers."""

    def check(self, where: str, env: EnvConfig) -> None:
        """Range checks; ``where`` is ``"<origin>: collector"``. The workers split ``env.num_envs``."""
        if self.workers < 1:
            raise ConfigError(f"{where}.workers={self.workers}: must be a positive integer")
        if self.kind == "sync" and self.workers > 1:
            raise ConfigError(
                f"{where}.workers={self.workers}: kind 'sync' collects in the trainer's process; "
                "use collector.kind: multi_sync (or multi_async, ray) for worker processes"
            )
        if self.kind != "sync" and env.num_envs % self.workers:
            raise ConfigError(
                f"{where}.workers={self.workers}: env.num_envs={env.num_envs} is the total over the workers "
                "and must split evenly; make env.num_envs a multiple of collector.workers"
            )
        for name in ("ray_address", "ray_init_config"):
            if self.kind != "ray" and getattr(self, name):
                raise ConfigError(f"{where}.{name}: only used by collector.kind: ray (kind is {self.kind!r}); remove it")
        if self.ray_address is not None and not self.ray_address.strip():
            raise ConfigError(f"{where}.ray_address: give 'auto', HOST:PORT, or null for a local Ray instance")
        if "address" in self.ray_init_config:
            raise ConfigError(f"{where}.ray_init_config.address: set collector.ray_address instead")


# --- alternate: both sides learn by pool ------------------------------------
@dataclass
class AlternateConfig(_Section):
    """Learning groups that take turns, each playing a pool of its own past while it rests
    (:mod:`torchrl_mappo.alternate`): in each turn one of ``groups`` trains with its live policy
    while the others act with a frozen snapshot of their own past, drawn per batch from their
    pools, and skip the update; so each side trains against a spread of the other's past
    policies instead of chasing its current one (both sides learn, specs may differ: simple_tag's
    predators and prey)."""

    groups: list[str] = field(default_factory=list)
    """The learning groups that take turns, in turn order (>= 2; ``[]``: off, every learning group
    trains every batch)."""
    turn_iterations: int = 1
    """Iterations (batches) per turn (>= 1)."""
    pool_size: int = 10
    """Snapshots each group keeps of itself (the oldest dropped first; the first is its initial
    policy)."""
    snapshot_every: int = 2
    """A group's updates between snapshots of itself (counting only its own turns)."""
    pool_sampling: Literal["uniform", "latest"] = "uniform"
    """A resting group's snapshot for each batch: drawn uniformly, or with weight ``i + 1`` for the
    i-th oldest (``latest``)."""

    def check(self, where: str, cfg: "Config") -> None:
        """Range checks; ``where`` is ``"<origin>: alternate"``. The groups are checked against the
        env's when it is built (:func:`torchrl_mappo.alternate.check_turn_groups`)."""
        defaults = AlternateConfig()
        if not self.groups:
            for name in ("turn_iterations", "pool_size", "snapshot_every", "pool_sampling"):
                self._need(getattr(self, name) == getattr(defaults, name), where, name,
                           "only used with alternate.groups (empty: off); list the groups that take turns, "
                           "e.g. alternate.groups=[adversary,agent], or remove it")
            return
        self._need(len(self.groups) >= 2, where, "groups",
                   "list at least two learning groups (one group alone has no one to take turns with)")
        self._need(len(set(self.groups)) == len(self.groups), where, "groups", "a group is listed twice")
        self._need(self.turn_iterations >= 1, where, "turn_iterations", "must be >= 1 (iterations)")
        self._need(self.pool_size >= 1, where, "pool_size", "must be >= 1")
        self._need(self.snapshot_every >= 1, where, "snapshot_every", "must be >= 1 (the group's own updates)")
        self._need(not cfg.train.curriculum, where, "groups",
                   "a curriculum rebuilds the collector at a stage change, which would drop the resting "
                   "groups' snapshots; use alternate or train.curriculum, not both")
        self._need(cfg.train.log_std_end is None, where, "groups",
                   "train.log_std_end changes the live log-std after a turn's policy was handed to the "
                   "collector; drop train.log_std_end with alternating groups")
        self._need(cfg.collector.kind != "multi_async", where, "groups",
                   "collector.kind='multi_async' collects a batch while the last one trains, so a turn's batch "
                   "could come from the previous turn's policies; use collector.kind: sync or multi_sync")
        self._need(cfg.collector.kind != "ray", where, "groups",
                   "collector.kind='ray' is not tested with alternating groups (the snapshot hand-over to the "
                   "Ray actors); use collector.kind: sync or multi_sync")


# --- per_group, and the whole config ---------------------------------------
@dataclass
class GroupConfig(_Section):
    """Settings of one group that differ from the shared ones (``per_group.<group>``)."""

    model: dict[str, Any] = field(default_factory=dict)
    """Fields of the ``model`` section that differ for this group (checked like ``model``)."""
    loss: dict[str, Any] = field(default_factory=dict)
    """Fields of the ``loss`` section that differ for this group (checked like ``loss``)."""
    lr: float | None = None
    """This group's learning rate (``null``: ``train.lr``)."""
    policy: str = "learn"
    """``learn``; ``random`` (acts uniformly at random, never trains: an opponent for competitive
    settings); ``mirror <group>`` (shared self-play: acts with that group's actor, and its
    experience trains that actor too); or ``pool`` (acts with frozen snapshots of ``pool_of``'s
    actor, never trains). ``mirror`` and ``pool`` need equal observation and action specs
    (:mod:`torchrl_mappo.selfplay`)."""
    pool_of: str | None = None
    """``policy: pool``: the learning group whose snapshots this group plays (``null``: the only
    other learning group)."""
    pool_size: int = 10
    """``policy: pool``: snapshots kept (the oldest dropped first)."""
    snapshot_every: int = 5
    """``policy: pool``: iterations between snapshots of ``pool_of``'s actor (the first snapshot is
    its initial policy)."""
    pool_sampling: Literal["uniform", "latest"] = "uniform"
    """``policy: pool``: the opponent of each batch is drawn from the snapshots uniformly, or with
    weight ``i + 1`` for the i-th oldest (``latest``)."""
    pool_swap_sides: float = 0.0
    """``policy: pool``: the share of batches (each drawn with this probability) in which the sides
    swap: the learner plays this group's side and a snapshot plays the learner's, and the
    learner's actor and critic train on this group's data (the learner then learns both sides of
    an asymmetric map). ``0``: the learner always plays its own side (:mod:`torchrl_mappo.selfplay`)."""

    def kind(self) -> tuple[str, str | None]:
        """``policy`` parsed: ``(learn|random|mirror|pool, source group or None)``."""
        from torchrl_mappo.selfplay import parse_policy

        return parse_policy(self.policy)

    def check(self, where: str) -> None:
        """Range checks; ``where`` is ``"<origin>: per_group.<group>"``."""
        self._need(self.lr is None or self.lr > 0, where, "lr", "must be a positive number")
        try:
            kind, _ = self.kind()
        except ValueError as err:
            raise ConfigError(f"{where}.policy={self.policy!r}: {err}") from None
        name = where.split(": ")[-1]
        if kind != "learn":
            what = ("acts at random and never trains" if kind == "random" else
                    "plays frozen snapshots and never trains" if kind == "pool" else
                    "acts and trains with its source group's networks and settings")
            for field_name in ("model", "loss", "lr"):
                self._need(getattr(self, field_name) in ({}, None), where, field_name,
                           f"the group {what}; drop it, or set {name}.policy: learn")
        defaults = GroupConfig()
        if kind != "pool":
            for field_name in ("pool_of", "pool_size", "snapshot_every", "pool_sampling", "pool_swap_sides"):
                self._need(getattr(self, field_name) == getattr(defaults, field_name), where, field_name,
                           f"only used with {name}.policy: pool (policy is {self.policy!r}); remove it")
        self._need(self.pool_size >= 1, where, "pool_size", "must be >= 1")
        self._need(self.snapshot_every >= 1, where, "snapshot_every", "must be >= 1 (iterations)")
        self._need(0.0 <= self.pool_swap_sides <= 1.0, where, "pool_swap_sides",
                   "must be a share of batches between 0 and 1 (e.g. 0.5)")


@dataclass
class Config:
    """The whole config: one field per YAML section."""

    env: EnvConfig = field(default_factory=EnvConfig)
    """The ``env`` section: :func:`torchrl_mappo.make_env`."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """The ``model`` section: the actor and critic of every group."""
    loss: LossConfig = field(default_factory=LossConfig)
    """The ``loss`` section: every group's loss."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """The ``train`` section: the loop and its budget."""
    run: RunConfig = field(default_factory=RunConfig)
    """The ``run`` section: the run directory, logging, checkpoints."""
    collector: CollectorConfig = field(default_factory=CollectorConfig)
    """The ``collector`` section."""
    alternate: AlternateConfig = field(default_factory=AlternateConfig)
    """The ``alternate`` section: learning groups taking turns against each other's pools (off by default)."""
    per_group: dict[str, GroupConfig] = field(default_factory=dict)
    """``{group: GroupConfig}``: settings of single groups; the groups are checked against the
    env's once it is built (:meth:`check_groups`)."""
    source: str | None = field(default=None, compare=False, repr=False)
    """Path of the YAML file the config came from (not a config key)."""

    def check(self, origin: str) -> None:
        """Every range check, section by section; errors start with ``origin`` (the file)."""
        self.env.check(f"{origin}: env")
        self.model.check(f"{origin}: model")
        self.loss.check(f"{origin}: loss")
        recurrent = self.model.is_recurrent or any(
            self.group_model(g).is_recurrent for g, gc in self.per_group.items() if gc.model)
        self.train.check(f"{origin}: train", self.env, recurrent)
        if self.train.log_std_end is not None and any(
                m.state_dependent_std for m in [self.model, *map(self.group_model, self.per_group)]):
            raise ConfigError(
                f"{origin}: train.log_std_end={self.train.log_std_end}: a state-dependent std "
                "(model.state_dependent_std: true) is an output of the network, not a parameter to schedule; "
                "drop train.log_std_end, or set model.state_dependent_std: false"
            )
        if self.train.curriculum and recurrent:
            raise ConfigError(
                f"{origin}: train.curriculum: a stage change rebuilds the env and the collector, which would "
                "drop the recurrent models' hidden states and primers; use a feed-forward model "
                "(model.recurrent: none) with a curriculum, or no curriculum"
            )
        self.run.check(f"{origin}: run")
        self.collector.check(f"{origin}: collector", self.env)
        self.alternate.check(f"{origin}: alternate", self)
        for group, g in self.per_group.items():
            where = f"{origin}: per_group.{group}"
            g.check(where)
            if g.model:
                self.group_model(group).check(f"{where}.model")
            if g.loss:
                self.group_loss(group).check(f"{where}.loss")

    def group(self, group: str) -> GroupConfig:
        return self.per_group.get(group, GroupConfig())

    def group_model(self, group: str) -> ModelConfig:
        """``model`` with ``per_group.<group>.model`` applied."""
        return dataclasses.replace(self.model, **self.group(group).model)

    def group_loss(self, group: str) -> LossConfig:
        """``loss`` with ``per_group.<group>.loss`` applied."""
        return dataclasses.replace(self.loss, **self.group(group).loss)

    def group_lr(self, group: str) -> float:
        lr = self.group(group).lr
        return self.train.lr if lr is None else lr

    def check_groups(self, groups: list[str]) -> None:
        """``per_group`` must name groups the env has (``env.reward_sharing``: :meth:`EnvConfig.check_groups`),
        and a ``mirror``/``pool`` group a learning group of the env other than itself."""
        check_groups_exist("per_group", self.per_group, groups)
        for group in groups:
            self.policy_source(group, groups)

    def policy_source(self, group: str, groups: list[str]) -> str | None:
        """The learning group whose policy ``group`` plays (``mirror``/``pool``), else ``None``."""
        g = self.group(group)
        kind, source = g.kind()
        if kind == "pool":
            source = g.pool_of
            if source is None:
                others = [o for o in groups if o != group and self.group(o).kind()[0] == "learn"]
                if len(others) != 1:
                    raise ConfigError(
                        f"per_group.{group}.pool_of: the env has {len(others)} other learning groups "
                        f"({', '.join(others) or 'none'}); name the one whose snapshots {group!r} plays"
                    )
                return others[0]
        if kind not in ("mirror", "pool"):
            return None
        field_name = "policy" if kind == "mirror" else "pool_of"
        if source == group or source not in groups or self.group(source).kind()[0] != "learn":
            raise ConfigError(
                f"per_group.{group}.{field_name}: {source!r} is not another learning group of this env "
                f"(its groups: {', '.join(groups)}); name a group with policy: learn"
            )
        return source
