"""Run lifecycle: checkpoints, exact resume after SIGKILL, SIGINT, non-finite guard, console log."""
import csv
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import REPO, route_loss_call, small_cfg
from torchrl_mappo import Trainer
from torchrl_mappo.cli import main

TIMING = {"collect_time", "train_time", "fps", "wall_time"}
RESUMABLE = ["env.num_envs=4", "env.max_steps=30", "train.frames_per_batch=80", "train.total_frames=960",
             "train.minibatch_size=40", "train.num_epochs=4", "model.hidden_sizes=[64,64]",
             "train.num_threads=1", "run.checkpoint_every=1", "run.keep_checkpoints=2", "run.progress_bar=false"]


def cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "torchrl_mappo", *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def metrics_without_timing(run: Path) -> list[dict]:
    with (run / "metrics.csv").open() as f:
        return [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(f)]


@pytest.mark.slow
def test_sigkill_then_resume_gives_the_same_metrics(tmp_path):
    config = str(REPO / "configs/vmas_navigation.yaml")
    whole = cli("train", config, f"run.dir={tmp_path}", "run.name=whole", *RESUMABLE)
    assert whole.wait(timeout=300) == 0, whole.stderr.read()

    killed = cli("train", config, f"run.dir={tmp_path}", "run.name=killed", *RESUMABLE)
    target = tmp_path / "killed" / "checkpoints" / "iter_000004.pt"
    deadline = time.time() + 300
    while not target.exists() and time.time() < deadline and killed.poll() is None:
        time.sleep(0.01)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=60)
    assert killed.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    from torchrl_mappo import checkpoint

    latest, _ = checkpoint.read(tmp_path / "killed")  # what --resume will use: the newest complete one
    assert 4 <= latest["iteration"] < 12

    resumed = cli("train", "--resume", str(tmp_path / "killed"))
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert f"resuming {tmp_path / 'killed'} at iteration {latest['iteration']}" in out
    expected, got = metrics_without_timing(tmp_path / "whole"), metrics_without_timing(tmp_path / "killed")
    assert len(expected) == len(got) == 12
    for row_a, row_b in zip(expected, got):
        assert row_a == row_b
    # Only the last keep_checkpoints=2 are kept, plus checkpoint.pt (the latest).
    assert sorted(p.name for p in (tmp_path / "killed" / "checkpoints").iterdir()) == [
        "iter_000011.pt", "iter_000012.pt"]
    assert "resuming" in (tmp_path / "killed" / "console.log").read_text()


@pytest.mark.slow
def test_sigint_finishes_the_step_checkpoints_and_says_how_to_resume(tmp_path):
    config = str(REPO / "configs/vmas_navigation.yaml")
    run = cli("train", config, f"run.dir={tmp_path}", "run.name=r", *RESUMABLE[:-2], "run.checkpoint_every=0",
              "train.total_frames=96000")
    metrics = tmp_path / "r" / "metrics.csv"
    deadline = time.time() + 300
    while (not metrics.exists() or len(metrics.read_text().splitlines()) < 3) and time.time() < deadline:
        time.sleep(0.05)
    run.send_signal(signal.SIGINT)
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    assert "stopped by SIGINT" in out and f"resume with: torchrl-mappo train --resume {tmp_path / 'r'}" in out
    state = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=False)
    rows = metrics.read_text().splitlines()
    assert state["iteration"] == len(rows) - 1  # the checkpoint matches the last finished iteration
    # Resuming with a larger budget continues from there.
    assert main(["train", "--resume", str(tmp_path / "r"), "train.total_frames=" + str(state["frames"] + 160)]) == 0
    assert len(metrics.read_text().splitlines()) == len(rows) + 2


@pytest.mark.parametrize("lean", [True, False], ids=["lean", "mappo_loss"])
def test_nonfinite_updates_are_skipped_then_stop_with_good_weights(tmp_path, lean):
    cfg = small_cfg(train={"max_nonfinite_updates": 3, "num_epochs": 2, "lean": lean})
    trainer = Trainer.from_config(cfg, run_dir=tmp_path)
    loss = trainer.losses["agents"]
    good = [p.detach().clone() for p in loss.parameters()]

    def poisoned(call, data):
        out = call(data)
        out["loss_critic"] = out["loss_critic"] * float("nan")
        return out

    route_loss_call(trainer, "agents", poisoned)
    from torchrl_mappo.trainer import NonFiniteLossError

    with pytest.warns(RuntimeWarning, match="non-finite loss_critic; update skipped"):
        with pytest.raises(NonFiniteLossError, match="3 consecutive updates with a non-finite loss_critic"):
            trainer.train()
    assert all(torch.equal(a, b) for a, b in zip(good, loss.parameters()))  # nothing applied
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert all(torch.isfinite(v).all() for v in saved["actors"]["agents"].values() if v.is_floating_point())


def test_checkpoint_refuses_nonfinite_weights(tmp_path):
    trainer = Trainer.from_config(small_cfg(), run_dir=tmp_path)
    with torch.no_grad():
        next(trainer.actors["agents"].parameters()).fill_(float("nan"))
    with pytest.raises(ValueError, match="non-finite weights"):
        trainer.checkpoint()
    assert not (tmp_path / "checkpoint.pt").exists()
    trainer.collector.shutdown()


def test_resume_with_an_incompatible_config_names_the_mismatch(tmp_path, capsys):
    config = str(REPO / "configs/vmas_navigation.yaml")
    tiny = ["env.num_envs=4", "train.frames_per_batch=400", "train.total_frames=400", "train.minibatch_size=200",
            "train.num_epochs=1", "model.hidden_sizes=[16]", "run.progress_bar=false"]
    assert main(["train", config, f"run.dir={tmp_path}", "run.name=a", *tiny]) == 0
    capsys.readouterr()
    code = main(["train", "--resume", str(tmp_path / "a"), "train.total_frames=800", "model.hidden_sizes=[32]"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has shape (16,) but this config builds (32,)" in err
    code = main(["train", "--resume", str(tmp_path / "a"), "train.total_frames=800",
                 "env.scenario_kwargs.n_agents=4"])
    assert code == 2 and "shape" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "a")]) == 2
    assert "already used 400 frames" in capsys.readouterr().err


def test_pettingzoo_run_checkpoints_and_resumes(tmp_path):
    """Non-VMAS envs cannot snapshot their simulator: resume restarts the episodes, the rest continues."""
    tiny = ["env.num_envs=2", "env.max_steps=10", "train.frames_per_batch=40", "train.total_frames=80",
            "train.minibatch_size=20", "train.num_epochs=1", "model.hidden_sizes=[8]", "run.progress_bar=false"]
    assert main(["train", str(REPO / "configs/mpe_simple_spread.yaml"), f"run.dir={tmp_path}", "run.name=p", *tiny]) == 0
    state = torch.load(tmp_path / "p" / "checkpoint.pt", weights_only=False)
    assert state["simulator"] is None and state["iteration"] == 2
    assert main(["train", "--resume", str(tmp_path / "p"), "train.total_frames=120"]) == 0
    assert len((tmp_path / "p" / "metrics.csv").read_text().splitlines()) == 4


def test_plot_overlays_runs(tmp_path, capsys, monkeypatch):
    from matplotlib.axes import Axes

    from torchrl_mappo.metrics import read_metrics

    lines, plot = [], Axes.plot
    monkeypatch.setattr(Axes, "plot", lambda self, x, y, **kw: (
        lines.append((kw.get("label"), list(x), list(y))), plot(self, x, y, **kw))[1])
    tiny = ["env.num_envs=4", "train.frames_per_batch=400", "train.total_frames=800", "train.minibatch_size=200",
            "train.num_epochs=1", "model.hidden_sizes=[8]", "run.progress_bar=false"]
    for name in ("a", "b"):
        assert main(["train", str(REPO / "configs/vmas_navigation.yaml"), f"run.dir={tmp_path}",
                     f"run.name={name}", *tiny]) == 0
    assert main(["plot", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").stat().st_size > 10_000
    expected = []
    for name in ("a", "b"):  # return vs frames, then return vs wall time, per run
        rows = read_metrics(tmp_path / name / "metrics.csv")
        returns = [r["agents/episode_return"] for r in rows]
        expected += [(name, [r["frames"] for r in rows], returns), (name, [r["wall_time"] for r in rows], returns)]
    assert lines == expected
    assert main(["plot", str(tmp_path / "a")]) == 0
    assert (tmp_path / "a" / "learning_curves.png").is_file()


def test_eval_writes_a_gif(tmp_path):
    from PIL import Image

    tiny = ["env.num_envs=2", "env.max_steps=10", "train.frames_per_batch=20", "train.total_frames=20",
            "train.minibatch_size=10", "train.num_epochs=1", "model.hidden_sizes=[8]", "run.progress_bar=false"]
    assert main(["train", str(REPO / "configs/vmas_navigation.yaml"), f"run.dir={tmp_path}", "run.name=a", *tiny]) == 0
    assert main(["eval", str(tmp_path / "a"), "--episodes", "2", "--video", str(tmp_path / "v.gif")]) == 0
    gif = Image.open(tmp_path / "v.gif")
    assert gif.n_frames >= 10 and gif.size == (400, 400)


@pytest.mark.parametrize("config,overrides", [
    ("mpe_simple_spread.yaml", ["env.max_steps=10"]),
    ("magent_battle.yaml", ["env.max_steps=10", "env.scenario_kwargs.map_size=12", "train.minibatch_size=10"]),
    ("tictactoe.yaml", []),
])
def test_eval_films_envs_that_draw_themselves(tmp_path, config, overrides):
    """PettingZoo and MAgent2 envs are built with render_mode='rgb_array' for --video: the gif holds one
    frame per step of the first env's first episode, each a drawn image (more than one colour), scaled
    up where the env draws small (MAgent2: a pixel per cell)."""
    import numpy as np
    from PIL import Image

    tiny = ["env.num_envs=2", "train.frames_per_batch=20", "train.total_frames=20", "train.num_epochs=1",
            "model.hidden_sizes=[8]", "run.progress_bar=false", *overrides]
    if not any(o.startswith("train.minibatch_size") for o in tiny):
        tiny.append("train.minibatch_size=10")
    assert main(["train", str(REPO / "configs" / config), f"run.dir={tmp_path}", "run.name=a", *tiny]) == 0
    assert main(["eval", str(tmp_path / "a"), "--episodes", "1", "--video", str(tmp_path / "v.gif")]) == 0
    gif = Image.open(tmp_path / "v.gif")
    assert gif.n_frames >= 3 and min(gif.size) >= 300
    gif.seek(gif.n_frames // 2)
    assert len(np.unique(np.asarray(gif.convert("RGB")).reshape(-1, 3), axis=0)) > 2
