"""``cournot_v0``: Cournot oligopoly with a planner-set emission tax.

=====================  ==================================================================
Agents                 ``firm_0 … firm_{n-1}`` (default n = 100)
Action space           ``Box(0, a_max, (1,), float32)``: the firm's output this round
Observation space      ``Box(3,)``: ``[own tax π^i, last market price p(Q), own last output]``
State space            ``Box(2n,)``: ``[outputs, taxes]``
Parameters             ``n_firms, k, p0, gamma, tau, emission_noise_std, instance_seed,
                       max_output, tax_bounds, max_cycles, feedback_noise_std, incentive,
                       render_mode`` (or a ready ``params=CournotParams(...)``)
=====================  ==================================================================

One round is one play of the stage game of paper Example 3.1 / SPEC G1: every firm picks
an output, the market clears at ``p(Q) = p0 − γQ``, and firm ``i`` earns the profit net of
tax ``a^i p(Q) − c^i a^i − (k/2)(a^i)^2 − π^i a^i``.

Incentives
----------
The planner's incentive is the tax vector ``π`` (one tax per firm, within ``tax_bounds``;
negative values are subsidies). Set it between rounds with ``env.set_incentive(π)`` or at
``reset(options={"incentive": π})``. The planner's cost is ``−W(a)``, minus social welfare
(consumer surplus minus production cost minus emission damage ``τ Σ d^i a^i``); the full
model — exact equilibrium, first best ``W*``, Jacobian products — is ``env.game``
(:class:`~incentive_envs.cournot.game.CournotGame`).

Feedback
--------
``infos[firm]["gradient"]`` is the firm's marginal profit ``v^i`` at the outputs just
played, plus ``N(0, feedback_noise_std²)`` noise; ``infos[firm]["best_response"]`` its exact
best response. ``reset(options={"initial_strategy": a0})`` sets the profile the first
feedback refers to (default: all outputs 0).

Version history
---------------
* v0: initial release.
"""

from __future__ import annotations

import numpy as np

from incentive_envs.cournot.game import PAPER_EMISSION_NOISE_STD, CournotGame, CournotParams
from incentive_envs.env import IncentiveParallelEnv, env_constructors


class CournotEnv(IncentiveParallelEnv):
    """The ``cournot_v0`` parallel environment (see the module docstring)."""

    metadata = {"render_modes": ["ansi"], "name": "cournot_v0", "is_parallelizable": True}

    def __init__(
        self,
        n_firms: int = 100,
        k: float = 0.0,
        *,
        p0: float = 100.0,
        gamma: float = 1.0,
        tau: float = 10.0,
        emission_noise_std: float = PAPER_EMISSION_NOISE_STD,
        instance_seed: int = 0,
        max_output: float | None = None,
        tax_bounds: tuple[float, float] | None = None,
        params: CournotParams | None = None,
        max_cycles: int = 100,
        feedback_noise_std: float = 0.0,
        incentive=None,
        render_mode: str | None = None,
    ):
        if params is None:
            params = CournotParams.paper(
                n_firms,
                p0=p0,
                gamma=gamma,
                tau=tau,
                k=k,
                emission_noise_std=emission_noise_std,
                seed=instance_seed,
                max_output=max_output,
                tax_bounds=tax_bounds,
            )
        super().__init__(
            CournotGame(params),
            "firm",
            max_cycles=max_cycles,
            feedback_noise_std=feedback_noise_std,
            incentive=incentive,
            render_mode=render_mode,
        )

    def _observation_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        p = self.game.params
        low_tax, high_tax = p.tax_bounds
        lowest_price = p.p0 - p.gamma * p.n * p.output_cap
        return np.array([low_tax, lowest_price, 0.0]), np.array([high_tax, p.p0, p.output_cap])

    def _observations(self, strategy: np.ndarray, incentive: np.ndarray) -> np.ndarray:
        price = np.full(strategy.shape, self.game.price(strategy))
        return np.stack((incentive, price, strategy), axis=1)

    def render(self):
        text = super().render()
        if text is None:
            return None
        return f"{text}  price {self.game.price(self._strategy):.6g}  total output {self._strategy.sum():.6g}"


parallel_env, raw_env = env_constructors(CournotEnv)
env = raw_env
