"""The benchmark harness runs end to end on our package with a tiny budget.

Speed is measured by the harness, never asserted here; BenchMARL is not needed.
"""
import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, load_benchmark

TINY = ["env.num_envs=4", "env.max_steps=20", "train.frames_per_batch=80", "train.minibatch_size=40",
        "train.num_epochs=1", "model.hidden_sizes=[16,16]"]


def harness(tmp_path, *args: str) -> tuple[subprocess.CompletedProcess, Path]:
    """Run benchmarks/run.py on navigation with a tiny budget; it must succeed."""
    out = tmp_path / "bench"
    proc = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--task", "vmas/navigation", "--seeds", "1", *args,
         "--out", str(out), "--set", *TINY],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc, out


@pytest.mark.slow
def test_harness_prints_and_writes_the_table(tmp_path):
    proc, out = harness(tmp_path, "--frames", "160", "--target", "-100")
    header = "| system | variant | seed | wall s | s to first frame | frames | frames/s |"
    assert header in proc.stdout
    assert "| torchrl_mappo | default | median of 1 (1/1 reached) |" in proc.stdout
    assert (out / "results.md").read_text().count(header) == 2  # medians and every run
    assert (out / "results.png").stat().st_size > 0
    with (out / "runs.csv").open() as f:
        (run,) = list(csv.DictReader(f))
    assert run["exit_code"] == "0" and int(run["frames"]) == 160
    assert float(run["peak RSS MiB"]) > 50  # a real process with torch in it
    assert float(run["t→target s"]) <= float(run["wall s"])
    assert 0 < float(run["s to first frame"]) < float(run["wall s"])  # start-up: imports, env, networks
    process = json.loads((out / "runs" / "ours-default-seed0" / "process.json").read_text())
    assert process["exit_code"] == 0 and process["wall_s"] == pytest.approx(float(run["wall s"]))
    # --rescore: the same run scored against another target, nothing trained again.
    again = subprocess.run([sys.executable, "benchmarks/run.py", "--task", "vmas/navigation", "--rescore",
                            "--out", str(out), "--target", "1e9"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "| torchrl_mappo | default | median of 1 (0/1 reached) |" in again.stdout
    with (out / "runs.csv").open() as f:
        (rescored,) = list(csv.DictReader(f))
    assert rescored["t→target s"] == "inf" and rescored["wall s"] == run["wall s"]


def test_harness_rejects_benchmarl_without_its_virtualenv(tmp_path):
    proc = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--vs", "benchmarl", "--benchmarl-python", str(tmp_path / "nope"),
         "--out", str(tmp_path / "bench")],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert "run: bash benchmarks/setup_benchmarl.sh" in proc.stderr


def load_harness():
    return load_benchmark("run", "bench_run")


def test_benchmarl_model_and_threads_reach_both_commands(tmp_path):
    run = load_harness()
    args = run.parse_args(["--vs", "benchmarl", "--benchmarl-python", sys.executable, "--benchmarl-model", "gru",
                           "--threads", "1", "--set", "model.recurrent=gru", "--frames", "6000"])
    (variant,) = run.variants_of(args)
    theirs = run.task_benchmarl(args, variant, 0, tmp_path).cmd
    assert theirs[theirs.index("--model") + 1] == "gru"
    assert theirs[theirs.index("--critic-model") + 1] == "mlp"  # BenchMARL's default critic unless asked
    ours = run.task_ours(args, variant, 0, tmp_path).cmd
    assert ours.index("train.num_threads=1") < ours.index("model.recurrent=gru")  # --set still comes last
    default = run.parse_args(["--frames", "6000"])
    assert default.threads is None and default.benchmarl_model == "mlp"
    assert "train.num_threads=1" not in run.task_ours(default, run.variants_of(default)[0], 0, tmp_path).cmd


def test_mpe_against_benchmarl_runs_ours_on_benchmarls_env(tmp_path):
    run = load_harness()
    args = run.parse_args(["--task", "mpe/simple_spread", "--vs", "benchmarl", "--benchmarl-python", sys.executable,
                           "--set", "env.max_steps=50", "--frames", "6000"])
    (variant,) = run.variants_of(args)
    theirs = run.task_benchmarl(args, variant, 0, tmp_path).cmd
    assert theirs[theirs.index("--task") + 1] == "pettingzoo/simple_spread"
    ours = run.task_ours(args, variant, 0, tmp_path).cmd
    assert "env.continuous_actions=true" in ours  # BenchMARL's MPE: 100 steps, continuous actions
    assert ours.index("env.max_steps=100") < ours.index("env.max_steps=50")  # and --set still wins
    alone = run.parse_args(["--task", "mpe/simple_spread", "--frames", "6000"])  # without BenchMARL: our config
    assert "env.max_steps=100" not in run.task_ours(alone, run.variants_of(alone)[0], 0, tmp_path).cmd


def test_harness_rejects_zero_threads(tmp_path):
    proc = subprocess.run([sys.executable, "benchmarks/run.py", "--threads", "0", "--out", str(tmp_path / "b")],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--threads must be positive" in proc.stderr


@pytest.mark.slow
def test_scaling_grows_the_world_and_reports_the_simulator(tmp_path):
    _, out = harness(tmp_path, "--frames", "80", "--agents", "3", "9", "--scenario", "collisions=false")
    meta = json.loads((out / "runs" / "ours-9agents-seed0" / "meta.json").read_text())
    kwargs = meta["config"]["env"]["scenario_kwargs"]
    assert kwargs["n_agents"] == 9 and kwargs["collisions"] is False
    assert kwargs["world_spawning_x"] == kwargs["world_spawning_y"] == 1.5  # sqrt(9 / 4)
    assert meta["n_agents"] == 9
    small = json.loads((out / "runs" / "ours-3agents-seed0" / "meta.json").read_text())
    assert "world_spawning_x" not in small["config"]["env"]["scenario_kwargs"]  # default area up to 4 agents
    report = (out / "results.md").read_text()
    assert "- bare simulator (no learning, zero actions): agent-steps/s 3 agents " in report
    assert "time per agent-step beyond the bare simulator's" in report


@pytest.mark.slow
def test_breakdown_splits_an_iteration(tmp_path):
    proc = subprocess.run(
        [sys.executable, "benchmarks/breakdown.py", "--config", "configs/vmas_navigation.yaml",
         "--iterations", "1", *TINY, "train.num_epochs=3"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    parts = {}
    for line in proc.stdout.splitlines():
        if line.rstrip().endswith("%"):
            name, sec = line[:36].strip(), float(line[36:].split()[0])
            parts[name] = sec
    for name in ("iteration", "collection", "simulator alone (VMAS step)", "env resets (simulator + TorchRL)",
                 "policy forward (all steps)", "GAE", "update", "loss forward", "backward", "grad clip",
                 "optimizer step"):
        assert parts[name] > 0, (name, proc.stdout)  # 20-step episodes: every iteration ends resetting the envs
    assert parts["env resets (simulator + TorchRL)"] < parts["collection"]
    assert parts["update"] >= parts["loss forward"] + parts["backward"]
    assert abs(parts["iteration"] - (parts["collection"] + parts["GAE"] + parts["update"])) < 1e-2


@pytest.mark.slow
def test_both_modes_in_one_invocation(tmp_path):
    proc, out = harness(tmp_path, "--frames", "80", "--mode", "default", "matched", "--target", "-100")
    train = {mode: json.loads((out / "runs" / f"ours-{mode}-seed0" / "meta.json").read_text())["config"]["train"]
             for mode in ("default", "matched")}
    lr = {mode: t["lr"] for mode, t in train.items()}
    assert train["matched"]["lr_schedule"] == "constant"  # BenchMARL's lr is constant, whatever the YAML's
    from torchrl_mappo import load_config

    yaml_lr = load_config(REPO / "configs/vmas_navigation.yaml").train.lr
    assert yaml_lr != 5e-5
    assert lr == {"default": yaml_lr, "matched": 5e-5}  # the YAML's vs BenchMARL's (--set comes last)
    assert "| torchrl_mappo | matched | median of 1 (1/1 reached) |" in proc.stdout
    assert "ours with BenchMARL's MAPPO hyperparameters" in proc.stdout


@pytest.mark.slow
def test_jobs_run_side_by_side_with_their_share_of_threads(tmp_path):
    proc, out = harness(tmp_path, "--frames", "80", "--seeds", "2", "--jobs", "2")
    first, second = (json.loads((out / "runs" / f"ours-default-seed{s}" / "process.json").read_text())
                     for s in (0, 1))
    assert first["jobs"] == second["jobs"] == 2
    assert second["unix_time_start"] < first["unix_time_start"] + first["wall_s"]  # both ran at once
    assert "| torchrl_mappo | default | median of 2 (" in proc.stdout


@pytest.mark.slow
def test_suite_runs_a_task_reports_its_evaluations_and_does_not_redo_it(tmp_path):
    cmd = [sys.executable, "benchmarks/suite.py", "--tasks", "navigation", "--frames", "8000", "--seeds", "0",
           "--eval-every", "4000", "--eval-episodes", "4", "--out", str(tmp_path),
           "--set", "env.num_envs=40", "train.frames_per_batch=4000", "model.hidden_sizes=[16]"]
    first = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "1 runs to do" in first.stdout
    row = next(line for line in (tmp_path / "suite.md").read_text().splitlines() if line.startswith("| navigation"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "1" and cells[6] == "8k" and "±" in cells[5]  # one seed, evaluated at the end (8k frames)
    with open(tmp_path / "suite.csv") as f:
        (record,) = list(csv.DictReader(f))
    assert float(record["eval_end_mean"]) == pytest.approx(float(cells[5].split(" ± ")[0]), abs=1e-3)
    # s.e. of one evaluation: the episodes' std over sqrt(4 episodes), averaged over the run's two evaluations.
    with open(tmp_path / "runs" / "navigation" / "seed0" / "metrics.csv") as f:
        stds = [float(r["eval/agents/episode_return_std"]) for r in csv.DictReader(f)
                if r["eval/agents/episode_return_std"]]
    assert len(stds) == 2 and float(cells[8]) == pytest.approx(sum(stds) / 2 / 2, abs=1e-3)
    assert float(record["eval_se_mean"]) == pytest.approx(float(cells[8]), abs=1e-3)
    assert (tmp_path / "suite.png").stat().st_size > 0
    again = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "0 runs to do" in again.stdout
    # A table rebuilt without --eval-episodes states the runs' own evaluation size.
    report = subprocess.run([sys.executable, "benchmarks/suite.py", "--tasks", "navigation", "--frames", "8000",
                             "--seeds", "0", "--eval-every", "4000", "--out", str(tmp_path), "--report-only"],
                            cwd=REPO, capture_output=True, text=True, timeout=600)
    assert report.returncode == 0, report.stderr[-2000:]
    assert "(deterministic, 4 episodes, every 4000 frames)" in (tmp_path / "suite.md").read_text()


def test_suite_lists_only_the_benchmarl_seeds_a_task_has(tmp_path):
    """The report's BenchMARL seeds are the union over tasks; a task's per-seed values and its mean
    use the seeds it has (no padding with nan)."""
    suite = load_benchmark("suite")
    for task, seeds in (("navigation", [0, 1, 2]), ("discovery", [0, 1, 2, 3, 4])):
        for seed in seeds:
            d = tmp_path / "benchmarl" / task / f"seed{seed}"
            d.mkdir(parents=True)
            (d / "curve.csv").write_text(f"iteration,frames,eval_return\n1,120000,{seed + 1}\n")
    args = suite.parse_args(["--report-only", "--out", str(tmp_path), "--tasks", "navigation", "discovery"])
    args.benchmarl_seeds = [0, 1, 2, 3, 4]
    nav, disc = suite.task_record(args, "navigation"), suite.task_record(args, "discovery")
    assert nav["raw"]["benchmarl_120k"] == [1.0, 2.0, 3.0] and nav["benchmarl_seeds"] == 3
    assert disc["raw"]["benchmarl_120k"] == [1.0, 2.0, 3.0, 4.0, 5.0] and disc["benchmarl_seeds"] == 5
    assert nav["benchmarl_120k"][0] == pytest.approx(2.0)


def test_suite_rejects_an_evaluation_period_that_misses_120k(tmp_path):
    proc = subprocess.run([sys.executable, "benchmarks/suite.py", "--eval-every", "7000", "--out", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2 and "--eval-every must divide 120000" in proc.stderr


@pytest.mark.slow
def test_selfplay_cost_alternates_pool_and_no_pool_and_reports_the_ratio(tmp_path):
    out = tmp_path / "cost.md"
    proc = subprocess.run(
        [sys.executable, "benchmarks/selfplay_cost.py", "--reps", "2", "--iters", "2", "--frames-per-batch", "80",
         "--out", str(out), "--set", "env.max_steps=20",
         "train.minibatch_size=40", "train.num_epochs=1", "model.hidden_sizes=[16,16]"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rows = [line.split(" | ") for line in out.read_text().splitlines() if line.startswith("| 0 ") or line.startswith("| 1 ")]
    assert [r[1] for r in rows] == ["no pool", "pool", "pool", "no pool"]  # alternating order
    assert all(float(r[2]) > 0 for r in rows)
    # the ratio column: the row's iteration time over its repetition's no-pool time
    assert [float(r[5].rstrip(" |")) for r in rows if r[1] == "no pool"] == [1.0, 1.0]
    assert "pool / no pool:" in proc.stdout and "load average" in proc.stdout
    part = re.search(r"blue's action ([\d.]+) ms by a snapshot vs ([\d.]+) ms at random per env step, "
                     r"snapshot \+ draw ([\d.]+) ms per iteration: (-?[\d.]+) s per iteration of 20 env steps", proc.stdout)
    assert part and float(part[1]) > 0 and float(part[2]) > 0 and float(part[3]) > 0


@pytest.mark.slow
def test_update_cost_times_each_point_and_prices_a_sweeps_frames(tmp_path):
    """update_cost.py times every EPOCHSxMINIBATCH point on one batch and turns a sweep's frames to
    target into seconds: more epochs, more minibatch steps; the sweep's median frames appear per point."""
    sweep = tmp_path / "summary.csv"
    sweep.write_text(
        "point,overrides,seed,status,exit_code,frames,final_return,final_eval_return,time_to_target_s,"
        "frames_to_target,frames_per_s,wall_s,run_dir\n"
        "a,train.num_epochs=1,0,done,0,160,0,nan,1,80.0,1,1,x\n"
        "a,train.num_epochs=1,1,done,0,160,0,nan,1,160.0,1,1,x\n"
        "b,train.num_epochs=3,0,done,0,160,0,nan,,nan,1,1,x\n")
    proc = subprocess.run(
        [sys.executable, "benchmarks/update_cost.py", "--config", "configs/vmas_navigation.yaml",
         "--points", "1x40", "3x40", "--reps", "2", "--sweep", str(sweep), *TINY],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in proc.stdout.splitlines() if re.match(r"\| \d+ x \d+ \|", line)}
    assert rows["1 x 40"][0] == "2" and rows["3 x 40"][0] == "6"  # minibatch steps per iteration
    assert rows["1 x 40"][4] == "0.1k / 0.1k (2 seeds)"  # median and mean of 80 and 160 frames
    assert rows["3 x 40"][4] == "not reached / not reached (1 seeds, 1 not reached)"
    assert rows["3 x 40"][5] == "- / -"
