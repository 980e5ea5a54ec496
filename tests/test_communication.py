"""Communicating actors (``model.communication: attention``) and the hidden-information task
(``env.private_features``): equivariance, any agent count, masks, messages, learning."""
import math

import pytest
import torch
from tensordict import TensorDict
from torchrl.data import Binary, Bounded, Categorical, Composite, Unbounded
from torchrl.envs.utils import ExplorationType, set_exploration_type

from conftest import REPO, small_cfg
from torchrl_mappo import keys, make_actor, make_env
from torchrl_mappo.config import ModelConfig, load_config
from torchrl_mappo.modules.attention import CommunicatingNet
from torchrl_mappo.transfer import first_mismatch

OBS_DIM, ACT_DIM, N_ACTIONS = 6, 2, 5
COMM = ModelConfig(hidden_sizes=[16, 16], communication="attention", attention_heads=2)
G = "agents"


class _Env:
    """What make_actor reads from an env: one group of ``n`` agents, actions, maybe a live-agent mask."""

    def __init__(self, n=3, mask=False, discrete=False):
        self.group_map = {G: [f"{G}_{i}" for i in range(n)]}
        entries = {"observation": Unbounded(shape=(n, OBS_DIM))}
        if mask:
            entries["mask"] = Binary(n=n, shape=(n,), dtype=torch.bool)
        self.observation_spec_unbatched = self.observation_spec = Composite({G: Composite(entries, shape=(n,))})
        action = (Categorical(N_ACTIONS, shape=(n,)) if discrete
                  else Bounded(-1.0, 1.0, shape=(n, ACT_DIM)))
        self.full_action_spec_unbatched = Composite({G: Composite({"action": action}, shape=(n,))})


def data(n, batch=4, mask=None):
    td = TensorDict({keys.observation(G): torch.randn(batch, n, OBS_DIM)}, batch_size=[batch])
    if mask is not None:
        td[keys.mask(G)] = mask
    return td


def act(actor, td, key=None):
    """The deterministic action (the squashed mean; the logits for a discrete policy)."""
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        out = actor(td.clone())
    return out[key or keys.action(G)]


def test_permuting_agents_permutes_actions():
    actor = make_actor(_Env(5), G, COMM)
    td = data(5)
    perm = torch.tensor([3, 0, 4, 1, 2])
    shuffled = td.clone()
    shuffled[keys.observation(G)] = td[keys.observation(G)][:, perm]
    a = act(actor, td)
    assert a.shape == (4, 5, ACT_DIM)
    torch.testing.assert_close(act(actor, shuffled), a[:, perm])


def test_messages_reach_the_other_agents_and_carry_gradients():
    """An agent's action depends on the others' observations (through their messages), within the step;
    without communication it does not."""
    td = data(3)
    other = td.clone()
    other[keys.observation(G)][:, 2] += 1.0  # only agent 2 observes something else
    talking = make_actor(_Env(3), G, COMM)
    assert not torch.allclose(act(talking, td)[:, 0], act(talking, other)[:, 0])
    silent = make_actor(_Env(3), G, ModelConfig(hidden_sizes=[16, 16]))
    torch.testing.assert_close(act(silent, td)[:, 0], act(silent, other)[:, 0])

    net = CommunicatingNet((OBS_DIM,), ACT_DIM, COMM)
    obs = torch.randn(4, 3, OBS_DIM, requires_grad=True)
    net(obs)[:, 0].sum().backward()  # agent 0's output ...
    assert obs.grad[:, 1:].abs().sum() > 0  # ... trains the senders' encoder through their messages


def test_one_actor_any_agent_count():
    """The same weights run with 2, 3 or 9 agents; the actor built for another count has the same shapes
    (what zero-shot transfer checks)."""
    actor = make_actor(_Env(3), G, COMM)
    for n in (2, 9):
        assert act(actor, data(n)).shape == (4, n, ACT_DIM)
        assert first_mismatch(actor.state_dict(), make_actor(_Env(n), G, COMM)) is None
    single = data(1)
    assert torch.isfinite(act(actor, single)).all()  # a lone agent attends over its own message


def test_dead_agents_send_nothing():
    actor = make_actor(_Env(4, mask=True), G, COMM)
    assert keys.mask(G) in actor.in_keys
    alive = torch.tensor([True, True, False, False]).expand(4, 4)
    td = data(4, mask=alive)
    before = act(actor, td)
    td[keys.observation(G)][:, 2:] += 5.0  # only the dead change
    after = act(actor, td)
    torch.testing.assert_close(after[:, :2], before[:, :2])
    assert not torch.allclose(after[:, 2:], before[:, 2:])  # (they still act on their own observation)
    td[keys.mask(G)] = torch.zeros(4, 4, dtype=torch.bool)
    assert torch.isfinite(act(actor, td)).all()


def test_discrete_actions_and_time_batch():
    actor = make_actor(_Env(3, discrete=True), G, COMM)
    td = TensorDict({keys.observation(G): torch.randn(2, 7, 3, OBS_DIM)}, batch_size=[2, 7])
    out = actor(td)
    assert out[keys.logits(G)].shape == (2, 7, 3, N_ACTIONS)
    assert out[keys.action(G)].shape == (2, 7, 3)
    assert torch.isfinite(out[keys.action_log_prob(G)]).all()


def test_private_features_are_seen_by_the_first_agents_only():
    cfg = small_cfg(env={"private_features": [4, 5], "private_to": 2,
                         "scenario_kwargs": {"n_agents": 4, "collisions": False, "agents_with_same_goal": 4}})
    env = make_env(cfg.env, seed=0)
    td = env.reset()
    for obs in (td[keys.observation(G)], env.rand_step(td)[keys.NEXT][keys.observation(G)]):
        assert obs.shape == (4, 4, 6)
        assert (obs[:, 2:, 4:] == 0).all()  # agents 2 and 3 do not see the goal ...
        assert (obs[:, :2, 4:] != 0).all()  # ... agents 0 and 1 do
        assert (obs[:, :, :4] != 0).any(-1).all()  # everything else is left alone


@pytest.mark.slow
def test_communicating_actors_learn_the_hidden_goal():
    """Seeded hidden-goal navigation (configs/vmas_navigation_comm.yaml: 3 agents, one goal that only the first
    sees) with communicating actors: the mean of the last 3 finished batch returns at 45k frames is >= 0.8.
    Without messages the blind agents cannot know where the goal is: the same config with
    model.communication: none stays at 0.45-0.65 (3-batch means; single batches up to 0.77) up to 201k
    frames on 3 seeds (examples/results/any_agents/target4_comm.md); with them seed 0 is at 0.93 here."""
    from torchrl_mappo import Trainer

    cfg = load_config(REPO / "configs/vmas_navigation_comm.yaml", [
        "train.total_frames=45000", "train.seed=0", "run.progress_bar=false", "train.num_threads=1",
    ])
    history = Trainer.from_config(cfg).train()
    finished = [r["agents/episode_return"] for r in history if math.isfinite(r["agents/episode_return"])]
    assert len(finished) >= 5, finished
    assert sum(finished[-3:]) / 3 >= 0.8, finished


def test_each_group_talks_within_itself(tmp_path):
    """Two groups (examples/custom_env.py: continuous movers, discrete guides): each group's communicating
    actor trains end to end, and a group's actions do not depend on the other group's observations."""
    from torchrl_mappo import Trainer

    cfg = load_config(REPO / "configs/custom_env.yaml", [
        "model.communication=attention", "model.hidden_sizes=[16, 16]", "model.attention_heads=2",
        "env.num_envs=4", "train.frames_per_batch=100", "train.total_frames=200", "train.minibatch_size=50",
        "train.num_epochs=1", "run.progress_bar=false", f"run.dir={tmp_path}", "train.num_threads=1",
    ])
    trainer = Trainer.from_config(cfg)
    history = trainer.train()
    assert len(history) == 2 and all(math.isfinite(r["movers/loss_objective"]) for r in history)
    for group, actor in trainer.actors.items():
        assert actor.in_keys == [keys.observation(group)]  # its own group's observations only
