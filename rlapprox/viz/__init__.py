"""Pictures: value images over state slices, linear-weight plots, regression fits."""

from rlapprox.viz.images import (
    StateSlice,
    StepCallback,
    chain,
    linear_weights_logger,
    network_q_of_states,
    value_image_logger,
)
from rlapprox.viz.plots import linear_weights_figure, regression_figure, value_heatmap

__all__ = [
    "StateSlice",
    "StepCallback",
    "chain",
    "linear_weights_figure",
    "linear_weights_logger",
    "network_q_of_states",
    "regression_figure",
    "value_heatmap",
    "value_image_logger",
]
