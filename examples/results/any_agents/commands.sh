#!/usr/bin/env bash
# The runs behind examples/results/any_agents/ (issue 15). Shared 2-core machine: one run at a time,
# one thread each. Run from the repository root (of a snapshot: `git archive HEAD | tar -x -C DIR`, so that
# editing the checkout cannot change the code of runs in progress); run directories go to $OUT
# (default /tmp/issue15-runs).
set -uo pipefail  # a sweep with a failed seed must not stop the next ones
OUT=${OUT:-/tmp/issue15-runs}
COMMON=(run.dir=$OUT train.num_threads=1 run.progress_bar=false env.num_envs=60 train.frames_per_batch=3000)
side() { python -c "import math; print(f'{max(1.0, math.sqrt($1 / 4)):.3f}')"; }  # benchmarks/run.py's spawn scaling
nav() {  # nav N: the navigation scenario with N agents, the spawn area scaled as in the harness
  local s; s=$(side "$1")
  echo env.scenario_kwargs.n_agents=$1 env.scenario_kwargs.world_spawning_x=$s env.scenario_kwargs.world_spawning_y=$s
}

case "${1:-all}" in
target1|all)  # attention vs concatenated-observation critic, 12 agents, equal frames, 3 seeds
  nice -n 5 python -m torchrl_mappo sweep configs/vmas_navigation.yaml "${COMMON[@]}" train.total_frames=90000 \
    $(nav 12) --grid model.critic=mlp,attention --seeds 0 1 2 --jobs 1 --out $OUT/nav12 ;;&
target2|all)  # transfer: train at 2, 4, 8, 16 agents; evaluate the 4-agent policies at every size
  for n in 2 4 8 16; do
    nice -n 5 python -m torchrl_mappo sweep configs/vmas_navigation.yaml "${COMMON[@]}" train.total_frames=60000 \
      $(nav $n) --grid model.critic=mlp --seeds 0 1 2 --jobs 1 --out $OUT/transfer-train$n
  done ;;&
target3|all)  # curriculum 2 -> 4 -> 8 agents (15k, 15k, 30k frames) vs 8 agents from scratch, 60k frames, attention critic
  s8=$(side 8)
  W1="env.scenario_kwargs.world_spawning_x: 1.0, env.scenario_kwargs.world_spawning_y: 1.0"
  CUR="train.curriculum=[{overrides: {env.scenario_kwargs.n_agents: 2, $W1}, until: {frames: 15000}},
    {overrides: {env.scenario_kwargs.n_agents: 4, $W1}, until: {frames: 15000}},
    {overrides: {env.scenario_kwargs.n_agents: 8, env.scenario_kwargs.world_spawning_x: $s8, env.scenario_kwargs.world_spawning_y: $s8}}]"
  nice -n 5 python -m torchrl_mappo sweep configs/vmas_navigation.yaml "${COMMON[@]}" train.total_frames=60000 \
    $(nav 8) "$CUR" --grid model.critic=attention --seeds 0 1 2 --jobs 1 --out $OUT/curriculum
  nice -n 5 python -m torchrl_mappo sweep configs/vmas_navigation.yaml "${COMMON[@]}" train.total_frames=60000 \
    $(nav 8) --grid model.critic=attention --seeds 0 1 2 --jobs 1 --out $OUT/scratch8 ;;&
rerun)  # the seeds that failed at import while the checkout was mid-merge (the code they ran had conflict
  # markers); the analysis takes the seeds of <dir> and <dir>-rerun together
  nice -n 5 python -m torchrl_mappo sweep configs/vmas_navigation.yaml "${COMMON[@]}" train.total_frames=60000 \
    $(nav 8) --grid model.critic=mlp --seeds 1 2 --jobs 1 --out $OUT/transfer-train8-rerun
  "$0" target3-rerun
  "$0" target2-16 ;;
target3-rerun)
  s8=$(side 8)
  W1="env.scenario_kwargs.world_spawning_x: 1.0, env.scenario_kwargs.world_spawning_y: 1.0"
  CUR="train.curriculum=[{overrides: {env.scenario_kwargs.n_agents: 2, $W1}, until: {frames: 15000}},
    {overrides: {env.scenario_kwargs.n_agents: 4, $W1}, until: {frames: 15000}},
    {overrides: {env.scenario_kwargs.n_agents: 8, env.scenario_kwargs.world_spawning_x: $s8, env.scenario_kwargs.world_spawning_y: $s8}}]"
  nice -n 5 python -m torchrl_mappo sweep configs/vmas_navigation.yaml "${COMMON[@]}" train.total_frames=60000 \
    $(nav 8) "$CUR" --grid model.critic=attention --seeds 0 1 --jobs 1 --out $OUT/curriculum-rerun
  nice -n 5 python -m torchrl_mappo sweep configs/vmas_navigation.yaml "${COMMON[@]}" train.total_frames=60000 \
    $(nav 8) --grid model.critic=attention --seeds 0 1 2 --jobs 1 --out $OUT/scratch8 ;;
target2-16)
  nice -n 5 python -m torchrl_mappo sweep configs/vmas_navigation.yaml "${COMMON[@]}" train.total_frames=60000 \
    $(nav 16) --grid model.critic=mlp --seeds 0 1 2 --jobs 1 --out $OUT/transfer-train16 ;;
target4|all)  # communicating actors on vs off, hidden-goal navigation (3 agents, only agent 0 sees the goal), 3 seeds
  nice -n 10 python -m torchrl_mappo sweep configs/vmas_navigation_comm.yaml run.dir=$OUT train.num_threads=1 \
    run.progress_bar=false train.total_frames=201000 --grid model.communication=none,attention --seeds 0 1 2 \
    --jobs 1 --out $OUT/comm ;;&
target1-discovery|all)  # attention vs MLP critic on discovery (BenchMARL's task settings, 5 agents), configs/vmas.yaml, 60k frames
  for seed in 0 1 2; do
    nice -n 10 python -m torchrl_mappo sweep configs/vmas.yaml run.dir=$OUT train.num_threads=1 run.progress_bar=false \
      env.scenario=discovery "env.scenario_kwargs={n_agents: 5, n_targets: 7, lidar_range: 0.35, covering_range: 0.25, agents_per_target: 2, targets_respawn: true, shared_reward: true}" \
      train.total_frames=60000 --grid model.critic=mlp,attention --seeds $seed --jobs 1 --out $OUT/discovery-s$seed
  done ;;&
target1-nav24|all)  # attention vs MLP critic, navigation with 24 agents, 60k frames; one sweep per seed (both critics side by side)
  for seed in ${SEEDS:-0 1 2}; do
    nice -n 10 python -m torchrl_mappo sweep configs/vmas_navigation.yaml "${COMMON[@]}" train.total_frames=60000 \
      $(nav 24) --grid model.critic=mlp,attention --seeds $seed --jobs 1 --out $OUT/nav24-s$seed
  done ;;&
analyse|all)  # evaluations, tables and PNGs into examples/results/any_agents/
  nice -n 5 python benchmarks/any_agents.py --runs $OUT --out examples/results/any_agents ;;
esac
