#!/usr/bin/env bash
# Mutation testing of the loss, the networks, the reward-sharing transform and the
# trainer's update and schedules (issue 19). Not part of CI nor of the default
# test run: it takes about an hour on 2 CPU cores.
#
#   python -m venv --system-site-packages .venv-mut && .venv-mut/bin/pip install mutmut==3.8.1
#   bash benchmarks/mutation.sh            # then: .venv-mut/bin/mutmut results
#
# Files and tests are set in pyproject.toml's [tool.mutmut]; mutants/ is its
# working directory (git-ignored). trainer.py is only mutated in the functions below.
set -euo pipefail
cd "$(dirname "$0")/.."
MUTMUT="${MUTMUT:-.venv-mut/bin/mutmut}"
export OMP_NUM_THREADS=1
# SAMPLE=even: only the even-numbered mutants of each function (about half),
# the sample that the README's scores were measured on.
case "${SAMPLE:-all}" in
    even) tail='[02468]' ;;
    all) tail='' ;;
    *) echo "SAMPLE must be 'all' or 'even'" >&2; exit 2 ;;
esac
patterns=()
for f in 'torchrl_mappo.loss.*' 'torchrl_mappo.modules.*' 'torchrl_mappo.envs.transforms.*' \
         'torchrl_mappo.trainer.*ǁupdate' 'torchrl_mappo.trainer.*ǁ_minibatch_step' \
         'torchrl_mappo.trainer.*ǁapply_schedules' 'torchrl_mappo.trainer.*ǁcompute_advantages' \
         'torchrl_mappo.trainer.*ǁ_log_std_params'; do
    patterns+=("${f}__mutmut_*${tail}")
done
nice -n 5 "$MUTMUT" run --max-children "${CHILDREN:-1}" "${patterns[@]}"
