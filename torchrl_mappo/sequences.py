"""Training recurrent nets on sequences: chunked minibatches and the critic's values for GAE.

**Chunks** (rMAPPO's ``data_chunk_length``). A collected batch is
``[*envs, T]``, time last. :func:`chunks` cuts every env's ``T`` steps into
``T / chunk_length`` consecutive pieces: ``[n_chunks, chunk_length]``. A
minibatch is a random set of whole chunks. In the loss (TorchRL's losses run
their nets under ``set_recurrent_mode(True)``) a recurrent net starts each
chunk from the hidden state stored at the chunk's first step during
collection and zeroes it at any ``is_init`` step inside the chunk: a chunk
never carries memory across an episode start.

**GAE with a recurrent critic.** TorchRL's value estimators call the critic
on the batch and on ``batch["next"]``; for recurrent nets they mark the
"next" sequence as restarting wherever the current step is an episode start
(and ``shifted=True`` runs it over one ``T + 1`` sequence), which throws away
the first observation's memory for the next-state value. Here instead the
critic runs in step mode from the hidden states the collector stored, which
the critic computed with the same weights while collecting (it is part of
the collection policy):

- ``V(s_t)``: the critic on step ``t``'s input and stored hidden state;
- ``V(s_{t+1})``: the critic on ``("next", ...)``'s input with the hidden
  state it wrote after step ``t`` (``("next", group, "critic_hidden")``), no
  reset. This is exact for the bootstrap of the batch's last step and for
  truncated episodes (the next observation is the episode's last, before the
  reset).

Both are written to the batch and the group's ``MultiAgentGAE`` (built
without a value network, :func:`torchrl_mappo.loss.make_loss`) reads them.
"""
from __future__ import annotations

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase
from torchrl.modules import set_recurrent_mode

from torchrl_mappo import keys

__all__ = ["chunks", "recurrent_values"]


def chunks(batch: TensorDictBase, chunk_length: int) -> TensorDictBase:
    """``[*envs, T] -> [n_chunks, chunk_length]``: each env's steps cut into consecutive chunks.

    Chunk ``i`` holds steps ``(i % (T / L)) * L ...`` of env ``i // (T / L)``.
    Raises ``ValueError`` if ``chunk_length`` does not divide ``T``.
    """
    T = batch.shape[-1]
    if T % chunk_length:
        raise ValueError(f"train.chunk_length={chunk_length} does not divide the batch's {T} steps per env")
    return batch.reshape(-1, T).reshape(-1, chunk_length)


def recurrent_values(batch: TensorDictBase, critic: TensorDictModuleBase, value_key) -> None:
    """Write ``value_key`` and ``("next", value_key)`` into ``batch`` ``[*envs, T]`` (see the module docstring)."""
    in_keys = [k for k in critic.in_keys if k != keys.IS_INIT]
    with torch.no_grad(), set_recurrent_mode(False):
        value = critic(batch.select(*critic.in_keys).clone(False)).get(value_key)
        nxt = batch.get(keys.NEXT).select(*in_keys).clone(False)
        # The state after step t continues the same episode: no reset, whatever step t was.
        nxt.set(keys.IS_INIT, torch.zeros(*batch.shape, 1, dtype=torch.bool, device=value.device))
        next_value = critic(nxt).get(value_key)
    batch.set(value_key, value)
    batch.set((keys.NEXT, *((value_key,) if isinstance(value_key, str) else value_key)), next_value)
