"""cournot_v0: PettingZoo conformance, multi-step determinism, rewards/observations/infos
against the model, truncation, incentives between rounds, bad input."""

import warnings

import numpy as np
import pytest
from pettingzoo.test import api_test, parallel_api_test

from incentive_envs import cournot_v0
from incentive_envs.testing import identical


@pytest.mark.parametrize("kwargs", [{"n_firms": 3}, {"n_firms": 6, "k": 1.0, "feedback_noise_std": 0.5}])
def test_pettingzoo_conformance(kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parallel_api_test(cournot_v0.parallel_env(max_cycles=40, **kwargs), num_cycles=100)
        api_test(cournot_v0.env(max_cycles=40, **kwargs), num_cycles=100)


def _rollout(seed, steps=60, noise=0.5):
    env = cournot_v0.parallel_env(
        n_firms=5, max_cycles=steps, feedback_noise_std=noise, feedback=("gradient",)
    )
    trace = [env.reset(seed=seed)]
    rng = np.random.default_rng(123)
    while env.agents:
        outputs = rng.uniform(0.0, 5.0, size=(5, 1)).astype(np.float32)
        trace.append(env.step({agent: outputs[i] for i, agent in enumerate(env.agents)}))
    return trace


def test_multi_step_determinism_under_a_seed():
    first, second = _rollout(seed=11), _rollout(seed=11)
    assert len(first) == 61
    assert all(identical(a, b) for a, b in zip(first, second))
    other = _rollout(seed=12)
    assert not np.array_equal(first[5][4]["firm_0"]["gradient"], other[5][4]["firm_0"]["gradient"])


def test_rewards_observations_and_feedback_follow_the_model():
    env = cournot_v0.parallel_env(
        n_firms=4, k=0.5, max_cycles=5, feedback=("gradient", "best_response", "payoffs"), payoff_grid=5
    )
    env.reset(seed=0)
    game = env.game
    taxes = np.array([1.0, -2.0, 3.0, 0.0])
    env.set_incentive(taxes)
    outputs = np.array([1.0, 2.0, 0.5, 3.0])
    observations, rewards, terminations, truncations, infos = env.step(
        {agent: outputs[i : i + 1] for i, agent in enumerate(env.agents)}
    )
    np.testing.assert_allclose([rewards[a] for a in env.possible_agents], game.rewards(outputs, taxes))
    price = game.params.p0 - game.params.gamma * outputs.sum()
    profit = outputs * price - game.params.marginal_cost * outputs - 0.25 * outputs**2 - taxes * outputs
    np.testing.assert_allclose([rewards[a] for a in env.possible_agents], profit)
    for i, agent in enumerate(env.possible_agents):
        np.testing.assert_allclose(observations[agent], [taxes[i], price, outputs[i]], rtol=1e-6)
        assert observations[agent].dtype == np.float32 and observations[agent] in env.observation_space(agent)
        np.testing.assert_allclose(infos[agent]["gradient"], game.pseudo_gradient(outputs, taxes)[i : i + 1])
        np.testing.assert_allclose(
            infos[agent]["best_response"], game.best_response(outputs, taxes)[i : i + 1]
        )
        grid = np.linspace(0.0, game.params.output_cap, 5)
        np.testing.assert_allclose(
            infos[agent]["payoffs"], game.unilateral_rewards(outputs, taxes, np.tile(grid, (4, 1)))[i]
        )
        assert terminations[agent] is False and truncations[agent] is False
    assert isinstance(rewards["firm_0"], float)


def test_feedback_noise_has_the_requested_standard_deviation():
    env = cournot_v0.parallel_env(n_firms=50, max_cycles=400, feedback_noise_std=2.0, feedback=("gradient",))
    env.reset(seed=3)
    outputs = np.ones((50, 1))
    errors = []
    exact = env.game.pseudo_gradient(np.ones(50), env.incentive)
    while env.agents:
        _, _, _, _, infos = env.step({agent: outputs[i] for i, agent in enumerate(env.agents)})
        errors.append(np.concatenate([infos[a]["gradient"] for a in env.possible_agents]) - exact)
    errors = np.array(errors)
    assert errors.std() == pytest.approx(2.0, rel=0.02)
    assert abs(errors.mean()) < 0.02


def test_truncation_at_max_cycles_empties_agents():
    env = cournot_v0.parallel_env(n_firms=2, max_cycles=7)
    env.reset(seed=0)
    for round_ in range(1, 8):
        _, _, terminations, truncations, _ = env.step({a: np.zeros(1) for a in env.agents})
        assert all(value is (round_ == 7) for value in truncations.values())
        assert not any(terminations.values())
    assert env.agents == []
    with pytest.raises(ValueError, match="reset"):
        env.step({"firm_0": np.zeros(1), "firm_1": np.zeros(1)})


def test_reset_options_and_incentives_between_rounds():
    assert cournot_v0.parallel_env(n_firms=3).reset(seed=0)[1] == {f"firm_{i}": {} for i in range(3)}
    env = cournot_v0.parallel_env(n_firms=3, max_cycles=10, feedback=("gradient",))
    start = np.array([1.0, 2.0, 3.0])
    observations, infos = env.reset(seed=0, options={"initial_strategy": start, "incentive": np.full(3, 5.0)})
    np.testing.assert_allclose(env.strategy, start)
    np.testing.assert_allclose(
        infos["firm_1"]["gradient"], env.game.pseudo_gradient(start, np.full(3, 5.0))[1:2]
    )
    assert observations["firm_2"][0] == 5.0
    env.set_incentive(np.array([0.0, 1.0, 2.0]))
    observations, rewards, *_ = env.step({a: np.ones(1) for a in env.agents})
    assert observations["firm_2"][0] == 2.0
    np.testing.assert_allclose(rewards["firm_2"], env.game.rewards(np.ones(3), np.array([0.0, 1.0, 2.0]))[2])
    with pytest.warns(UserWarning, match="unknown"):
        env.reset(options={"initial_stratgey": start})


def test_render_ansi_reports_the_round():
    env = cournot_v0.parallel_env(n_firms=2, render_mode="ansi")
    env.reset(seed=0)
    assert "round 0/100" in env.render() and "price 100" in env.render()
    assert cournot_v0.parallel_env(n_firms=2).render() is None


@pytest.mark.parametrize(
    "action, match",
    [
        (np.array([np.nan], dtype=np.float32), "firm_1"),
        (np.array([np.inf]), "firm_1"),
        (np.zeros(2), "firm_1"),
        (np.array([-1.0]), "firm_1"),
        (np.array([1e4]), "firm_1"),
        ("a lot", "firm_1"),
    ],
)
def test_bad_actions_raise_value_errors_naming_the_agent(action, match):
    env = cournot_v0.parallel_env(n_firms=3)
    env.reset(seed=0)
    actions = {a: np.zeros(1, dtype=np.float32) for a in env.agents}
    actions["firm_1"] = action
    with pytest.raises(ValueError, match=match):
        env.step(actions)


def test_missing_unknown_agents_and_bad_settings_raise_value_errors():
    env = cournot_v0.parallel_env(n_firms=2)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="missing"):
        env.step({"firm_0": np.zeros(1)})
    with pytest.raises(ValueError, match="unknown"):
        env.step({"firm_0": np.zeros(1), "firm_1": np.zeros(1), "firm_9": np.zeros(1)})
    with pytest.raises(ValueError, match="dict"):
        env.step([np.zeros(1), np.zeros(1)])
    for bad in (np.array([np.nan, 0.0]), np.array([0.0, 1e6]), np.zeros(3)):
        with pytest.raises(ValueError, match="incentive"):
            env.set_incentive(bad)
    with pytest.raises(ValueError, match="initial_strategy"):
        env.reset(options={"initial_strategy": np.array([-1.0, 0.0])})
    with pytest.raises(ValueError, match="max_cycles"):
        cournot_v0.parallel_env(n_firms=2, max_cycles=0)
    with pytest.raises(ValueError, match="feedback_noise_std"):
        cournot_v0.parallel_env(n_firms=2, feedback_noise_std=-1.0)
    with pytest.raises(ValueError, match="render_mode"):
        cournot_v0.parallel_env(n_firms=2, render_mode="rgb_array")
    with pytest.raises(ValueError, match="n_firms must"):
        cournot_v0.parallel_env(n_firms=0)
