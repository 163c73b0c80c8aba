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
from rlapprox.models.textbook_mdps import (
    chain_walk,
    chain_walk_model,
    policy_values,
    random_walk,
    random_walk_model,
    random_walk_values,
)


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
    "chain_walk",
    "chain_walk_model",
    "check_outcomes",
    "gridworld",
    "make_model",
    "policy_values",
    "random_mdp",
    "random_walk",
    "random_walk_model",
    "random_walk_values",
]
