"""Coupled-oscillator game with linear prices on phases (SPEC G4).

Agent ``i`` chooses a phase ``x^i ∈ [−π, π]`` to minimise

    J_i(x) + p_i x^i,    J_i(x) = ½ r_i (x^i − ω_i)² + (K/n) Σ_j (1 − cos(x^i − x^j)).

With the order parameter ``R e^{iψ} = (1/n) Σ_j e^{i x^j}``, ``Σ_j sin(x^i − x^j) = nR sin(x^i − ψ)``
and every quantity below is O(n):

    v^i = −(r_i (x^i − ω_i) + K R sin(x^i − ψ) + p_i),
    ∂v/∂x = −diag(r + K R cos(x − ψ)) + (K/n)(c cᵀ + s sᵀ),   c = cos x, s = sin x,
    ∂v/∂p = −I.

The planner's cost adds a synchronisation externality (prices are transfers):

    Φ(x) = Σ_i J_i(x) + (κ/n) Σ_{i<j} (1 − cos(x^i − x^j)) = Σ_i ½ r_i (x^i − ω_i)² + (2K + κ)(n/2)(1 − R²).

Why the defaults (``r_i ~ U[2, 3]``, ``ω_i ~ U[−1, 1]``, ``K = 0.2``, ``κ = 0.4``, prices in
``[−2, 2]``) make everything unique: ``(K/n)(ccᵀ + ssᵀ)`` has eigenvalues in ``[0, K]`` and
``|K R cos| <= K``, so ``−∂v/∂x ⪰ (min r − 2K) I = 1.6 I``: the game is a strongly monotone
potential game with a unique equilibrium for every price; likewise
``∇²Φ ⪰ (min r − 2(2K + κ)) I = 0.4 I``: Φ is strongly convex with a unique minimiser.
Both stay strictly inside ``[−π, π]``: ``|x^i − ω_i| <= (K + |p_i|)/r_i`` at an equilibrium and
``<= (2K + κ)/r_i`` at the optimum, which :class:`OscillatorParams` checks, so the box never binds and the unique optimal price is the
Pigouvian ``p_i* = ∇_iΦ(x^so) − ∇_iJ_i(x^so) = (K + κ) R sin(x_i^so − ψ)``. Equilibrium and
optimum are computed by Newton's method with a Woodbury (diagonal + rank 2) solve to machine
precision.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from incentive_envs.core import (
    FirstBestIncentive,
    IncentiveGame,
    IncentiveSet,
    LowRankJacobian,
    OwnPriceIncentive,
    SocialOptimum,
    StrategySet,
    check_finite_scale,
    frozen,
)
from incentive_envs.validation import (
    as_finite_array,
    as_generator,
    check_bounds_pair,
    check_positive_int,
    check_scalar,
)

NEWTON_TOLERANCE = 1e-13


@dataclass(frozen=True, eq=False)
class OscillatorParams:
    """Parameters of the coupled-oscillator game (see the module docstring).

    Parameters
    ----------
    stiffness : ndarray, shape (n,)
        ``r_i > 0``, how strongly agent ``i`` prefers its natural phase.
    natural_phase : ndarray, shape (n,)
        ``ω_i``.
    coupling : float
        ``K >= 0``, the agents' own coupling.
    externality : float
        ``κ >= 0``, the synchronisation externality in the social cost.
    price_bounds : (float, float)
    """

    stiffness: np.ndarray
    natural_phase: np.ndarray
    coupling: float = 0.2
    externality: float = 0.4
    price_bounds: tuple[float, float] = (-2.0, 2.0)

    def __post_init__(self) -> None:
        stiffness = as_finite_array(self.stiffness, "stiffness")
        if stiffness.ndim != 1 or stiffness.size == 0:
            raise ValueError(f"stiffness must be a non-empty 1-D array, got shape {stiffness.shape}")
        phase = as_finite_array(self.natural_phase, "natural_phase", stiffness.shape)
        if np.any(stiffness <= 0):
            raise ValueError(f"stiffness must be > 0, got min {stiffness.min()!r}")
        for name, array in (("stiffness", stiffness), ("natural_phase", phase)):
            object.__setattr__(self, name, frozen(array))
        coupling = check_scalar(self.coupling, "coupling", low=0.0)
        externality = check_scalar(self.externality, "externality", low=0.0)
        object.__setattr__(self, "coupling", coupling)
        object.__setattr__(self, "externality", externality)
        object.__setattr__(self, "price_bounds", check_bounds_pair(self.price_bounds, "price_bounds"))
        r_min = float(stiffness.min())
        if r_min <= 2 * (2 * coupling + externality):
            raise ValueError(
                f"stiffness must exceed 2(2·coupling + externality) = {2 * (2 * coupling + externality):g} "
                f"for a strongly monotone game and a strongly convex social cost, got min {r_min:g}"
            )
        # |x_i − ω_i| <= (K + |p_i|)/r_i at an equilibrium and <= (2K + κ)/r_i at the optimum
        # (the coupling terms are at most K, resp. 2K + κ, in absolute value)
        equilibrium_reach = np.abs(phase) + (coupling + max(map(abs, self.price_bounds))) / stiffness
        if equilibrium_reach.max() >= np.pi:
            raise ValueError(
                f"natural_phase and price_bounds let an equilibrium phase reach {equilibrium_reach.max():.4g} >= π; "
                "narrow price_bounds or natural_phase"
            )
        optimum_reach = np.abs(phase) + (2 * coupling + externality) / stiffness
        if optimum_reach.max() >= np.pi:
            raise ValueError(
                f"natural_phase, coupling and externality let the social optimum's phase reach "
                f"{optimum_reach.max():.4g} >= π (|x_i − ω_i| <= (2·coupling + externality)/stiffness_i); "
                "narrow natural_phase or lower coupling/externality"
            )

    @property
    def n(self) -> int:
        return int(self.stiffness.shape[0])

    @classmethod
    def default(
        cls,
        n: int = 100,
        *,
        seed: int | np.random.Generator = 0,
        coupling: float = 0.2,
        externality: float = 0.4,
        price_bounds: tuple[float, float] = (-2.0, 2.0),
    ) -> OscillatorParams:
        """``r_i ~ U[2, 3]``, ``ω_i ~ U[−1, 1]`` drawn from ``seed``."""
        n = check_positive_int(n, "n")
        rng = as_generator(seed)
        stiffness = rng.uniform(2.0, 3.0, n)
        phase = rng.uniform(-1.0, 1.0, n)
        return cls(stiffness, phase, coupling, externality, price_bounds)


def _order_parameter(x: np.ndarray) -> tuple[float, float]:
    """``(R, ψ)`` with ``R e^{iψ} = mean(e^{ix})``."""
    mean = np.mean(np.exp(1j * x))
    return float(np.abs(mean)), float(np.angle(mean))


class OscillatorGame(OwnPriceIncentive, IncentiveGame):
    """The model of the coupled-oscillator game; incentives are linear prices on phases."""

    has_best_response = True
    has_payoffs = True

    def __init__(self, params: OscillatorParams):
        if not isinstance(params, OscillatorParams):
            raise ValueError(f"params must be OscillatorParams, got {type(params).__name__}")
        self.params = params
        n = params.n
        self.strategy_set = StrategySet("box", (1,) * n, np.full(n, -np.pi), np.full(n, np.pi))
        low, high = params.price_bounds
        self.incentive_set = IncentiveSet(np.full(n, low), np.full(n, high))
        check_finite_scale(self, params)

    def __repr__(self) -> str:
        p = self.params
        return f"OscillatorGame(n={p.n}, coupling={p.coupling}, externality={p.externality})"

    order_parameter = staticmethod(_order_parameter)

    def costs(self, x: np.ndarray) -> np.ndarray:
        """``J_i(x)`` without prices; ``(K/n) Σ_j (1 − cos(x^i − x^j)) = K(1 − R cos(x^i − ψ))``."""
        p = self.params
        radius, angle = _order_parameter(x)
        return 0.5 * p.stiffness * (x - p.natural_phase) ** 2 + p.coupling * (
            1.0 - radius * np.cos(x - angle)
        )

    def _rewards(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        return -(self.costs(x) + theta * x)

    def _coupled_gradient(self, x: np.ndarray, weight: float) -> np.ndarray:
        """``r (x − ω) + weight · R sin(x − ψ)``."""
        p = self.params
        radius, angle = _order_parameter(x)
        return p.stiffness * (x - p.natural_phase) + weight * radius * np.sin(x - angle)

    def _coupled_hvp(self, x: np.ndarray, tangent: np.ndarray, weight: float) -> np.ndarray:
        """``[diag(r + w R cos(x − ψ)) − (w/n)(ccᵀ + ssᵀ)] t``: the Jacobian of the above."""
        p = self.params
        radius, angle = _order_parameter(x)
        c, s = np.cos(x), np.sin(x)
        diagonal = p.stiffness + weight * radius * np.cos(x - angle)
        return diagonal * tangent - (weight / p.n) * (c * (c @ tangent) + s * (s @ tangent))

    def _newton(self, residual, weight: float, start: np.ndarray) -> np.ndarray:
        """Damped Newton on ``residual(x) = 0`` whose Jacobian is the coupled HVP (Woodbury solve)."""
        p = self.params
        x = start.copy()
        for _ in range(100):
            value = residual(x)
            norm = np.linalg.norm(value, np.inf)
            if norm <= NEWTON_TOLERANCE * max(1.0, float(np.abs(x).max())):
                return x
            radius, angle = _order_parameter(x)
            diagonal = p.stiffness + weight * radius * np.cos(x - angle)
            basis = np.stack((np.cos(x), np.sin(x)), axis=1)  # M = D − (w/n) U Uᵀ
            scaled = basis / diagonal[:, None]
            capacitance = np.eye(2) - (weight / p.n) * basis.T @ scaled
            direction = value / diagonal + scaled @ np.linalg.solve(
                capacitance, (weight / p.n) * (scaled.T @ value)
            )
            step = 1.0
            while step > 1e-8 and np.linalg.norm(residual(x - step * direction), np.inf) >= norm:
                step *= 0.5
            x = x - step * direction
        raise np.linalg.LinAlgError("Newton's method did not converge in 100 iterations")

    def _pseudo_gradient(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        return -(self._coupled_gradient(x, self.params.coupling) + theta)

    def _jvp_x(self, x: np.ndarray, theta: np.ndarray, tangent: np.ndarray) -> np.ndarray:
        return -self._coupled_hvp(x, tangent, self.params.coupling)

    def _vjp_x(self, x: np.ndarray, theta: np.ndarray, cotangent: np.ndarray) -> np.ndarray:
        return self._jvp_x(x, theta, cotangent)  # symmetric: a potential game

    def _jacobian_x_structure(self, x: np.ndarray, theta: np.ndarray) -> LowRankJacobian:
        """``∂v/∂x = −diag(r + K R cos(x − ψ)) + (K/n)(c cᵀ + s sᵀ)``: diagonal plus rank two."""
        p = self.params
        radius, angle = _order_parameter(x)
        waves = np.stack((np.cos(x), np.sin(x)), axis=1)
        return LowRankJacobian(
            -(p.stiffness + p.coupling * radius * np.cos(x - angle)), (p.coupling / p.n) * waves, waves
        )

    def _best_response(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Each agent's exact best response: the root of
        ``r_i (a − ω_i) + (K/n) |S_i| sin(a − φ_i) + p_i = 0`` with ``S_i = Σ_{j≠i} e^{i x^j} = |S_i| e^{iφ_i}``,
        strictly increasing in ``a`` (``r_i > K``), solved by vectorised Newton."""
        p = self.params
        phasors = np.exp(1j * x)
        others = np.sum(phasors) - phasors
        weight, angle = (p.coupling / p.n) * np.abs(others), np.angle(others)
        response = np.array(p.natural_phase)
        for _ in range(50):
            residual = p.stiffness * (response - p.natural_phase) + weight * np.sin(response - angle) + theta
            response = response - residual / (p.stiffness + weight * np.cos(response - angle))
            if np.max(np.abs(residual)) <= NEWTON_TOLERANCE:
                break
        return np.clip(response, -np.pi, np.pi)

    def _unilateral_rewards(self, x: np.ndarray, theta: np.ndarray, actions: np.ndarray) -> np.ndarray:
        p = self.params
        phasors = np.exp(1j * x)
        others = (np.sum(phasors) - phasors)[:, None]  # Σ_{j≠i} e^{i x^j}
        coupling = (p.coupling / p.n) * ((p.n - 1) - np.real(np.exp(1j * actions) * np.conj(others)))
        spread = 0.5 * p.stiffness[:, None] * (actions - p.natural_phase[:, None]) ** 2
        return -(spread + coupling + theta[:, None] * actions)

    def _equilibrium(self, theta: np.ndarray) -> np.ndarray:
        """The unique (interior) Nash equilibrium: Newton on ``v_θ(x) = 0``."""
        return self._newton(
            lambda x: self._coupled_gradient(x, self.params.coupling) + theta,
            self.params.coupling,
            np.array(self.params.natural_phase),
        )

    def _social_cost(self, x: np.ndarray, theta: np.ndarray) -> float:
        p = self.params
        radius, _ = _order_parameter(x)
        spread = 0.5 * float(p.stiffness @ (x - p.natural_phase) ** 2)
        return spread + (2 * p.coupling + p.externality) * 0.5 * p.n * (1.0 - radius**2)

    def _social_cost_grad_x(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        p = self.params
        return self._coupled_gradient(x, 2 * p.coupling + p.externality)

    def social_optimum(self) -> SocialOptimum:
        """The unique minimiser of the strongly convex Φ: Newton on ``∇Φ = 0``."""
        p = self.params
        weight = 2 * p.coupling + p.externality
        x = self._newton(lambda z: self._coupled_gradient(z, weight), weight, np.array(p.natural_phase))
        return SocialOptimum(self._social_cost(x, np.zeros(p.n)), x)

    def first_best_incentive(self) -> FirstBestIncentive:
        """The Pigouvian price ``p_i* = (K + κ) R sin(x_i^so − ψ)`` (unique: everything is interior)."""
        p = self.params
        optimum = self.social_optimum().strategy
        radius, angle = _order_parameter(optimum)
        price = (p.coupling + p.externality) * radius * np.sin(optimum - angle)
        low, high = p.price_bounds
        if np.any(price < low) or np.any(price > high):
            raise ValueError(
                f"the Pigouvian price spans [{price.min():.6g}, {price.max():.6g}], outside price_bounds {p.price_bounds}"
            )
        return FirstBestIncentive(price, True)
