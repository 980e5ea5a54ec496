"""Actor and critic builders (TensorDictModules) and the plain nets under them."""
from torchrl_mappo.modules.actor import make_actor, make_random_actor
from torchrl_mappo.modules.critic import make_critic

__all__ = ["make_actor", "make_critic", "make_random_actor"]
