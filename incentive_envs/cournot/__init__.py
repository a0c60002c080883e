"""Cournot oligopoly with emission tax: the math (:mod:`.game`) and its env (:mod:`.env`)."""

from incentive_envs.cournot.game import CournotGame, CournotParams

__all__ = ["CournotGame", "CournotParams"]
