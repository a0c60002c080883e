"""``congestion_v0``: route choice on a road network with planner-set link tolls.

=====================  ==================================================================
Agents                 ``od_0 … od_{m-1}``: one per origin–destination pair (a population)
Action space           ``Box(0, 1, (k,), float32)`` for every agent (``k = paths_per_od``):
                       weights over the OD pair's paths, normalised onto the simplex
Observation space      ``Box(3k,)``: ``[path costs, path tolls, own path shares]``,
                       bounded by the costs with the whole demand on every link
State space            ``Box(P + T,)``: all path shares, then the ``T`` tolls
Parameters             :class:`CongestionConfig`: ``network, eta, paths_per_od,
                       tolled_links, toll_bounds, max_cycles, feedback_noise_std``;
                       plus ``incentive, render_mode``
=====================  ==================================================================

One round is one day of the nonatomic routing game of paper Example 3.2 / SPEC G2: every OD
pair splits its demand over its (up to ``k``) shortest free-flow paths, link flows and BPR
link costs follow (travel times, plus the network's fixed generalised costs if it has any),
and the OD pair's reward is minus its mean path cost including tolls and
the bounded-rationality term ``η (log q + 1)`` (see
:class:`~incentive_envs.routing.game.RoutingGame`, available as ``env.game`` with the full
model: logit equilibrium, path-restricted system optimum, Jacobian products).

Actions
-------
Every agent has the same action space so that SuperSuit can vectorise the env. An action is
a vector of non-negative weights; the env divides an OD pair's weights on its own paths by
their sum (all-zero weights mean a uniform split). OD pairs with fewer than ``k`` paths ignore the trailing
entries (they must still lie in ``[0, 1]``); observations are zero there. Malformed actions
raise ``ValueError``.

Incentives
----------
The planner's incentive is the vector of tolls on ``tolled_links`` (time units, within
``toll_bounds``), set between rounds with ``env.set_incentive(θ)`` or at
``reset(options={"incentive": θ})``. The planner's cost is the total system travel time (the
total cost, fixed costs included, on networks that have them).
``infos[od]["gradient"]`` is minus the path costs ``−c`` (the payoff vector of the
population; plus ``N(0, feedback_noise_std²)`` noise) on the OD pair's own paths.

Networks
--------
``network`` is a :class:`~incentive_envs.routing.network.Network` or a name: ``"sioux_falls"``
(the default when the ``aequilibrae`` wheel is installed), ``"braess"`` (the fallback) or
``"pigou"``. Sioux Falls — by name, or any network named ``"SiouxFalls"`` such as
``tntp_network("SiouxFalls")`` — carries tolls on the paper's 20 links unless
``tolled_links`` says otherwise.

Version history
---------------
* v0: initial release.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from incentive_envs.env import IncentiveParallelEnv, StageGameConfig, env_constructors
from incentive_envs.routing.game import DEFAULT_PATHS_PER_OD, MAX_PATHS_PER_OD, RoutingGame
from incentive_envs.routing.network import Network, braess, pigou
from incentive_envs.routing.tntp import SIOUX_FALLS_TOLLED_LINKS, aequilibrae_sioux_falls_zip, sioux_falls
from incentive_envs.validation import as_finite_array, build_config, check_bounds_pair, check_positive_int


def default_network() -> Network:
    """Sioux Falls from the ``aequilibrae`` wheel if installed, else Braess's network."""
    return sioux_falls("aequilibrae") if aequilibrae_sioux_falls_zip() is not None else braess()


def resolve_network(network) -> Network:
    """A :class:`Network` from a network or one of the names ``sioux_falls``, ``braess``, ``pigou``."""
    if network is None:
        return default_network()
    if isinstance(network, Network):
        return network
    builders = {"sioux_falls": sioux_falls, "braess": braess, "pigou": pigou}
    if network not in builders:
        raise ValueError(f"network must be a Network or one of {sorted(builders)}, got {network!r}")
    return builders[network]()


@dataclass(frozen=True, kw_only=True)
class CongestionConfig(StageGameConfig):
    """Parameters of ``congestion_v0``."""

    network: Network | str | None = None
    """A :class:`~incentive_envs.routing.network.Network` or a name (``"sioux_falls"``,
    ``"braess"``, ``"pigou"``); ``None``: Sioux Falls when it can be read offline, else Braess."""
    eta: float = 1.0
    """Bounded-rationality (entropy) weight ``η > 0``, in time units."""
    paths_per_od: int = DEFAULT_PATHS_PER_OD
    """``k``: shortest free-flow paths per OD pair."""
    tolled_links: tuple[int, ...] | None = None
    """0-based links that carry a toll; ``None``: the paper's 20 links on Sioux Falls, every
    link elsewhere."""
    toll_bounds: tuple[float, float] = (0.0, 10.0)
    """Bounds of every toll, ``0 <= low <= high``."""

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(
            self, "paths_per_od", check_positive_int(self.paths_per_od, "paths_per_od", MAX_PATHS_PER_OD)
        )
        object.__setattr__(self, "toll_bounds", check_bounds_pair(self.toll_bounds, "toll_bounds"))
        if self.tolled_links is not None:
            links = as_finite_array(self.tolled_links, "tolled_links")
            if links.ndim != 1 or np.any(links != np.round(links)):
                raise ValueError(f"tolled_links must be a list of link indices, got {self.tolled_links!r}")
            object.__setattr__(self, "tolled_links", tuple(int(link) for link in links))


def congestion_game(config: CongestionConfig) -> RoutingGame:
    """The model of the game ``config`` describes."""
    network = resolve_network(config.network)
    tolled_links = config.tolled_links
    if tolled_links is None and network.name == "SiouxFalls":
        tolled_links = SIOUX_FALLS_TOLLED_LINKS
    return RoutingGame(
        network, config.eta, tolled_links, config.toll_bounds, paths_per_od=config.paths_per_od
    )


class CongestionEnv(IncentiveParallelEnv):
    """The ``congestion_v0`` parallel environment (see the module docstring).

    Parameters
    ----------
    incentive : array_like, optional
        Initial tolls; default 0.
    render_mode : {None, "ansi", "human"}
    **params
        The fields of :class:`CongestionConfig`.
    """

    metadata = {"render_modes": ["ansi", "human"], "name": "congestion_v0", "is_parallelizable": True}

    def __init__(self, *, incentive=None, render_mode: str | None = None, **params):
        config = build_config(CongestionConfig, params, "congestion_v0")
        game = congestion_game(config)
        self.paths_per_od = config.paths_per_od
        sizes = np.asarray(game.strategy_set.agent_sizes)
        # Where each OD pair's paths sit in its padded k-vector.
        self._padded_index = np.concatenate(
            [i * self.paths_per_od + np.arange(size) for i, size in enumerate(sizes)]
        )
        # Bounds of the path observations: no link carries more than the total demand.
        network = game.network
        worst_link_time = network.link_cost(np.full(network.n_links, network.total_demand))
        self._time_high = float((game._incidence_t @ worst_link_time).max())
        self._toll_high = float((game._incidence_t @ game.link_tolls(game.incentive_set.upper)).max())
        super().__init__(game, "od", config, incentive=incentive, render_mode=render_mode)

    def _make_action_space(self, block: slice):
        return spaces.Box(0.0, 1.0, (self.paths_per_od,), dtype=np.float32)

    def _observation_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        k = self.paths_per_od
        low = np.zeros(3 * k)
        high = np.concatenate((np.full(k, self._time_high), np.full(k, self._toll_high), np.ones(k)))
        return low, high

    def _padded(self, values: np.ndarray) -> np.ndarray:
        padded = np.zeros(self.game.n_agents * self.paths_per_od)
        padded[self._padded_index] = values
        return padded.reshape(self.game.n_agents, self.paths_per_od)

    def _observations(self, strategy: np.ndarray, incentive: np.ndarray) -> np.ndarray:
        game = self.game
        cost = game._incidence_t @ game.network.link_cost(game.link_flow(strategy))
        tolls = game._incidence_t @ game.link_tolls(incentive)
        return np.concatenate((self._padded(cost), self._padded(tolls), self._padded(strategy)), axis=1)

    def actions_from_strategy(self, strategy: np.ndarray) -> dict:
        """The action dict that plays the flat joint ``strategy`` (padded to ``k`` per agent)."""
        padded = self._padded(np.asarray(strategy, dtype=np.float64))
        return dict(zip(self.possible_agents, padded))

    def _strategy_from_actions(self, actions: np.ndarray) -> np.ndarray:
        """Each OD pair's weights on its own paths (trailing padding ignored), normalised."""
        return super()._strategy_from_actions(actions.reshape(-1)[self._padded_index])

    def _render_text(self) -> str:
        text = super()._render_text()
        flow = self.game.link_flow(self._strategy)
        return f"{text}  max v/c {float(np.max(flow / self.game.network.capacity)):.3g}"


parallel_env, raw_env = env_constructors(CongestionEnv)
env = raw_env
