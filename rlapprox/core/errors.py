"""Exceptions that the command line turns into one-line messages."""


class DivergenceError(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint (if any) is kept."""


class ConfigError(ValueError):
    """A config value that cannot work, found before any training starts."""
