"""The conformance suite, shipped with the package so that a new game, env, learner or planner
is checked without new test code (PettingZoo ships ``pettingzoo.test`` the same way).

* :func:`check_game` — a game's model: every Jacobian product against finite differences of
  the pseudo-gradient and adjointness, the social cost's gradients, the equilibrium's residual,
  the hypergradient of ``f*(θ) = f(θ, x*(θ))`` (a dense implicit-function reference on the
  coordinates neither at a bound nor pinned by a payoff kink, computed here independently of
  the planners) against finite differences, the social optimum against nearby feasible points
  (a second best, :attr:`~incentive_envs.core.SocialOptimum.incentive`, against nearby
  incentives), the declared capabilities, and input validation;
* :func:`check_env` — PettingZoo's ``parallel_api_test``, ``api_test(parallel_to_aec(env))``,
  ``max_cycles_test``, ``render_test`` and ``parallel_seed_test``, plus multi-step determinism
  under a seed and ``reset(seed)`` reproducibility (works through wrappers such as
  :class:`planners.PlannerWrapper`);
* :func:`check_learner` — updates stay feasible, validation, determinism, ``state_dict`` round
  trip, and (differentiable learners) the fixed-point map's VJPs and adjoint system;
* :func:`check_planner` — updates stay in Θ, validation, ``reset(seed)`` reproducibility and a
  JSON ``state_dict`` round trip that reproduces the continuation exactly.

Each raises :class:`ConformanceError` (an ``AssertionError``) describing the first violation.
Learners and planners are checked by duck typing, so this module depends on nothing above
:mod:`incentive_envs`.
"""

from __future__ import annotations

import copy
import json
import math
import types
import warnings
from collections.abc import Callable

import numpy as np

from incentive_envs.core import IncentiveGame


class ConformanceError(AssertionError):
    """A conformance check failed."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConformanceError(message)


def _random_strategy(game: IncentiveGame, rng: np.random.Generator) -> np.ndarray:
    """A random point well inside the strategy set (boxes: 10–90% of each finite range)."""
    strategy_set = game.strategy_set
    if strategy_set.kind == "simplex":
        weights = rng.uniform(0.2, 1.0, strategy_set.dim)
        return weights / np.repeat(strategy_set.block_sum(weights), strategy_set.agent_sizes)
    if strategy_set.kind == "box":
        lower = np.where(np.isfinite(strategy_set.lower), strategy_set.lower, -1.0)
        upper = np.where(np.isfinite(strategy_set.upper), strategy_set.upper, lower + 2.0)
        return lower + rng.uniform(0.1, 0.9, strategy_set.dim) * (upper - lower)
    return rng.standard_normal(strategy_set.dim)


def _random_incentive(game: IncentiveGame, rng: np.random.Generator, low=0.2, high=0.8) -> np.ndarray:
    incentive_set = game.incentive_set
    return incentive_set.lower + rng.uniform(low, high, incentive_set.dim) * (
        incentive_set.upper - incentive_set.lower
    )


def _tangent(game: IncentiveGame, rng: np.random.Generator) -> np.ndarray:
    """A direction that keeps simplex points on their simplices (zero block sums)."""
    tangent = rng.standard_normal(game.strategy_set.dim)
    if game.strategy_set.kind == "simplex":
        sizes = game.strategy_set.agent_sizes
        tangent -= np.repeat(game.strategy_set.block_sum(tangent) / np.asarray(sizes), sizes)
    return tangent


def _close(actual, expected, rtol: float, what: str) -> None:
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    scale = max(1.0, float(np.max(np.abs(expected))) if expected.size else 1.0)
    error = float(np.max(np.abs(actual - expected))) if expected.size else 0.0
    _require(error <= rtol * scale, f"{what}: max deviation {error:.3g} exceeds {rtol:g} × {scale:.3g}")


def _steps(game: IncentiveGame, x: np.ndarray, theta: np.ndarray) -> tuple[float, float]:
    """Finite-difference steps for unit-size directions that stay inside the sets."""
    strategy_step = 1e-7 if game.strategy_set.kind == "simplex" else 1e-6 * max(1.0, float(np.max(np.abs(x))))
    room = np.minimum(theta - game.incentive_set.lower, game.incentive_set.upper - theta)
    theta_step = min(1e-6 * max(1.0, float(np.max(np.abs(theta)))), 0.1 * float(np.min(room)))
    return strategy_step, theta_step


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / max(float(np.max(np.abs(vector))), 1e-300)


def _check_products(game: IncentiveGame, rng: np.random.Generator, rtol: float) -> None:
    for _ in range(3):
        x, theta = _random_strategy(game, rng), _random_incentive(game, rng)
        step, theta_step = _steps(game, x, theta)
        tangent, direction = _unit(_tangent(game, rng)), _unit(rng.standard_normal(game.incentive_set.dim))
        cotangent = rng.standard_normal(game.strategy_set.dim)
        numeric = (
            game.pseudo_gradient(x + step * tangent, theta) - game.pseudo_gradient(x - step * tangent, theta)
        ) / (2 * step)
        _close(
            game.jvp_x(x, theta, tangent),
            numeric,
            rtol,
            "jvp_x against finite differences of the pseudo-gradient",
        )
        _close(
            cotangent @ game.jvp_x(x, theta, tangent),
            game.vjp_x(x, theta, cotangent) @ tangent,
            1e-9,
            "vjp_x is not the adjoint of jvp_x",
        )
        numeric = (
            game.pseudo_gradient(x, theta + theta_step * direction)
            - game.pseudo_gradient(x, theta - theta_step * direction)
        ) / (2 * theta_step)
        _close(game.jvp_theta(x, theta, direction), numeric, rtol, "jvp_theta against finite differences")
        _close(
            cotangent @ game.jvp_theta(x, theta, direction),
            game.vjp_theta(x, theta, cotangent) @ direction,
            1e-9,
            "vjp_theta is not the adjoint of jvp_theta",
        )
        numeric = (
            game.social_cost(x + step * tangent, theta) - game.social_cost(x - step * tangent, theta)
        ) / (2 * step)
        _close(
            game.social_cost_grad_x(x, theta) @ tangent,
            numeric,
            rtol,
            "social_cost_grad_x against finite differences",
        )
        numeric = (
            game.social_cost(x, theta + theta_step * direction)
            - game.social_cost(x, theta - theta_step * direction)
        ) / (2 * theta_step)
        _close(
            game.social_cost_grad_theta(x, theta) @ direction,
            numeric,
            rtol,
            "social_cost_grad_theta against finite differences",
        )
        structure = game.jacobian_x_structure(x, theta)
        if structure is not None and game.strategy_set.dim <= 400:
            dense = structure.dense(game.strategy_set.dim)
            _close(dense, game.jacobian_x(x, theta), 1e-9, "jacobian_x_structure does not match the Jacobian")
        if game.linear_prices:
            _close(
                game.jvp_theta(x, theta, direction),
                -direction,
                1e-12,
                "linear_prices declared but ∂v/∂θ ≠ −I",
            )
            _close(
                game.social_cost_grad_theta(x, theta),
                np.zeros(game.incentive_set.dim),
                0.0,
                "linear_prices declared but ∇_θ f ≠ 0",
            )


def _natural_residual(game: IncentiveGame, x: np.ndarray, theta: np.ndarray) -> float:
    """``‖x − Proj_X(x + t v(x))‖∞ / t``: zero exactly at a Nash equilibrium (the VI)."""
    scale = 1e-3 / max(1.0, float(np.max(np.abs(game.pseudo_gradient(x, theta)))))
    projected = game.strategy_set.project(x + scale * game.pseudo_gradient(x, theta))
    return float(np.max(np.abs(x - projected))) / scale


def _reference_hypergradient(game: IncentiveGame, theta: np.ndarray, margin: float) -> np.ndarray | None:
    """``∇f*(θ)`` by the implicit function theorem on the equilibrium's active set, densely;
    ``None`` when the equilibrium is degenerate (a coordinate near a kink)."""
    x = game.equilibrium(theta)
    jacobian, sensitivity = game.jacobian_x(x, theta), game.jacobian_theta(x, theta)
    grad_x, grad_theta = game.social_cost_grad_x(x, theta), game.social_cost_grad_theta(x, theta)
    strategy_set = game.strategy_set
    if strategy_set.kind == "simplex":
        support = np.flatnonzero(x > margin)
        owners = strategy_set.agent_of_coordinate[support]
        blocks = np.zeros((support.size, strategy_set.n_agents))
        blocks[np.arange(support.size), owners] = 1.0
        kkt = np.block(
            [[jacobian[np.ix_(support, support)], blocks], [blocks.T, np.zeros((blocks.shape[1],) * 2)]]
        )
        rhs = np.vstack((-sensitivity[support], np.zeros((blocks.shape[1], sensitivity.shape[1]))))
        derivative = np.linalg.solve(kkt, rhs)[: support.size]
        return grad_theta + derivative.T @ grad_x[support]
    velocity = game.pseudo_gradient(x, theta)
    if strategy_set.kind == "box":
        scale = np.maximum(1.0, np.abs(np.where(np.isfinite(strategy_set.upper), strategy_set.upper, 1.0)))
        at_lower = x <= strategy_set.lower + margin * scale
        at_upper = x >= strategy_set.upper - margin * scale
        free = ~(at_lower | at_upper)
        degenerate = (at_lower & (velocity > -margin)) | (at_upper & (velocity < margin))
        if np.any(degenerate):
            return None
        pinned = game._pinned_coordinates(x, theta)  # held by a payoff kink, like a bound
        if pinned is not None:
            free &= ~pinned
    else:
        free = np.ones(strategy_set.dim, dtype=bool)
    index = np.flatnonzero(free)
    if index.size == 0:
        return grad_theta
    derivative = -np.linalg.solve(jacobian[np.ix_(index, index)], sensitivity[index])
    return grad_theta + derivative.T @ grad_x[index]


def _check_validation(game: IncentiveGame) -> None:
    x, theta = game.strategy_set.uniform_point(), game.incentive_set.project(np.zeros(game.incentive_set.dim))
    bad_x = {
        "NaN": np.full(game.strategy_set.dim, np.nan),
        "wrong shape": np.zeros(game.strategy_set.dim + 1),
        "string": "0",
        "complex": x.astype(complex),
    }
    bad_theta = {
        "NaN": np.full(game.incentive_set.dim, np.nan),
        "outside Θ": game.incentive_set.upper + 1.0 + np.abs(game.incentive_set.upper),
        "wrong shape": np.zeros(game.incentive_set.dim + 1),
    }
    methods = {
        "rewards": lambda a, b: game.rewards(a, b),
        "pseudo_gradient": lambda a, b: game.pseudo_gradient(a, b),
        "social_cost": lambda a, b: game.social_cost(a, b),
        "social_cost_grad_x": lambda a, b: game.social_cost_grad_x(a, b),
        "vjp_x": lambda a, b: game.vjp_x(a, b, np.zeros(game.strategy_set.dim)),
    }
    for method, call in methods.items():
        for label, value in bad_x.items():
            try:
                call(value, theta)
            except ValueError as error:
                _require(
                    "x" in str(error),
                    f"{method} with a {label} x raised ValueError without naming x: {error}",
                )
            else:
                raise ConformanceError(f"{method} accepted a {label} x")
        for label, value in bad_theta.items():
            try:
                call(x, value)
            except ValueError as error:
                _require(
                    "theta" in str(error),
                    f"{method} with a {label} θ raised ValueError without naming theta: {error}",
                )
            else:
                raise ConformanceError(f"{method} accepted a {label} θ")
    for label, value in bad_theta.items():
        try:
            game.equilibrium(value)
        except ValueError:
            continue
        raise ConformanceError(f"equilibrium accepted a {label} θ")


def check_game(
    game: IncentiveGame, *, seed: int = 0, rtol: float = 1e-5, hypergradient_directions: int = 3
) -> None:
    """Check a game's model (see the module docstring); ``ConformanceError`` on a violation."""
    _require(isinstance(game, IncentiveGame), f"game must be an IncentiveGame, got {type(game).__name__}")
    rng = np.random.default_rng(seed)
    _check_products(game, rng, rtol)
    _check_validation(game)
    for _ in range(2):
        theta = _random_incentive(game, rng)
        x = game.equilibrium(theta)
        _require(game.strategy_set.contains(x, atol=1e-9), "equilibrium(θ) is outside the strategy set")
        residual = _natural_residual(game, x, theta)
        _require(
            residual <= 1e-6 * max(1.0, float(np.max(np.abs(game.pseudo_gradient(x, theta))))),
            f"equilibrium residual {residual:.3g}",
        )
    for _ in range(10):  # the hypergradient at a non-degenerate θ against finite differences
        theta = _random_incentive(game, rng, 0.3, 0.7)
        reference = _reference_hypergradient(game, theta, 1e-6)
        if reference is not None:
            break
    else:
        raise ConformanceError("no non-degenerate incentive found to check the hypergradient at")
    spread = game.incentive_set.upper - game.incentive_set.lower
    for _ in range(hypergradient_directions):
        direction = rng.standard_normal(game.incentive_set.dim) * spread
        step = 1e-6 / max(1e-12, float(np.max(np.abs(direction)))) * max(1.0, float(np.max(np.abs(spread))))
        numeric = (
            game.equilibrium_social_cost(theta + step * direction)
            - game.equilibrium_social_cost(theta - step * direction)
        ) / (2 * step)
        _close(
            reference @ direction,
            numeric,
            1e-4,
            "the implicit hypergradient of f*(θ) against finite differences",
        )
    optimum = game.social_optimum()
    _require(
        game.strategy_set.contains(optimum.strategy, atol=1e-9),
        "social_optimum().strategy is outside the strategy set",
    )
    if optimum.incentive is None:  # the first best over x of a θ-independent cost
        theta0 = game.incentive_set.project(np.zeros(game.incentive_set.dim))
        _close(
            game.social_cost(optimum.strategy, theta0),
            optimum.value,
            1e-9,
            "social_optimum().value is not f(x_so)",
        )
        for _ in range(20):
            nearby = game.strategy_set.project(optimum.strategy + 1e-3 * _tangent(game, rng))
            _require(
                game.social_cost(nearby, theta0) >= optimum.value - 1e-9 * max(1.0, abs(optimum.value)),
                "a feasible point near the social optimum has a lower social cost",
            )
    else:  # the second best over Θ: θ_so, its equilibrium, and no better incentive nearby
        theta_so = game.validate_incentive(optimum.incentive, "social_optimum().incentive")
        _close(
            game.social_cost(optimum.strategy, theta_so),
            optimum.value,
            1e-9,
            "social_optimum().value is not f(θ_so, x_so)",
        )
        _close(
            game.equilibrium(theta_so), optimum.strategy, 1e-9, "social_optimum().strategy is not x*(θ_so)"
        )
        spread = game.incentive_set.upper - game.incentive_set.lower
        for _ in range(20):
            nearby = game.incentive_set.project(
                theta_so + 1e-3 * spread * _unit(rng.standard_normal(spread.size))
            )
            _require(
                game.equilibrium_social_cost(nearby) >= optimum.value - 1e-9 * max(1.0, abs(optimum.value)),
                "an incentive near the second best has a lower equilibrium social cost",
            )
    if game.has_best_response:
        x, theta = _random_strategy(game, rng), _random_incentive(game, rng)
        response = game.best_response(x, theta)
        _require(game.strategy_set.contains(response, atol=1e-9), "best_response is outside the strategy set")
        if game.has_payoffs:
            grid = game.strategy_set.action_grid(201)
            best_on_grid = game.unilateral_rewards(x, theta, grid).max(axis=1)
            mine = game.unilateral_rewards(x, theta, response[:, None])[:, 0]
            _require(
                np.all(mine >= best_on_grid - 1e-9 * np.maximum(1.0, np.abs(best_on_grid))),
                "a grid action beats best_response",
            )
    first_best = game.first_best_incentive()
    if first_best is not None:
        _close(
            game.equilibrium_social_cost(first_best.theta),
            optimum.value,
            1e-8,
            "first_best_incentive does not implement f*",
        )


# -- environments ---------------------------------------------------------------------------


def identical(first, second) -> bool:
    """Whether two outputs (nested dicts, lists and tuples of arrays, torch tensors and
    scalars) are identical: same types, shapes and values, NaN equal to NaN (the comparison
    the determinism and state round-trip checks use)."""
    if type(first) is not type(second):
        return False
    if isinstance(first, np.ndarray):
        return first.shape == second.shape and bool(
            np.array_equal(first, second, equal_nan=first.dtype.kind in "fc")
        )
    if isinstance(first, dict):
        return first.keys() == second.keys() and all(identical(first[key], second[key]) for key in first)
    if isinstance(first, (list, tuple)):
        return len(first) == len(second) and all(identical(a, b) for a, b in zip(first, second))
    if type(first).__module__.startswith("torch") and hasattr(first, "shape"):
        import torch

        return first.shape == second.shape and bool(torch.equal(first, second))
    if isinstance(first, float) and math.isnan(first):
        return math.isnan(second)
    return bool(first == second)


def _rollout(env, seed: int, steps: int) -> list:
    """``steps`` steps with actions sampled from seeded action spaces; resets (without a seed)
    at episode ends."""
    outputs = [env.reset(seed=seed)]
    for index, agent in enumerate(env.possible_agents):
        env.action_space(agent).seed(seed + index)
    for _ in range(steps):
        if not env.agents:
            outputs.append(env.reset())
            continue
        actions = {agent: env.action_space(agent).sample() for agent in env.agents}
        outputs.append(env.step(actions))
    return outputs


def _seeded(env, seed: int = 0):
    """``env`` with every agent's action space seeded, so PettingZoo's tests (which sample
    actions themselves) are deterministic."""
    for index, agent in enumerate(env.possible_agents):
        env.action_space(agent).seed(seed + index)
    return env


def check_env(env_fn: Callable, *, steps: int = 200, num_cycles: int = 100) -> None:
    """Check a parallel env built by ``env_fn(**kwargs)`` (it must accept ``render_mode`` and
    ``max_cycles``; see the module docstring). Actions sampled by PettingZoo's tests come from
    seeded action spaces, so the checks are deterministic."""
    from pettingzoo.test import api_test, max_cycles_test, parallel_api_test, parallel_seed_test, render_test

    def seeded_fn(**kwargs):
        return _seeded(env_fn(**kwargs))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PettingZoo warns about its own foreign reset options
        parallel_api_test(seeded_fn(), num_cycles=num_cycles)
        api_test(_seeded_aec(seeded_fn()), num_cycles=num_cycles)
        max_cycles_test(
            types.SimpleNamespace(
                parallel_env=seeded_fn,
                env=lambda **kwargs: _seeded_aec(seeded_fn(**kwargs)),
            )
        )
        render_test(lambda render_mode=None: _seeded_aec(seeded_fn(render_mode=render_mode)))
        parallel_seed_test(seeded_fn, num_cycles=min(num_cycles, 50))
    first, second = _rollout(env_fn(), 7, steps), _rollout(env_fn(), 7, steps)
    _require(identical(first, second), f"two envs reset with the same seed diverged within {steps} steps")
    env = env_fn()
    _require(
        identical(_rollout(env, 3, 30), _rollout(env, 3, 30)),
        "reset(seed) does not reproduce an episode on the same env",
    )
    env.reset(seed=np.int64(3))  # NumPy integer seeds are seeds too
    _check_env_conventions(_seeded(env_fn()))


def _check_env_conventions(env) -> None:
    """Finite Box observation bounds (SuperSuit's ``normalize_obs_v0`` needs them) and infos at
    ``reset()`` for every agent, with the same keys as at ``step()`` (TorchRL builds its info
    spec from the reset infos and drops keys it did not see there)."""
    from gymnasium import spaces

    for agent in env.possible_agents:
        space = env.observation_space(agent)
        if isinstance(space, spaces.Box):
            _require(
                bool(np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))),
                f"observation_space({agent!r}) has infinite bounds",
            )
    _, reset_infos = env.reset(seed=0)
    step_infos = env.step({agent: env.action_space(agent).sample() for agent in env.agents})[4]
    for agent in step_infos:
        _require(agent in reset_infos, f"reset() returned no infos for {agent!r}")
        _require(
            set(reset_infos[agent]) == set(step_infos[agent]),
            f"infos[{agent!r}] keys differ: reset() {sorted(reset_infos[agent])}, step() {sorted(step_infos[agent])}",
        )


def _seeded_aec(parallel_env):
    from pettingzoo.utils.conversions import parallel_to_aec

    return _seeded(parallel_to_aec(parallel_env))


# -- learners and planners --------------------------------------------------------------------


def check_learner(learner_fn: Callable, game: IncentiveGame, *, seed: int = 0, steps: int = 30) -> None:
    """Check a learner built by ``learner_fn()`` for ``game`` (see the module docstring)."""
    rng = np.random.default_rng(seed)
    learner = learner_fn()
    theta = _random_incentive(game, rng)

    def feedback(learner, x):
        if learner.feedback == "best_response":
            return game.best_response(x, theta)
        if learner.feedback == "payoffs":
            return game.unilateral_rewards(x, theta, learner.actions)
        return game.pseudo_gradient(x, theta)

    def run(learner, x, start, count):
        trajectory = []
        for k in range(start, start + count):
            x = learner.step(x, k, feedback(learner, x))
            _require(game.strategy_set.contains(x, atol=1e-9), f"step {k} left the strategy set")
            trajectory.append(x)
        return trajectory

    x0 = _random_strategy(game, rng)
    first = run(learner, x0, 0, steps)
    _require(
        identical(first, run(learner_fn(), x0, 0, steps)), "two fresh learners diverged on the same feedback"
    )
    saved = json.loads(json.dumps(learner.state_dict()))
    continued = run(learner, first[-1], steps, 5)
    restored = learner_fn()
    restored.load_state_dict(saved)
    _require(
        identical(continued, run(restored, first[-1], steps, 5)),
        "state_dict round trip changed the continuation",
    )
    before = json.dumps(learner.state_dict())
    good_feedback = feedback(learner, first[-1])
    for label, bad in (
        ("NaN", np.full_like(good_feedback, np.nan)),
        ("wrong shape", good_feedback.ravel()[:-1]),
    ):
        try:
            learner.step(first[-1], 0, bad)
        except ValueError:
            _require(
                json.dumps(learner.state_dict()) == before,
                f"a refused {label} feedback changed the learner's state",
            )
            continue
        raise ConformanceError(f"step accepted a {label} feedback")
    if getattr(learner, "differentiable", False):
        _check_learner_map(learner, game, rng, theta)


def _check_learner_map(learner, game, rng, theta) -> None:
    x = game.equilibrium(theta)
    mapped = learner.fixed_point_map(game, x, theta, 0)
    _close(mapped, x, 1e-7, "the equilibrium is not a fixed point of the learner's map")
    point = _random_strategy(game, rng)
    tangent, cotangent = _tangent(game, rng), rng.standard_normal(game.strategy_set.dim)
    step, theta_step = _steps(game, point, theta)
    tangent, direction = _unit(tangent), _unit(rng.standard_normal(game.incentive_set.dim))
    numeric = (
        learner.fixed_point_map(game, point + step * tangent, theta, 0)
        - learner.fixed_point_map(game, point - step * tangent, theta, 0)
    ) / (2 * step)
    grad_x, _ = learner.map_vjp(game, point, theta, 0, cotangent)
    _close(grad_x @ tangent, cotangent @ numeric, 1e-4, "map_vjp (x) against finite differences of the map")
    numeric = (
        learner.fixed_point_map(game, point, theta + theta_step * direction, 0)
        - learner.fixed_point_map(game, point, theta - theta_step * direction, 0)
    ) / (2 * theta_step)
    _, grad_theta = learner.map_vjp(game, point, theta, 0, cotangent)
    _close(
        grad_theta @ direction, cotangent @ numeric, 1e-4, "map_vjp (θ) against finite differences of the map"
    )


def check_planner(
    planner_fn: Callable,
    game: IncentiveGame,
    learner_fn: Callable | None = None,
    *,
    seed: int = 0,
    steps: int = 20,
) -> None:
    """Check a planner built by ``planner_fn()`` for ``game`` (see the module docstring).

    With ``learner_fn`` the followers move as the engine moves them
    (``planner.advance_followers``); without, the planner sees a fixed sequence of random
    feasible joint strategies.
    """
    rng = np.random.default_rng(seed)
    strategies = [_random_strategy(game, rng) for _ in range(2 * steps)]

    def run(planner, learner, theta, x, start, count):
        trajectory = []
        for k in range(start, start + count):
            if learner is None:
                x = strategies[k]
            else:
                x = planner.advance_followers(learner, x, theta, k, np.random.default_rng(k), 0.0)
            theta = planner.update(theta, x, k)
            _require(
                np.all(theta >= game.incentive_set.lower) and np.all(theta <= game.incentive_set.upper),
                f"update {k} left Θ",
            )
            trajectory.append((theta, x))
        return trajectory

    def fresh():
        planner = planner_fn()
        planner.reset(seed)
        return planner, None if learner_fn is None else learner_fn()

    x0 = game.strategy_set.uniform_point()
    planner, learner = fresh()
    first = run(planner, learner, planner.initial_incentive(), x0, 0, steps)
    again, again_learner = fresh()
    _require(
        identical(first, run(again, again_learner, again.initial_incentive(), x0, 0, steps)),
        "reset(seed) does not reproduce the run",
    )
    saved = json.loads(json.dumps(planner.state_dict()))
    saved_learner = None if learner is None else json.loads(json.dumps(learner.state_dict()))
    theta, x = first[-1]
    continued = run(planner, learner, theta, x, steps, steps)
    restored, restored_learner = planner_fn(), None if learner_fn is None else learner_fn()
    restored.load_state_dict(copy.deepcopy(saved))
    if restored_learner is not None:
        restored_learner.load_state_dict(saved_learner)
    _require(
        identical(continued, run(restored, restored_learner, theta, x, steps, steps)),
        "state_dict round trip changed the continuation",
    )
    before = json.dumps(planner.state_dict())
    outside = game.incentive_set.upper + 1.0 + np.abs(game.incentive_set.upper)
    for label, bad_theta, bad_x in (
        ("θ outside Θ", outside, strategies[0]),
        ("NaN strategy", theta, np.full(game.strategy_set.dim, np.nan)),
    ):
        try:
            planner.update(bad_theta, bad_x, 0)
        except ValueError:
            _require(
                json.dumps(planner.state_dict()) == before,
                f"a refused update ({label}) changed the planner's state",
            )
            continue
        raise ConformanceError(f"update accepted {label}")
