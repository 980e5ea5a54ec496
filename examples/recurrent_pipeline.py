"""A recurrent (GRU) MAPPO in a plain TorchRL loop: its own collector, chunked minibatches, optimizer.

From torchrl_mappo: ``make_env``, ``make_actor``, ``make_critic`` and ``make_loss``
(with ``model.recurrent: gru``), ``recurrent_env_transforms`` (TorchRL's
``InitTracker`` and the nets' primers), ``compute_advantages`` (GAE with the
recurrent critic's stored states) and ``chunks``; the rest is stock TorchRL.

    python examples/recurrent_pipeline.py --frames 30000 --seed 0
"""
from __future__ import annotations

import argparse

import torch
from tensordict.nn import TensorDictSequential
from torchrl.collectors import Collector

from torchrl_mappo import (
    keys,
    load_config,
    make_actor,
    make_critic,
    make_env,
    make_loss,
)
from torchrl_mappo.loss import compute_advantages
from torchrl_mappo.modules.recurrent import recurrent_env_transforms
from torchrl_mappo.sequences import chunks


def main(argv=None) -> list[float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/vmas_navigation_memory.yaml")
    parser.add_argument("--frames", type=int, default=30_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None, help="default: the config's train.num_epochs")
    args = parser.parse_args(argv)

    cfg = load_config(args.config)
    torch.manual_seed(args.seed)
    env = make_env(cfg.env, seed=args.seed)
    group = next(iter(env.group_map))
    actor, critic = make_actor(env, group, cfg.model), make_critic(env, group, cfg.model)
    policy = TensorDictSequential(actor, critic)  # the critic runs too: its hidden states are stored
    collector = Collector(recurrent_env_transforms(env, policy), policy,
                          frames_per_batch=cfg.train.frames_per_batch, total_frames=args.frames)
    loss = make_loss(actor, critic, env, group, cfg.loss)
    optim = torch.optim.Adam(loss.parameters(), lr=cfg.train.lr)
    per_minibatch = cfg.train.minibatch_size // cfg.train.chunk_length
    returns = []
    for batch in collector:
        compute_advantages(batch, {group: loss}, {group: actor})
        data = chunks(batch.exclude("next"), cfg.train.chunk_length)  # [n_chunks, chunk_length]
        for _ in range(args.epochs or cfg.train.num_epochs):
            for idx in torch.randperm(data.shape[0]).split(per_minibatch):
                out = loss(data[idx])  # each chunk replayed from the state stored at its first step
                total = out["loss_objective"] + out["loss_critic"] + out.get("loss_entropy", 0.0)
                optim.zero_grad()
                total.backward()
                torch.nn.utils.clip_grad_norm_(loss.parameters(), cfg.train.max_grad_norm)
                optim.step()
        collector.update_policy_weights_()
        done = batch[("next", keys.DONE)].squeeze(-1)
        if done.any():
            returns.append(float(batch[("next", *keys.episode_reward(group))][done].mean()))
            print(f"frames {len(returns) * cfg.train.frames_per_batch}: mean episode return {returns[-1]:.3f}")
    collector.shutdown()
    return returns


if __name__ == "__main__":
    main()
