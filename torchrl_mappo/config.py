"""Typed configuration: one dataclass per section, YAML loading and overrides.

Each dataclass mirrors the arguments of the thing it configures, and its
defaults are the only defaults in the package. A YAML file overrides them;
``"section.field=value"`` strings override the file. Anything that does not
fit (unknown key, wrong type, out-of-range value) raises :class:`ConfigError`
with the field's full name and the fix.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import yaml

__all__ = [
    "CollectorConfig",
    "Config",
    "ConfigError",
    "EnvConfig",
    "GroupConfig",
    "LossConfig",
    "ModelConfig",
    "RunConfig",
    "TrainConfig",
    "load_config",
    "config_from_dict",
    "config_to_dict",
]


class ConfigError(ValueError):
    """Bad user input: the message names the field and how to fix it."""


GROUP_MAP_PRESETS = ("per_agent", "all_in_one")
REWARD_SHARING_MODES = ("individual", "shared", "mixed")


@dataclass
class EnvConfig:
    """Arguments of :func:`torchrl_mappo.make_env`.

    ``family``: ``vmas`` (``VmasEnv``), ``pettingzoo`` (an ``mpe2`` env, e.g.
    ``simple_spread_v3``, through ``PettingZooWrapper``) or ``magent``
    (``magent2`` ``battle_v4`` through ``PettingZooWrapper``).
    ``scenario_kwargs`` go straight to the scenario (for VMAS: ``n_agents``,
    ``shared_rew``, ``lidar_range`` ...; for MAgent2: ``map_size`` ...).
    ``group_map``: how agents form groups (TorchRL's ``group_map``):
    ``null`` (the env's default: by name prefix), ``per_agent``,
    ``all_in_one``, or ``{team: [agent names]}``.
    ``reward_sharing``: per group, ``individual``, ``shared`` or
    ``{mode: mixed, weight: w}`` (see :class:`RewardSharing`).
    ``return_state``: PettingZoo/MAgent2 envs put their global state at the
    root ``"state"`` (the centralized critic's input).
    """

    family: Literal["vmas", "pettingzoo", "magent"] = "vmas"
    scenario: str = "navigation"
    num_envs: int = 60
    max_steps: int = 100
    continuous_actions: bool = True
    scenario_kwargs: dict[str, Any] = field(default_factory=dict)
    group_map: str | dict[str, list[str]] | None = None
    reward_sharing: dict[str, Any] = field(default_factory=dict)
    return_state: bool = True


@dataclass
class ModelConfig:
    """Arguments of :func:`make_actor` and :func:`make_critic`.

    Default network: ``[Linear(256) -> LayerNorm -> Tanh] x 2`` (MAPPO spec).
    ``share_params``: one network for all agents of a group (``false``: one per
    agent, evaluated in a single vmapped call). ``centralized``: the critic
    sees the global state (or all the group's observations); ``false`` gives
    IPPO's local critic. ``critic_input``: ``auto`` (the env's global state
    if it has one, else ``concat_obs``), ``state``, ``concat_obs`` (the
    group's own observations, concatenated), ``all_obs`` (every group's
    observations), ``agent_specific`` (the global input + the agent's own
    observation + a one-hot agent id, as in the MAPPO paper) or ``local``
    (same as ``centralized: false``).
    ``critic_joint_actions``: the critic also sees the OTHER agents' actions
    (never the agent's own: a baseline that depends on the agent's own action
    would bias its policy gradient).
    ``actor_agent_id`` / ``critic_agent_id``: append a one-hot agent id to the
    input (lets shared parameters tell agents apart).
    ``orthogonal_init``: orthogonal weights (gain sqrt(2); 0.01 for the
    policy head, 1 for the value head), zero biases.
    """

    hidden_sizes: list[int] = field(default_factory=lambda: [256, 256])
    activation: Literal["tanh", "relu", "elu", "gelu", "silu", "leaky_relu"] = "tanh"
    layer_norm: bool = True
    share_params: bool = True
    centralized: bool = True
    critic_input: Literal["auto", "state", "concat_obs", "all_obs", "agent_specific", "local"] = "auto"
    critic_joint_actions: bool = False
    actor_agent_id: bool = False
    critic_agent_id: bool = False
    orthogonal_init: bool = False
    init_log_std: float = 0.0


@dataclass
class LossConfig:
    """Arguments of :func:`make_loss` (TorchRL's ``MAPPOLoss`` and its GAE).

    ``normalize_advantage``: standardise advantages over the minibatch and
    all its agents together (not per agent). ``clip_value``: PPO value
    clipping radius. ``loss_critic_type``: ``l2``, ``l1`` or ``smooth_l1``
    (Huber). ``value_norm``: TorchRL's ``PopArtValueNorm`` (``popart``) or
    ``RunningValueNorm`` (``running``) on the critic's targets, or ``none``.
    ``entropy_coeff_end``: anneal the entropy coefficient linearly to this
    value over training (``null``: constant).
    """

    clip_epsilon: float = 0.2
    entropy_coeff: float = 0.01
    critic_coeff: float = 0.5
    gamma: float = 0.99
    lmbda: float = 0.95
    normalize_advantage: bool = True
    clip_value: float | None = None
    loss_critic_type: Literal["l1", "l2", "smooth_l1"] = "l2"
    value_norm: Literal["none", "popart", "running"] = "none"
    entropy_coeff_end: float | None = None


@dataclass
class TrainConfig:
    """Arguments of :class:`torchrl_mappo.Trainer` (the loop and its budget).

    ``target_return``: stop as soon as every group's mean episode return in an
    iteration reaches it (``null``: run the whole ``total_frames``).
    ``num_threads``: torch intra-op and inter-op threads: ``auto`` (one for
    the small networks MAPPO uses on CPU, see :mod:`torchrl_mappo.threads`),
    a number, or ``null`` (torch's default: every core).
    ``separate_optimizers``: one Adam for the actor and one for the critic
    (each clipped to ``max_grad_norm`` on its own); ``critic_lr`` the
    critic's learning rate (``null``: ``lr``). ``lr_schedule``: ``constant``
    or ``linear`` (annealed to 0 over ``total_frames``). ``target_kl``: stop
    an iteration's epochs once an epoch's mean approx KL exceeds it.
    ``log_std_end``: decay the policy's log-std linearly from
    ``model.init_log_std`` to this value (it is then scheduled, not learned).
    ``autocast``: run the loss under ``torch.autocast`` (bfloat16 on CPU,
    float16 on CUDA). ``max_nonfinite_updates``: an update whose loss or
    gradients are not finite is skipped with a warning; this many in a row
    stop training (with a checkpoint of the last good weights).
    """

    frames_per_batch: int = 6000
    total_frames: int = 120_000
    num_epochs: int = 10
    minibatch_size: int = 1000
    lr: float = 3e-4
    max_grad_norm: float = 0.5
    seed: int = 0
    device: str = "cpu"
    target_return: float | None = None
    num_threads: int | Literal["auto"] | None = "auto"
    separate_optimizers: bool = False
    critic_lr: float | None = None
    lr_schedule: Literal["constant", "linear"] = "constant"
    target_kl: float | None = None
    log_std_end: float | None = None
    autocast: bool = False
    max_nonfinite_updates: int = 10


@dataclass
class RunConfig:
    """Where and how a run records itself.

    The run directory is ``<dir>/<name>``; ``name: null`` means
    ``<config file stem>-<date>-<time>``. An existing run directory is never
    touched unless ``overwrite: true`` (which deletes it first).
    ``metrics.csv`` (one row per iteration) is always written; ``logger``
    also sends the metrics to a TorchRL logger: ``csv`` (TorchRL's
    ``CSVLogger``), ``tensorboard``, ``wandb`` (offline unless
    ``logger_options: {offline: false}``) or ``mlflow`` (local file store),
    under ``<run dir>/<logger>``; ``logger_options`` go to its constructor.
    ``per_agent_metrics``: also report each agent's episode return.
    ``checkpoint_every``: iterations between checkpoints (0: only the final
    one); ``keep_checkpoints``: how many to keep.
    """

    dir: str = "runs"
    name: str | None = None
    overwrite: bool = False
    logger: Literal["csv", "tensorboard", "wandb", "mlflow"] = "csv"
    logger_options: dict[str, Any] = field(default_factory=dict)
    per_agent_metrics: bool = False
    progress_bar: bool = True
    checkpoint_every: int = 10
    keep_checkpoints: int = 3


@dataclass
class CollectorConfig:
    """Which TorchRL collector gathers the batches (:func:`torchrl_mappo.make_collector`).

    ``kind``: ``sync`` (TorchRL's ``Collector`` in the trainer's process),
    ``multi_sync`` (``MultiSyncCollector``: ``workers`` processes, each batch
    stacks one slice per worker), ``multi_async`` (``MultiAsyncCollector``:
    each batch is the first one a worker finishes, collected while the
    trainer was updating) or ``ray`` (``RayCollector``: ``workers`` Ray
    actors, synchronous, on a local Ray instance or a cluster).
    ``env.num_envs`` is the total over the workers: each worker steps
    ``num_envs / workers`` of them.
    ``ray_address``: ``null`` starts a private Ray instance on 127.0.0.1 for
    the run; ``auto`` or ``HOST:PORT`` joins a running cluster
    (``ray start --head``). ``ray_init_config``: extra ``ray.init`` kwargs
    (``num_cpus``, ``runtime_env`` ...). ``remote_configs``: the resources
    Ray reserves for each worker actor (``ray.remote`` kwargs).
    """

    kind: Literal["sync", "multi_sync", "multi_async", "ray"] = "sync"
    workers: int = 1
    ray_address: str | None = None
    ray_init_config: dict[str, Any] = field(default_factory=dict)
    # TorchRL's default also reserves 2 GiB of memory (and 0.2 GPU where CUDA
    # is visible) per actor, which keeps small nodes from scheduling workers.
    remote_configs: dict[str, Any] = field(default_factory=lambda: {"num_cpus": 1})


@dataclass
class GroupConfig:
    """Settings of one group that differ from the shared ones (``per_group.<group>``).

    ``model`` and ``loss`` override fields of the ``model`` and ``loss``
    sections for this group only; ``lr`` its optimizer's learning rate.
    ``policy: random`` makes the group act uniformly at random and never
    train (an opponent for competitive settings).
    """

    model: dict[str, Any] = field(default_factory=dict)
    loss: dict[str, Any] = field(default_factory=dict)
    lr: float | None = None
    policy: Literal["learn", "random"] = "learn"


@dataclass
class Config:
    env: EnvConfig = field(default_factory=EnvConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    run: RunConfig = field(default_factory=RunConfig)
    collector: CollectorConfig = field(default_factory=CollectorConfig)
    per_group: dict[str, GroupConfig] = field(default_factory=dict)
    source: str | None = field(default=None, compare=False, repr=False)
    """Path of the YAML file the config came from (not a config key)."""

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
        """Per-group settings must name groups the env has."""
        names = (
            [("per_group", g) for g in self.per_group]
            + [("env.reward_sharing", g) for g in self.env.reward_sharing]
        )
        for section, g in names:
            if g not in groups:
                close = difflib.get_close_matches(g, groups, 1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ConfigError(
                    f"{section}.{g}: the env has no group {g!r}{hint} (its groups: {', '.join(groups)})"
                )


_SECTIONS = {
    f.name: f.type for f in dataclasses.fields(Config) if f.name not in ("source", "per_group")
}


# --------------------------------------------------------------------------- #
# Type checking of values
# --------------------------------------------------------------------------- #
def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        inner = " or ".join(_type_name(a) for a in args)
        return f"{inner} or null" if len(args) < len(typing.get_args(tp)) else inner
    if origin is list:
        (arg,) = typing.get_args(tp)
        return f"a list of {_type_name(arg)}"
    if origin is dict:
        return "a mapping"
    if tp is float:
        return "a number"
    if tp is int:
        return "an integer"
    if tp is bool:
        return "true or false"
    if tp is str:
        return "a string"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Return ``value`` as type ``tp`` or raise ConfigError naming ``where``."""
    origin = typing.get_origin(tp)
    bad = ConfigError(
        f"{where}: expected {_type_name(tp)}, got {value!r} "
        f"({type(value).__name__}); fix the value in the config or override"
    )
    if tp is Any:
        return value
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        close = difflib.get_close_matches(str(value), [str(a) for a in typing.get_args(tp)], 1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"{where}: {value!r} is not allowed; use {_type_name(tp)}{hint}"
        )
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise bad
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError:
                continue
        raise bad
    if origin is list:
        (arg,) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise bad
        return [_coerce(v, arg, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise bad
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise bad
        return value
    if tp is float:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            # PyYAML reads ``3e-4`` (no dot) as a string: accept it as a number.
            try:
                return float(value)
            except ValueError:
                raise bad from None
        raise bad
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad
    raise bad


def _build_section(cls: type, data: Any, section: str, origin: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{origin}: section '{section}' must be a mapping of field: value, "
            f"got {type(data).__name__}"
        )
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            close = difflib.get_close_matches(str(key), names, 1)
            hint = f"; did you mean '{section}.{close[0]}'?" if close else ""
            raise ConfigError(
                f"{origin}: unknown key '{section}.{key}'{hint} "
                f"(valid keys: {', '.join(names)})"
            )
        kwargs[key] = _coerce(value, hints[key], f"{origin}: {section}.{key}")
    return cls(**kwargs)


def _build_per_group(data: Any, origin: str) -> dict[str, GroupConfig]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: per_group must map group names to settings, got {type(data).__name__}")
    out = {}
    for group, values in data.items():
        gcfg = _build_section(GroupConfig, values, f"per_group.{group}", origin)
        # The overrides must be valid fields of their sections, with valid types.
        for name, cls in (("model", ModelConfig), ("loss", LossConfig)):
            _build_section(cls, getattr(gcfg, name), f"per_group.{group}.{name}", origin)
            hints = typing.get_type_hints(cls)
            setattr(gcfg, name, {
                k: _coerce(v, hints[k], f"{origin}: per_group.{group}.{name}.{k}")
                for k, v in getattr(gcfg, name).items()
            })
        out[str(group)] = gcfg
    return out


# --------------------------------------------------------------------------- #
# Range checks: values of the right type that still cannot work
# --------------------------------------------------------------------------- #
def _check(cfg: Config, origin: str) -> None:
    def need(cond: bool, name: str, msg: str) -> None:
        if not cond:
            value = getattr(getattr(cfg, name.split(".")[0]), name.split(".")[1])
            raise ConfigError(f"{origin}: {name}={value!r}: {msg}")

    e, m, l, t = cfg.env, cfg.model, cfg.loss, cfg.train
    need(e.num_envs > 0, "env.num_envs", "must be a positive integer")
    need(e.max_steps > 0, "env.max_steps", "must be a positive integer")
    need(len(m.hidden_sizes) > 0, "model.hidden_sizes", "give at least one layer size, e.g. [256, 256]")
    need(all(h > 0 for h in m.hidden_sizes), "model.hidden_sizes", "every layer size must be positive")
    need(0 < l.clip_epsilon < 1, "loss.clip_epsilon", "must be in (0, 1), e.g. 0.2")
    need(l.entropy_coeff >= 0, "loss.entropy_coeff", "must be >= 0")
    need(l.critic_coeff >= 0, "loss.critic_coeff", "must be >= 0")
    need(0 < l.gamma <= 1, "loss.gamma", "must be in (0, 1], e.g. 0.99")
    need(0 <= l.lmbda <= 1, "loss.lmbda", "must be in [0, 1], e.g. 0.95")
    need(l.clip_value is None or l.clip_value > 0, "loss.clip_value", "must be > 0, or null to disable")
    need(l.entropy_coeff_end is None or l.entropy_coeff_end >= 0, "loss.entropy_coeff_end", "must be >= 0 or null")
    need(t.critic_lr is None or t.critic_lr > 0, "train.critic_lr", "must be a positive number or null")
    need(t.critic_lr is None or t.separate_optimizers, "train.critic_lr",
         "needs train.separate_optimizers: true (one optimizer has one learning rate)")
    need(t.target_kl is None or t.target_kl > 0, "train.target_kl", "must be > 0 or null")
    need(t.frames_per_batch > 0, "train.frames_per_batch", "must be a positive integer")
    need(
        t.frames_per_batch % e.num_envs == 0,
        "train.frames_per_batch",
        f"must be a multiple of env.num_envs={e.num_envs} (every env steps the same number of times)",
    )
    need(t.total_frames >= t.frames_per_batch and t.total_frames % t.frames_per_batch == 0,
         "train.total_frames", f"must be a multiple of train.frames_per_batch={t.frames_per_batch}")
    need(t.num_epochs > 0, "train.num_epochs", "must be a positive integer")
    need(t.minibatch_size > 0, "train.minibatch_size", "must be a positive integer")
    need(
        t.minibatch_size <= t.frames_per_batch,
        "train.minibatch_size",
        f"must not exceed train.frames_per_batch={t.frames_per_batch}",
    )
    need(t.lr > 0 and math.isfinite(t.lr), "train.lr", "must be a positive number, e.g. 3e-4")
    need(t.max_grad_norm > 0, "train.max_grad_norm", "must be > 0")
    need(t.seed >= 0, "train.seed", "must be >= 0")
    need(t.num_threads in (None, "auto") or t.num_threads > 0, "train.num_threads",
         "must be 'auto', a positive integer or null")
    need(t.device == "cpu" or t.device.startswith("cuda") or t.device == "mps", "train.device",
         "use 'cpu', 'cuda', 'cuda:N' or 'mps'")
    need(bool(cfg.run.dir), "run.dir", "must be a non-empty path")
    need(cfg.run.checkpoint_every >= 0, "run.checkpoint_every", "must be >= 0 (0: only at the end)")
    need(cfg.run.keep_checkpoints >= 1, "run.keep_checkpoints", "must be >= 1")
    need(t.max_nonfinite_updates >= 1, "train.max_nonfinite_updates", "must be >= 1")
    need(not (e.family == "magent" and e.continuous_actions), "env.continuous_actions",
         "MAgent2 has only discrete actions; set env.continuous_actions: false")
    _check_collector(cfg, origin)
    _check_group_map(e.group_map, origin)
    _check_reward_sharing(e.reward_sharing, origin)
    for group, g in cfg.per_group.items():
        if g.lr is not None and not g.lr > 0:
            raise ConfigError(f"{origin}: per_group.{group}.lr={g.lr!r}: must be a positive number")
        merged = Config(
            env=e, model=cfg.group_model(group), loss=cfg.group_loss(group), train=t, run=cfg.run,
            collector=cfg.collector,
        )
        try:
            _check(merged, origin)
        except ConfigError as err:
            raise ConfigError(str(err).replace(": model.", f": per_group.{group}.model.").replace(
                ": loss.", f": per_group.{group}.loss.")) from None


def _check_collector(cfg: Config, origin: str) -> None:
    c, e = cfg.collector, cfg.env
    where = f"{origin}: collector"
    if c.workers < 1:
        raise ConfigError(f"{where}.workers={c.workers}: must be a positive integer")
    if c.kind == "sync" and c.workers > 1:
        raise ConfigError(
            f"{where}.workers={c.workers}: kind 'sync' collects in the trainer's process; "
            "use collector.kind: multi_sync (or multi_async, ray) for worker processes"
        )
    if c.kind != "sync" and e.num_envs % c.workers:
        raise ConfigError(
            f"{where}.workers={c.workers}: env.num_envs={e.num_envs} is the total over the workers "
            "and must split evenly; make env.num_envs a multiple of collector.workers"
        )
    for name in ("ray_address", "ray_init_config"):
        if c.kind != "ray" and getattr(c, name):
            raise ConfigError(f"{where}.{name}: only used by collector.kind: ray (kind is {c.kind!r}); remove it")
    if c.ray_address is not None and not c.ray_address.strip():
        raise ConfigError(f"{where}.ray_address: give 'auto', HOST:PORT, or null for a local Ray instance")
    if "address" in c.ray_init_config:
        raise ConfigError(f"{where}.ray_init_config.address: set collector.ray_address instead")


def _check_group_map(group_map: Any, origin: str) -> None:
    if group_map is None:
        return
    if isinstance(group_map, str):
        if group_map not in GROUP_MAP_PRESETS:
            raise ConfigError(
                f"{origin}: env.group_map={group_map!r}: use one of {', '.join(GROUP_MAP_PRESETS)}, "
                "null (the env's default) or a mapping {team: [agent names]}"
            )
        return
    if not group_map:
        raise ConfigError(f"{origin}: env.group_map is empty; map at least one team to its agents")
    seen: dict[str, str] = {}
    for team, agents in group_map.items():
        if not isinstance(agents, list) or not agents or not all(isinstance(a, str) for a in agents):
            raise ConfigError(
                f"{origin}: env.group_map.{team}: give a non-empty list of agent names, e.g. [agent_0, agent_1]"
            )
        for agent in agents:
            if agent in seen:
                raise ConfigError(
                    f"{origin}: env.group_map: agent {agent!r} is in two teams ({seen[agent]!r} and {team!r}); "
                    "put each agent in exactly one team"
                )
            seen[agent] = team


def _check_reward_sharing(sharing: dict, origin: str) -> None:
    for group, spec in sharing.items():
        where = f"{origin}: env.reward_sharing.{group}"
        if isinstance(spec, str):
            mode, weight = spec, None
        elif isinstance(spec, dict) and set(spec) <= {"mode", "weight"} and "mode" in spec:
            mode, weight = spec["mode"], spec.get("weight")
        else:
            raise ConfigError(
                f"{where}: give a mode ({', '.join(REWARD_SHARING_MODES)}) or {{mode: mixed, weight: 0.5}}"
            )
        if mode not in REWARD_SHARING_MODES:
            raise ConfigError(f"{where}: mode {mode!r} is not one of {', '.join(REWARD_SHARING_MODES)}")
        if mode == "mixed":
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= 1:
                raise ConfigError(f"{where}: mixed needs a weight in [0, 1], e.g. {{mode: mixed, weight: 0.5}}")
        elif weight is not None:
            raise ConfigError(f"{where}: a weight only applies to mode 'mixed'")


def reward_sharing_modes(sharing: dict) -> dict[str, tuple[str, float]]:
    """``env.reward_sharing`` as ``{group: (mode, weight)}`` for :class:`RewardSharing`."""
    out = {}
    for group, spec in sharing.items():
        if isinstance(spec, str):
            out[group] = (spec, 1.0 if spec == "shared" else 0.0)
        else:
            out[group] = (spec["mode"], float(spec.get("weight", 0.0)))
    return out


def available_scenarios(family: str) -> list[str]:
    """Scenario names each env family offers (from the installed simulator)."""
    if family == "vmas":
        import vmas

        return [*vmas.scenarios, *vmas.mpe_scenarios, *vmas.debug_scenarios]
    if family == "pettingzoo":
        import mpe2.all_modules

        return sorted(name.split("/", 1)[-1] for name in mpe2.all_modules.mpe_environments)
    if family == "magent":
        return ["battle_v4"]
    return []


def _check_env(cfg: Config, origin: str) -> None:
    """Checks that need the simulator's own list of scenarios."""
    names = available_scenarios(cfg.env.family)
    if cfg.env.scenario not in names:
        close = difflib.get_close_matches(cfg.env.scenario, names, 1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"{origin}: env.scenario={cfg.env.scenario!r} is not a {cfg.env.family} scenario{hint} "
            f"(available: {', '.join(names)})"
        )


# --------------------------------------------------------------------------- #
# Public entry points
# --------------------------------------------------------------------------- #
def config_from_dict(data: Any, origin: str = "config") -> Config:
    """Build and validate a :class:`Config` from a plain mapping."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: the top level must be a mapping of sections, got {type(data).__name__}")
    for key in data:
        if key not in _SECTIONS and key != "per_group":
            close = difflib.get_close_matches(str(key), list(_SECTIONS), 1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"{origin}: unknown section '{key}'{hint} (valid sections: {', '.join([*_SECTIONS, 'per_group'])})"
            )
    hints = typing.get_type_hints(Config)
    sections = {
        name: _build_section(hints[name], data.get(name), name, origin) for name in _SECTIONS
    }
    cfg = Config(**sections, per_group=_build_per_group(data.get("per_group"), origin))
    _check(cfg, origin)
    _check_env(cfg, origin)
    return cfg


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """The fully resolved config as plain data (what ``config.yaml`` of a run holds)."""
    out = dataclasses.asdict(cfg)
    out.pop("source", None)
    return out


def _apply_override(data: dict, override: str) -> None:
    if not isinstance(override, str) or "=" not in override:
        raise ConfigError(
            f"override {override!r}: expected 'section.field=value', e.g. 'train.lr=1e-3'"
        )
    path, _, raw = override.partition("=")
    parts = path.strip().split(".")
    if len(parts) < 2 or not all(parts):
        raise ConfigError(
            f"override {override!r}: the key must name a section and a field, e.g. 'train.seed=1'"
        )
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"override {override!r}: '{part}' is not a section")
        node = child
    node[parts[-1]] = value


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> Config:
    """Load a YAML config, apply ``"section.field=value"`` overrides, validate.

    Args:
        path: YAML file with the sections ``env``, ``model``, ``loss``,
            ``train``, ``run`` and ``collector`` (each optional; missing fields take the
            dataclass defaults).
        overrides: strings such as ``"train.seed=3"`` or
            ``"env.scenario_kwargs.n_agents=4"``; values are parsed as YAML.

    Raises:
        ConfigError: missing or unreadable file, unknown key, wrong type or
            out-of-range value. The message names the field and the fix.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {str(path)!r} (give the path to a YAML file, e.g. configs/vmas_navigation.yaml)")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(err, 'problem', err)}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the file: {err}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, got {type(data).__name__}")
    for override in overrides:
        _apply_override(data, override)
    cfg = config_from_dict(data, origin=str(path))
    cfg.source = str(path)
    return cfg
