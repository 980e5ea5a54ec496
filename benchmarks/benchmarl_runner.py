"""Train BenchMARL 1.5.2's MAPPO once and write its learning curve with wall-clock stamps.

Runs under BenchMARL's own virtualenv (``benchmarks/setup_benchmarl.sh``;
BenchMARL pins torchrl<0.12), started by ``benchmarks/run.py --vs benchmarl``:

    benchmarks/.venv-benchmarl/bin/python benchmarks/benchmarl_runner.py \
        --task navigation --seed 0 --frames 120000 --out DIR [--n-agents 6] [--model gru]

BenchMARL's default experiment, MAPPO and model configs (``--model`` and
``--critic-model``: ``mlp``, its ``layers/mlp.yaml``, or ``gru``, its
``layers/gru.yaml``: a GRU of 128 followed by an MLP [256, 256]), and its task
config (VMAS, or PettingZoo's MPE as ``--task pettingzoo/simple_spread``), are
used unchanged, except what a benchmark on a headless machine needs: no
loggers (its default includes wandb), no rendering of the evaluation episodes,
no checkpoints, and ``--frames`` as ``max_n_frames``.
Its periodic evaluation (at the first iteration and every
``evaluation_interval`` frames) still runs: it is part of its default loop.

Writes ``DIR/curve.csv`` with the columns of ``ours_runner.py``
(``iteration, frames, unix_time, episode_return, collect_s, train_s,
eval_s``), one row per iteration, stamped when its training ends, and
``DIR/meta.json``.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

FIELDS = ["iteration", "frames", "unix_time", "episode_return", "collect_s", "train_s", "eval_s", "eval_return"]

try:
    from benchmarl.experiment import Callback
except ImportError:  # imported outside BenchMARL's virtualenv (e.g. to read this file's docs)
    Callback = object


class Recorder(Callback):
    """Per iteration: the collected batch's mean return, and when collection, training, evaluation ended.

    A module-level class holding no open file: BenchMARL pickles its callbacks.
    """

    def __init__(self, path: Path):
        super().__init__()
        self.path = path
        self.rows: list[dict] = []
        self.t_mark = time.time()  # end of the previous iteration's training (or evaluation)
        self.t_collected = self.t_trained = None
        self.groups_left = 0
        with path.open("w", newline="") as f:
            csv.DictWriter(f, FIELDS).writeheader()

    def _write(self, row: dict) -> None:
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, FIELDS).writerow(row)

    def on_batch_collected(self, batch):
        exp = self.experiment
        self.t_collected = time.time()
        if self.rows:  # the previous iteration is complete, its evaluation included
            self._write(self.rows[-1])
        self.groups_left = len(exp.train_group_map)
        self.rows.append({"iteration": exp.n_iters_performed + 1, "frames": exp.total_frames,
                          "episode_return": exp.mean_return, "collect_s": self.t_collected - self.t_mark,
                          "eval_s": 0.0})

    def on_train_end(self, training_td, group):
        self.groups_left -= 1
        if self.groups_left:
            return
        self.t_trained = self.t_mark = time.time()
        row = self.rows[-1]
        row["unix_time"] = self.t_trained
        row["train_s"] = self.t_trained - self.t_collected

    def on_evaluation_end(self, rollouts):
        # Evaluation runs after the iteration's training: keep it out of the
        # next iteration's collection time and report it on its own.
        now = time.time()
        if self.rows and self.t_trained is not None:
            self.rows[-1]["eval_s"] = now - self.t_trained
        if self.rows:
            self.rows[-1]["eval_return"] = episode_return(rollouts, self.experiment.group_map)
        self.t_mark = now

    def close(self) -> None:
        if self.rows:
            self._write(self.rows[-1])


def episode_return(rollouts, group_map) -> float:
    """Mean over the evaluation episodes and the groups of the agents' mean return, as BenchMARL's
    own logger computes it: each rollout (one env's) is cut after its first done."""
    cut = []
    for r in rollouts:
        done = r.get(("next", "done")).reshape(r.shape[0], -1).any(-1).nonzero()
        cut.append(r[: int(done[0]) + 1] if done.numel() else r)
    per_group = []
    for group in group_map:
        returns = [float(r.get(("next", group, "reward")).sum(0).mean()) for r in cut]
        per_group.append(sum(returns) / len(returns))
    return sum(per_group) / len(per_group)


MODELS = {"mlp": "MlpConfig", "gru": "GruConfig"}  # BenchMARL model config classes (benchmarl.models)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True,
                        help="BenchMARL task: a VMAS task (navigation, balance ...) or FAMILY/TASK "
                             "(pettingzoo/simple_spread; pettingzoo needs pettingzoo[mpe] 1.24.3 in the venv)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--frames", type=int, required=True)
    parser.add_argument("--n-agents", type=int, default=None, help="override the task's n_agents")
    parser.add_argument("--kwarg", action="append", default=[], metavar="KEY=VALUE",
                        help="override one of the task's scenario kwargs (repeatable; YAML value)")
    parser.add_argument("--model", choices=sorted(MODELS), default="mlp",
                        help="the policy's model: BenchMARL's layers/<model>.yaml (default mlp)")
    parser.add_argument("--critic-model", choices=sorted(MODELS), default="mlp",
                        help="the critic's model: BenchMARL's layers/<model>.yaml (default mlp)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    import benchmarl
    import benchmarl.models
    import torchrl
    import yaml
    from benchmarl.algorithms import MappoConfig
    from benchmarl.environments import PettingZooTask, VmasTask
    from benchmarl.experiment import Experiment, ExperimentConfig

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)

    config = ExperimentConfig.get_from_yaml()
    config.max_n_frames = args.frames
    config.loggers = []
    config.render = False
    config.checkpoint_interval = 0
    config.checkpoint_at_end = False
    config.save_folder = str(out)

    family, _, name = args.task.rpartition("/")
    family = family or "vmas"
    families = {"vmas": VmasTask, "pettingzoo": PettingZooTask}
    if family not in families or name.upper() not in families[family].__members__:
        parser.error(f"--task {args.task}: not a BenchMARL task of {sorted(families)}")
    task = families[family][name.upper()].get_from_yaml()
    if args.n_agents is not None:
        task.config["n_agents"] = args.n_agents
    for item in args.kwarg:
        key, _, value = item.partition("=")
        task.config[key] = yaml.safe_load(value)

    recorder = Recorder(out / "curve.csv")
    t_build = time.time()
    experiment = Experiment(
        task=task,
        algorithm_config=MappoConfig.get_from_yaml(),
        model_config=getattr(benchmarl.models, MODELS[args.model]).get_from_yaml(),
        critic_model_config=getattr(benchmarl.models, MODELS[args.critic_model]).get_from_yaml(),
        seed=args.seed,
        config=config,
        callbacks=[recorder],
    )
    t_start = recorder.t_mark = time.time()
    experiment.run()
    t_end = time.time()
    recorder.close()
    rows = recorder.rows
    n_agents = sum(len(agents) for agents in experiment.group_map.values())
    meta = {
        "system": "benchmarl", "benchmarl": benchmarl.__version__, "torchrl": torchrl.__version__,
        "task": f"{family}/{name}", "n_agents": n_agents, "model": args.model, "critic_model": args.critic_model,
        "unix_time_build": t_build,
        "unix_time_train_start": t_start, "unix_time_end": t_end,
        "eval_s_total": sum(r["eval_s"] for r in rows),
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
