"""Our components in a plain TorchRL loop: its own collector, replay buffer and optimizer.

Only ``make_env``, ``make_actor``, ``make_critic`` and ``make_loss`` come from
torchrl_mappo; everything else is stock TorchRL, to show the pieces drop
into any pipeline.

    python examples/custom_pipeline.py --frames 60000 --seed 0
"""
from __future__ import annotations

import argparse

import torch
from tensordict.nn import TensorDictSequential
from torchrl.collectors import Collector
from torchrl.data import LazyTensorStorage, ReplayBuffer, SamplerWithoutReplacement

from torchrl_mappo import load_config, make_actor, make_critic, make_env, make_loss
from torchrl_mappo import keys


def main(argv=None) -> list[float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/vmas_navigation.yaml")
    parser.add_argument("--frames", type=int, default=60_000)
    parser.add_argument("--frames-per-batch", type=int, default=6_000)
    parser.add_argument("--num-envs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    cfg = load_config(args.config, [f"env.num_envs={args.num_envs}", "model.hidden_sizes=[128,128]"])
    torch.manual_seed(args.seed)
    env = make_env(cfg.env, seed=args.seed)
    group = "agents"  # VMAS puts every agent in one group

    actor = make_actor(env, group, cfg.model)
    critic = make_critic(env, group, cfg.model)
    loss_module = make_loss(actor, critic, env, group, cfg.loss)

    collector = Collector(
        env, TensorDictSequential(actor), frames_per_batch=args.frames_per_batch,
        total_frames=args.frames, auto_register_policy_transforms=False,
    )
    buffer = ReplayBuffer(
        storage=LazyTensorStorage(args.frames_per_batch),
        sampler=SamplerWithoutReplacement(),
        batch_size=cfg.train.minibatch_size,
    )
    optim = torch.optim.Adam(loss_module.parameters(), lr=cfg.train.lr)

    returns = []
    for i, batch in enumerate(collector):
        done = batch.get(("next", "done"))  # VMAS: one done per env
        ep = batch.get(("next", *keys.episode_reward(group)))[done.squeeze(-1)]
        returns.append(ep.mean().item() if ep.numel() else float("nan"))
        print(f"iter {i}: frames {(i + 1) * args.frames_per_batch}, mean episode return {returns[-1]:.3f}")

        with torch.no_grad():
            loss_module.value_estimator(
                batch, params=loss_module.critic_network_params,
                target_params=loss_module.target_critic_network_params,
            )
        buffer.extend(batch.reshape(-1))
        for _ in range(cfg.train.num_epochs):
            for _ in range(args.frames_per_batch // cfg.train.minibatch_size):
                out = loss_module(buffer.sample())
                loss = sum(v for k, v in out.items() if k.startswith("loss_"))  # no loss_entropy at coefficient 0
                optim.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(loss_module.parameters(), cfg.train.max_grad_norm)
                optim.step()
        collector.update_policy_weights_()
    collector.shutdown()
    return returns


if __name__ == "__main__":
    main()
