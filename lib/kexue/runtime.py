"""Run-time settings shared by every notebook: the scale knob, seeds, versions.

Every budget knob of a notebook (samples, epochs, widths) comes from :func:`pick`,
which chooses one of three values by the ``KEXUE_SCALE`` environment variable:

``smoke``
    what CI runs: every cell executes in well under a minute of work;
``book``
    the default, what ``make book`` runs: the article's claim, visibly, in about
    three minutes on two CPU cores;
``full``
    the article's own setting, for a reader with a GPU or Colab.

Every chapter also declares, with :func:`work`, how much of its dominant work (training
examples, Monte Carlo samples, ...) it does at each scale, so that :func:`publish_run_time`
can say what ``full`` costs from the time of the run at hand.

Used in: every notebook of the book.
"""

from __future__ import annotations

import os
import platform
import random
import time

import numpy as np

SCALES = ("smoke", "book", "full")
"""The three scales, from cheapest to the article's own setting."""

DEFAULT_SCALE = "book"

_T0 = time.perf_counter()


def scale() -> str:
    """Return the scale selected by ``KEXUE_SCALE`` (default ``"book"``).

    Surrounding whitespace and case are ignored. Any other value raises a
    ``ValueError`` that lists the three valid scales.
    """
    raw = os.environ.get("KEXUE_SCALE", DEFAULT_SCALE)
    value = raw.strip().lower() or DEFAULT_SCALE
    if value not in SCALES:
        raise ValueError(
            f"KEXUE_SCALE={raw!r} is not a valid scale; expected one of "
            f"{', '.join(repr(s) for s in SCALES)}."
        )
    return value


_MISSING = object()


def pick(smoke=_MISSING, book=_MISSING, full=_MISSING):
    """Return the value given for the current :func:`scale`.

    All three values must be given, so that a notebook always states what it does
    at every scale::

        epochs = pick(smoke=1, book=10, full=20)
    """
    values = {"smoke": smoke, "book": book, "full": full}
    missing = [k for k, v in values.items() if v is _MISSING]
    if missing:
        raise TypeError(f"pick() needs a value for every scale; missing: {', '.join(missing)}.")
    return values[scale()]


_WORK: dict | None = None
"""The amounts of work the chapter declared with :func:`work`, by scale (``None``: none yet)."""


def work(smoke=_MISSING, book=_MISSING, full=_MISSING):
    """Declare the chapter's amount of dominant work at each scale; return the current one.

    Like :func:`pick` (all three values are required, the value of the current :func:`scale`
    is returned), but the three values are also recorded for :func:`publish_run_time`, which
    extrapolates this run's time to ``full`` scale by their ratio. The unit is whatever
    dominates the chapter's time, e.g. training examples processed (epochs times examples,
    summed over the runs the chapter trains) or Monte Carlo samples drawn; write each value as
    an expression of the numbers the other ``pick`` calls use, so that they cannot disagree::

        work = runtime.work(smoke=2 * 10_000, book=6 * 60_000, full=20 * 60_000)  # examples

    A chapter whose work does not depend on the scale passes the same value three times.
    Each value must be a positive finite number; anything else raises a ``ValueError`` (a
    ``TypeError`` for a missing value or a non-number) that names the argument. A second
    call replaces the first declaration.

    Used in: every notebook of the book (its parameters cell).
    """
    from kexue._checks import check_positive

    values = {"smoke": smoke, "book": book, "full": full}
    missing = [k for k, v in values.items() if v is _MISSING]
    if missing:
        raise TypeError(f"work() needs a value for every scale; missing: {', '.join(missing)}.")
    checked = {name: check_positive(value, name) for name, value in values.items()}
    current = scale()
    global _WORK
    _WORK = checked
    return values[current]


def seed(n: int = 0) -> None:
    """Seed Python's ``random``, NumPy and Keras (hence the backend) with ``n``.

    Also makes TensorFlow's kernels deterministic where TensorFlow is the backend,
    so that two runs of a notebook give the same numbers.
    """
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
        raise ValueError(f"seed must be a non-negative integer, got {n!r}.")
    n = int(n)
    os.environ["PYTHONHASHSEED"] = str(n)
    random.seed(n)
    np.random.seed(n)
    import keras

    keras.utils.set_random_seed(n)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def versions() -> dict[str, str]:
    """Versions of Python, NumPy, Keras, the Keras backend and ``kexue``."""
    import keras

    from kexue import __version__

    out = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "kexue": __version__,
    }
    if out["backend"] == "tensorflow":
        import tensorflow as tf

        out["tensorflow"] = tf.__version__
    elif out["backend"] == "jax":
        import jax

        out["jax"] = jax.__version__
    return out


def devices() -> list[str]:
    """Short names of the devices the Keras backend can compute on (e.g. ``["CPU"]``)."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return [d.device_type for d in tf.config.list_physical_devices()]
    if backend == "jax":
        import jax

        return [d.platform.upper() for d in jax.devices()]
    if backend == "torch":
        import torch

        return ["CPU"] + (["GPU"] * torch.cuda.device_count())
    return ["CPU"]


def banner() -> str:
    """One line for the first cell of every notebook: scale, versions and devices."""
    v = versions()
    backend = v["backend"]
    backend_version = v.get(backend, "")
    devs = devices()
    counted = ", ".join(f"{devs.count(d)}x{d}" for d in dict.fromkeys(devs))
    return (
        f"scale={scale()} | {backend} {backend_version} | keras {v['keras']} | "
        f"kexue {v['kexue']} | numpy {v['numpy']} | python {v['python']} | devices: {counted}"
    )


GLUED: dict = {}
"""Every value glued in this process, by name (also where myst-nb is not installed)."""


def glue(name: str, value, display: bool = False) -> None:
    """Record ``value`` under ``name`` for the prose of the book (``{glue:text}`name```).

    The same as ``myst_nb.glue``, except that NumPy scalars are turned into Python numbers
    first: myst-nb formats a glued number (``{glue:text}`name:.3f```) from its plain-text
    representation, which for NumPy 2 scalars reads ``np.float64(...)`` and cannot be formatted.

    Outside the book (a chapter's runnable notebook on Colab, where myst-nb is not installed)
    the value is kept in :data:`GLUED` and, with ``display=True``, displayed as usual.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name must be an identifier-like string, got {name!r}.")
    if not isinstance(display, (bool, np.bool_)):
        raise TypeError(f"display must be True or False, got {display!r}.")
    if isinstance(value, np.generic):
        value = value.item()
    GLUED[name] = value
    try:
        from myst_nb import glue as _glue
    except ImportError:
        if display:
            from IPython.display import display as _display

            _display(value)
        return
    _glue(name, value, display=display)


def elapsed() -> float:
    """Seconds since ``kexue.runtime`` was imported (the notebook's own run time)."""
    return time.perf_counter() - _T0


def _times(ratio: float) -> str:
    """``ratio`` as a multiplier for prose: ``"4.6×"``, ``"80×"``, ``"1,200×"``."""
    return f"{ratio:,.0f}×" if ratio >= 10 else f"{ratio:.2g}×"


def publish_run_time() -> None:
    """Glue this run's time, its scale and the estimate for ``full`` scale, and print them.

    Glues ``run_seconds`` (seconds since :mod:`kexue.runtime` was imported, i.e. the page's
    own work after its imports) and ``run_scale``, so that the section states the time of the
    run that built the page, never a number typed by hand. From the amounts of work the page
    declared with :func:`work` it also glues

    - ``full_work_ratio``: work at ``full`` scale divided by the work of this run's scale;
    - ``full_estimate_minutes``: this run's seconds times that ratio, in minutes;
    - ``full_work_text``: the ratio in words for the prose, ``"the same work as this run"``
      when it is 1, else e.g. ``"80× the work of this run"``.

    The estimate is a linear extrapolation from this machine's run on its CPU cores, and on
    the high side rather than a forecast: fixed costs (data loading, building models,
    plotting, the checks) are scaled with the work although they do not grow with it, while
    a part that grows faster than the declared work is underestimated. It holds for the same hardware as the run that built
    the page; on a GPU the training parts usually run many times faster.

    Raises ``RuntimeError`` if the page declared no work with :func:`work`.
    """
    if _WORK is None:
        raise RuntimeError(
            "publish_run_time() needs the chapter's amount of work at each scale: declare it "
            "in the parameters cell with kexue.runtime.work(smoke=..., book=..., full=...).")
    seconds = elapsed()
    current = scale()
    ratio = _WORK["full"] / _WORK[current]
    minutes = seconds * ratio / 60
    text = ("the same work as this run" if ratio == 1
            else f"{_times(ratio)} the work of this run")
    glue("run_seconds", seconds, display=False)
    glue("run_scale", current, display=False)
    glue("full_work_ratio", ratio, display=False)
    glue("full_estimate_minutes", minutes, display=False)
    glue("full_work_text", text, display=False)
    print(f"scale {current}: {seconds:.0f} s of work after the imports")
    print(f"full scale: {text}, about {minutes:,.1f} minutes on the same hardware "
          "(linear extrapolation; a GPU shortens the training parts)")
