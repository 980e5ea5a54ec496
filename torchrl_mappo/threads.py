"""How many torch threads a training process uses: ``train.num_threads: auto | N | null``.

``auto`` (the default) = min(the cores this process may use, a cap set by
the work of one minibatch). The cores it may use: its affinity mask
(``os.sched_getaffinity``: ``taskset``, cgroup cpusets), and no more than
``OMP_NUM_THREADS`` when that is set (the runner sets it to each run's share). Measured with ``benchmarks/threads.py``
(``examples/results/threads.md``): the networks MAPPO uses on CPU (64x64 and
256x256, minibatches of 400-1000 frames) run fastest on ONE thread next to
any other busy process: a second thread is a barrier every matmul waits on,
and one descheduled thread stalls them all (6-25x slower iterations than
one thread). Only 256x256 with minibatch 1000 once gained from two (1.7x);
it lost 2.5x in a second run with other work on the machine and 5.8x next
to a busy process. So ``auto``
gives one thread per ``WORK_PER_THREAD`` multiply-adds of the widest layer
over a minibatch, which is 1 for everything measured; wider networks or
larger minibatches get more (an extrapolation), never more than the cores. With ``collector.kind: multi_async``
the workers collect while the trainer updates, so they are taken off the
cores first. On a GPU the update runs on the device: one CPU thread.

``N`` sets exactly N threads; ``null`` leaves torch's default (every core,
or ``OMP_NUM_THREADS``). Inter-op threads are set to the same number (torch
allows that once per process, before any parallel work; later calls are
skipped).
"""
from __future__ import annotations

import os

from torchrl_mappo.config import Config

__all__ = ["WORK_PER_THREAD", "apply_threads", "auto_threads", "available_cores", "core_budget", "thread_env"]

# Twice the largest work measured to run fastest on one thread: 256x256
# layers over a 1000-frame minibatch. Beyond it the rule is an extrapolation.
WORK_PER_THREAD = 2 * 1000 * 256 * 256


def available_cores() -> int:
    """The cores this process may run on (its affinity mask, e.g. ``taskset`` or a cgroup cpuset)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def core_budget() -> int:
    """The cores this process may use: :func:`available_cores`, or fewer if ``OMP_NUM_THREADS`` says so
    (how the runner gives each of its runs a share)."""
    cores = available_cores()
    try:
        return max(1, min(cores, int(os.environ.get("OMP_NUM_THREADS", cores))))
    except ValueError:
        return cores


def auto_threads(cfg: Config, cores: int | None = None) -> int:
    """``train.num_threads: auto`` for ``cfg`` on ``cores`` cores (default: :func:`core_budget`)."""
    cores = core_budget() if cores is None else cores
    if cfg.collector.kind == "multi_async":
        cores -= cfg.collector.workers  # they collect while this process updates
    if cfg.train.device != "cpu":
        return 1
    widest = max(cfg.model.hidden_sizes)
    cap = 1 + (cfg.train.minibatch_size * widest * widest) // WORK_PER_THREAD
    return max(1, min(cores, cap))


def resolve_threads(cfg: Config) -> int | None:
    """The thread count ``cfg.train.num_threads`` asks for (``None``: torch's default)."""
    n = cfg.train.num_threads
    return auto_threads(cfg) if n == "auto" else n


def apply_threads(cfg: Config) -> int:
    """Set torch's intra-op and inter-op threads as ``cfg.train.num_threads`` says; return the intra-op count."""
    import torch

    n = resolve_threads(cfg)
    if n is None:
        return torch.get_num_threads()
    torch.set_num_threads(n)
    if torch.get_num_interop_threads() != n:
        try:
            torch.set_num_interop_threads(n)
        except RuntimeError:  # once per process, before parallel work: keep what is there
            pass
    return n


def thread_env(threads: int) -> dict[str, str]:
    """Environment variables that give a child process ``threads`` threads in every math library."""
    return {name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
