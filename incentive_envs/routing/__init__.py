"""Routing games and second-best congestion pricing (SPEC G2; paper Example 3.2, §6–7)."""

from incentive_envs.routing.assignment import AssignmentResult, ShortestPathGraph, user_equilibrium
from incentive_envs.routing.game import RoutingGame, logit_equilibrium
from incentive_envs.routing.network import (
    SIOUX_FALLS_TOLLED_LINKS,
    Network,
    braess,
    download_tntp,
    grid,
    network_from_links,
    pigou,
    read_tntp,
    sioux_falls,
    write_tntp,
)
from incentive_envs.routing.paths import PathSet, k_shortest_paths

__all__ = [
    "SIOUX_FALLS_TOLLED_LINKS",
    "AssignmentResult",
    "Network",
    "PathSet",
    "RoutingGame",
    "ShortestPathGraph",
    "braess",
    "download_tntp",
    "grid",
    "k_shortest_paths",
    "logit_equilibrium",
    "network_from_links",
    "pigou",
    "read_tntp",
    "sioux_falls",
    "user_equilibrium",
    "write_tntp",
]
