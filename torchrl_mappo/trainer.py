"""The thin trainer: it owns the loop, the optimizers, the counters and the metrics.

Everything else is TorchRL's: the collector gathers a batch with the groups'
actors, each group's ``MAPPOLoss`` computes its GAE advantages and its loss.
One iteration:

    collector batch -> per-group GAE -> num_epochs x shuffled minibatches
    -> per-group loss -> backward -> clip grad norm -> optimizer step
    -> collector.update_policy_weights_() -> metrics row
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictSequential
from torch import nn
from torchrl.collectors import Collector
from torchrl.objectives import LossModule

from torchrl_mappo import keys
from torchrl_mappo.config import Config, TrainConfig

LOSS_TERMS = ("loss_objective", "loss_critic", "loss_entropy")
DIAGNOSTICS = ("entropy", "kl_approx", "clip_fraction")


def episode_returns(batch: TensorDictBase, group: str, done_key) -> torch.Tensor:
    """Returns of the episodes of ``group`` that ended in ``batch``, one per agent.

    Reads ``("next", group, "episode_reward")`` where ``("next", done_key)``
    is set; a root done covers every agent of the group.
    """
    ep = batch.get((keys.NEXT, *keys.episode_reward(group)))  # [*B, n_agents, 1]
    done = batch.get((keys.NEXT, *((done_key,) if isinstance(done_key, str) else done_key)))
    if done.ndim < ep.ndim:  # team-level done: [*B, 1] -> [*B, 1, 1]
        done = done.unsqueeze(-2)
    return ep[done.expand_as(ep)]


def explained_variance(pred: torch.Tensor, target: torch.Tensor) -> float:
    var = target.var(correction=0)
    if var <= 0:
        return float("nan")
    return float(1.0 - (target - pred).var(correction=0) / var)


class Trainer:
    """MAPPO's training loop over any number of TorchRL groups.

    Args:
        collector: a TorchRL collector whose policy runs every group's actor.
        losses: ``{group: loss}``, each a ``MAPPOLoss``/``ClipPPOLoss`` with
            its value estimator set (see :func:`torchrl_mappo.make_loss`).
        num_epochs, minibatch_size, lr, max_grad_norm: PPO's update.
        total_frames: frames budget shown by the progress bar (the collector
            enforces it).
        target_return: stop once every group's mean episode return in an
            iteration reaches it (``None``: use the whole budget).
        optimizers: ``{group: optimizer}``; default Adam(lr) on each loss's
            parameters.
        metrics_sink: called with each iteration's metrics row (e.g. a CSV
            writer); ``None`` keeps them in :attr:`history` only.
        progress_bar: show a tqdm bar (frames, return, frames/s).
    """

    def __init__(
        self,
        *,
        collector: Collector,
        losses: Mapping[str, LossModule],
        num_epochs: int,
        minibatch_size: int,
        lr: float = 3e-4,
        max_grad_norm: float = 0.5,
        total_frames: int | None = None,
        target_return: float | None = None,
        optimizers: Mapping[str, torch.optim.Optimizer] | None = None,
        metrics_sink: Callable[[dict[str, Any]], None] | None = None,
        progress_bar: bool = True,
    ) -> None:
        self.collector = collector
        self.losses = dict(losses)
        self.num_epochs = num_epochs
        self.minibatch_size = minibatch_size
        self.max_grad_norm = max_grad_norm
        self.total_frames = total_frames
        self.target_return = target_return
        self.optimizers = (
            dict(optimizers)
            if optimizers is not None
            else {
                g: torch.optim.Adam(loss.parameters(), lr=lr, foreach=True)
                for g, loss in self.losses.items()
            }
        )
        self.metrics_sink = metrics_sink
        self.progress_bar = progress_bar
        self.history: list[dict[str, Any]] = []
        self.iteration = 0
        self.frames = 0
        self._batch_keys = {g: self._needed_keys(loss, g) for g, loss in self.losses.items()}

    # ------------------------------------------------------------------ #
    @classmethod
    def from_config(cls, cfg: Config, *, run_dir: str | Path | None = None) -> "Trainer":
        """Build env, actors, critics, losses and collector as ``cfg`` names them.

        With ``run_dir``, metrics go to ``run_dir/metrics.csv``.
        """
        from torchrl_mappo.envs import make_env
        from torchrl_mappo.loss import make_loss
        from torchrl_mappo.metrics import CSVMetrics
        from torchrl_mappo.modules import make_actor, make_critic

        t = cfg.train
        if t.num_threads is not None:
            torch.set_num_threads(t.num_threads)
        torch.manual_seed(t.seed)
        env = make_env(cfg.env, seed=t.seed, device=t.device)
        groups = list(env.group_map)
        actors = {g: make_actor(env, g, cfg.model) for g in groups}
        critics = {g: make_critic(env, g, cfg.model) for g in groups}
        losses = {g: make_loss(actors[g], critics[g], env, g, cfg.loss) for g in groups}
        collector = Collector(
            env,
            TensorDictSequential(*actors.values()),
            frames_per_batch=t.frames_per_batch,
            total_frames=t.total_frames,
            device=t.device,
            auto_register_policy_transforms=False,  # MLP policies need no InitTracker
        )
        sink = CSVMetrics(Path(run_dir) / "metrics.csv") if run_dir is not None else None
        return cls.from_train_config(
            t, collector=collector, losses=losses, metrics_sink=sink,
            progress_bar=cfg.run.progress_bar,
        )

    @classmethod
    def from_train_config(cls, t: TrainConfig, **components: Any) -> "Trainer":
        return cls(
            num_epochs=t.num_epochs,
            minibatch_size=t.minibatch_size,
            lr=t.lr,
            max_grad_norm=t.max_grad_norm,
            total_frames=t.total_frames,
            target_return=t.target_return,
            **components,
        )

    # ------------------------------------------------------------------ #
    @staticmethod
    def _needed_keys(loss: LossModule, group: str) -> list:
        """Keys a minibatch must carry for ``loss`` once GAE has run."""
        tk = loss.tensor_keys
        wanted = {k for k in loss.in_keys if not (isinstance(k, tuple) and k[0] == keys.NEXT)}
        wanted |= {tk.advantage, tk.value_target, tk.value}
        return list(wanted)

    def _done_key(self, group: str):
        return self.losses[group].tensor_keys.done

    def compute_advantages(self, batch: TensorDictBase) -> None:
        """Each group's GAE, written in place as ``(group, "advantage"/"value_target")``."""
        with torch.no_grad():
            for loss in self.losses.values():
                loss.value_estimator(
                    batch,
                    params=loss.critic_network_params,
                    target_params=loss.target_critic_network_params,
                )

    def update(self, batch: TensorDictBase) -> dict[str, float]:
        """PPO epochs over ``batch`` (advantages already in it); returns mean loss terms."""
        sums: dict[str, float] = {}
        count = 0
        flat = {g: batch.select(*ks, strict=False).reshape(-1) for g, ks in self._batch_keys.items()}
        n = next(iter(flat.values())).shape[0]
        for _ in range(self.num_epochs):
            perm = torch.randperm(n)
            for idx in perm.split(self.minibatch_size):
                count += 1
                for group, loss in self.losses.items():
                    out = loss(flat[group][idx])
                    total = sum(out[term] for term in LOSS_TERMS if term in out.keys())
                    opt = self.optimizers[group]
                    opt.zero_grad(set_to_none=True)
                    total.backward()
                    grad_norm = nn.utils.clip_grad_norm_(loss.parameters(), self.max_grad_norm)
                    opt.step()
                    for term in (*LOSS_TERMS, *DIAGNOSTICS):
                        if term in out.keys():
                            key = f"{group}/{term}"
                            sums[key] = sums.get(key, 0.0) + float(out[term].detach().mean())
                    key = f"{group}/grad_norm"
                    sums[key] = sums.get(key, 0.0) + float(grad_norm)
        return {k: v / max(count, 1) for k, v in sums.items()}

    def batch_metrics(self, batch: TensorDictBase) -> dict[str, float]:
        """Episode returns and critic quality of a freshly collected batch."""
        out: dict[str, float] = {}
        for group, loss in self.losses.items():
            returns = episode_returns(batch, group, self._done_key(group))
            out[f"{group}/episode_return"] = float(returns.mean()) if returns.numel() else float("nan")
            n_agents = batch.get(keys.state_value(group)).shape[-2]
            out[f"{group}/episodes"] = returns.numel() // n_agents
            out[f"{group}/explained_variance"] = explained_variance(
                batch.get(loss.tensor_keys.value), batch.get(loss.tensor_keys.value_target)
            )
        return out

    def _reached_target(self, metrics: Mapping[str, float]) -> bool:
        if self.target_return is None:
            return False
        values = [metrics[f"{g}/episode_return"] for g in self.losses]
        return all(not math.isnan(v) and v >= self.target_return for v in values)

    # ------------------------------------------------------------------ #
    def train(self) -> list[dict[str, Any]]:
        """Run until the collector's frame budget is spent (or the target is hit).

        Returns the per-iteration metrics (also kept in :attr:`history`).
        """
        bar = None
        if self.progress_bar:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.total_frames, unit="frames", dynamic_ncols=True, leave=True)
        start = time.perf_counter()
        t_prev = start
        try:
            for batch in self.collector:
                t_collected = time.perf_counter()
                frames = batch.numel()
                self.frames += frames
                self.iteration += 1
                self.compute_advantages(batch)
                metrics: dict[str, Any] = {
                    "iteration": self.iteration,
                    "frames": self.frames,
                }
                metrics.update(self.batch_metrics(batch))
                reached = self._reached_target(metrics)
                if not reached:
                    metrics.update(self.update(batch))
                    self.collector.update_policy_weights_()
                now = time.perf_counter()
                metrics["collect_time"] = t_collected - t_prev
                metrics["train_time"] = now - t_collected
                metrics["fps"] = frames / (now - t_prev)
                metrics["wall_time"] = now - start
                t_prev = now
                self.history.append(metrics)
                if self.metrics_sink is not None:
                    self.metrics_sink(metrics)
                if bar is not None:
                    bar.update(frames)
                    bar.set_postfix(self._postfix(metrics), refresh=False)
                if reached:
                    break
        finally:
            if bar is not None:
                bar.close()
            self.collector.shutdown()
        return self.history

    def _postfix(self, metrics: Mapping[str, Any]) -> dict[str, str]:
        post = {f"{g}_return": f"{metrics[f'{g}/episode_return']:.3f}" for g in self.losses}
        post["fps"] = f"{metrics['fps']:.0f}"
        return post

    def groups(self) -> Iterable[str]:
        return self.losses.keys()
