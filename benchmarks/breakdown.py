"""Where the time of one training iteration goes (torchrl_mappo, one process).

    python benchmarks/breakdown.py --config configs/vmas_navigation.yaml [--iterations 5] [section.field=value ...]

Builds the trainer from the config, runs one warm-up iteration, then times
``--iterations`` more, split into:

- collection: the whole ``Collector`` iteration (``frames_per_batch`` frames),
  and inside it: the simulator's steps alone, measured separately on the same
  shapes (VMAS: ``vmas.make_env`` stepped with the same number of envs, zero
  actions, so no episode ends early; other families: not measured), the
  resets of finished envs, clocked inside the collection (the env's
  ``reset``: the simulator's per-env resets and TorchRL's reset path; on
  tasks whose episodes end early, such as balance, a large share), the
  policy forward (the collector's policy, every group's actor, sampling one
  step's actions, no grad, measured separately), and what remains (TorchRL
  env wrapper, transforms, collector);
- GAE (``Trainer.compute_advantages``);
- the trainer's own ``update`` (all epochs and minibatches), split into loss
  forward, backward, gradient clipping, ``optimizer.step`` and the rest
  (:func:`phase_timers` clocks each call while the update runs).

It also prints ``torch.profiler``'s top operators of one update with
``--ops``. Figures are seconds per iteration and shares of the iteration.

``--simulator-only`` prints one JSON line with the bare simulator's speed
for the config (VMAS; median of 3 batches) and exits: ``benchmarks/run.py
--agents`` uses it as the floor of its scaling table.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def timed(fn, repeat: int = 1) -> float:
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat


def simulator_seconds(cfg, steps: int) -> float | None:
    """Seconds the bare simulator takes for ``steps`` steps of all envs (VMAS only)."""
    if cfg.env.family != "vmas":
        return None
    import torch
    import vmas

    env = vmas.make_env(cfg.env.scenario, num_envs=cfg.env.num_envs, device="cpu",
                        continuous_actions=cfg.env.continuous_actions, max_steps=cfg.env.max_steps,
                        seed=cfg.train.seed, **cfg.env.scenario_kwargs)
    env.reset()
    actions = [torch.zeros(cfg.env.num_envs, env.get_agent_action_size(a)) if cfg.env.continuous_actions
               else torch.zeros(cfg.env.num_envs, dtype=torch.long) for a in env.agents]
    t0 = time.perf_counter()
    for i in range(steps):
        _, _, dones, _ = env.step(actions)
        if dones.all():  # as TorchRL's VmasWrapper: one vectorized reset, else env by env
            env.reset()
        elif dones.any():
            for j in dones.nonzero().flatten().tolist():
                env.reset_at(j)
    return time.perf_counter() - t0


class _Clocked:
    """A ``LeanTerms`` whose calls go through ``timed``; everything else is the wrapped one's."""

    def __init__(self, inner, timed):
        self.inner, self.timed = inner, timed

    def __call__(self, data):
        return self.timed(data)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def _clock_resets(env) -> list[float]:
    """Clock the collector env's ``reset`` (the partial resets of finished envs inside a collection):
    returns a one-item list the seconds accumulate in; empty when the collector has no env here
    (worker processes)."""
    if env is None:
        return []
    seconds, reset = [0.0], env.reset

    def clocked(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return reset(*args, **kwargs)
        finally:
            seconds[0] += time.perf_counter() - t0
    env.reset = clocked
    return seconds


@contextmanager
def phase_timers(trainer):
    """Time the trainer's own update by phase: yields ``{phase: seconds}``, filled while inside.

    Wraps, for the duration only, each loss's ``forward`` (or, under
    ``train.lean``, the ``LeanTerms`` the trainer calls instead), each
    optimizer's ``step``, ``torch.Tensor.backward`` and
    the gradient clipping ``Trainer.update`` calls (:func:`torchrl_mappo.guard.clip_grad_norm`); what
    the update spends elsewhere (zero_grad, finiteness checks, metrics,
    minibatch indexing) is "other".
    """
    import torch

    import torchrl_mappo.trainer as trainer_module

    parts = dict(loss_forward=0.0, backward=0.0, grad_clip=0.0, optimizer_step=0.0)

    def clocked(fn, part):
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                parts[part] += time.perf_counter() - t0
        return wrapper

    optimizers = [opt for opts in trainer.optimizers.values() for opt in opts]
    backward, clip = torch.Tensor.backward, trainer_module.clip_grad_norm
    for loss in trainer.losses.values():
        loss.forward = clocked(loss.forward, "loss_forward")
    lean = dict(trainer._lean)
    for g, terms in lean.items():
        trainer._lean[g] = _Clocked(terms, clocked(terms, "loss_forward"))
    for opt in optimizers:
        opt.step = clocked(opt.step, "optimizer_step")
    torch.Tensor.backward = clocked(backward, "backward")
    trainer_module.clip_grad_norm = clocked(clip, "grad_clip")
    try:
        yield parts
    finally:
        torch.Tensor.backward, trainer_module.clip_grad_norm = backward, clip
        for loss in trainer.losses.values():
            del loss.forward
        trainer._lean.update(lean)
        for opt in optimizers:
            del opt.step


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True)
    p.add_argument("--iterations", type=int, default=5)
    p.add_argument("--ops", action="store_true", help="also print torch.profiler's top operators of one update")
    p.add_argument("--simulator-only", action="store_true",
                   help="print the bare simulator's frames/s and agent-steps/s as JSON and exit")
    p.add_argument("overrides", nargs="*")
    args = p.parse_args(argv)

    import torch

    from torchrl.envs.utils import ExplorationType, set_exploration_type

    from torchrl_mappo.config import load_config
    from torchrl_mappo.trainer import Trainer

    n_iter = args.iterations + 1
    cfg = load_config(args.config, [*args.overrides, "run.progress_bar=false"])
    if args.simulator_only:
        from torchrl_mappo.threads import apply_threads

        apply_threads(cfg)
        steps = cfg.train.frames_per_batch // cfg.env.num_envs
        seconds = [simulator_seconds(cfg, steps) for _ in range(3)]
        if seconds[0] is None:
            print(json.dumps({"frames_per_s": None, "agent_steps_per_s": None}))
            return 0
        n_agents = int(cfg.env.scenario_kwargs.get("n_agents", 0)) or None
        fps = steps * cfg.env.num_envs / statistics.median(seconds)
        print(json.dumps({"frames_per_s": fps, "agent_steps_per_s": fps * n_agents if n_agents else None}))
        return 0
    cfg.train.total_frames = cfg.train.frames_per_batch * n_iter
    trainer = Trainer.from_config(cfg)
    steps = cfg.train.frames_per_batch // max(cfg.env.num_envs, 1)
    rows = []
    it = iter(trainer.collector)
    resets = _clock_resets(getattr(trainer.collector, "env", None))
    for i in range(n_iter):
        if resets:
            resets[0] = 0.0
        t0 = time.perf_counter()
        batch = next(it)
        t_collect = time.perf_counter() - t0
        t_resets = resets[0] if resets else None
        t_gae = timed(lambda: trainer.compute_advantages(batch))
        obs = batch[..., 0].clone()  # one step of every env: the policy's input shape
        # What the collector runs (the sync collector's policy: LeanSamplers under train.lean), sampling.
        policy = getattr(trainer.collector, "policy", None)
        acting = [policy] if policy is not None else list(trainer.actors.values())
        with torch.no_grad(), set_exploration_type(ExplorationType.RANDOM):
            t_policy = steps * timed(lambda: [a(obs.clone(False)) for a in acting], repeat=10)
        with phase_timers(trainer) as parts:
            t0 = time.perf_counter()
            trainer.update(batch)
            t_update = time.perf_counter() - t0
        parts["other"] = t_update - sum(parts.values())
        t_sim = simulator_seconds(cfg, steps)
        if i:  # the first iteration warms up
            rows.append(dict(collect=t_collect, simulator=t_sim, resets=t_resets, policy=t_policy, gae=t_gae,
                             update=t_update, **parts))
        if args.ops and i == n_iter - 1:
            from torch.profiler import ProfilerActivity, profile

            with profile(activities=[ProfilerActivity.CPU]) as prof:
                trainer.update(batch)
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
    trainer.collector.shutdown()

    med = {k: statistics.median(r[k] for r in rows) for k in rows[0] if rows[0][k] is not None}
    total = med["collect"] + med["gae"] + med["update"]
    n_agents = sum(len(a) for a in trainer.agent_names.values())
    frames = cfg.train.frames_per_batch
    print(f"{args.config} {' '.join(args.overrides)}")
    print(f"{frames} frames/iteration ({cfg.env.num_envs} envs x {steps} steps), {n_agents} agents, "
          f"{cfg.train.num_epochs} epochs x {frames // cfg.train.minibatch_size} minibatches, "
          f"torch threads {torch.get_num_threads()}; median of {len(rows)} iterations")
    lines = [("iteration", total), ("collection", med["collect"])]
    if "simulator" in med:
        lines.append(("  simulator alone (VMAS step)", med["simulator"]))
    if "resets" in med:
        lines.append(("  env resets (simulator + TorchRL)", med["resets"]))
    lines.append(("  policy forward (all steps)", med["policy"]))
    rest = med["collect"] - med.get("simulator", 0.0) - med.get("resets", 0.0) - med["policy"]
    lines.append(("  TorchRL env/collector overhead" if "simulator" in med else "  env + TorchRL overhead", rest))
    lines += [("GAE", med["gae"]), ("update", med["update"])]
    lines += [(f"  {k.replace('_', ' ')}", med[k]) for k in ("loss_forward", "backward", "grad_clip", "optimizer_step", "other")]
    for name, sec in lines:
        print(f"{name:36s} {sec:9.4f} s  {100 * sec / total:5.1f}%")
    print(f"frames/s {frames / total:.0f}, agent-steps/s {frames * n_agents / total:.0f}; "
          f"collection frames/s {frames / med['collect']:.0f}"
          + (f", bare simulator frames/s {frames / med['simulator']:.0f}" if "simulator" in med else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
