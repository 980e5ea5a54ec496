"""Loading configs (torchrl_mappo/config_io.py): every YAML loads and round-trips; overrides
work; unknown keys, wrong types and bad YAML are one clear line and exit code 2."""
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


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_config_round_trips(path):
    """What a run writes to its config.yaml (config_to_dict) loads back to the same config."""
    cfg = load_config(path)
    data = config_to_dict(cfg)
    again = config_from_dict(yaml.safe_load(yaml.safe_dump(data)), origin=str(path))
    assert again == cfg
    assert config_to_dict(again) == data


def test_overrides_parse_as_yaml_and_reach_nested_kwargs():
    cfg = load_config(REPO / "configs/vmas_navigation.yaml",
                      ["train.lr=1e-3", "train.seed=7", "env.scenario_kwargs.n_agents=5",
                       "model.hidden_sizes=[32, 32]", "train.target_return=null"])
    assert cfg.train.lr == pytest.approx(1e-3)
    assert cfg.train.seed == 7
    assert cfg.env.scenario_kwargs["n_agents"] == 5
    assert cfg.model.hidden_sizes == [32, 32]
    assert cfg.train.target_return is None


def test_values_take_their_fields_types():
    cfg = config_from_dict({"train": {"lr": "3e-4", "num_epochs": 4.0}, "loss": {"clip_value": 1},
                            "per_group": {"agents": {"loss": {"gamma": 1}}}})
    assert cfg.train.lr == 3e-4 and isinstance(cfg.train.lr, float)  # PyYAML reads 3e-4 as a string
    assert cfg.train.num_epochs == 4 and isinstance(cfg.train.num_epochs, int)
    assert cfg.loss.clip_value == 1.0 and isinstance(cfg.loss.clip_value, float)
    assert cfg.per_group["agents"].loss == {"gamma": 1.0}


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
    (["env.scenario.x=1"], ["'scenario' is not a section"]),
    (["per_group.agents.model={share_param: false}"], ["unknown key 'per_group.agents.model.share_param'"]),
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


def test_a_key_given_twice_is_an_error(tmp_path):
    nested = tmp_path / "nested.yaml"
    nested.write_text("train:\n  lr: 1e-3\n  lr: 1e-4\n")
    with pytest.raises(ConfigError, match="key 'lr' appears twice in one mapping"):
        load_config(nested)


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


def test_a_config_error_loads_no_torch():
    """Config loading imports no torch: `--help` and bad configs answer at once."""
    code = ("import sys; from torchrl_mappo.config import load_config, ConfigError\n"
            "try:\n    load_config('configs/vmas_navigation.yaml', ['train.lr=-1'])\n"
            "except ConfigError:\n    pass\n"
            "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
