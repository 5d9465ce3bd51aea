"""Argument checks shared by the library, so that every bad-input error reads the same way."""

from __future__ import annotations

import numbers


def check_int(value, name: str, minimum: int = 1, what: str | None = None) -> int:
    """Return ``int(value)`` for an integer (not a bool) ``>= minimum``, else raise.

    The ``ValueError`` reads ``"{name} must be {what}, got {value!r}."``, with ``what``
    defaulting to ``"an integer >= {minimum}"``; a value that is not an integer at all also
    names its type.
    """
    what = what or f"an integer >= {minimum}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be {what}, got {value!r} of type {type(value).__name__}.")
    if value < minimum:
        raise ValueError(f"{name} must be {what}, got {value!r}.")
    return int(value)


def check_positive(value, name: str) -> float:
    """Return ``float(value)`` for a real number (not a bool) ``> 0``, else raise ``ValueError``.

    NaN is rejected too. The message reads ``"{name} must be a positive number, got {value!r}."``
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}.")
    return float(value)
