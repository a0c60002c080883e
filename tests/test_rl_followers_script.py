"""Smoke test of scripts/rl_followers.py: a tiny PPO run per planner, JSON structure, finite numbers."""

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "rl_followers.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("rl_followers_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def result(script):
    return script.experiment(1, {"rounds": 96, "n_steps": 32, "warmup_rollouts": 1}, show_progress=False)


def test_every_planner_runs_and_the_json_has_the_documented_structure(script, result, tmp_path):
    assert math.isfinite(result["w_star"])
    game = script.cournot_v0.parallel_env(**script.GAME).game
    assert result["w_star"] == pytest.approx(-game.social_optimum().value)
    assert [r["planner"] for r in result["runs"]] == list(script.PLANNERS)
    for run in result["runs"]:
        assert run["seed"] == 0
        for key in ("final_welfare", "gap_closed", "deterministic_welfare", "deterministic_gap_closed"):
            assert math.isfinite(run[key]), (run["planner"], key)
        assert run["rounds"] == 96
        assert len(run["curve"]["env_steps"]) == len(run["curve"]["welfare"])
        assert np.all(np.isfinite(run["curve"]["welfare"]))
    none = next(r for r in result["runs"] if r["planner"] == "none")
    assert none["gap_closed"] == pytest.approx(0.0, abs=1e-9)  # one seed: W_none is its own mean
    assert np.all(np.asarray(none["final_tax"]) == 0.0)
    for planner in script.PLANNERS:
        assert math.isfinite(result["summary"][planner]["final_welfare_mean"])
        assert math.isfinite(result["summary"][planner]["gap_closed_mean"])
    assert isinstance(result["summary"]["target_met"], bool)
    json.loads(json.dumps(result))  # serialisable
    script.plot(result, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").stat().st_size > 0


def test_the_window_averaged_planner_steps_once_per_window_on_the_mean_action(script):
    game = script.cournot_v0.parallel_env(**script.GAME).game

    class Recording(script.Planner):
        def __init__(self, game):
            super().__init__(game)
            self.seen = []

        def _update(self, theta, x, k):
            self.seen.append((x.copy(), k))
            return theta + 1.0

    inner = Recording(game)
    planner = script.WindowAveragedPlanner(inner, window=3, warmup=2)
    theta = np.zeros(10)
    xs = [np.full(10, float(i)) for i in range(8)]
    for i, x in enumerate(xs):
        theta = planner.update(theta, x, i)
    # rounds 0, 1 are warm-up; windows {2, 3, 4} and {5, 6, 7}
    assert [k for _, k in inner.seen] == [0, 1]
    np.testing.assert_allclose(inner.seen[0][0], np.full(10, 3.0))
    np.testing.assert_allclose(inner.seen[1][0], np.full(10, 6.0))
    assert np.all(theta == 2.0) and len(planner.welfare) == 8
