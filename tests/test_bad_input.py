"""The bad-input table: each case is one clear line on stderr, exit code 2, no traceback,
and nothing changes on disk: every file in the runs folder (a finished run, a user's own
folder, checkpoints, configs) is byte-identical afterwards and no file or folder is added."""
import hashlib
import subprocess
import sys

import pytest
import torch

from conftest import REPO
from torchrl_mappo.cli import main

NAV = str(REPO / "configs/vmas_navigation.yaml")
CUSTOM = str(REPO / "configs/custom_env.yaml")
BROKEN = str(REPO / "tests/broken_envs.py")
BATTLE = str(REPO / "configs/magent_battle.yaml")
SWAP = ["per_group.blue.policy=pool", "per_group.blue.pool_swap_sides=0.5"]
TINY = ["env.num_envs=4", "train.frames_per_batch=400", "train.total_frames=400", "train.minibatch_size=200",
        "train.num_epochs=1", "model.hidden_sizes=[16]", "run.progress_bar=false"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A real finished run 'keep' (and its files) that no bad input may touch."""
    root = tmp_path_factory.mktemp("runs")
    assert main(["train", NAV, f"run.dir={root}", "run.name=keep", *TINY]) == 0
    ckpt = root / "keep" / "checkpoint.pt"
    (root / "corrupt.pt").write_bytes(b"\x80\x04garbage" * 50)
    data = ckpt.read_bytes()
    (root / "truncated.pt").write_bytes(data[: len(data) // 2])
    torch.save({"weights": torch.zeros(3)}, root / "foreign.pt")
    old = torch.load(ckpt, weights_only=False)
    old["format"] = 1  # written before the losses stopped being functionalized
    torch.save(old, root / "format1.pt")
    (root / "bad.yaml").write_text("train: {lr: [1, 2\n")
    (root / "list.yaml").write_text("- 1\n- 2\n")
    (root / "empty_team.yaml").write_text("env:\n  group_map:\n    red: []\n")
    (root / "nometrics").mkdir()
    (root / "user").mkdir()  # a folder of the user's own, in the runs folder
    (root / "user" / "notes.txt").write_text("not made by torchrl_mappo")
    (root / "dup.yaml").write_text("train:\n  lr: 1e-3\ntrain:\n  seed: 3\n")
    (root / "next_team.yaml").write_text("env:\n  group_map:\n    next: [agent_0, agent_1, agent_2]\n")
    (root / "random_only.yaml").write_text("per_group:\n  agents: {policy: random}\ntrain: {target_return: 0.5}\n")
    (root / "noreturn").mkdir()
    (root / "noreturn" / "metrics.csv").write_text("iteration,frames,agents/episode_return\n1,400,\n2,800,\n")
    return root


def digest(folder):
    """Every file and folder below ``folder`` (hidden ones too), with the files' contents."""
    return {p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train(*overrides):
    return lambda root: ["train", NAV, f"run.dir={root}", *overrides]


CASES = [
    # --- config: keys, types, ranges
    ("unknown key", train("train.lerning_rate=1"), "unknown key 'train.lerning_rate'"),
    ("unknown key typo", train("model.hiden_sizes=[8]"), "did you mean 'model.hidden_sizes'"),
    ("unknown section", train("trainer.lr=1"), "unknown section 'trainer'"),
    ("wrong type int", train("train.num_epochs=ten"), "train.num_epochs: expected an integer"),
    ("wrong type bool", train("model.layer_norm=3"), "model.layer_norm: expected true or false"),
    ("wrong type list", train("model.hidden_sizes=wide"), "model.hidden_sizes: expected a list"),
    ("negative size", train("model.hidden_sizes=[-8]"), "every layer size must be positive"),
    ("zero minibatch", train("train.minibatch_size=0"), "train.minibatch_size=0: must be a positive integer"),
    ("minibatch > batch", train("train.minibatch_size=7000"), "must not exceed train.frames_per_batch"),
    ("zero envs", train("env.num_envs=0"), "env.num_envs=0: must be a positive integer"),
    ("batch not multiple of envs", train("train.frames_per_batch=6010"), "multiple of env.num_envs"),
    ("budget not multiple of batch", train("train.total_frames=7000"), "multiple of train.frames_per_batch"),
    ("negative lr", train("train.lr=-0.1"), "train.lr=-0.1: must be a positive number"),
    ("gamma out of range", train("loss.gamma=2"), "loss.gamma=2.0: must be in (0, 1]"),
    ("zero clip", train("loss.clip_epsilon=0"), "loss.clip_epsilon"),
    ("activation typo", train("model.activation=rleu"), "did you mean 'relu'"),
    ("critic type", train("loss.loss_critic_type=mse"), "loss.loss_critic_type"),
    ("critic_lr alone", train("train.critic_lr=1e-3"), "needs train.separate_optimizers: true"),
    ("unknown env family", train("env.family=gym"), "env.family"),
    ("unknown scenario", train("env.scenario=navigaton"), "did you mean 'navigation'"),
    ("unknown scenario kwarg", train("env.scenario_kwargs.n_agnets=3"), "env.scenario_kwargs"),
    ("group not in env", train("per_group.robots.lr=1e-3", *TINY), "per_group.robots: the env has no group"),
    ("empty team", lambda r: ["train", str(r / "empty_team.yaml"), f"run.dir={r}"], "env.group_map.red: give a non-empty list"),
    ("agent in two teams", train("env.group_map={a: [agent_0, agent_1], b: [agent_1, agent_2]}"), "is in two teams"),
    ("unknown agent", train("env.group_map={a: [agent_0, agent_9], b: [agent_1, agent_2]}", *TINY), "unknown agent(s) ['agent_9']"),
    ("agent left out", train("env.group_map={a: [agent_0], b: [agent_1]}", *TINY), "are in no team"),
    ("reward sharing mode", train("env.reward_sharing.agents=everyone"), "env.reward_sharing.agents"),
    ("sync collector with workers", train("collector.workers=2"), "use collector.kind: multi_sync"),
    ("workers do not split the envs", train("collector.kind=multi_sync", "collector.workers=7"),
     "make env.num_envs a multiple of collector.workers"),
    ("state critic without state", train("model.critic_input=state", *TINY), "no global state"),
    ("magent continuous", train("env.family=magent", "env.scenario=battle_v4"), "MAgent2 has only discrete actions"),
    # --- combinations that would be accepted and do nothing (issue 19)
    ("local critic with a critic input", train("model.centralized=false", "model.critic_input=all_obs"),
     "model.critic_input='all_obs': model.centralized: false gives a local critic"),
    ("agent id twice", train("model.critic_input=agent_specific", "model.critic_agent_id=true"),
     "already appends the agent id"),
    ("critic id without sharing", train("model.critic_agent_id=true", "model.share_params=false"),
     "model.critic_agent_id=True: with model.share_params: false every agent has its own critic"),
    ("actor id without sharing", train("model.actor_agent_id=true", "model.share_params=false"),
     "model.actor_agent_id=True: with model.share_params: false every agent has its own actor"),
    ("eval every zero", train("train.eval_every=0"), "train.eval_every=0: must be a positive number of frames"),
    ("eval episodes zero", train("train.eval_every=3000", "train.eval_episodes=0"),
     "train.eval_episodes=0: must be >= 1"),
    ("target kl with one epoch", train("train.target_kl=0.02", "train.num_epochs=1"),
     "train.target_kl=0.02: it stops the epochs after one whose KL exceeds it"),
    ("random group with settings", train("per_group.agents.policy=random", "per_group.agents.lr=1e-3"),
     "per_group.agents.lr=0.001: the group acts at random and never trains"),
    ("log-std schedule, discrete actions", train("env.continuous_actions=false", "train.log_std_end=-1", *TINY),
     "vmas_navigation.yaml: train.log_std_end=-1.0: group(s) ['agents'] have no log-std"),
    ("initial log-std, discrete actions", train("env.continuous_actions=false", "model.init_log_std=-1", *TINY),
     "model.init_log_std=-1.0: group 'agents' has discrete actions"),
    ("state-dependent std, discrete actions",
     train("env.continuous_actions=false", "model.state_dependent_std=true", *TINY),
     "model.state_dependent_std: true: group 'agents' has discrete actions"),
    ("state-dependent std with a log-std schedule", train("model.state_dependent_std=true", "train.log_std_end=-1"),
     "train.log_std_end=-1.0: a state-dependent std (model.state_dependent_std: true) is an output of the network"),
    # --- recurrent models and the memory task (issue 14)
    ("recurrent kind", train("model.recurrent=rnn"), "model.recurrent: 'rnn' is not allowed; use one of 'none', 'gru', 'lstm'"),
    ("critic recurrent kind", train("model.critic_recurrent=yes"), "model.critic_recurrent: expected one of"),
    ("zero recurrent hidden", train("model.recurrent_hidden=0"), "model.recurrent_hidden=0: must be a positive integer"),
    ("zero recurrent layers", train("model.recurrent_layers=0"), "model.recurrent_layers=0: must be a positive integer"),
    ("zero chunk length", train("train.chunk_length=0"), "train.chunk_length=0: must be a positive integer"),
    ("chunk does not split the steps", train("model.recurrent=gru"),
     "train.chunk_length=10: a recurrent model trains on chunks of it, which must divide the 25 steps"),
    ("per-group recurrent, chunk does not split", train("per_group.agents.model={recurrent: gru}"),
     "train.chunk_length=10: a recurrent model trains on chunks of it"),
    ("minibatch not whole chunks", train("model.recurrent=gru", "train.chunk_length=5", "train.minibatch_size=1001"),
     "train.minibatch_size=1001: with a recurrent model a minibatch is whole chunks"),
    ("zero memory steps", train("env.memory_steps=0", "env.memory_features=[4]"), "env.memory_steps=0: must be a positive"),
    ("memory steps, no features", train("env.memory_steps=5"), "env.memory_steps=5: hides env.memory_features, which is empty"),
    ("memory features, no steps", train("env.memory_features=[4]"), "env.memory_features=[4]: are hidden after env.memory_steps"),
    ("memory feature twice", train("env.memory_steps=5", "env.memory_features=[4, 4]"), "lists a feature twice"),
    ("memory feature out of range", train("env.memory_steps=5", "env.memory_features=[40]", *TINY),
     "env.memory_features=[40]: group 'agents' observes 18 features, so [40] do not exist"),
    # --- attention critic (issue 15)
    ("attention critic, local", train("model.critic=attention", "model.centralized=false"),
     "model.critic='attention': the attention critic attends over the group's agents"),
    ("attention heads do not divide", train("model.critic=attention", "model.hidden_sizes=[64,64]", "model.attention_heads=3"),
     "model.attention_heads=3: must be >= 1 and divide the embedding width hidden_sizes[-1]=64"),
    ("attention with joint actions", train("model.critic=attention", "model.critic_joint_actions=true"),
     "model.critic_joint_actions=True: model.critic: attention does not use it"),
    ("attention with per-agent params", train("model.critic=attention", "model.share_params=false"),
     "model.share_params=False: model.critic: attention is one network for any number of agents"),
    ("attention critic with memory", train("model.critic=attention", "model.recurrent=gru", "train.chunk_length=5"),
     "model.critic='attention': the attention critic has no memory"),
    ("curriculum with a recurrent model", train("model.recurrent=gru", "train.chunk_length=5",
                                                "train.curriculum=[{overrides: {env.max_steps: 50}, until: "
                                                "{frames: 3000}}, {overrides: {env.max_steps: 60}}]"),
     "train.curriculum: a stage change rebuilds the env and the collector"),
    # --- communicating actors and the hidden-information task (issue 15)
    ("communication kind", train("model.communication=radio"), "model.communication: 'radio' is not allowed"),
    ("communication with per-agent params", train("model.communication=attention", "model.share_params=false"),
     "model.share_params=False: model.communication: attention is one network shared by the group's agents"),
    ("communication with a recurrent actor", train("model.communication=attention", "model.recurrent=gru",
                                                   "train.chunk_length=5"),
     "model.recurrent='gru': model.communication: attention has no memory"),
    ("communication with agent ids", train("model.communication=attention", "model.actor_agent_id=true"),
     "model.actor_agent_id=True: model.communication: attention tells agents apart by their messages"),
    ("communication heads do not divide", train("model.communication=attention", "model.hidden_sizes=[64,64]", "model.attention_heads=5"),
     "model.attention_heads=5: must be >= 1 and divide the embedding width hidden_sizes[-1]=64"),
    ("private feature twice", train("env.private_features=[4, 4]"), "env.private_features=[4, 4]: lists a feature twice"),
    ("private to nobody", train("env.private_features=[4]", "env.private_to=0"),
     "env.private_to=0: must be a positive number of agents"),
    ("private feature out of range", train("env.private_features=[40]", *TINY),
     "env.private_features=[40]: group 'agents' observes 18 features, so [40] do not exist"),
    # --- curriculum (issue 15)
    ("curriculum stage changes the model", train("train.curriculum=[{overrides: {model.critic: attention}, until: "
                                                 "{frames: 3000}}, {overrides: {env.max_steps: 50}}]"),
     "train.curriculum[0].overrides.model.critic: a stage changes env settings only"),
    ("curriculum of one stage", train("train.curriculum=[{overrides: {env.max_steps: 50}}]"),
     "one stage is no curriculum"),
    ("curriculum stage without until", train("train.curriculum=[{overrides: {env.max_steps: 50}}, "
                                             "{overrides: {env.max_steps: 60}}]"), "train.curriculum[0].until: give"),
    ("curriculum with a concat critic", train(*TINY, "train.curriculum=[{overrides: {env.scenario_kwargs.n_agents: 2}, "
                                              "until: {frames: 400}}, {overrides: {env.scenario_kwargs.n_agents: 4}}]",
                                              "train.total_frames=800"),
     "train.curriculum[1]: the first stage's critic of group 'agents' cannot run in this env"),
    ("curriculum stage kwarg typo", train(*TINY, "train.curriculum=[{overrides: {env.scenario_kwargs.n_agnts: 2}, "
                                          "until: {frames: 400}}, {overrides: {env.max_steps: 50}}]",
                                          "train.total_frames=800"), "n_agnts"),
    ("existing run name", train("run.name=keep"), "already exists"),
    ("bad yaml", lambda r: ["train", str(r / "bad.yaml")], "not valid YAML at line"),
    ("yaml not a mapping", lambda r: ["train", str(r / "list.yaml")], "top level must be a mapping"),
    # --- CLI
    ("unknown command", lambda r: ["fly", NAV], "invalid choice: 'fly'"),
    ("missing file", lambda r: ["train", str(r / "nope.yaml")], "config file not found"),
    ("override without =", train("train.lr"), "expected 'section.field=value'"),
    ("override without section", train("lr=1"), "must name a section and a field, e.g. 'train.seed=1'; "
                                                "did you mean 'train.lr=1'?"),
    ("override of a whole section", train("model={hidden_sizes: [8, 8], layer_norm: false}"),
     "one override per field: 'model.hidden_sizes=[8, 8]' model.layer_norm=false"),
    ("override of a whole per_group", train("per_group={red: {policy: random}}"),
     "one override per field: per_group.red.policy=random"),
    ("no config", lambda r: ["train"], "give a config file"),
    ("bad flag", lambda r: ["train", NAV, "--fast"], "unrecognized arguments: --fast"),
    ("eval zero episodes", lambda r: ["eval", str(r / "keep"), "--episodes", "0"], "--episodes=0"),
    ("eval bad video name", lambda r: ["eval", str(r / "keep"), "--video", str(r / "x.avi")], "use a .gif or .mp4"),
    ("plot without metrics", lambda r: ["plot", str(r / "nometrics")], "no metrics.csv"),
    # --- checkpoints
    ("corrupt checkpoint", lambda r: ["eval", str(r / "corrupt.pt")], "not a readable checkpoint"),
    ("truncated checkpoint", lambda r: ["eval", str(r / "truncated.pt")], "not a readable checkpoint"),
    ("foreign checkpoint", lambda r: ["eval", str(r / "foreign.pt")], "not a torchrl_mappo checkpoint"),
    ("old checkpoint format", lambda r: ["eval", str(r / "format1.pt")], "checkpoint format 1, this torchrl_mappo reads format 2"),
    ("resume old format", lambda r: ["train", "--resume", str(r / "format1.pt")], "checkpoint format 1"),
    ("resume missing run", lambda r: ["train", "--resume", str(r / "ghost")], "no checkpoint at"),
    ("resume corrupt", lambda r: ["train", "--resume", str(r / "truncated.pt")], "not a readable checkpoint"),
    ("resume wrong config", lambda r: ["train", "--resume", str(r / "keep"), "train.total_frames=800",
                                       "model.hidden_sizes=[32]"], "but this config builds"),
    ("resume finished run", lambda r: ["train", "--resume", str(r / "keep")], "already used 400 frames"),
    ("resume with a config file", lambda r: ["train", NAV, "--resume", str(r / "keep")], "the config comes from the run"),
    # --- run names and overwrite: never delete what the package did not make (issue 10)
    ("empty run name + overwrite", train("run.name=''", "run.overwrite=true"), "must be one plain directory name"),
    ("run name .. + overwrite", train("run.name=..", "run.overwrite=true"), "must be one plain directory name"),
    ("absolute run name + overwrite", lambda r: ["train", NAV, f"run.dir={r}", f"run.name={r / 'keep'}",
                                                 "run.overwrite=true"], "must be one plain directory name"),
    ("run name with a slash", train("run.name=a/b"), "must be one plain directory name"),
    ("hidden run name", train("run.name=.keep"), "must be one plain directory name"),
    ("overwrite a user's folder", train("run.name=user", "run.overwrite=true", *TINY), "was not made by torchrl_mappo"),
    ("logger that cannot start", train("run.logger=wandb", "run.logger_options={log_dir: x}", *TINY),
     "run.logger=wandb: could not start"),
    ("run.dir is a file", lambda r: ["train", NAV, f"run.dir={r / 'bad.yaml'}", *TINY], "is a file"),
    # --- non-finite numbers, wherever they sit
    ("inf lr", train("train.lr=.inf"), "train.lr: inf is not a finite number"),
    ("inf group lr", train("per_group.agents.lr=.inf"), "per_group.agents.lr: inf is not a finite number"),
    ("nan init log std", train("model.init_log_std=.nan"), "model.init_log_std: nan is not a finite number"),
    ("inf entropy", train("loss.entropy_coeff=.inf"), "loss.entropy_coeff: inf is not a finite number"),
    ("inf group loss", train("per_group.agents.loss={gamma: .inf}"), "per_group.agents.loss.gamma: inf"),
    ("nan scenario kwarg", train("env.scenario_kwargs.lidar_range=.nan"), "env.scenario_kwargs.lidar_range: nan"),
    ("nan logger option", train("run.logger_options={x: [1, .nan]}"), "run.logger_options.x[1]: nan"),
    # --- what used to raise a traceback or crash
    ("cuda on a cpu torch", train("train.device=cuda"), "sees no CUDA device"),
    ("negative seed", train("train.seed=-1"), "train.seed=-1: must be in [0, 2**32)"),
    ("seed too large", train("train.seed=4294967296"), "must be in [0, 2**32)"),
    ("absurd thread count", train("train.num_threads=100000"), "a number between 1 and the number of CPU cores"),
    ("group named next", lambda r: ["train", str(r / "next_team.yaml"), f"run.dir={r}"], "group name 'next' cannot be used"),
    ("group name with a slash", train("env.group_map={a/b: [agent_0, agent_1, agent_2]}"), "group name 'a/b'"),
    ("zero agents", train("env.scenario_kwargs.n_agents=0", *TINY), "'n_agents': 0, "),
    ("env whose own group is a TorchRL key", lambda r: ["train", str(REPO / "configs/mpe_simple_spread.yaml"),
                                                       f"run.dir={r}", "env.scenario=collect_treasure_v1",
                                                       "env.scenario_kwargs={}"],
     "name the teams yourself, e.g. env.group_map={collectors: [collector_0, "),
    ("env that fails on the collector's first reset", lambda r: ["train", CUSTOM, f"run.dir={r}",
                                                                 f"env.make={BROKEN}:collector_key"],
     "failed on its first reset"),
    ("duplicate yaml keys", lambda r: ["train", str(r / "dup.yaml"), f"run.dir={r}"], "key 'train' appears twice"),
    ("every group random", lambda r: ["train", str(r / "random_only.yaml"), f"run.dir={r}", *TINY],
     "nothing would be trained"),
    ("unreachable ray head", lambda r: ["train", NAV, f"run.dir={r}", *TINY, "collector.kind=ray",
                                        f"collector.ray_address=127.0.0.1:{free_port()}"], "no Ray head answers"),
    ("video to a missing folder", lambda r: ["eval", str(r / "keep"), "--video", str(r / "nodir" / "v.gif")],
     "does not exist"),
    ("video to a read-only folder", lambda r: ["eval", str(r / "keep"), "--video", "/proc/v.gif"], "not writable"),
    ("eval changes the model", lambda r: ["eval", str(r / "keep"), "model.hidden_sizes=[8]"],
     "eval model.hidden_sizes=[8]: only env settings can change at evaluation"),
    ("eval changes num_envs", lambda r: ["eval", str(r / "keep"), "env.num_envs=3"], "--num-envs"),
    ("eval transfer, observation size", lambda r: ["eval", str(r / "keep"), "env.scenario_kwargs.observe_all_goals=true"],
     "the trained actor of group 'agents' cannot run in this env: the observations"),
    ("eval transfer, bad kwarg", lambda r: ["eval", str(r / "keep"), "env.scenario_kwargs.n_agnts=4"],
     "env.scenario_kwargs"),
    ("eval zero envs", lambda r: ["eval", str(r / "keep"), "--num-envs", "0"], "--num-envs=0"),
    ("eval bad seed", lambda r: ["eval", str(r / "keep"), "--seed", "-3"], "--seed=-3"),
    ("plot to a text file", lambda r: ["plot", str(r / "keep"), "--out", str(r / "x.txt")], "give an image file name"),
    ("plot without a suffix", lambda r: ["plot", str(r / "keep"), "--out", str(r / "x")], "give an image file name"),
    ("plot with no finished episode", lambda r: ["plot", str(r / "noreturn")], "no episode has finished yet"),
    # --- bring your own env (issue 13)
    ("torchrl family without make", train("env.family=torchrl", "env.scenario_kwargs={}"),
     "env.make=None: env.family: torchrl needs 'package.module:callable'"),
    ("make without a callable", train("env.family=torchrl", "env.make=my_envs", "env.scenario_kwargs={}"),
     "env.make='my_envs': env.family: torchrl needs"),
    ("make with another family", train("env.make=my_envs:make"), "env.make='my_envs:make': only used by env.family: torchrl"),
    ("kwargs with another family", train("env.kwargs.n=1"), "env.kwargs={'n': 1}: only used by env.family: torchrl"),
    ("scenario_kwargs with torchrl", train("env.family=torchrl", "env.make=my_envs:make"),
     "env.family: torchrl passes env.kwargs to the callable; move them to env.kwargs"),
    ("make: missing file", lambda r: ["train", CUSTOM, f"run.dir={r}", "env.make=nope/none.py:make"], "no file 'nope/none.py'"),
    ("make: missing module", lambda r: ["train", CUSTOM, f"run.dir={r}", "env.make=no_such_pkg.envs:make"],
     "cannot import 'no_such_pkg.envs'"),
    ("make: no such callable", lambda r: ["train", CUSTOM, f"run.dir={r}", f"env.make={BROKEN}:nothing"],
     "has no callable 'nothing'"),
    ("make: not an env", lambda r: ["train", CUSTOM, f"run.dir={r}", f"env.make={BROKEN}:not_an_env"],
     "returned a dict, not a TorchRL EnvBase"),
    ("make: kwargs the callable rejects", lambda r: ["train", CUSTOM, f"run.dir={r}", "env.kwargs.colour=1"],
     "env.kwargs: "),
    ("env with a wrong reward shape", lambda r: ["train", CUSTOM, f"run.dir={r}", f"env.make={BROKEN}:wrong_reward_shape"],
     "MAPPO needs one reward per agent"),
    ("env without the group's observation", lambda r: ["train", CUSTOM, f"run.dir={r}",
                                                        f"env.make={BROKEN}:missing_group_key"], "(found ['obs'])"),
    ("env with an unbatched spec", lambda r: ["train", CUSTOM, f"run.dir={r}", f"env.make={BROKEN}:unbatched_spec"],
     "an unbatched spec"),
    ("env with NaN observations", lambda r: ["train", CUSTOM, f"run.dir={r}", f"env.make={BROKEN}:nan_observations"],
     "env check: non-finite numbers"),
    ("check-env on a broken env", lambda r: ["check-env", CUSTOM, f"env.make={BROKEN}:nan_observations"],
     "1 problem(s), listed above"),
    ("pettingzoo module not found", train("env.family=pettingzoo", "env.scenario=pettingzoo.classic.nope_v0",
                                          "env.scenario_kwargs={}"), "pettingzoo.classic has no module 'nope_v0'"),
    ("pettingzoo module renamed", train("env.family=pettingzoo", "env.scenario=pettingzoo.butterfly.knights_archers_zombies_v10",
                                        "env.scenario_kwargs={}"), "did you mean 'knights_archers_zombies_v11'"),
    ("pettingzoo module without an env", train("env.family=pettingzoo", "env.scenario=pettingzoo.utils",
                                               "env.scenario_kwargs={}"), "neither parallel_env() nor env()"),
    ("unknown gymnasium id", train("env.family=gymnasium_ma", "env.scenario=Foraging-8x8-2p-2f-coop-v9"),
     "did you mean 'Foraging-8x8-2p-2f-coop-v3'"),
    ("gymnasium_ma package missing", train("env.family=gymnasium_ma", "env.scenario=notapackage:Foo-v0"),
     "pip install 'torchrl_mappo[epymarl]'"),
    ("gymnasium_ma with teams", train("env.family=gymnasium_ma", "env.scenario=rware-tiny-2ag-v2", "env.scenario_kwargs={}",
                                      "env.group_map=per_agent", *TINY), "gymnasium_ma envs have one group 'agents'"),
    # --- self-play: a pool whose learner also plays the other side
    ("pool swap share", lambda r: ["train", BATTLE, f"run.dir={r}", "per_group.blue.policy=pool",
                                   "per_group.blue.pool_swap_sides=1.5"],
     "per_group.blue.pool_swap_sides=1.5: must be a share of batches between 0 and 1"),
    ("pool swap without a pool", lambda r: ["train", BATTLE, f"run.dir={r}", "per_group.blue.pool_swap_sides=0.5"],
     "per_group.blue.pool_swap_sides=0.5: only used with per_group.blue.policy: pool"),
    ("pool swap, global-state critic", lambda r: ["train", BATTLE, f"run.dir={r}", *SWAP],
     "pool_swap_sides=0.5: the critic reads the global state, which is the same for both sides"),
    ("pool swap, multi_sync", lambda r: ["train", BATTLE, f"run.dir={r}", *SWAP, "model.critic_input=concat_obs",
                                         "collector.kind=multi_sync", "collector.workers=2"],
     "use collector.kind: sync (not 'multi_sync') or pool_swap_sides: 0"),
    # --- resume: overrides that cannot apply
    ("resume renames the run", lambda r: ["train", "--resume", str(r / "keep"), "run.name=other"],
     "run.name cannot change when resuming"),
    ("resume with a new seed", lambda r: ["train", "--resume", str(r / "keep"), "train.seed=3"],
     "train.seed cannot change when resuming"),
    ("resume to another run.dir", lambda r: ["train", "--resume", str(r / "keep"), f"run.dir={r / 'x'}"],
     "run.dir cannot change"),
]


@pytest.mark.parametrize("name,argv,words", CASES, ids=[c[0] for c in CASES])
def test_bad_input(runs, capsys, name, argv, words):
    before = digest(runs)
    code = main(argv(runs))
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert words in err, err
    assert "Traceback" not in err
    assert digest(runs) == before


def test_the_table_is_big_enough():
    assert len(CASES) >= 80


@pytest.mark.parametrize("argv", [["train", NAV, "train.lr=abc"], ["eval", "/nonexistent"], ["fly"]])
def test_real_entry_point(argv):
    proc = subprocess.run([sys.executable, "-m", "torchrl_mappo", *argv], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1
