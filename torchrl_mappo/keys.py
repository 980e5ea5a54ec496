"""Every tensordict key the package reads or writes, defined once.

Per-agent data lives under ``(group, <field>)`` (TorchRL's multi-agent
convention); the env's global state, when it has one, lives at the root.
Use the helpers below instead of spelling tuples by hand.
"""
from __future__ import annotations

from tensordict.utils import NestedKey

STATE: str = "state"
"""Root key of the env's global state (PettingZoo ``return_state=True``, MAgent2)."""

DONE: str = "done"
TERMINATED: str = "terminated"
REWARD: str = "reward"
OBSERVATION: str = "observation"
NEXT: str = "next"


def observation(group: str) -> NestedKey:
    """Local observation of every agent of ``group``: ``[*B, n_agents, *obs_shape]``."""
    return (group, OBSERVATION)


def action(group: str) -> NestedKey:
    return (group, "action")


def action_log_prob(group: str) -> NestedKey:
    """Log-probability of the sampled action; the actor writes it, the loss reads it."""
    return (group, "action_log_prob")


def loc(group: str) -> NestedKey:
    return (group, "loc")


def scale(group: str) -> NestedKey:
    return (group, "scale")


def logits(group: str) -> NestedKey:
    return (group, "logits")


def state_value(group: str) -> NestedKey:
    """Critic output, one value per agent: ``[*B, n_agents, 1]``."""
    return (group, "state_value")


def advantage(group: str) -> NestedKey:
    return (group, "advantage")


def value_target(group: str) -> NestedKey:
    return (group, "value_target")


def reward(group: str) -> NestedKey:
    return (group, REWARD)


def done(group: str) -> NestedKey:
    return (group, DONE)


def terminated(group: str) -> NestedKey:
    return (group, TERMINATED)


def episode_reward(group: str) -> NestedKey:
    """Running sum of ``(group, "reward")`` over the current episode (``RewardSum``)."""
    return (group, "episode_reward")


def action_mask(group: str) -> NestedKey:
    """Which actions each agent of ``group`` may take now: ``[*B, n_agents, n_actions]`` (PettingZoo)."""
    return (group, "action_mask")


def mask(group: str) -> NestedKey:
    """Which agents of ``group`` are alive/acting (``use_mask=True`` PettingZoo envs)."""
    return (group, "mask")


IS_INIT: str = "is_init"
"""Root ``[*B, 1]`` flag of an episode's first step (TorchRL's ``InitTracker``); recurrent nets
reset their hidden state there."""


def actor_hidden(group: str) -> NestedKey:
    """The recurrent actor's hidden state: ``[*B, n_agents, layers, hidden]``; the net reads it
    here and writes the next one at ``("next", group, "actor_hidden")``."""
    return (group, "actor_hidden")


def critic_hidden(group: str) -> NestedKey:
    """The recurrent critic's hidden state, laid out like :func:`actor_hidden`."""
    return (group, "critic_hidden")


MEMORY_STEP: str = "memory_step"
"""Root ``[*B, 1]`` step counter of :class:`~torchrl_mappo.envs.memory.HideAfter` (0 at reset)."""
