"""Many runs at once (``train --seeds``, ``sweep``): real processes with tiny budgets; no timings asserted."""
import csv
import io
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO
from torchrl_mappo.cli import main
from torchrl_mappo.runner import grid_points, parse_grid, plan_runs, run_all
from torchrl_mappo.summary import final_return, learning_groups, mean_std, status, to_target, write_summary
from torchrl_mappo.threads import core_budget

CONFIG = str(REPO / "configs/vmas_navigation.yaml")
TINY = ["env.num_envs=2", "env.max_steps=10", "train.frames_per_batch=20", "train.minibatch_size=10",
        "train.num_epochs=1", "model.hidden_sizes=[8]", "train.total_frames=40"]


def only_child(path):
    (child,) = [p for p in path.iterdir() if p.is_dir()]
    return child


@pytest.mark.slow
def test_seeds_one_run_directory_each_and_a_summary(tmp_path, capsys):
    code = main(["train", CONFIG, "--seeds", "0", "1", "--jobs", "2", *TINY, f"run.dir={tmp_path}"])
    assert code == 0
    parent = only_child(tmp_path)
    assert parent.name.startswith("vmas_navigation-seeds-")
    for seed in (0, 1):
        run = parent / f"seed{seed}"
        assert len((run / "metrics.csv").read_text().splitlines()) == 3  # header + 2 iterations
        assert (run / "checkpoint.pt").is_file()
        saved = (run / "config.yaml").read_text()
        assert f"seed: {seed}\n" in saved
        assert "num_threads: auto\n" in saved  # within the budget the runner gave it (see below)
    rows = list(csv.DictReader((parent / "summary.csv").open()))
    assert [(r["seed"], r["status"], r["frames"]) for r in rows] == [("0", "done", "40.0"), ("1", "done", "40.0")]
    table = (parent / "summary.md").read_text()
    assert "| (config) | 2/2 |" in table and " ± " in table
    assert (parent / "curves.png").stat().st_size > 5_000
    out = capsys.readouterr().out
    assert "2 runs, 2 at a time" in out and "seed 0: done" in out and "seed 1: done" in out


@pytest.mark.slow
def test_sweep_runs_the_grid_product_and_writes_table_and_plot(tmp_path, capsys):
    out = tmp_path / "sweep"
    code = main(["sweep", CONFIG, *TINY, "--target", "-100", "--grid", "loss.clip_epsilon=0.2,0.3", "--grid",
                 "model.hidden_sizes=[8],[4,4]", "--seeds", "0", "--jobs", "2", "--out", str(out)])
    assert code == 0
    points = ["clip_epsilon=0.2,hidden_sizes=8", "clip_epsilon=0.2,hidden_sizes=4-4",
              "clip_epsilon=0.3,hidden_sizes=8", "clip_epsilon=0.3,hidden_sizes=4-4"]
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(points)
    assert "hidden_sizes:\n  - 4\n  - 4\n" in (out / points[1] / "seed0" / "config.yaml").read_text()
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [r["point"] for r in rows] == points and all(r["status"] == "done" for r in rows)
    assert all(float(r["frames_to_target"]) == 20 for r in rows)  # --target -100: the first iteration
    table = (out / "summary.md").read_text()
    assert all(f"| {p} | 1/1 |" in table for p in points)
    assert (out / "curves.png").stat().st_size > 5_000
    assert "table:" in capsys.readouterr().out


@pytest.mark.slow
def test_a_failing_run_is_reported_and_the_others_finish(tmp_path):
    runs = plan_runs(CONFIG, {"": []}, [0, 1], TINY, tmp_path)
    runs[0].overrides.append("env.scenario_kwargs.n_agents=0")  # passes the config, fails in the simulator
    stream = io.StringIO()
    assert run_all(CONFIG, runs, jobs=2, parent=tmp_path, stream=stream)
    assert status(runs[0]) == "failed" and runs[0].process.exit_code != 0
    assert status(runs[1]) == "done" and len(runs[1].rows) == 2
    # Two jobs: each run's budget is its share of the cores.
    assert runs[1].process.env["OMP_NUM_THREADS"] == str(max(1, core_budget() // 2))
    text = write_summary(tmp_path, "t", runs, None)
    assert "| (config) | 1/2 |" in text
    assert "seed 0: failed: error: env: vmas scenario 'navigation'" in text and "could not be built" in text
    assert "(log `seed0.log`)" in text
    assert "seed 0: failed" in stream.getvalue()


@pytest.mark.slow
def test_ctrl_c_checkpoints_every_run_and_stops_cleanly(tmp_path):
    """SIGINT to the runner: each run finishes its iteration, checkpoints, and the runner prints how to resume."""
    long = [*TINY[:-1], "train.total_frames=200000", "run.checkpoint_every=0"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "torchrl_mappo", "train", CONFIG, "--seeds", "0", "1", "--jobs", "2", *long,
         f"run.dir={tmp_path}"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 240
        while time.time() < deadline:  # both runs are training
            metrics = list(tmp_path.glob("*/seed*/metrics.csv"))
            if len(metrics) == 2 and all(len(m.read_text().splitlines()) > 1 for m in metrics):
                break
            time.sleep(0.5)
        else:
            pytest.fail("the runs did not start training")
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends to the terminal's foreground group
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, out
    assert "Traceback" not in out
    parent = only_child(tmp_path)
    for seed in (0, 1):
        assert (parent / f"seed{seed}" / "checkpoint.pt").is_file()
        assert f"seed {seed}: resume with: torchrl-mappo train --resume {parent / f'seed{seed}'}" in out
    rows = list(csv.DictReader((parent / "summary.csv").open()))
    assert {r["status"] for r in rows} == {"stopped"}


def test_grid_values_split_outside_brackets():
    grid = parse_grid(["train.lr=3e-4,1e-3", "model.hidden_sizes=[64,64],[256, 256]"])
    assert grid == [("train.lr", ["3e-4", "1e-3"]), ("model.hidden_sizes", ["[64,64]", "[256, 256]"])]
    assert list(grid_points(grid)) == ["lr=3e-4,hidden_sizes=64-64", "lr=3e-4,hidden_sizes=256-256",
                                       "lr=1e-3,hidden_sizes=64-64", "lr=1e-3,hidden_sizes=256-256"]
    # Same field name in two sections: the directory names keep the section.
    assert list(grid_points(parse_grid(["train.lr=1", "per_group.agents.lr=2"]))) == ["train.lr=1,per_group.agents.lr=2"]


@pytest.mark.parametrize("argv, message", [
    (["sweep", CONFIG, "--grid", "lr=1,2"], "--grid 'lr=1,2': expected section.field=value1,value2"),
    (["sweep", CONFIG, "--grid", "train.lr=1e-3,"], "expected section.field=value1,value2"),
    (["sweep", CONFIG, "--grid", "train.lr=1,2", "--grid", "train.lr=3"], "already a grid axis"),
    (["sweep", CONFIG, "--grid", "train.lrr=1e-3,3e-4"], "unknown key 'train.lrr'; did you mean 'train.lr'?"),
    (["sweep", CONFIG, "--grid", "train.lr=1e-3,-1"], "grid point lr=-1: "),
    (["sweep", CONFIG, "--grid", "train.lr=1e-3", "--jobs", "0"], "--jobs=0: must be a positive integer"),
    (["train", CONFIG, "--seeds", "0", "x"], "--seeds: 'x' is not a seed"),
    (["train", CONFIG, "--seeds", "0", "0"], "seeds must be distinct"),
    (["train", CONFIG, "--jobs", "2"], "train --jobs: give --seeds too"),
    (["train", "--resume", "somewhere", "--seeds", "0"], "train --seeds: give a config file"),
    (["train", "--seeds", "0"], "train --seeds: give a config file"),
])
def test_bad_input_is_one_line_and_starts_nothing(tmp_path, capsys, argv, message):
    assert main([*argv, f"run.dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert not any(tmp_path.iterdir())


def test_summary_figures_from_metrics_rows():
    nan = float("nan")
    rows = [{"frames": 100.0 * i, "wall_time": float(i), "a/episode_return": r, "a/loss_objective": 0.0,
             "b/episode_return": 5.0} for i, r in enumerate([0.1, nan, 0.95, 0.5, 0.7], start=1)]
    # b has no loss: it does not learn, so its return is not the run's.
    assert learning_groups(rows[0]) == ["a"]
    assert final_return(rows) == pytest.approx((0.95 + 0.5 + 0.7) / 3)
    assert to_target(rows, 0.9) == (3.0, 300.0)
    assert to_target(rows, 2.0) == (float("inf"), float("inf"))
    assert mean_std([1.0, 3.0, nan]) == (2.0, 1.0)
