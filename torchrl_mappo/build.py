"""``build``: every component of a run, from its config, as plain TorchRL objects.

The wiring in one place, in the order data flows: seed -> env -> one actor
per group (random for ``policy: random`` groups) -> a critic and a loss per
learning group -> optimizers -> collector -> metrics sinks -> the periodic evaluation. The CLI,
:meth:`Trainer.from_config <torchrl_mappo.Trainer.from_config>`, the
ablation runner and the benchmarks all build through here; take the pieces
into your own loop if you prefer.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from tensordict.nn import TensorDictModuleBase
from torchrl.collectors import BaseCollector
from torchrl.envs import EnvBase
from torchrl.objectives import LossModule

from torchrl_mappo.config import Config, ConfigError, TrainConfig
from torchrl_mappo.modules.sampler import sampling_policy

__all__ = ["Pipeline", "adam", "build", "check_stages_fit", "make_optimizers", "make_stage_collector",
           "resolve_agent_ids"]


@dataclass
class Pipeline:
    """What :func:`build` makes.

    ``env`` is the env built in this process (the ``sync`` collector steps it;
    with worker processes it only lent its specs and is closed). ``actors``
    holds every group's actor, ``losses`` and ``optimizers`` the learning
    groups'. ``sinks`` receive each iteration's metrics row (``None``
    without a run directory).
    """

    env: EnvBase
    actors: dict[str, TensorDictModuleBase]
    losses: dict[str, LossModule]
    optimizers: dict[str, list[torch.optim.Optimizer]]
    collector: BaseCollector
    sinks: Any = None
    pools: dict = field(default_factory=dict)
    """``{group: OpponentPool}`` of the ``policy: pool`` groups (:mod:`torchrl_mappo.selfplay`), and
    ``{group: TurnPool}`` of the ``alternate.groups`` (:mod:`torchrl_mappo.alternate`)."""
    evaluation: Any = None
    """``train.eval_every``'s :class:`~torchrl_mappo.evaluate.PeriodicEvaluation` (``None``: off)."""
    config: Config | None = None
    """The config built, with what the env decided filled in (``model.actor_agent_id: auto``):
    what the run's ``config.yaml`` and checkpoints hold."""


def adam(params, lr: float) -> torch.optim.Optimizer:
    """Adam with torch's fused kernel (CPU and CUDA: one call per step), else the foreach one."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except RuntimeError:  # a device without fused Adam
        return torch.optim.Adam(params, lr=lr, foreach=True)


def make_optimizers(loss: LossModule, lr: float, t: TrainConfig) -> list[torch.optim.Optimizer]:
    """Adam on the whole loss, or (``t.separate_optimizers``) one for the actor, one for the critic."""
    if not t.separate_optimizers:
        return [adam(loss.parameters(), lr)]
    actor = list(loss.actor_network.parameters())
    critic = list(loss.critic_network.parameters())
    critic_lr = lr if t.critic_lr is None else t.critic_lr
    return [adam(actor, lr), adam(critic, critic_lr)]


def _make_sinks(cfg: Config, run_dir: str | Path, resume: Mapping[str, Any] | None):
    from torchrl_mappo.metrics import CSVMetrics, MetricsSinks, TorchRLLoggerSink

    return MetricsSinks(
        CSVMetrics(Path(run_dir) / "metrics.csv", resume_after=resume["iteration"] if resume else None),
        TorchRLLoggerSink(cfg.run.logger, run_dir, Path(run_dir).name, cfg.run.logger_options),
    )


def _checked_env(cfg: Config, ready: EnvBase | None, seed: int) -> EnvBase:
    """``make_env`` (which raises the first problem of the env's specs), then the stepping checks."""
    from torchrl_mappo.envs import make_env
    from torchrl_mappo.envs.check import inspect_env, run_checks

    t = cfg.train
    if ready is not None:
        if cfg.collector.kind != "sync":
            raise ConfigError(
                f"collector.kind={cfg.collector.kind!r}: an env handed in ready lives in this process; use "
                "collector.kind: sync, or give its constructor as env.family: torchrl with env.make"
            )
        numel = max(ready.batch_size.numel(), 1)
        if t.frames_per_batch % numel:
            raise ConfigError(
                f"train.frames_per_batch={t.frames_per_batch}: must be a multiple of the env's batch size "
                f"({numel} envs)"
            )
    env = make_env(cfg.env, seed=seed, device=t.device, env=ready)
    notes = inspect_env(env.base_env, cfg.env, cfg.model)
    for note in notes.notes:
        print(f"note: {note}", flush=True)
    problems = notes.problems + run_checks(env, seed=seed)
    if problems:
        notes.problems = problems
        notes.raise_first("env check")
    env.set_seed(seed)  # the checks stepped it: training starts where it would have without them
    return env


def resolve_agent_ids(cfg: Config, env: EnvBase, groups: list[str]) -> Config:
    """``cfg`` with ``model.actor_agent_id: auto`` replaced, for each of ``groups``, by what it
    resolves to on ``env`` (:func:`~torchrl_mappo.modules.actor.actor_agent_id`), so that a resumed
    or evaluated run builds the same actors from its saved config. A shared ``auto`` that resolves
    alike for every group becomes one value; otherwise the groups that differ get ``per_group``."""
    from torchrl_mappo.modules.actor import actor_agent_id

    auto = [g for g in groups if cfg.group_model(g).actor_agent_id == "auto"]
    if not auto:
        return cfg
    found = {g: actor_agent_id(env, g, cfg.group_model(g)) for g in auto}
    per_group = dict(cfg.per_group)
    shared = [g for g in auto if "actor_agent_id" not in cfg.group(g).model]
    base = all(found[g] for g in shared) if shared else cfg.model.actor_agent_id
    for g in auto:
        if g not in shared or found[g] != base:
            group = cfg.group(g)
            per_group[g] = dataclasses.replace(group, model={**group.model, "actor_agent_id": found[g]})
    model = dataclasses.replace(cfg.model, actor_agent_id=False if base == "auto" else base)
    return dataclasses.replace(cfg, model=model, per_group=per_group)


def _with_agent_ids(cfg: Config, env: EnvBase, learners: list[str], seed: int) -> Config:
    """:func:`resolve_agent_ids`, a ``note:`` line per group it decided, and the env re-seeded after its reset."""
    resolved = resolve_agent_ids(cfg, env, learners)
    if resolved is cfg:
        return cfg
    for g in learners:
        if cfg.group_model(g).actor_agent_id == "auto":
            ids = resolved.group_model(g).actor_agent_id
            why = " (two of its agents observe the same at a reset)" if ids else ""
            print(f"note: model.actor_agent_id: auto -> {str(ids).lower()} for group {g!r}{why}", flush=True)
    env.set_seed(seed)  # the reset must not shift the training's env seeds
    return resolved


def build(
    cfg: Config, *, run_dir: str | Path | None = None, resume: Mapping[str, Any] | None = None,
    env: EnvBase | None = None,
) -> Pipeline:
    """Every component ``cfg`` names (with ``env``: on that ready TorchRL env instead of ``cfg.env``'s).

    Every group of the env gets an actor; groups with ``per_group.<g>.policy:
    random`` act at random and do not learn, ``learn`` groups get a critic, a
    loss and optimizers built from ``model`` / ``loss`` / ``train.lr`` with
    their ``per_group`` overrides applied. A ``mirror <source>`` group gets an
    actor, critic and loss tied to ``source``'s networks and ``source``'s
    optimizers; a ``pool`` group an actor of its own, frozen, loaded from
    ``pools[g]``'s snapshots of its source (:mod:`torchrl_mappo.selfplay`). The env is
    checked before anything else (:mod:`torchrl_mappo.envs.check`): its specs,
    what MAPPO needs, and a short random rollout (TorchRL's
    ``check_env_specs``, finite numbers); what the check adapted is printed
    as ``note:`` lines. With ``resume`` (a checkpoint's state)
    the collector gets only the frames left. With ``run_dir``, the sinks
    write ``run_dir/metrics.csv`` and the ``run.logger``.

    Raises:
        ConfigError: a setting the env rejects, no learning group, a budget
            already spent, an env that fails on its first reset.
    """
    from torchrl_mappo.collectors import make_collector
    from torchrl_mappo.curriculum import stage_config
    from torchrl_mappo.envs.factory import env_error
    from torchrl_mappo.loss import make_loss
    from torchrl_mappo.modules import make_actor, make_critic, make_random_actor
    from torchrl_mappo.modules.recurrent import is_recurrent

    from torchrl_mappo import alternate, keys, selfplay
    from torchrl_mappo.threads import apply_threads

    t = cfg.train
    apply_threads(cfg)
    torch.manual_seed(t.seed)
    stage = (resume.get("curriculum") or {}).get("stage", 0) if resume is not None else 0
    staged = stage_config(cfg, stage)  # cfg itself without a curriculum
    env = _checked_env(staged, env, seed=t.seed + stage)
    groups = list(env.group_map)
    cfg.check_groups(groups)
    kinds = {g: cfg.group(g).kind()[0] for g in groups}
    learners = [g for g in groups if kinds[g] == "learn"]
    if not learners:
        raise ConfigError(
            f"per_group: no group of the env ({', '.join(groups)}) has policy: learn, so nothing "
            "would be trained; let at least one group learn (per_group.<group>.policy: learn)"
        )
    cfg = _with_agent_ids(cfg, env, learners, seed=t.seed + stage)
    actors = {
        g: make_random_actor(env, g) if kinds[g] == "random" else make_actor(env, g, cfg.group_model(g))
        for g in groups if kinds[g] in ("learn", "random")
    }
    critics = {g: make_critic(env, g, cfg.group_model(g)) for g in learners}
    losses = {g: make_loss(actors[g], critics[g], env, g, cfg.group_loss(g)) for g in learners}
    optimizers = {g: make_optimizers(losses[g], cfg.group_lr(g), t) for g in learners}
    pools = {}
    swapped_actors = {}  # {pool group: its side-swapped batches' actors} (pool_swap_sides)
    for i, g in enumerate(groups):  # mirror and pool groups play a learning group's policy
        source = cfg.policy_source(g, groups)
        if source is None:
            continue
        where = f"per_group.{g}.policy={cfg.group(g).policy!r}"
        selfplay.check_same_specs(env, g, source, where)
        actors[g] = make_actor(env, g, cfg.group_model(source))
        if kinds[g] == "pool":
            s = cfg.group(g)
            swap_loss = None
            if s.pool_swap_sides > 0:
                if any(p.source_group == source for p in pools.values() if p.swap_sides > 0):
                    raise ConfigError(f"per_group.{g}.pool_swap_sides: another pool of {source!r} already swaps sides; "
                                      "the learner can play one other side only (set pool_swap_sides: 0 on one)")
                swap_loss, swapped_actors[g] = selfplay.make_side_swap(
                    env, cfg, g, source, actors, losses[source], cfg.source or "config")
            pools[g] = selfplay.OpponentPool(actors[source], actors[g], size=s.pool_size, every=s.snapshot_every,
                                             sampling=s.pool_sampling, seed=(t.seed + 7919 * (i + 1)) % 2**32,
                                             swap_sides=s.pool_swap_sides, swap_loss=swap_loss, source_group=source)
            continue
        selfplay.tie(actors[g], actors[source])
        critic = make_critic(env, g, cfg.group_model(source))
        if keys.STATE in critic.in_keys:
            raise ConfigError(
                f"{where}: the critic reads the global state, which is the same for both groups, so one critic "
                f"cannot value both; set model.critic_input: concat_obs (each group's own observations)"
            )
        selfplay.tie(critic, losses[source].critic_network)
        losses[g] = make_loss(actors[g], critic, env, g, cfg.group_loss(source))
        optimizers[g] = optimizers[source]  # one policy: one optimizer, stepped on both groups' data
    actors = {g: actors[g] for g in groups}  # the env's order: the collector runs them in it
    # alternate.groups: those groups act through acting copies (live on their turn, else a snapshot).
    acting, turn_pools = alternate.make_turns(cfg, env, actors)
    pools.update(turn_pools)
    # A recurrent critic also runs while collecting (after every actor: it may read their actions),
    # so that its hidden state is stored at every step, like the actor's.
    critics = [loss.critic_network for loss in losses.values() if is_recurrent(loss.critic_network)]
    lean = lean_sampling(cfg)
    policy = sampling_policy([*acting.values(), *critics], lean)
    for g, swapped in swapped_actors.items():  # the learner and the snapshot exchange sides on some batches
        policy = selfplay.SidePolicy(pools[g], policy, sampling_policy(
            [*(swapped.get(h, a) for h, a in acting.items()), *critics], lean))
    if t.curriculum:
        check_stages_fit(cfg, actors, losses)
    done_frames = resume["frames"] if resume is not None else 0
    if done_frames >= t.total_frames:
        raise ConfigError(
            f"train.total_frames={t.total_frames}: the run already used {done_frames} frames; "
            f"raise it to continue (e.g. train.total_frames={done_frames + t.total_frames})"
        )
    try:  # the collector resets the env: the first time the simulator runs
        collector = make_collector(staged, env, policy, total_frames=t.total_frames - done_frames)
    except ConfigError:
        raise
    except Exception as err:
        raise env_error(cfg.env, "failed on its first reset", err) from None
    if cfg.collector.kind != "sync":
        env.close()  # only its specs were needed: the workers step their own envs
    sinks = _make_sinks(cfg, run_dir, resume) if run_dir is not None else None
    from torchrl_mappo.evaluate import make_evaluation

    return Pipeline(env, actors, losses, optimizers, collector, sinks, pools, make_evaluation(staged, actors), cfg)


def lean_sampling(cfg: Config) -> bool:
    """``train.lean`` with the ``sync`` collector: it samples plain actors through
    :class:`~torchrl_mappo.modules.sampler.LeanSampler` (worker processes and Ray get the actors)."""
    return cfg.train.lean and cfg.collector.kind == "sync"


def check_stages_fit(cfg: Config, actors: Mapping[str, TensorDictModuleBase], losses: Mapping[str, LossModule]) -> None:
    """Every ``train.curriculum`` stage's env must fit the learning groups' actors and critics
    (built once, they carry on through the stages); a one-line error names the stage and why not."""
    from torchrl_mappo.curriculum import stage_config
    from torchrl_mappo.envs import make_env
    from torchrl_mappo.modules import make_actor, make_critic
    from torchrl_mappo.transfer import check_fits

    for k in range(1, len(cfg.train.curriculum)):
        staged = stage_config(cfg, k)
        try:
            env = make_env(dataclasses.replace(staged.env, num_envs=1), seed=cfg.train.seed)
        except ConfigError as err:
            raise ConfigError(f"{staged.source or 'config'}: train.curriculum[{k}]: {err}") from None
        try:
            for g, loss in losses.items():
                model, where = cfg.group_model(g), f"{staged.source or 'config'}: train.curriculum[{k}]"
                for kind, module, fresh in (("actor", actors[g], make_actor(env, g, model)),
                                            ("critic", loss.critic_network, make_critic(env, g, model))):
                    check_fits(kind, g, model, module.state_dict(), fresh, where, source="first stage's")
        finally:
            env.close()


def make_stage_collector(
    cfg: Config, stage: int, frames_done: int, *, actors: Mapping[str, TensorDictModuleBase]
) -> tuple[BaseCollector, EnvBase, Any]:
    """The collector of curriculum stage ``stage``, for the frames left: a new env (seed ``train.seed +
    stage``), the groups' actors as they are (learning, mirror, pool), new random policies for the
    random groups (they hold the env's spec); with the env it steps and the stage's
    ``train.eval_every`` evaluation (``None``: off)."""
    from torchrl_mappo.collectors import make_collector
    from torchrl_mappo.curriculum import stage_config
    from torchrl_mappo.envs import make_env
    from torchrl_mappo.evaluate import make_evaluation
    from torchrl_mappo.modules import make_random_actor
    from torchrl_mappo.modules.actor import RandomGroupPolicy

    staged = stage_config(cfg, stage)
    env = make_env(staged.env, seed=cfg.train.seed + stage, device=cfg.train.device)
    actors = {g: make_random_actor(env, g) if isinstance(actors[g], RandomGroupPolicy) else actors[g]
              for g in env.group_map}
    collector = make_collector(staged, env, sampling_policy(actors.values(), lean_sampling(cfg)),
                               total_frames=cfg.train.total_frames - frames_done)
    if cfg.collector.kind != "sync":
        env.close()
    return collector, env, make_evaluation(staged, actors)
