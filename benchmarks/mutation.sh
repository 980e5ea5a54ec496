#!/usr/bin/env bash
# Mutation testing of the loss, the networks, the reward-sharing transform and the
# trainer's update and schedules (issue 19). Not part of CI nor of the default
# test run: about 2 s a mutant on a free core, ~1100 mutants in all.
#
#   python -m venv --system-site-packages .venv-mut && .venv-mut/bin/pip install mutmut==3.8.1
#   bash benchmarks/mutation.sh            # then: .venv-mut/bin/mutmut results
#
# Files and tests are set in pyproject.toml's [tool.mutmut]; mutants/ is its
# working directory (git-ignored). trainer.py is only mutated in the functions below;
# the schedules (schedules.py) and the non-finite guard (guard.py) are mutated whole.
set -euo pipefail
cd "$(dirname "$0")/.."
MUTMUT="${MUTMUT:-.venv-mut/bin/mutmut}"
export OMP_NUM_THREADS=1
# SAMPLE=quarter: only the mutants numbered 4, 8, 12 ... of each function (a
# systematic quarter, the sample the README's scores were measured on on 2
# shared cores); SAMPLE=all (the default): every mutant.
case "${SAMPLE:-all}" in
    quarter) tails=('[48]' '*[02468][048]' '*[13579][26]') ;;  # n % 4 == 0, from its last two digits
    all) tails=('*') ;;
    *) echo "SAMPLE must be 'all' or 'quarter'" >&2; exit 2 ;;
esac
patterns=()
for f in 'torchrl_mappo.loss.*' 'torchrl_mappo.modules.*' 'torchrl_mappo.envs.transforms.*' \
         'torchrl_mappo.schedules.*' 'torchrl_mappo.guard.*' \
         'torchrl_mappo.trainer.*ǁupdate' 'torchrl_mappo.trainer.*ǁ_minibatch_step' \
         'torchrl_mappo.trainer.*ǁiterate'; do
    for tail in "${tails[@]}"; do
        patterns+=("${f}__mutmut_${tail}")
    done
done
nice -n 5 "$MUTMUT" run --max-children "${CHILDREN:-1}" "${patterns[@]}"
