"""``make_collector``: TorchRL's own collectors, chosen by ``cfg.collector.kind``.

- ``sync``: ``Collector`` stepping the trainer's env in the trainer's
  process. Batch ``[num_envs, T]`` with ``T = frames_per_batch / num_envs``.
- ``multi_sync``: ``MultiSyncCollector``; ``workers`` processes, each with
  ``num_envs / workers`` envs, collect ``frames_per_batch / workers`` frames
  at once and the slices are stacked: ``[workers, num_envs / workers, T]``
  (the same ``T`` as ``sync``). Every frame comes from the current weights.
- ``multi_async``: ``MultiAsyncCollector``; each batch is the first that any
  worker finishes, ``frames_per_batch`` frames from its ``num_envs /
  workers`` envs. Workers keep collecting while the trainer updates, so a
  batch may come from weights one update old (PPO's ratio is then taken
  against a slightly stale behaviour policy).
- ``ray``: ``RayCollector`` (synchronous, like ``multi_sync``) with one Ray
  actor per worker, on a private Ray instance bound to 127.0.0.1 or on the
  cluster at ``collector.ray_address``.

Batches keep the time dimension last, so GAE runs on them unchanged.
Worker processes build their env from a picklable factory
(:func:`worker_env`); with ``workers`` > 1, worker ``i`` seeds its env and
its torch RNG with ``train.seed + i``.
"""
from __future__ import annotations

import dataclasses
import functools
import signal
from typing import Any

import torch
from tensordict.nn import TensorDictModuleBase
from torchrl.collectors import BaseCollector, Collector, MultiAsyncCollector, MultiSyncCollector
from torchrl.envs import EnvBase

from torchrl_mappo.config import Config, ConfigError, EnvConfig
from torchrl_mappo.modules.recurrent import is_recurrent, recurrent_env_transforms

__all__ = ["make_collector", "worker_env"]

# Where ``collector.ray_address: null`` starts Ray: this machine only, no
# dashboard (a web server nobody asked for).
LOCAL_RAY = {"address": "local", "_node_ip_address": "127.0.0.1", "include_dashboard": False}


def worker_env(cfg_env: EnvConfig, seed: int, device: str) -> EnvBase:
    """Build one worker's env (``make_env``) and seed the worker's torch RNG.

    A spawned worker starts from torch's fixed default seed: without this,
    every worker would draw the same action noise.
    """
    from torchrl_mappo.envs import make_env

    torch.manual_seed(seed)
    return make_env(cfg_env, seed=seed, device=device)


def _ignore_sigint() -> None:
    """Run first in every worker process.

    Ctrl-C reaches the whole process group: the trainer, not its workers,
    decides when to stop (it finishes the iteration and writes a
    checkpoint, which needs the workers alive).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _env_factories(cfg: Config) -> list[functools.partial]:
    c, t = cfg.collector, cfg.train
    per_worker = dataclasses.replace(cfg.env, num_envs=cfg.env.num_envs // c.workers)
    return [functools.partial(worker_env, per_worker, t.seed + i, t.device) for i in range(c.workers)]


def ray_init_config(cfg: Config) -> dict[str, Any]:
    """``ray.init`` kwargs: a private local instance, or the cluster at ``ray_address``."""
    c = cfg.collector
    base = dict(LOCAL_RAY) if c.ray_address is None else {"address": c.ray_address}
    return {**base, **c.ray_init_config}


def make_collector(
    cfg: Config, env: EnvBase, policy: TensorDictModuleBase, *, total_frames: int | None = None
) -> BaseCollector:
    """The TorchRL collector ``cfg.collector`` names, running ``policy``.

    Args:
        cfg: the run's config (``collector``, ``env``, ``train``).
        env: the env built in this process; ``sync`` steps it, the other
            kinds only need it for its specs (the caller may close it) and
            build their own envs in their workers.
        policy: every group's actor in one module; it writes
            ``(group, "action")`` and ``(group, "action_log_prob")`` from
            ``(group, "observation")``. Multi-process and Ray workers get a
            copy; :meth:`update_policy_weights_` sends them new weights.
        total_frames: frames to collect (default ``cfg.train.total_frames``;
            less when resuming).

    Returns:
        A TorchRL collector yielding batches of ``frames_per_batch`` frames,
        time last (see the module docstring for each kind's batch shape).

    Raises:
        ConfigError: ``kind: ray`` without Ray installed.
    """
    c, t = cfg.collector, cfg.train
    total = t.total_frames if total_frames is None else total_frames
    # A recurrent policy's env (each worker's too) gets TorchRL's InitTracker and the nets'
    # hidden-state primers from the collector; feed-forward policies need none.
    common = dict(frames_per_batch=t.frames_per_batch, total_frames=total, device=t.device,
                  auto_register_policy_transforms=is_recurrent(policy))
    if c.kind == "sync":
        return Collector(recurrent_env_transforms(env, policy), policy, **common)
    if c.kind in ("multi_sync", "multi_async"):
        sync = c.kind == "multi_sync"
        threads = t.num_threads if isinstance(t.num_threads, int) else None
        if t.num_threads == "auto" or (threads is None and sync):
            # The trainer keeps the threads it has: ``auto`` already left the
            # cores to multi_async's workers, and multi_sync's idle while it
            # updates. (TorchRL's default for null, cores minus workers, suits
            # multi_async, where collection and update overlap.)
            threads = torch.get_num_threads()
        return (MultiSyncCollector if sync else MultiAsyncCollector)(
            _env_factories(cfg), policy, **common,
            **({"cat_results": "stack"} if sync else {}),
            num_threads=threads,
            num_sub_threads=1,  # one torch thread per worker: they share the machine
            init_fn=_ignore_sigint,
        )
    return _make_ray_collector(cfg, policy, common)


class RayWorkerCollector(Collector):
    """TorchRL's ``Collector`` with a one-line ``repr``.

    Ray prefixes every log line of an actor with the actor's ``repr``; the
    ``Collector``'s spans dozens of lines (env, policy, buffers).
    """

    def __repr__(self) -> str:
        return f"Collector(worker={getattr(self, 'worker_idx', None)})"


RAY_CONNECT_TIMEOUT_S = 10.0


def check_reachable(address: str, timeout: float = RAY_CONNECT_TIMEOUT_S) -> None:
    """A one-line error, within ``timeout`` seconds, if nothing listens at ``[ray://]HOST:PORT``.

    (Ray itself retries an unreachable head for minutes.)
    """
    import socket

    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"collector.ray_address={address!r}: give 'auto', HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as err:
        raise ConfigError(
            f"collector.ray_address={address!r}: no Ray head answers there within {timeout:.0f} s "
            f"({err.strerror or type(err).__name__}); start one with 'ray start --head' or use null "
            "for a private local instance"
        ) from None


def _make_ray_collector(cfg: Config, policy: TensorDictModuleBase, common: dict) -> BaseCollector:
    try:
        import ray  # noqa: F401
        from torchrl.collectors.distributed import RayCollector
    except ImportError:
        raise ConfigError(
            "collector.kind=ray needs Ray: pip install 'torchrl_mappo[ray]' (or pip install ray)"
        ) from None
    c = cfg.collector
    if c.ray_address not in (None, "auto"):
        check_reachable(c.ray_address)
    register = common.pop("auto_register_policy_transforms")  # each worker's own collector adds them
    try:
        collector = RayCollector(
            _env_factories(cfg), policy, **common,
            collector_class=RayWorkerCollector,
            collector_kwargs={"auto_register_policy_transforms": register},
            num_collectors=c.workers,
            sync=True,  # PPO is on-policy: every frame of a batch from the current weights
            ray_init_config=ray_init_config(cfg),
            remote_configs=dict(c.remote_configs),
        )
    except ConnectionError as err:  # ``auto`` with no cluster running, a head that went away
        raise ConfigError(f"collector.ray_address={c.ray_address!r}: {str(err).splitlines()[0]}") from None
    # The workers got the policy with its initial weights; this first update
    # sets up TorchRL's weight sync before collection starts.
    collector.update_policy_weights_()
    return collector
