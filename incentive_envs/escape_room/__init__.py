"""The Escape Room game ER(N, M): the rules (:mod:`.game`) and its env (:mod:`.env`)."""

from incentive_envs.escape_room.game import EscapeRoomTask, optimum, step_batch

__all__ = ["EscapeRoomTask", "optimum", "step_batch"]
