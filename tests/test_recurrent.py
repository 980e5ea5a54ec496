"""Recurrent MAPPO (issue 14): the multi-agent GRU, hidden states through collectors and resets,
chunked training, GAE with a recurrent critic, checkpoints and eval, the memory-task transform."""
import dataclasses

import pytest
import torch
from conftest import small_cfg
from tensordict.nn import TensorDictSequential
from torchrl.collectors import Collector
from torchrl.modules import set_recurrent_mode

from torchrl_mappo import Trainer, keys, make_actor, make_critic, make_env, make_loss
from torchrl_mappo.config import ModelConfig
from torchrl_mappo.modules.recurrent import (
    CELLS,
    AgentGRU,
    AgentLSTM,
    RecurrentNet,
    is_recurrent,
    recurrent_env_transforms,
)
from torchrl_mappo.sequences import chunks, recurrent_values

G = "agents"
GRU = {"hidden_sizes": [16], "recurrent": "gru", "recurrent_hidden": 8}


def gru_cfg(model=None, **sections):
    """4 envs, episodes of 7 steps, batches of 20 steps per env: chunks of 10 cross episode starts."""
    base = {"env": {"num_envs": 4, "max_steps": 7},
            "train": {"frames_per_batch": 80, "total_frames": 160, "minibatch_size": 40, "chunk_length": 10}}
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return small_cfg(model={**GRU, **(model or {})}, **base)


def collect(cfg, share=True, perturb=True):
    """One collected batch ``[4, 20]`` with a recurrent actor and critic, and those nets; with
    ``perturb`` the weights then move (as an update would), so stored hidden states are stale."""
    env = make_env(cfg.env, seed=0)
    m = dataclasses.replace(cfg.model, share_params=share)
    actor, critic = make_actor(env, G, m), make_critic(env, G, m)
    policy = TensorDictSequential(actor, critic)
    collector = Collector(recurrent_env_transforms(env, policy), policy, frames_per_batch=80, total_frames=80)
    batch = next(iter(collector))
    collector.shutdown()
    if perturb:
        with torch.no_grad():
            for p in [*actor.parameters(), *critic.parameters()]:
                p.add_(0.3 * torch.randn_like(p))
    return batch, actor, critic, env


# --------------------------------------------------------------------------- the net
@pytest.mark.parametrize("share", [True, False], ids=["shared", "per_agent"])
def test_gru_shapes_params_and_agents_apart(share):
    n, d, h, layers = 3, 5, 4, 2
    gru = AgentGRU(d, h, layers, n, share_params=share)
    per_agent = 2 * (3 * h * d + 3 * h) + 2 * (3 * h * h + 3 * h) - 3 * h * d + 3 * h * h  # layer 2 reads h
    assert sum(p.numel() for p in gru.parameters()) == per_agent * (1 if share else n)
    x = torch.randn(6, 1, d).expand(6, n, d)  # every agent sees the same input
    out, hid = gru.step(x, torch.zeros(6, n, layers, h), torch.ones(6, 1, 1, 1))
    assert out.shape == (6, n, h) and hid.shape == (6, n, layers, h)
    same = torch.allclose(out[:, 0], out[:, 1])
    assert same == share  # per-agent parameters tell identical inputs apart


def copy_cell_weights(ours, ref, layers: int) -> None:
    """Give a torch ``nn.GRU``/``nn.LSTM`` the weights of our agent cell (shared parameters)."""
    with torch.no_grad():
        for i in range(layers):
            getattr(ref, f"weight_ih_l{i}").copy_(ours.ih[i].weight)
            getattr(ref, f"bias_ih_l{i}").copy_(ours.ih[i].bias)
            getattr(ref, f"weight_hh_l{i}").copy_(ours.hh[i].weight)
            getattr(ref, f"bias_hh_l{i}").copy_(ours.hh[i].bias)


def test_gru_equals_torch_gru():
    """Shared parameters: the same numbers as ``nn.GRU`` with the same weights."""
    gru = AgentGRU(5, 4, 2, 3, share_params=True)
    ref = torch.nn.GRU(5, 4, num_layers=2, batch_first=True)
    copy_cell_weights(gru, ref, 2)
    x = torch.randn(2, 6, 3, 5)  # [B, T, agents, in]
    h0 = torch.randn(2, 3, 2, 4)
    out, hid = gru.sequence(x, h0, torch.ones(2, 6, 1, 1))
    expected, h_last = ref(x.transpose(1, 2).reshape(6, 6, 5), h0.reshape(6, 2, 4).transpose(0, 1).contiguous())
    assert torch.allclose(out.transpose(1, 2).reshape(6, 6, 4), expected, atol=1e-6)
    assert torch.allclose(hid[:, -1].reshape(6, 2, 4).transpose(0, 1), h_last, atol=1e-6)


def test_lstm_equals_torch_lstm():
    """Shared parameters: the same numbers as ``nn.LSTM``; its state is ``[h, c]`` in one tensor."""
    lstm = AgentLSTM(5, 4, 2, 3, share_params=True)
    ref = torch.nn.LSTM(5, 4, num_layers=2, batch_first=True)
    copy_cell_weights(lstm, ref, 2)
    x = torch.randn(2, 6, 3, 5)  # [B, T, agents, in]
    s0 = torch.randn(2, 3, 2, 8)  # [B, agents, layers, h | c]
    out, states = lstm.sequence(x, s0, torch.ones(2, 6, 1, 1))
    h0, c0 = (part.reshape(6, 2, 4).transpose(0, 1).contiguous() for part in s0.split(4, -1))
    expected, (h_last, c_last) = ref(x.transpose(1, 2).reshape(6, 6, 5), (h0, c0))
    assert torch.allclose(out.transpose(1, 2).reshape(6, 6, 4), expected, atol=1e-6)
    last = states[:, -1].reshape(6, 2, 8).transpose(0, 1)
    assert torch.allclose(last[..., :4], h_last, atol=1e-6) and torch.allclose(last[..., 4:], c_last, atol=1e-6)
    # One step at a time gives the same as the sequence.
    s, steps = s0, []
    for t in range(6):
        y, s = lstm.step(x[:, t], s, torch.ones(2, 1, 1, 1))
        steps.append(y)
    assert torch.allclose(torch.stack(steps, 1), out, atol=1e-6) and torch.allclose(s, states[:, -1], atol=1e-6)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("share", [True, False], ids=["shared", "per_agent"])
def test_reset_per_env_and_per_agent_in_step_and_sequence_mode(share, cell):
    gru = CELLS[cell](5, 4, 1, 3, share_params=share)
    x, h = torch.randn(2, 3, 5), torch.randn(2, 3, 1, gru.state_size)
    zero = gru.step(x, torch.zeros_like(h), torch.ones(2, 1, 1, 1))[1]
    carried = gru.step(x, h, torch.ones(2, 1, 1, 1))[1]
    env_reset = gru.step(x, h, torch.tensor([1.0, 0.0]).view(2, 1, 1, 1))[1]  # env 1 restarts
    assert torch.equal(env_reset[0], carried[0]) and torch.equal(env_reset[1], zero[1])
    keep = torch.ones(2, 3, 1, 1)
    keep[0, 2] = 0  # only agent 2 of env 0 restarts
    agent_reset = gru.step(x, h, keep)[1]
    assert torch.equal(agent_reset[0, 2], zero[0, 2]) and torch.equal(agent_reset[0, :2], carried[0, :2])
    assert torch.equal(agent_reset[1], carried[1])
    # Sequence mode: a reset at step 2 of env 0 makes steps 2.. equal a fresh start there.
    xs = torch.randn(2, 4, 3, 5)
    keep = torch.ones(2, 4, 1, 1)
    keep[0, 2] = 0
    out, _ = gru.sequence(xs, h, keep)
    fresh, _ = gru.sequence(xs[:1, 2:], torch.zeros_like(h[:1]), torch.ones(1, 2, 1, 1))
    assert torch.allclose(out[0, 2:], fresh[0], atol=1e-6)
    unreset, _ = gru.sequence(xs, h, torch.ones(2, 4, 1, 1))
    assert torch.equal(out[1], unreset[1]) and not torch.allclose(out[0, 2:], unreset[0, 2:])


@pytest.mark.parametrize("continuous,cell", [(True, "gru"), (False, "gru"), (True, "lstm")],
                         ids=["continuous", "discrete", "lstm"])
@pytest.mark.parametrize("share", [True, False], ids=["shared", "per_agent"])
def test_recurrent_actor_and_critic_keys_and_shapes(continuous, share, cell):
    cfg = gru_cfg(env={"continuous_actions": continuous},
                  model={"share_params": share, "recurrent_layers": 2, "recurrent": cell})
    width = 8 if cell == "gru" else 16  # an LSTM stores [h, c]
    env = make_env(cfg.env, seed=0)
    actor, critic = make_actor(env, G, cfg.model), make_critic(env, G, cfg.model)
    assert keys.actor_hidden(G) in actor.in_keys and keys.IS_INIT in actor.in_keys
    assert (keys.NEXT, *keys.critic_hidden(G)) in critic.out_keys
    env = recurrent_env_transforms(env, TensorDictSequential(actor, critic))
    td = env.rollout(3, TensorDictSequential(actor, critic), break_when_any_done=False)
    assert td[keys.actor_hidden(G)].shape == (4, 3, 3, 2, width)
    assert td[keys.critic_hidden(G)].shape == (4, 3, 3, 2, width)
    assert td[keys.state_value(G)].shape == (4, 3, 3, 1)
    # A shared critic on the global input keeps one value head per agent: values differ by agent.
    assert not torch.allclose(td[keys.state_value(G)][..., 0, :], td[keys.state_value(G)][..., 1, :])


def test_feed_forward_model_is_unchanged():
    env = make_env(small_cfg().env, seed=0)
    actor = make_actor(env, G, ModelConfig(hidden_sizes=[16]))
    assert not is_recurrent(actor) and keys.IS_INIT not in actor.in_keys
    assert recurrent_env_transforms(env, actor) is env and "is_init" not in env.observation_spec


# --------------------------------------------------------------------------- collection and resets
def test_collector_carries_hidden_and_resets_it_at_each_episode_start():
    batch, _, _, _ = collect(gru_cfg(), perturb=False)
    hidden, init = batch[keys.actor_hidden(G)], batch[keys.IS_INIT].squeeze(-1)
    assert init[:, 0].all() and init[:, 7].all() and init.sum() == 4 * 3  # episodes of 7 steps
    flat = hidden.flatten(-3)
    assert (flat[init] == 0).all() and (flat[~init].abs().sum(-1) > 0).all()
    # The hidden state a step starts from is the one the previous step wrote.
    nxt = batch[(keys.NEXT, *keys.actor_hidden(G))]
    cont = ~init[:, 1:]
    assert torch.equal(hidden[:, 1:][cont], nxt[:, :-1][cont])


def test_partial_reset_zeroes_only_that_envs_hidden_state():
    cfg = gru_cfg()
    env = make_env(cfg.env, seed=0)
    actor = make_actor(env, G, cfg.model)
    env = recurrent_env_transforms(env, actor)
    td = env.reset()
    for _ in range(3):
        td = env.step_mdp(env.step(actor(td)))
    before = td[keys.actor_hidden(G)].clone()
    assert (before.abs().sum((-1, -2, -3)) > 0).all()
    td["_reset"] = torch.tensor([[False], [True], [False], [False]])
    td = env.reset(td)
    after = td[keys.actor_hidden(G)]
    assert (after[1] == 0).all() and torch.equal(after[[0, 2, 3]], before[[0, 2, 3]])
    assert td[keys.IS_INIT].squeeze(-1).tolist() == [False, True, False, False]


# --------------------------------------------------------------------------- chunks and the loss
def test_chunks_start_from_the_stored_hidden_state_and_replay_collection():
    batch, actor, _, _ = collect(gru_cfg(), perturb=False)
    c = chunks(batch, 5)
    assert c.shape == (16, 5)  # 4 envs x 20 steps
    for i in range(16):
        env_i, t0 = divmod(i, 4)
        assert torch.equal(c[i, 0][keys.actor_hidden(G)], batch[env_i, 5 * t0][keys.actor_hidden(G)])
    # Run in sequence mode from each chunk's first stored state, the actor reproduces every hidden
    # state the collector stored (resets inside chunks included): same weights, same data.
    with torch.no_grad(), set_recurrent_mode(True):
        out = actor(c.clone())
    assert torch.allclose(out[(keys.NEXT, *keys.actor_hidden(G))], c[(keys.NEXT, *keys.actor_hidden(G))], atol=1e-5)
    assert torch.allclose(out[keys.loc(G)], c[keys.loc(G)], atol=1e-5)


def stepwise(td_chunks, nets):
    """Recompute each chunk step by step, carrying the hidden state by hand from the chunk's first
    stored one, zeroing it at ``is_init``; returns the chunks with those hidden states written."""
    td = td_chunks.clone()
    for net, key in nets:
        h = td[:, 0][key].clone()
        for t in range(td.shape[1]):
            step = td[:, t].clone()
            h = torch.where(step[keys.IS_INIT].view(-1, 1, 1, 1), torch.zeros_like(h), h)
            step.set(key, h)
            with torch.no_grad():
                h = net(step)[(keys.NEXT, *key)]
            td[:, t] = td[:, t].set(key, step[key])
    return td


@pytest.mark.parametrize("share,cell", [(True, "gru"), (False, "gru"), (True, "lstm")],
                         ids=["shared", "per_agent", "lstm"])
def test_loss_on_chunks_equals_a_step_by_step_recomputation(share, cell):
    cfg = gru_cfg(model={"recurrent": cell})
    batch, actor, critic, env = collect(cfg, share=share, perturb=True)
    loss = make_loss(actor, critic, env, G, cfg.loss)
    from torchrl_mappo.loss import compute_advantages

    compute_advantages(batch, {G: loss}, {G: actor})
    c = chunks(batch.exclude("next"), 10)
    by_hand = stepwise(c, [(actor, keys.actor_hidden(G)), (critic, keys.critic_hidden(G))])
    # Chunks start from the stored (stale) state and then diverge from it: the test can tell.
    assert torch.equal(by_hand[:, 0][keys.actor_hidden(G)], c[:, 0][keys.actor_hidden(G)])
    assert not torch.allclose(by_hand[:, 3][keys.actor_hidden(G)], c[:, 3][keys.actor_hidden(G)])
    torch.manual_seed(1)
    on_chunks = loss(c)
    torch.manual_seed(1)
    one_step_each = loss(by_hand.reshape(-1, 1))  # sequences of one step, from the hand-carried states
    for term in ("loss_objective", "loss_critic", "loss_entropy"):
        assert torch.allclose(on_chunks[term], one_step_each[term], atol=1e-5), term
    torch.manual_seed(1)
    stale = loss(c.reshape(-1, 1))  # what training from the stored states at every step would give
    assert not torch.allclose(on_chunks["loss_critic"], stale["loss_critic"], atol=1e-5)


def test_recurrent_gae_values_continue_the_episode_for_the_next_state():
    cfg = gru_cfg()
    batch, _, critic, _ = collect(cfg, perturb=True)  # values from the current weights, not collection's
    recurrent_values(batch, critic, keys.state_value(G))
    v, v_next = batch[keys.state_value(G)], batch[(keys.NEXT, *keys.state_value(G))]
    init = batch[keys.IS_INIT].squeeze(-1)
    with torch.no_grad():
        direct = critic(batch.select(*critic.in_keys).clone())[keys.state_value(G)]
    assert torch.equal(v, direct)
    # The last step of an episode (t + 1 is a reset) bootstraps from its own final observation,
    # never from the next episode's first value.
    last = init[:, 1:]
    assert not torch.allclose(v_next[:, :-1][last], v[:, 1:][last])
    # With unperturbed weights the next value IS the following step's value, episode by episode.
    batch2, _, critic2, _ = collect(cfg, perturb=False)
    recurrent_values(batch2, critic2, keys.state_value(G))
    v2, n2 = batch2[keys.state_value(G)], batch2[(keys.NEXT, *keys.state_value(G))]
    cont = ~batch2[keys.IS_INIT].squeeze(-1)[:, 1:]
    assert torch.allclose(n2[:, :-1][cont], v2[:, 1:][cont], atol=1e-5)


def test_torchrl_gae_would_reset_the_next_state_memory_at_episode_starts():
    """Why :func:`recurrent_values` exists: TorchRL's value call marks the "next" input as an
    episode start wherever the current step is one, so V(s_1) forgets s_0."""
    cfg = gru_cfg()
    batch, _, critic, _ = collect(cfg, perturb=False)
    recurrent_values(batch, critic, keys.state_value(G))
    ours = batch[(keys.NEXT, *keys.state_value(G))].clone()
    nxt = batch["next"].select(*critic.in_keys).clone()
    nxt[keys.IS_INIT] = batch[keys.IS_INIT]  # TorchRL: next is_init |= is_init
    with torch.no_grad():
        theirs = critic(nxt)[keys.state_value(G)]
    init = batch[keys.IS_INIT].squeeze(-1)
    assert not torch.allclose(theirs[init], ours[init])
    assert torch.equal(theirs[~init], ours[~init])


# --------------------------------------------------------------------------- the trainer
@pytest.mark.parametrize("share", [True, False], ids=["shared", "per_agent"])
def test_trainer_updates_on_chunks(share):
    trainer = Trainer.from_config(gru_cfg(model={"share_params": share}))
    assert trainer.chunk_length == 10
    seen = []
    loss = trainer.losses[G]
    net = next(m for m in loss.actor_network.modules() if isinstance(m, RecurrentNet))
    net.register_forward_pre_hook(lambda m, args: seen.append(tuple(args[0].shape[:-2])))
    history = trainer.train()
    assert len(history) == 2 and all(torch.isfinite(torch.tensor(h[f"{G}/loss_critic"])) for h in history)
    assert (4, 10) in seen  # minibatch_size 40 / chunk_length 10 = 4 chunks of 10 steps


def test_critic_alone_can_be_recurrent():
    trainer = Trainer.from_config(gru_cfg(model={"recurrent": "none", "critic_recurrent": "gru"}))
    loss = trainer.losses[G]
    assert not is_recurrent(loss.actor_network) and is_recurrent(loss.critic_network)
    assert trainer.chunk_length == 10
    trainer.train()


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_resume_with_a_gru_equals_an_uninterrupted_run(tmp_path, cell):
    cfg = gru_cfg(model={"recurrent": cell}, train={"total_frames": 320, "num_epochs": 1},
                  run={"checkpoint_every": 1, "keep_checkpoints": 4})
    timing = {"collect_time", "train_time", "fps", "wall_time"}
    strip = lambda rows: [{k: v for k, v in r.items() if k not in timing} for r in rows]
    whole = strip(Trainer.from_config(cfg, run_dir=tmp_path).train())
    state = torch.load(tmp_path / "checkpoints" / "iter_000002.pt", weights_only=False)
    assert keys.actor_hidden(G) in state["carrier"].keys(True)  # the episodes in flight keep their memory
    assert state["carrier"][keys.actor_hidden(G)].abs().sum() > 0
    resumed = Trainer.from_config(cfg, resume=state)
    assert strip(resumed.train()) == whole[2:]


def test_eval_plays_a_recurrent_checkpoint(tmp_path):
    from torchrl_mappo.evaluate import evaluate_checkpoint

    Trainer.from_config(gru_cfg(), run_dir=tmp_path).train()
    result = evaluate_checkpoint(tmp_path, episodes=3)
    assert result["episodes"] == 3 and result["groups"][G]["return_mean"] == result["groups"][G]["return_mean"]


def test_periodic_evaluation_plays_the_recurrent_actor():
    history = Trainer.from_config(gru_cfg(train={"eval_every": 160, "eval_episodes": 2})).train()
    value = history[-1][f"eval/{G}/episode_return"]
    assert value == value  # finite: whole episodes played with the actor's memory


@pytest.mark.slow
@pytest.mark.parametrize("family,scenario,extra", [
    ("pettingzoo", "simple_spread_v3", {"continuous_actions": False}),
    ("magent", "battle_v4", {"continuous_actions": False, "scenario_kwargs": {"map_size": 12}}),
])
def test_recurrent_trains_on_other_env_families(family, scenario, extra):
    cfg = gru_cfg(env={"family": family, "scenario": scenario, "num_envs": 2, "scenario_kwargs": {}, **extra},
                  train={"frames_per_batch": 40, "total_frames": 40, "minibatch_size": 20})
    trainer = Trainer.from_config(cfg)
    history = trainer.train()
    assert len(history) == 1


# --------------------------------------------------------------------------- the memory task
def test_hide_after_shows_features_only_in_the_first_steps():
    cfg = small_cfg(env={"num_envs": 2, "max_steps": 6, "memory_steps": 2, "memory_features": [4, 5]})
    env = make_env(cfg.env, seed=0)
    torch.manual_seed(0)
    td = env.rollout(8, break_when_any_done=False)
    count = td["memory_step"].squeeze(-1)
    assert count[0].tolist() == [0, 1, 2, 3, 4, 5, 0, 1]
    obs = td[keys.observation(G)]
    hidden = (obs[..., [4, 5]] == 0).all(-1).all(-1)  # [env, t]: every agent's goal vector zeroed
    assert hidden.equal(count >= 2)
    assert (obs[..., :4].abs().sum(-1) > 0).all()  # other features untouched
    plain_env = make_env(small_cfg(env={"num_envs": 2, "max_steps": 6}).env, seed=0)
    torch.manual_seed(0)
    plain = plain_env.rollout(8, break_when_any_done=False)
    assert torch.equal(plain[keys.observation(G)][..., :4], obs[..., :4])
    assert torch.equal(plain[keys.observation(G)][..., 4:6][count < 2], obs[..., 4:6][count < 2])


def test_recurrent_pipeline_example_runs(monkeypatch):
    import runpy

    from conftest import REPO

    monkeypatch.chdir(REPO)
    module = runpy.run_path(str(REPO / "examples/recurrent_pipeline.py"), run_name="not_main")
    returns = module["main"](["--frames", "6000", "--epochs", "1"])
    assert len(returns) == 1 and returns[0] == returns[0]  # one finished episode per env in 6000 frames


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["multi_sync", "multi_async"])
def test_recurrent_trains_with_worker_processes(kind):
    """Each worker's collector adds the InitTracker and the primers to its own env."""
    trainer = Trainer.from_config(gru_cfg(collector={"kind": kind, "workers": 2}))
    seen = []
    compute = trainer.compute_advantages

    def spy(batch):
        init = batch[keys.IS_INIT].reshape(-1, batch.shape[-1])
        hidden = batch[keys.actor_hidden(G)].reshape(*init.shape, -1)
        seen.append(((hidden[init] == 0).all(), (hidden[~init].abs().sum(-1) > 0).all()))
        compute(batch)

    trainer.compute_advantages = spy
    history = trainer.train()
    assert [row["frames"] for row in history] == [80, 160]
    assert seen and all(a and b for a, b in seen)  # states carried, zeroed at episode starts
