"""Matplotlib figures that the loggers record as images."""

from __future__ import annotations

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


@torch.no_grad()
def regression_figure(
    approximator: nn.Module,
    data: RegressionData,
    val_index: torch.Tensor,
    title: str,
) -> Figure:
    """The fitted function against the data.

    One input dimension: data points (validation points marked), the fit on a fine grid and the
    noise-free target where known. More dimensions: predicted against observed y on the
    validation split, with the identity line.
    """
    approximator.eval()
    device = next(approximator.parameters()).device
    figure = new_figure()
    axes = figure.add_subplot()
    x, y = data.x.cpu(), data.y.cpu()
    if data.in_dim == 1:
        grid = torch.linspace(float(data.low[0]), float(data.high[0]), 400, dtype=x.dtype)
        fit = approximator(grid.unsqueeze(1).to(device)).squeeze(-1).cpu()
        is_val = torch.zeros(len(x), dtype=torch.bool)
        is_val[val_index.cpu()] = True
        axes.scatter(x[~is_val, 0], y[~is_val], s=6, alpha=0.5, label="train data")
        axes.scatter(x[is_val, 0], y[is_val], s=6, alpha=0.7, label="validation data")
        if data.target is not None:
            target = data.target(grid.unsqueeze(1))
            axes.plot(grid, target, "k--", linewidth=1, label="target")
        axes.plot(grid, fit, "C3", linewidth=2, label="f_θ(x)")
        axes.set_xlabel("x")
        axes.set_ylabel("y")
        axes.legend(loc="best", fontsize="small")
    else:
        rows = val_index.cpu() if len(val_index) else torch.arange(len(x))
        predicted = approximator(x[rows].to(device)).squeeze(-1).cpu()
        axes.scatter(y[rows], predicted, s=6, alpha=0.6)
        low, high = float(y[rows].min()), float(y[rows].max())
        axes.plot([low, high], [low, high], "k--", linewidth=1)
        axes.set_xlabel("observed y")
        axes.set_ylabel("predicted f_θ(x)")
    axes.set_title(title)
    figure.tight_layout()
    return figure


def value_heatmap(
    values: torch.Tensor,
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    x_label: str,
    y_label: str,
    title: str,
    colorbar_label: str = "U(s)",
    num_levels: int | None = None,
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
        num_levels: for integer-valued maps (greedy actions), the number of discrete colours.
    """
    figure = new_figure(6.0, 4.5)
    axes = figure.add_subplot()
    discrete = num_levels is not None
    image = axes.imshow(
        values.detach().cpu().double().T.numpy(),
        origin="lower",
        aspect="auto",
        extent=(x_range[0], x_range[1], y_range[0], y_range[1]),
        cmap=plt_colormap("tab10", num_levels) if discrete else "viridis",
        vmin=-0.5 if discrete else None,
        vmax=num_levels - 0.5 if discrete else None,
        interpolation="nearest",
    )
    colorbar = figure.colorbar(image, ax=axes, label=colorbar_label)
    if discrete:
        colorbar.set_ticks(range(num_levels))
    axes.set_xlabel(x_label)
    axes.set_ylabel(y_label)
    axes.set_title(title)
    figure.tight_layout()
    return figure


def linear_weights_figure(
    weights: torch.Tensor,
    feature_names: Sequence[str],
    title: str,
    output_names: Sequence[str] | None = None,
    bias: torch.Tensor | None = None,
    note: str | None = None,
    max_labels: int = 48,
) -> Figure:
    """The weights of a linear model per basis function, one panel per output.

    Up to ``max_labels`` features are drawn as bars labelled with the features' names
    (positive blue, negative red); more as a line over the feature index.

    Args:
        weights: ``(num_features, out_dim)``.
        feature_names: ``num_features`` names, in column order.
        title: the figure title (say which iteration or step).
        output_names: one label per output; ``None`` numbers them.
        bias: ``(out_dim,)`` learned constants, printed in each panel.
        note: a line under the plot (what the inputs are).
        max_labels: most features drawn as labelled bars.
    """
    weights = weights.detach().cpu().double()
    num_features, out_dim = weights.shape
    names = output_names or [f"output {i}" for i in range(out_dim)]
    labelled = num_features <= max_labels
    width = min(max(6.0, 0.24 * num_features + 2.0), 14.0) if labelled else 8.0
    figure = new_figure(width, 1.0 + 1.8 * out_dim + (1.4 if labelled else 0.4))
    axes_list = figure.subplots(out_dim, 1, sharex=True, squeeze=False)[:, 0]
    index = torch.arange(num_features)
    for output, axes in enumerate(axes_list):
        column = weights[:, output]
        if labelled:
            colors = ["C0" if w >= 0 else "C3" for w in column.tolist()]
            axes.bar(index.numpy(), column.numpy(), color=colors, width=0.8)
        elif num_features <= 1000:  # stems
            axes.vlines(index.numpy(), 0.0, column.numpy(), color="C0", linewidth=0.8)
            axes.plot(index.numpy(), column.numpy(), ".", color="C0", markersize=3)
        else:
            axes.plot(index.numpy(), column.numpy(), color="C0", linewidth=0.6)
        axes.axhline(0.0, color="black", linewidth=0.6)
        label = names[output]
        if bias is not None:
            label += f"\nbias {float(bias[output]):.3g}"
        axes.set_ylabel(label)
        axes.grid(axis="y", alpha=0.3)
    bottom = axes_list[-1]
    if labelled:
        bottom.set_xticks(index.numpy(), list(feature_names), rotation=90, fontsize="small")
        bottom.set_xlabel("basis function")
    else:
        bottom.set_xlabel(f"basis function index ({num_features} features)")
    if note:
        bottom.set_xlabel(f"{bottom.get_xlabel()}\n{note}")
    axes_list[0].set_title(title)
    figure.tight_layout()
    return figure


def plt_colormap(name: str, levels: int) -> Any:
    """A matplotlib colormap resampled to ``levels`` colours."""
    from matplotlib import colormaps

    return colormaps[name].resampled(levels)
