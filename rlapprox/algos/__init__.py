"""Algorithms: loops that train approximators. Each takes its pieces already built."""

from rlapprox.algos.dqn import DQN, DQNConfig, DQNResult
from rlapprox.algos.dqn_lockstep import LockstepDQN
from rlapprox.algos.dqn_tensors import TensorEnvDQN
from rlapprox.algos.fqi import FittedQIteration, FQIConfig, FQIResult
from rlapprox.algos.fvi import FittedValueIteration, FVIConfig, FVIResult
from rlapprox.algos.lr_finder import LRRangeResult, lr_range_test
from rlapprox.algos.lstd import LSPI, LSPIConfig, LSTDConfig, lstd
from rlapprox.algos.online import OnlineResult
from rlapprox.algos.online_config import SarsaConfig, TDConfig
from rlapprox.algos.regression import (
    RegressionConfig,
    RegressionResult,
    fit_regression,
    split_train_val,
)
from rlapprox.algos.sarsa import SarsaLambda
from rlapprox.algos.td_lambda import TDLambda

__all__ = [
    "DQN",
    "LSPI",
    "DQNConfig",
    "DQNResult",
    "FQIConfig",
    "FQIResult",
    "FVIConfig",
    "FVIResult",
    "FittedQIteration",
    "FittedValueIteration",
    "LRRangeResult",
    "LSPIConfig",
    "LSTDConfig",
    "LockstepDQN",
    "OnlineResult",
    "RegressionConfig",
    "RegressionResult",
    "SarsaConfig",
    "SarsaLambda",
    "TDConfig",
    "TDLambda",
    "TensorEnvDQN",
    "fit_regression",
    "lr_range_test",
    "lstd",
    "split_train_val",
]
