"""Exceptions raised by zodc.

Every error a user can cause is a subclass of :class:`ZodcError` *and* of the built-in exception a
scikit-learn user would expect (``ValueError``), so ``except ValueError`` keeps working.
"""


class ZodcError(Exception):
    """Base class of all zodc errors."""


class DataError(ZodcError, ValueError):
    """The input table (or its schema) cannot be used as given; the message names the column."""


class SchemaError(DataError):
    """A schema file is malformed or disagrees with the table."""


class ConfigError(ZodcError, ValueError):
    """A hyperparameter is out of its valid range; the message names it, the constraint and the value."""


class PrivacyBudgetError(ZodcError, ValueError):
    """The requested mechanisms cannot be run within the target (epsilon, delta)."""
