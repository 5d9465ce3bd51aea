"""Presentation helpers shared by the chapters: one way to format a results table.

Every results table of the book goes through :func:`table`, so that all of them read the same
way: no pandas index column, no truncated cells, numbers with thousands separators and a sensible
number of digits (never ``548.0`` or ``0.500000``), missing values shown as a dash, and a fixed
HTML id so that two runs of a notebook produce the same page.

Used in: every chapter of the book, and :mod:`kexue.report` (the claims tables).
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Mapping

import numpy as np

__all__ = ["format_number", "table"]

NA = "—"
"""How a missing value (None or NaN) is shown in a table."""

_TABLE_CSS = [
    {"selector": "", "props": [("border-collapse", "collapse"), ("margin", "0.5em 0 1em 0")]},
    {"selector": "th", "props": [("text-align", "left"), ("padding", "0.25em 0.7em"),
                                 ("border-bottom", "1px solid #888"), ("vertical-align", "bottom")]},
    {"selector": "td", "props": [("padding", "0.25em 0.7em"), ("vertical-align", "top"),
                                 ("border-bottom", "1px solid #ddd")]},
    {"selector": "caption", "props": [("caption-side", "top"), ("text-align", "left"),
                                      ("font-weight", "bold"), ("padding-bottom", "0.3em")]},
]


def format_number(value, spec: str | None = None) -> str:
    """Format one number for a table or a sentence.

    ``spec`` is a format specification such as ``"{:.2%}"`` or ``".2%"``; without one,
    integers get thousands separators (``12,345``) and other reals four significant digits
    (``0.5``, ``548``, ``3.142``, ``1.2e-07``). ``None`` and NaN give a dash; booleans read
    ``yes`` / ``no``; strings pass through unchanged.
    """
    if value is None:
        return NA
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    if not isinstance(value, numbers.Number):
        raise TypeError(f"value must be a number, a string, a bool or None, got {value!r} "
                        f"of type {type(value).__name__}.")
    if isinstance(value, numbers.Real) and math.isnan(float(value)):
        return NA
    if spec is not None:
        if not isinstance(spec, str):
            raise TypeError(f"spec must be a format string such as '{{:.2f}}', got {spec!r}.")
        template = spec if "{" in spec else "{:" + spec + "}"
        return template.format(value.item() if isinstance(value, np.generic) else value)
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        x = float(value)
        if math.isinf(x):
            return "∞" if x > 0 else "−∞"
        if x != 0 and (abs(x) >= 1e6 or abs(x) < 1e-3):
            return f"{x:.3g}"
        if abs(x) >= 1000:
            return f"{x:,.0f}"
        return f"{x:.4g}"
    return str(value)


def _formatter(spec) -> Callable:
    if callable(spec):
        return spec
    return lambda v: format_number(v, spec)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", str(text)).strip("-").lower() or "table"


def table(
    frame,
    formats: Mapping[str, str | Callable] | None = None,
    *,
    caption: str | None = None,
    uid: str | None = None,
    wrap: Mapping[str, str] | None = None,
):
    """Return ``frame`` as a formatted, index-free ``pandas`` Styler, ready to display or glue.

    Parameters
    ----------
    frame:
        A ``pandas.DataFrame`` (or a mapping of column name to values). A meaningful index
        (anything but the default ``0..n-1``) becomes the first column, under its name.
    formats:
        Column name to a format specification (``"{:.2%}"``, ``".3f"``) or a callable
        ``value -> str``. Columns not named here are formatted by :func:`format_number`.
    caption:
        An optional caption shown above the table.
    uid:
        The table's HTML id (default: derived from the caption, else ``"table"``), fixed so
        that the page does not change between two runs of the same notebook.
    wrap:
        Column name to a CSS width (``"22em"``) for columns whose long text should wrap.

    Returns a ``pandas.io.formats.style.Styler``; every cell is shown in full.
    """
    import pandas as pd

    if isinstance(frame, Mapping):
        frame = pd.DataFrame(frame)
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"frame must be a pandas DataFrame or a mapping of columns, got "
                        f"{type(frame).__name__}.")
    for name, value in (("caption", caption), ("uid", uid)):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{name} must be a string or None, got {value!r} of type "
                            f"{type(value).__name__}.")
    if formats is not None and not isinstance(formats, Mapping):
        raise TypeError(f"formats must be a mapping of column name to format, got {formats!r}.")
    if wrap is not None and not isinstance(wrap, Mapping):
        raise TypeError(f"wrap must be a mapping of column name to CSS width, got {wrap!r}.")
    formats = dict(formats or {})
    unknown = set(formats) - {str(c) for c in frame.columns} - {str(frame.index.name)}
    if unknown:
        raise ValueError(f"formats names columns that frame does not have: {sorted(unknown)}; "
                         f"columns are {[str(c) for c in frame.columns]}.")
    if not isinstance(frame.index, pd.RangeIndex) or frame.index.name is not None:
        frame = frame.reset_index()
    frame = frame.rename(columns=str)
    shown = pd.DataFrame(
        {c: [_formatter(formats.get(c))(v) for v in frame[c].tolist()] for c in frame.columns},
        index=frame.index,
    )
    styler = shown.style.hide(axis="index").set_uuid(_slug(uid or caption or "table"))
    styler = styler.set_table_styles(_TABLE_CSS)
    if caption:
        styler = styler.set_caption(caption)
    for column, width in (wrap or {}).items():
        if column not in shown.columns:
            raise ValueError(f"wrap names column {column!r}, which the table does not have.")
        styler = styler.set_properties(subset=[column], **{"min-width": width,
                                                           "white-space": "normal"})
    return styler
