"""Aggregative game with linear prices: the math (:mod:`.game`) and its env (:mod:`.env`)."""

from incentive_envs.aggregative.game import AggregativeGame, AggregativeParams

__all__ = ["AggregativeGame", "AggregativeParams"]
