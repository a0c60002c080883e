"""Coupled-oscillator game with linear prices: the math (:mod:`.game`) and its env (:mod:`.env`)."""

from incentive_envs.oscillators.game import OscillatorGame, OscillatorParams

__all__ = ["OscillatorGame", "OscillatorParams"]
