"""The images a run logs: value functions over 2-D state slices, and linear weights.

A :class:`StateSlice` is a plane through a box of states: two state variables vary over their
ranges and the others stay fixed (over a 2-D state space it is the whole space). The loggers
made here draw a run's functions on such a plane — U(s), max_a Q(s, a) and the greedy action
(its colour bar naming the actions) as heat maps — and a linear approximator's weights (over
the grid of a grid basis, else per basis function), and hand the figures to a
:class:`~rlapprox.loggers.ScalarLogger` when called with a step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from rlapprox.approximators.linear import LinearApproximator
from rlapprox.approximators.normalization import BoxNormalizer
from rlapprox.features.multilinear import MultilinearBasis
from rlapprox.features.rbf import RBFBasis
from rlapprox.loggers import ScalarLogger, Tags
from rlapprox.viz.plots import grid_weights_figure, linear_weights_figure, value_heatmap

StepCallback = Callable[[int], None]
"""Called with the iteration or env step at which images are due."""


@dataclass(frozen=True)
class StateSlice:
    """A plane through a box of states: ``dims`` vary, the other variables are fixed at ``at``.

    Build one with :meth:`through`, which resolves names and defaults.

    Attributes:
        names: one name per state variable, ``(state_dim,)``.
        low: lower corner of the box, ``(state_dim,)``.
        high: upper corner of the box, ``(state_dim,)``.
        dims: indices of the horizontal and the vertical variable.
        at: a full state ``(state_dim,)`` holding the fixed variables' values (the entries at
            ``dims`` are not used).
    """

    names: tuple[str, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    dims: tuple[int, int]
    at: tuple[float, ...]

    @classmethod
    def through(
        cls,
        names: Sequence[str],
        low: Sequence[float] | torch.Tensor,
        high: Sequence[float] | torch.Tensor,
        dims: Sequence[str | int] | None = None,
        at: Sequence[float] | Mapping[str, float] | None = None,
    ) -> StateSlice:
        """The slice of the box ``[low, high]`` spanned by ``dims`` through the point ``at``.

        Args:
            names: a name per state variable.
            low: lower bounds, one per variable (finite).
            high: upper bounds, one per variable (finite, above ``low``).
            dims: the two variables on the axes (horizontal first), by name or index;
                ``None`` takes the first two.
            at: the fixed variables' values: a full state (``state_dim`` numbers), or a
                mapping ``name → value`` for some of them; the rest (all, for ``None``) sit at
                the centre of the box.

        Raises:
            ValueError: for fewer than two variables, unknown or repeated ``dims``, bounds that
                are not finite, or an ``at`` that does not fit.
        """
        names = tuple(str(name) for name in names)
        low_t = torch.as_tensor(low, dtype=torch.float64).flatten()
        high_t = torch.as_tensor(high, dtype=torch.float64).flatten()
        state_dim = len(names)
        if state_dim < 2:
            raise ValueError(f"a 2-D slice needs at least two state variables, got {names}")
        if low_t.shape != (state_dim,) or high_t.shape != (state_dim,):
            raise ValueError(f"need {state_dim} bounds per corner, got {low_t.numel()}")
        bad = [
            name
            for name, lo, hi in zip(names, low_t.tolist(), high_t.tolist(), strict=True)
            if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo)
        ]
        if bad:
            raise ValueError(
                f"slice bounds must be finite with high > low; {bad} are not "
                f"(low={low_t.tolist()}, high={high_t.tolist()})"
            )
        dims = (0, 1) if dims is None else dims
        if isinstance(dims, str | bytes) or not isinstance(dims, Sequence) or len(dims) != 2:
            raise ValueError(
                f"slice dims must be a list of two state variables (names or indices) of "
                f"{list(names)}, got {dims!r}"
            )
        axes = (_index_of(dims[0], names), _index_of(dims[1], names))
        if axes[0] == axes[1]:
            raise ValueError(f"slice dims must name two different variables of {list(names)}")
        point = (low_t + high_t) / 2
        if isinstance(at, Mapping):
            for name, value in at.items():
                point[_index_of(name, names)] = float(value)
        elif at is not None:
            values = torch.as_tensor(at, dtype=torch.float64).flatten()
            if values.shape != (state_dim,):
                raise ValueError(
                    f"slice at must give all {state_dim} variables {names}, got {values.tolist()}"
                )
            point = values
        return cls(
            names, tuple(low_t.tolist()), tuple(high_t.tolist()), axes, tuple(point.tolist())
        )

    @property
    def state_dim(self) -> int:
        """Number of state variables."""
        return len(self.names)

    @property
    def is_whole_space(self) -> bool:
        """Whether nothing is fixed (a 2-D state space)."""
        return self.state_dim == 2

    @property
    def axis_names(self) -> tuple[str, str]:
        """Names of the horizontal and the vertical variable."""
        return self.names[self.dims[0]], self.names[self.dims[1]]

    @property
    def axis_ranges(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """``(low, high)`` of the horizontal and the vertical variable."""
        return tuple((self.low[d], self.high[d]) for d in self.dims)  # type: ignore[return-value]

    @property
    def fixed(self) -> dict[str, float]:
        """The fixed variables and their values, in state order."""
        pairs = enumerate(zip(self.names, self.at, strict=True))
        return {name: value for i, (name, value) in pairs if i not in self.dims}

    def describe_fixed(self) -> str:
        """``"x = 0, x_dot = 0"``: the fixed variables, for titles (empty for a whole space)."""
        return ", ".join(f"{name} = {value:.3g}" for name, value in self.fixed.items())

    def grid(self, points: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """States on a ``points × points`` grid of the slice.

        Returns:
            ``(points * points, state_dim)``; row ``i * points + j`` holds the i-th value of
            the horizontal variable and the j-th of the vertical one.
        """
        (x_low, x_high), (y_low, y_high) = self.axis_ranges
        x = torch.linspace(x_low, x_high, points, dtype=dtype)
        y = torch.linspace(y_low, y_high, points, dtype=dtype)
        mesh_x, mesh_y = torch.meshgrid(x, y, indexing="ij")
        states = torch.tensor(self.at, dtype=dtype).repeat(points * points, 1)
        states[:, self.dims[0]] = mesh_x.flatten()
        states[:, self.dims[1]] = mesh_y.flatten()
        return states


def _index_of(dim: str | int, names: tuple[str, ...]) -> int:
    if isinstance(dim, bool) or not isinstance(dim, str | int):
        raise ValueError(f"a state variable is a name of {list(names)} or an index, got {dim!r}")
    if isinstance(dim, int) or dim.isdigit():
        index = int(dim)
        if not 0 <= index < len(names):
            raise ValueError(f"state variable index {index} is outside 0..{len(names) - 1}")
        return index
    if dim not in names:
        raise ValueError(f"unknown state variable {dim!r}; the state has {list(names)}")
    return names.index(dim)


def value_image_logger(
    state_slice: StateSlice,
    logger: ScalarLogger,
    *,
    value: Callable[[torch.Tensor], torch.Tensor] | None = None,
    q_values: Callable[[torch.Tensor], torch.Tensor] | None = None,
    subject: str = "",
    step_name: str = "step",
    points: int = 101,
    action_names: Sequence[str] | None = None,
) -> StepCallback:
    """A callback drawing U(s), max_a Q(s, a) and the greedy action over a state slice.

    With ``value`` it draws U(s); with ``q_values`` the greedy action, and max_a Q(s, a) too
    when there is no ``value``. Over a 2-D state space the images go to
    :attr:`Tags.FIGURE_VALUE` and :attr:`Tags.FIGURE_ACTION`; over a slice of a larger one to
    :attr:`Tags.FIGURE_VALUE_SLICE` and :attr:`Tags.FIGURE_ACTION_SLICE`, with the fixed
    variables' values in the title.

    Args:
        state_slice: where to draw.
        logger: receives the figures.
        value: states ``(N, state_dim)`` float64 → U ``(N,)``.
        q_values: states ``(N, state_dim)`` float64 → Q ``(N, num_actions)``.
        subject: follows the function's name in titles (``"on CartPole-v1"``).
        step_name: what the step counts (``"iteration"``, ``"env step"``).
        points: grid points per axis.
        action_names: a name per action for the greedy action's colour bar (``"push left"``,
            …; a model's :attr:`~rlapprox.models.GenerativeModel.action_names`); ``None``
            numbers them.

    Raises:
        ValueError: with neither ``value`` nor ``q_values``, or when the greedy action is
            drawn with ``action_names`` that do not name every action.
    """
    if value is None and q_values is None:
        raise ValueError("value_image_logger needs value, q_values or both")
    grid = state_slice.grid(points)
    whole = state_slice.is_whole_space
    value_tag = Tags.FIGURE_VALUE if whole else Tags.FIGURE_VALUE_SLICE
    action_tag = Tags.FIGURE_ACTION if whole else Tags.FIGURE_ACTION_SLICE
    fixed = "" if whole else f"\nslice at {state_slice.describe_fixed()}"

    def heatmap(values: torch.Tensor, name: str, step: int, **kwargs: object) -> object:
        title = _title(name, subject, step_name, step) + fixed
        return value_heatmap(
            values.reshape(points, points),
            *state_slice.axis_ranges,
            *state_slice.axis_names,
            title=title,
            **kwargs,  # type: ignore[arg-type]
        )

    @torch.no_grad()
    def log_images(step: int) -> None:
        q = q_values(grid).detach().cpu() if q_values is not None else None
        if value is not None:
            u = value(grid).detach().cpu()
            logger.figure(value_tag, heatmap(u, "U(s)", step), step)
        elif q is not None:
            best = q.max(dim=1).values
            label = "max_a Q(s, a)"
            logger.figure(value_tag, heatmap(best, label, step, colorbar_label=label), step)
        if q is not None:
            figure = heatmap(
                q.argmax(dim=1), "greedy action", step,
                colorbar_label="action", num_levels=q.shape[1], level_names=action_names,
            )  # fmt: skip
            logger.figure(action_tag, figure, step)

    return log_images


def network_q_of_states(
    q_network: nn.Module,
    observe: Callable[[torch.Tensor], torch.Tensor],
    device: torch.device | str = "cpu",
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Q(s, ·) of states through a Q-network that sees observations, in eval mode.

    Args:
        q_network: observations ``(N, obs_dim)`` → ``(N, num_actions)``.
        observe: states ``(N, state_dim)`` → the observations the network sees.
        device: where the network is.
    """

    @torch.no_grad()
    def q_of_states(states: torch.Tensor) -> torch.Tensor:
        dtype = next(q_network.parameters()).dtype
        was_training = q_network.training
        q_network.eval()
        try:
            return q_network(observe(states).to(device, dtype))
        finally:
            q_network.train(was_training)

    return q_of_states


def linear_weights_logger(
    approximator: nn.Module,
    logger: ScalarLogger,
    *,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    subject: str = "",
    step_name: str = "step",
) -> StepCallback | None:
    """A callback plotting a linear approximator's weights.

    A basis on a 1-D or 2-D grid (:class:`~rlapprox.features.MultilinearBasis`, a full-grid
    :class:`~rlapprox.features.RBFBasis`) has its weights drawn over the grid, in the inputs'
    own units where the approximator scales them with a
    :class:`~rlapprox.approximators.BoxNormalizer` (:func:`grid_weights_figure`). Any other
    basis gets a bar per basis function, named by its map
    (:meth:`~rlapprox.features.FeatureMap.feature_names`: ``sin(2πx0)``, ``cos(π(1x0+2x1))``,
    ``rbf(3,5)``), or for more than 60 functions the 30 with the largest ``|weight|``
    (:func:`linear_weights_figure`). The figure goes to :attr:`Tags.FIGURE_WEIGHTS`.

    Args:
        approximator: any module; only a :class:`LinearApproximator` gets a callback.
        logger: receives the figures.
        input_names: what the inputs ``x0``, ``x1``, … are (the grid's axes, or noted under
            the plot).
        output_names: one label per output (``"U(s)"``, ``"push left"``, …).
        subject: follows "linear weights" in the title.
        step_name: what the step counts.

    Returns:
        The callback, or ``None`` for an approximator that is not linear.
    """
    if not isinstance(approximator, LinearApproximator):
        return None
    features = approximator.features
    grid = weight_grid(approximator, input_names)
    # a user's own feature map may name nothing: its features are then numbered
    name_features = getattr(features, "feature_names", None)
    feature_names = (
        name_features()
        if callable(name_features)
        else [f"β{i}" for i in range(features.num_features)]
    )
    in_dim = getattr(features, "in_dim", None)
    note = None
    if input_names is not None and in_dim == len(input_names):
        placeholders = ["x"] if in_dim == 1 else [f"x{j}" for j in range(in_dim)]
        pairs = ", ".join(f"{p} = {n}" for p, n in zip(placeholders, input_names, strict=True))
        note = f"inputs scaled to [0, 1]: {pairs}"

    def log_weights(step: int) -> None:
        linear = approximator.linear
        weights = linear.weight.detach().T.cpu().double()  # (num_features, out_dim)
        bias = linear.bias.detach().cpu().double() if linear.bias is not None else None
        title = _title("linear weights", subject, step_name, step)
        if grid is not None:
            figure = grid_weights_figure(
                weights, grid[0], grid[1], title, output_names=output_names, bias=bias
            )
        else:
            figure = linear_weights_figure(
                weights, feature_names, title, output_names=output_names, bias=bias, note=note
            )
        logger.figure(Tags.FIGURE_WEIGHTS, figure, step)

    return log_weights


def weight_grid(
    approximator: LinearApproximator, input_names: Sequence[str] | None = None
) -> tuple[list[torch.Tensor], list[str]] | None:
    """The grid a linear approximator's weights sit on: its axes' coordinates and names.

    Args:
        approximator: the linear approximator.
        input_names: a name per input (``None``: ``x``, or ``x0``, ``x1``).

    Returns:
        For a :class:`~rlapprox.features.MultilinearBasis` (its vertices) or a full-grid
        :class:`~rlapprox.features.RBFBasis` (its centres) on one or two inputs: one
        coordinate tensor per axis, in the inputs' units where the approximator's normaliser
        is a :class:`~rlapprox.approximators.BoxNormalizer` (else in the unit box), and the
        axes' names. ``None`` for any other basis.
    """
    features = approximator.features
    in_dim = getattr(features, "in_dim", None)
    if in_dim not in (1, 2):
        return None
    if isinstance(features, MultilinearBasis):
        points = features.points_per_dim
        vertices = features.vertices(torch.float64).cpu().reshape(*[points] * in_dim, in_dim)
        axes = [vertices[:, 0]] if in_dim == 1 else [vertices[:, 0, 0], vertices[0, :, 1]]
    elif isinstance(features, RBFBasis) and features.coupling == "full":
        axes = [features.centers(torch.float64).cpu()] * in_dim
    else:
        return None
    if input_names is not None and len(input_names) == in_dim:
        names = [str(name) for name in input_names]
    else:
        names = ["x"] if in_dim == 1 else [f"x{j}" for j in range(in_dim)]
    normalizer = approximator.normalizer
    if isinstance(normalizer, BoxNormalizer) and normalizer.dim == in_dim:
        low = normalizer.low.detach().cpu().double()
        high = normalizer.high.detach().cpu().double()
        axes = [low[j] + axis * (high[j] - low[j]) for j, axis in enumerate(axes)]
    else:
        names = [f"{name} (in [0, 1])" for name in names]
    return axes, names


def _title(name: str, subject: str, step_name: str, step: int) -> str:
    """``"U(s) on MountainCar-v0, iteration 7"`` (``"U(s), iteration 7"`` without a subject)."""
    return f"{' '.join(part for part in (name, subject) if part)}, {step_name} {step}"


def chain(*callbacks: StepCallback | None) -> StepCallback | None:
    """One callback calling each given one in turn, at most once per step.

    ``None`` entries are skipped; a second call with the step just drawn (an image due at the
    last iteration, then the end-of-run one) draws nothing.

    Returns:
        The combined callback, or ``None`` when every entry is ``None``.
    """
    present = [callback for callback in callbacks if callback is not None]
    if not present:
        return None
    last_step: list[int] = []

    def call_all(step: int) -> None:
        if last_step and last_step[0] == step:
            return
        last_step[:] = [step]
        for callback in present:
            callback(step)

    return call_all
