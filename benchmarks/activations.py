"""tanh on CPU: torch's kernel vs ``torchrl_mappo.modules.nets.Tanh`` (2 * sigmoid(2x) - 1).

    python benchmarks/activations.py [--config configs/vmas_navigation.yaml] [--reps 5] [overrides ...]

1. Forward + backward of one activation tensor of the shapes MAPPO's networks
   produce (minibatch x agents x hidden), best of ``--reps`` x 20 calls each,
   for ``torch.tanh`` (``nn.Tanh``), the sigmoid form, and ReLU as a floor;
   then in bfloat16 (``train.autocast``'s dtype on CPU), with a dense
   gradient: ``torch.tanh``, ``Tanh`` (the sigmoid form, in bf16) and the
   same computed in float32 and rounded back.
2. A whole update (``Trainer.update``: every epoch and minibatch) of the
   config's trainer, built twice from the same seed, once with ``nn.Tanh`` and
   once with ``Tanh``, timed alternately on the same batch (best and median of
   ``--reps``), and the largest difference of their losses and gradients on
   one minibatch.

One torch thread (``train.num_threads`` is forced to 1 unless overridden).
Prints figures only; nothing is asserted here (tests/test_nets.py checks the
equality of losses and gradients).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def best_ms(fn, reps: int, calls: int = 20) -> float:
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - t0) / calls)
    return best * 1e3


def micro(reps: int) -> None:
    import torch

    from torchrl_mappo.modules.nets import Tanh, _SigmoidTanh

    fast = Tanh()
    print("forward + backward of one activation, ms (best of", reps, "x 20):")
    print(f"{'shape':>18} {'torch.tanh':>11} {'Tanh (ours)':>12} {'relu':>8} {'speed-up':>9}")
    def run(f, x0, g=None):
        def once():
            x = x0.detach().requires_grad_()
            if g is None:
                f(x).sum().backward()
            else:
                f(x).backward(g)
        return once

    for shape in [(1000, 3, 64), (1000, 3, 256), (400, 3, 64), (120, 3, 64)]:
        x0 = torch.randn(*shape)

        t_tanh = best_ms(run(torch.tanh, x0), reps)
        t_fast = best_ms(run(fast, x0), reps)
        t_relu = best_ms(run(torch.relu, x0), reps)
        print(f"{str(list(shape)):>18} {t_tanh:11.3f} {t_fast:12.3f} {t_relu:8.3f} {t_tanh / t_fast:8.1f}x")
    print("bfloat16, forward + backward, ms (best of", reps, "x 20):")
    print(f"{'shape':>18} {'torch.tanh':>11} {'Tanh (ours)':>12} {'via float32':>12}")
    for shape in [(1200, 256), (1000, 3, 256), (400, 256)]:
        x0 = torch.randn(*shape).to(torch.bfloat16)
        g = torch.randn(*shape).to(torch.bfloat16)  # a dense gradient, as from the next layer
        t_tanh = best_ms(run(torch.tanh, x0, g), reps)
        t_fast = best_ms(run(fast, x0, g), reps)
        t_f32 = best_ms(run(lambda x: _SigmoidTanh.apply(x.float()).to(x.dtype), x0, g), reps)
        print(f"{str(list(shape)):>18} {t_tanh:11.3f} {t_fast:12.3f} {t_f32:12.3f}")


def update_ab(config: str, overrides: list[str], reps: int) -> None:
    import torch
    from torch import nn

    from torchrl_mappo.config_io import load_config
    from torchrl_mappo.modules import nets
    from torchrl_mappo.trainer import Trainer

    cfg = load_config(config, ["train.num_threads=1", "run.progress_bar=false", *overrides])
    trainers, batches = {}, {}
    for name, cls in [("nn.Tanh", nn.Tanh), ("Tanh (ours)", nets.Tanh)]:
        saved = nets.ACTIVATIONS["tanh"]
        nets.ACTIVATIONS["tanh"] = cls  # this benchmark only: build the same trainer with either class
        try:
            trainer = Trainer.from_config(cfg)
        finally:
            nets.ACTIVATIONS["tanh"] = saved
        torch.set_num_threads(1)
        batch = next(iter(trainer.collector))
        trainer.compute_advantages(batch)
        trainers[name], batches[name] = trainer, batch

    # the same minibatch through both: loss and gradient differences
    (na, a), (nb, b) = trainers.items()
    ga, gb = next(iter(a.losses)), next(iter(b.losses))
    td = batches[na].select(*a._batch_keys[ga], strict=False).reshape(-1)[:1000]
    diffs = []
    grads = []
    for trainer, g in ((a, ga), (b, gb)):
        loss = trainer.losses[g]
        loss.zero_grad()
        out = loss(td.clone())
        total = sum(out[k] for k in ("loss_objective", "loss_critic", "loss_entropy") if k in out.keys())
        total.backward()
        diffs.append(float(total.detach()))
        grads.append([p.grad.clone() for p in loss.parameters() if p.grad is not None])
    gdiff = max(float((x - y).abs().max()) for x, y in zip(*grads))
    print(f"\nsame minibatch: loss {diffs[0]:.6f} vs {diffs[1]:.6f} (diff {abs(diffs[0] - diffs[1]):.2e}), "
          f"largest gradient difference {gdiff:.2e}")

    times = {name: [] for name in trainers}
    for _ in range(reps):  # alternate so that the machine's drift hits both alike
        for name, trainer in trainers.items():
            t0 = time.perf_counter()
            trainer.update(batches[name])
            times[name].append(time.perf_counter() - t0)
    print(f"\nwhole update of {config} ({cfg.train.num_epochs} epochs x "
          f"{cfg.train.frames_per_batch // cfg.train.minibatch_size} minibatches), s, {reps} alternating reps:")
    for name, ts in times.items():
        print(f"  {name:12} best {min(ts):.3f}  median {statistics.median(ts):.3f}")
    (n1, t1), (n2, t2) = times.items()
    print(f"  speed-up (median): {statistics.median(t1) / statistics.median(t2):.2f}x")
    for trainer in trainers.values():
        trainer.collector.shutdown()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(REPO / "configs" / "vmas_navigation.yaml"))
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("overrides", nargs="*")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    micro(args.reps)
    update_ab(args.config, args.overrides, args.reps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
