"""Learners on the fast timescale (SPEC §3) and drivers that make them play."""

from agents.learners import (
    BestResponse,
    EntropicMirrorDescent,
    EuclideanMirrorDescent,
    Hedge,
    LogitBestResponse,
    jacobian_norm,
)
from agents.play import model_feedback, play, play_env
from agents.schedules import PowerSchedule

__all__ = [
    "BestResponse",
    "EntropicMirrorDescent",
    "EuclideanMirrorDescent",
    "Hedge",
    "LogitBestResponse",
    "PowerSchedule",
    "jacobian_norm",
    "model_feedback",
    "play",
    "play_env",
]
