"""The benchmark harness runs end to end on our package with a tiny budget.

Speed is measured by the harness, never asserted here; BenchMARL is not needed.
"""
import csv
import subprocess
import sys

from conftest import REPO

TINY = ["env.num_envs=4", "env.max_steps=20", "train.frames_per_batch=80", "train.minibatch_size=40",
        "train.num_epochs=1", "model.hidden_sizes=[16,16]"]


def test_harness_prints_and_writes_the_table(tmp_path):
    out = tmp_path / "bench"
    proc = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--task", "vmas/navigation", "--frames", "160", "--seeds", "1",
         "--target", "-100", "--out", str(out), "--set", *TINY],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    header = "| system | variant | seed | wall s | frames | frames/s |"
    assert header in proc.stdout
    assert "| torchrl_mappo | default | median of 1 (1/1 reached) |" in proc.stdout
    assert (out / "results.md").read_text().count(header) == 2  # medians and every run
    assert (out / "results.png").stat().st_size > 0
    with (out / "runs.csv").open() as f:
        (run,) = list(csv.DictReader(f))
    assert run["exit_code"] == "0" and int(run["frames"]) == 160
    assert float(run["peak RSS MiB"]) > 50  # a real process with torch in it
    assert float(run["t→target s"]) <= float(run["wall s"])


def test_harness_rejects_benchmarl_without_its_virtualenv(tmp_path):
    proc = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--vs", "benchmarl", "--benchmarl-python", str(tmp_path / "nope"),
         "--out", str(tmp_path / "bench")],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert "run: bash benchmarks/setup_benchmarl.sh" in proc.stderr
