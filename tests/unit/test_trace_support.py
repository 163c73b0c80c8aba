"""A trace's support: the same arithmetic as whole-array passes, on the entries that matter."""

from __future__ import annotations

import numpy as np
import pytest

import rlapprox.algos.trace_support as trace_support
from rlapprox.algos.online_learners import LinearLearner
from rlapprox.algos.trace_support import TraceSupport
from rlapprox.approximators import LinearApproximator
from rlapprox.features import TileCoding


def test_support_passes_equal_whole_array_passes_bit_for_bit():
    generator = np.random.default_rng(0)
    rows, cols = 4, 2**13  # 32,768 entries: above the always-dense size
    z, weight = np.zeros((rows, cols)), generator.normal(size=(rows, cols))
    support = TraceSupport(z, weight)
    z_ref, weight_ref = z.copy(), weight.copy()
    assert not support.dense
    for step in range(600):
        if step % 150 == 0:
            support.clear()
            z_ref.fill(0.0)
        row = int(generator.integers(rows))
        # late in each episode, wide touches push the support past the dense fraction
        width = 8 if step % 150 < 100 else 400
        active = generator.choice(cols, size=width, replace=False)
        support.touch(row * cols + active)
        support.decay(0.9)
        z_ref *= 0.9
        z[row, active] += 1.0
        z_ref[row, active] += 1.0
        coefficient = float(generator.normal())
        support.add_scaled(coefficient)
        weight_ref += z_ref * coefficient
        np.testing.assert_array_equal(z, z_ref)
        np.testing.assert_array_equal(weight, weight_ref)
    assert support.dense  # the last episode crossed over


@pytest.mark.parametrize("trace", ["accumulating", "replacing", "dutch"])
def test_a_learner_tracking_its_support_learns_the_same_weights(monkeypatch, trace):
    def run() -> np.ndarray:
        model = LinearApproximator(TileCoding(2, 8, 63), 3, bias=True).double()  # 98,304
        learner = LinearLearner(model, 0.05, 0.9, trace)
        generator = np.random.default_rng(1)
        for _ in range(3):
            learner.begin_episode()
            for _ in range(200):
                x = learner.features(generator.uniform(size=2))
                action = int(generator.integers(3))
                q = learner.value(x, action)
                learner.update(x, action, float(generator.normal()) - q, q, 0.5 * q)
        return model.linear.weight.detach().clone().numpy()

    tracked = run()
    monkeypatch.setattr(trace_support, "ALWAYS_DENSE_SIZE", 10**9)  # whole-array passes
    np.testing.assert_array_equal(tracked, run())
    assert np.abs(tracked).max() > 0.0


def test_support_refuses_arrays_it_cannot_view_flat():
    z = np.zeros((4, 6))
    with pytest.raises(ValueError, match="C-contiguous"):
        TraceSupport(z[:, ::2], np.zeros((4, 3)))
