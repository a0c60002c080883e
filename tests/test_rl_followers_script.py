"""Smoke tests of scripts/rl_followers.py (SB3 PPO firms, one planner over vector copies) and
scripts/rllib_followers.py (RLlib PPO firms on two env runners, one planner on the driver):
tiny runs per planner, the documented JSON structure, finite numbers, the measurement helpers."""

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import rl_followers  # noqa: E402
import rllib_followers  # noqa: E402

SB3_QUICK = {"rounds": 96, "n_copies": 2, "n_steps": 32, "warmup_rollouts": 1}


@pytest.fixture(scope="module")
def result():
    return rl_followers.experiment(1, SB3_QUICK)


def _check_common(result, script_game):
    assert result["w_star"] == pytest.approx(-script_game.social_optimum().value)
    assert [r["planner"] for r in result["runs"]] == list(rl_followers.PLANNERS)
    for run in result["runs"]:
        assert run["seed"] == 0
        for key in ("final_welfare", "gap_closed", "env_steps_per_s"):
            assert math.isfinite(run[key]), (run["planner"], key)
        assert run["env_steps_per_s"] > 0
        assert len(run["curve"]["env_steps"]) == len(run["curve"]["welfare"])
        assert np.all(np.isfinite(run["curve"]["welfare"]))
    none = next(r for r in result["runs"] if r["planner"] == "none")
    assert none["gap_closed"] == pytest.approx(0.0, abs=1e-9)  # one seed: W_none is its own mean
    assert np.all(np.asarray(none["final_tax"]) == 0.0)
    oracle = next(r for r in result["runs"] if r["planner"] == "oracle")
    game = script_game
    np.testing.assert_allclose(oracle["final_tax"], rl_followers.OraclePlanner(game).initial_incentive())
    for planner in rl_followers.PLANNERS:
        assert math.isfinite(result["summary"][planner]["gap_closed_mean"])
    assert isinstance(result["summary"]["target_met"], bool)
    json.loads(json.dumps(result))  # serialisable


def test_sb3_script_runs_every_planner_on_the_shared_vec_env(result, tmp_path):
    game = rl_followers.cournot_v0.parallel_env(**rl_followers.GAME).game
    _check_common(result, game)
    for run in result["runs"]:
        assert run["rounds"] == 96 and run["env_steps"] == 192 and run["n_copies"] == 2
        # one update per rollout of 32 rounds after one warm-up rollout
        assert run["planner_updates"] == 2
        assert math.isfinite(run["deterministic_welfare"]) and math.isfinite(run["deterministic_gap_closed"])
    adaptive = next(r for r in result["runs"] if r["planner"] == "social_gradient")
    assert np.any(np.asarray(adaptive["final_tax"]) != 0.0)
    result["wall_time_s"], result["settings"]["seeds"] = 1.0, 1
    rl_followers.report(result, "test")
    rl_followers.plot(result, tmp_path / "curve.png", "test")
    assert (tmp_path / "curve.png").stat().st_size > 0


def test_actions_map_affinely_and_welfare_is_recorded_per_copy():
    np.testing.assert_allclose(
        rl_followers.to_env_actions([[-2.0], [-1.0], [0.0], [1.0]], np.zeros(1), np.full(1, 40.0)),
        [[0.0], [0.0], [20.0], [40.0]],
    )
    game = rl_followers.cournot_v0.parallel_env(**rl_followers.GAME).game
    shared = rl_followers.SharedPlanner(rl_followers.make_planner("none", game), 4)
    recorder = rl_followers.WelfareRecorder(
        rl_followers.SharedPlannerVecEnv(
            lambda: rl_followers.cournot_v0.parallel_env(**rl_followers.GAME), 2, shared
        )
    )
    recorder.reset()
    actions = np.concatenate([np.full((10, 1), 5.0), np.linspace(0.0, 30.0, 10)[:, None]]).astype(np.float32)
    recorder.step(actions)
    expected = np.mean([game.welfare(np.full(10, 5.0)), game.welfare(np.linspace(0.0, 30.0, 10))])
    assert recorder.welfare == [pytest.approx(expected)]


def test_scripts_refuse_bad_arguments(tmp_path):
    game = rl_followers.cournot_v0.parallel_env(**rl_followers.GAME).game
    with pytest.raises(ValueError, match="planner must be one of"):
        rl_followers.make_planner("bogus", game)
    with pytest.raises(ValueError, match="--seeds"):
        rl_followers.main(
            ["--json", str(tmp_path / "a.json"), "--plot", str(tmp_path / "a.png"), "--seeds", "0"]
        )
    env = rl_followers.cournot_v0.parallel_env(**rl_followers.GAME)
    with pytest.raises(ValueError, match="obs_scale"):
        rllib_followers.ScaledObservationsRewards(env, [1.0, 0.0, 1.0], 1.0)
    with pytest.raises(ValueError, match="reward_scale"):
        rllib_followers.ScaledObservationsRewards(env, [1.0, 1.0, 1.0], -1.0)


def test_the_rllib_followers_view_scales_and_measures_welfare():
    env = rl_followers.cournot_v0.parallel_env(**rl_followers.GAME)
    scale = rl_followers.observation_scales(env.game)
    view = rllib_followers.ScaledObservationsRewards(env, scale, 100.0)
    observations, _ = view.reset(seed=0)
    agent = view.possible_agents[0]
    assert view.observation_space(agent).contains(observations[agent])
    outputs = np.linspace(1.0, 10.0, 10)
    observations, rewards, *_ = view.step(
        dict(zip(view.possible_agents, outputs[:, None].astype(np.float32)))
    )
    bare = rl_followers.cournot_v0.parallel_env(**rl_followers.GAME)
    bare.reset(seed=0)
    bare_obs, bare_rewards, *_ = bare.step(
        dict(zip(bare.possible_agents, outputs[:, None].astype(np.float32)))
    )
    np.testing.assert_allclose(observations[agent], bare_obs[agent] / scale, rtol=1e-6)
    assert rewards[agent] == pytest.approx(bare_rewards[agent] / 100.0)
    assert view.collect_welfare() == (pytest.approx(env.game.welfare(outputs)), 1)
    assert view.collect_welfare() == (0.0, 0)


@pytest.mark.slow
def test_rllib_script_quick_mode_runs_every_planner_on_two_runners(tmp_path):
    pytest.importorskip("ray.rllib", reason="RLlib is in the [rl] extra (pip install -e .[rl])")
    result = rllib_followers.main(
        ["--quick", "--seeds", "1", "--json", str(tmp_path / "r.json"), "--plot", str(tmp_path / "r.png")]
    )
    _check_common(result, rl_followers.cournot_v0.parallel_env(**rl_followers.GAME).game)
    assert json.loads((tmp_path / "r.json").read_text())["w_star"] == result["w_star"]
    for run in result["runs"]:
        assert {
            "planner",
            "seed",
            "final_welfare",
            "env_runners",
            "planner_updates",
            "env_steps_per_s",
        } <= set(run)
        assert run["env_runners"] == 2 and run["runners_agree"]
        assert run["planner_updates"] == rllib_followers.QUICK["iterations"]  # no warm-up in quick mode
    assert (tmp_path / "r.png").stat().st_size > 0
