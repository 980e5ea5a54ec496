"""Example scripts run with tiny budgets (and the custom pipeline really learns)."""
import runpy
import sys

import pytest

from conftest import REPO


@pytest.mark.slow
def test_custom_pipeline_runs_and_learns(monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    monkeypatch.setattr(sys, "argv", ["custom_pipeline.py", "--frames", "30000", "--seed", "0"])
    module = runpy.run_path(str(REPO / "examples/custom_pipeline.py"), run_name="not_main")
    returns = module["main"]()
    assert len(returns) == 5
    assert returns[-1] - returns[0] >= 0.5, returns
    assert "mean episode return" in capsys.readouterr().out
