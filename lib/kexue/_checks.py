"""Argument checks shared by the library, so that every bad-input error reads the same way.

Every error names the argument, the value it got (or, for an array, its shape and dtype) and
what was expected: ``"{name} must be {what}, got {value}."``. The vocabulary:

- scalars: :func:`check_int`, :func:`check_positive`, :func:`check_real`, :func:`check_bool`,
  :func:`check_choice`, :func:`check_callable`, :func:`check_instance`; NumPy scalars are
  accepted wherever a Python number is, booleans never count as numbers;
- arrays and tensors: :func:`as_tensor` / :func:`as_array` (conversion with a clear error),
  :func:`check_shape` (rank and static shape, with named dimensions bound across arguments so
  that ``mask`` must match the ``(batch, T)`` of ``x``), :func:`check_dtype`;
- values, on concrete inputs only (NumPy arrays, eager tensors): :func:`check_finite`,
  :func:`check_int_range` (e.g. tags in ``[0, K)``), :func:`check_mask` (0/1, prefix);
- the environment: :func:`check_backend` (a tool that works on some Keras backends only).
  :func:`concrete` returns ``None`` for a symbolic tensor or a traced value, so these checks
  cost nothing and break nothing inside a compiled train step or under ``jax.jit``.

A wrong *type* raises :class:`ArgumentTypeError`, which is a ``TypeError`` and also a
``ValueError`` (code that catches ``ValueError`` for any bad argument keeps working); a wrong
value or shape raises ``ValueError``.
"""

from __future__ import annotations

import numbers

import numpy as np


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type: a ``TypeError`` that is also a ``ValueError``."""


# --------------------------------------------------------------------------- describing values


def describe(value) -> str:
    """A short description of ``value`` for an error message.

    Arrays and tensors give their shape and dtype (never their contents); other values their
    ``repr`` (cut to 80 characters), followed by the type where the repr does not show it.
    """
    shape = getattr(value, "shape", None)
    if shape is not None and not isinstance(value, (numbers.Number, np.generic)):
        dtype = getattr(value, "dtype", None)
        dtype = getattr(dtype, "name", dtype)
        return f"{type(value).__name__} of shape {_shape_tuple(shape)} and dtype {dtype}"
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    if value is None or isinstance(value, (bool, str, int, float)):
        return text
    return f"{text} of type {type(value).__name__}"


def _shape_tuple(shape):
    try:
        return tuple(None if d is None else int(d) for d in shape)
    except TypeError:  # a dynamic dimension that is neither None nor an int
        return tuple(shape)


# --------------------------------------------------------------------------- scalars


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def check_int(value, name: str, minimum: int = 1, what: str | None = None,
              maximum: int | None = None) -> int:
    """Return ``int(value)`` for an integer (not a bool) in ``[minimum, maximum]``, else raise.

    NumPy integers are accepted. The message reads ``"{name} must be {what}, got {value!r}."``,
    with ``what`` defaulting to ``"an integer >= {minimum}"``; a value that is not an integer
    at all (an :class:`ArgumentTypeError`) also names its type.
    """
    if what is None:
        what = f"an integer >= {minimum}" if maximum is None else (
            f"an integer in [{minimum}, {maximum}]")
    if not _is_int(value):
        raise ArgumentTypeError(
            f"{name} must be {what}, got {value!r} of type {type(value).__name__}.")
    if value < minimum or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be {what}, got {value!r}.")
    return int(value)


def check_positive(value, name: str) -> float:
    """Return ``float(value)`` for a finite real number (not a bool) ``> 0``, else raise.

    NaN and infinity are rejected too. The message reads
    ``"{name} must be a positive number, got {value!r}."``
    """
    if not _is_real(value):
        raise ArgumentTypeError(
            f"{name} must be a positive number, got {value!r} of type {type(value).__name__}.")
    if not (value > 0 and np.isfinite(value)):
        raise ValueError(f"{name} must be a positive number, got {value!r}.")
    return float(value)


def _interval(low, high, low_open, high_open) -> str:
    left = "(" if low_open or low is None else "["
    right = ")" if high_open or high is None else "]"
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    return f"{left}{lo}, {hi}{right}"


def check_real(value, name: str, low=None, high=None, *, low_open: bool = False,
               high_open: bool = False, allow_none: bool = False, finite: bool = True):
    """Return ``float(value)`` for a real number (not a bool) in the interval, else raise.

    ``low``/``high`` of ``None`` mean no bound; ``*_open`` excludes the bound itself. NaN is
    always rejected, infinities unless ``finite=False``; ``None`` passes through with
    ``allow_none``. NumPy scalars are accepted.
    """
    if value is None and allow_none:
        return None
    what = "a real number"
    if low is not None or high is not None:
        what += f" in {_interval(low, high, low_open, high_open)}"
    if not _is_real(value):
        raise ArgumentTypeError(f"{name} must be {what}, got {describe(value)}.")
    x = float(value)
    bad = np.isnan(x) or (finite and np.isinf(x))
    if low is not None:
        bad = bad or (x <= low if low_open else x < low)
    if high is not None:
        bad = bad or (x >= high if high_open else x > high)
    if bad:
        raise ValueError(f"{name} must be {what}, got {value!r}.")
    return x


def check_bool(value, name: str) -> bool:
    """Return ``bool(value)`` for ``True``/``False`` (or a NumPy bool), else raise.

    Strings such as ``'no'`` and numbers such as ``0`` are refused: they are almost always a
    mistake, and ``bool('no')`` is ``True``.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentTypeError(f"{name} must be True or False, got {describe(value)}.")
    return bool(value)


def check_choice(value, name: str, choices):
    """Return ``value`` if it is one of ``choices``, else raise ``ValueError`` listing them."""
    for choice in choices:
        if type(value) is type(choice) and value == choice:
            return value
    raise ValueError(f"{name} must be one of {tuple(choices)}, got {describe(value)}.")


def check_callable(value, name: str):
    """Return ``value`` if it is callable, else raise :class:`ArgumentTypeError`."""
    if not callable(value):
        raise ArgumentTypeError(f"{name} must be callable, got {describe(value)}.")
    return value


def check_instance(value, name: str, types, what: str):
    """Return ``value`` if it is an instance of ``types``, else raise naming ``what``."""
    if not isinstance(value, types):
        raise ArgumentTypeError(f"{name} must be {what}, got {describe(value)}.")
    return value


# --------------------------------------------------------------------------- arrays and tensors


def _is_symbolic(x) -> bool:
    import keras

    return isinstance(x, keras.KerasTensor)


def as_tensor(x, name: str, dtype=None):
    """``x`` as a backend tensor (``keras.ops.convert_to_tensor``), with a clear error.

    Tensors, symbolic tensors and variables pass through unchanged (cast to ``dtype`` when
    given). ``None``, strings, dicts, sets and ragged lists raise :class:`ArgumentTypeError`
    naming the argument.
    """
    from keras import ops

    if x is None or isinstance(x, (str, bytes, dict, set)):
        raise ArgumentTypeError(f"{name} must be an array or tensor, got {describe(x)}.")
    if _is_symbolic(x) or ops.is_tensor(x):
        return x if dtype is None else ops.cast(x, dtype)
    if hasattr(x, "value") and hasattr(x, "assign"):  # a keras.Variable
        return x if dtype is None else ops.cast(x, dtype)
    arr = as_array(x, name)
    try:
        return ops.convert_to_tensor(arr, dtype=dtype)
    except Exception as err:
        raise ArgumentTypeError(
            f"{name} must be an array or tensor of numbers, got {describe(x)}.") from err


def as_array(x, name: str, dtype=None) -> np.ndarray:
    """``x`` as a NumPy array of numbers (or booleans), with a clear error.

    Refuses ``None``, strings, objects and ragged nested lists (:class:`ArgumentTypeError`).
    With ``dtype`` the array is converted to it (e.g. ``"float64"``).
    """
    if x is None or isinstance(x, (str, bytes, dict, set)):
        raise ArgumentTypeError(f"{name} must be an array of numbers, got {describe(x)}.")
    try:
        arr = np.asarray(x)
    except Exception as err:  # ragged lists, symbolic tensors
        raise ArgumentTypeError(
            f"{name} must be an array of numbers, got {describe(x)}.") from err
    if arr.dtype.kind not in "biuf":
        raise ArgumentTypeError(
            f"{name} must be an array of numbers, got {describe(x)} (dtype {arr.dtype}).")
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    return arr


def _fmt_spec(spec, dims) -> str:
    parts = []
    for d in spec:
        if d is Ellipsis:
            parts.append("...")
        elif isinstance(d, str):
            bound = (dims or {}).get(d)
            parts.append(d if bound is None else f"{d}={bound}")
        elif d is None:
            parts.append("any")
        else:
            parts.append(str(d))
    return "(" + ", ".join(parts) + (",)" if len(parts) == 1 else ")")


def check_shape(x, name: str, spec, dims: dict | None = None) -> tuple:
    """Check the rank and static shape of ``x`` against ``spec``; return the shape.

    ``spec`` is a tuple whose entries are an int (that size exactly), a string (a named
    dimension: the first argument that has it binds its size in ``dims``, and every later
    one must agree), ``None`` (any size) or a trailing ``...`` (any number of further axes).
    Unknown (``None``) static sizes always pass; the check is on static shapes, so it works on
    symbolic tensors. The message reads ``"mask must have shape (batch=2, T=5), got shape
    (2, 4)."``
    """
    try:
        shape = _shape_tuple(x.shape)
    except (TypeError, ValueError):  # a graph tensor of unknown rank: nothing to check
        return None
    spec = tuple(spec)
    open_end = bool(spec) and spec[-1] is Ellipsis
    fixed = spec[:-1] if open_end else spec
    before = dict(dims) if dims is not None else {}
    before.setdefault("__from__", {})
    ok = len(shape) >= len(fixed) if open_end else len(shape) == len(fixed)
    if ok:
        bound = dict(before)
        for want, got in zip(fixed, shape):
            if got is None or want is None:
                continue
            if isinstance(want, str):
                if bound.get(want) is None:
                    bound[want] = got
                elif bound[want] != got:
                    ok = False
                    break
            elif want != got:
                ok = False
                break
    if not ok:
        sources = sorted({before.get("__from__", {}).get(d) for d in fixed if isinstance(d, str)}
                         - {None, name})
        match = f" to match {' and '.join(sources)}" if sources else ""
        raise ValueError(
            f"{name} must have shape {_fmt_spec(spec, before)}{match}, got shape {shape}.")
    if dims is not None:
        origin = dict(dims.get("__from__", {}))
        for k, v in bound.items():
            if k != "__from__" and v is not None and before.get(k) is None:
                origin[k] = name
        dims.update({k: v for k, v in bound.items() if k != "__from__" and v is not None})
        dims["__from__"] = origin
    return shape


_KINDS = {"float": "f", "int": "iu", "bool": "b", "number": "iuf"}


def dtype_kind(x) -> str:
    """The NumPy kind letter of ``x``'s dtype (``"f"``, ``"i"``, ``"u"``, ``"b"``...)."""
    import keras

    dtype = keras.backend.standardize_dtype(x.dtype)
    if dtype == "bfloat16":
        return "f"
    try:
        return np.dtype(dtype).kind
    except TypeError:
        return "O"


def as_float_tensor(x, name: str, min_rank: int = 0):
    """``x`` as a backend tensor of a float dtype with at least ``min_rank`` axes, else a
    clear error naming ``name`` (:func:`as_tensor`, then :func:`check_dtype`)."""
    x = as_tensor(x, name)
    check_dtype(x, name, "float")
    if len(x.shape) < min_rank:
        raise ValueError(f"{name} must have at least {min_rank} axis, got shape {tuple(x.shape)}.")
    return x


def check_dtype(x, name: str, kinds) -> str:
    """Raise :class:`ArgumentTypeError` unless ``x``'s dtype is of one of ``kinds``.

    ``kinds``: a string or tuple of ``"float"``, ``"int"``, ``"bool"``, ``"number"``.
    """
    import keras

    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    kind = dtype_kind(x)
    if not any(kind in _KINDS[k] for k in kinds):
        wanted = " or ".join(kinds)
        raise ArgumentTypeError(
            f"{name} must have a {wanted} dtype, got dtype "
            f"{keras.backend.standardize_dtype(x.dtype)} (shape {_shape_tuple(x.shape)}).")
    return kind


# --------------------------------------------------------------------------- values (concrete only)


def concrete(x) -> np.ndarray | None:
    """``x`` as a NumPy array when its values are known now, else ``None``.

    NumPy arrays, Python numbers and lists, and eager tensors have values; symbolic Keras
    tensors, TensorFlow graph tensors and JAX tracers do not, and value checks skip them.
    """
    if x is None or _is_symbolic(x):
        return None
    if isinstance(x, np.ndarray):
        return x
    try:
        arr = np.asarray(x)
    except Exception:  # graph tensors and tracers cannot be converted
        return None
    return None if arr.dtype == object else arr


def check_finite(x, name: str, allow: str = "") -> None:
    """Raise ``ValueError`` if concrete ``x`` holds NaN or infinities.

    ``allow="-inf"`` lets minus infinity through (a forbidden choice in a score table);
    ``allow="inf"`` both infinities. NaN is never allowed. Skipped on symbolic tensors.
    """
    arr = concrete(x)
    if arr is None or arr.dtype.kind not in "fc" or arr.size == 0:
        return
    bad = np.isnan(arr)
    if allow == "-inf":
        bad |= np.isposinf(arr)
    elif allow != "inf":
        bad |= np.isinf(arr)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        what = "finite values" if allow == "" else "no NaN" + ("" if allow == "inf" else " or +inf")
        raise ValueError(
            f"{name} must hold {what}, got {arr.flat[np.flatnonzero(bad)[0]].item()!r} at index "
            f"{where} ({int(bad.sum())} of {arr.size} values; shape {arr.shape}).")


def check_int_range(x, name: str, low: int, high: int, where=None) -> None:
    """Raise ``ValueError`` unless every value of concrete ``x`` is an integer in ``[low, high)``.

    ``where`` (a boolean array broadcastable to ``x``) restricts the check to those entries
    (e.g. the real positions of a padded batch). Skipped on symbolic tensors.
    """
    arr = concrete(x)
    if arr is None or arr.size == 0:
        return
    if arr.dtype.kind == "b":
        arr = arr.astype(np.int64)
    bad = (arr < low) | (arr >= high)
    if arr.dtype.kind in "fc":
        bad |= ~np.isfinite(arr) | (arr != np.round(arr))
    if where is not None:
        w = concrete(where)
        if w is not None:
            bad &= np.broadcast_to(w.astype(bool), bad.shape)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name} must be integers in [{low}, {high}), got {arr[index].item()!r} at index "
            f"{index} (shape {arr.shape}).")


def check_mask(mask, name: str = "mask", prefix: bool = False, nonempty: bool = False) -> None:
    """Raise ``ValueError`` unless concrete ``mask`` ``(batch, T)`` holds only 0/1.

    ``prefix=True``: every row is ones then zeros (padding on the right, no gaps);
    ``nonempty=True``: every row has at least one real position. Skipped on symbolic tensors.
    """
    m = concrete(mask)
    if m is None or m.size == 0:
        return
    if m.dtype.kind != "b":
        if m.dtype.kind not in "iuf" or not np.isin(m, (0, 1)).all():
            bad = np.argwhere(~np.isin(m, (0, 1))) if m.dtype.kind in "iuf" else [[0]]
            raise ValueError(
                f"{name} must hold only 0/1 or booleans, got a value at index "
                f"{tuple(int(i) for i in bad[0])} that is neither (shape {m.shape}).")
        m = m.astype(bool)
    m = m.reshape(m.shape[0], -1) if m.ndim > 1 else m[None]
    if nonempty and not m[:, 0].all():
        row = int(np.flatnonzero(~m[:, 0])[0])
        raise ValueError(
            f"{name}: every sequence needs at least one real position, but row {row} starts "
            f"with padding (mask[{row}, 0] == 0); {name}[:, 0] must be 1.")
    if prefix and (m[:, 1:] & ~m[:, :-1]).any():
        row = int(np.flatnonzero((m[:, 1:] & ~m[:, :-1]).any(axis=1))[0])
        raise ValueError(
            f"{name} must be a prefix mask (ones, then zeros: padding on the right, no gaps), "
            f"but row {row} is {m[row].astype(int).tolist()}.")


def check_unit_targets(y_true, y_pred, pred_name: str, dims: tuple, what: str):
    """``y_true`` checked against ``y_pred`` and cast to its dtype: targets in [0, 1].

    ``y_true`` must be numeric or boolean, both must have the shape ``dims`` (e.g.
    ``("batch", "classes")``, the same sizes for both), and a concrete ``y_true`` must hold
    finite values in [0, 1] (``what`` names them in the error: "one-hot rows or
    probabilities"). Shared by the losses that take one-hot or multi-hot targets.
    """
    from keras import ops

    y_true = as_tensor(y_true, "y_true")
    check_dtype(y_true, "y_true", ("number", "bool"))
    sizes: dict = {}
    check_shape(y_pred, pred_name, dims, sizes)
    check_shape(y_true, "y_true", dims, sizes)
    y = concrete(y_true)
    if y is not None and y.size and not (np.isfinite(y).all() and (y >= 0).all()
                                         and (y <= 1).all()):
        raise ValueError(f"y_true must hold {what} in [0, 1], got values from "
                         f"{y.min()!r} to {y.max()!r} (shape {y.shape}).")
    return ops.cast(y_true, y_pred.dtype)


def check_backend(what: str, backends: tuple, why: str = "") -> str:
    """The current Keras backend, or ``NotImplementedError`` if ``what`` does not run on it.

    ``backends`` names the backends ``what`` supports (e.g. ``("tensorflow", "jax")``) and
    ``why`` says in a few words what ties it to them ("it differentiates through the model with
    tf.GradientTape or jax.grad"). Shared by the models with a hand-written ``train_step``.
    """
    import keras

    backend = keras.backend.backend()
    if backend not in backends:
        reason = f" ({why})" if why else ""
        raise NotImplementedError(
            f"{what} needs one of the Keras backends {', '.join(map(repr, backends))}{reason}; "
            f"the current backend is {backend!r}.")
    return backend
