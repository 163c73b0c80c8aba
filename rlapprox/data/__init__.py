"""Data: replay buffers, n-step transitions, transition data sets, regression data sets."""

from rlapprox.data.n_step import NStepAccumulator
from rlapprox.data.prioritized import PrioritizedReplayBuffer, SumTree
from rlapprox.data.regression import DATASET_NAMES, RegressionData, make_regression_data
from rlapprox.data.replay import ReplayBuffer, TransitionBatch, TransitionStorage
from rlapprox.data.transitions import (
    TransitionDataset,
    collect_policy_transitions,
    collect_random_transitions,
    sample_model_transitions,
)

__all__ = [
    "DATASET_NAMES",
    "NStepAccumulator",
    "PrioritizedReplayBuffer",
    "RegressionData",
    "ReplayBuffer",
    "SumTree",
    "TransitionBatch",
    "TransitionDataset",
    "TransitionStorage",
    "collect_policy_transitions",
    "collect_random_transitions",
    "make_regression_data",
    "sample_model_transitions",
]
