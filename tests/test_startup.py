"""The console script keeps the garbage collector off the imported dependencies; main() from Python does not touch it."""
import gc
import json
import subprocess
import sys

from conftest import REPO
from torchrl_mappo import startup
from torchrl_mappo.cli import main

TINY = ["env.num_envs=4", "env.max_steps=10", "train.frames_per_batch=40", "train.total_frames=80",
        "train.minibatch_size=20", "train.num_epochs=1", "model.hidden_sizes=[8]", "run.progress_bar=false"]

# Records the collector's state where the heavy imports end and while the trainer trains,
# then runs the console script's entry point as `torchrl-mappo train ...` would.
PROBE = """
import gc, json, sys
from torchrl_mappo import startup, trainer
seen = {}
done = startup.imports_done
def imports_done():
    seen["enabled_before_imports_done"] = gc.isenabled()
    done()
startup.imports_done = imports_done
train = trainer.Trainer.train
def probed(self):
    seen["enabled_in_train"] = gc.isenabled()
    seen["frozen_in_train"] = gc.get_freeze_count()
    return train(self)
trainer.Trainer.train = probed
from torchrl_mappo.cli import entry
sys.argv = ["torchrl-mappo", *sys.argv[1:]]
try:
    entry()
except SystemExit as stop:
    seen["code"] = stop.code
seen["frozen_at_exit"] = gc.get_freeze_count()
print(json.dumps(seen))
"""


def test_console_script_freezes_the_imported_heap_and_collects_during_training(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", PROBE, "train", str(REPO / "configs/vmas_navigation.yaml"),
         f"run.dir={tmp_path}", *TINY],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["code"] == 0
    assert seen["enabled_before_imports_done"] is False  # off while torch & co. are imported
    assert seen["enabled_in_train"] is True  # on for what training allocates
    assert seen["frozen_in_train"] > 100_000  # the imported dependencies, out of the collector's reach
    assert seen["frozen_at_exit"] >= seen["frozen_in_train"]


def test_main_from_python_leaves_the_collector_alone(tmp_path):
    frozen = gc.get_freeze_count()
    assert gc.isenabled()
    assert main(["train", str(REPO / "configs/vmas_navigation.yaml"), f"run.dir={tmp_path}", *TINY]) == 0
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen


def test_imports_done_outside_one_command_does_nothing():
    frozen = gc.get_freeze_count()
    gc.disable()
    try:
        startup.imports_done()
        assert not gc.isenabled()  # a caller's choice is kept
        assert gc.get_freeze_count() == frozen
    finally:
        gc.enable()


def test_one_command_restores_the_collector_and_freezes_on_exit():
    assert gc.isenabled()
    try:
        with startup.one_command():
            assert not gc.isenabled()
            startup.imports_done()
            assert gc.isenabled()
            startup.imports_done()  # a second call changes nothing
            assert gc.isenabled()
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()  # this test process goes on: give the collector its objects back
