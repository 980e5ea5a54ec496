"""The trainer: it owns the loop, the counters and the optimizer steps; everything else is delegated.

One iteration:

    collector batch -> per-group GAE (loss.compute_advantages)
    -> metrics of the batch (metrics.batch_metrics)
    -> num_epochs x shuffled minibatches -> per-group loss (train.lean: its terms on plain
       tensors, lean_loss.LeanTerms) -> backward
    -> clip grad norm -> that group's optimizer (a non-finite step is skipped)
    -> schedules for the next batch -> collector.update_policy_weights_()
    -> metrics row to the sinks, checkpoint

The components come from :func:`torchrl_mappo.build.build` (or your own
code): TorchRL's collector, each learning group's ``MAPPOLoss`` with its
value estimator, its optimizers. Groups are independent: each has its own
actor, critic, loss, optimizer and metrics, and a group's parameters only
ever receive its own loss's gradients.
"""
from __future__ import annotations

import functools
import math
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from tensordict import TensorDictBase
from torch import nn
from torchrl.collectors import BaseCollector
from torchrl.objectives import LossModule

from torchrl_mappo import keys
from torchrl_mappo.build import adam
from torchrl_mappo.config import Config, ConfigError, config_to_dict
from torchrl_mappo.curriculum import Curriculum, check_stages
from torchrl_mappo.envs import snapshot
from torchrl_mappo.envs.family_pettingzoo import turn_based as is_turn_based
from torchrl_mappo.guard import NonFiniteGuard, NonFiniteLossError, clip_grad_norm  # noqa: F401 (re-exported)
from torchrl_mappo.lean_loss import lean_terms
from torchrl_mappo.loss import compute_advantages
from torchrl_mappo.metrics import RecentReturns, batch_metrics
from torchrl_mappo.modules.recurrent import is_recurrent
from torchrl_mappo.sequences import chunks
from torchrl_mappo.schedules import Schedules, log_std_params


LOSS_TERMS = ("loss_objective", "loss_critic", "loss_entropy")
DIAGNOSTICS = ("entropy", "kl_approx", "clip_fraction")


class Trainer:
    """MAPPO's training loop over any number of TorchRL groups.

    Args:
        collector: a TorchRL collector whose policy runs every group's actor.
        losses: ``{group: loss}`` for the groups that learn, each a
            ``MAPPOLoss``/``ClipPPOLoss`` with its value estimator set (see
            :func:`torchrl_mappo.make_loss`).
        cfg: the run's :class:`~torchrl_mappo.config.Config` (default: the
            defaults). ``train`` sets the update (epochs, minibatch size,
            grad clipping, target KL, autocast), the budget, the target
            return, the schedules and the non-finite guard; ``run`` the
            progress bar, per-agent metrics and checkpoints; each group's
            ``entropy_coeff_end`` comes from its ``loss`` section.
        optimizers: ``{group: optimizer or [optimizers]}``; default Adam at
            the group's learning rate on each loss's parameters. Each
            optimizer's parameters are clipped to ``max_grad_norm`` on their own.
        actors: ``{group: actor}`` of the learning groups, saved in
            checkpoints (default: each loss's actor network).
        groups: groups whose episode returns are reported (default: those
            of ``losses``; add the groups that act but do not learn).
        sinks: called with each iteration's metrics row (e.g.
            :class:`~torchrl_mappo.metrics.CSVMetrics`); ``None`` keeps them
            in :attr:`history` only.
        run_dir: where checkpoints go (``None``: no checkpoints).
        agent_names: ``{group: [agent names]}`` for per-agent metrics
            (default: the collector's env's ``group_map``, else indices).
        evaluation: ``train.eval_every``'s evaluation
            (:class:`~torchrl_mappo.evaluate.PeriodicEvaluation`: ``due`` and a
            call returning ``eval/...`` metrics); ``None``: none.
        pools: ``{group: OpponentPool}`` of the groups playing frozen
            snapshots (:mod:`torchrl_mappo.selfplay`): after each update a
            pool may snapshot its source and draws the next batch's opponent.
            A learning group's pool with a ``trains(iteration)`` method
            (:class:`~torchrl_mappo.alternate.TurnPool`) skips the update of
            the batches it says ``False`` for (:meth:`resting`).
        curriculum: a :class:`~torchrl_mappo.curriculum.Curriculum`: asked
            after each iteration whether its stage is over, it then hands
            the next stage's collector.
        turn_based: the env is a turn-based (AEC) game, whose masks mark
            turns, not survivors (win rates then come from the returns);
            default: read from the collector's env
            (:func:`~torchrl_mappo.envs.family_pettingzoo.turn_based`).
    """

    def __init__(
        self,
        collector: BaseCollector,
        losses: Mapping[str, LossModule],
        cfg: Config | None = None,
        *,
        optimizers: Mapping[str, torch.optim.Optimizer | Sequence[torch.optim.Optimizer]] | None = None,
        actors: Mapping[str, nn.Module] | None = None,
        groups: Sequence[str] | None = None,
        sinks: Callable[[dict[str, Any]], None] | None = None,
        run_dir: str | Path | None = None,
        agent_names: Mapping[str, Sequence[str]] | None = None,
        evaluation: Callable[[], dict[str, float]] | None = None,
        pools: Mapping[str, Any] | None = None,
        curriculum: Curriculum | None = None,
        turn_based: bool | None = None,
    ) -> None:
        self.config = cfg if cfg is not None else Config()
        self.t = self.config.train
        self.collector = collector
        self.losses = dict(losses)
        if optimizers is None:
            optimizers = {g: adam(loss.parameters(), self.config.group_lr(g)) for g, loss in self.losses.items()}
        self.optimizers: dict[str, list[torch.optim.Optimizer]] = {
            g: [o] if isinstance(o, torch.optim.Optimizer) else list(o) for g, o in optimizers.items()
        }
        self.actors = dict(actors) if actors is not None else {
            g: loss.actor_network for g, loss in self.losses.items()
        }
        self.groups = list(groups) if groups is not None else list(self.losses)
        self.metrics_sink = sinks
        self.evaluation = evaluation
        self.pools = dict(pools) if pools is not None else {}
        self.last_eval: dict[str, float] = {}
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.curriculum = curriculum
        without = [g for g, a in self.actors.items() if not log_std_params(a)]
        if self.t.log_std_end is not None and without:
            where = f"{self.config.source}: " if self.config.source else ""
            raise ConfigError(
                f"{where}train.log_std_end={self.t.log_std_end}: group(s) {without} have no log-std to schedule "
                "(discrete actions: a Categorical policy); drop train.log_std_end, or use continuous actions"
            )
        self.schedules = Schedules(
            self.t.total_frames, self.optimizers, self.losses, self.actors,
            lr_schedule=self.t.lr_schedule, log_std_end=self.t.log_std_end,
            entropy_coeff_end={g: self.config.group_loss(g).entropy_coeff_end for g in self.losses},
        )
        self.history: list[dict[str, Any]] = []
        self.iteration = 0
        self.frames = 0
        self.wall_time = 0.0
        self.guard = NonFiniteGuard(self.t.max_nonfinite_updates)
        from torchrl_mappo.threads import resolve_threads

        self._threads = resolve_threads(self.config)  # None: torch's default, left alone
        self.stopped_by: str | None = None
        if agent_names is None:
            # Multi-process and Ray collectors keep their envs in the workers.
            env = getattr(collector, "env", None)
            agent_names = dict(env.group_map) if env is not None else {}
        self.agent_names = {g: list(names) for g, names in agent_names.items()}
        if turn_based is None:
            env = getattr(collector, "env", None)
            turn_based = env is not None and is_turn_based(env)
        self.turn_based = turn_based
        self._batch_keys = {g: self._needed_keys(loss) for g, loss in self.losses.items()}
        # The losses whose terms lean_loss reproduces on plain tensors (train.lean).
        self._lean = {g: lean for g, loss in self.losses.items()
                      if self.t.lean and (lean := lean_terms(loss)) is not None}
        # Recurrent nets train on chunks of consecutive steps (all groups then do, harmlessly).
        recurrent = any(is_recurrent(loss.actor_network) or is_recurrent(loss.critic_network)
                        for loss in self.losses.values())
        self.chunk_length = self.t.chunk_length if recurrent else None
        self.recent = RecentReturns(self.groups)
        self._scheduled = self.apply_schedules()

    @classmethod
    def from_config(
        cls, cfg: Config, *, run_dir: str | Path | None = None, resume: Mapping[str, Any] | None = None,
        env: Any = None,
    ) -> "Trainer":
        """:func:`~torchrl_mappo.build.build` everything ``cfg`` names, and a trainer over it.

        ``env``: a ready TorchRL ``EnvBase`` (batched or not, the multi-agent
        layout) trained instead of the one ``cfg.env`` names; everything else
        comes from ``cfg``.

        With ``run_dir``, metrics go to ``run_dir/metrics.csv`` and
        checkpoints to ``run_dir/checkpoints/`` (latest: ``run_dir/checkpoint.pt``).
        With ``resume`` (a checkpoint's state), the trainer continues it:
        weights, optimizers, counters, RNG and the episodes in flight are restored.
        """
        from torchrl_mappo.build import build, make_stage_collector

        p = build(cfg, run_dir=run_dir, resume=resume, env=env)
        cfg = p.config  # with what the env decided (model.actor_agent_id: auto)
        curriculum = None
        if cfg.train.curriculum:
            stages = check_stages(cfg.train.curriculum, "train", cfg.train.total_frames, cfg.train.eval_every)
            curriculum = Curriculum(stages, functools.partial(make_stage_collector, cfg, actors=p.actors))
        trainer = cls(
            p.collector, p.losses, cfg, optimizers=p.optimizers, actors={g: p.actors[g] for g in p.losses},
            groups=list(p.actors), sinks=p.sinks, run_dir=run_dir, agent_names=dict(p.env.group_map),
            evaluation=p.evaluation, pools=p.pools, curriculum=curriculum, turn_based=is_turn_based(p.env),
        )
        if resume is not None:
            trainer.load_state_dict(resume)
        return trainer

    # ------------------------------------------------------------------ #
    @staticmethod
    def _needed_keys(loss: LossModule) -> list:
        """Keys a minibatch must carry for ``loss`` once GAE has run."""
        tk = loss.tensor_keys
        wanted = {k for k in loss.in_keys if not (isinstance(k, tuple) and k[0] == keys.NEXT)}
        wanted |= {tk.advantage, tk.value_target, tk.value}
        if isinstance(loss.loss_mask_key, tuple):
            wanted.add(loss.loss_mask_key)
        return list(wanted)

    def compute_advantages(self, batch: TensorDictBase, losses: Mapping[str, LossModule] | None = None) -> None:
        """Each learning group's GAE, in place (see :func:`torchrl_mappo.loss.compute_advantages`);
        ``losses``: by the group whose data each reads (default: this batch's, :meth:`batch_losses`)."""
        losses = self.batch_losses()[1] if losses is None else losses
        compute_advantages(batch, losses, {g: self.actors[g] if self.losses.get(g) is loss else loss.actor_network
                                           for g, loss in losses.items()})

    def batch_losses(self) -> tuple[dict[str, LossModule], dict[str, LossModule]]:
        """This batch's losses, by the group that learns (its optimizer) and by the group whose data
        each reads: a side-swapping pool's swapped batch trains its source with the pool's
        ``swap_loss`` on the pool group's data, and not on the source's own (a snapshot played it)."""
        by_learner, by_side = dict(self.losses), dict(self.losses)
        for side, pool in self.pools.items():
            if getattr(pool, "swapped", False):
                by_learner[pool.source_group] = pool.swap_loss
                del by_side[pool.source_group]
                by_side[side] = pool.swap_loss
        return by_learner, by_side

    def update(self, batch: TensorDictBase, losses: Mapping[str, LossModule] | None = None) -> dict[str, float]:
        """PPO epochs over ``batch`` (advantages already in it); returns mean loss terms.

        With ``target_kl``, the epochs stop after the first one whose mean
        approx KL (over its minibatches and the groups) exceeds it.

        With a recurrent net (:attr:`chunk_length` set), a minibatch is
        ``minibatch_size / chunk_length`` random chunks of consecutive steps
        (:func:`torchrl_mappo.sequences.chunks`) instead of random steps.

        A loss without entropy bonus (``entropy_bonus=False``: coefficient 0,
        see :func:`~torchrl_mappo.loss.make_loss`) skips the entropy and its
        backward; the ``entropy`` metric is then measured on the first
        minibatch of each epoch only.

        ``losses``: ``{group: loss}`` stepping each group's optimizers (default: this batch's,
        :meth:`batch_losses`: :attr:`losses` but on a side-swapping pool's swapped batch).
        """
        losses = self.batch_losses()[0] if losses is None else dict(losses)
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        epochs = 0
        probes = {g: not loss.entropy_bonus for g, loss in losses.items()}
        L = self.chunk_length
        flat = {}
        lean = {}  # {group: LeanTerms} of the groups whose minibatches are plain {key: tensor}
        resting = self.resting()
        for g, loss in losses.items():
            if g in resting:
                continue
            ks = self._batch_keys[g] if loss is self.losses.get(g) else self._needed_keys(loss)
            data = batch.select(*ks, strict=False)
            flat[g] = data.reshape(-1) if L is None else chunks(data, L)
            if L is None and g in self._lean and loss is self.losses[g]:
                lean[g] = self._lean[g]
        if not flat:
            return {}
        rows = self.t.minibatch_size if L is None else max(1, self.t.minibatch_size // L)
        sample = next(iter(flat.values()))
        n = sample.shape[0]
        # RayCollector's stacked batches carry no device of their own: ask a tensor.
        device_type = (sample.device or next(iter(sample.values(True, True))).device).type
        for g, terms in lean.items():
            flat[g] = {k: flat[g].get(k) for k in terms.in_keys}
        amp_dtype = torch.bfloat16 if device_type == "cpu" else torch.float16
        self.guard.remember(losses, self.optimizers)
        try:
            for _ in range(self.t.num_epochs):
                epochs += 1
                epoch_kl, epoch_steps = 0.0, 0
                perm = torch.randperm(n)
                # A lean group's minibatches are slices (views) of its data shuffled once per epoch.
                shuffled = {g: {k: v[perm] for k, v in flat[g].items()} for g in lean}
                for i, idx in enumerate(perm.split(rows)):
                    for group, loss in losses.items():
                        if group in resting:
                            continue
                        if probes[group]:
                            loss.entropy_bonus = i == 0  # coefficient 0: the term only measures
                        if group in lean:
                            mb = {k: v[i * rows:(i + 1) * rows] for k, v in shuffled[group].items()}
                            values = self._minibatch_step(group, lean[group], mb, device_type, amp_dtype)
                        else:
                            values = self._minibatch_step(group, loss, flat[group][idx], device_type, amp_dtype)
                        if values is None:
                            continue  # non-finite: skipped
                        for term, value in values.items():
                            key = f"{group}/{term}"
                            sums[key] = sums.get(key, 0.0) + value
                            counts[key] = counts.get(key, 0) + 1
                        if "kl_approx" in values:
                            epoch_kl += values["kl_approx"]
                            epoch_steps += 1
                if self.t.target_kl is not None and epoch_steps and epoch_kl / epoch_steps > self.t.target_kl:
                    break
        finally:  # the probe never outlives the update
            for group, loss in losses.items():
                if probes[group]:
                    loss.entropy_bonus = False
        metrics = {k: v / counts[k] for k, v in sums.items()}
        metrics["epochs"] = epochs
        return metrics

    def resting(self) -> set[str]:
        """Learning groups that skip the update of the current batch: a pool's group whose turn it is
        not (``alternate.groups``, :meth:`torchrl_mappo.alternate.TurnPool.trains`)."""
        return {g for g, pool in self.pools.items()
                if g in self.losses and hasattr(pool, "trains") and not pool.trains(self.iteration)}

    def _minibatch_step(
        self, group: str, loss: Callable, td: TensorDictBase | dict, device_type: str, amp_dtype: torch.dtype
    ) -> dict[str, float] | None:
        """One optimizer step of ``group`` on minibatch ``td``: its loss terms, diagnostics and
        gradient norm, or ``None`` when a non-finite loss or gradient made it skip the step.
        ``loss``: the group's loss on a TensorDict, or its :class:`~torchrl_mappo.lean_loss.LeanTerms`
        on ``{key: tensor}``."""
        with torch.autocast(device_type, dtype=amp_dtype, enabled=self.t.autocast):
            out = loss(td)
            total = sum(out[term] for term in LOSS_TERMS if term in out.keys())
        opts = self.optimizers[group]
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        total.float().backward()
        norms = []
        for opt in opts:
            params = [p for pg in opt.param_groups for p in pg["params"]]
            norms.append(clip_grad_norm(params, self.t.max_grad_norm))
        bad = self.guard.first_bad(out, total, norms, LOSS_TERMS)
        if bad is not None:
            self.guard.skip(group, bad, opts, self.iteration)
            return None
        for opt in opts:
            opt.step()
        if not self.guard.weights_finite(opts):
            self.guard.rollback(group, loss, opts)
            self.guard.skip(group, "weights", opts, self.iteration)
            return None
        self.guard.passed()
        values = {term: float(out[term].detach().float().mean())
                  for term in (*LOSS_TERMS, *DIAGNOSTICS) if term in out.keys()}
        values["grad_norm"] = sum(x ** 2 for x in norms) ** 0.5
        return values

    def apply_schedules(self) -> dict[str, float]:
        """Set the scheduled values for the NEXT batch, from the frames already trained on.

        Called once at the start (and on resume) and after every update,
        before the collector gets the new weights: batch ``k`` of ``K`` is
        then collected AND trained with the values at progress ``k / K``.
        The log-std must not move between collecting a batch and training
        on it (PPO's ratio would start far from 1); the first update uses
        the full learning rate and the last ``1 / K`` of it, never 0.
        Returns the values set.
        """
        return self.schedules.apply(self.frames)

    def batch_metrics(self, batch: TensorDictBase, losses: Mapping[str, LossModule] | None = None) -> dict[str, float]:
        """Episode returns (every group) and critic quality (the groups of ``losses``, by the data they
        read; default: this batch's, :meth:`batch_losses`) of a batch."""
        losses = self.batch_losses()[1] if losses is None else losses
        return batch_metrics(batch, self.groups, losses, per_agent=self.config.run.per_agent_metrics,
                             agent_names=self.agent_names, recent=self.recent, turn_based=self.turn_based)

    def _reached_target(self, metrics: Mapping[str, float]) -> bool:
        if self.t.target_return is None or not self.losses:
            return False
        values = [metrics[f"{g}/episode_return"] for g in self.losses]
        return all(not math.isnan(v) and v >= self.t.target_return for v in values)

    # ------------------------------------------------------------------ #
    def train(self) -> list[dict[str, Any]]:
        """Run until the frame budget is spent, the target is hit, or a stop is asked.

        SIGINT / SIGTERM finish the current iteration, write a checkpoint (if
        the trainer has a run directory) and return; :attr:`stopped_by` then
        names the signal. Returns the per-iteration metrics (also kept in
        :attr:`history`).
        """
        bar = self._progress_bar()
        previous = self._install_signal_handlers()
        start = time.perf_counter() - self.wall_time
        t_prev = time.perf_counter()
        try:
            next_stage = True
            while next_stage:  # once per curriculum stage (once without a curriculum)
                next_stage = False
                for batch in self.collector:
                    reached = self._iteration(batch, bar, start, t_prev)
                    if reached or self.stopped_by is not None:
                        break
                    next_stage = self._next_stage(self.history[-1])
                    t_prev = time.perf_counter()
                    if next_stage:
                        break
        except NonFiniteLossError:
            if self.run_dir is not None:
                self.checkpoint()  # the last good weights: bad updates were never applied
            raise
        finally:
            self._restore_signal_handlers(previous)
            if bar is not None:
                bar.close()
            if hasattr(self.metrics_sink, "close"):
                self.metrics_sink.close()
            if hasattr(self.evaluation, "close"):
                self.evaluation.close()
            self.collector.shutdown()
        return self.history

    def iterate(self, batch: TensorDictBase) -> tuple[dict[str, Any], bool]:
        """One iteration on a collected batch: GAE, the batch's metrics and, unless the target
        return is reached, the update. Returns the metrics row and whether the target was reached."""
        self.frames += batch.numel()
        self.iteration += 1
        if self._threads is not None and torch.get_num_threads() != self._threads:
            # TorchRL raises torch's thread count when a collector closes a SerialEnv (its last
            # batch of a PettingZoo/MAgent2 run): the last update would run oversubscribed.
            torch.set_num_threads(self._threads)
        self.compute_advantages(batch)  # this batch's losses (:meth:`batch_losses`)
        metrics: dict[str, Any] = {"iteration": self.iteration, "frames": self.frames}
        if self.curriculum is not None:
            metrics["curriculum_stage"] = self.curriculum.stage
        for group, pool in self.pools.items():
            if getattr(pool, "swap_loss", None) is not None:  # 1: the learner played this group's side
                metrics[f"{group}/pool_swapped"] = float(pool.swapped)
        metrics.update(self.batch_metrics(batch))
        reached = self._reached_target(metrics)
        if not reached:
            metrics.update(self._scheduled)  # what this batch was collected and trained with
            metrics.update(self.update(batch))
            for group, pool in self.pools.items():  # the next batch's opponents
                metrics.update({f"{group}/{k}": v for k, v in pool.after_update(self.iteration).items()})
            self._scheduled = self.apply_schedules()  # for the next batch, before its collection
            self.collector.update_policy_weights_()
        return metrics, reached

    def _iteration(self, batch: TensorDictBase, bar, start: float, t_prev: float) -> bool:
        """:meth:`iterate` on a collected batch, timings, the due evaluation, the metrics row and the
        due checkpoint; whether the target return was reached."""
        t_collected = time.perf_counter()
        frames_before = self.frames
        metrics, reached = self.iterate(batch)
        now = time.perf_counter()
        frames = batch.numel()
        metrics.update(collect_time=t_collected - t_prev, train_time=now - t_collected,
                       fps=frames / (now - t_prev))
        if self.evaluation is not None and self.evaluation.due(frames_before, self.frames,
                                                               self._is_last(reached)):
            self.last_eval = self.evaluation()
            metrics.update(self.last_eval, eval_time=time.perf_counter() - now)
        metrics["wall_time"] = time.perf_counter() - start
        self.wall_time = metrics["wall_time"]
        self._record(metrics, bar, frames)
        if self.run_dir is not None and self._checkpoint_due(reached):
            self.checkpoint()
        return reached

    def _next_stage(self, metrics: Mapping[str, Any]) -> bool:
        """Ask the curriculum whether its stage is over; if so, swap in the next stage's collector."""
        if self.curriculum is None or self.frames >= self.t.total_frames:
            return False
        if not self.curriculum.advance(self.frames, metrics, list(self.losses)):
            return False
        self.collector.shutdown()
        if self.evaluation is not None and hasattr(self.evaluation, "close"):
            self.evaluation.close()
        self.collector, env, evaluation = self.curriculum.next_collector(self.frames)
        if self.evaluation is not None:  # on the new stage's env
            self.evaluation = evaluation
        self.agent_names = {g: list(names) for g, names in env.group_map.items()}
        self.turn_based = is_turn_based(env)
        return True

    def _record(self, metrics: dict[str, Any], bar, frames: int) -> None:
        self.history.append(metrics)
        if self.metrics_sink is not None:
            self.metrics_sink(metrics)
        if bar is not None:
            bar.update(frames)
            bar.set_postfix(self._postfix(metrics), refresh=False)

    def _checkpoint_due(self, reached: bool) -> bool:
        """At the end, after the first iteration (a run killed early can then resume), every
        ``run.checkpoint_every`` iterations."""
        every = self.config.run.checkpoint_every
        return self._is_last(reached) or self.iteration == 1 or bool(every and self.iteration % every == 0)

    def _is_last(self, reached: bool) -> bool:
        """This iteration ends training: the target reached, a stop asked, or the budget spent."""
        return reached or self.stopped_by is not None or self.frames >= (self.t.total_frames or 0)

    def _progress_bar(self):
        if not self.config.run.progress_bar:
            return None
        from tqdm.auto import tqdm

        return tqdm(total=self.t.total_frames, initial=self.frames, unit="frames", dynamic_ncols=True, leave=True)

    def _install_signal_handlers(self) -> dict:
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous = {}

        def ask_stop(signum, frame):
            self.stopped_by = signal.Signals(signum).name

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, ask_stop)
        return previous

    @staticmethod
    def _restore_signal_handlers(previous: dict) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    def _postfix(self, metrics: Mapping[str, Any]) -> dict[str, str]:
        post = {f"{g}_return": self.recent.mean(g) for g in self.groups}
        for g in self.groups:
            if f"eval/{g}/episode_return" in self.last_eval:
                post[f"{g}_eval"] = f"{self.last_eval[f'eval/{g}/episode_return']:.3g}"
        post["fps"] = f"{metrics['fps']:.0f}"
        return post

    # ------------------------------------------------------------------ #
    # Checkpoints
    # ------------------------------------------------------------------ #
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly (see :mod:`torchrl_mappo.checkpoint`)."""
        from torchrl_mappo import checkpoint as ckpt

        carrier = snapshot.carrier(self.collector)
        env = getattr(self.collector, "env", None) if carrier is not None else None
        return {
            "format": ckpt.FORMAT,
            "config": config_to_dict(self.config) if self.config is not None else None,
            "iteration": self.iteration,
            "frames": self.frames,
            "wall_time": self.wall_time,
            "actors": {g: a.state_dict() for g, a in self.actors.items()},
            "losses": {g: loss.state_dict() for g, loss in self.losses.items()},
            "optimizers": {g: [o.state_dict() for o in opts] for g, opts in self.optimizers.items()},
            "nonfinite_streak": self.guard.streak,
            "recent_returns": self.recent.state_dict(),
            "pools": {g: pool.state_dict() for g, pool in self.pools.items()},
            "rng": ckpt.rng_state(),
            # Multi-process and Ray collectors keep the episodes in flight in
            # their workers, out of reach: None, and a resume restarts them.
            "carrier": carrier.clone() if carrier is not None else None,
            "simulator": snapshot.simulator_tensors(env) if env is not None else None,
            "curriculum": self.curriculum.state_dict() if self.curriculum is not None else None,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output into a trainer built from the same config."""
        from torchrl_mappo import checkpoint as ckpt

        saved_groups, groups = set(state["actors"]), set(self.actors)
        if saved_groups != groups:
            raise ConfigError(
                f"checkpoint: trained groups {sorted(saved_groups)} but this config trains {sorted(groups)}"
            )
        for g in self.actors:
            ckpt.load_into(self.actors[g], state["actors"][g], f"group {g!r} actor")
            ckpt.load_into(self.losses[g], state["losses"][g], f"group {g!r} loss")
            saved_opts = state["optimizers"][g]
            if len(saved_opts) != len(self.optimizers[g]):
                raise ConfigError(
                    f"checkpoint: group {g!r} has {len(saved_opts)} optimizer(s), this config "
                    f"{len(self.optimizers[g])} (train.separate_optimizers changed)"
                )
            for opt, saved in zip(self.optimizers[g], saved_opts):
                opt.load_state_dict(saved)
        self.iteration, self.frames = state["iteration"], state["frames"]
        self.wall_time = state.get("wall_time", 0.0)
        self.guard.streak = state.get("nonfinite_streak", 0)
        self.recent.load_state_dict(state.get("recent_returns", {}))
        for g, pool in self.pools.items():
            if g not in state.get("pools", {}):
                raise ConfigError(f"checkpoint: it has no opponent pool for group {g!r} (per_group.{g}.policy changed)")
            pool.load_state_dict(state["pools"][g])
        if self.curriculum is not None and state.get("curriculum") is not None:
            self.curriculum.load_state_dict(state["curriculum"])  # build() made that stage's env
        self._scheduled = self.apply_schedules()  # from the frames done (a new total_frames included)
        carrier = state.get("carrier")
        if carrier is not None and snapshot.carrier(self.collector) is not None:
            snapshot.check_carrier(self.collector, carrier)
            if not snapshot.carrier_fits(self.collector, carrier):
                import sys

                print("warning: the checkpoint's episodes in flight lack entries this version's env has "
                      "(written by an older torchrl_mappo): they restart from a reset", file=sys.stderr)
            elif state.get("simulator") is not None:
                snapshot.restore_simulator_tensors(self.collector.env, state["simulator"])
                snapshot.set_carrier(self.collector, carrier)
            # Without a simulator snapshot the env's episodes restart (fresh reset).
        # A checkpoint of a multi-process/Ray run (carrier None), or one resumed
        # with such a collector, restarts the episodes in flight the same way.
        self.collector.update_policy_weights_()
        ckpt.set_rng_state(state["rng"])

    def checkpoint(self) -> Path:
        """Write a checkpoint in the run directory (never with non-finite weights)."""
        from torchrl_mappo import checkpoint as ckpt

        return ckpt.write(self.state_dict(), Path(self.run_dir), self.config.run.keep_checkpoints)
