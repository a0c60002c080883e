"""CleanupOptimum: the backward induction equals a brute-force expectimax that plays every
joint action and every outcome of a step through CleanupTask.transition; its policy, played in
the real game, earns its value, whatever the agents' order; bad input raises ValueError. (The
scripted division of labour is checked against the optimum in test_cleanup.py.)"""

import functools
import itertools

import numpy as np
import pytest

from incentive_envs.cleanup.game import N_ACTIONS, PRESETS, CleanupParams, CleanupTask
from incentive_envs.cleanup.optimum import CleanupOptimum

TINY = {
    "height": 3,
    "width": 3,
    "river_width": 1,
    "orchard_width": 1,
    "apple_respawn_prob": 0.5,
    "waste_spawn_prob": 0.7,
    "depletion_threshold": 0.7,
    "restoration_threshold": 0.2,
    "initial_waste": 2 / 3,
    "max_cycles": 3,
}
NEVER = 1.0 - 1e-12
"""A uniform draw that triggers nothing (every probability in these tests is below it)."""


def _expectimax(task: CleanupTask) -> float:
    """The optimal expected collective return from reset by exhaustive search: every joint
    action, and every outcome of the step's randomness (which empty orchard cells grow an
    apple, whether waste spreads and to which clean cell) played through
    CleanupTask.transition, weighted by its probability from the rules of the module docstring
    of incentive_envs.cleanup.game. Each outcome's draws sit at the edge of those probabilities
    (just below ``p`` to trigger an event, ``p`` itself not to), so the search also checks that
    transition draws with exactly those probabilities."""
    params = task.params
    n_orchard, n_river = task.orchard_cells.size, task.river_cells.size
    joint_actions = np.array(list(itertools.product(range(N_ACTIONS), repeat=task.n_agents)))

    def batch(positions, waste, apples, size):
        return task.make_state(
            np.tile(positions, (size, 1)), np.tile(waste, (size, 1)), np.tile(apples, (size, 1))
        )

    def noise(grow, event, chosen, growth, spread):
        """The draws of one outcome: the apple draws of ``grow`` just below ``growth``, the
        others at ``growth``; the waste draw just below ``spread`` if ``event``, else at it."""
        keys = np.zeros(n_river)
        keys[chosen] = 0.5
        edge = np.nextafter(np.array([growth, spread]), 0.0)
        apples = np.where(grow, edge[0], growth)
        return np.concatenate((apples, [edge[1] if event else spread], keys))

    @functools.cache
    def value(step, positions, waste, apples):
        if step == params.max_cycles:
            return 0.0
        n_joint = len(joint_actions)
        state = batch(positions, waste, apples, n_joint)
        quiet = np.tile(noise(np.zeros(n_orchard, bool), False, 0, NEVER, NEVER), (n_joint, 1))
        settled, rewards, _ = task.transition(state, joint_actions, quiet)  # nothing random happened
        lush = quiet.copy()
        lush[:, :n_orchard] = 0.0
        can_grow = task.transition(state, joint_actions, lush)[0].apples & ~settled.apples
        best = -np.inf
        for k in range(n_joint):
            share = settled.waste[k].mean()
            growth = params.apple_respawn_prob * np.clip(
                (params.depletion_threshold - share)
                / (params.depletion_threshold - params.restoration_threshold),
                0.0,
                1.0,
            )
            clean = np.flatnonzero(~settled.waste[k])
            spreads = share < params.depletion_threshold and clean.size > 0
            events = [(False, 0, 1.0)]
            if spreads:
                events = [(False, 0, 1 - params.waste_spawn_prob)] + [
                    (True, cell, params.waste_spawn_prob / clean.size) for cell in clean
                ]
            rows, probabilities = [], []
            eligible = np.flatnonzero(can_grow[k])
            for grown in itertools.product((False, True), repeat=eligible.size):
                grow = np.zeros(n_orchard, bool)
                grow[eligible[list(grown)]] = True
                apple_probability = growth ** sum(grown) * (1 - growth) ** (eligible.size - sum(grown))
                for event, cell, event_probability in events:
                    rows.append(noise(grow, event, cell, growth, params.waste_spawn_prob))
                    probabilities.append(apple_probability * event_probability)
            after, _, _ = task.transition(
                batch(positions, waste, apples, len(rows)),
                np.tile(joint_actions[k], (len(rows), 1)),
                np.array(rows),
            )
            total = rewards[k].sum() + sum(
                p * value(step + 1, tuple(after.positions[b]), tuple(after.waste[b]), tuple(after.apples[b]))
                for b, p in enumerate(probabilities)
                if p > 0
            )
            best = max(best, total)
        return best

    starts = [
        value(0, tuple(task.start_cells), tuple(np.isin(range(n_river), cells)), (False,) * n_orchard)
        for cells in itertools.combinations(range(n_river), task.n_initial_waste)
    ]
    return float(np.mean(starts))


@pytest.mark.parametrize(
    "overrides",
    [
        {"n_agents": 1, "width": 4, "max_cycles": 4},
        {"n_agents": 2},
        {"n_agents": 2, "beam_length": 1, "beam_radius": 0, "initial_waste": 1.0},
        # river and orchard of different sizes, and a depletion share the waste can pass
        {"n_agents": 1, "width": 4, "river_width": 2, "max_cycles": 3},
        {"n_agents": 1, "width": 4, "orchard_width": 2, "max_cycles": 3},
        {
            "n_agents": 1,
            "width": 4,
            "max_cycles": 4,
            "beam_radius": 0,
            "depletion_threshold": 0.5,
            "restoration_threshold": 0.1,
        },
    ],
)
def test_backward_induction_equals_brute_force_expectimax(overrides):
    params = CleanupParams(**{**TINY, **overrides})
    expected = _expectimax(CleanupTask(params))
    assert expected > 0.5
    assert CleanupOptimum(params).value == pytest.approx(expected, rel=1e-12, abs=1e-12)


def _play(optimum: CleanupOptimum, games: int, seed: int) -> np.ndarray:
    task = optimum.task
    rng = np.random.default_rng(seed)
    state = task.reset(games, rng)
    total = np.zeros(games)
    for step in range(task.max_steps):
        state, rewards, _ = task.step(state, optimum.actions(step, state), rng)
        total += rewards.sum(axis=1)
    return total


def test_the_optimal_policy_earns_its_value_in_the_real_game():
    params = CleanupParams(
        **{**PRESETS["7x7"], "height": 4, "width": 5, "max_cycles": 14, "apple_respawn_prob": 0.3}
    )
    optimum = CleanupOptimum(params, keep_policy=True)
    returns = _play(optimum, games=20_000, seed=0)
    standard_error = returns.std() / np.sqrt(returns.size)
    assert optimum.value > 2.0
    assert abs(returns.mean() - optimum.value) < 4 * standard_error


def test_the_policy_follows_the_agents_in_any_order():
    params = CleanupParams(**{**TINY, "n_agents": 3, "max_cycles": 2})
    optimum = CleanupOptimum(params, keep_policy=True)
    task, rng = optimum.task, np.random.default_rng(2)
    positions = np.array([rng.permutation(task.n_cells)[:3] for _ in range(300)])
    waste = rng.random((300, task.river_cells.size)) < 0.5
    apples = rng.random((300, task.orchard_cells.size)) < 0.5
    ordered = np.sort(positions, axis=1)
    reference = optimum.actions(0, task.make_state(ordered, waste, apples))
    assert len({tuple(row) for row in reference}) > 10  # many different joint actions
    for permutation in itertools.permutations(range(3)):
        permuted = optimum.actions(0, task.make_state(ordered[:, permutation], waste, apples))
        np.testing.assert_array_equal(permuted, reference[:, permutation])


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: CleanupOptimum(PRESETS["7x7"]), "params must be CleanupParams"),
        (lambda: CleanupOptimum(CleanupParams(**PRESETS["10x10"])), "params describe a map too large"),
        (lambda: CleanupOptimum(CleanupParams(**TINY), keep_policy=1), "keep_policy"),
        (
            lambda: CleanupOptimum(CleanupParams(**{**PRESETS["7x7"], "max_cycles": 200})),
            r"params.max_cycles = 200 is too long",
        ),
        (
            lambda: CleanupOptimum(
                CleanupParams(**{**PRESETS["7x7"], "n_agents": 1, "max_cycles": 3000}), keep_policy=True
            ),
            r"keep_policy=True needs a table of params.max_cycles = 3000",
        ),
    ],
)
def test_bad_params_raise_value_errors(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_bad_policy_queries_raise_value_errors():
    params = CleanupParams(**TINY)
    state = CleanupTask(params).reset(2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="keep_policy=True"):
        CleanupOptimum(params).actions(0, state)
    optimum = CleanupOptimum(params, keep_policy=True)
    with pytest.raises(ValueError, match="step"):
        optimum.actions(params.max_cycles, state)
    with pytest.raises(ValueError, match="state must be a CleanupState"):
        optimum.actions(0, state.positions)
    other = CleanupTask(CleanupParams(**{**TINY, "height": 4})).reset(2, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"positions\[0, 1\] = 10 is not a cell"):
        optimum.actions(0, other)
