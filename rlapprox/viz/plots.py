"""Matplotlib figures that the loggers record as images."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from rlapprox.data.regression import RegressionData


def new_figure(width: float = 6.0, height: float = 4.0) -> Figure:
    """A figure that needs no display (the Agg canvas), for headless runs."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


#: rows of the data at which a figure of more than one input dimension draws the fit
MAX_FIT_PROBE_ROWS = 4000


def fit_probe(data: RegressionData) -> torch.Tensor:
    """Inputs at which :func:`regression_figure` draws a fit: ``(P, d)``, on the CPU.

    One input dimension: 400 points across the input box. More: the data's first
    :data:`MAX_FIT_PROBE_ROWS` rows (the figure shows the validation rows among them).
    """
    if data.in_dim == 1:
        grid = torch.linspace(float(data.low[0]), float(data.high[0]), 400, dtype=data.x.dtype)
        return grid.unsqueeze(1)
    return data.x[:MAX_FIT_PROBE_ROWS].cpu()


@torch.no_grad()
def regression_figure(
    approximator: nn.Module,
    data: RegressionData,
    val_index: torch.Tensor,
    title: str,
    progress: Sequence[tuple[int, torch.Tensor]] = (),
    history: dict[str, list[float]] | None = None,
) -> Figure:
    """The fitted function against the data, and how the fit got there.

    One input dimension: data points (validation points marked), the fit on a fine grid and the
    noise-free target where known. More dimensions: predicted against observed y on the
    validation split, with the identity line. ``progress`` adds earlier fits, thin and fading
    in, as ``(step, predictions at fit_probe(data))`` pairs; ``history`` (a regression
    result's) adds a second panel: training loss and validation MSE against the step, the
    progress steps marked.
    """
    approximator.eval()
    device = next(approximator.parameters()).device
    figure = new_figure(10.0 if history else 6.0, 4.0)
    axes = figure.add_subplot(1, 2 if history else 1, 1)
    x, y = data.x.cpu(), data.y.cpu()
    probe = fit_probe(data)
    fit = approximator(probe.to(device, x.dtype)).squeeze(-1).cpu()
    colours = [plt_colormap("viridis", len(progress) + 1)(i) for i in range(len(progress))]
    is_val = torch.zeros(len(x), dtype=torch.bool)
    is_val[val_index.cpu()] = True
    if data.in_dim == 1:
        axes.scatter(x[~is_val, 0], y[~is_val], s=6, alpha=0.5, label="train data")
        axes.scatter(x[is_val, 0], y[is_val], s=6, alpha=0.7, label="validation data")
        if data.target is not None:
            axes.plot(probe[:, 0], data.target(probe), "k--", linewidth=1, label="target")
        for (step, earlier), colour in zip(progress, colours, strict=True):
            axes.plot(probe[:, 0], earlier, color=colour, linewidth=1, label=f"step {step}")
        axes.plot(probe[:, 0], fit, "C3", linewidth=2, label="f_θ(x)")
        axes.set_xlabel("x")
        axes.set_ylabel("y")
    else:
        rows = is_val[: len(probe)] if is_val[: len(probe)].any() else slice(None)
        observed = y[: len(probe)][rows]
        for (step, earlier), colour in zip(progress, colours, strict=True):
            axes.scatter(
                observed, earlier[rows], s=4, alpha=0.4, color=colour, label=f"step {step}"
            )
        axes.scatter(observed, fit[rows], s=6, alpha=0.6, color="C3", label="f_θ(x)")
        low, high = float(observed.min()), float(observed.max())
        axes.plot([low, high], [low, high], "k--", linewidth=1)
        axes.set_xlabel("observed y")
        axes.set_ylabel("predicted f_θ(x)")
    axes.legend(loc="best", fontsize="x-small")
    axes.set_title(title, fontsize="medium")
    if history:
        _learning_curve(figure.add_subplot(1, 2, 2), history, progress, colours)
    figure.tight_layout()
    return figure


def _learning_curve(
    axes: Any,
    history: dict[str, list[float]],
    progress: Sequence[tuple[int, torch.Tensor]],
    colours: Sequence[Any],
) -> None:
    steps = history.get("step", [])
    for key, label in (("train_loss", "training loss"), ("val_mse", "validation MSE")):
        if len(history.get(key, [])) == len(steps):
            axes.plot(steps, history[key], linewidth=1, label=label)
    for (step, _), colour in zip(progress, colours, strict=True):
        axes.axvline(step, color=colour, linewidth=1, linestyle=":")
    scored = [
        (v, s) for v, s in zip(history.get("val_mse", []), steps, strict=False) if math.isfinite(v)
    ]
    if scored:  # the weights kept: those of the lowest validation MSE
        axes.axvline(min(scored)[1], color="C3", linewidth=1, linestyle="--", label="best")
    axes.set_yscale("log")
    axes.set_xlabel("step")
    axes.set_title("training", fontsize="medium")
    axes.legend(loc="best", fontsize="x-small")


def value_heatmap(
    values: torch.Tensor,
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    x_label: str,
    y_label: str,
    title: str,
    colorbar_label: str = "U(s)",
    num_levels: int | None = None,
    level_names: Sequence[str] | None = None,
) -> Figure:
    """A heat map of a function on a 2-D grid, with labelled axes and a colour bar.

    Args:
        values: ``(num_x, num_y)`` values, ``values[i, j]`` at the i-th x and j-th y.
        x_range: ``(low, high)`` of the horizontal axis.
        y_range: ``(low, high)`` of the vertical axis.
        x_label: name of the horizontal state variable.
        y_label: name of the vertical state variable.
        title: the figure title (say which iteration or step).
        colorbar_label: what the colours mean.
        num_levels: for integer-valued maps (greedy actions), the number of discrete colours:
            up to 10 distinct ones (``tab10``), more as an ordered scale (``viridis``, for
            discretised continuous actions).
        level_names: a name per level for the colour bar's ticks (``"push left"``, …);
            ``None`` numbers them. Beyond :data:`MAX_LEVEL_TICKS` levels about that many
            evenly spaced ones are labelled.

    Raises:
        ValueError: for ``level_names`` without ``num_levels`` names.
    """
    if level_names is not None and (num_levels is None or len(level_names) != num_levels):
        raise ValueError(
            f"level_names must name each of the {num_levels} levels, got {list(level_names)}"
        )
    figure = new_figure(6.0, 4.5)
    axes = figure.add_subplot()
    discrete = num_levels is not None
    cmap = "viridis"
    if num_levels is not None:
        cmap = plt_colormap("tab10" if num_levels <= 10 else "viridis", num_levels)
    image = axes.imshow(
        values.detach().cpu().double().T.numpy(),
        origin="lower",
        aspect="auto",
        extent=(x_range[0], x_range[1], y_range[0], y_range[1]),
        cmap=cmap,
        vmin=-0.5 if discrete else None,
        vmax=num_levels - 0.5 if discrete else None,
        interpolation="nearest",
    )
    colorbar = figure.colorbar(image, ax=axes, label=colorbar_label)
    if num_levels is not None:
        ticks = level_ticks(num_levels)
        names = level_names or [str(level) for level in range(num_levels)]
        colorbar.set_ticks(ticks, labels=[names[level] for level in ticks])
    axes.set_xlabel(x_label)
    axes.set_ylabel(y_label)
    axes.set_title(title)
    figure.tight_layout()
    return figure


#: most colour-bar ticks a greedy-action map labels (beyond, evenly spaced ones)
MAX_LEVEL_TICKS = 12


def level_ticks(num_levels: int) -> list[int]:
    """The levels whose names a colour bar shows: all, or about 10 evenly spaced ones.

    Example:
        >>> level_ticks(3), level_ticks(101)[:3], level_ticks(101)[-1]
        ([0, 1, 2], [0, 10, 20], 100)
    """
    if num_levels <= MAX_LEVEL_TICKS:
        return list(range(num_levels))
    step = math.ceil((num_levels - 1) / 10)
    ticks = list(range(0, num_levels, step))
    if ticks[-1] != num_levels - 1:
        ticks.append(num_levels - 1)
    return ticks


def linear_weights_figure(
    weights: torch.Tensor,
    feature_names: Sequence[str],
    title: str,
    output_names: Sequence[str] | None = None,
    bias: torch.Tensor | None = None,
    note: str | None = None,
    max_labels: int = 60,
    top: int = 30,
) -> Figure:
    """The weights of a linear model per basis function, one panel per output.

    Up to ``max_labels`` features are drawn as bars labelled with the features' names
    (positive blue, negative red), one panel per output. More are ranked by their largest
    ``|weight|`` over the outputs and the ``top`` first drawn as named horizontal bars, the
    outputs side by side (at most :data:`MAX_WEIGHT_PANELS`), so that a basis of thousands
    of functions still shows which ones matter; :func:`grid_weights_figure` draws the weights
    of a grid basis over its grid instead.

    Args:
        weights: ``(num_features, out_dim)``.
        feature_names: ``num_features`` names, in column order.
        title: the figure title (say which iteration or step).
        output_names: one label per output; ``None`` numbers them.
        bias: ``(out_dim,)`` learned constants, printed in each panel.
        note: a line under the plot (what the inputs are).
        max_labels: most features drawn as one bar each.
        top: features drawn when there are more than ``max_labels``.
    """
    weights = weights.detach().cpu().double()
    num_features, out_dim = weights.shape
    names = list(output_names or [f"output {i}" for i in range(out_dim)])
    if num_features > max_labels:
        return _top_weights_figure(weights, list(feature_names), title, names, bias, note, top)
    width = min(max(6.0, 0.24 * num_features + 2.0), 14.0)
    figure = new_figure(width, 1.0 + 1.8 * out_dim + 1.4)
    axes_list = figure.subplots(out_dim, 1, sharex=True, squeeze=False)[:, 0]
    index = torch.arange(num_features)
    for output, axes in enumerate(axes_list):
        column = weights[:, output]
        colors = ["C0" if w >= 0 else "C3" for w in column.tolist()]
        axes.bar(index.numpy(), column.numpy(), color=colors, width=0.8)
        axes.axhline(0.0, color="black", linewidth=0.6)
        label = names[output]
        if bias is not None:
            label += f"\nbias {float(bias[output]):.3g}"
        axes.set_ylabel(label)
        axes.grid(axis="y", alpha=0.3)
    bottom = axes_list[-1]
    bottom.set_xticks(index.numpy(), list(feature_names), rotation=90, fontsize="small")
    bottom.set_xlabel("basis function")
    if note:
        bottom.set_xlabel(f"{bottom.get_xlabel()}\n{note}")
    axes_list[0].set_title(title)
    figure.tight_layout()
    return figure


#: most outputs (actions) a weights figure draws side by side; the rest are left out
MAX_WEIGHT_PANELS = 4


def _top_weights_figure(
    weights: torch.Tensor,
    feature_names: list[str],
    title: str,
    output_names: list[str],
    bias: torch.Tensor | None,
    note: str | None,
    top: int,
) -> Figure:
    """The ``top`` features with the largest ``|weight|`` (over outputs), as named bars."""
    num_features, out_dim = weights.shape
    shown = min(out_dim, MAX_WEIGHT_PANELS)
    top = min(top, num_features)
    order = weights[:, :shown].abs().amax(dim=1).argsort(descending=True, stable=True)[:top]
    figure = new_figure(2.6 + 2.8 * shown, 1.6 + 0.2 * top + (0.3 if note else 0.0))
    figure.set_layout_engine("constrained")
    axes_list = figure.subplots(1, shown, sharey=True, squeeze=False)[0]
    rows = torch.arange(top).numpy()
    for output, axes in enumerate(axes_list):
        column = weights[order, output]
        colors = ["C0" if w >= 0 else "C3" for w in column.tolist()]
        axes.barh(rows, column.numpy(), color=colors, height=0.8)
        axes.axvline(0.0, color="black", linewidth=0.6)
        label = output_names[output]
        if bias is not None:
            label += f" (bias {float(bias[output]):.3g})"
        axes.set_title(label, fontsize="medium")
        axes.grid(axis="x", alpha=0.3)
        axes.set_xlabel("weight")
    first = axes_list[0]
    first.set_yticks(rows, [feature_names[int(i)] for i in order], fontsize="small")
    first.invert_yaxis()  # the largest on top
    left_out = f"; outputs {shown + 1}-{out_dim} not drawn" if out_dim > shown else ""
    figure.suptitle(
        f"{title}\nthe {top} largest |weights| of {num_features} basis functions{left_out}",
        fontsize="medium",
    )
    if note:
        figure.supxlabel(note, fontsize="small")
    return figure


def grid_weights_figure(
    weights: torch.Tensor,
    grid_axes: Sequence[torch.Tensor],
    axis_names: Sequence[str],
    title: str,
    output_names: Sequence[str] | None = None,
    bias: torch.Tensor | None = None,
) -> Figure:
    """The weights of a basis on a 1-D or 2-D grid, drawn over the grid.

    Multilinear interpolation's weights are the function's values at the vertices, so the
    picture is the fitted function itself; RBF weights sit on their centres. In 1-D, a curve
    per output; in 2-D, a heat map per output (at most :data:`MAX_WEIGHT_PANELS`, on one
    colour scale).

    Args:
        weights: ``(num_features, out_dim)``, features in grid order (row-major, the last
            axis fastest).
        grid_axes: the grid's coordinates along each axis (one or two 1-D tensors, their
            lengths multiplying to ``num_features``).
        axis_names: a name per axis.
        title: the figure title (say which iteration or step).
        output_names: one label per output; ``None`` numbers them.
        bias: ``(out_dim,)`` learned constants, noted in the panel titles.

    Raises:
        ValueError: if the grid does not hold ``num_features`` points or has more than two axes.
    """
    weights = weights.detach().cpu().double()
    num_features, out_dim = weights.shape
    points = [torch.as_tensor(axis, dtype=torch.float64).cpu() for axis in grid_axes]
    sizes = [len(axis) for axis in points]
    if len(points) not in (1, 2) or math.prod(sizes) != num_features:
        raise ValueError(
            f"a grid of 1 or 2 axes holding {num_features} points is needed, got sizes {sizes}"
        )
    names = list(output_names or [f"output {i}" for i in range(out_dim)])
    shown = min(out_dim, MAX_WEIGHT_PANELS)
    labels = [
        names[o] + (f" (bias {float(bias[o]):.3g})" if bias is not None else "")
        for o in range(shown)
    ]
    grid_text = f"{sizes[0]} × {sizes[1]} grid" if len(sizes) == 2 else f"grid of {sizes[0]} points"
    left_out = f"; outputs {shown + 1}-{out_dim} not drawn" if out_dim > shown else ""
    heading = f"{title}\nweights on the {grid_text}{left_out}"
    if len(points) == 1:
        figure = new_figure(6.5, 4.0)
        axes = figure.add_subplot()
        marker = "." if sizes[0] <= 60 else None
        for output in range(shown):
            axes.plot(points[0].numpy(), weights[:, output].numpy(), marker=marker,
                      label=labels[output])  # fmt: skip
        axes.set_xlabel(axis_names[0])
        axes.set_ylabel("weight")
        axes.grid(alpha=0.3)
        if shown > 1 or bias is not None:
            axes.legend(loc="best", fontsize="small")
        axes.set_title(heading, fontsize="medium")
        figure.tight_layout()
        return figure
    figure = new_figure(1.2 + 4.2 * shown, 4.4)
    figure.set_layout_engine("constrained")
    axes_list = figure.subplots(1, shown, sharey=True, squeeze=False)[0]
    low, high = float(weights[:, :shown].min()), float(weights[:, :shown].max())
    mesh = None
    for output, axes in enumerate(axes_list):
        grid = weights[:, output].reshape(sizes[0], sizes[1])
        mesh = axes.pcolormesh(
            points[0].numpy(), points[1].numpy(), grid.T.numpy(),
            shading="nearest", cmap="viridis", vmin=low, vmax=high,
        )  # fmt: skip
        axes.set_title(labels[output], fontsize="medium")
        axes.set_xlabel(axis_names[0])
    axes_list[0].set_ylabel(axis_names[1])
    figure.colorbar(mesh, ax=list(axes_list), label="weight")
    figure.suptitle(heading, fontsize="medium")
    return figure


def plt_colormap(name: str, levels: int) -> Any:
    """A matplotlib colormap resampled to ``levels`` colours."""
    from matplotlib import colormaps

    return colormaps[name].resampled(levels)


def lr_range_figure(result: Any, title: str = "learning-rate range test") -> Figure:
    """Loss against learning rate (log axis) of a range test, with the suggested rate marked.

    Args:
        result: an :class:`~rlapprox.algos.lr_finder.LRRangeResult` (anything with
            ``learning_rates``, ``losses`` and ``smoothed`` of length ``T`` and
            ``suggested_lr``); typed loosely because viz does not import algos.
        title: the figure title.

    Returns:
        The figure: raw losses faint, the smoothed loss as a line, a dashed vertical line and a
        dot on the smoothed curve at ``suggested_lr``.
    """
    figure = new_figure()
    axes = figure.add_subplot()
    rates = list(result.learning_rates)
    smoothed = list(result.smoothed)
    axes.plot(rates, list(result.losses), color="C0", alpha=0.3, linewidth=1, label="loss")
    axes.plot(rates, smoothed, color="C0", linewidth=2, label="smoothed loss")
    suggested = float(result.suggested_lr)
    nearest = min(range(len(rates)), key=lambda i: abs(math.log(rates[i] / suggested)))
    axes.axvline(suggested, color="C3", linestyle="--", linewidth=1)
    axes.plot(
        [suggested], [smoothed[nearest]], "o", color="C3", label=f"suggested lr = {suggested:.2g}"
    )
    axes.set_xscale("log")
    finite = [value for value in smoothed if math.isfinite(value)]
    if finite and min(finite) > 0:
        axes.set_yscale("log")
    axes.set_xlabel("learning rate")
    axes.set_ylabel("training loss")
    axes.set_title(title)
    axes.legend(loc="best", fontsize="small")
    figure.tight_layout()
    return figure
