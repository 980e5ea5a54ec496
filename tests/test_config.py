"""The config schema (torchrl_mappo/config.py): defaults, one docstring per field, each
section's range checks, the rules parsed once (reward sharing, group_map, group names)."""
import ast
import dataclasses
import inspect

import pytest

from conftest import REPO
from torchrl_mappo import ConfigError, config, groups
from torchrl_mappo.cli import main
from torchrl_mappo.config import (
    CollectorConfig, Config, EnvConfig, GroupConfig, LossConfig, ModelConfig, RewardShare, RunConfig, TrainConfig,
    config_from_dict,
)

SECTIONS = (EnvConfig, ModelConfig, LossConfig, TrainConfig, RunConfig, CollectorConfig, GroupConfig)


def test_defaults_live_in_the_dataclasses():
    cfg = config_from_dict({})
    assert cfg.model.hidden_sizes == [256, 256] and cfg.model.layer_norm
    assert cfg.loss.clip_epsilon == 0.2 and cfg.loss.gamma == 0.99


def test_every_dataclass_field_has_a_docstring():
    """An attribute docstring right under each field says what it is and what it takes."""
    tree = [node for module in (config, groups) for node in ast.parse(inspect.getsource(module)).body]
    classes = [node for node in tree if isinstance(node, ast.ClassDef)
               and any(getattr(d, "id", getattr(getattr(d, "func", None), "id", None)) == "dataclass"
                       for d in node.decorator_list)]
    assert {c.name for c in classes} >= {cls.__name__ for cls in (*SECTIONS, Config, RewardShare)}
    for cls in classes:
        body = cls.body
        for i, node in enumerate(body):
            if isinstance(node, ast.AnnAssign):
                name = node.target.id
                nxt = body[i + 1] if i + 1 < len(body) else None
                assert isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) \
                    and isinstance(nxt.value.value, str) and nxt.value.value.strip(), \
                    f"{cls.name}.{name} has no docstring"


def test_readme_documents_every_config_field():
    readme = (REPO / "README.md").read_text()
    for cls in SECTIONS:
        for f in dataclasses.fields(cls):
            assert f"| `{f.name}` |" in readme, f"{cls.__name__}.{f.name} is missing from the README"


@pytest.mark.parametrize("section,where,message", [
    (EnvConfig(num_envs=0), "f: env", "f: env.num_envs=0: must be a positive integer"),
    (EnvConfig(family="magent"), "f: env", "f: env.continuous_actions=True: MAgent2 has only discrete actions"),
    (ModelConfig(hidden_sizes=[]), "f: model", "f: model.hidden_sizes=[]: give at least one layer size"),
    (LossConfig(gamma=1.5), "f: loss", "f: loss.gamma=1.5: must be in (0, 1]"),
    (LossConfig(clip_value=0.0), "f: per_group.a.loss", "f: per_group.a.loss.clip_value=0.0: must be > 0"),
    (RunConfig(name=".x"), "f: run", "f: run.name='.x': must be one plain directory name"),
    (RunConfig(keep_checkpoints=0), "f: run", "f: run.keep_checkpoints=0: must be >= 1"),
    (GroupConfig(lr=0.0), "f: per_group.a", "f: per_group.a.lr=0.0: must be a positive number"),
])
def test_each_section_checks_its_own_fields(section, where, message):
    with pytest.raises(ConfigError) as err:
        section.check(where)
    assert str(err.value).startswith(message), str(err.value)


def test_sections_that_need_the_env_section():
    env = EnvConfig(num_envs=6)
    with pytest.raises(ConfigError, match=r"f: train.frames_per_batch=6000: must be a multiple of env.num_envs=7"):
        TrainConfig().check("f: train", EnvConfig(num_envs=7))
    TrainConfig(frames_per_batch=60, minibatch_size=60, total_frames=120).check("f: train", env)
    with pytest.raises(ConfigError, match="make env.num_envs a multiple of collector.workers"):
        CollectorConfig(kind="multi_sync", workers=4).check("f: collector", env)


def test_per_group_model_and_loss_are_checked_under_their_own_names():
    with pytest.raises(ConfigError, match=r"^config: per_group.agents.model.hidden_sizes=\[0\]: every layer"):
        config_from_dict({"per_group": {"agents": {"model": {"hidden_sizes": [0]}}}})
    with pytest.raises(ConfigError, match=r"^config: per_group.agents.loss.gamma=3.0: must be in \(0, 1\]"):
        config_from_dict({"per_group": {"agents": {"loss": {"gamma": 3}}}})


@pytest.mark.parametrize("spec,share", [
    ("individual", RewardShare("individual", 0.0)),
    ("shared", RewardShare("shared", 1.0)),
    ({"mode": "mixed", "weight": 0.25}, RewardShare("mixed", 0.25)),
    (("mixed", 1), RewardShare("mixed", 1.0)),
])
def test_reward_sharing_is_parsed_once_into_a_share(spec, share):
    assert RewardShare.parse(spec, "x") == share
    assert EnvConfig(reward_sharing={"agents": spec}).reward_shares() == {"agents": share}


@pytest.mark.parametrize("spec,words", [
    ("everyone", "mode 'everyone' is not one of individual, shared, mixed"),
    ({"mode": "mixed"}, "mixed needs a weight in [0, 1]"),
    ({"mode": "mixed", "weight": True}, "mixed needs a weight in [0, 1]"),
    ({"mode": "shared", "weight": 0.5}, "a weight only applies to mode 'mixed'"),
    ({"weight": 0.5}, "give a mode"),
    (["mixed", 0.5], "give a mode"),
])
def test_reward_sharing_errors(spec, words):
    with pytest.raises(ConfigError) as err:
        EnvConfig(reward_sharing={"agents": spec}).check("f: env")
    assert str(err.value).startswith("f: env.reward_sharing.agents: ") and words in str(err.value)


def test_settings_keyed_by_group_must_name_env_groups():
    with pytest.raises(ConfigError, match="^per_group.agnets: the env has no group 'agnets'; did you mean 'agents'"):
        Config(per_group={"agnets": GroupConfig()}).check_groups(["agents"])
    with pytest.raises(ConfigError, match=r"^env.reward_sharing.robots: the env has no group 'robots' \(its groups"):
        EnvConfig(reward_sharing={"robots": "shared"}).check_groups(["agents"])
    Config(per_group={"agents": GroupConfig()}, env=EnvConfig(reward_sharing={"agents": "shared"})).check_groups(["agents"])


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
