"""Metrics: what a batch says (episode returns, survivors, critic quality) and where each
iteration's row goes (``metrics.csv`` in the run directory, TorchRL loggers)."""
from __future__ import annotations

import csv
import math
from collections import deque
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from tensordict import TensorDictBase

from torchrl_mappo import keys


def episode_returns(batch: TensorDictBase, group: str) -> torch.Tensor:
    """Returns of the episodes of ``group`` that ended in ``batch``: ``[episodes, n_agents]``.

    Reads ``("next", group, "episode_reward")`` where the env's root
    ``("next", "done")`` is set (every env we build has one).
    """
    ep = batch.get((keys.NEXT, *keys.episode_reward(group)))  # [*B, n_agents, 1]
    done = batch.get((keys.NEXT, keys.DONE))  # [*B, 1]
    return ep[done.squeeze(-1)].squeeze(-1)


def survivors(batch: TensorDictBase, groups: Sequence[str], *, turn_based: bool = False) -> dict[str, torch.Tensor]:
    """Agents of each masked group alive at the end of each finished episode.

    Alive at the end = alive when the last step began (``(group, "mask")``)
    and not terminated by it (an agent that is only truncated survived).
    When a battle ends because a team was wiped out, MAgent2 terminates every
    agent; for those episodes the agents alive when the last step began count.
    Groups without a mask are left out. In a ``turn_based`` (AEC) env the mask
    marks whose turn it is, not who is alive: no survivors (``{}``).
    """
    if turn_based:
        return {}
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


def win_rates(surv: torch.Tensor, rets: torch.Tensor) -> list[float]:
    """Each group's share of episodes won, from ``[groups, episodes]`` survivors and returns.

    A group wins an episode with more survivors than every other group, or
    as many as the best others and a higher return than each of those;
    otherwise nobody wins it.
    """
    out = []
    for i in range(surv.shape[0]):
        others = [j for j in range(surv.shape[0]) if j != i]
        best = surv[others].max(0).values
        rivals = torch.where(surv[others] == best, rets[others], -math.inf)  # only the tied groups
        tie = (surv[i] == best) & (rets[i] > rivals.max(0).values)
        out.append(float(((surv[i] > best) | tie).float().mean()))
    return out


def episode_win_rates(alive: Mapping[str, torch.Tensor], returns: Mapping[str, torch.Tensor],
                      *, turn_based: bool = False) -> dict[str, float]:
    """Each group's win rate over the same finished episodes; ``{}`` where the env names no winner.

    ``returns``: each group's ``[episodes]`` returns (mean over its agents).
    A battle (``alive``: :func:`survivors` of two masked groups or more): the
    groups in ``alive`` by :func:`win_rates`. A ``turn_based`` game of two
    groups or more (tic-tac-toe): the group with a higher return than every
    other wins, equal returns are a draw (nobody wins), as :func:`win_rates`
    with equal survivors.
    """
    if turn_based:
        order = list(returns)
        surv = torch.zeros(len(order), *returns[order[0]].shape) if order else None
    else:
        order = list(alive)
        surv = torch.stack([alive[g].float() for g in order]) if order else None
    if len(order) < 2 or surv is None or not surv.shape[-1]:
        return {}
    return dict(zip(order, win_rates(surv, torch.stack([returns[g].float() for g in order]))))


def explained_variance(pred: torch.Tensor, target: torch.Tensor) -> float:
    var = target.var(correction=0)
    if not var > 0:
        return float("nan")
    return float(1.0 - (target - pred).var(correction=0) / var)


class RecentReturns:
    """Each group's last ``n`` finished episode returns: what the progress bar and the final
    line show (a batch shorter than an episode often finishes none, so its own mean is NaN)."""

    def __init__(self, groups: Sequence[str], n: int = 100) -> None:
        self.groups = list(groups)
        self.values = {g: deque(maxlen=n) for g in self.groups}

    def extend(self, group: str, returns: Sequence[float]) -> None:
        self.values[group].extend(returns)

    def mean(self, group: str) -> str:
        recent = self.values[group]
        return f"{sum(recent) / len(recent):.3f}" if recent else "no episode finished yet"

    def summary(self) -> str:
        n = max((len(r) for r in self.values.values()), default=0)
        parts = ", ".join(f"{g}={self.mean(g)}" for g in self.groups)
        if not n:
            return "no episode finished yet"
        return f"mean return of the last {n} episodes: {parts}" if n > 1 else f"return of the last episode: {parts}"

    def state_dict(self) -> dict[str, list[float]]:
        return {g: list(r) for g, r in self.values.items()}

    def load_state_dict(self, state: Mapping[str, Sequence[float]]) -> None:
        for g, values in state.items():
            if g in self.values:
                self.values[g].extend(values)


def batch_metrics(
    batch: TensorDictBase,
    groups: Sequence[str],
    losses: Mapping[str, Any],
    *,
    per_agent: bool = False,
    agent_names: Mapping[str, Sequence[str]] | None = None,
    recent: RecentReturns | None = None,
    turn_based: bool = False,
) -> dict[str, float]:
    """One metrics row of a batch: episode returns (every group), survivors (masked groups),
    win rates (battles, ``turn_based`` games: :func:`episode_win_rates`), critic quality
    (groups in ``losses``, after GAE ran).

    ``per_agent`` adds ``<group>/<agent>/episode_return`` (names from
    ``agent_names``, else indices). ``recent`` gets each finished episode's
    return (mean over the group's agents).
    """
    out: dict[str, float] = {}
    alive = survivors(batch, groups, turn_based=turn_based)
    means = {g: episode_returns(batch, g).mean(-1) for g in groups}
    rates = episode_win_rates(alive, means, turn_based=turn_based)
    for group in groups:
        returns = episode_returns(batch, group)
        if recent is not None:
            recent.extend(group, returns.mean(-1).tolist())
        out[f"{group}/episode_return"] = float(returns.mean()) if returns.numel() else float("nan")
        out[f"{group}/episodes"] = returns.shape[0]
        if per_agent:
            names = (agent_names or {}).get(group) or list(range(returns.shape[-1]))
            for i, agent in enumerate(names):
                out[f"{group}/{agent}/episode_return"] = (
                    float(returns[:, i].mean()) if returns.numel() else float("nan"))
        if group in alive:
            n = alive[group]
            out[f"{group}/survivors"] = float(n.float().mean()) if n.numel() else float("nan")
        if group in rates:  # battles and turn-based games: its share of the batch's finished episodes won
            out[f"{group}/win_rate"] = rates[group]
        loss = losses.get(group)
        if loss is not None:
            pred, target = batch.get(loss.tensor_keys.value), batch.get(loss.tensor_keys.value_target)
            if isinstance(loss.loss_mask_key, tuple):
                alive_now = batch.get(loss.loss_mask_key)
                pred, target = pred[alive_now], target[alive_now]
            out[f"{group}/explained_variance"] = explained_variance(pred, target)
    return out


class CSVMetrics:
    """Append one row per iteration to a CSV file, flushed at once.

    The columns are fixed by the first row. A later row with new metrics (a
    run resumed with ``train.lr_schedule: linear`` reports ``<group>/lr``)
    rewrites the file with the new columns added, earlier rows empty there;
    every rewrite goes to a temporary file renamed into place, so a crash
    never leaves half a table.
    """

    def __init__(self, path: str | Path, resume_after: int | None = None) -> None:
        self.path = Path(path)
        self._columns: list[str] | None = None
        if resume_after is not None and self.path.is_file():
            # Continue a run: keep the header and the rows up to its checkpoint
            # (rows written after it, before a crash, are redone).
            header, rows = self._read()
            if header:
                self._columns = header
                self._rewrite(header, [r for r in rows if r and _iteration(r[0]) <= resume_after])

    def _read(self) -> tuple[list[str] | None, list[list[str]]]:
        with self.path.open(newline="") as f:
            reader = csv.reader(f)
            return next(reader, None), list(reader)

    def _rewrite(self, header: list[str], rows: list[list[str]]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows(rows)
        tmp.replace(self.path)

    def __call__(self, row: Mapping[str, Any]) -> None:
        if self._columns is None:
            self._columns = list(row)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._rewrite(self._columns, [])
        extra = [c for c in row if c not in self._columns]
        if extra:
            _, rows = self._read()
            self._columns = [*self._columns, *extra]
            self._rewrite(self._columns, [r + [""] * (len(self._columns) - len(r)) for r in rows])
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerow([_fmt(row.get(c)) for c in self._columns])


def _iteration(cell: str) -> float:
    try:
        return float(cell)
    except ValueError:
        return float("inf")  # a torn row (killed mid-write): after any checkpoint


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return "" if value is None else value


def _number(value: str | None) -> float:
    """A cell as a float: empty, missing (a row cut short by a kill) or unparsable cells are NaN."""
    try:
        return float(value) if value not in ("", None) else float("nan")
    except ValueError:
        return float("nan")


def read_metrics(path: str | Path) -> list[dict[str, float]]:
    """Rows of a ``metrics.csv`` as floats (empty or missing cells become NaN)."""
    with Path(path).open(newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or "iteration" not in reader.fieldnames:
            raise ValueError("no 'iteration' column in its header")
        return [{k: _number(row.get(k)) for k in reader.fieldnames} for row in reader]


class TorchRLLoggerSink:
    """Send each iteration's numeric metrics to a TorchRL logger (step = frames).

    ``backend``: ``csv`` (TorchRL's ``CSVLogger``, one file per metric),
    ``tensorboard``, ``wandb`` (offline by default: no network needed; sync
    later with ``wandb sync``) or ``mlflow`` (a local file store,
    ``<run_dir>/mlflow``). Files go under ``<run_dir>/<backend>``.
    """

    def __init__(self, backend: str, run_dir: str | Path, exp_name: str, options: Mapping[str, Any] | None = None):
        self.backend, self.run_dir, self.exp_name = backend, Path(run_dir), exp_name
        self.options = dict(options or {})
        self.logger = None  # made at the first row: nothing touches the disk before the run starts

    def open(self) -> None:
        """Start the logger now (the run directory exists); a failure is a config error."""
        if self.logger is not None:
            return
        from torchrl_mappo.config import ConfigError

        try:
            self.logger = self._make_logger()
        except ImportError as err:
            raise ConfigError(
                f"run.logger={self.backend}: needs the {err.name or self.backend} package; "
                "pip install 'torchrl_mappo[loggers]'"
            ) from None
        except Exception as err:
            raise ConfigError(f"run.logger={self.backend}: could not start ({type(err).__name__}: {err})") from None

    def _make_logger(self):
        from torchrl.record.loggers import get_logger

        run_dir = str(self.run_dir)
        if self.backend == "wandb":
            options = {"offline": True, "project": "torchrl_mappo", "log_env_packages": False, **self.options}
            return get_logger("wandb", logger_name=run_dir, experiment_name=self.exp_name, wandb_kwargs=options)
        if self.backend == "mlflow":
            import os

            from torchrl.record.loggers.mlflow import MLFlowLogger

            # A local file store; MLflow 3 asks for an explicit opt-in to it.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            return MLFlowLogger(self.exp_name, tracking_uri=(self.run_dir / "mlflow").absolute().as_uri(),
                                **self.options)
        # csv -> <run_dir>/csv/scalars/*.csv, tensorboard -> <run_dir>/tensorboard/events.*
        return get_logger(self.backend, logger_name=run_dir, experiment_name=self.backend, **self.options)

    def __call__(self, row: Mapping[str, Any]) -> None:
        self.open()
        step = int(row.get("frames", 0))
        for name, value in row.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and not (
                isinstance(value, float) and math.isnan(value)
            ):
                self.logger.log_scalar(name, float(value), step=step)

    def close(self) -> None:
        """Flush and close the logger (wandb writes its summary, mlflow ends its run)."""
        if self.logger is None:
            return
        if self.backend == "wandb":
            self.logger.experiment.finish()
        elif self.backend == "mlflow":
            import mlflow

            mlflow.end_run()
        elif self.backend == "tensorboard":
            self.logger.experiment.flush()


class MetricsSinks:
    """Call several sinks with each metrics row."""

    def __init__(self, *sinks):
        self.sinks = [s for s in sinks if s is not None]

    def __call__(self, row: Mapping[str, Any]) -> None:
        for sink in self.sinks:
            sink(row)

    def open(self) -> None:
        for sink in self.sinks:
            if hasattr(sink, "open"):
                sink.open()

    def close(self) -> None:
        for sink in self.sinks:
            if hasattr(sink, "close"):
                sink.close()
