"""Each TorchRL logger backend writes the run's metrics somewhere we can read back (offline)."""
import csv
import glob
import math
import re
import time

import pytest

from conftest import REPO
from torchrl_mappo.cli import main
from torchrl_mappo.metrics import read_metrics

TINY = ["env.num_envs=4", "train.frames_per_batch=400", "train.total_frames=800", "train.minibatch_size=200",
        "train.num_epochs=1", "model.hidden_sizes=[8]", "run.progress_bar=false"]


def run(tmp_path, backend, *extra):
    assert main(["train", str(REPO / "configs/vmas_navigation.yaml"), f"run.dir={tmp_path}", "run.name=r",
                 f"run.logger={backend}", *TINY, *extra]) == 0
    run_dir = tmp_path / "r"
    returns = [row["agents/episode_return"] for row in read_metrics(run_dir / "metrics.csv")]
    assert len(returns) == 2 and all(math.isfinite(r) for r in returns)
    return run_dir, returns


def test_csv_logger(tmp_path):
    run_dir, returns = run(tmp_path, "csv")
    with open(run_dir / "csv" / "scalars" / "agents" / "episode_return.csv") as f:
        rows = list(csv.reader(f))
    assert [int(r[0]) for r in rows] == [400, 800]
    assert [float(r[1]) for r in rows] == pytest.approx(returns, rel=1e-5)


def test_tensorboard_logger(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir, returns = run(tmp_path, "tensorboard")
    acc = EventAccumulator(str(run_dir / "tensorboard"))
    acc.Reload()
    events = acc.Scalars("agents/episode_return")
    assert [e.step for e in events] == [400, 800]
    assert [e.value for e in events] == pytest.approx(returns, rel=1e-5)


def test_mlflow_logger_local_file_store(tmp_path):
    from mlflow.tracking import MlflowClient

    run_dir, returns = run(tmp_path, "mlflow")
    client = MlflowClient(tracking_uri=(run_dir / "mlflow").absolute().as_uri())
    (exp,) = [e for e in client.search_experiments() if e.name == "r"]
    (mlrun,) = client.search_runs([exp.experiment_id])
    history = client.get_metric_history(mlrun.info.run_id, "agents/episode_return")
    points = sorted((m.step, m.value) for m in history)
    assert [p[0] for p in points] == [400, 800]
    assert [p[1] for p in points] == pytest.approx(returns, rel=1e-5)


def test_wandb_logger_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_SILENT", "true")
    run_dir, returns = run(tmp_path, "wandb")
    (record,) = glob.glob(str(run_dir / "wandb" / "offline-run-*" / "run-*.wandb"))
    # wandb-core (0.31) may still be writing the offline log after finish() returns on a busy
    # machine ("flowcontrol: backed up, offloading to disk"): wait for it, up to a minute.
    deadline = time.monotonic() + 60
    while b"agents/episode_return" not in (data := open(record, "rb").read()) and time.monotonic() < deadline:
        time.sleep(0.5)
    # The offline run log (synced later with `wandb sync`) holds the metric and its values.
    assert b"agents/episode_return" in data
    # metrics.csv keeps 6 significant digits; the log holds full floats as text.
    logged = [float(x) for x in re.findall(rb"-?\d+\.\d+(?:e[-+]?\d+)?", data)]
    for value in returns:
        assert any(v == pytest.approx(value, rel=1e-5) for v in logged), value


def test_per_agent_metrics(tmp_path):
    run_dir, _ = run(tmp_path, "csv", "run.per_agent_metrics=true")
    row = read_metrics(run_dir / "metrics.csv")[0]
    per_agent = [row[f"agents/agent_{i}/episode_return"] for i in range(3)]
    assert sum(per_agent) / 3 == pytest.approx(row["agents/episode_return"], rel=1e-4)


def test_missing_logger_package_is_a_config_error(tmp_path, monkeypatch, capsys):
    import builtins

    real_import = builtins.__import__

    def no_wandb(name, *args, **kwargs):
        if name == "wandb" or name.startswith("wandb."):
            raise ImportError("No module named 'wandb'", name="wandb")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_wandb)
    code = main(["train", str(REPO / "configs/vmas_navigation.yaml"), f"run.dir={tmp_path}", "run.name=r",
                 "run.logger=wandb", *TINY])
    assert code == 2
    assert "run.logger=wandb: needs the wandb package" in capsys.readouterr().err
