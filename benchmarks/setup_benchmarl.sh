#!/usr/bin/env bash
# Create benchmarks/.venv-benchmarl: BenchMARL 1.5.2 in a virtual environment of
# its own (it pins torchrl<0.12; this package needs torchrl 0.14), for
# `benchmarks/run.py --vs benchmarl`.
# torch==2.13.0 (CPU) first: an unpinned torch pulls several GB of CUDA packages.
set -euo pipefail
cd "$(dirname "$0")"
VENV=.venv-benchmarl
PYTHON=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet torch==2.13.0
# torch pinned again: a dependency (torchvision) would otherwise upgrade it to
# the newest CUDA build.
"$VENV/bin/python" -m pip install --quiet torch==2.13.0 benchmarl==1.5.2 vmas==1.5.2
# BenchMARL's PettingZoo MPE tasks (run.py --task mpe/simple_spread --vs benchmarl) import
# pettingzoo.mpe, which PettingZoo 1.24.3 still ships (later versions moved it to mpe2).
"$VENV/bin/python" -m pip install --quiet torch==2.13.0 "pettingzoo[mpe]==1.24.3"
"$VENV/bin/python" - <<'PY'
import benchmarl, pettingzoo, torch, torchrl, vmas
from pettingzoo.mpe import simple_spread_v3
print(f"benchmarl {benchmarl.__version__}  torchrl {torchrl.__version__}  torch {torch.__version__}  vmas {vmas.__version__}"
      f"  pettingzoo {pettingzoo.__version__}")
PY
echo "ready: benchmarks/$VENV/bin/python"
