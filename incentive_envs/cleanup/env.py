"""``cleanup_v0``: Cleanup, a sequential social dilemma, with a per-agent incentive channel.

=====================  ==================================================================
Agents                 ``agent_0 … agent_{N-1}`` (default N = 2 on a 7 × 7 grid)
Action space           ``Discrete(6)``: up, down, left, right, stay, clean
Observation space      ``Box(0, ·, (D + 1,), float32)``: the one-hot grid channels (global
                       or an egocentric window), the own row and column one-hot, then the
                       own incentive last paid
State space            ``Box(0, 1, ((2 + N) H W,), float32)``: the waste, apple and agent
                       grids (:meth:`~incentive_envs.cleanup.game.CleanupTask.global_state`)
Parameters             :class:`CleanupConfig`: the map and rules of
                       :class:`~incentive_envs.cleanup.game.CleanupParams` (presets
                       ``PRESETS["7x7"]``, ``PRESETS["10x10"]``) and ``max_incentive``;
                       plus ``incentive, render_mode``
=====================  ==================================================================

A river fills with waste; apples regrow in the orchard only while the river is clean enough;
agents earn ``+1`` per apple and nothing for cleaning, which takes them away from the
orchard. All rules, rates and thresholds are in :mod:`incentive_envs.cleanup.game`; this env
is the shared adapter :class:`~incentive_envs.episodic.EpisodicParallelEnv` over one game (a
batch of one) of :class:`~incentive_envs.cleanup.game.CleanupTask`, drawing each step's
randomness from the generator seeded by ``reset(seed=...)``. Episodes are truncated after
``max_cycles`` steps (default 50); nothing terminates them.

Incentives
----------
The planner adds a non-negative bonus to each agent's reward every step, in
``[0, max_incentive]`` (default 2). Set it between steps with ``env.set_incentive(value)``
or at ``reset(options={"incentive": value})``, where ``value`` is either

* an array of shape ``(N,)``: a fixed per-agent bonus paid every step, or
* a callable ``incentive_fn(state, joint_action) -> array (N,)``, called every step with
  the global state before the move (``env.state()``) and the joint action
  (int64, shape ``(N,)``); its output is validated each step.

Rewards are environment reward plus incentive; ``infos[agent]`` reports them separately
(``"env_reward"``, ``"incentive"``) with ``"cleaned"`` (waste cells in the agent's beam when
it cleaned) and ``"waste_share"`` (of the river after the step) — at ``reset()`` too. The env
accumulates, per episode, :attr:`~CleanupEnv.incentive_paid` and
:attr:`~CleanupEnv.social_welfare` (the collective environment return, the planner's
objective; with a cost of incentives ``κ``, the planner's objective is
``social_welfare − κ · incentive_paid``).

Version history
---------------
* v0: initial release.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from incentive_envs.cleanup.game import ACTION_NAMES, CleanupParams, CleanupTask
from incentive_envs.env import env_constructors
from incentive_envs.episodic import EpisodicParallelEnv
from incentive_envs.validation import build_config, check_scalar


@dataclass(frozen=True, kw_only=True)
class CleanupConfig(CleanupParams):
    """Parameters of ``cleanup_v0``: the game's and the incentive bound."""

    max_incentive: float = 2.0
    """``R_max > 0``: the largest per-agent per-step bonus."""

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(
            self,
            "max_incentive",
            check_scalar(self.max_incentive, "max_incentive", low=0.0, low_inclusive=False),
        )


class CleanupEnv(EpisodicParallelEnv):
    """The ``cleanup_v0`` parallel environment (see the module docstring).

    Parameters
    ----------
    incentive : array_like or callable, optional
        Initial incentive (see :meth:`~incentive_envs.episodic.EpisodicParallelEnv.set_incentive`);
        default: no bonus.
    render_mode : {None, "ansi", "human"}
    **params
        The fields of :class:`CleanupConfig`.
    """

    metadata = {"render_modes": ["ansi", "human"], "name": "cleanup_v0", "is_parallelizable": True}

    def __init__(self, *, incentive=None, render_mode: str | None = None, **params):
        config = build_config(CleanupConfig, params, "cleanup_v0")
        super().__init__(CleanupTask(config), config, incentive=incentive, render_mode=render_mode)

    @property
    def game_state(self):
        """The game as a batch of one :class:`~incentive_envs.cleanup.game.CleanupState` (a copy)."""
        return self._state.row(0)

    def _extra_infos(self, previous, joint: np.ndarray | None) -> dict[str, list]:
        """``"cleaned"``: waste cells the agent's beam removed in the step; ``"waste_share"``:
        the river's waste share after it."""
        cleaned = (
            np.zeros(self.n_agents, dtype=np.int64)
            if joint is None
            else self.task.prosocial_events(previous, joint[None])[0].astype(np.int64)
        )
        share = float(self.task.waste_share(self._state)[0])
        return {"cleaned": [int(c) for c in cleaned], "waste_share": [share] * self.n_agents}

    def _action_names(self) -> str:
        return ", ".join(ACTION_NAMES)

    def _render_text(self) -> str:
        """The counters, then the grid: ``~`` clean river, ``#`` waste, ``o`` apple, ``.`` empty,
        digits: agents."""
        task = self.task
        cells = np.full(task.n_cells, ".")
        cells[task.river_cells] = np.where(self._state.waste[0], "#", "~")
        cells[task.orchard_cells[self._state.apples[0]]] = "o"
        cells[self._state.positions[0]] = [str(i % 10) for i in range(self.n_agents)]
        grid = "\n".join("".join(row) for row in cells.reshape(self.config.height, self.config.width))
        return f"{super()._render_text()}\n{grid}"


parallel_env, raw_env = env_constructors(CleanupEnv)
env = raw_env
