"""State slices, value-image and weight-plot callbacks, drawn for real and recorded."""

from __future__ import annotations

import math

import pytest
import torch

from rlapprox.approximators import BoxNormalizer, linear_fourier, linear_sine
from rlapprox.loggers import Tags
from rlapprox.models import make_model
from rlapprox.viz.images import (
    StateSlice,
    chain,
    linear_weights_logger,
    network_q_of_states,
    value_image_logger,
)
from rlapprox.viz.plots import linear_weights_figure

NAMES = ("x", "x_dot", "theta", "theta_dot")
LOW = (-2.4, -3.0, -0.2, -3.5)
HIGH = (2.4, 3.0, 0.2, 3.5)


class RecordingLogger:
    """Keeps (tag, step, figure) and renders each figure, as TensorBoard would."""

    def __init__(self) -> None:
        self.figures: list[tuple[str, int, object]] = []

    def scalar(self, tag, value, step) -> None:
        pass

    def histograms(self, module, step) -> None:
        pass

    def figure(self, tag, figure, step) -> None:
        figure.canvas.draw()
        self.figures.append((tag, step, figure))


def test_slice_defaults_to_first_two_dims_at_box_centre():
    s = StateSlice.through(NAMES, LOW, HIGH)
    assert s.dims == (0, 1)
    assert s.axis_names == ("x", "x_dot")
    assert s.fixed == {"theta": 0.0, "theta_dot": 0.0}
    assert s.describe_fixed() == "theta = 0, theta_dot = 0"
    assert not s.is_whole_space


def test_slice_by_names_indices_and_fixed_values():
    by_name = StateSlice.through(NAMES, LOW, HIGH, dims=["theta", "theta_dot"], at={"x": 1.5})
    assert by_name.dims == (2, 3)
    assert by_name.axis_ranges == ((-0.2, 0.2), (-3.5, 3.5))
    assert by_name.fixed == {"x": 1.5, "x_dot": 0.0}
    by_index = StateSlice.through(NAMES, LOW, HIGH, dims=[3, "2"], at=[0.5, -1.0, 9.0, 9.0])
    assert by_index.dims == (3, 2)
    assert by_index.describe_fixed() == "x = 0.5, x_dot = -1"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dims": ["theta", "nope"]}, "unknown state variable 'nope'"),
        ({"dims": ["theta", "theta"]}, "two different"),
        ({"dims": [0, 7]}, "outside 0..3"),
        ({"at": [0.0, 1.0]}, "all 4 variables"),
        ({"at": {"nope": 1.0}}, "unknown state variable"),
        ({"dims": "theta"}, "a list of two state variables"),
        ({"dims": 3}, "a list of two state variables"),
        ({"dims": [True, 1]}, "a name of .* or an index, got True"),
    ],
)
def test_bad_slices_say_what_is_wrong(kwargs, message):
    with pytest.raises(ValueError, match=message):
        StateSlice.through(NAMES, LOW, HIGH, **kwargs)


def test_slice_rejects_unbounded_and_one_dimensional_boxes():
    with pytest.raises(ValueError, match=r"finite with high > low; \['x_dot'\]"):
        StateSlice.through(NAMES, LOW, (2.4, math.inf, 0.2, 3.5))
    with pytest.raises(ValueError, match="at least two"):
        StateSlice.through(("s",), (0.0,), (1.0,))


def test_grid_varies_the_slice_dims_row_major_and_fixes_the_rest():
    s = StateSlice.through(NAMES, LOW, HIGH, dims=["theta_dot", "theta"], at={"x": 1.0})
    grid = s.grid(3)
    assert grid.shape == (9, 4)
    assert grid.dtype == torch.float64
    torch.testing.assert_close(grid[:, 0], torch.full((9,), 1.0, dtype=torch.float64))
    torch.testing.assert_close(grid[:, 1], torch.zeros(9, dtype=torch.float64))
    # row i * 3 + j: i-th value of the horizontal (theta_dot), j-th of the vertical (theta)
    assert grid[:, 3].tolist() == [-3.5] * 3 + [0.0] * 3 + [3.5] * 3
    assert grid[:, 2].tolist() == pytest.approx([-0.2, 0.0, 0.2] * 3)


def test_value_images_of_a_4d_state_go_to_slice_tags():
    logger = RecordingLogger()
    s = StateSlice.through(NAMES, LOW, HIGH, dims=["theta", "theta_dot"])
    seen = []

    def value(states):
        seen.append(states)
        return states[:, 2] + states[:, 3]

    def q_values(states):
        return torch.stack([states[:, 2], -states[:, 2]], dim=1)

    log = value_image_logger(s, logger, value=value, q_values=q_values, points=11)
    log(7)
    assert [(tag, step) for tag, step, _ in logger.figures] == [
        (Tags.FIGURE_VALUE_SLICE, 7),
        (Tags.FIGURE_ACTION_SLICE, 7),
    ]
    assert seen[0].shape == (121, 4)
    value_figure = logger.figures[0][2]
    axes = value_figure.axes[0]
    assert axes.get_xlabel() == "theta"
    assert axes.get_ylabel() == "theta_dot"
    assert "iteration" not in axes.get_title()
    assert "step 7" in axes.get_title()
    assert "slice at x = 0, x_dot = 0" in axes.get_title()
    assert len(value_figure.axes) == 2  # the colour bar
    image = axes.get_images()[0].get_array()
    # U = theta + theta_dot: imshow's rows are the vertical variable (theta_dot)
    assert float(image[0, 0]) == pytest.approx(-3.7)
    assert float(image[-1, -1]) == pytest.approx(3.7)
    action = logger.figures[1][2].axes[0].get_images()[0].get_array()
    assert float(action[0, 0]) == 1.0  # theta < 0: -theta is larger, action 1
    assert float(action[0, -1]) == 0.0


def test_q_images_of_a_2d_state_draw_max_q_and_greedy_action_on_the_whole_space():
    logger = RecordingLogger()
    s = StateSlice.through(("position", "velocity"), (-1.2, -0.07), (0.6, 0.07))
    log = value_image_logger(
        s, logger, q_values=lambda st: torch.stack([st[:, 0], st[:, 1]], dim=1), points=5,
        subject="on MountainCar-v0", step_name="env step",
    )  # fmt: skip
    log(100)
    tags = [tag for tag, _, _ in logger.figures]
    assert tags == [Tags.FIGURE_VALUE, Tags.FIGURE_ACTION]
    title = logger.figures[0][2].axes[0].get_title()
    assert title == "max_a Q(s, a) on MountainCar-v0, env step 100"


def test_value_image_logger_needs_a_function():
    with pytest.raises(ValueError, match="value, q_values"):
        value_image_logger(StateSlice.through(NAMES, LOW, HIGH), RecordingLogger())


def test_network_q_of_states_observes_and_restores_training_mode():
    model = make_model("Acrobot-v1")
    net = torch.nn.Sequential(torch.nn.Linear(6, 3), torch.nn.Dropout(0.5))
    net.train()
    q_of_states = network_q_of_states(net, model.observe)
    states = model.sample_states(4, torch.Generator().manual_seed(0))
    q = q_of_states(states)
    assert q.shape == (4, 3)
    assert q.dtype == torch.float32
    torch.testing.assert_close(q, q_of_states(states))  # eval mode: dropout off
    assert net.training


def test_weights_logger_names_features_and_outputs():
    logger = RecordingLogger()
    approximator = linear_sine(2, 3, order=2, normalizer=BoxNormalizer([0, 0], [1, 1]))
    with torch.no_grad():
        approximator.linear.weight.copy_(torch.arange(21.0).reshape(3, 7) - 10)
    log = linear_weights_logger(
        approximator, logger, input_names=["position", "velocity"],
        output_names=["left", "none", "right"], subject="on MountainCar-v0",
    )  # fmt: skip
    assert log is not None
    log(4)
    ((tag, step, figure),) = logger.figures
    assert (tag, step) == (Tags.FIGURE_WEIGHTS, 4)
    panels = figure.axes
    assert len(panels) == 3
    assert panels[0].get_title() == "linear weights on MountainCar-v0, step 4"
    assert [p.get_ylabel().splitlines()[0] for p in panels] == ["left", "none", "right"]
    assert panels[0].get_ylabel().splitlines()[1] == "bias 0"
    labels = [t.get_text() for t in panels[-1].get_xticklabels()]
    assert labels == ["sin(1πx0)", "sin(2πx0)", "sin(1πx1)", "sin(2πx1)", "1", "x0", "x1"]
    assert "x0 = position, x1 = velocity" in panels[-1].get_xlabel()
    heights = [bar.get_height() for bar in panels[2].patches]
    assert heights == [4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]


def test_weights_logger_skips_non_linear_approximators():
    assert linear_weights_logger(torch.nn.Linear(2, 1), RecordingLogger()) is None


def test_many_weights_are_drawn_against_the_index():
    figure = linear_weights_figure(
        torch.randn(256, 1, generator=torch.Generator().manual_seed(0)),
        linear_fourier(4, 1, order=3).features.feature_names(),
        "weights",
    )
    figure.canvas.draw()
    assert "basis function index (256 features)" in figure.axes[0].get_xlabel()
    assert not figure.axes[0].patches  # stems, not 256 labelled bars


def test_chain_calls_each_callback_once_per_step():
    calls = []
    combined = chain(None, lambda step: calls.append(("a", step)), lambda s: calls.append(("b", s)))
    assert combined is not None
    combined(5)
    combined(5)  # the end-of-run call after an image at the last iteration
    combined(6)
    assert calls == [("a", 5), ("b", 5), ("a", 6), ("b", 6)]
    assert chain(None, None) is None
