"""Drivers that turn a learner into an iterator of joint strategies.

* :func:`play` — the array fast path: the game model computes the feedback.
* :func:`play_env` — through any of the suite's PettingZoo ``ParallelEnv`` s: the feedback is
  read from ``infos[agent][learner.feedback]`` and the strategies are sent as actions.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from incentive_envs.core import IncentiveGame
from incentive_envs.validation import check_scalar


def model_feedback(
    game: IncentiveGame,
    learner,
    x: np.ndarray,
    theta: np.ndarray,
    rng: np.random.Generator | None = None,
    noise_std: float = 0.0,
) -> np.ndarray:
    """The feedback ``learner`` asks for (its ``feedback`` attribute), computed from the model
    (unchecked: callers validate ``x`` and ``θ`` once per run).

    ``"gradient"``: ``v_θ(x)`` plus ``N(0, noise_std²)`` noise drawn from ``rng`` (paper §3,
    stochastic environment); ``"best_response"``: ``BR_θ(x)``; ``"payoffs"``: the
    counterfactual payoffs ``u^i_θ(a, x^{-i})`` of every action ``a`` in ``learner.actions``
    (plus the same noise).
    """
    kind = learner.feedback
    if kind == "best_response":
        return game._best_response(x, theta)
    if kind == "gradient":
        signal = game._pseudo_gradient(x, theta)
    elif kind == "payoffs":
        signal = game._unilateral_rewards(x, theta, learner.actions)
    else:
        raise ValueError(f"unknown feedback kind {kind!r}; expected 'gradient', 'best_response' or 'payoffs'")
    if noise_std > 0:
        signal = signal + noise_std * rng.standard_normal(signal.shape)
    return signal


def play(
    game: IncentiveGame,
    learner,
    theta,
    x0=None,
    *,
    rng: np.random.Generator | None = None,
    noise_std: float = 0.0,
) -> Iterator[np.ndarray]:
    """Yield ``x_1, x_2, …`` of ``learner`` playing ``game`` at the fixed incentive ``theta``.

    Parameters
    ----------
    game : IncentiveGame
    learner : object with ``feedback`` and ``step(x, k, feedback)``
    theta : array_like
        The incentive, held fixed.
    x0 : array_like, optional
        Initial joint strategy; default: the strategy set's canonical point.
    rng : numpy.random.Generator, optional
        Source of the feedback noise (required when ``noise_std > 0``).
    noise_std : float
        Standard deviation of the Gaussian noise on gradient feedback.

    Examples
    --------
    >>> from itertools import islice
    >>> from incentive_envs import CournotGame, CournotParams
    >>> from agents import EuclideanMirrorDescent
    >>> game = CournotGame(CournotParams.paper(n=10))
    >>> learner = EuclideanMirrorDescent(game.strategy_set, step_size=0.05)
    >>> *_, x = islice(play(game, learner, theta=[0.0] * 10), 2000)
    """
    theta = game.validate_incentive(theta)
    x = game.strategy_set.uniform_point() if x0 is None else game.validate_strategy(x0, "x0")
    noise_std = check_scalar(noise_std, "noise_std", low=0.0)
    if noise_std > 0 and not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator when noise_std > 0, got {rng!r}")
    if learner.strategy_set is not game.strategy_set and learner.strategy_set.dim != game.strategy_set.dim:
        raise ValueError("learner must be built on the game's strategy set")
    k = 0
    while True:
        x = learner._step(x, k, model_feedback(game, learner, x, theta, rng, noise_std))
        k += 1
        yield x


def play_env(
    env,
    learner,
    *,
    seed: int | None = None,
    initial_strategy=None,
    incentive=None,
) -> Iterator[tuple[np.ndarray, dict]]:
    """Play ``learner`` through a PettingZoo env of this suite until the episode ends.

    Each iteration reads every agent's feedback from ``infos``, takes one learner step for
    all agents at once, sends the new strategies as actions and yields
    ``(joint_strategy, rewards)``. Works with any ``ParallelEnv`` whose infos carry the
    learner's feedback key and an agent-ordered flat strategy (as all of ours do).
    """
    base = env.unwrapped
    options = {}
    if initial_strategy is not None:
        options["initial_strategy"] = initial_strategy
    if incentive is not None:
        options["incentive"] = incentive
    _, infos = env.reset(seed=seed, options=options)
    agents = list(env.agents)
    x = np.concatenate([np.asarray(infos[agent]["strategy"], dtype=np.float64) for agent in agents])
    k = 0
    while env.agents:
        missing = [agent for agent in agents if learner.feedback not in infos[agent]]
        if missing:
            raise ValueError(
                f"infos of {missing[:3]} carry no {learner.feedback!r} feedback for {learner!r}: "
                f"build the env with feedback=({learner.feedback!r},)"
            )
        feedback = np.concatenate(
            [np.asarray(infos[agent][learner.feedback], dtype=np.float64) for agent in agents]
        )
        x = learner.step(x, k, feedback.reshape(learner.feedback_shape()))
        _, rewards, _, _, infos = env.step(base.actions_from_strategy(x))
        k += 1
        yield x, rewards
