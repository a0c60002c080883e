"""``aggregative_v0``: an aggregative game with planner-set linear prices (SPEC G3).

=====================  ==================================================================
Agents                 ``agent_0 … agent_{n-1}`` (default n = 100)
Action space           ``Box(0, x̄_i, (1,), float32)``: the agent's action this round
Observation space      ``Box(3,)``: ``[own price p_i, last mean action σ, own last action]``
State space            ``Box(2n,)``: ``[actions, prices]``
Parameters             :class:`AggregativeConfig`: ``n_agents, alpha, beta, kappa, cap,
                       price_bounds, instance_seed, max_cycles, feedback_noise_std``;
                       plus ``incentive, render_mode``
=====================  ==================================================================

Each round every agent picks ``x^i`` and pays ``J_i(x) + p_i x^i`` with
``J_i(x) = ½ q_i (x^i)² − b_i x^i + x^i (α + β σ(x))``; its reward is minus that cost.
Defaults (SPEC G3): ``q_i ~ U[1, 2]``, ``b_i ~ U[5, 10]`` drawn from ``instance_seed``,
``α = 1``, ``β = 1``, ``κ = 2``, ``x̄_i = 10``, prices in ``[−20, 20]``. The game is a strongly
monotone potential game (unique equilibrium for every price) and the planner's cost
``Φ(x) = Σ J_i + (κn/2)σ²`` is strongly convex (unique optimum); see
:mod:`incentive_envs.aggregative.game`.

Incentives
----------
Per-agent linear prices ``p`` (the social-gradient paper's incentive), set between rounds
with ``env.set_incentive(p)``. ``infos[agent]["gradient"]`` is ``−∂(J_i + p_i x^i)/∂x^i`` at
the actions just played (plus optional Gaussian noise); ``infos[agent]["best_response"]``
the exact best response. One step costs O(n) on the array path (everything goes through σ).

Version history
---------------
* v0: initial release.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from incentive_envs.aggregative.game import AggregativeGame, AggregativeParams
from incentive_envs.env import (
    MAX_AGENTS,
    IncentiveParallelEnv,
    StageGameConfig,
    env_constructors,
    observation_columns,
)
from incentive_envs.validation import build_config, check_positive_int, check_seed


@dataclass(frozen=True, kw_only=True)
class AggregativeConfig(StageGameConfig):
    """Parameters of ``aggregative_v0`` (defaults: the instance of the module docstring)."""

    n_agents: int = 100
    """Number of agents ``n``."""
    alpha: float = 1.0
    """Congestion intercept ``α``."""
    beta: float = 1.0
    """Congestion slope ``β >= 0`` of the mean action."""
    kappa: float = 2.0
    """Externality weight ``κ >= 0`` in the social cost."""
    cap: float = 10.0
    """Every agent's action cap ``x̄_i > 0``."""
    price_bounds: tuple[float, float] = (-20.0, 20.0)
    """Bounds of every price ``p_i``."""
    instance_seed: int = 0
    """Seed of ``q_i ~ U[1, 2]`` and ``b_i ~ U[5, 10]`` (the game instance)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "n_agents", check_positive_int(self.n_agents, "n_agents", MAX_AGENTS))
        object.__setattr__(self, "instance_seed", check_seed(self.instance_seed, "instance_seed"))


def aggregative_game(config: AggregativeConfig) -> AggregativeGame:
    """The model of the game ``config`` describes."""
    return AggregativeGame(
        AggregativeParams.default(
            config.n_agents,
            seed=config.instance_seed,
            alpha=config.alpha,
            beta=config.beta,
            kappa=config.kappa,
            cap=config.cap,
            price_bounds=config.price_bounds,
        )
    )


class AggregativeEnv(IncentiveParallelEnv):
    """The ``aggregative_v0`` parallel environment (see the module docstring).

    Parameters
    ----------
    incentive : array_like, optional
        Initial prices; default 0.
    render_mode : {None, "ansi", "human"}
    **params
        The fields of :class:`AggregativeConfig`.
    """

    metadata = {"render_modes": ["ansi", "human"], "name": "aggregative_v0", "is_parallelizable": True}

    def __init__(self, *, incentive=None, render_mode: str | None = None, **params):
        config = build_config(AggregativeConfig, params, "aggregative_v0")
        super().__init__(
            aggregative_game(config), "agent", config, incentive=incentive, render_mode=render_mode
        )

    def _observation_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        p = self.game.params
        low, high = p.price_bounds
        top = float(p.cap.max())
        return np.array([low, 0.0, 0.0]), np.array([high, top, top])

    def _observations(self, strategy: np.ndarray, incentive: np.ndarray) -> np.ndarray:
        return observation_columns(incentive, self.game.aggregate(strategy), strategy)


parallel_env, raw_env = env_constructors(AggregativeEnv)
env = raw_env
