"""Optimizers built from configs/optimizer/*.yaml against their update rules written by hand."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from rlapprox.app.builders import build_optimizer
from rlapprox.core.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
OPTIMIZERS = {"sgd": torch.optim.SGD, "rmsprop": torch.optim.RMSprop, "adam": torch.optim.Adam}

# one sample (x, y) per step for the loss l = (θ2 x + θ1 - y)²
SAMPLES = [(0.5, 1.0), (-1.5, 0.25), (2.0, -1.0)]
THETA0 = (0.3, -0.7)  # (θ1, θ2)


def optimizer_config(name: str, *overrides: str):
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)):
        cfg = compose("train", overrides=["algo=regression", f"optimizer={name}", *overrides])
    return cfg.optimizer


def hand_gradient(theta1: float, theta2: float, x: float, y: float) -> tuple[float, float]:
    """(∂l/∂θ1, ∂l/∂θ2) of l = (θ2 x + θ1 - y)²."""
    residual = theta2 * x + theta1 - y
    return 2 * residual, 2 * residual * x


def torch_steps(name: str, num_steps: int, *overrides: str) -> list[tuple[float, float]]:
    """θ after each of ``num_steps`` optimizer steps on SAMPLES, in float64."""
    theta1 = torch.tensor(THETA0[0], dtype=torch.float64, requires_grad=True)
    theta2 = torch.tensor(THETA0[1], dtype=torch.float64, requires_grad=True)
    optimizer = build_optimizer(optimizer_config(name, *overrides), [theta1, theta2])
    trajectory = []
    for x, y in SAMPLES[:num_steps]:
        optimizer.zero_grad()
        loss = (theta2 * x + theta1 - y) ** 2
        loss.backward()
        optimizer.step()
        trajectory.append((theta1.item(), theta2.item()))
    return trajectory


def assert_trajectories_close(actual, expected):
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected, strict=True):
        assert got == pytest.approx(want, rel=1e-12, abs=1e-12)


def test_sgd_with_momentum_two_steps_by_hand():
    lr, momentum = 0.1, 0.9
    cfg = optimizer_config("sgd", "optimizer.lr=0.1")
    assert cfg.momentum == momentum  # the config's own momentum is what we derive with
    theta = list(THETA0)
    buffer = [0.0, 0.0]
    expected = []
    for t, (x, y) in enumerate(SAMPLES[:2]):
        grad = hand_gradient(*theta, x, y)
        # first step: buf = g; afterwards buf = 0.9 buf + g
        buffer = (
            list(grad) if t == 0 else [momentum * b + g for b, g in zip(buffer, grad, strict=True)]
        )
        theta = [p - lr * b for p, b in zip(theta, buffer, strict=True)]
        expected.append(tuple(theta))
    # step 1 written out in full: θ ← θ - lr g
    g1, g2 = hand_gradient(*THETA0, *SAMPLES[0])
    assert expected[0] == pytest.approx((THETA0[0] - lr * g1, THETA0[1] - lr * g2), abs=1e-15)
    assert_trajectories_close(torch_steps("sgd", 2, "optimizer.lr=0.1"), expected)


def test_rmsprop_three_steps_by_hand():
    cfg = optimizer_config("rmsprop", "optimizer.lr=0.01")
    lr, alpha, eps = 0.01, cfg.alpha, cfg.eps
    theta, v = list(THETA0), [0.0, 0.0]
    expected = []
    for x, y in SAMPLES:
        grad = hand_gradient(*theta, x, y)
        v = [alpha * vi + (1 - alpha) * g**2 for vi, g in zip(v, grad, strict=True)]
        theta = [
            p - lr * g / (math.sqrt(vi) + eps) for p, g, vi in zip(theta, grad, v, strict=True)
        ]
        expected.append(tuple(theta))
    assert_trajectories_close(torch_steps("rmsprop", 3, "optimizer.lr=0.01"), expected)


def test_adam_three_steps_by_hand():
    cfg = optimizer_config("adam", "optimizer.lr=0.05")
    lr, (beta1, beta2), eps = 0.05, cfg.betas, cfg.eps
    theta, m, v = list(THETA0), [0.0, 0.0], [0.0, 0.0]
    expected = []
    for t, (x, y) in enumerate(SAMPLES, start=1):
        grad = hand_gradient(*theta, x, y)
        m = [beta1 * mi + (1 - beta1) * g for mi, g in zip(m, grad, strict=True)]
        v = [beta2 * vi + (1 - beta2) * g**2 for vi, g in zip(v, grad, strict=True)]
        m_hat = [mi / (1 - beta1**t) for mi in m]
        v_hat = [vi / (1 - beta2**t) for vi in v]
        theta = [
            p - lr * mh / (math.sqrt(vh) + eps)
            for p, mh, vh in zip(theta, m_hat, v_hat, strict=True)
        ]
        expected.append(tuple(theta))
    assert_trajectories_close(torch_steps("adam", 3, "optimizer.lr=0.05"), expected)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_lr_override_is_respected(name):
    params = [torch.nn.Parameter(torch.zeros(3))]
    optimizer = build_optimizer(optimizer_config(name, "optimizer.lr=0.0123"), params)
    assert type(optimizer) is OPTIMIZERS[name]
    assert optimizer.param_groups[0]["lr"] == 0.0123
    assert optimizer.param_groups[0]["params"] == params


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_negative_lr_raises_config_error(name):
    params = [torch.nn.Parameter(torch.zeros(3))]
    with pytest.raises(ConfigError, match="learning rate") as info:
        build_optimizer(optimizer_config(name, "optimizer.lr=-1"), params)
    assert "-1" in str(info.value)
