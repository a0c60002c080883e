"""The PettingZoo adapter shared by every game: one round = one play of the stage game.

:class:`IncentiveParallelEnv` turns an :class:`~incentive_envs.core.IncentiveGame` into a
``pettingzoo.ParallelEnv``. Subclasses (one per game, beside the game's math) only say
what an agent observes. The common mechanics are:

* actions are the agents' strategies (Box spaces matching the game's strategy set; on
  simplices, non-negative weights divided by their sum, all-zero weights meaning uniform);
  malformed actions (missing agent, wrong shape, NaN/inf, outside the set) raise
  ``ValueError`` — nothing is silently clipped;
* actions are checked against the action spaces' own (float32) bounds and played at their
  float64 value: nothing is clipped, so an action on a float32-rounded bound (``3.1415927``
  for ``π``) is played as given, within one float32 rounding of the model's bounds;
* rewards are ``game.rewards(x, θ)``, i.e. include the planner's incentives;
* ``infos[agent]`` holds, for each kind listed in the config's ``feedback`` (default none,
  so RL training pays nothing for it): ``infos[agent]["gradient"]``, the agent's
  block of ``v_θ(x)`` at the joint action just played (plus Gaussian noise of standard
  deviation ``feedback_noise_std``); ``infos[agent]["best_response"]``, its exact best
  response; ``infos[agent]["payoffs"]``, its counterfactual payoffs on ``payoff_grid`` evenly
  spaced actions (what Hedge and logit learners read). Only the listed kinds are computed.
  At ``reset`` they describe the initial profile, so a learner can take its first step;
* incentives change only between rounds, through :meth:`set_incentive`;
* episodes are truncated after ``max_cycles`` rounds.
"""

from __future__ import annotations

import operator
import warnings
from dataclasses import dataclass

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from pettingzoo import ParallelEnv
from pettingzoo.utils.conversions import parallel_to_aec

from incentive_envs.core import IncentiveGame
from incentive_envs.validation import as_finite_array, check_int, check_positive_int, check_scalar, check_seed

_DTYPE = operator.attrgetter("dtype")

FEEDBACK_KINDS = ("gradient", "best_response", "payoffs")
"""The feedback an env can put in ``infos`` (see the module docstring)."""

MAX_CYCLES = 10**12
"""Largest accepted ``max_cycles`` (an episode longer than any run is "endless")."""

MAX_AGENTS = 10**7
"""Largest accepted number of agents of a stage game (checked before anything is allocated)."""


@dataclass(frozen=True, kw_only=True)
class StageGameConfig:
    """Parameters shared by every stage-game env; each env's config adds its game's own."""

    max_cycles: int = 100
    """Rounds per episode before truncation."""
    feedback_noise_std: float = 0.0
    """Standard deviation of the Gaussian noise added to the gradient and payoff feedback in
    ``infos`` (the stochastic environment of the paper, §3), drawn from the seed given to ``reset``."""
    feedback: tuple[str, ...] = ()
    """Which feedback ``infos`` carry, among ``"gradient"``, ``"best_response"`` and
    ``"payoffs"``; only these are computed each round. Default none: RL followers learn from
    rewards, and a step then builds only empty info dicts (learners that read the model's
    feedback through the env, such as :func:`agents.play_env`, ask for theirs)."""
    payoff_grid: int = 201
    """Actions per agent of the ``"payoffs"`` feedback (evenly spaced over its box)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "max_cycles", check_positive_int(self.max_cycles, "max_cycles", MAX_CYCLES))
        object.__setattr__(
            self, "feedback_noise_std", check_scalar(self.feedback_noise_std, "feedback_noise_std", low=0.0)
        )
        kinds = self.feedback if isinstance(self.feedback, (tuple, list)) else None
        if (
            kinds is None
            or any(kind not in FEEDBACK_KINDS for kind in kinds)
            or len(set(kinds)) != len(kinds)
        ):
            raise ValueError(
                f"feedback must be distinct kinds among {list(FEEDBACK_KINDS)}, got {self.feedback!r}"
            )
        object.__setattr__(self, "feedback", tuple(kinds))
        object.__setattr__(
            self, "payoff_grid", check_int(self.payoff_grid, "payoff_grid", low=2, high=100_000)
        )


class IncentiveParallelEnv(ParallelEnv):
    """Base class of the suite's environments (see the module docstring).

    Parameters
    ----------
    game : IncentiveGame
        The model played each round.
    agent_prefix : str
        Agents are named ``f"{agent_prefix}_{i}"``.
    config : StageGameConfig
        The env's parameters (its ``max_cycles`` and ``feedback_noise_std`` are used here).
    incentive : array_like, optional
        Initial incentive; default: the projection of 0 onto the incentive bounds.
    render_mode : {None, "ansi", "human"}
        ``render()`` returns a text line (``"ansi"``) or prints it (``"human"``).
    """

    metadata = {"render_modes": ["ansi", "human"], "name": "incentive_env", "is_parallelizable": True}

    def __init__(
        self,
        game: IncentiveGame,
        agent_prefix: str,
        config: StageGameConfig,
        *,
        incentive=None,
        render_mode: str | None = None,
    ):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}"
            )
        self.game = game
        self.config = config
        self.max_cycles = config.max_cycles
        self.feedback_noise_std = config.feedback_noise_std
        self.render_mode = render_mode
        strategy_set = game.strategy_set
        missing = [
            kind
            for kind, available in (("best_response", game.has_best_response), ("payoffs", game.has_payoffs))
            if kind in config.feedback and not available
        ]
        if missing:
            raise ValueError(f"feedback {missing} is not available for {type(game).__name__}")
        self._slices = strategy_set.agent_slices
        self._equal_blocks = len(set(strategy_set.agent_sizes)) == 1
        self.possible_agents = [f"{agent_prefix}_{i}" for i in range(strategy_set.n_agents)]
        self.agents: list[str] = []
        self._agent_index = {agent: i for i, agent in enumerate(self.possible_agents)}
        self._action_spaces = {
            agent: self._make_action_space(block) for agent, block in zip(self.possible_agents, self._slices)
        }
        shapes = {space.shape for space in self._action_spaces.values()}
        if len(shapes) != 1:
            raise ValueError(f"every agent must have the same action space shape, got {sorted(shapes)}")
        # The exact bounds actions are checked against: the action spaces' own float32 bounds.
        self._action_low_array = np.stack([space.low for space in self._action_spaces.values()]).astype(
            np.float64
        )
        self._action_high_array = np.stack([space.high for space in self._action_spaces.values()]).astype(
            np.float64
        )
        low, high = self._action_low_array, self._action_high_array
        uniform = low.min() == low.max() and high.min() == high.max()  # then compare with floats
        self._action_bounds = (float(low.min()), float(high.max())) if uniform else (low, high)
        if "payoffs" in config.feedback:
            self._payoff_actions = strategy_set.action_grid(config.payoff_grid)
        obs_low, obs_high = self._observation_bounds()
        observation_space = spaces.Box(
            obs_low.astype(np.float32), obs_high.astype(np.float32), dtype=np.float32
        )
        self._observation_spaces = {agent: observation_space for agent in self.possible_agents}
        self._state_space = spaces.Box(
            np.concatenate((self._action_low(), game.incentive_set.lower)).astype(np.float32),
            np.concatenate((self._action_high(), game.incentive_set.upper)).astype(np.float32),
            dtype=np.float32,
        )
        initial = (
            game.incentive_set.project(np.zeros(game.incentive_set.dim)) if incentive is None else incentive
        )
        self._incentive = game.validate_incentive(initial, "incentive")
        self._strategy = strategy_set.uniform_point()
        self._round = 0
        self.np_random, _ = seeding.np_random(None)

    # -- spaces -------------------------------------------------------------------------
    def _action_low(self) -> np.ndarray:
        s = self.game.strategy_set
        return (
            np.zeros(s.dim)
            if s.kind == "simplex"
            else (s.lower if s.kind == "box" else np.full(s.dim, -np.inf))
        )

    def _action_high(self) -> np.ndarray:
        s = self.game.strategy_set
        return (
            np.ones(s.dim)
            if s.kind == "simplex"
            else (s.upper if s.kind == "box" else np.full(s.dim, np.inf))
        )

    def _make_action_space(self, block: slice) -> spaces.Box:
        low, high = self._action_low()[block], self._action_high()[block]
        return spaces.Box(low.astype(np.float32), high.astype(np.float32), dtype=np.float32)

    def observation_space(self, agent: str) -> spaces.Box:
        return self._observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Box:
        return self._action_spaces[agent]

    @property
    def state_space(self) -> spaces.Box:
        """Global state: the last joint strategy followed by the incentive."""
        return self._state_space

    def state(self) -> np.ndarray:
        return np.concatenate((self._strategy, self._incentive)).astype(np.float32)

    # -- what subclasses define ------------------------------------------------------------
    def _observation_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """``(low, high)`` of one agent's observation vector."""
        raise NotImplementedError

    def _observations(self, strategy: np.ndarray, incentive: np.ndarray) -> np.ndarray:
        """All agents' observations after ``strategy`` was played, shape ``(n_agents, obs_dim)``."""
        raise NotImplementedError

    # -- incentives and model access -------------------------------------------------------
    @property
    def incentive(self) -> np.ndarray:
        """The current incentive ``θ`` (a copy)."""
        return self._incentive.copy()

    def set_incentive(self, incentive) -> None:
        """Set ``θ`` for the following rounds; raises ``ValueError`` if outside the bounds."""
        self._incentive = self.game.validate_incentive(incentive, "incentive")

    @property
    def strategy(self) -> np.ndarray:
        """The joint strategy of the last round (or the initial profile after ``reset``)."""
        return self._strategy.copy()

    def actions_from_strategy(self, strategy: np.ndarray) -> dict:
        """The action dict that plays the flat joint ``strategy`` (each agent's block)."""
        strategy = np.asarray(strategy, dtype=np.float64)
        return {agent: strategy[block] for agent, block in zip(self.possible_agents, self._slices)}

    # -- the PettingZoo API ----------------------------------------------------------------
    def reset(self, seed: int | None = None, options: dict | None = None):
        """Start an episode.

        ``options`` may hold ``"initial_strategy"`` (the profile the first feedback is
        computed at; default: the strategy set's canonical point) and ``"incentive"`` (``None``:
        keep the current one).
        """
        # validate everything first: a refused reset changes nothing
        seed = None if seed is None else check_seed(seed)
        if options is not None and not isinstance(options, dict):
            raise ValueError(f"options must be a dict or None, got {type(options).__name__}")
        options = dict(options or {})
        unknown = set(options) - {"initial_strategy", "incentive"}
        if unknown:  # PettingZoo's own conformance test passes foreign options: warn, don't fail
            warnings.warn(
                f"reset() ignores unknown options {sorted(unknown)}; known: initial_strategy, incentive",
                stacklevel=2,
            )
        incentive = options.get("incentive")  # None: keep the current incentive
        incentive = None if incentive is None else self.game.validate_incentive(incentive, "incentive")
        strategy = (
            self.game.validate_strategy(options["initial_strategy"], "initial_strategy")
            if "initial_strategy" in options
            else self.game.strategy_set.uniform_point()
        )
        if seed is not None:
            self.np_random, _ = seeding.np_random(seed)
        if incentive is not None:
            self._incentive = incentive
        self._strategy = strategy
        self._round = 0
        self.agents = list(self.possible_agents)
        return self._observation_dict(), self._info_dict()

    def step(self, actions: dict):
        if not self.agents:
            raise ValueError("step() called with no live agents: call reset() first")
        rewards, truncated = self._advance(self._actions_array(actions))
        observations, infos = self._observation_dict(), self._info_dict()
        reward_dict = dict(zip(self.possible_agents, rewards.tolist()))
        terminations = dict.fromkeys(self.agents, False)
        truncations = dict.fromkeys(self.agents, truncated)
        if truncated:
            self.agents = []
        return observations, reward_dict, terminations, truncations, infos

    def step_arrays(self, actions) -> tuple[np.ndarray, np.ndarray, bool]:
        """The array path of :meth:`step` (what vector envs use): ``actions`` of shape
        ``(n_agents, action size)`` in agent order, validated like :meth:`step`'s.

        Returns
        -------
        observations : ndarray of float32, shape (n_agents, observation size)
        rewards : ndarray of float64, shape (n_agents,)
        truncated : bool
            The episode reached ``max_cycles`` (call ``reset``).
        """
        if not self.agents:
            raise ValueError("step_arrays() called with no live agents: call reset() first")
        actions = as_finite_array(actions, "actions", self._action_low_array.shape)
        rewards, truncated = self._advance(actions)
        if truncated:
            self.agents = []
        observations = self._observations(self._strategy, self._incentive).astype(np.float32, copy=False)
        return observations, rewards, truncated

    def _advance(self, actions: np.ndarray) -> tuple[np.ndarray, bool]:
        """Play one round from validated real ``actions`` ``(n_agents, action size)``."""
        low, high = self._action_bounds
        if (actions < low).any() or (actions > high).any():
            outside = np.argwhere((actions < self._action_low_array) | (actions > self._action_high_array))
            agent, index = (int(value) for value in outside[0])
            raise ValueError(
                f"actions[{self.possible_agents[agent]!r}] = {float(actions[agent, index])!r} is outside the action "
                f"space [{self._action_low_array[agent, index]!r}, {self._action_high_array[agent, index]!r}]"
            )
        self._strategy = self._strategy_from_actions(actions)
        self._round += 1
        return self.game._rewards(self._strategy, self._incentive), self._round >= self.max_cycles

    def _strategy_from_actions(self, actions: np.ndarray) -> np.ndarray:
        """The flat joint strategy played by in-bounds ``actions`` ``(n_agents, action size)``:
        the actions themselves, or on simplices the weights divided by their sums (all-zero
        weights: uniform)."""
        joint = actions.reshape(-1)
        strategy_set = self.game.strategy_set
        if strategy_set.kind != "simplex":
            return joint
        sums = np.repeat(strategy_set.block_sum(joint), strategy_set.agent_sizes)
        return np.where(sums > 0, joint / np.where(sums > 0, sums, 1.0), strategy_set.uniform_point())

    def _actions_array(self, actions: dict) -> np.ndarray:
        """The actions of a dict keyed by agent as a validated ``(n_agents, action size)`` array."""
        if not isinstance(actions, dict):
            raise ValueError(f"actions must be a dict keyed by agent, got {type(actions).__name__}")
        try:
            values = list(map(actions.__getitem__, self.possible_agents))
        except KeyError:
            values = None
        if values is None or len(actions) != len(self.possible_agents):
            missing = [agent for agent in self.agents if agent not in actions]
            extra = [agent for agent in actions if agent not in self._agent_index]
            raise ValueError(
                f"actions must have one entry per live agent; missing {missing[:5]}, unknown {extra[:5]}"
            )
        shape = self._action_low_array.shape
        # fast path, C-level checks: NumPy arrays of integer/float dtypes (no booleans), one shape
        if set(map(type, values)) == {np.ndarray} and all(
            dtype.kind in "iuf" for dtype in set(map(_DTYPE, values))
        ):
            try:
                joint = np.array(values)  # one conversion for all agents
            except ValueError:  # ragged shapes
                joint = None
            if joint is not None and joint.shape == shape and np.isfinite(joint).all():
                return joint.astype(np.float64)
        # lists, scalars, booleans, wrong shapes: checked agent by agent, naming the culprit
        return np.stack(
            [
                as_finite_array(value, f"actions[{agent!r}]", shape[1:])
                for agent, value in zip(self.possible_agents, values)
            ]
        )

    def _observation_dict(self) -> dict:
        observations = self._observations(self._strategy, self._incentive).astype(np.float32, copy=False)
        return dict(zip(self.possible_agents, observations))

    def _info_dict(self) -> dict:
        game, x, theta = self.game, self._strategy, self._incentive
        columns = {}
        noise = self.feedback_noise_std
        for kind in self.config.feedback:
            if kind == "gradient":
                signal = game._pseudo_gradient(x, theta)
            elif kind == "best_response":
                columns[kind] = game._best_response(x, theta)
                continue
            else:
                signal = game._unilateral_rewards(x, theta, self._payoff_actions)
            columns[kind] = (
                signal + noise * self.np_random.standard_normal(signal.shape) if noise > 0 else signal
            )
        if self._equal_blocks:  # one view per agent row, made by NumPy's iterator
            width = self._slices[0].stop - self._slices[0].start
            rows = [
                value.reshape(self.game.n_agents, width if value.ndim == 1 else -1)
                for value in columns.values()
            ]
        else:
            rows = [[value[block] for block in self._slices] for value in columns.values()]
        return per_agent_dicts(self.possible_agents, tuple(columns), rows)

    def render(self):
        """``"ansi"``: return a one-line text summary of the last round; ``"human"``: print it."""
        return render_text(self.render_mode, self._render_text())

    def _render_text(self) -> str:
        """The summary line; subclasses append game-specific quantities."""
        cost = self.game._social_cost(self._strategy, self._incentive)
        return (
            f"round {self._round}/{self.max_cycles}  social cost {cost:.6g}  "
            f"mean incentive {self._incentive.mean():.6g}"
        )

    def close(self) -> None:
        pass


def per_agent_dicts(agents: list[str], keys: tuple[str, ...], rows: list) -> dict:
    """``{agent: {key: row of agent}}`` from one sequence of per-agent rows per key.

    Written as dict displays for up to three keys (the three feedback kinds): twice as fast as building each agent's dict with ``dict(zip(keys, values))``."""
    if not keys:
        return {agent: {} for agent in agents}
    if len(keys) == 1:
        (k0,), (r0,) = keys, rows
        return {agent: {k0: v0} for agent, v0 in zip(agents, r0)}
    if len(keys) == 2:
        (k0, k1), (r0, r1) = keys, rows
        return {agent: {k0: v0, k1: v1} for agent, v0, v1 in zip(agents, r0, r1)}
    if len(keys) == 3:
        (k0, k1, k2), (r0, r1, r2) = keys, rows
        return {agent: {k0: v0, k1: v1, k2: v2} for agent, v0, v1, v2 in zip(agents, r0, r1, r2)}
    raise ValueError(f"keys must be at most three feedback kinds, got {keys!r}")


def observation_columns(*columns) -> np.ndarray:
    """Per-agent observation vectors as a ``(n_agents, len(columns))`` float32 array, each
    column an array over agents or one number shared by all (no stacked float64 copy)."""
    observations = np.empty((np.shape(columns[-1])[0], len(columns)), dtype=np.float32)
    for index, column in enumerate(columns):  # a loop over columns, not agents
        observations[:, index] = column
    return observations


def render_text(render_mode: str | None, text: str) -> str | None:
    """PettingZoo's render modes for a text renderer: ``"ansi"`` returns ``text``, ``"human"``
    prints it to stdout, ``None`` does nothing."""
    if render_mode == "human":
        print(text)
    return text if render_mode == "ansi" else None


def env_constructors(env_class: type[IncentiveParallelEnv]):
    """PettingZoo's module convention for ``env_class``: ``(parallel_env, raw_env)``, where
    ``parallel_env(**params)`` builds the parallel env and ``raw_env(**params)`` its AEC
    version through ``parallel_to_aec``; a module also exports ``env = raw_env``."""

    def parallel_env(**kwargs) -> IncentiveParallelEnv:
        return env_class(**kwargs)

    def raw_env(**kwargs):
        return parallel_to_aec(env_class(**kwargs))

    name = env_class.metadata["name"]
    parallel_env.__doc__ = (
        f"The ``{name}`` parallel environment; keyword arguments as for :class:`{env_class.__name__}`."
    )
    raw_env.__doc__ = f"The ``{name}`` AEC environment (``parallel_to_aec`` of ``parallel_env``)."
    return parallel_env, raw_env
