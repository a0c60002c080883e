"""``aggregative_v0``: an aggregative game with planner-set linear prices (SPEC G3).

=====================  ==================================================================
Agents                 ``agent_0 … agent_{n-1}`` (default n = 100)
Action space           ``Box(0, x̄_i, (1,), float32)``: the agent's action this round
Observation space      ``Box(3,)``: ``[own price p_i, last mean action σ, own last action]``
State space            ``Box(2n,)``: ``[actions, prices]``
Parameters             ``n_agents, alpha, beta, kappa, cap, price_bounds, instance_seed,
                       max_cycles, feedback_noise_std, incentive, render_mode``
                       (or a ready ``params=AggregativeParams(...)``)
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

import numpy as np

from incentive_envs.aggregative.game import AggregativeGame, AggregativeParams
from incentive_envs.env import IncentiveParallelEnv, env_constructors


class AggregativeEnv(IncentiveParallelEnv):
    """The ``aggregative_v0`` parallel environment (see the module docstring)."""

    metadata = {"render_modes": ["ansi"], "name": "aggregative_v0", "is_parallelizable": True}

    def __init__(
        self,
        n_agents: int = 100,
        *,
        alpha: float = 1.0,
        beta: float = 1.0,
        kappa: float = 2.0,
        cap: float = 10.0,
        price_bounds: tuple[float, float] = (-20.0, 20.0),
        instance_seed: int = 0,
        params: AggregativeParams | None = None,
        max_cycles: int = 100,
        feedback_noise_std: float = 0.0,
        incentive=None,
        render_mode: str | None = None,
    ):
        if params is None:
            params = AggregativeParams.default(
                n_agents,
                seed=instance_seed,
                alpha=alpha,
                beta=beta,
                kappa=kappa,
                cap=cap,
                price_bounds=price_bounds,
            )
        super().__init__(
            AggregativeGame(params),
            "agent",
            max_cycles=max_cycles,
            feedback_noise_std=feedback_noise_std,
            incentive=incentive,
            render_mode=render_mode,
        )

    def _observation_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        p = self.game.params
        low, high = p.price_bounds
        top = float(p.cap.max())
        return np.array([low, 0.0, 0.0]), np.array([high, top, top])

    def _observations(self, strategy: np.ndarray, incentive: np.ndarray) -> np.ndarray:
        sigma = np.full(strategy.shape, self.game.aggregate(strategy))
        return np.stack((incentive, sigma, strategy), axis=1)


parallel_env, raw_env = env_constructors(AggregativeEnv)
env = raw_env
