"""schedules.py: linear schedules of the learning rate, entropy coefficient and log-std."""
import pytest
import torch
from tensordict.nn import AddStateIndependentNormalScale
from torch import nn

from torchrl_mappo.schedules import Schedules, log_std_params


class FakeLoss(nn.Module):
    def __init__(self, coeff):
        super().__init__()
        self.register_buffer("entropy_coeff", torch.tensor(coeff))


def parts(lr=1e-3, init_log_std=0.0):
    actor = nn.Sequential(nn.Linear(2, 4), AddStateIndependentNormalScale(2, init_value=init_log_std))
    opt = torch.optim.Adam(actor.parameters(), lr=lr)
    return {"g": [opt]}, {"g": FakeLoss(0.02)}, {"g": actor}


def test_linear_lr_entropy_and_log_std_follow_the_frames():
    opts, losses, actors = parts()
    s = Schedules(1000, opts, losses, actors, lr_schedule="linear", entropy_coeff_end={"g": 0.0}, log_std_end=-1.0)
    assert not log_std_params(actors["g"])[0][0].requires_grad  # scheduled, not learned
    values = s.apply(250)
    assert values == pytest.approx({"g/lr": 7.5e-4, "g/entropy_coeff": 0.015, "g/log_std": -0.25})
    assert opts["g"][0].param_groups[0]["lr"] == pytest.approx(7.5e-4)
    assert float(losses["g"].entropy_coeff) == pytest.approx(0.015)
    assert log_std_params(actors["g"])[0][1] == pytest.approx(-0.25)
    assert s.apply(5000)["g/lr"] == 0.0  # progress is capped at 1


def test_constant_schedules_set_nothing():
    opts, losses, actors = parts()
    s = Schedules(1000, opts, losses, actors)
    assert s.apply(500) == {}
    assert opts["g"][0].param_groups[0]["lr"] == 1e-3
    assert log_std_params(actors["g"])[0][0].requires_grad


def test_an_unknown_lr_schedule_is_refused():
    opts, losses, actors = parts()
    with pytest.raises(ValueError, match="lr_schedule must be 'constant' or 'linear'"):
        Schedules(1000, opts, losses, actors, lr_schedule="cosine")
