"""An eligibility trace's support: decay and apply the trace only where it can be nonzero.

Within an episode a trace is nonzero exactly on the features it has touched (decay never
reaches zero), so the decay ``z ← γλ z`` and the step ``w ← w + c z`` need only those entries.
With tile coding an episode touches a few hundred features of millions (8 tilings of 9⁶ tiles
over Acrobot's 6 inputs: 4.25 million per action), and a whole-array pass per step would cost
far more than the step itself. Where the support grows past a fraction of the array, whole-array
passes are faster again (contiguous, vectorised), and the rest of the episode uses them.

The arithmetic on every entry is the same as the whole-array pass's, so both give the same
weights, bit for bit; the entries outside the support are zero and stay so.
"""

from __future__ import annotations

import numpy as np

#: past this fraction of the entries, whole-array passes beat gathering the support (NumPy
#: fancy indexing costs about 10× a contiguous pass per entry)
DENSE_FRACTION = 1 / 8
#: traces this small always take whole-array passes: NumPy's per-call cost (about 1 µs) is
#: most of a pass, and tracking the support adds calls (true online SARSA on MountainCar's
#: 1,944 weights: 31.8k env steps/s whole-array, 25.2k tracking; Intel Xeon)
ALWAYS_DENSE_SIZE = 2**14


class TraceSupport:
    """The flat indices a trace ``z`` (any shape) has touched since the episode began.

    Args:
        z: the trace, C-contiguous; it is updated in place through a flat view.
        weight: the weights ``w`` of the same shape, C-contiguous, updated in place.
    """

    def __init__(self, z: np.ndarray, weight: np.ndarray) -> None:
        if z.shape != weight.shape or not (z.flags.c_contiguous and weight.flags.c_contiguous):
            raise ValueError("the trace and the weights must be C-contiguous, of one shape")
        self.z, self.weight = z, weight
        self.z_flat, self.weight_flat = z.reshape(-1), weight.reshape(-1)  # views
        size = z.size
        self.touched = np.zeros(size, dtype=bool)
        self.indices = np.empty(size, dtype=np.int64)
        self.count = 0
        self.always_dense = size <= ALWAYS_DENSE_SIZE
        self.dense_from = int(size * DENSE_FRACTION)
        #: whether the support is large enough for whole-array passes (until the episode ends)
        self.dense = self.always_dense
        self._values = np.empty(size, dtype=z.dtype)  # gathered z, without allocating
        self._weights = np.empty(size, dtype=weight.dtype)
        self._scaled = np.empty_like(z)  # c z for whole-array passes

    def touch(self, flat: np.ndarray) -> None:
        """Add flat indices (distinct) the trace is about to change."""
        if self.dense:
            return
        new = flat[~self.touched[flat]]
        self.touched[new] = True
        self.indices[self.count : self.count + len(new)] = new
        self.count += len(new)
        self.dense = self.count >= self.dense_from

    def decay(self, factor: float) -> None:
        """``z ← factor · z``."""
        if self.dense:
            self.z *= factor
            return
        support, values = self.indices[: self.count], self._values[: self.count]
        np.take(self.z_flat, support, out=values)
        values *= factor
        self.z_flat[support] = values

    def add_scaled(self, coefficient: float) -> None:
        """``w ← w + coefficient · z``."""
        if self.dense:
            np.multiply(self.z, coefficient, out=self._scaled)
            self.weight += self._scaled
            return
        support = self.indices[: self.count]
        values, weights = self._values[: self.count], self._weights[: self.count]
        np.take(self.z_flat, support, out=values)
        np.take(self.weight_flat, support, out=weights)
        values *= coefficient
        weights += values
        self.weight_flat[support] = weights

    def clear(self) -> None:
        """``z ← 0`` and an empty support, at the start of an episode."""
        if self.dense:
            self.z.fill(0.0)
            self.touched.fill(False)
        else:
            support = self.indices[: self.count]
            self.z_flat[support] = 0.0
            self.touched[support] = False
        self.count = 0
        self.dense = self.always_dense
