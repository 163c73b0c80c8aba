"""State slices, value-image and weight-plot callbacks, drawn for real and recorded."""

from __future__ import annotations

import math

import pytest
import torch
from matplotlib.collections import QuadMesh

from rlapprox.approximators import (
    BoxNormalizer,
    linear_fourier,
    linear_multilinear,
    linear_rbf,
    linear_sine,
)
from rlapprox.loggers import Tags
from rlapprox.models import (
    ActionRepeat,
    GenerativeModel,
    LQRModel,
    TabularMDP,
    TabularModel,
    gridworld,
    make_model,
)
from rlapprox.models import chain as chain_mdp
from rlapprox.models.base import control_name
from rlapprox.viz.images import (
    StateSlice,
    chain,
    linear_weights_logger,
    network_q_of_states,
    value_image_logger,
    weight_grid,
)
from rlapprox.viz.plots import linear_weights_figure, value_heatmap

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


def test_many_weights_show_the_largest_ones_by_name():
    weights = torch.zeros(256, 2, dtype=torch.float64)
    weights[17, 0], weights[200, 1], weights[3, 0] = 5.0, -9.0, 0.5
    names = linear_fourier(4, 1, order=3).features.feature_names()
    figure = linear_weights_figure(weights, names, "weights", output_names=["left", "right"])
    figure.canvas.draw()
    left, right = figure.axes
    assert [p.get_title() for p in figure.axes] == ["left", "right"]
    assert len(left.patches) == len(right.patches) == 30  # not 256 bars
    labels = [t.get_text() for t in left.get_yticklabels()]
    assert labels[:3] == [names[200], names[17], names[3]]  # largest |weight| on top
    assert "the 30 largest |weights| of 256 basis functions" in figure.get_suptitle()


def test_a_large_multilinear_grid_is_drawn_as_an_image_over_the_state():
    logger = RecordingLogger()
    box = BoxNormalizer([-1.2, -0.07], [0.6, 0.07])
    approximator = linear_multilinear(2, 1, points_per_dim=101, normalizer=box)
    vertices = approximator.features.vertices(torch.float64)
    with torch.no_grad():  # w = position + 10 velocity at each vertex
        approximator.linear.weight.copy_((vertices[:, 0] + 10 * vertices[:, 1]).unsqueeze(0))
    log = linear_weights_logger(
        approximator, logger, input_names=["position", "velocity"], output_names=["U(s)"],
        subject="on MountainCar-v0", step_name="iteration",
    )  # fmt: skip
    log(9)
    ((tag, step, figure),) = logger.figures
    assert (tag, step) == (Tags.FIGURE_WEIGHTS, 9)
    panel = figure.axes[0]
    assert not panel.patches  # no bars at all
    (mesh,) = panel.collections
    assert isinstance(mesh, QuadMesh)
    assert mesh.get_array().shape == (101, 101)
    assert (panel.get_xlabel(), panel.get_ylabel()) == ("position", "velocity")
    assert panel.get_xlim() == pytest.approx((-1.209, 0.609))  # in the state's own units
    grid = torch.as_tensor(mesh.get_array())
    # rows are the vertical variable: the corner (position 0.6, velocity 0.07) is the largest
    assert float(grid[-1, -1]) == pytest.approx(1.0 + 10 * 1.0)
    assert float(grid[0, -1]) == pytest.approx(1.0)
    assert "weights on the 101 × 101 grid" in figure.get_suptitle()
    assert "linear weights on MountainCar-v0, iteration 9" in figure.get_suptitle()


def test_grid_weights_of_several_actions_share_one_colour_scale():
    approximator = linear_rbf(2, 3, centers_per_dim=5, normalizer=BoxNormalizer([0, 0], [2, 4]))
    torch.nn.init.normal_(approximator.linear.weight, generator=torch.Generator().manual_seed(0))
    logger = RecordingLogger()
    names = ["push left", "no push", "push right"]
    linear_weights_logger(approximator, logger, output_names=names)(1)
    ((_, _, figure),) = logger.figures
    *panels, colour_bar = figure.axes
    assert colour_bar.get_ylabel() == "weight"
    assert [p.get_title() for p in panels] == [f"{name} (bias 0)" for name in names]
    limits = {p.collections[0].get_clim() for p in panels}
    assert len(limits) == 1  # one colour bar for all three
    assert panels[0].get_xlabel() == "x0"


def test_a_one_dimensional_grid_is_a_curve_and_other_bases_are_not_grids():
    approximator = linear_multilinear(1, 1, points_per_dim=500)
    grid = weight_grid(approximator)
    assert grid is not None
    (axis,), names = grid
    assert names == ["x (in [0, 1])"]  # no normaliser: the unit box
    assert axis.tolist() == pytest.approx(torch.linspace(0, 1, 500).tolist())
    logger = RecordingLogger()
    linear_weights_logger(approximator, logger)(2)
    ((_, _, figure),) = logger.figures
    assert len(figure.axes[0].lines) == 1
    assert not figure.axes[0].patches
    assert weight_grid(linear_multilinear(3, 1, points_per_dim=3)) is None  # 3-D: top bars
    assert weight_grid(linear_rbf(2, 1, centers_per_dim=4, coupling="independent")) is None
    assert weight_grid(linear_fourier(2, 1, order=3)) is None


def test_greedy_action_colour_bar_names_the_actions():
    logger = RecordingLogger()
    s = StateSlice.through(("position", "velocity"), (-1.2, -0.07), (0.6, 0.07))
    model = make_model("MountainCar-v0")
    log = value_image_logger(
        s, logger, q_values=lambda st: torch.stack([-st[:, 1], 0 * st[:, 1], st[:, 1]], dim=1),
        points=5, action_names=model.action_names,
    )  # fmt: skip
    log(1)
    action_figure = logger.figures[1][2]
    colour_bar = action_figure.axes[1]
    labels = [t.get_text() for t in colour_bar.get_yticklabels()]
    assert labels == ["push left", "no push", "push right"]
    assert colour_bar.get_ylabel() == "action"


def test_many_actions_label_about_ten_ticks_on_an_ordered_scale():
    names = [f"{v:.2f}" for v in torch.linspace(-2, 2, 101).tolist()]
    figure = value_heatmap(
        torch.randint(0, 101, (5, 5)), (0.0, 1.0), (0.0, 1.0), "x", "y", "greedy action",
        colorbar_label="action", num_levels=101, level_names=names,
    )  # fmt: skip
    figure.canvas.draw()
    labels = [t.get_text() for t in figure.axes[1].get_yticklabels()]
    assert labels[0] == "-2.00"
    assert labels[-1] == "2.00"
    assert len(labels) == 11
    assert figure.axes[0].get_images()[0].get_cmap().N == 101
    with pytest.raises(ValueError, match="name each of the 101 levels"):
        value_heatmap(
            torch.zeros(2, 2), (0.0, 1.0), (0.0, 1.0), "x", "y", "t",
            num_levels=101, level_names=names[:3],
        )  # fmt: skip


@pytest.mark.parametrize(
    ("model", "names"),
    [
        (make_model("MountainCar-v0"), ("push left", "no push", "push right")),
        (make_model("CartPole-v1"), ("push left", "push right")),
        (make_model("Acrobot-v1"), ("torque \N{MINUS SIGN}1", "torque 0", "torque +1")),
        (make_model("Pendulum-v1"), ("\N{MINUS SIGN}2", "\N{MINUS SIGN}1", "0", "1", "2")),
        (LQRModel.default_1d(num_actions=3, action_bound=1.5), ("\N{MINUS SIGN}1.5", "0", "1.5")),
        (TabularModel(gridworld(2, 2)), ("up", "right", "down", "left")),
        (TabularModel(chain_mdp(3)), ("a0", "a1")),
    ],
)
def test_models_name_their_actions(model, names):
    assert model.action_names == names
    assert len(model.action_names) == model.num_actions


def test_a_model_without_names_numbers_its_actions_and_action_repeat_keeps_them():
    class Walk(GenerativeModel):
        num_actions = 3
        state_low = torch.tensor([-1.0], dtype=torch.float64)
        state_high = torch.tensor([1.0], dtype=torch.float64)

        def step(self, states, actions, generator=None):
            next_states = states + (actions - 1).to(states.dtype).unsqueeze(1)
            return next_states, -next_states[:, 0].abs(), torch.zeros_like(actions, dtype=bool)

    assert Walk().action_names == ("a0", "a1", "a2")
    repeated = ActionRepeat(make_model("MountainCar-v0"), repeat=3, gamma=0.9)
    assert repeated.action_names == ("push left", "no push", "push right")
    assert control_name([-0.5, 0.0]) == "(\N{MINUS SIGN}0.5, 0)"
    # the middle torque of an odd grid is 0, not linspace's rounding (-1.11e-16)
    assert make_model("Pendulum-v1", num_torques=11).action_names[5] == "0"
    with pytest.raises(ValueError, match="action_names must name all 2 actions"):
        TabularModel(TabularMDP(torch.ones(1, 2, 1), torch.zeros(1, 2), action_names=["one"]))


def test_chain_calls_each_callback_once_per_step():
    calls = []
    combined = chain(None, lambda step: calls.append(("a", step)), lambda s: calls.append(("b", s)))
    assert combined is not None
    combined(5)
    combined(5)  # the end-of-run call after an image at the last iteration
    combined(6)
    assert calls == [("a", 5), ("b", 5), ("a", 6), ("b", 6)]
    assert chain(None, None) is None
