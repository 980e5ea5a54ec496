"""Learning curves of several models x seeds in one PNG, and a Markdown table of their final returns.

    python benchmarks/memory_curves.py --out examples/results/memory_navigation \
        GRU=/tmp/runs/gru-seeds-dir MLP=/tmp/runs/mlp-seeds-dir

Each ``LABEL=DIR`` is a ``torchrl-mappo train --seeds`` directory (one
``seed<k>/metrics.csv`` per seed) or a folder of run directories. The PNG
shows, per label, each seed's mean episode return against frames (thin) and
the mean over seeds (thick); the table gives each seed's final return (mean
of its last ``--last`` finite returns) and the mean +- std over seeds.
"""
from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def read_curve(metrics: Path) -> tuple[list[float], list[float]]:
    """(frames, return) of the rows with a finite return (the mean over groups)."""
    frames, returns = [], []
    with metrics.open() as f:
        for row in csv.DictReader(f):
            vals = [float(v) for k, v in row.items() if k.endswith("/episode_return") and k.count("/") == 1 and v]
            vals = [v for v in vals if not math.isnan(v)]
            if vals:
                frames.append(float(row["frames"]))
                returns.append(sum(vals) / len(vals))
    return frames, returns


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", metavar="LABEL=DIR")
    p.add_argument("--out", required=True, help="path without suffix: writes <out>.png and <out>.md")
    p.add_argument("--last", type=int, default=5, help="final return = mean of the last N finite returns")
    p.add_argument("--title", default="")
    args = p.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    table = []
    for i, spec in enumerate(args.runs):
        label, _, folder = spec.partition("=")
        files = sorted(Path(folder).glob("*/metrics.csv"))
        if not files:
            raise SystemExit(f"{folder}: no */metrics.csv")
        curves = [read_curve(f) for f in files]
        color = f"C{i}"
        finals = []
        for fr, ret in curves:
            ax.plot(fr, ret, color=color, alpha=0.3, linewidth=0.8)
            finals.append(statistics.mean(ret[-args.last:]))
        # The mean over seeds at the frames where every seed has a finite return.
        by_frames = [dict(zip(fr, ret)) for fr, ret in curves]
        common = sorted(set.intersection(*(set(d) for d in by_frames)))
        mean = [statistics.mean(d[x] for d in by_frames) for x in common]
        ax.plot(common, mean, color=color, linewidth=2.2, label=f"{label} (mean of {len(curves)} seeds)")
        table.append((label, [f.parent.name for f in files], finals, curves[0][0][-1]))
    ax.set_xlabel("frames")
    ax.set_ylabel("mean episode return")
    ax.set_title(args.title)
    ax.grid(alpha=0.3)
    ax.legend()
    out = Path(args.out)
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=120)
    lines = ["| model | final return per seed | mean ± std | frames |", "|---|---|---|---|"]
    for label, seeds, finals, frames in table:
        per_seed = ", ".join(f"{s}: {v:.3f}" for s, v in zip(seeds, finals))
        sd = statistics.stdev(finals) if len(finals) > 1 else 0.0
        lines.append(f"| {label} | {per_seed} | {statistics.mean(finals):.3f} ± {sd:.3f} | {frames:.0f} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"plot: {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
