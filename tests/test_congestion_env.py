"""congestion_v0: PettingZoo conformance, action spaces, seeded determinism, action
normalisation and validation, incentives, rewards and observations against the model,
SuperSuit vectorisation, learners converging to the logit equilibrium through the env."""

import warnings

import numpy as np
import pytest
from conftest import requires_sioux_falls
from gymnasium import spaces
from pettingzoo.test import api_test, parallel_api_test

from agents.learners import EntropicMirrorDescent
from agents.play import play_env
from incentive_envs import congestion_v0
from incentive_envs.routing import braess, pigou
from incentive_envs.routing.network import BRAESS_BRIDGE_LINK
from incentive_envs.routing.tntp import SIOUX_FALLS_TOLLED_LINKS
from incentive_envs.testing import identical


@pytest.mark.parametrize("network", ["braess", pytest.param("sioux_falls", marks=requires_sioux_falls)])
def test_pettingzoo_conformance(network):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parallel_api_test(congestion_v0.parallel_env(network=network, max_cycles=10), num_cycles=20)
        api_test(congestion_v0.env(network=network, max_cycles=10), num_cycles=20)


@pytest.mark.parametrize(
    "network, n_agents",
    [("braess", 1), ("pigou", 1), pytest.param("sioux_falls", 528, marks=requires_sioux_falls)],
)
@pytest.mark.parametrize("k", [2, 3, 5])
def test_every_agent_has_the_same_action_space(network, n_agents, k):
    env = congestion_v0.parallel_env(network=network, paths_per_od=k)
    assert env.possible_agents == [f"od_{i}" for i in range(n_agents)]
    expected = spaces.Box(0.0, 1.0, (k,), dtype=np.float32)
    assert all(env.action_space(agent) == expected for agent in env.possible_agents)
    assert all(env.observation_space(agent).shape == (3 * k,) for agent in env.possible_agents)


@requires_sioux_falls
def test_sioux_falls_defaults_to_the_papers_tolled_links():
    env = congestion_v0.parallel_env(network="sioux_falls")
    np.testing.assert_array_equal(env.game.tolled_links, SIOUX_FALLS_TOLLED_LINKS)
    assert env.game.tolled_links.tolist()[:3] == [10, 34, 31]
    assert env.incentive.shape == (20,)
    assert env.state_space.shape == (1584 + 20,)


def _rollout(seed, steps=20, noise=0.7):
    env = congestion_v0.parallel_env(
        network="sioux_falls", max_cycles=steps, feedback_noise_std=noise, feedback=("gradient",)
    )
    trace = [env.reset(seed=seed)]
    rng = np.random.default_rng(99)
    while env.agents:
        actions = {agent: rng.uniform(0.0, 1.0, 3).astype(np.float32) for agent in env.agents}
        trace.append(env.step(actions))
    return trace


@requires_sioux_falls
def test_multi_step_determinism_under_a_seed():
    first, second = _rollout(seed=5), _rollout(seed=5)
    assert len(first) == 21
    assert all(identical(a, b) for a, b in zip(first, second))
    other = _rollout(seed=6)
    # same actions: same flows, observations and rewards; only the feedback noise differs
    assert identical(first[10][0], other[10][0]) and identical(first[10][1], other[10][1])
    assert not np.array_equal(first[10][4]["od_0"]["gradient"], other[10][4]["od_0"]["gradient"])
    assert not np.array_equal(first[0][1]["od_7"]["gradient"], other[0][1]["od_7"]["gradient"])


def _step_strategy(env, actions):
    env.step(actions)
    return env.strategy


def test_actions_are_normalised_onto_each_simplex():
    env = congestion_v0.parallel_env(network="braess", max_cycles=50)
    env.reset(seed=0)
    weights = np.array([0.1, 0.2, 0.3])
    np.testing.assert_allclose(_step_strategy(env, {"od_0": weights}), weights / 0.6)
    # scaling the weights changes nothing (while staying in [0, 1])
    observations, rewards, *_ = env.step({"od_0": weights})
    scaled_observations, scaled_rewards, *_ = env.step({"od_0": 3 * weights})
    np.testing.assert_allclose(env.strategy, [1 / 6, 1 / 3, 1 / 2])
    np.testing.assert_allclose(scaled_observations["od_0"], observations["od_0"], rtol=1e-6)
    assert scaled_rewards["od_0"] == pytest.approx(rewards["od_0"], rel=1e-14)
    # all-zero weights: the uniform split
    np.testing.assert_allclose(_step_strategy(env, {"od_0": np.zeros(3)}), [1 / 3] * 3)
    np.testing.assert_allclose(_step_strategy(env, {"od_0": np.array([0.0, 0.0, 1.0])}), [0, 0, 1])


def test_trailing_action_entries_are_ignored():
    env = congestion_v0.parallel_env(network="pigou", paths_per_od=4, max_cycles=50)  # 2 paths
    env.reset(seed=0)
    first, *_ = env.step({"od_0": np.array([0.25, 0.75, 0.0, 0.0])})
    np.testing.assert_allclose(env.strategy, [0.25, 0.75])
    second, *_ = env.step({"od_0": np.array([0.25, 0.75, 1.0, 0.3])})
    np.testing.assert_allclose(env.strategy, [0.25, 0.75])
    np.testing.assert_array_equal(first["od_0"], second["od_0"])
    np.testing.assert_allclose(_step_strategy(env, {"od_0": np.array([0.0, 0.0, 1.0, 1.0])}), [0.5, 0.5])
    with pytest.raises(ValueError, match="outside the action space"):
        env.step({"od_0": np.array([0.25, 0.75, 2.0, 0.0])})  # still checked against [0, 1]


@pytest.mark.parametrize(
    "action, match",
    [
        (np.array([-0.1, 0.5, 0.5]), r"actions\['od_0'\] = -0.1 is outside the action space"),
        (np.array([0.5, 1.5, 0.5]), r"actions\['od_0'\] = 1.5 is outside"),
        (np.array([np.nan, 0.5, 0.5]), r"actions\['od_0'\] must be finite"),
        (np.array([np.inf, 0.5, 0.5]), r"actions\['od_0'\] must be finite"),
        (np.array([0.5, 0.5]), r"actions\['od_0'\] must have shape \(3,\)"),
        (np.ones((1, 3)), r"actions\['od_0'\] must have shape"),
        ("left", r"actions\['od_0'\] must be real numbers"),
    ],
)
def test_invalid_actions_raise_value_errors(action, match):
    env = congestion_v0.parallel_env(network="braess")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step({"od_0": action})


@requires_sioux_falls
def test_missing_and_unknown_agents_raise_value_errors():
    env = congestion_v0.parallel_env(network="sioux_falls", max_cycles=5)
    env.reset(seed=0)
    actions = {agent: np.ones(3) for agent in env.agents}
    del actions["od_17"]
    with pytest.raises(ValueError, match=r"missing \['od_17'\]"):
        env.step(actions)
    with pytest.raises(ValueError, match=r"unknown \['od_999'\]"):
        env.step({**{agent: np.ones(3) for agent in env.agents}, "od_999": np.ones(3)})
    with pytest.raises(ValueError, match="dict"):
        env.step([np.ones(3)] * 528)


def test_set_incentive_checks_the_toll_bounds():
    env = congestion_v0.parallel_env(network="braess", toll_bounds=(1.0, 4.0))
    env.reset(seed=0)
    np.testing.assert_array_equal(env.incentive, np.ones(5))  # projection of 0
    env.set_incentive(np.full(5, 4.0))
    for bad in (
        np.full(5, 4.5),
        np.full(5, 0.5),
        np.zeros(5),
        np.full(4, 2.0),
        np.array([2, 2, 2, 2, np.nan]),
    ):
        with pytest.raises(ValueError, match="incentive"):
            env.set_incentive(bad)
    np.testing.assert_array_equal(env.incentive, np.full(5, 4.0))
    with pytest.raises(ValueError, match="incentive"):
        env.reset(options={"incentive": np.full(5, 9.0)})
    with pytest.raises(ValueError, match="incentive"):
        congestion_v0.parallel_env(network="braess", incentive=np.full(5, 11.0))


def test_bad_settings_raise_value_errors():
    with pytest.raises(ValueError, match="network must be"):
        congestion_v0.parallel_env(network="manhattan")
    with pytest.raises(ValueError, match="paths_per_od"):
        congestion_v0.parallel_env(network="braess", paths_per_od=0)
    with pytest.raises(ValueError, match="eta"):
        congestion_v0.parallel_env(network="braess", eta=0.0)
    with pytest.raises(ValueError, match="toll_bounds"):
        congestion_v0.parallel_env(network="braess", toll_bounds=(-1.0, 1.0))
    with pytest.raises(ValueError, match="tolled_links"):
        congestion_v0.parallel_env(network="braess", tolled_links=[7])


def test_rewards_and_observations_follow_the_model():
    env = congestion_v0.parallel_env(
        network=braess(), eta=2.0, tolled_links=[1, 4], paths_per_od=4, feedback=("gradient",)
    )
    env.reset(seed=0)
    theta = np.array([1.0, 3.0])
    env.set_incentive(theta)
    weights = np.array([0.2, 0.5, 0.3, 0.9])  # 3 paths: (bridge, s-a-t, s-b-t); entry 4 ignored
    observations, rewards, terminations, truncations, infos = env.step({"od_0": weights})
    q = np.array([0.2, 0.5, 0.3])
    x = 6.0 * np.array([0.7, 0.5, 0.3, 0.5, 0.2])
    t = np.array([10 * x[0], x[1] + 50, x[2] + 50, 10 * x[3], x[4] + 10])
    travel = np.array([t[0] + t[4] + t[3], t[0] + t[1], t[2] + t[3]])
    tolls = np.array([3.0, 1.0, 0.0])
    costs = travel + tolls + 2.0 * (np.log(q) + 1.0)
    assert rewards == {"od_0": pytest.approx(-(q @ costs), rel=1e-12)}
    assert isinstance(rewards["od_0"], float)
    np.testing.assert_allclose(rewards["od_0"], env.game.rewards(q, theta)[0], rtol=1e-12)
    expected = np.concatenate([travel, [0.0], tolls, [0.0], q, [0.0]])
    np.testing.assert_allclose(observations["od_0"], expected, rtol=1e-6)
    assert observations["od_0"].dtype == np.float32 and observations["od_0"] in env.observation_space("od_0")
    np.testing.assert_allclose(infos["od_0"]["gradient"], -costs, rtol=1e-12)
    np.testing.assert_allclose(env.strategy, q)
    assert terminations == {"od_0": False} and truncations == {"od_0": False}
    np.testing.assert_allclose(env.state()[:3], q, rtol=1e-6)
    np.testing.assert_allclose(env.state()[3:], theta)


@requires_sioux_falls
def test_sioux_falls_rewards_are_minus_mean_path_costs():
    env = congestion_v0.parallel_env(network="sioux_falls", eta=1.0, max_cycles=3)
    env.reset(seed=0)
    game = env.game
    theta = np.linspace(0.0, 10.0, 20)
    env.set_incentive(theta)
    rng = np.random.default_rng(1)
    actions = {agent: rng.uniform(0.05, 1.0, 3) for agent in env.agents}
    observations, rewards, *_ = env.step(actions)
    q = env.strategy
    costs = game.path_costs(q, theta)
    expected = -game.strategy_set.block_sum(q * costs)
    np.testing.assert_allclose([rewards[a] for a in env.possible_agents], expected, rtol=1e-12)
    for i in (0, 100, 527):
        agent = f"od_{i}"
        np.testing.assert_allclose(q[3 * i : 3 * i + 3], actions[agent] / actions[agent].sum())
        path_tolls = game.path_costs(q, theta, entropy=False) - game.path_costs(
            q, np.zeros(20), entropy=False
        )
        np.testing.assert_allclose(
            observations[agent][3:6], path_tolls[3 * i : 3 * i + 3], rtol=1e-5, atol=1e-5
        )
        np.testing.assert_allclose(observations[agent][6:], q[3 * i : 3 * i + 3], rtol=1e-6)


def test_truncation_after_max_cycles():
    env = congestion_v0.parallel_env(network="braess", max_cycles=4)
    env.reset(seed=0)
    for round_ in range(1, 5):
        _, _, terminations, truncations, _ = env.step({"od_0": np.ones(3)})
        assert truncations == {"od_0": round_ == 4} and terminations == {"od_0": False}
    assert env.agents == []
    with pytest.raises(ValueError, match="reset"):
        env.step({"od_0": np.ones(3)})


def test_supersuit_vectorisation():
    import supersuit as ss

    env = congestion_v0.parallel_env(network="braess", max_cycles=5)
    venv = ss.pettingzoo_env_to_vec_env_v1(env)
    venv = ss.concat_vec_envs_v1(venv, 2, num_cpus=0, base_class="stable_baselines3")
    try:
        assert venv.num_envs == 2
        observations = venv.reset()
        assert observations.shape == (2, 9)
        np.testing.assert_allclose(observations[:, 6:], 1 / 3, rtol=1e-6)  # uniform split at reset
        observations, rewards, dones, infos = venv.step(np.ones((2, 3), dtype=np.float32))
        assert observations.shape == (2, 9) and rewards.shape == (2,) and dones.shape == (2,)
        np.testing.assert_allclose(rewards, -92.0 - 1.0 * (np.log(1 / 3) + 1.0), rtol=1e-6)
        assert not dones.any()
    finally:
        venv.close()


@requires_sioux_falls
def test_sioux_falls_supersuit_vectorisation():
    import supersuit as ss

    env = congestion_v0.parallel_env(network="sioux_falls", max_cycles=5)
    venv = ss.concat_vec_envs_v1(
        ss.pettingzoo_env_to_vec_env_v1(env), 2, num_cpus=0, base_class="stable_baselines3"
    )
    try:
        assert venv.num_envs == 2 * 528
        assert venv.reset().shape == (1056, 9)
        observations, rewards, dones, _ = venv.step(np.ones((1056, 3), dtype=np.float32))
        assert observations.shape == (1056, 9) and np.all(rewards < 0)
        np.testing.assert_array_equal(rewards[:528], rewards[528:])
    finally:
        venv.close()


@pytest.mark.parametrize("toll", [0.0, 5.0, 12.0])
def test_entropic_mirror_descent_through_the_env_reaches_the_logit_equilibrium(toll):
    env = congestion_v0.parallel_env(
        network="braess", eta=1.0, max_cycles=300, toll_bounds=(0.0, 20.0), feedback=("gradient",)
    )
    game = env.game
    theta = np.zeros(5)
    theta[BRAESS_BRIDGE_LINK] = toll
    target = game.equilibrium(theta)
    learner = EntropicMirrorDescent(game.strategy_set, step_size=0.02, mixing=0.0)
    start = np.array([0.6, 0.1, 0.3])
    trajectory = [x for x, _ in play_env(env, learner, seed=0, incentive=theta, initial_strategy=start)]
    assert len(trajectory) == 300
    errors = [np.max(np.abs(x - target)) for x in trajectory]
    assert errors[0] > 1e-2
    assert errors[-1] < 1e-8, errors[-1]
    np.testing.assert_allclose(env.unwrapped.strategy, trajectory[-1])
    # the equilibrium is the unique fixed point: it costs more than the logit-free optimum
    assert game.social_cost(trajectory[-1], theta) >= game.social_optimum().value


def test_mirror_descent_with_mixing_and_noise_gets_close():
    env = congestion_v0.parallel_env(
        network="braess", eta=1.0, max_cycles=400, feedback_noise_std=1.0, feedback=("gradient",)
    )
    game = env.game
    theta = np.zeros(5)
    theta[BRAESS_BRIDGE_LINK] = 5.0
    target = game.equilibrium(theta)
    learner = EntropicMirrorDescent(game.strategy_set, step_size=0.005, mixing=1e-4)
    *_, (x, _) = play_env(env, learner, seed=3, incentive=theta)
    assert np.max(np.abs(x - target)) < 0.02
    assert np.max(np.abs(game.strategy_set.uniform_point() - target)) > 0.1


def test_pigou_network_by_name():
    env = congestion_v0.parallel_env(network="pigou")
    env.reset(seed=0)
    assert env.game.network.n_links == pigou().n_links
    observations, *_ = env.step({"od_0": np.array([0.0, 1.0, 0.0])})  # all on the constant link
    np.testing.assert_allclose(observations["od_0"][:3], [0.0, 1.0, 0.0])  # t_2(0) = 0, t_1 = 1
