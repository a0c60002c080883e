"""The PettingZoo adapter shared by every game: one round = one play of the stage game.

:class:`IncentiveParallelEnv` turns an :class:`~incentive_envs.core.IncentiveGame` into a
``pettingzoo.ParallelEnv``. Subclasses (one per game, beside the game's math) only say
what an agent observes. The common mechanics are:

* actions are the agents' strategies (Box spaces matching the game's strategy set; on
  simplices, non-negative weights divided by their sum, all-zero weights meaning uniform);
  malformed actions (missing agent, wrong shape, NaN/inf, outside the set) raise
  ``ValueError`` — nothing is silently clipped;
* rewards are ``game.rewards(x, θ)``, i.e. include the planner's incentives;
* ``infos[agent]["gradient"]`` is the agent's block of ``v_θ(x)`` at the joint action just
  played (plus Gaussian noise of standard deviation ``feedback_noise_std``), and
  ``infos[agent]["strategy"]`` the agent's own strategy; games with an exact best
  response also report ``infos[agent]["best_response"]``. At ``reset`` they describe the
  initial profile, so a gradient learner can take its first step;
* incentives change only between rounds, through :meth:`set_incentive`;
* episodes are truncated after ``max_cycles`` rounds.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from pettingzoo import ParallelEnv
from pettingzoo.utils.conversions import parallel_to_aec

from incentive_envs.core import IncentiveGame
from incentive_envs.validation import as_finite_array, check_positive_int, check_scalar

ACTION_TOLERANCE = 1e-6
"""Relative slack accepted on action bounds, so float32 samples of a space are valid."""

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
    """Standard deviation of the Gaussian noise added to the gradient feedback in ``infos``
    (the stochastic environment of the paper, §3), drawn from the seed given to ``reset``."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "max_cycles", check_positive_int(self.max_cycles, "max_cycles", MAX_CYCLES))
        object.__setattr__(
            self, "feedback_noise_std", check_scalar(self.feedback_noise_std, "feedback_noise_std", low=0.0)
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
        self._slices = strategy_set.agent_slices
        self.possible_agents = [f"{agent_prefix}_{i}" for i in range(strategy_set.n_agents)]
        self.agents: list[str] = []
        self._agent_index = {agent: i for i, agent in enumerate(self.possible_agents)}
        self._action_spaces = {
            agent: self._make_action_space(block) for agent, block in zip(self.possible_agents, self._slices)
        }
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
        computed at; default: the strategy set's canonical point) and ``"incentive"``.
        """
        if seed is not None:
            self.np_random, _ = seeding.np_random(seed)
        options = dict(options or {})
        unknown = set(options) - {"initial_strategy", "incentive"}
        if unknown:  # PettingZoo's own conformance test passes foreign options: warn, don't fail
            warnings.warn(
                f"reset() ignores unknown options {sorted(unknown)}; known: initial_strategy, incentive",
                stacklevel=2,
            )
        if "incentive" in options:
            self.set_incentive(options["incentive"])
        if "initial_strategy" in options:
            self._strategy = self.game.validate_strategy(options["initial_strategy"], "initial_strategy")
        else:
            self._strategy = self.game.strategy_set.uniform_point()
        self._round = 0
        self.agents = list(self.possible_agents)
        return self._observation_dict(), self._info_dict()

    def step(self, actions: dict):
        if not self.agents:
            raise ValueError("step() called with no live agents: call reset() first")
        self._strategy = self._joint_action(actions)
        rewards = self.game.rewards(self._strategy, self._incentive)
        self._round += 1
        truncated = self._round >= self.max_cycles
        observations, infos = self._observation_dict(), self._info_dict()
        reward_dict = {agent: float(reward) for agent, reward in zip(self.possible_agents, rewards)}
        terminations = {agent: False for agent in self.agents}
        truncations = {agent: truncated for agent in self.agents}
        if truncated:
            self.agents = []
        return observations, reward_dict, terminations, truncations, infos

    def _joint_action(self, actions: dict) -> np.ndarray:
        if not isinstance(actions, dict):
            raise ValueError(f"actions must be a dict keyed by agent, got {type(actions).__name__}")
        missing = [agent for agent in self.agents if agent not in actions]
        extra = [agent for agent in actions if agent not in self._agent_index]
        if missing or extra:
            raise ValueError(
                f"actions must have one entry per live agent; missing {missing[:5]}, unknown {extra[:5]}"
            )
        try:  # fast path: one array op for all agents; per-agent checks only name the culprit
            blocks = [np.asarray(actions[agent], dtype=np.float64) for agent in self.possible_agents]
            joint = np.concatenate(blocks)
            valid = (
                joint.shape == (self.game.strategy_set.dim,)
                and all(block.ndim == 1 for block in blocks)
                and bool(np.all(np.isfinite(joint)))
            )
        except (TypeError, ValueError):
            valid = False
        if not valid:
            for agent, block in zip(self.possible_agents, self._slices):
                as_finite_array(actions[agent], f"actions[{agent!r}]", (block.stop - block.start,))
        low, high = self._action_low(), self._action_high()
        slack = ACTION_TOLERANCE * np.maximum(1.0, np.maximum(np.abs(low), np.abs(high)))
        outside = np.flatnonzero((joint < low - slack) | (joint > high + slack))
        if outside.size:
            agent = self.possible_agents[self.game.strategy_set.agent_of_coordinate[outside[0]]]
            raise ValueError(
                f"actions[{agent!r}] = {float(joint[outside[0]])!r} is outside the action space "
                f"[{float(low[outside[0]])!r}, {float(high[outside[0]])!r}]"
            )
        joint = np.clip(joint, low, high)  # removes only the float32 rounding slack above
        if self.game.strategy_set.kind == "simplex":  # weights -> shares; all-zero weights -> uniform
            strategy_set = self.game.strategy_set
            sums = np.repeat(strategy_set.block_sum(joint), strategy_set.agent_sizes)
            joint = np.where(sums > 0, joint / np.where(sums > 0, sums, 1.0), strategy_set.uniform_point())
        return joint

    def _observation_dict(self) -> dict:
        observations = self._observations(self._strategy, self._incentive).astype(np.float32)
        return dict(zip(self.possible_agents, observations))

    def _info_dict(self) -> dict:
        gradient = self.game.pseudo_gradient(self._strategy, self._incentive)
        if self.feedback_noise_std > 0:
            gradient = gradient + self.feedback_noise_std * self.np_random.standard_normal(gradient.shape)
        try:
            best_response = self.game.best_response(self._strategy, self._incentive)
        except NotImplementedError:
            best_response = None
        if best_response is None:
            return {
                agent: {"gradient": gradient[block], "strategy": self._strategy[block]}
                for agent, block in zip(self.possible_agents, self._slices)
            }
        return {
            agent: {
                "gradient": gradient[block],
                "strategy": self._strategy[block],
                "best_response": best_response[block],
            }
            for agent, block in zip(self.possible_agents, self._slices)
        }

    def render(self):
        """``"ansi"``: return a one-line text summary of the last round; ``"human"``: print it."""
        return render_text(self.render_mode, self._render_text())

    def _render_text(self) -> str:
        """The summary line; subclasses append game-specific quantities."""
        cost = self.game.social_cost(self._strategy, self._incentive)
        return (
            f"round {self._round}/{self.max_cycles}  social cost {cost:.6g}  "
            f"mean incentive {self._incentive.mean():.6g}"
        )

    def close(self) -> None:
        pass


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
