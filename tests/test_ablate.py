"""The ablation runner trains every variant for real and writes table, CSV and plot."""
import csv

import pytest

from conftest import REPO
from torchrl_mappo import ConfigError
from torchrl_mappo.ablate import VARIANTS, final_return, variant_overrides
from torchrl_mappo.cli import main
from torchrl_mappo.config import config_from_dict

TINY = ["env.num_envs=2", "env.max_steps=10", "train.frames_per_batch=20", "train.minibatch_size=10",
        "train.num_epochs=1", "model.hidden_sizes=[8]"]


@pytest.mark.slow
def test_ablation_trains_each_variant_and_writes_results(tmp_path, capsys):
    code = main(["ablate", str(REPO / "configs/vmas_navigation.yaml"), *TINY, "--seeds", "2", "--frames", "40",
                 "--variants", "ippo", "clip_0.3", "--out", str(tmp_path / "abl")])
    assert code == 0
    out = tmp_path / "abl"
    table = (out / "ablation.md").read_text()
    for label in ("| full |", "| ippo |", "| clip_0.3 |", "100%"):
        assert label in table
    rows = list(csv.DictReader((out / "ablation.csv").open()))
    assert [(r["variant"], r["seed"]) for r in rows] == [
        ("full", "0"), ("full", "1"), ("ippo", "0"), ("ippo", "1"), ("clip_0.3", "0"), ("clip_0.3", "1")]
    assert (out / "ablation.png").stat().st_size > 10_000
    # Real runs: each has its own metrics, and the IPPO run really had a local critic.
    saved = (out / "ippo" / "seed1" / "metrics.csv").read_text().splitlines()
    assert len(saved) == 3  # header + 2 iterations of 20 frames
    assert "table:" in capsys.readouterr().out


def test_variants_toggle_what_they_name():
    plain = config_from_dict({})
    normed = config_from_dict({"loss": {"value_norm": "running"}})
    assert variant_overrides("value_norm", plain) == ["loss.value_norm=popart"]
    assert variant_overrides("value_norm", normed) == ["loss.value_norm=none"]
    assert variant_overrides("ippo", plain) == ["model.centralized=false"]
    assert set(VARIANTS) >= {"full", "ippo", "no_layer_norm", "no_adv_norm", "clip_0.1", "clip_0.3",
                             "no_param_sharing", "value_norm"}
    with pytest.raises(ConfigError, match="unknown variant 'bogus'"):
        variant_overrides("bogus", plain)


def test_final_return_averages_the_last_iterations():
    history = [{"a/episode_return": float(i), "b/episode_return": float(i) + 1} for i in range(5)]
    assert final_return(history) == pytest.approx((2 + 3 + 4 + 3 + 4 + 5) / 6)


def test_ablation_bad_input(tmp_path, capsys):
    assert main(["ablate", str(REPO / "configs/vmas_navigation.yaml"), "--variants", "bogus",
                 "--out", str(tmp_path / "x")]) == 2
    assert "unknown variant" in capsys.readouterr().err
    assert main(["ablate", str(REPO / "configs/vmas_navigation.yaml"), "--frames", "7"]) == 2
    assert "train.total_frames" in capsys.readouterr().err
