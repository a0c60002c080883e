"""The path-based routing game with link tolls: second-best congestion pricing
(paper Example 3.2, §6 and §7; SPEC G2).

Every OD pair ``i`` is one agent, a population of ``d_i`` travellers, whose strategy ``q^i``
is the split of its demand over its paths (a simplex). With path flows ``f = d ⊙ q`` and
link flows ``x = Δ f`` (``Δ`` the sparse link–path incidence), the cost of path ``a`` is

    c^{ia}(π, q) = Σ_e (c_e(x_e) + π_e) δ^{eia} + η (log q^{ia} + 1),

the network's link costs ``c_e`` (BPR travel times ``t_e``, plus fixed generalised costs if
the network has any) plus tolls ``π`` (non-zero only on the tolled links, ``π = E θ``) plus
the bounded-rationality term of §6/§7. The game's pseudo-gradient is the payoff
vector ``v = −c`` (a nonatomic game: ``v^i`` is not the gradient of one reward), and

    ∂v/∂q = −(Δᵀ diag(c'(x)) Δ diag(d) + η diag(1/q)),        ∂v/∂θ = −Δᵀ E.

Both are applied matrix-free with the sparse ``Δ``. For ``η > 0`` the equilibrium is the
unique logit (quantal-response) equilibrium ``q^{ia} ∝ exp(−C^{ia}/η)`` (``C`` without the
entropy term): the minimiser of the strictly convex

    Z(f) = Σ_e ∫_0^{x_e} (c_e + π_e) + η Σ_i Σ_a f^{ia} log(f^{ia}/d_i),

solved here by Newton's method on the per-OD softmax logits with conjugate-gradient
solves (:func:`logit_equilibrium`). The planner's cost is the total cost
``Σ_e x_e c_e(x_e)`` — the total system travel time ``TSTT = Σ_e x_e t_e(x_e)`` on networks
without fixed costs (tolls are transfers) — so ``∇_q f = d ⊙ Δᵀ(c + x c')``, ``∇_θ f = 0``;
the first-best ``f*`` is the path-restricted system optimum (:meth:`RoutingGame.system_optimum`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from incentive_envs.core import IncentiveGame, IncentiveSet, SocialOptimum, StrategySet
from incentive_envs.routing.linalg import projected_cg
from incentive_envs.routing.network import Network
from incentive_envs.routing.path_assignment import PathAssignmentResult, PathFlows, path_equilibrium
from incentive_envs.routing.paths import PathSet, k_shortest_paths
from incentive_envs.validation import as_finite_array, check_bounds_pair, check_positive_int, check_scalar

DEFAULT_PATHS_PER_OD = 3
"""Default ``k`` of the k-shortest-path sets (by free-flow time)."""
MAX_PATHS_PER_OD = 10_000
"""Largest accepted number of shortest paths per OD pair."""

TINY_SHARE = 1e-12
"""Path shares below this are set by the logit formula instead of Newton steps."""

MIN_SHARE = 1e-300
"""Floor on path shares (so ``log q`` stays finite where ``exp(−C/η)`` underflows)."""


class RoutingGame(IncentiveGame):
    """Nonatomic path-based routing game with tolls on a chosen link set (see the module
    docstring).

    Parameters
    ----------
    network : Network
    eta : float
        ``η > 0``, the bounded-rationality (entropy) weight in time units. (``η = 0`` has
        non-unique path splits and a singular ``∂v/∂q``; use
        :func:`incentive_envs.routing.assignment.user_equilibrium` for link-based UE.)
    tolled_links : sequence of int, optional
        0-based links that can carry a toll (default: every link).
    toll_bounds : (float, float)
        Bounds of every toll, ``0 <= low <= high``.
    paths : PathSet, optional
        The path set; default :func:`k_shortest_paths` with ``k = paths_per_od``.
    paths_per_od : int
        ``k`` (ignored when ``paths`` is given).
    """

    def __init__(
        self,
        network: Network,
        eta: float = 1.0,
        tolled_links=None,
        toll_bounds: tuple[float, float] = (0.0, 10.0),
        paths: PathSet | None = None,
        paths_per_od: int = DEFAULT_PATHS_PER_OD,
    ):
        if not isinstance(network, Network):
            raise ValueError(f"network must be a Network, got {type(network).__name__}")
        self.network = network
        self.eta = check_scalar(eta, "eta", low=0.0, low_inclusive=False)
        tolled = np.arange(network.n_links) if tolled_links is None else np.asarray(tolled_links)
        if tolled.ndim != 1 or tolled.size == 0 or not np.issubdtype(tolled.dtype, np.integer):
            raise ValueError(
                f"tolled_links must be a non-empty 1-D list of link indices, got {tolled_links!r}"
            )
        if tolled.min() < 0 or tolled.max() >= network.n_links or np.unique(tolled).size != tolled.size:
            raise ValueError(
                f"tolled_links must be distinct links in [0, {network.n_links}), got {tolled.tolist()}"
            )
        self.tolled_links = tolled.astype(np.int64)
        low, high = check_bounds_pair(toll_bounds, "toll_bounds")
        check_scalar(low, "toll_bounds[0]", low=0.0)
        self.paths = (
            k_shortest_paths(network, check_positive_int(paths_per_od, "paths_per_od", MAX_PATHS_PER_OD))
            if paths is None
            else paths
        )
        if self.paths.incidence.shape[0] != network.n_links or len(self.paths.sizes) != network.n_od:
            raise ValueError("paths must be built on the same network")
        self.strategy_set = StrategySet("simplex", self.paths.sizes)
        self.incentive_set = IncentiveSet(np.full(tolled.size, low), np.full(tolled.size, high))
        self._incidence = self.paths.incidence
        self._incidence_t = self.paths.incidence.T.tocsr()
        self._toll_map = sp.csr_matrix(
            (np.ones(tolled.size), (self.tolled_links, np.arange(tolled.size))),
            shape=(network.n_links, tolled.size),
        )
        self._path_demand = network.demand[self.paths.od]

    def __repr__(self) -> str:
        return (
            f"RoutingGame({self.network.name!r}, od_pairs={self.network.n_od}, paths={self.paths.n_paths}, "
            f"eta={self.eta:g}, tolled_links={self.tolled_links.size})"
        )

    # -- flows and costs -----------------------------------------------------------------
    def link_flow(self, q: np.ndarray) -> np.ndarray:
        """``x = Δ (d ⊙ q)``."""
        return self._incidence @ (self._path_demand * q)

    def link_tolls(self, theta: np.ndarray) -> np.ndarray:
        """``π = E θ`` on all links."""
        return self._toll_map @ theta

    def path_costs(self, q: np.ndarray, theta: np.ndarray, entropy: bool = True) -> np.ndarray:
        """``c^{ia}(π, q)`` (with ``entropy=False``: link costs plus tolls only).

        The logit model has no boundary strategies: at a share of exactly 0 (e.g. an RL
        policy's action) the entropy term is evaluated at :data:`MIN_SHARE`, a finite but
        overwhelming incentive to use the path; so are the Jacobian products."""
        flow = self.link_flow(q)
        cost = self._incidence_t @ (self.network.link_cost(flow) + self.link_tolls(theta))
        if entropy:
            cost = cost + self.eta * (np.log(np.maximum(q, MIN_SHARE)) + 1.0)
        return cost

    # -- the agents' side ----------------------------------------------------------------
    def _rewards(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Minus each OD pair's mean path cost ``Σ_a q^{ia} c^{ia}`` (with ``0 log 0 = 0``)."""
        cost = self.path_costs(x, theta, entropy=False)
        entropy = self.eta * (np.log(np.where(x > 0, x, 1.0)) + 1.0)
        return -self.strategy_set.block_sum(x * (cost + entropy))

    def _pseudo_gradient(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        return -self.path_costs(x, theta)

    def _jvp_x(self, x: np.ndarray, theta: np.ndarray, tangent: np.ndarray) -> np.ndarray:
        slope = self.network.link_cost_derivative(self.link_flow(x))
        congestion = self._incidence_t @ (slope * (self._incidence @ (self._path_demand * tangent)))
        return -(congestion + self.eta * tangent / np.maximum(x, MIN_SHARE))

    def _vjp_x(self, x: np.ndarray, theta: np.ndarray, cotangent: np.ndarray) -> np.ndarray:
        slope = self.network.link_cost_derivative(self.link_flow(x))
        congestion = self._path_demand * (self._incidence_t @ (slope * (self._incidence @ cotangent)))
        return -(congestion + self.eta * cotangent / np.maximum(x, MIN_SHARE))

    def _jvp_theta(self, x: np.ndarray, theta: np.ndarray, tangent: np.ndarray) -> np.ndarray:
        return -(self._incidence_t @ (self._toll_map @ tangent))

    def _vjp_theta(self, x: np.ndarray, theta: np.ndarray, cotangent: np.ndarray) -> np.ndarray:
        return -(self._toll_map.T @ (self._incidence @ cotangent))

    def _equilibrium(self, theta: np.ndarray) -> np.ndarray:
        """The logit equilibrium ``x*(θ)`` (see :func:`logit_equilibrium`)."""
        return logit_equilibrium(self, theta)

    # -- the planner's side --------------------------------------------------------------
    def _social_cost(self, x: np.ndarray, theta: np.ndarray) -> float:
        """Total cost ``Σ_e x_e c_e(x_e)`` (TSTT on networks without fixed costs)."""
        flow = self.link_flow(x)
        return float(flow @ self.network.link_cost(flow))

    def _social_cost_grad_x(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        return self._path_demand * (self._incidence_t @ self.network.marginal_cost(self.link_flow(x)))

    def _social_cost_grad_theta(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        return np.zeros(self.incentive_set.dim)

    def system_optimum(
        self, relative_gap: float = 1e-10, max_iterations: int = 1000, on_unconverged: str = "warn"
    ) -> PathAssignmentResult:
        """The path-restricted system optimum (minimum total cost over the game's path sets) by
        :func:`~incentive_envs.routing.path_assignment.path_equilibrium` on the fixed path
        set, from the uniform split; the result carries the relative gap, the iterations and
        the path flows (link flows are unique, path splits need not be).

        ``on_unconverged``: at ``max_iterations`` above ``relative_gap``, ``"warn"``
        (:class:`~incentive_envs.routing.assignment.ConvergenceWarning`) or ``"raise"``.
        """
        start = PathFlows.from_path_set(
            self.paths, self._path_demand / np.repeat(self.paths.sizes, self.paths.sizes)
        )
        return path_equilibrium(
            self.network,
            system_optimal=True,
            relative_gap=relative_gap,
            max_iterations=max_iterations,
            start=start,
            column_generation=False,
            on_unconverged=on_unconverged,
        )

    def social_optimum(
        self, relative_gap: float = 1e-10, max_iterations: int = 1000, on_unconverged: str = "warn"
    ) -> SocialOptimum:
        """``f*`` and the splits attaining it: :meth:`system_optimum` (which it warns or raises
        through when unconverged) as a :class:`~incentive_envs.core.SocialOptimum`."""
        optimum = self.system_optimum(relative_gap, max_iterations, on_unconverged)
        return SocialOptimum(optimum.total_cost, optimum.paths.flow / self._path_demand)

    # -- ground-truth helpers ------------------------------------------------------------
    def equilibrium_residual(self, x: np.ndarray, theta: np.ndarray) -> float:
        """``max |x − softmax(−C(x)/η)|``: zero exactly at the logit equilibrium."""
        return float(np.max(np.abs(x - self.logit_response(x, theta))))

    def logit_response(self, x: np.ndarray, theta: np.ndarray, eta: float | None = None) -> np.ndarray:
        """``softmax(−C(x)/η)`` per OD pair, ``C`` the path costs without the entropy term
        (``eta`` overrides the game's ``η``)."""
        scores = -self.path_costs(x, theta, entropy=False) / (self.eta if eta is None else eta)
        return self.strategy_set.exponentiated(self.strategy_set.uniform_point(), scores)


def logit_equilibrium(
    game: RoutingGame,
    theta: np.ndarray,
    start: np.ndarray | None = None,
    tolerance: float = 1e-11,
    max_iterations: int = 100,
) -> np.ndarray:
    """The unique logit equilibrium of ``game`` at tolls ``theta``.

    Damped Newton's method on the strictly convex potential ``Z`` of the module docstring
    in path shares ``q`` (gradient ``g = d ⊙ c``, Hessian ``H = diag(d) Δᵀ diag(c') Δ diag(d)
    + η diag(d/q)``), restricted to the tangent space ``Σ_a δ^{ia} = 0`` of the simplices:

    * the Newton system is solved matrix-free by projected preconditioned conjugate
      gradients (Gould, Hribar & Nocedal, 2001) with the entropy block ``η diag(d/q)`` as
      preconditioner, whose constrained inverse is ``r ↦ q ⊙ (r − Σ_a q^a r^a)/(η d)``;
    * the step ``δ`` is taken multiplicatively, ``q ← q ⊙ exp(τ δ/q) / norm`` (equal to
      ``q + τδ`` to first order, so convergence stays quadratic, and always interior), with
      ``τ`` halved until ``Z`` decreases by the Armijo rule (a logit Frank–Wolfe step — toward
      the logit response with an exact line search, Fisk 1980 — if it cannot); once the
      predicted decrease is below ``Z``'s rounding error the full step is taken;
    * shares below :data:`TINY_SHARE` are set to their logit response at the current costs.

    If Newton does not converge from ``start`` (small ``η``: nearly deterministic choice),
    η-continuation solves for ``3η, 9η, …`` first and walks back down, warm-starting.
    Stops when ``max |q − softmax(−C(q)/η)| <= tolerance`` (``C``: costs without entropy).

    Parameters
    ----------
    game : RoutingGame
    theta : ndarray
        Tolls on the tolled links.
    start : ndarray, optional
        Initial splits with positive entries (default: uniform; pass a nearby solution to
        warm-start).
    tolerance : float
    max_iterations : int
        Newton steps per continuation stage.
    """
    strategy_set = game.strategy_set
    q = (
        strategy_set.uniform_point()
        if start is None
        else as_finite_array(start, "start", (strategy_set.dim,))
    )
    if np.any(q <= 0):
        raise ValueError("start must have positive entries (the logit equilibrium is interior)")
    solution, residual = _logit_newton(game, theta, q, game.eta, tolerance, max_iterations)
    if residual <= tolerance:
        return solution
    for stages in range(1, 8):  # continuation from η·3^stages down to η
        q = strategy_set.uniform_point()
        for eta in game.eta * 3.0 ** np.arange(stages, -1, -1):
            q, residual = _logit_newton(
                game, theta, q, eta, tolerance if eta == game.eta else 1e-6, max_iterations
            )
            if residual > (tolerance if eta == game.eta else 1e-6):
                break
        else:
            return q
    raise RuntimeError(f"logit equilibrium did not converge (residual {residual:.3g})")


def _logit_newton(game, theta, q, eta, tolerance, max_iterations):
    """Newton iterations of :func:`logit_equilibrium` at entropy weight ``eta``; returns the
    best iterate and its residual."""
    network, strategy_set = game.network, game.strategy_set
    sizes = strategy_set.agent_sizes
    tolls = game.link_tolls(theta)
    demand = game._path_demand

    def potential(q):
        flow = game.link_flow(q)
        return float(network.link_cost_integral(flow).sum() + tolls @ flow + eta * demand @ (q * np.log(q)))

    def cost_with_entropy(q):
        return game.path_costs(q, theta, entropy=False) + eta * (np.log(q) + 1.0)

    best, best_residual = q, np.inf
    for _ in range(max_iterations):
        response = game.logit_response(q, theta, eta)
        residual = float(np.max(np.abs(q - response)))
        if residual < best_residual:
            best, best_residual = q, residual
        if residual <= tolerance:
            break
        # Shares below TINY_SHARE stay out of the Newton system (their δ would be below the
        # solve's rounding error); the fixed-point update below sets them.
        active = q > TINY_SHARE
        weight = np.where(active, q, 0.0)
        gradient = np.where(active, demand * cost_with_entropy(q), 0.0)
        slope = network.link_cost_derivative(game.link_flow(q))
        entropy_curvature = np.where(active, eta * demand / np.where(active, q, 1.0), 0.0)

        def hessian_vector(u, slope=slope, entropy_curvature=entropy_curvature):
            return (
                demand * (game._incidence_t @ (slope * (game._incidence @ (demand * u))))
                + entropy_curvature * u
            )

        def center(r, weight=weight):  # a per-block shift leaves the constrained system unchanged
            return r - np.repeat(strategy_set.block_sum(weight * r) / strategy_set.block_sum(weight), sizes)

        def precondition(r, weight=weight):
            return weight * r / (eta * demand)

        step, _ = projected_cg(hessian_vector, center, precondition, gradient, 1e-12, 500)
        descent = float(gradient @ step)
        log_step = np.where(active, step / np.where(active, q, 1.0), 0.0)
        value = potential(q)
        if -descent < 1e-10 * (1.0 + abs(value)):
            q = np.maximum(strategy_set.exponentiated(q, log_step), MIN_SHARE)
        else:
            scale = 1.0
            while descent < 0 and scale >= 1e-10:
                candidate = np.maximum(strategy_set.exponentiated(q, scale * log_step), MIN_SHARE)
                if potential(candidate) <= value + 1e-4 * scale * descent:
                    q = candidate
                    break
                scale *= 0.5
            else:
                q = _logit_frank_wolfe_step(q, response, cost_with_entropy, demand)
        tiny = q < TINY_SHARE
        if tiny.any():
            q = np.where(tiny, np.maximum(game.logit_response(q, theta, eta), MIN_SHARE), q)
            q = q / np.repeat(strategy_set.block_sum(q), sizes)
    return best, best_residual


def _logit_frank_wolfe_step(q, response, cost, demand, iterations: int = 50) -> np.ndarray:
    """``q + τ (y − q)`` with ``τ ∈ [0, 1]`` minimising ``Z`` (bisection on its derivative
    ``Σ d c(q_τ) (y − q)``; ``Z`` is convex along the segment)."""
    direction = response - q
    low, high = 0.0, 1.0
    if demand @ (cost(np.maximum(q + direction, 1e-300)) * direction) <= 0:
        return np.maximum(response, 1e-300)
    for _ in range(iterations):
        middle = 0.5 * (low + high)
        if demand @ (cost(q + middle * direction) * direction) > 0:
            high = middle
        else:
            low = middle
    return q + low * direction
