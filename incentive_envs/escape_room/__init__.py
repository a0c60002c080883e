"""The Escape Room game ER(N, M): the rules (:mod:`.game`) and its env (:mod:`.env`)."""

from incentive_envs.escape_room.game import optimum, step_batch

__all__ = ["optimum", "step_batch"]
