"""Planner wrapper: PettingZoo conformance, determinism, updates exactly every K steps,
what the planner observes, bad arguments, and a short PPO run through SuperSuit."""

import warnings

import numpy as np
import pytest
from pettingzoo.test import api_test, parallel_api_test
from pettingzoo.utils.conversions import parallel_to_aec

from agents import EuclideanMirrorDescent
from incentive_envs import cournot_v0
from incentive_envs.testing import identical
from planners import Planner, PlannerWrapper, SingleLoopPlanner, ZerothOrderPlanner


def _single_loop(game, step_size=0.1):
    """The single loop with projected gradient play as its model of the (RL) followers."""
    return SingleLoopPlanner(game, EuclideanMirrorDescent(game.strategy_set, 0.1), step_size)


class RecordingPlanner(Planner):
    """Adds 1 to every tax (within bounds) and records what it was shown."""

    def __init__(self, game):
        super().__init__(game)
        self.seen = []

    def _update(self, theta, x, k):
        self.seen.append((theta.copy(), x.copy(), k))
        return self.game.incentive_set.project(theta + 1.0)


def _wrapped(planner_factory, update_every=3, **env_kwargs):
    env = cournot_v0.parallel_env(n_firms=4, max_cycles=30, **env_kwargs)
    return PlannerWrapper(env, planner_factory(env.game), update_every)


@pytest.mark.parametrize(
    "factory",
    [
        lambda game: _single_loop(game, 0.1),
        lambda game: ZerothOrderPlanner(game, np.random.default_rng(0), probe_steps=2),
    ],
    ids=["single_loop", "zeroth_order"],
)
def test_pettingzoo_conformance(factory):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parallel_api_test(_wrapped(factory, feedback_noise_std=0.3), num_cycles=100)
        api_test(parallel_to_aec(_wrapped(factory)), num_cycles=100)


def test_multi_step_determinism_with_noise_and_a_probing_planner():
    def rollout():
        wrapper = _wrapped(
            lambda g: ZerothOrderPlanner(g, np.random.default_rng(4), probe_steps=2),
            2,
            feedback_noise_std=0.5,
        )
        trace = [wrapper.reset(seed=9)]
        rng = np.random.default_rng(1)
        while wrapper.agents:
            outputs = rng.uniform(0, 5, size=(4, 1))
            trace.append(
                wrapper.step({a: outputs[i] for i, a in enumerate(wrapper.agents)}) + (wrapper.incentive,)
            )
        return trace

    first, second = rollout(), rollout()
    assert len(first) == 31

    assert all(identical(a, b) for a, b in zip(first, second))


def test_incentives_change_exactly_every_k_steps_and_the_planner_sees_the_played_profile():
    wrapper = _wrapped(RecordingPlanner, update_every=3)
    wrapper.reset(seed=0)
    rng = np.random.default_rng(0)
    history, played = [wrapper.incentive], []
    for step in range(1, 16):
        outputs = rng.uniform(0, 5, size=4)
        played.append(outputs)
        observations, _, _, _, infos = wrapper.step(
            {a: outputs[i : i + 1] for i, a in enumerate(wrapper.agents)}
        )
        history.append(wrapper.incentive)
        changed = not np.array_equal(history[-1], history[-2])
        assert changed == (step % 3 == 0)
        assert infos["firm_0"]["planner_iteration"] == step // 3
        # observations show the tax of the round just played
        assert observations["firm_1"][0] == pytest.approx(history[-2][1])
    planner = wrapper.planner
    assert [k for _, _, k in planner.seen] == [0, 1, 2, 3, 4]
    for j, (theta, x, _) in enumerate(planner.seen):
        np.testing.assert_allclose(x, played[3 * j + 2])
        np.testing.assert_allclose(theta, np.full(4, float(j)))


def test_reset_posts_the_planners_initial_incentive_and_restarts_the_clock():
    wrapper = _wrapped(RecordingPlanner, update_every=1)
    wrapper.reset(seed=0)
    for _ in range(4):
        wrapper.step({a: np.ones(1) for a in wrapper.agents})
    assert wrapper.planner_iterations == 4 and np.all(wrapper.incentive == 4.0)
    observations, infos = wrapper.reset(seed=0)
    assert wrapper.planner_iterations == 0 and np.all(wrapper.incentive == 0.0)
    assert infos["firm_3"]["planner_iteration"] == 0 and observations["firm_3"][0] == 0.0


def test_the_slow_timescale_outlives_episodes():
    """RL libraries reset at every episode end: reset() keeps the incentive, the planner's
    state and its clock; reset(options={"incentive": θ}) posts θ and keeps the clock."""
    wrapper = _wrapped(RecordingPlanner, update_every=1)
    wrapper.reset(seed=0)
    for _ in range(3):
        wrapper.step({a: np.ones(1) for a in wrapper.agents})
    observations, infos = wrapper.reset()
    assert wrapper.planner_iterations == 3 and np.all(wrapper.incentive == 3.0)
    assert infos["firm_0"]["planner_iteration"] == 3 and observations["firm_0"][0] == 3.0
    wrapper.step({a: np.ones(1) for a in wrapper.agents})
    assert wrapper.planner_iterations == 4 and np.all(wrapper.incentive == 4.0)
    wrapper.reset(options={"incentive": np.full(4, 10.0)})
    assert wrapper.planner_iterations == 4 and np.all(wrapper.incentive == 10.0)


def test_reset_with_a_seed_reproduces_a_stochastic_planner():
    wrapper = _wrapped(lambda g: ZerothOrderPlanner(g, 0, probe_steps=1), update_every=1)
    sequences = []
    for _ in range(2):
        wrapper.reset(seed=0)
        taxes = [wrapper.incentive]
        for _ in range(6):
            wrapper.step({a: np.ones(1) for a in wrapper.agents})
            taxes.append(wrapper.incentive)
        sequences.append(np.array(taxes))
    np.testing.assert_array_equal(sequences[0], sequences[1])


def test_bad_arguments_raise_value_errors():
    env = cournot_v0.parallel_env(n_firms=3)
    other = cournot_v0.parallel_env(n_firms=3)
    with pytest.raises(ValueError, match="update_every"):
        PlannerWrapper(env, _single_loop(env.game), 0)
    with pytest.raises(ValueError, match="env's own game"):
        PlannerWrapper(env, _single_loop(other.game), 1)
    with pytest.raises(ValueError, match="planner"):
        PlannerWrapper(env, "single_loop", 1)
    with pytest.raises(ValueError, match="env must"):
        PlannerWrapper(object(), _single_loop(env.game), 1)


def test_short_ppo_run_through_supersuit_on_the_wrapped_env():
    import supersuit as ss
    from stable_baselines3 import PPO

    wrapper = _wrapped(lambda g: _single_loop(g, 0.05), update_every=5)
    vec = ss.concat_vec_envs_v1(
        ss.pettingzoo_env_to_vec_env_v1(wrapper), 1, num_cpus=0, base_class="stable_baselines3"
    )
    model = PPO("MlpPolicy", vec, n_steps=32, batch_size=32, n_epochs=1, verbose=0, device="cpu")
    model.learn(128)
    observations = vec.reset()
    iterations = []
    for _ in range(12):  # SuperSuit copies the env: read the planner's clock from the infos
        action, _ = model.predict(observations, deterministic=True)
        assert action.shape == (4, 1)
        observations, _, _, infos = vec.step(action)
        iterations.append(infos[0]["planner_iteration"])
    # the planner kept its clock through SuperSuit's resets and ticks every 5 rounds
    assert iterations[0] >= 128 // 4 // 5 and iterations[-1] - iterations[0] in (2, 3)
    assert all(later - earlier in (0, 1) for earlier, later in zip(iterations, iterations[1:]))
