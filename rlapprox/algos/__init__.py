"""Algorithms: loops that train approximators. Each takes its pieces already built."""

from rlapprox.algos.dqn import DQN, DQNConfig, DQNResult
from rlapprox.algos.fqi import FittedQIteration, FQIConfig, FQIResult
from rlapprox.algos.fvi import FittedValueIteration, FVIConfig, FVIResult
from rlapprox.algos.lr_finder import LRRangeResult, lr_range_test
from rlapprox.algos.regression import (
    RegressionConfig,
    RegressionResult,
    fit_regression,
    split_train_val,
)

__all__ = [
    "DQN",
    "DQNConfig",
    "DQNResult",
    "FQIConfig",
    "FQIResult",
    "FVIConfig",
    "FVIResult",
    "FittedQIteration",
    "FittedValueIteration",
    "LRRangeResult",
    "RegressionConfig",
    "RegressionResult",
    "fit_regression",
    "lr_range_test",
    "split_train_val",
]
