"""Checks for your own feature maps, approximators and models, and small MDPs with exact answers.

The library's tests use these on every class it ships; call them in your tests the same way::

    from rlapprox.testing import check_approximator, check_feature_map, check_model

    def test_my_basis():
        check_feature_map(MyBasis(in_dim=2, order=4))

    def test_my_model():
        check_model(MyModel())

Each check raises :class:`AssertionError` with a message naming the module (or model) and the
failed property; the module checks work on a deep copy, so the module you pass is left as it
was. The tabular MDPs (:class:`TabularMDP`, :func:`chain`, :func:`random_mdp`,
:func:`gridworld`) and :class:`TabularModel` come from :mod:`rlapprox.models.tabular`.
"""

from rlapprox.models.mdp_families import chain, gridworld, random_mdp
from rlapprox.models.tabular import TabularMDP, TabularModel
from rlapprox.testing.approximators import check_approximator, check_feature_map
from rlapprox.testing.models import check_model

__all__ = [
    "TabularMDP",
    "TabularModel",
    "chain",
    "check_approximator",
    "check_feature_map",
    "check_model",
    "gridworld",
    "random_mdp",
]
