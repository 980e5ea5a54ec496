"""Configs: every YAML loads; overrides work; bad input is one clear line and exit code 2."""
import subprocess
import sys

import pytest
import yaml

from conftest import CONFIGS, REPO
from torchrl_mappo import ConfigError, load_config
from torchrl_mappo.cli import main
from torchrl_mappo.config import Config, config_from_dict, config_to_dict


def test_there_are_configs():
    names = {p.name for p in CONFIGS}
    assert {"vmas_navigation.yaml", "vmas_balance.yaml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_config_loads(path):
    cfg = load_config(path)
    assert isinstance(cfg, Config)
    # Every key written in the file reached the typed config unchanged.
    raw = yaml.safe_load(path.read_text())
    resolved = config_to_dict(cfg)

    def check(expected, got, where):
        if isinstance(expected, dict) and not where.endswith(("scenario_kwargs", "group_map", "reward_sharing")):
            for key, value in expected.items():
                check(value, got[key], f"{where}.{key}")
        else:
            assert got == expected or (isinstance(expected, str) and got == float(expected)), where

    for section, values in raw.items():
        check(values, resolved[section], section)


def test_overrides_parse_as_yaml_and_reach_nested_kwargs():
    cfg = load_config(REPO / "configs/vmas_navigation.yaml",
                      ["train.lr=1e-3", "train.seed=7", "env.scenario_kwargs.n_agents=5",
                       "model.hidden_sizes=[32, 32]", "train.target_return=null"])
    assert cfg.train.lr == pytest.approx(1e-3)
    assert cfg.train.seed == 7
    assert cfg.env.scenario_kwargs["n_agents"] == 5
    assert cfg.model.hidden_sizes == [32, 32]
    assert cfg.train.target_return is None


def test_defaults_live_in_the_dataclasses():
    cfg = config_from_dict({})
    assert cfg.model.hidden_sizes == [256, 256] and cfg.model.layer_norm
    assert cfg.loss.clip_epsilon == 0.2 and cfg.loss.gamma == 0.99


BAD = [
    # (overrides, words the message must contain)
    (["train.lerning_rate=1"], ["train.lerning_rate", "unknown key"]),
    (["train.lrr=1"], ["did you mean 'train.lr'"]),
    (["trian.lr=1"], ["unknown section 'trian'", "did you mean 'train'"]),
    (["train.num_epochs=ten"], ["train.num_epochs", "expected an integer"]),
    (["train.num_epochs=2.5"], ["train.num_epochs", "expected an integer"]),
    (["model.layer_norm=3"], ["model.layer_norm", "true or false"]),
    (["model.hidden_sizes=256"], ["model.hidden_sizes", "a list of an integer"]),
    (["model.hidden_sizes=[0, 8]"], ["model.hidden_sizes", "positive"]),
    (["model.activation=tahn"], ["model.activation", "did you mean 'tanh'"]),
    (["train.lr=-1"], ["train.lr", "positive"]),
    (["train.minibatch_size=0"], ["train.minibatch_size", "positive"]),
    (["train.minibatch_size=100000"], ["train.minibatch_size", "must not exceed train.frames_per_batch"]),
    (["train.frames_per_batch=6001"], ["train.frames_per_batch", "multiple of env.num_envs"]),
    (["loss.gamma=1.5"], ["loss.gamma", "(0, 1]"]),
    (["loss.clip_epsilon=0"], ["loss.clip_epsilon"]),
    (["loss.loss_critic_type=mse"], ["loss.loss_critic_type", "'l2'"]),
    (["env.scenario=navigaton"], ["env.scenario", "not a vmas scenario", "did you mean 'navigation'"]),
    (["env.family=atari"], ["env.family", "vmas"]),
    (["env.num_envs=-4"], ["env.num_envs", "positive"]),
    (["trainlr=1"], ["must name a section and a field"]),
    (["train.lr"], ["expected 'section.field=value'"]),
]


@pytest.mark.parametrize("overrides,words", BAD, ids=[b[0][0] for b in BAD])
def test_bad_config_is_one_clear_line_and_exit_2(overrides, words, capsys, tmp_path):
    code = main(["train", str(REPO / "configs/vmas_navigation.yaml"), f"run.dir={tmp_path}", *overrides])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: "), err
    for word in words:
        assert word in err, (word, err)
    assert not any(tmp_path.iterdir()), "a rejected config must not create a run directory"


def test_missing_file_and_bad_yaml(tmp_path, capsys):
    assert main(["train", str(tmp_path / "nope.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n")
    assert main(["train", str(bad)]) == 2
    assert "not valid YAML at line" in capsys.readouterr().err
    section = tmp_path / "section.yaml"
    section.write_text("train: 3\n")
    with pytest.raises(ConfigError, match="section 'train' must be a mapping"):
        load_config(section)


def test_unknown_scenario_kwarg_is_a_config_error(tmp_path, capsys):
    code = main(["train", str(REPO / "configs/vmas_navigation.yaml"), f"run.dir={tmp_path}",
                 "env.scenario_kwargs.n_agnets=3", "run.progress_bar=false"])
    assert code == 2
    assert "env.scenario_kwargs" in capsys.readouterr().err


def test_cli_usage_errors_exit_2(capsys):
    assert main([]) == 2
    assert main(["fly", "x.yaml"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_existing_run_directory_is_never_overwritten(tmp_path, capsys):
    run = tmp_path / "keep"
    run.mkdir()
    (run / "metrics.csv").write_text("precious\n")
    code = main(["train", str(REPO / "configs/vmas_navigation.yaml"), f"run.dir={tmp_path}", "run.name=keep"])
    assert code == 2
    assert "already exists" in capsys.readouterr().err
    assert (run / "metrics.csv").read_text() == "precious\n"


def test_real_entry_point_prints_no_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "torchrl_mappo", "train", "configs/vmas_navigation.yaml", "train.lr=abc"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        "error: configs/vmas_navigation.yaml: train.lr: expected a number, got 'abc' (str); "
        "fix the value in the config or override"
    )


def test_readme_documents_every_config_field():
    import dataclasses

    from torchrl_mappo.config import (
        CollectorConfig, EnvConfig, GroupConfig, LossConfig, ModelConfig, RunConfig, TrainConfig,
    )

    readme = (REPO / "README.md").read_text()
    for cls in (EnvConfig, ModelConfig, LossConfig, TrainConfig, RunConfig, CollectorConfig, GroupConfig):
        for f in dataclasses.fields(cls):
            assert f"| `{f.name}` |" in readme, f"{cls.__name__}.{f.name} is missing from the README"
