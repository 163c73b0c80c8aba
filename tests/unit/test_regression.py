from __future__ import annotations

import functools
import math
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from rlapprox.algos.regression import fit_regression, split_train_val
from rlapprox.app.builders import build_optimizer_factory
from rlapprox.approximators import MLP, BoxNormalizer, linear_sine
from rlapprox.core.errors import DivergenceError
from rlapprox.data.regression import make_regression_data
from rlapprox.loggers import Tags

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"


def optimizer_factory_from_config(name: str, lr: float):
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)):
        cfg = compose(
            "train", overrides=["algo=regression", f"optimizer={name}", f"optimizer.lr={lr}"]
        )
    return build_optimizer_factory(cfg.optimizer)


@pytest.fixture(scope="module")
def sine_data():
    return make_regression_data("sine", num_samples=1000, noise_std=0.1, seed=0)


def small_mlp(seed: int = 0) -> MLP:
    torch.manual_seed(seed)
    return MLP(1, 1, hidden_sizes=(16,), activation="tanh")


def adam(lr: float = 1e-2):
    return functools.partial(torch.optim.Adam, lr=lr)


class SpyLogger:
    def __init__(self) -> None:
        self.scalars: list[tuple[str, float, int]] = []
        self.num_histogram_calls = 0
        self.figures: list[str] = []

    def scalar(self, tag, value, step):
        self.scalars.append((tag, float(value), step))

    def histograms(self, module, step):
        self.num_histogram_calls += 1

    def figure(self, tag, figure, step):
        self.figures.append(tag)


def test_mlp_with_adam_from_config_fits_noisy_sine(sine_data):
    # noise variance is 0.01, so val MSE < 0.02 means the fit is close to the target
    torch.manual_seed(0)
    normalizer = BoxNormalizer(sine_data.low, sine_data.high)
    net = MLP(1, 1, hidden_sizes=(64, 64), activation="tanh", normalizer=normalizer)
    result = fit_regression(
        net,
        sine_data.x,
        sine_data.y,
        optimizer_factory=optimizer_factory_from_config("adam", 1e-3),
        num_steps=2000,
        seed=0,
    )
    assert result.num_steps <= 2000
    assert result.val_mse < 0.02
    assert result.val_mse == min(result.history["val_mse"])  # the best weights are kept
    assert result.history["val_mse"][0] > 0.05  # it did have to learn


def test_linear_sine_least_squares_fits_noisy_sine(sine_data):
    normalizer = BoxNormalizer(sine_data.low, sine_data.high)
    model = linear_sine(1, 1, order=8, poly_degree=0, normalizer=normalizer)
    result = fit_regression(model, sine_data.x, sine_data.y, solver="least_squares")
    assert result.val_mse < 0.015
    assert result.num_steps == 0
    assert result.history == {
        "step": [0.0],
        "train_loss": [result.train_mse],
        "val_mse": [result.val_mse],
    }


@pytest.mark.parametrize(
    ("num_steps", "steps"), [(200, [50, 100, 150, 200]), (120, [50, 100, 120])]
)
def test_history_is_recorded_at_each_log_point(sine_data, num_steps, steps):
    result = fit_regression(
        small_mlp(), sine_data.x, sine_data.y, optimizer_factory=adam(), num_steps=num_steps,
        log_every=50,
    )  # fmt: skip
    assert set(result.history) == {"step", "train_loss", "val_mse", "lr"}
    assert result.history["step"] == [float(s) for s in steps]
    assert len(result.history["train_loss"]) == len(result.history["val_mse"]) == len(steps)
    assert len(result.history["lr"]) == len(steps)
    assert all(math.isfinite(v) for v in result.history["train_loss"])
    assert set(result.metrics) == {
        "train_mse", "val_mse", "num_steps", "best_step", "stopped_early", "wall_time_s",
    }  # fmt: skip


def test_huber_loss_trains(sine_data):
    result = fit_regression(
        small_mlp(), sine_data.x, sine_data.y, optimizer_factory=adam(), num_steps=300,
        loss="huber", huber_delta=0.5,
    )  # fmt: skip
    assert math.isfinite(result.val_mse)
    assert result.history["val_mse"][-1] < result.history["val_mse"][0]


def test_split_train_val_sizes_disjoint_and_seeded():
    train, val = split_train_val(100, 0.25, torch.Generator().manual_seed(3))
    assert (len(train), len(val)) == (75, 25)
    assert torch.cat([train, val]).sort().values.tolist() == list(range(100))
    again = split_train_val(100, 0.25, torch.Generator().manual_seed(3))
    torch.testing.assert_close(again[0], train)
    torch.testing.assert_close(again[1], val)
    other = split_train_val(100, 0.25, torch.Generator().manual_seed(4))
    assert not torch.equal(other[1], val)


@pytest.mark.parametrize(
    ("num_samples", "fraction", "num_val"), [(10, 0.0, 0), (10, 0.99, 9), (7, 0.5, 4)]
)
def test_split_train_val_keeps_at_least_one_training_row(num_samples, fraction, num_val):
    train, val = split_train_val(num_samples, fraction, torch.Generator().manual_seed(0))
    assert len(val) == num_val
    assert len(train) == num_samples - num_val >= 1


def test_split_train_val_rejects_fraction_one():
    with pytest.raises(ValueError, match="val_fraction"):
        split_train_val(10, 1.0, torch.Generator().manual_seed(0))


def test_same_seed_gives_identical_result(sine_data):
    def run(seed: int):
        net = small_mlp()
        result = fit_regression(
            net, sine_data.x, sine_data.y, optimizer_factory=adam(), num_steps=100, seed=seed
        )
        return result, net

    (first, net1), (second, net2), (third, _) = run(5), run(5), run(6)
    assert first.history == second.history
    assert first.val_mse == second.val_mse
    torch.testing.assert_close(first.val_index, second.val_index)
    for p1, p2 in zip(net1.parameters(), net2.parameters(), strict=True):
        torch.testing.assert_close(p1, p2, rtol=0, atol=0)
    assert not torch.equal(first.val_index, third.val_index)


def test_huge_sgd_learning_rate_raises_divergence_error(sine_data):
    factory = functools.partial(torch.optim.SGD, lr=1e6)
    with pytest.raises(DivergenceError, match="step"):
        fit_regression(
            small_mlp(), sine_data.x, sine_data.y, optimizer_factory=factory, num_steps=200,
            log_every=10,
        )  # fmt: skip


def test_least_squares_on_mlp_raises(sine_data):
    with pytest.raises(ValueError, match="least_squares"):
        fit_regression(small_mlp(), sine_data.x, sine_data.y, solver="least_squares")


def test_sgd_without_optimizer_factory_raises(sine_data):
    with pytest.raises(ValueError, match="optimizer_factory"):
        fit_regression(small_mlp(), sine_data.x, sine_data.y)


def test_mismatched_lengths_raise(sine_data):
    with pytest.raises(ValueError, match="1000 and 999"):
        fit_regression(small_mlp(), sine_data.x, sine_data.y[:-1], optimizer_factory=adam())


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"solver": "newton"}, "solver"), ({"loss": "l1"}, "loss"), ({"num_steps": 0}, "num_steps")],
)
def test_bad_arguments_raise_naming_them(sine_data, kwargs, name):
    with pytest.raises(ValueError, match=name):
        fit_regression(small_mlp(), sine_data.x, sine_data.y, optimizer_factory=adam(), **kwargs)


def test_logger_receives_train_loss_and_val_mse(sine_data):
    spy = SpyLogger()
    fit_regression(
        small_mlp(), sine_data.x, sine_data.y, optimizer_factory=adam(), num_steps=100,
        log_every=25, logger=spy,
    )  # fmt: skip
    tags = [tag for tag, _, _ in spy.scalars]
    assert tags.count(Tags.TRAIN_LOSS) == 4
    assert tags.count(Tags.VAL_MSE) == 4
    assert sorted({step for _, _, step in spy.scalars}) == [25, 50, 75, 100]
    assert spy.num_histogram_calls == 4  # once per logged chunk of steps


def test_logger_receives_least_squares_figures(sine_data):
    spy = SpyLogger()
    model = linear_sine(1, 1, order=4)
    result = fit_regression(model, sine_data.x, sine_data.y, solver="least_squares", logger=spy)
    assert (Tags.VAL_MSE, pytest.approx(result.val_mse), 0) in spy.scalars
    assert (Tags.TRAIN_LOSS, pytest.approx(result.train_mse), 0) in spy.scalars
