"""One recipe per algorithm: how its parts are assembled from a config, to train or to load.

A :class:`Recipe` holds two functions. ``train`` builds the algorithm's parts from the run
config and runs it; ``load`` rebuilds the trained approximator from a saved config with the
same builders, so :func:`rlapprox.load_run` needs no per-algorithm branches. Adding an
algorithm means adding one module here (copy :mod:`rlapprox.app.recipes.fvi`), one entry in
:data:`RECIPES`, and one ``configs/algo/<name>.yaml``.
"""

from __future__ import annotations

from rlapprox.app.recipes import dqn, fqi, fvi, lspi, lstd, regression, sarsa, td
from rlapprox.app.recipes.base import Recipe, Trained
from rlapprox.core.errors import ConfigError

#: ``algo.name`` -> its recipe.
RECIPES: dict[str, Recipe] = {
    recipe.name: recipe
    for recipe in (
        regression.RECIPE,
        dqn.RECIPE,
        fvi.RECIPE,
        fqi.RECIPE,
        td.RECIPE,
        sarsa.RECIPE,
        lstd.RECIPE,
        lspi.RECIPE,
    )
}


def recipe_for(name: str) -> Recipe:
    """The recipe of ``algo.name``; a :class:`ConfigError` listing the known ones otherwise."""
    if name not in RECIPES:
        raise ConfigError(f"algo: unknown algorithm {name!r}; choose one of {sorted(RECIPES)}")
    return RECIPES[name]


__all__ = ["RECIPES", "Recipe", "Trained", "recipe_for"]
