"""Generative models: batched torch implementations of environments' transition functions."""

from rlapprox.models.acrobot import AcrobotModel
from rlapprox.models.action_repeat import ActionRepeat
from rlapprox.models.base import GenerativeModel
from rlapprox.models.cartpole import CartPoleModel
from rlapprox.models.lqr import LQRModel
from rlapprox.models.mdp_families import chain, gridworld, random_mdp
from rlapprox.models.mountain_car import MountainCarModel
from rlapprox.models.outcomes import Outcomes, check_outcomes
from rlapprox.models.pendulum import PendulumModel
from rlapprox.models.registry import MODELS, make_model
from rlapprox.models.tabular import TabularMDP, TabularModel


def __getattr__(name: str) -> object:
    # LQREnv lives with the other envs (rlapprox.envs); this alias keeps rlapprox.models.LQREnv
    # working without making the models package import the envs package at import time.
    if name == "LQREnv":
        from rlapprox.envs.lqr import LQREnv

        return LQREnv
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "MODELS",
    "AcrobotModel",
    "ActionRepeat",
    "CartPoleModel",
    "GenerativeModel",
    "LQREnv",
    "LQRModel",
    "MountainCarModel",
    "Outcomes",
    "PendulumModel",
    "TabularMDP",
    "TabularModel",
    "chain",
    "check_outcomes",
    "gridworld",
    "make_model",
    "random_mdp",
]
