"""Learners on the fast timescale (SPEC §3) and drivers that make them play."""

from agents.learners import (
    BestResponse,
    DifferentiableLearner,
    EntropicMirrorDescent,
    EuclideanMirrorDescent,
    Hedge,
    Learner,
    LogitBestResponse,
    jacobian_norm,
)
from agents.play import model_feedback, play, play_env
from agents.schedules import PowerSchedule

__all__ = [
    "BestResponse",
    "DifferentiableLearner",
    "EntropicMirrorDescent",
    "EuclideanMirrorDescent",
    "Hedge",
    "Learner",
    "LogitBestResponse",
    "PowerSchedule",
    "jacobian_norm",
    "model_feedback",
    "play",
    "play_env",
]
