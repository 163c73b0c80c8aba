"""Algorithms: loops that train approximators. Each takes its pieces already built."""

from rlapprox.algos.regression import RegressionResult, fit_regression, split_train_val

__all__ = ["RegressionResult", "fit_regression", "split_train_val"]
