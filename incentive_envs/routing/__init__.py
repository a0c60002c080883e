"""Routing games and second-best congestion pricing (SPEC G2; paper Example 3.2, §6–7)."""

from incentive_envs.routing.assignment import AssignmentResult, ShortestPathGraph, user_equilibrium
from incentive_envs.routing.game import RoutingGame, logit_equilibrium
from incentive_envs.routing.network import Network, braess, grid, network_from_links, pigou
from incentive_envs.routing.paths import PathSet, k_shortest_paths
from incentive_envs.routing.tntp import (
    SIOUX_FALLS_TOLLED_LINKS,
    TNTP_NETWORKS,
    read_tntp,
    read_tntp_flow,
    read_tntp_nodes,
    sioux_falls,
    tntp_best_known_flow,
    tntp_network,
    write_tntp,
)

__all__ = [
    "SIOUX_FALLS_TOLLED_LINKS",
    "TNTP_NETWORKS",
    "AssignmentResult",
    "Network",
    "PathSet",
    "RoutingGame",
    "ShortestPathGraph",
    "braess",
    "grid",
    "k_shortest_paths",
    "logit_equilibrium",
    "network_from_links",
    "pigou",
    "read_tntp",
    "read_tntp_flow",
    "read_tntp_nodes",
    "sioux_falls",
    "tntp_best_known_flow",
    "tntp_network",
    "user_equilibrium",
    "write_tntp",
]
