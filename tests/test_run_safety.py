"""Issue 10: a run never loses or touches data it did not make, and every failure is one line.

Each family of the issue has its tests here: run names and overwrite, concurrent launches and
the run lock, runs killed before their first checkpoint, corrupt checkpoints, non-finite
weights, a full disk, resume with overrides, and results that used to be silently wrong.
"""
import csv
import errno
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import REPO
from torchrl_mappo import checkpoint
from torchrl_mappo.cli import main
from torchrl_mappo.config import load_config
from torchrl_mappo.runs import MARKER, claim_run_dir

NAV = str(REPO / "configs/vmas_navigation.yaml")
TINY = ["env.num_envs=4", "train.frames_per_batch=400", "train.total_frames=800", "train.minibatch_size=200",
        "train.num_epochs=1", "model.hidden_sizes=[16]", "run.progress_bar=false", "train.num_threads=1"]


def tree(folder: Path) -> dict:
    return {p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "torchrl_mappo", *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


@pytest.fixture(scope="module")
def done_run(tmp_path_factory):
    """A finished run (2 iterations, a checkpoint after each, a constant learning rate) to copy from."""
    root = tmp_path_factory.mktemp("done")
    assert main(["train", NAV, f"run.dir={root}", "run.name=r", *TINY, "run.checkpoint_every=1",
                 "train.lr_schedule=constant"]) == 0
    return root / "r"


def copy_run(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


# --------------------------------------------------------------------------- #
# run.overwrite: only a marked run of this package, only once the new run is built
# --------------------------------------------------------------------------- #
def test_overwrite_replaces_only_the_named_run_and_only_after_the_new_one_builds(tmp_path, done_run, capsys):
    copy_run(done_run, tmp_path / "old")
    copy_run(done_run, tmp_path / "sibling")
    (tmp_path / "user.txt").write_text("mine")
    before = tree(tmp_path)
    # The new config fails when its env is built: the old run must come back intact.
    code = main(["train", NAV, f"run.dir={tmp_path}", "run.name=old", "run.overwrite=true", *TINY,
                 "env.scenario_kwargs.n_agents=0"])
    assert code == 2 and "could not be built" in one_error_line(capsys.readouterr().err)
    assert tree(tmp_path) == before
    # A good config replaces it; the sibling run and the user's file stay byte-identical.
    assert main(["train", NAV, f"run.dir={tmp_path}", "run.name=old", "run.overwrite=true", *TINY,
                 "train.seed=7"]) == 0
    after = tree(tmp_path)
    assert {k: v for k, v in after.items() if k.parts[0] != "old"} == \
        {k: v for k, v in before.items() if k.parts[0] != "old"}
    assert load_config(tmp_path / "old" / "config.yaml").train.seed == 7
    assert (tmp_path / "old" / MARKER).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old", "sibling", "user.txt"]  # nothing left aside


def test_overwrite_never_follows_a_symlink(tmp_path, done_run, capsys):
    elsewhere = copy_run(done_run, tmp_path / "elsewhere")
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "link").symlink_to(elsewhere, target_is_directory=True)
    before = tree(elsewhere)
    code = main(["train", NAV, f"run.dir={tmp_path / 'runs'}", "run.name=link", "run.overwrite=true", *TINY])
    assert code == 2 and "was not made by torchrl_mappo" in one_error_line(capsys.readouterr().err)
    assert tree(elsewhere) == before and (tmp_path / "runs" / "link").is_symlink()


# --------------------------------------------------------------------------- #
# Concurrent launches and the run lock
# --------------------------------------------------------------------------- #
def test_timestamped_names_are_claimed_atomically(tmp_path, monkeypatch):
    cfg = load_config(NAV, [f"run.dir={tmp_path}", *TINY])
    monkeypatch.setattr(time, "strftime", lambda fmt: "20261123-120000")  # every launch in the same second
    claims = [claim_run_dir(cfg) for _ in range(3)]
    names = [c.run_dir.name for c in claims]
    assert names == ["vmas_navigation-20261123-120000", "vmas_navigation-20261123-120000-1",
                     "vmas_navigation-20261123-120000-2"]
    for c in claims:
        c.abandon()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_two_launches_at_once_get_two_runs_or_one_clear_refusal(tmp_path):
    unnamed = [cli("train", NAV, f"run.dir={tmp_path / 'a'}", *TINY) for _ in range(2)]
    named = [cli("train", NAV, f"run.dir={tmp_path / 'b'}", "run.name=same", *TINY) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in unnamed + named]
    assert [code for code, _ in results[:2]] == [0, 0], results
    runs = sorted((tmp_path / "a").iterdir())
    assert len(runs) == 2 and all((r / "checkpoint.pt").is_file() for r in runs)
    # The same name at once: one trains, the other is told the name is taken.
    assert sorted(code for code, _ in results[2:]) == [0, 2], results
    refused = next(err for code, err in results[2:] if code == 2)
    assert "already exists" in one_error_line(refused)
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["same"]


@pytest.mark.slow
def test_a_training_run_is_locked_against_resume_and_overwrite(tmp_path):
    run = cli("train", NAV, f"run.dir={tmp_path}", "run.name=busy", *TINY, "train.total_frames=400000",
              "run.checkpoint_every=1")
    ckpt = tmp_path / "busy" / "checkpoint.pt"
    deadline = time.time() + 300
    while not ckpt.exists() and time.time() < deadline and run.poll() is None:
        time.sleep(0.05)
    assert ckpt.exists(), run.stderr.read() if run.poll() is not None else "no checkpoint in time"
    try:
        for argv in (["train", "--resume", str(tmp_path / "busy"), "train.total_frames=800000"],
                     ["train", NAV, f"run.dir={tmp_path}", "run.name=busy", "run.overwrite=true", *TINY]):
            second = subprocess.run([sys.executable, "-m", "torchrl_mappo", *argv], cwd=REPO,
                                    capture_output=True, text=True, timeout=300)
            assert second.returncode == 2
            assert "is in use by another torchrl_mappo process" in one_error_line(second.stderr)
    finally:
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=60)
    # Once that process is gone (even killed), the lock is gone with it.
    rows = len((tmp_path / "busy" / "metrics.csv").read_text().splitlines())
    assert main(["train", "--resume", str(tmp_path / "busy"), "train.total_frames=" +
                 str(torch.load(ckpt, weights_only=False)["frames"] + 400)]) == 0
    assert len((tmp_path / "busy" / "metrics.csv").read_text().splitlines()) >= 3
    assert rows >= 2


# --------------------------------------------------------------------------- #
# Runs that stopped before their first checkpoint, corrupt checkpoints
# --------------------------------------------------------------------------- #
def test_a_run_killed_before_its_first_checkpoint_restarts_from_its_config(tmp_path, done_run, capsys):
    run = copy_run(done_run, tmp_path / "early")
    import shutil

    shutil.rmtree(run / "checkpoints")  # as if killed during iteration 1
    (run / "checkpoint.pt").unlink()
    old_metrics = (run / "metrics.csv").read_bytes()
    assert main(["train", "--resume", str(run)]) == 0
    assert "no checkpoint in" in capsys.readouterr().out
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [r["iteration"] for r in rows] == ["1", "2"] and (run / "checkpoint.pt").is_file()
    kept = list(run.glob("metrics.before-restart-*.csv"))
    assert len(kept) == 1 and kept[0].read_bytes() == old_metrics  # nothing saved is lost


def test_the_first_iteration_always_checkpoints(tmp_path):
    assert main(["train", NAV, f"run.dir={tmp_path}", "run.name=a", *TINY, "train.total_frames=1200",
                 "run.checkpoint_every=0", "run.keep_checkpoints=5"]) == 0
    assert sorted(p.name for p in (tmp_path / "a" / "checkpoints").iterdir()) == ["iter_000001.pt", "iter_000003.pt"]


def test_a_corrupt_newest_checkpoint_falls_back_to_the_newest_readable(tmp_path, done_run, capsys):
    run = copy_run(done_run, tmp_path / "c")
    newest = run / "checkpoints" / "iter_000002.pt"
    newest.write_bytes(newest.read_bytes()[:100])
    state, file = checkpoint.read(run)
    assert file == run / "checkpoint.pt" and state["iteration"] == 2  # its copy is fine
    assert "skipped unreadable checkpoint" in capsys.readouterr().err
    (run / "checkpoint.pt").write_bytes(b"garbage")
    state, file = checkpoint.read(run)
    assert file.name == "iter_000001.pt" and state["iteration"] == 1
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 0
    out, err = capsys.readouterr()
    assert "resuming" in out and "at iteration 1" in out and "skipped unreadable checkpoint" in err
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [r["iteration"] for r in rows] == ["1", "2"]


def test_no_readable_checkpoint_at_all_is_one_line(tmp_path, done_run, capsys):
    run = copy_run(done_run, tmp_path / "c")
    for f in [run / "checkpoint.pt", *(run / "checkpoints").iterdir()]:
        f.write_bytes(b"garbage")
    before = tree(run)
    assert main(["train", "--resume", str(run)]) == 2
    assert "not a readable checkpoint" in one_error_line(capsys.readouterr().err)
    assert tree(run) == before


# --------------------------------------------------------------------------- #
# Non-finite weights and a full disk: exit 1, one line, the last good checkpoint kept
# --------------------------------------------------------------------------- #
def test_an_absurd_learning_rate_ends_with_one_line_and_finite_weights(tmp_path, capsys):
    code = main(["train", NAV, f"run.dir={tmp_path}", "run.name=a", *TINY, "train.lr=1e38",
                 "train.total_frames=4000", "train.num_epochs=2", "train.max_nonfinite_updates=3"])
    err = capsys.readouterr().err
    assert code == 1
    assert "consecutive updates with a non-finite" in one_error_line(err)
    assert all(line.startswith(("error: ", "warning: ")) for line in err.splitlines()), err
    state = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)
    assert checkpoint.all_finite(state["actors"]) and checkpoint.all_finite(state["losses"])


def test_a_step_to_infinite_weights_is_rolled_back(tmp_path):
    from conftest import small_cfg
    from torchrl_mappo import Trainer

    trainer = Trainer.from_config(small_cfg(train={"max_nonfinite_updates": 1000}))
    loss = trainer.losses["agents"]
    before = [p.detach().clone() for p in loss.parameters()]
    opt = trainer.optimizers["agents"][0]
    real_step = opt.step

    def poisoned_step(*a, **kw):  # a finite gradient, but the step overflows the weights
        real_step(*a, **kw)
        with torch.no_grad():
            next(loss.parameters()).fill_(float("inf"))

    opt.step = poisoned_step
    with pytest.warns(RuntimeWarning, match="non-finite weights; update skipped"):
        trainer.train()
    assert all(torch.equal(a, b) for a, b in zip(before, loss.parameters()))


def test_a_full_disk_while_checkpointing_is_one_line_and_leaves_no_temporary_file(tmp_path, monkeypatch, capsys):
    real_save = torch.save
    calls = []

    def save(obj, f, *a, **kw):
        calls.append(f)
        if len(calls) == 2:  # the second checkpoint: half written, then the disk is full
            Path(f).write_bytes(b"partial")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(obj, f, *a, **kw)

    monkeypatch.setattr(checkpoint.torch, "save", save)
    code = main(["train", NAV, f"run.dir={tmp_path}", "run.name=a", *TINY, "run.checkpoint_every=1"])
    line = one_error_line(capsys.readouterr().err)
    assert code == 1 and "No space left on device" in line and "previous checkpoint is intact" in line
    assert not list((tmp_path / "a").rglob("*.tmp"))
    state, _ = checkpoint.read(tmp_path / "a")
    assert state["iteration"] == 1


# --------------------------------------------------------------------------- #
# Resume with overrides
# --------------------------------------------------------------------------- #
def test_resume_with_a_new_schedule_adds_its_columns_and_writes_the_config_back(tmp_path, done_run):
    run = copy_run(done_run, tmp_path / "r")
    old_config = (run / "config.yaml").read_text()
    assert main(["train", "--resume", str(run), "train.total_frames=1600", "train.lr_schedule=linear"]) == 0
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [r["iteration"] for r in rows] == ["1", "2", "3", "4"]
    assert rows[0]["agents/lr"] == "" and float(rows[3]["agents/lr"]) >= 0
    cfg = load_config(run / "config.yaml")
    assert cfg.train.total_frames == 1600 and cfg.train.lr_schedule == "linear"
    kept = list(run.glob("config.before-*.yaml"))
    assert len(kept) == 1 and kept[0].read_text() == old_config
    # The printed resume command now works with no override (the budget is the new one).
    assert main(["train", "--resume", str(run)]) == 2  # finished: 1600 of 1600 frames used


# --------------------------------------------------------------------------- #
# Results that were silently wrong
# --------------------------------------------------------------------------- #
def test_progress_shows_the_mean_of_recent_episodes_not_nan(tmp_path, capsys):
    # 25-step batches, 100-step episodes: three batches in four finish no episode.
    assert main(["train", NAV, f"run.dir={tmp_path}", "run.name=a", "env.num_envs=4", "env.max_steps=100",
                 "train.frames_per_batch=100", "train.total_frames=500", "train.minibatch_size=100",
                 "train.num_epochs=1", "model.hidden_sizes=[16]", "run.progress_bar=false"]) == 0
    out = capsys.readouterr().out
    assert "mean return of the last 4 episodes: agents=" in out and "nan" not in out
    rows = list(csv.DictReader((tmp_path / "a" / "metrics.csv").open()))
    assert [r["agents/episode_return"] == "" for r in rows] == [True, True, True, False, True]


def test_no_episode_finished_yet_is_said_plainly(tmp_path, capsys):
    assert main(["train", NAV, f"run.dir={tmp_path}", "run.name=a", "env.num_envs=4", "env.max_steps=100",
                 "train.frames_per_batch=100", "train.total_frames=200", "train.minibatch_size=100",
                 "train.num_epochs=1", "model.hidden_sizes=[16]", "run.progress_bar=false"]) == 0
    assert "no episode finished yet" in capsys.readouterr().out


def test_eval_plays_the_number_of_episodes_asked(done_run):
    from torchrl_mappo.evaluate import evaluate_checkpoint

    result = evaluate_checkpoint(done_run, episodes=2)
    assert result["episodes"] == 2
    result = evaluate_checkpoint(done_run, episodes=3, num_envs=2)  # two envs, one of them twice
    assert result["episodes"] == 3


def test_plot_reads_a_row_cut_short_by_a_kill(tmp_path, done_run, capsys):
    run = copy_run(done_run, tmp_path / "r")
    with (run / "metrics.csv").open("a") as f:
        f.write("3,1200,-0.5")  # the last row, torn
    assert main(["plot", str(run), "--out", str(tmp_path / "p.png")]) == 0
    assert capsys.readouterr().out.strip() == f"plot: {tmp_path / 'p.png'}"


def test_python_train_writes_a_run_like_the_cli(tmp_path):
    from torchrl_mappo.runs import train

    run = train(NAV, [f"run.dir={tmp_path}", "run.name=py", *TINY])
    assert run == tmp_path / "py"
    assert {"config.yaml", "metrics.csv", "checkpoint.pt", "console.log", MARKER} <= {p.name for p in run.iterdir()}
