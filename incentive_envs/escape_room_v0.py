"""``escape_room_v0``: the Escape Room game ER(N, M) (see :mod:`incentive_envs.escape_room.env`)."""

from incentive_envs.escape_room.env import EscapeRoomEnv, env, parallel_env, raw_env

__all__ = ["EscapeRoomEnv", "env", "parallel_env", "raw_env"]
