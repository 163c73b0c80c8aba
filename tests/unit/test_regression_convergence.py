"""Regression trains until it stops improving: early stopping, best weights, LR schedules."""

from __future__ import annotations

import functools
import itertools
import math
import time
from pathlib import Path

import pytest
import torch

from rlapprox.algos import RegressionConfig, fit_regression
from rlapprox.algos.regression import TAG_LR
from rlapprox.app.recipes.regression import FitProgress
from rlapprox.approximators import MLP, linear_fourier, linear_poly
from rlapprox.data.regression import RegressionData
from rlapprox.viz.plots import fit_probe, regression_figure


def adam(lr: float = 1e-2):
    return functools.partial(torch.optim.Adam, lr=lr)


def noise_data(num_samples: int = 200, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """y is pure noise: the best fit is its mean, reached fast, then nothing improves."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(num_samples, 1, generator=generator)
    return x, torch.randn(num_samples, generator=generator)


def small_mlp(seed: int = 0, in_dim: int = 1) -> MLP:
    torch.manual_seed(seed)
    return MLP(in_dim, 1, hidden_sizes=(16,), activation="tanh")


class LRSpy:
    def __init__(self) -> None:
        self.lrs: list[tuple[float, int]] = []

    def scalar(self, tag, value, step):
        if tag == TAG_LR:
            self.lrs.append((float(value), step))

    def histograms(self, module, step):
        pass

    def figure(self, tag, figure, step):
        pass


def test_early_stopping_ends_a_plateaued_fit_before_the_maximum():
    x, y = noise_data()
    result = fit_regression(
        linear_poly(1, 1, degree=1), x, y, optimizer_factory=adam(0.05), num_steps=20_000,
        log_every=10, patience=200, lr_schedule="constant",
    )  # fmt: skip
    assert result.stopped_early
    assert 200 <= result.num_steps < 2000
    assert result.history["step"][-1] == result.num_steps
    assert result.metrics["num_steps"] == result.num_steps
    assert result.metrics["best_step"] == result.best_step <= result.num_steps
    assert result.metrics["stopped_early"] is True


def test_patience_zero_runs_every_step():
    x, y = noise_data()
    result = fit_regression(
        linear_poly(1, 1, degree=1), x, y, optimizer_factory=adam(0.05), num_steps=300,
        log_every=10, patience=0,
    )  # fmt: skip
    assert result.num_steps == 300
    assert not result.stopped_early


def test_the_best_weights_are_restored():
    # a constant, too large rate on minibatches: the validation MSE jumps about to the end
    x, y = noise_data(400)
    net = small_mlp()
    result = fit_regression(
        net, x, y, optimizer_factory=adam(0.1), num_steps=400, log_every=10, patience=0,
        lr_schedule="constant", full_batch_below=0, batch_size=16,
    )  # fmt: skip
    val_mse = result.history["val_mse"]
    best = min(val_mse)
    assert val_mse[-1] > best, "the last evaluation should not be the best one here"
    assert result.val_mse == best
    assert result.history["step"][val_mse.index(best)] == result.best_step
    with torch.no_grad():
        again = torch.mean((net(x[result.val_index]).squeeze(-1) - y[result.val_index]) ** 2)
    assert again.item() == pytest.approx(best, rel=1e-6)


def test_without_a_validation_split_the_training_mse_is_watched():
    x, y = noise_data()
    result = fit_regression(
        linear_poly(1, 1, degree=1), x, y, optimizer_factory=adam(0.05), num_steps=20_000,
        log_every=10, patience=200, val_fraction=0.0,
    )  # fmt: skip
    assert math.isnan(result.val_mse)
    assert result.stopped_early
    assert 0 < result.best_step <= result.num_steps


def test_plateau_schedule_cuts_the_rate_when_stuck_and_logs_it():
    x, y = noise_data()
    spy = LRSpy()
    result = fit_regression(
        linear_poly(1, 1, degree=1), x, y, optimizer_factory=adam(0.05), num_steps=1000,
        log_every=10, patience=0, lr_schedule="plateau", lr_factor=0.5, lr_patience=50,
        lr_min_ratio=0.01, logger=spy,
    )  # fmt: skip
    lrs = result.history["lr"]
    assert [lr for lr, _ in spy.lrs] == lrs
    assert [step for _, step in spy.lrs] == result.history["step"]
    assert lrs[0] == pytest.approx(0.05)
    assert all(later <= earlier for earlier, later in itertools.pairwise(lrs))
    cuts = [round(later / earlier, 6) for earlier, later in itertools.pairwise(lrs)]
    cut = [ratio for ratio in cuts if ratio != 1.0]
    assert set(cut[:-1]) == {0.5}  # each cut by lr_factor, the last one down to the floor
    assert lrs[-1] == pytest.approx(0.05 * 0.01)


def test_cosine_schedule_decays_to_the_floor_over_num_steps():
    x, y = noise_data()
    result = fit_regression(
        linear_poly(1, 1, degree=1), x, y, optimizer_factory=adam(0.1), num_steps=1000,
        log_every=10, patience=0, lr_schedule="cosine", lr_min_ratio=0.0,
    )  # fmt: skip
    lrs = result.history["lr"]
    assert lrs[0] == pytest.approx(0.1)
    assert lrs[len(lrs) // 2] == pytest.approx(0.05, abs=2e-3)  # halfway: half the rate
    assert lrs[-1] < 1e-3
    assert all(later <= earlier for earlier, later in itertools.pairwise(lrs))


def test_constant_schedule_keeps_the_rate():
    x, y = noise_data()
    result = fit_regression(
        linear_poly(1, 1, degree=1), x, y, optimizer_factory=adam(0.05), num_steps=500,
        log_every=10, patience=0, lr_schedule="constant",
    )  # fmt: skip
    assert set(result.history["lr"]) == {0.05}


@pytest.mark.parametrize(
    ("full_batch_below", "batch_sizes"), [(161, {160}), (160, {32}), (0, {32})]
)
def test_full_batch_steps_below_the_threshold(full_batch_below, batch_sizes):
    x, y = noise_data(200)  # 160 training rows
    net = small_mlp()
    seen: set[int] = set()
    net.register_forward_hook(
        lambda module, inputs, output: seen.add(len(inputs[0])) if module.training else None
    )
    fit_regression(
        net, x, y, optimizer_factory=adam(), num_steps=20, log_every=10, batch_size=32,
        full_batch_below=full_batch_below,
    )  # fmt: skip
    assert seen == batch_sizes


def test_on_evaluate_sees_every_evaluation():
    x, y = noise_data()
    calls: list[tuple[int, bool]] = []
    fit_regression(
        small_mlp(), x, y, optimizer_factory=adam(), num_steps=100, log_every=25,
        on_evaluate=lambda step, module: calls.append((step, module.training)),
    )  # fmt: skip
    assert calls == [(25, False), (50, False), (75, False), (100, False)]


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("patience", -1, "integer >= 0"),
        ("patience", 1.5, "integer >= 0"),
        ("min_improvement", 1.0, "[0, 1)"),
        ("min_improvement", -0.1, "[0, 1)"),
        ("lr_schedule", "step", "'plateau'"),
        ("lr_factor", 1.0, "(0, 1)"),
        ("lr_factor", 0.0, "(0, 1)"),
        ("lr_patience", 0, "integer >= 1"),
        ("lr_min_ratio", 1.5, "[0, 1]"),
        ("full_batch_below", -1, "integer >= 0"),
        ("log_every", 0, "integer >= 1"),
    ],
)
def test_bad_stopping_and_schedule_values_are_refused_naming_the_field(field, value, words):
    with pytest.raises(ValueError, match=field) as error:
        RegressionConfig(**{field: value})
    assert words in str(error.value)


def test_least_squares_takes_no_steps_and_reports_step_zero():
    x, y = noise_data()
    result = fit_regression(linear_fourier(1, 1, order=4), x, y, solver="least_squares")
    assert (result.num_steps, result.best_step, result.stopped_early) == (0, 0, False)


def test_fit_progress_keeps_doubling_steps_and_shows_a_spread_before_the_best():
    x, y = noise_data()
    data = RegressionData("noise", x, y, torch.zeros(1), torch.ones(1), target=None)
    progress = FitProgress(data, num_shown=3)
    net = small_mlp()
    for step in range(50, 5001, 50):
        progress(step, net)
    assert [step for step, _ in progress.kept] == [50, 100, 200, 400, 800, 1600, 3200]
    assert all(fit.shape == (400,) for _, fit in progress.kept)
    assert [step for step, _ in progress.chosen(best_step=3000)] == [50, 200, 1600]
    assert [step for step, _ in progress.chosen(best_step=150)] == [50, 100]


@pytest.mark.parametrize("in_dim", [1, 2])
def test_the_fit_figure_shows_earlier_fits_and_the_learning_curve(in_dim):
    x = torch.rand(200, in_dim, generator=torch.Generator().manual_seed(0))
    y = torch.sin(2 * math.pi * x[:, 0])  # still improving at the end: the best is late
    data = RegressionData("sine", x, y, torch.zeros(in_dim), torch.ones(in_dim), target=None)
    net = small_mlp(in_dim=in_dim)
    progress = FitProgress(data)
    result = fit_regression(
        net, x, y, optimizer_factory=adam(), num_steps=400, log_every=50, on_evaluate=progress
    )
    shown = progress.chosen(result.best_step)
    figure = regression_figure(
        net, data, result.val_index, "fit", progress=shown, history=result.history
    )
    fit_axes, curve_axes = figure.axes
    labels = fit_axes.get_legend_handles_labels()[1]
    assert [f"step {step}" for step, _ in shown] == [lab for lab in labels if "step" in lab]
    assert len(shown) == 3
    assert curve_axes.get_xlabel() == "step"
    assert len(fit_probe(data)) == (400 if in_dim == 1 else len(x))


def _compose(overrides: list[str]):
    from hydra import compose, initialize_config_dir

    config_dir = Path(__file__).resolve().parents[2] / "configs"
    with initialize_config_dir(version_base="1.3", config_dir=str(config_dir)):
        return compose("train", overrides=overrides)


def test_regression_with_the_mlp_and_adam_takes_its_tuned_values_and_dqn_keeps_its_own():
    cfg = _compose(["algo=regression", "approximator=mlp", "optimizer=adam"])
    assert cfg.approximator.activation == "tanh"
    assert cfg.approximator.normalize_inputs is True
    assert cfg.optimizer.lr == pytest.approx(1e-2)
    mine = _compose(["algo=regression", "approximator.activation=relu", "optimizer.lr=0.003"])
    assert (mine.approximator.activation, mine.optimizer.lr) == ("relu", 0.003)
    for algo in ("fvi", "fqi"):
        other = _compose([f"algo={algo}", "approximator=mlp", "optimizer=adam"])
        assert (other.approximator.activation, other.optimizer.lr) == ("relu", 0.001)


@pytest.mark.slow
def test_the_default_mlp_fits_a_chirp_within_the_acceptance_rule():
    # six periods of a sine crowded near x = 1; least squares on 400 RBFs reaches ~4e-7
    from rlapprox.app.builders import build_algo_config, build_optimizer_factory
    from rlapprox.app.recipes.regression import BUILDER_KEYS, regression_approximator
    from rlapprox.approximators import BoxNormalizer

    generator = torch.Generator().manual_seed(0)
    x = torch.rand(1000, 1, generator=generator)
    y = torch.sin(2 * math.pi * 6 * x[:, 0] ** 4)
    cfg = _compose(["algo=regression", "approximator=mlp", "optimizer=adam"])
    torch.manual_seed(0)
    net = regression_approximator(cfg, BoxNormalizer([0.0], [1.0]))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        start = time.perf_counter()
        result = fit_regression(
            net, x, y, build_algo_config(cfg, RegressionConfig, BUILDER_KEYS),
            optimizer_factory=build_optimizer_factory(cfg.optimizer),
        )  # fmt: skip
        seconds = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    variance = y[result.val_index].var().item()
    assert result.val_mse < 0.01 * variance, f"val MSE {result.val_mse:.3g}, var {variance:.3g}"
    assert seconds < 60
