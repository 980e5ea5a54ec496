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
"$VENV/bin/python" - <<'PY'
import benchmarl, torch, torchrl, vmas
print(f"benchmarl {benchmarl.__version__}  torchrl {torchrl.__version__}  torch {torch.__version__}  vmas {vmas.__version__}")
PY
echo "ready: benchmarks/$VENV/bin/python"
