"""The thin trainer: it owns the loop, the optimizers, the counters and the metrics.

Everything else is TorchRL's: the collector gathers a batch with every
group's actor, each learning group's ``MAPPOLoss`` computes its GAE
advantages and its loss. One iteration:

    collector batch -> per-group GAE -> num_epochs x shuffled minibatches
    -> per-group loss -> backward -> clip grad norm -> that group's optimizer
    -> collector.update_policy_weights_() -> metrics row

Groups are independent: each has its own actor, critic, loss, optimizer and
metrics, and a group's parameters only ever receive its own loss's gradients.
"""
from __future__ import annotations

import math
import signal
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictSequential
from torch import nn
from torchrl.collectors import BaseCollector
from torchrl.objectives import LossModule

from torchrl_mappo import keys
from torchrl_mappo.config import Config, ConfigError, TrainConfig, config_to_dict


class NonFiniteLossError(RuntimeError):
    """Too many consecutive updates had a non-finite loss or gradient."""

LOSS_TERMS = ("loss_objective", "loss_critic", "loss_entropy")
DIAGNOSTICS = ("entropy", "kl_approx", "clip_fraction")


def episode_returns(batch: TensorDictBase, group: str) -> torch.Tensor:
    """Returns of the episodes of ``group`` that ended in ``batch``: ``[episodes, n_agents]``.

    Reads ``("next", group, "episode_reward")`` where the env's root
    ``("next", "done")`` is set (every env we build has one).
    """
    ep = batch.get((keys.NEXT, *keys.episode_reward(group)))  # [*B, n_agents, 1]
    done = batch.get((keys.NEXT, keys.DONE))  # [*B, 1]
    return ep[done.squeeze(-1)].squeeze(-1)


def survivors(batch: TensorDictBase, groups: Sequence[str]) -> dict[str, torch.Tensor]:
    """Agents of each masked group alive at the end of each finished episode.

    Alive at the end = alive when the last step began (``(group, "mask")``)
    and not terminated by it (an agent that is only truncated survived).
    When a battle ends because a team was wiped out, MAgent2 terminates every
    agent; for those episodes the agents alive when the last step began count.
    Groups without a mask are left out.
    """
    done = batch.get((keys.NEXT, keys.DONE)).squeeze(-1)
    out, at_start = {}, {}
    for g in groups:
        mask = batch.get(keys.mask(g), None)
        if mask is None:
            continue
        terminated = batch.get((keys.NEXT, *keys.terminated(g))).squeeze(-1)
        out[g] = (mask & ~terminated)[done].sum(-1)
        at_start[g] = mask[done].sum(-1)
    if out:
        game_over = torch.stack(list(out.values())).sum(0) == 0
        for g in out:
            out[g] = torch.where(game_over, at_start[g], out[g])
    return out


def explained_variance(pred: torch.Tensor, target: torch.Tensor) -> float:
    var = target.var(correction=0)
    if not var > 0:
        return float("nan")
    return float(1.0 - (target - pred).var(correction=0) / var)


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


class Trainer:
    """MAPPO's training loop over any number of TorchRL groups.

    Args:
        collector: a TorchRL collector whose policy runs every group's actor.
        losses: ``{group: loss}`` for the groups that learn, each a
            ``MAPPOLoss``/``ClipPPOLoss`` with its value estimator set (see
            :func:`torchrl_mappo.make_loss`).
        num_epochs, minibatch_size, lr, max_grad_norm: PPO's update.
        total_frames: frames budget shown by the progress bar (the collector
            enforces it).
        target_return: stop once every learning group's mean episode return
            in an iteration reaches it (``None``: use the whole budget).
        optimizers: ``{group: optimizer or [optimizers]}``; default
            ``Adam(lr)`` on each loss's parameters. Each optimizer's
            parameters are clipped to ``max_grad_norm`` on their own.
        lr_schedule: ``"constant"`` or ``"linear"`` (to 0 over ``total_frames``).
        target_kl: stop an iteration's epochs after one whose mean approx KL
            exceeds it.
        entropy_coeff_end: ``{group: value}``: anneal each loss's
            ``entropy_coeff`` linearly to it over ``total_frames``.
        log_std_end: decay the actors' state-independent log-std linearly
            to it (it is then scheduled, not learned).
        autocast: run the losses under ``torch.autocast`` (bfloat16 on CPU).
        groups: groups whose episode returns are reported (default: all of
            ``losses``; add the groups that act but do not learn).
        actors: ``{group: actor}`` saved by :meth:`save` (default: each
            loss's actor network).
        metrics_sink: called with each iteration's metrics row (e.g. a CSV
            writer); ``None`` keeps them in :attr:`history` only.
        progress_bar: show a tqdm bar (frames, return, frames/s).
        config: the run's config, stored in checkpoints.
        run_dir: where checkpoints go (``None``: no checkpoints).
        checkpoint_every: write a checkpoint every this many iterations (and
            always at the end); 0: only at the end.
        keep_checkpoints: how many ``checkpoints/iter_*.pt`` to keep.
        max_nonfinite_updates: a minibatch update whose loss or gradients are
            not finite is skipped (with a warning); this many in a row stop
            training with :class:`NonFiniteLossError` (the weights stay the
            last good ones).
        per_agent_metrics: also report ``<group>/<agent>/episode_return``.
        agent_names: ``{group: [agent names]}`` for those metrics (default:
            the collector's env's ``group_map``, else agent indices).
    """

    def __init__(
        self,
        *,
        collector: BaseCollector,
        losses: Mapping[str, LossModule],
        num_epochs: int,
        minibatch_size: int,
        lr: float = 3e-4,
        max_grad_norm: float = 0.5,
        total_frames: int | None = None,
        target_return: float | None = None,
        optimizers: Mapping[str, torch.optim.Optimizer | Sequence[torch.optim.Optimizer]] | None = None,
        lr_schedule: str = "constant",
        target_kl: float | None = None,
        entropy_coeff_end: Mapping[str, float | None] | None = None,
        log_std_end: float | None = None,
        autocast: bool = False,
        groups: Sequence[str] | None = None,
        actors: Mapping[str, nn.Module] | None = None,
        metrics_sink: Callable[[dict[str, Any]], None] | None = None,
        progress_bar: bool = True,
        config: Config | None = None,
        run_dir: str | Path | None = None,
        checkpoint_every: int = 0,
        keep_checkpoints: int = 3,
        max_nonfinite_updates: int = 10,
        per_agent_metrics: bool = False,
        agent_names: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.collector = collector
        self.losses = dict(losses)
        self.num_epochs = num_epochs
        self.minibatch_size = minibatch_size
        self.max_grad_norm = max_grad_norm
        self.total_frames = total_frames
        self.target_return = target_return
        optimizers = optimizers if optimizers is not None else {
            g: adam(loss.parameters(), lr) for g, loss in self.losses.items()
        }
        self.optimizers: dict[str, list[torch.optim.Optimizer]] = {
            g: [o] if isinstance(o, torch.optim.Optimizer) else list(o) for g, o in optimizers.items()
        }
        self._initial_lrs = {
            g: [[pg["lr"] for pg in o.param_groups] for o in opts] for g, opts in self.optimizers.items()
        }
        if lr_schedule not in ("constant", "linear"):
            raise ValueError(f"lr_schedule must be 'constant' or 'linear', got {lr_schedule!r}")
        self.lr_schedule = lr_schedule
        self.target_kl = target_kl
        self.entropy_schedule = {
            g: (float(loss.entropy_coeff), end)
            for g, loss in self.losses.items()
            if entropy_coeff_end is not None and entropy_coeff_end.get(g) is not None
            for end in [entropy_coeff_end[g]]
        }
        self.log_std_end = log_std_end
        self.autocast = autocast
        self.groups = list(groups) if groups is not None else list(self.losses)
        self.actors = dict(actors) if actors is not None else {
            g: loss.actor_network for g, loss in self.losses.items()
        }
        self.metrics_sink = metrics_sink
        self.progress_bar = progress_bar
        self.config = config
        self._log_std_start = {g: self._log_std_params(g) for g in self.actors}
        if log_std_end is not None:
            for params in self._log_std_start.values():
                for p, _ in params:
                    p.requires_grad_(False)  # scheduled, not learned
        self.history: list[dict[str, Any]] = []
        self.iteration = 0
        self.frames = 0
        self.wall_time = 0.0
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.checkpoint_every = checkpoint_every
        self.keep_checkpoints = keep_checkpoints
        self.max_nonfinite_updates = max_nonfinite_updates
        self._nonfinite_streak = 0
        self.stopped_by: str | None = None
        self.per_agent_metrics = per_agent_metrics
        if agent_names is None:
            # Multi-process and Ray collectors keep their envs in the workers.
            env = getattr(collector, "env", None)
            agent_names = dict(env.group_map) if env is not None else {}
        self.agent_names = {g: list(names) for g, names in agent_names.items()}
        self._batch_keys = {g: self._needed_keys(loss) for g, loss in self.losses.items()}

    # ------------------------------------------------------------------ #
    @classmethod
    def from_config(
        cls, cfg: Config, *, run_dir: str | Path | None = None, resume: Mapping[str, Any] | None = None
    ) -> "Trainer":
        """Build env, actors, critics, losses and collector as ``cfg`` names them.

        Every group of the env gets an actor; groups with
        ``per_group.<g>.policy: random`` act at random and do not learn, the
        others get a critic, a loss and an optimizer built from ``model`` /
        ``loss`` / ``train.lr`` with their ``per_group`` overrides applied.
        With ``run_dir``, metrics go to ``run_dir/metrics.csv`` and
        checkpoints to ``run_dir/checkpoints/`` (latest: ``run_dir/checkpoint.pt``).
        With ``resume`` (a checkpoint's state), the trainer continues it: the
        collector gets the frames left, and weights, optimizers, counters,
        RNG and the episodes in flight are restored.
        """
        from torchrl_mappo.collectors import make_collector
        from torchrl_mappo.envs import make_env
        from torchrl_mappo.loss import make_loss
        from torchrl_mappo.metrics import CSVMetrics, MetricsSinks, TorchRLLoggerSink
        from torchrl_mappo.modules import make_actor, make_critic, make_random_actor
        from torchrl_mappo.threads import apply_threads

        t = cfg.train
        apply_threads(cfg)
        torch.manual_seed(t.seed)
        env = make_env(cfg.env, seed=t.seed, device=t.device)
        groups = list(env.group_map)
        cfg.check_groups(groups)
        learners = [g for g in groups if cfg.group(g).policy == "learn"]
        actors = {
            g: make_actor(env, g, cfg.group_model(g)) if g in learners else make_random_actor(env, g)
            for g in groups
        }
        losses = {
            g: make_loss(actors[g], make_critic(env, g, cfg.group_model(g)), env, g, cfg.group_loss(g))
            for g in learners
        }
        optimizers = {g: make_optimizers(losses[g], cfg.group_lr(g), t) for g in learners}
        done_frames = resume["frames"] if resume is not None else 0
        if done_frames >= t.total_frames:
            raise ConfigError(
                f"train.total_frames={t.total_frames}: the run already used {done_frames} frames; "
                f"raise it to continue (e.g. train.total_frames={done_frames + t.total_frames})"
            )
        collector = make_collector(
            cfg, env, TensorDictSequential(*actors.values()), total_frames=t.total_frames - done_frames
        )
        if cfg.collector.kind != "sync":
            env.close()  # only its specs were needed: the workers step their own envs
        sink = None
        if run_dir is not None:
            sink = MetricsSinks(
                CSVMetrics(Path(run_dir) / "metrics.csv", resume_after=resume["iteration"] if resume else None),
                TorchRLLoggerSink(cfg.run.logger, run_dir, Path(run_dir).name, cfg.run.logger_options),
            )
        trainer = cls.from_train_config(
            t, collector=collector, losses=losses, optimizers=optimizers, groups=groups,
            actors={g: actors[g] for g in learners}, metrics_sink=sink,
            progress_bar=cfg.run.progress_bar, config=cfg, per_agent_metrics=cfg.run.per_agent_metrics,
            entropy_coeff_end={g: cfg.group_loss(g).entropy_coeff_end for g in learners},
            run_dir=run_dir, checkpoint_every=cfg.run.checkpoint_every,
            keep_checkpoints=cfg.run.keep_checkpoints, agent_names=dict(env.group_map),
        )
        if resume is not None:
            trainer.load_state_dict(resume)
        return trainer

    @classmethod
    def from_train_config(cls, t: TrainConfig, **components: Any) -> "Trainer":
        return cls(
            num_epochs=t.num_epochs,
            minibatch_size=t.minibatch_size,
            lr=t.lr,
            max_grad_norm=t.max_grad_norm,
            total_frames=t.total_frames,
            target_return=t.target_return,
            lr_schedule=t.lr_schedule,
            target_kl=t.target_kl,
            log_std_end=t.log_std_end,
            autocast=t.autocast,
            max_nonfinite_updates=t.max_nonfinite_updates,
            **components,
        )

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

    def compute_advantages(self, batch: TensorDictBase) -> None:
        """Each group's GAE, written in place as ``(group, "advantage"/"value_target")``.

        Where a group marks live agents (``loss.loss_mask_key``), a dead
        agent's advantage is set to 0 and its value target to its value: with
        the loss masked too, steps after death carry nothing.
        """
        with torch.no_grad():
            for group, loss in self.losses.items():
                if keys.action(group) in loss.critic_network.in_keys:
                    # A joint-action critic values s_{t+1} with the others' next
                    # actions: sample them from the current policy.
                    nxt = batch.get(keys.NEXT)
                    nxt.set(keys.action(group), self.actors[group](nxt.clone(False)).get(keys.action(group)))
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

    def update(self, batch: TensorDictBase) -> dict[str, float]:
        """PPO epochs over ``batch`` (advantages already in it); returns mean loss terms.

        With ``target_kl``, the epochs stop after the first one whose mean
        approx KL (over its minibatches and the groups) exceeds it.

        A loss without entropy bonus (``entropy_bonus=False``: coefficient 0,
        see :func:`~torchrl_mappo.loss.make_loss`) skips the entropy and its
        backward; the ``entropy`` metric is then measured on the first
        minibatch of each epoch only.
        """
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        epochs = 0
        probes = {g: not loss.entropy_bonus for g, loss in self.losses.items()}
        flat = {g: batch.select(*ks, strict=False).reshape(-1) for g, ks in self._batch_keys.items()}
        if not flat:
            return {}
        sample = next(iter(flat.values()))
        n = sample.shape[0]
        # RayCollector's stacked batches carry no device of their own: ask a tensor.
        device_type = (sample.device or next(iter(sample.values(True, True))).device).type
        amp_dtype = torch.bfloat16 if device_type == "cpu" else torch.float16
        try:
            for _ in range(self.num_epochs):
                epochs += 1
                epoch_kl, epoch_steps = 0.0, 0
                for i, idx in enumerate(torch.randperm(n).split(self.minibatch_size)):
                    for group, loss in self.losses.items():
                        if probes[group]:
                            loss.entropy_bonus = i == 0  # coefficient 0: the term only measures
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
                if self.target_kl is not None and epoch_steps and epoch_kl / epoch_steps > self.target_kl:
                    break
        finally:  # the probe never outlives the update
            for group, loss in self.losses.items():
                if probes[group]:
                    loss.entropy_bonus = False
        metrics = {k: v / counts[k] for k, v in sums.items()}
        metrics["epochs"] = epochs
        return metrics

    def _minibatch_step(
        self, group: str, loss: LossModule, td: TensorDictBase, device_type: str, amp_dtype: torch.dtype
    ) -> dict[str, float] | None:
        """One optimizer step of ``group`` on minibatch ``td``: its loss terms, diagnostics and
        gradient norm, or ``None`` when a non-finite loss or gradient made it skip the step."""
        with torch.autocast(device_type, dtype=amp_dtype, enabled=self.autocast):
            out = loss(td)
            total = sum(out[term] for term in LOSS_TERMS if term in out.keys())
        opts = self.optimizers[group]
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        total.float().backward()
        norms = []
        for opt in opts:
            params = [p for pg in opt.param_groups for p in pg["params"]]
            norms.append(float(nn.utils.clip_grad_norm_(params, self.max_grad_norm)))
        bad = self._nonfinite_term(out, total, norms)
        if bad is not None:
            self._skip_update(group, bad, opts)
            return None
        self._nonfinite_streak = 0
        for opt in opts:
            opt.step()
        values = {term: float(out[term].detach().float().mean())
                  for term in (*LOSS_TERMS, *DIAGNOSTICS) if term in out.keys()}
        values["grad_norm"] = sum(x ** 2 for x in norms) ** 0.5
        return values

    @staticmethod
    def _nonfinite_term(out: TensorDictBase, total: torch.Tensor, norms: list[float]) -> str | None:
        """The first non-finite loss term (or ``"gradient"``), ``None`` if all is finite."""
        if torch.isfinite(total).all() and all(math.isfinite(n) for n in norms):
            return None
        for term in LOSS_TERMS:
            if term in out.keys() and not torch.isfinite(out[term]).all():
                return term
        return "gradient"

    def _skip_update(self, group: str, term: str, opts: list) -> None:
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        self._nonfinite_streak += 1
        warnings.warn(
            f"iteration {self.iteration + 0}: group {group!r}: non-finite {term}; update skipped "
            f"({self._nonfinite_streak} in a row, stop at {self.max_nonfinite_updates})",
            RuntimeWarning, stacklevel=2,
        )
        if self._nonfinite_streak >= self.max_nonfinite_updates:
            raise NonFiniteLossError(
                f"{self._nonfinite_streak} consecutive updates with a non-finite {term} "
                f"(group {group!r}, iteration {self.iteration}); training stopped with the last finite weights"
            )

    # ------------------------------------------------------------------ #
    # Schedules: a fraction of the frame budget -> lr, entropy coeff, log-std
    # ------------------------------------------------------------------ #
    def _log_std_params(self, group: str) -> list[tuple[torch.nn.Parameter, float]]:
        from tensordict.nn import AddStateIndependentNormalScale

        actor = self.actors[group]
        return [
            (m.state_independent_scale, float(m.state_independent_scale.detach().mean()))
            for m in actor.modules() if isinstance(m, AddStateIndependentNormalScale)
        ]

    def apply_schedules(self) -> dict[str, float]:
        """Set this iteration's scheduled values from the fraction of frames used."""
        if not self.total_frames:
            return {}
        progress = min(1.0, self.frames / self.total_frames)
        out: dict[str, float] = {}
        if self.lr_schedule == "linear":
            for g, opts in self.optimizers.items():
                for opt, lrs in zip(opts, self._initial_lrs[g]):
                    for pg, lr0 in zip(opt.param_groups, lrs):
                        pg["lr"] = lr0 * (1.0 - progress)
                out[f"{g}/lr"] = opts[0].param_groups[0]["lr"]
        for g, (start, end) in self.entropy_schedule.items():
            value = start + (end - start) * progress
            self.losses[g].entropy_coeff.fill_(value)
            out[f"{g}/entropy_coeff"] = value
        if self.log_std_end is not None:
            for g, params in self._log_std_start.items():
                for p, start in params:
                    value = start + (self.log_std_end - start) * progress
                    with torch.no_grad():
                        p.fill_(value)
                    out[f"{g}/log_std"] = value
        return out

    def batch_metrics(self, batch: TensorDictBase) -> dict[str, float]:
        """Episode returns (every group) and critic quality (learning groups) of a batch."""
        out: dict[str, float] = {}
        alive = survivors(batch, self.groups)
        for group in self.groups:
            returns = episode_returns(batch, group)
            out[f"{group}/episode_return"] = float(returns.mean()) if returns.numel() else float("nan")
            out[f"{group}/episodes"] = returns.shape[0]
            if self.per_agent_metrics:
                names = self.agent_names.get(group) or list(range(returns.shape[-1]))
                for i, agent in enumerate(names):
                    out[f"{group}/{agent}/episode_return"] = (
                        float(returns[:, i].mean()) if returns.numel() else float("nan"))
            if group in alive:
                n = alive[group]
                out[f"{group}/survivors"] = float(n.float().mean()) if n.numel() else float("nan")
            loss = self.losses.get(group)
            if loss is not None:
                pred, target = batch.get(loss.tensor_keys.value), batch.get(loss.tensor_keys.value_target)
                if isinstance(loss.loss_mask_key, tuple):
                    alive_now = batch.get(loss.loss_mask_key)
                    pred, target = pred[alive_now], target[alive_now]
                out[f"{group}/explained_variance"] = explained_variance(pred, target)
        return out

    def _reached_target(self, metrics: Mapping[str, float]) -> bool:
        if self.target_return is None:
            return False
        values = [metrics[f"{g}/episode_return"] for g in self.losses]
        return all(not math.isnan(v) and v >= self.target_return for v in values)

    # ------------------------------------------------------------------ #
    def train(self) -> list[dict[str, Any]]:
        """Run until the frame budget is spent, the target is hit, or a stop is asked.

        SIGINT / SIGTERM finish the current iteration, write a checkpoint (if
        the trainer has a run directory) and return; :attr:`stopped_by` then
        names the signal. Returns the per-iteration metrics (also kept in
        :attr:`history`).
        """
        bar = None
        if self.progress_bar:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.total_frames, initial=self.frames, unit="frames",
                       dynamic_ncols=True, leave=True)
        previous = self._install_signal_handlers()
        start = time.perf_counter() - self.wall_time
        t_prev = time.perf_counter()
        try:
            for batch in self.collector:
                t_collected = time.perf_counter()
                frames = batch.numel()
                self.frames += frames
                self.iteration += 1
                self.compute_advantages(batch)
                metrics: dict[str, Any] = {"iteration": self.iteration, "frames": self.frames}
                metrics.update(self.batch_metrics(batch))
                reached = self._reached_target(metrics)
                if not reached:
                    metrics.update(self.apply_schedules())
                    metrics.update(self.update(batch))
                    self.collector.update_policy_weights_()
                now = time.perf_counter()
                metrics["collect_time"] = t_collected - t_prev
                metrics["train_time"] = now - t_collected
                metrics["fps"] = frames / (now - t_prev)
                metrics["wall_time"] = self.wall_time = now - start
                self.history.append(metrics)
                if self.metrics_sink is not None:
                    self.metrics_sink(metrics)
                if bar is not None:
                    bar.update(frames)
                    bar.set_postfix(self._postfix(metrics), refresh=False)
                last = reached or self.stopped_by is not None or self.frames >= (self.total_frames or 0)
                if self.run_dir is not None and (
                    last or (self.checkpoint_every and self.iteration % self.checkpoint_every == 0)
                ):
                    self.checkpoint()
                t_prev = time.perf_counter()
                if reached or self.stopped_by is not None:
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
            self.collector.shutdown()
        return self.history

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
        post = {f"{g}_return": f"{metrics[f'{g}/episode_return']:.3f}" for g in self.groups}
        post["fps"] = f"{metrics['fps']:.0f}"
        return post

    # ------------------------------------------------------------------ #
    # Checkpoints
    # ------------------------------------------------------------------ #
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly (see :mod:`torchrl_mappo.checkpoint`)."""
        from torchrl_mappo import checkpoint as ckpt

        carrier = getattr(self.collector, "_carrier", None)
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
            "nonfinite_streak": self._nonfinite_streak,
            "rng": ckpt.rng_state(),
            # Multi-process and Ray collectors keep the episodes in flight in
            # their workers, out of reach: None, and a resume restarts them.
            "carrier": carrier.clone() if carrier is not None else None,
            "simulator": ckpt.simulator_tensors(env) if env is not None else None,
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
        self._nonfinite_streak = state.get("nonfinite_streak", 0)
        carrier = state.get("carrier")
        if carrier is not None and getattr(self.collector, "_carrier", None) is not None:
            if carrier.batch_size != self.collector._carrier.batch_size:
                raise ConfigError(
                    f"checkpoint: it was collecting {tuple(carrier.batch_size)} envs, this config "
                    f"{tuple(self.collector._carrier.batch_size)} (env.num_envs changed)"
                )
            if state.get("simulator") is not None:
                ckpt.restore_simulator_tensors(self.collector.env, state["simulator"])
                self.collector._carrier = carrier
            # Without a simulator snapshot the env's episodes restart (fresh reset).
        # A checkpoint of a multi-process/Ray run (carrier None), or one resumed
        # with such a collector, restarts the episodes in flight the same way.
        self.collector.update_policy_weights_()
        ckpt.set_rng_state(state["rng"])

    def checkpoint(self) -> Path:
        """Write a checkpoint in the run directory (never with non-finite weights)."""
        from torchrl_mappo import checkpoint as ckpt

        return ckpt.write(self.state_dict(), Path(self.run_dir), self.keep_checkpoints)
