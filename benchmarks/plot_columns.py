"""Plot any metrics.csv columns of several runs against frames, one panel per column.

    python benchmarks/plot_columns.py RUN_DIR [RUN_DIR ...] --columns agents/entropy agents/episode_return \
        eval/agents/episode_return --out entropy.png [--labels a b ...] [--smooth 10]

Rows where a column is empty (no episode ended, no evaluation) are skipped; ``--smooth N``
averages the last N points of each curve (evaluations are never smoothed).
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from torchrl_mappo.summary import read_rows  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--columns", nargs="+", required=True)
    p.add_argument("--labels", nargs="+", default=None)
    p.add_argument("--smooth", type=int, default=1)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    if args.labels is not None and len(args.labels) != len(args.runs):
        p.error("--labels: give one per run")
    if args.out.suffix.lower() not in (".png", ".pdf", ".svg"):
        p.error("--out: give an image path (.png, .pdf or .svg)")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(args.columns), figsize=(4.2 * len(args.columns), 3.4), squeeze=False)
    for i, run in enumerate(args.runs):
        rows = read_rows(run)
        if not rows:
            p.error(f"{run}: no metrics.csv rows")
        label = args.labels[i] if args.labels else run.name
        for ax, col in zip(axes[0], args.columns):
            pts = [(r["frames"], r[col]) for r in rows if not math.isnan(r.get(col, math.nan))]
            k = 1 if col.startswith("eval/") else max(1, args.smooth)
            ys = [sum(v for _, v in pts[max(0, j - k + 1): j + 1]) / len(pts[max(0, j - k + 1): j + 1])
                  for j in range(len(pts))]
            ax.plot([f for f, _ in pts], ys, label=label, marker="o" if col.startswith("eval/") else None, ms=3)
            ax.set_title(col, fontsize=9)
            ax.set_xlabel("frames")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
