"""The rules of Cleanup, a sequential social dilemma (Hughes et al. 2018, "Inequity aversion
improves cooperation in intertemporal social dilemmas", NeurIPS; the small maps of Yang et al.
2020, "Learning to incentivize other learning agents", NeurIPS), batched in pure NumPy.

The map
-------
An ``H × W`` grid of cells, every one walkable; cell ``(r, c)`` has index ``r W + c``.
The **river** is the ``river_width`` leftmost columns, the **orchard** the ``orchard_width``
rightmost ones, with at least one column of land between them. Agent ``i`` starts in the
land column next to the orchard (``W − orchard_width − 1``), row ``(2i + 1) H // (2N)``
(so ``N <= H``): cleaning means walking away from the apples. River cells are clean or
hold waste; orchard cells are empty or hold an apple. The presets (:data:`PRESETS`) are

=========  ======  =====  ===========  ===========  ===========  ===========  ==============
preset     grid    N      river cols   orchard      apple        waste        depletion
                                       cols         regrowth     spawn        threshold
=========  ======  =====  ===========  ===========  ===========  ===========  ==============
``7x7``    7 × 7   2      1            1            0.2          0.5          0.6
``10x10``  10 × 10 3      2            2            0.1          0.5          0.4
=========  ======  =====  ===========  ===========  ===========  ===========  ==============

with a restoration threshold of 0, episodes of 50 steps and the river initially all waste
(7x7) or half waste (10x10). The waste rate, the thresholds and the initial waste are those
of Yang et al. (2020)'s ``cleanup_small_sym`` and ``cleanup_10x10_sym`` configurations
(their ``config_ssd_lio.py``). Their apple rates (0.5 and 0.3) are for orchards of 4 and 12
cells; ours are whole columns (7 and 20 cells), and at those rates apples are so plentiful
that cleaning pays for itself: selfish policy-gradient learners (discount 0.99) reached 24
(7x7) and 23 (10x10) in our runs, against roughly 32 and 35–40 for a scripted cleaner with
eaters, and there is little dilemma left. The lower rates keep the orchard's output near what the eaters can pick,
as Melting Pot's ``clean_up`` does with its rate of 0.05 on a large orchard.

Actions
-------
``0`` up, ``1`` down, ``2`` left, ``3`` right, ``4`` stay, ``5`` clean (:data:`ACTION_NAMES`).
Agents always face the river (west), as in Yang et al. (2020), whose agents cannot rotate;
the cleaning beam has Melting Pot's ``clean_up`` shape: ``beam_length`` cells ahead
(default 3) and ``beam_radius`` rows to either side (default 1), so an agent at ``(r, c)``
covers rows ``r − 1 … r + 1`` and columns ``c − 3 … c − 1`` (clipped to the grid).

One step
--------
Every step applies, to all ``B × N`` agents at once (:meth:`CleanupTask.transition`):

1. **Moves.** Each move targets the neighbouring cell in its direction; a move off the grid
   leaves the agent in place. A move is *blocked* (the agent stays) if another agent
   targets the same cell or if the target is the cell another agent occupies before the
   step (even if that agent leaves it): no two agents ever share a cell, no swaps, no
   chains; the rule needs no ordering of the agents.
2. **Cleaning.** Every agent that chose ``clean`` turns every waste cell in its beam clean
   (beams pass through agents and waste). An agent's *cleaned* count is the number of waste
   cells in its beam (two overlapping beams both count a shared cell).
3. **Eating.** An agent on an apple eats it: reward ``+1`` (:data:`APPLE_REWARD`), and the
   cell is empty. No other reward exists: cleaning is paid by the time it takes.
4. **Apple regrowth.** With ``d`` the waste share of the river after cleaning (waste cells /
   river cells), every empty orchard cell that no agent occupies grows an apple
   independently with probability
   ``p(d) = apple_respawn_prob · clip((d_depl − d) / (d_depl − d_rest), 0, 1)``: the full rate
   up to the restoration threshold ``d_rest``, falling linearly to zero at the depletion
   threshold ``d_depl`` (Hughes et al. 2018; the ``compute_probabilities`` rule of the
   sequential-social-dilemma environments Yang et al. use).
5. **Waste growth.** If ``d < d_depl`` (so some river cell is clean), then with probability
   ``waste_spawn_prob`` one clean river cell, chosen uniformly, turns to waste. (The
   reference environments scan the clean cells in random order with that probability each
   and stop at the first success, which makes the rate grow with the clean area; a fixed
   rate per step is easier to reason about.) Once the waste share reaches ``d_depl`` the
   river stops filling and no apple grows until someone cleans.

Episodes last ``max_cycles`` steps (default 50; nothing ends them earlier). At reset the
agents stand on their start cells, the orchard is empty and ``round(initial_waste · n_river)``
river cells, chosen uniformly, hold waste.

Observations
------------
Agent ``i`` sees channels ``[waste, apple, self, other agents]`` (one-hot per cell) over the
whole grid (``view="global"``, ``4 H W`` entries) or over the ``(2v + 1) × (2v + 1)`` window
centred on itself (``view="window"``, radius ``v = view_radius``, with a fifth channel that
marks cells outside the grid), flattened channel by channel, followed by its own row
(one-hot, ``H``) and column (one-hot, ``W``). Everything is float32 in ``{0, 1}``.

Randomness
----------
A step consumes one ``rng.random((B, n_orchard + 1 + n_river))`` draw (:meth:`CleanupTask.draw_noise`):
the apple draws, the waste event and the keys that choose the waste cell (the clean cell
with the largest key). :meth:`CleanupTask.transition` is deterministic given that noise, so
a batch row stepped alone with its row of noise gives the same result as in the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from incentive_envs.env import MAX_CYCLES
from incentive_envs.episodic import MAX_BATCH, check_actions, check_generator
from incentive_envs.validation import check_choice, check_int, check_positive_int, check_scalar

UP, DOWN, LEFT, RIGHT, STAY, CLEAN = range(6)
ACTION_NAMES = ("up", "down", "left", "right", "stay", "clean")
N_ACTIONS = len(ACTION_NAMES)
MOVES = np.array([[-1, 0], [1, 0], [0, -1], [0, 1], [0, 0], [0, 0]])
"""``(row, column)`` displacement of each action."""

APPLE_REWARD = 1.0
"""Reward for eating an apple."""

WASTE, APPLE, SELF, OTHERS, OUTSIDE = range(5)
"""Observation channels (``OUTSIDE`` only in the window view)."""

MAX_SIDE = 64
"""Largest accepted grid height or width (tables are ``O((H W)²)`` in the worst case)."""

MAX_AGENTS = 64
"""Largest accepted number of agents."""

PRESETS: dict[str, dict] = {
    "7x7": {
        "height": 7,
        "width": 7,
        "n_agents": 2,
        "river_width": 1,
        "orchard_width": 1,
        "apple_respawn_prob": 0.2,
        "waste_spawn_prob": 0.5,
        "depletion_threshold": 0.6,
        "initial_waste": 1.0,
    },
    "10x10": {
        "height": 10,
        "width": 10,
        "n_agents": 3,
        "river_width": 2,
        "orchard_width": 2,
        "apple_respawn_prob": 0.1,
        "waste_spawn_prob": 0.5,
        "depletion_threshold": 0.4,
        "initial_waste": 0.5,
    },
}
"""The named maps (module docstring): complete parameter sets for :class:`CleanupParams`."""


@dataclass(frozen=True, kw_only=True)
class CleanupParams:
    """The map, the rules and the observations of Cleanup (defaults: the ``7x7`` preset)."""

    height: int = 7
    """``H``: rows of the grid, ``3 <= H <= 64``."""
    width: int = 7
    """``W``: columns of the grid, at most 64 and at least ``river_width + orchard_width + 1``."""
    n_agents: int = 2
    """``N``: agents, ``1 <= N <= H``."""
    river_width: int = 1
    """Columns of river on the left."""
    orchard_width: int = 1
    """Columns of orchard on the right."""
    beam_length: int = 3
    """Cells the cleaning beam reaches ahead of the agent."""
    beam_radius: int = 1
    """Rows the cleaning beam covers on either side of the agent's row."""
    apple_respawn_prob: float = 0.2
    """Regrowth probability of an empty orchard cell per step while the river is clean."""
    waste_spawn_prob: float = 0.5
    """Probability per step that one clean river cell turns to waste (below depletion)."""
    depletion_threshold: float = 0.6
    """``d_depl``: waste share at which apples stop growing and waste stops spreading."""
    restoration_threshold: float = 0.0
    """``d_rest < d_depl``: waste share up to which apples regrow at the full rate."""
    initial_waste: float = 1.0
    """Share of river cells that hold waste at reset."""
    max_cycles: int = 50
    """Steps per episode."""
    view: str = "global"
    """``"global"`` (the whole grid) or ``"window"`` (a window centred on the agent)."""
    view_radius: int = 3
    """``v``: the window is ``(2v + 1) × (2v + 1)`` cells (``view="window"`` only)."""

    def __post_init__(self) -> None:
        ints = {
            "height": check_int(self.height, "height", low=3, high=MAX_SIDE),
            "width": check_int(self.width, "width", low=3, high=MAX_SIDE),
            "n_agents": check_int(self.n_agents, "n_agents", low=1, high=MAX_AGENTS),
            "river_width": check_int(self.river_width, "river_width", low=1, high=MAX_SIDE),
            "orchard_width": check_int(self.orchard_width, "orchard_width", low=1, high=MAX_SIDE),
            "beam_length": check_int(self.beam_length, "beam_length", low=1, high=MAX_SIDE),
            "beam_radius": check_int(self.beam_radius, "beam_radius", low=0, high=MAX_SIDE),
            "max_cycles": check_positive_int(self.max_cycles, "max_cycles", MAX_CYCLES),
            "view_radius": check_int(self.view_radius, "view_radius", low=1, high=MAX_SIDE),
        }
        if ints["n_agents"] > ints["height"]:
            raise ValueError(
                f"n_agents must be <= height = {ints['height']} (one start cell per row), got {self.n_agents!r}"
            )
        if ints["river_width"] + ints["orchard_width"] >= ints["width"]:
            raise ValueError(
                f"width must exceed river_width + orchard_width = "
                f"{ints['river_width'] + ints['orchard_width']} (a land column between them), got {self.width!r}"
            )
        floats = {
            name: check_scalar(getattr(self, name), name, low=0.0, high=1.0)
            for name in (
                "apple_respawn_prob",
                "waste_spawn_prob",
                "depletion_threshold",
                "restoration_threshold",
                "initial_waste",
            )
        }
        if floats["restoration_threshold"] >= floats["depletion_threshold"]:
            raise ValueError(
                f"restoration_threshold must be < depletion_threshold = {floats['depletion_threshold']!r}, "
                f"got {self.restoration_threshold!r}"
            )
        check_choice(self.view, "view", ("global", "window"))
        for name, value in {**ints, **floats}.items():
            object.__setattr__(self, name, value)


@dataclass(frozen=True)
class CleanupState:
    """The state of ``B`` games (never mutated: steps return a new one).

    Attributes
    ----------
    positions : ndarray of int64, shape (B, N)
        Each agent's cell index ``r W + c``.
    waste : ndarray of bool, shape (B, n_river)
        Waste on each river cell (in :attr:`CleanupTask.river_cells` order).
    apples : ndarray of bool, shape (B, n_orchard)
        An apple on each orchard cell (in :attr:`CleanupTask.orchard_cells` order).
    """

    positions: np.ndarray
    waste: np.ndarray
    apples: np.ndarray

    @property
    def batch_size(self) -> int:
        return self.positions.shape[0]

    def row(self, index: int) -> CleanupState:
        """The batch of one game ``index`` (a copy)."""
        return CleanupState(
            self.positions[index : index + 1].copy(),
            self.waste[index : index + 1].copy(),
            self.apples[index : index + 1].copy(),
        )


class CleanupTask:
    """Cleanup's layout tables and batched rules; an :class:`~incentive_envs.episodic.EpisodicTask`.

    Parameters
    ----------
    params : CleanupParams
        Validated parameters (any subclass, e.g. the env's config).

    Attributes
    ----------
    river_cells, orchard_cells, start_cells : ndarray of int64
        Cell indices of the river, the orchard and the agents' start cells.
    """

    n_actions: ClassVar[int] = N_ACTIONS
    prosocial_action: ClassVar[int] = CLEAN

    def __init__(self, params: CleanupParams):
        if not isinstance(params, CleanupParams):
            raise ValueError(f"params must be CleanupParams, got {type(params).__name__}")
        self.params = params
        height, width, n_agents = params.height, params.width, params.n_agents
        self.n_agents, self.max_steps = n_agents, params.max_cycles
        self.n_cells = height * width
        rows, columns = np.divmod(np.arange(self.n_cells), width)
        self.river_cells = np.flatnonzero(columns < params.river_width)
        self.orchard_cells = np.flatnonzero(columns >= width - params.orchard_width)
        start_rows = (2 * np.arange(n_agents) + 1) * height // (2 * n_agents)
        self.start_cells = start_rows * width + width - params.orchard_width - 1
        self.n_initial_waste = int(round(params.initial_waste * self.river_cells.size))
        # next_cell[cell, action]: the target of each action (off-grid moves stay put)
        target_rows = rows[:, None] + MOVES[:, 0]
        target_columns = columns[:, None] + MOVES[:, 1]
        inside = (
            (target_rows >= 0) & (target_rows < height) & (target_columns >= 0) & (target_columns < width)
        )
        self.next_cell = np.where(
            inside, target_rows * width + target_columns, np.arange(self.n_cells)[:, None]
        )
        # beam[cell, k]: river cell k lies in the beam fired from cell
        river_rows, river_columns = rows[self.river_cells], columns[self.river_cells]
        ahead = columns[:, None] - river_columns[None, :]
        self.beam = (
            (ahead >= 1)
            & (ahead <= params.beam_length)
            & (np.abs(rows[:, None] - river_rows[None, :]) <= params.beam_radius)
        )
        self.orchard_slot = np.full(self.n_cells, -1)
        self.orchard_slot[self.orchard_cells] = np.arange(self.orchard_cells.size)
        self._row_one_hot = np.eye(height, dtype=np.float32)[rows]
        self._column_one_hot = np.eye(width, dtype=np.float32)[columns]
        if params.view == "window":
            self._window, self._outside = self._window_tables()

    def _window_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """``window[cell]``: indices, in the grid padded by ``v`` on every side, of the
        ``(2v + 1)²`` cells of the window centred on ``cell``; ``outside``: 1 on padding."""
        params, radius = self.params, self.params.view_radius
        padded_width = params.width + 2 * radius
        rows, columns = np.divmod(np.arange(self.n_cells), params.width)
        offsets = np.arange(2 * radius + 1)
        window = (rows[:, None, None] + offsets[None, :, None]) * padded_width + (
            columns[:, None, None] + offsets[None, None, :]
        )
        outside = np.ones((params.height + 2 * radius, padded_width), dtype=np.float32)
        outside[radius : radius + params.height, radius : radius + params.width] = 0.0
        return window.reshape(self.n_cells, -1), outside.ravel()

    # -- the EpisodicTask attributes ----------------------------------------------------------
    @property
    def observation_shape(self) -> tuple[int, ...]:
        params = self.params
        own_position = params.height + params.width
        if params.view == "global":
            return (4 * self.n_cells + own_position,)
        return (5 * (2 * params.view_radius + 1) ** 2 + own_position,)

    @property
    def incentive_feature_size(self) -> int:
        return (2 + self.n_agents) * self.n_cells + (N_ACTIONS + 1) * self.n_agents

    @property
    def reward_scale(self) -> float:
        """``max_cycles``: an apple per step, the order of a good episode's collective return."""
        return float(self.max_steps)

    def make_state(self, positions, waste, apples) -> CleanupState:
        """A validated :class:`CleanupState` from arrays (e.g. a hand-made position).

        Parameters
        ----------
        positions : array_like of int, shape (B, N)
            Distinct cell indices in every game.
        waste : array_like of bool, shape (B, n_river)
        apples : array_like of bool, shape (B, n_orchard)
        """
        positions = np.asarray(positions)
        if positions.ndim != 2 or positions.shape[1] != self.n_agents or positions.dtype.kind not in "iu":
            raise ValueError(
                f"positions must be integers of shape (batch, {self.n_agents}), got {positions.dtype} {positions.shape}"
            )
        outside = (positions < 0) | (positions >= self.n_cells)
        if np.any(outside):
            index = tuple(int(i) for i in np.argwhere(outside)[0])
            raise ValueError(
                f"positions{list(index)} = {int(positions[index])} is not a cell in [0, {self.n_cells})"
            )
        ordered = np.sort(positions, axis=1)
        if np.any(ordered[:, 1:] == ordered[:, :-1]):
            raise ValueError("positions must be distinct within every game (agents never share a cell)")
        arrays = {}
        for name, value, size in (
            ("waste", waste, self.river_cells.size),
            ("apples", apples, self.orchard_cells.size),
        ):
            array = np.asarray(value)
            if array.shape != (positions.shape[0], size) or array.dtype != np.bool_:
                raise ValueError(
                    f"{name} must be a bool array of shape {(positions.shape[0], size)}, got {array.dtype} {array.shape}"
                )
            arrays[name] = array.copy()
        return CleanupState(positions.astype(np.int64), arrays["waste"], arrays["apples"])

    # -- the rules -----------------------------------------------------------------------------
    def reset(self, batch_size: int, rng: np.random.Generator) -> CleanupState:
        """``B`` fresh games (module docstring); draws the initial waste cells from ``rng``."""
        batch_size = check_positive_int(batch_size, "batch_size", MAX_BATCH)
        check_generator(rng)
        keys = rng.random((batch_size, self.river_cells.size))
        ranks = np.argsort(np.argsort(keys, axis=1), axis=1)
        return CleanupState(
            np.broadcast_to(self.start_cells, (batch_size, self.n_agents)).copy(),
            ranks < self.n_initial_waste,
            np.zeros((batch_size, self.orchard_cells.size), dtype=bool),
        )

    def regrowth_probability(self, waste_share: np.ndarray) -> np.ndarray:
        """``p(d) = apple_respawn_prob · clip((d_depl − d) / (d_depl − d_rest), 0, 1)``: the
        probability that an empty, unoccupied orchard cell grows an apple when the river's
        waste share is ``d`` (module docstring, step 4)."""
        params = self.params
        return params.apple_respawn_prob * np.clip(
            (params.depletion_threshold - waste_share)
            / (params.depletion_threshold - params.restoration_threshold),
            0.0,
            1.0,
        )

    def waste_spreads(self, waste_share: np.ndarray) -> np.ndarray:
        """Whether waste may spread this step when the river's waste share after cleaning is
        ``d``: ``d < d_depl`` (module docstring, step 5). Some river cell is then clean, because
        ``d_depl <= 1``."""
        return waste_share < self.params.depletion_threshold

    def draw_noise(self, rng: np.random.Generator, batch_size: int) -> np.ndarray:
        """The uniforms one step of ``batch_size`` games consumes (module docstring)."""
        return check_generator(rng).random((batch_size, self.orchard_cells.size + 1 + self.river_cells.size))

    def step(
        self, state: CleanupState, actions: np.ndarray, rng: np.random.Generator
    ) -> tuple[CleanupState, np.ndarray, np.ndarray]:
        """One step of every game: ``(state, env_rewards (B, N), done (B,))``; ``done`` is
        always false (episodes end by truncation only)."""
        new_state, rewards, _ = self.transition(state, actions, self.draw_noise(rng, state.batch_size))
        return new_state, rewards, np.zeros(state.batch_size, dtype=bool)

    def transition(
        self, state: CleanupState, actions, noise: np.ndarray
    ) -> tuple[CleanupState, np.ndarray, np.ndarray]:
        """The deterministic step of the module docstring given the step's ``noise``.

        Parameters
        ----------
        state : CleanupState
        actions : array_like of int, shape (B, N)
        noise : ndarray, shape (B, n_orchard + 1 + n_river)
            Uniforms in ``[0, 1)`` (:meth:`draw_noise`).

        Returns
        -------
        state : CleanupState
        env_rewards : ndarray of float64, shape (B, N)
        cleaned : ndarray of int64, shape (B, N)
            Waste cells in the beam of each agent that cleaned.

        Raises
        ------
        ValueError
            On actions that are not integers in ``[0, 6)`` of shape ``(B, N)``, or noise of
            the wrong shape.
        """
        batch_size = state.batch_size
        actions = check_actions(actions, batch_size, self.n_agents, N_ACTIONS)
        n_orchard, n_river = self.orchard_cells.size, self.river_cells.size
        if not isinstance(noise, np.ndarray) or noise.shape != (batch_size, n_orchard + 1 + n_river):
            raise ValueError(
                f"noise must be an array of shape {(batch_size, n_orchard + 1 + n_river)}, "
                f"got {getattr(noise, 'shape', type(noise).__name__)}"
            )
        others = ~np.eye(self.n_agents, dtype=bool)
        # 1. moves
        positions = state.positions
        targets = self.next_cell[positions, actions]
        blocked = (
            ((targets[:, :, None] == targets[:, None, :]) | (targets[:, :, None] == positions[:, None, :]))
            & others
        ).any(axis=2)
        positions = np.where(blocked, positions, targets)
        # 2. cleaning
        beams = self.beam[positions] & (actions == CLEAN)[:, :, None]
        cleaned = (beams & state.waste[:, None, :]).sum(axis=2)
        waste = state.waste & ~beams.any(axis=1)
        # 3. eating
        slots = self.orchard_slot[positions]
        occupied = (slots[:, :, None] == np.arange(n_orchard)).any(axis=1)
        ate = (slots >= 0) & np.take_along_axis(state.apples, np.maximum(slots, 0), axis=1)
        rewards = np.where(ate, APPLE_REWARD, 0.0)
        apples = state.apples & ~occupied
        # 4. apple regrowth
        params = self.params
        share = waste.mean(axis=1)
        growth = self.regrowth_probability(share)
        apples = apples | (~occupied & (noise[:, :n_orchard] < growth[:, None]))
        # 5. waste growth
        spawn = self.waste_spreads(share) & (noise[:, n_orchard] < params.waste_spawn_prob)
        chosen = np.argmax(np.where(waste, -1.0, noise[:, n_orchard + 1 :]), axis=1)
        waste = waste | (spawn[:, None] & (np.arange(n_river) == chosen[:, None]))
        return CleanupState(positions, waste, apples), rewards, cleaned

    # -- what agents and designers see --------------------------------------------------------
    def grids(self, state: CleanupState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(waste (B, HW), apples (B, HW), agents (B, N, HW))`` one-hot grids, float32."""
        batch_size = state.batch_size
        waste = np.zeros((batch_size, self.n_cells), dtype=np.float32)
        waste[:, self.river_cells] = state.waste
        apples = np.zeros((batch_size, self.n_cells), dtype=np.float32)
        apples[:, self.orchard_cells] = state.apples
        agents = np.zeros((batch_size, self.n_agents, self.n_cells), dtype=np.float32)
        np.put_along_axis(agents, state.positions[:, :, None], 1.0, axis=2)
        return waste, apples, agents

    def observe(self, state: CleanupState) -> np.ndarray:
        """Every agent's observation (module docstring), shape ``(B, N, *observation_shape)`` float32."""
        waste, apples, agents = self.grids(state)
        batch_size, n_agents = state.positions.shape
        channels = np.empty((batch_size, n_agents, 4, self.n_cells), dtype=np.float32)
        channels[:, :, WASTE] = waste[:, None]
        channels[:, :, APPLE] = apples[:, None]
        channels[:, :, SELF] = agents
        channels[:, :, OTHERS] = agents.sum(axis=1, keepdims=True) - agents
        if self.params.view == "window":
            channels = self._windows(channels, state.positions)
        own = (self._row_one_hot[state.positions], self._column_one_hot[state.positions])
        return np.concatenate((channels.reshape(batch_size, n_agents, -1), *own), axis=2)

    def _windows(self, channels: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """The ``(2v + 1)²`` window of every agent, with the ``OUTSIDE`` channel appended."""
        params, radius = self.params, self.params.view_radius
        batch_size, n_agents = positions.shape
        padded = np.zeros(
            (batch_size, n_agents, 4, params.height + 2 * radius, params.width + 2 * radius), dtype=np.float32
        )
        padded[..., radius : radius + params.height, radius : radius + params.width] = channels.reshape(
            batch_size, n_agents, 4, params.height, params.width
        )
        index = self._window[positions]
        windows = np.take_along_axis(
            padded.reshape(batch_size, n_agents, 4, -1), index[:, :, None, :], axis=3
        )
        return np.concatenate((windows, self._outside[index][:, :, None, :]), axis=2)

    def global_state(self, state: CleanupState) -> np.ndarray:
        """``[waste grid, apple grid, agent 0's cell, …, agent N−1's cell]`` one-hot, shape
        ``(B, (2 + N) H W)`` float32: what a planner sees of a state."""
        waste, apples, agents = self.grids(state)
        return np.concatenate((waste, apples, agents.reshape(state.batch_size, -1)), axis=1)

    def incentive_features(self, state: CleanupState, actions: np.ndarray) -> np.ndarray:
        """``[global_state, one-hot joint action (N × 6), waste cells each agent's beam
        removes (N)]``, shape ``(B, (2 + N) H W + 7 N)`` float32."""
        actions = check_actions(actions, state.batch_size, self.n_agents, N_ACTIONS)
        joint = np.eye(N_ACTIONS, dtype=np.float32)[actions].reshape(actions.shape[0], -1)
        cleaned = self._cleaned(state, actions).astype(np.float32)
        return np.concatenate((self.global_state(state), joint, cleaned), axis=1)

    def prosocial_events(self, state: CleanupState, actions: np.ndarray) -> np.ndarray:
        """The waste cells each agent's beam removes in the step (0 unless it cleans), shape
        ``(B, N)`` float64 — the ``cleaned`` count of :meth:`transition`, known before the
        step because cleaning agents do not move."""
        actions = check_actions(actions, state.batch_size, self.n_agents, N_ACTIONS)
        return self._cleaned(state, actions).astype(np.float64)

    def _cleaned(self, state: CleanupState, actions: np.ndarray) -> np.ndarray:
        beams = self.beam[state.positions] & (actions == CLEAN)[:, :, None]
        return (beams & state.waste[:, None, :]).sum(axis=2)

    def waste_share(self, state: CleanupState) -> np.ndarray:
        """``d``: the waste share of each game's river, shape (B,)."""
        return state.waste.mean(axis=1)
