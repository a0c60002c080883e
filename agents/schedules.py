"""Step-size schedules ``β_k = β / (k + 1)^q`` (paper Theorems 5.4 and 5.5)."""

from __future__ import annotations

from dataclasses import dataclass

from incentive_envs.validation import check_scalar


@dataclass(frozen=True)
class PowerSchedule:
    """The schedule ``k ↦ scale / (k + 1)^power`` for iterations ``k = 0, 1, …``.

    Parameters
    ----------
    scale : float
        ``β >= 0`` (0 switches the step off, e.g. the mixing weight of setting D).
    power : float
        ``q >= 0``; 0 gives a constant step.
    """

    scale: float
    power: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", check_scalar(self.scale, "scale", low=0.0))
        object.__setattr__(self, "power", check_scalar(self.power, "power", low=0.0))

    def __call__(self, k: int) -> float:
        if k < 0:
            raise ValueError(f"iteration k must be >= 0, got {k!r}")
        try:
            return self.scale / (k + 1) ** self.power
        except OverflowError:  # (k + 1)^q beyond float64: the step has vanished
            return 0.0


def as_schedule(step, name: str) -> PowerSchedule:
    """Accept a :class:`PowerSchedule` or a constant number."""
    if isinstance(step, PowerSchedule):
        return step
    return PowerSchedule(check_scalar(step, name, low=0.0), 0.0)
