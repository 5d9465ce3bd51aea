"""Attribution for sequence classifiers: which input tokens a decision rests on.

A recurrent classifier reads tokens ``x_1..x_n`` into states ``h_1..h_n`` (``h_0`` the initial
state, zeros in Keras) and decides from the last one. The scores here give one number per
token:

- :func:`distance_saliency`: how much reading token ``t`` shortens the distance from the
  state to the final state, ``s_t = ||h_n - h_{t-1}|| - ||h_n - h_t||``, divided by
  ``||h_n - h_0||`` so that the scores of a sequence add up to exactly 1 (they telescope).
  It needs the state sequence only, which :func:`state_sequence` reads out of a trained model
  (any ``SimpleRNN``, ``LSTM``, ``GRU`` or ``RNN(cell)`` layer, through a twin of the layer
  with ``return_sequences=True`` and the same weights);
- :func:`gradient_x_input`: ``<d f / d e_t, e_t>``, the gradient of an output with respect
  to the embedding of token ``t``, dotted with that embedding (TensorFlow or JAX backend);
- :func:`occlusion`: ``f(x) - f(x without token t)``, the change of an output when token
  ``t`` is masked out (with ``mask_zero=True`` this is deleting the token);
- :func:`rank_agreement`: Spearman's rho, Kendall's tau-b or top-k overlap of two scorings;
- :func:`randomized_copy`: the model with the weights of some layers re-initialised, for the
  sanity check that an attribution depends on what the model learned;
- :func:`rank_tokens` and :func:`saliency_html`: a scored sentence as a ranked list and as
  coloured HTML.

The models these functions take are chains: one input, one output, every layer reading the
output of the one before (a ``keras.Sequential`` or an equivalent functional model, such as
:func:`kexue.text.rnn_classifier`). Padding is id 0, masked by the embedding.

Used in: book/sequence/rnn-saliency.md
"""

from __future__ import annotations

import html
import inspect

import numpy as np
from scipy.stats import rankdata

from kexue._checks import (
    ArgumentTypeError,
    as_array,
    as_float_tensor,
    check_bool,
    check_choice,
    check_finite,
    check_instance,
    check_int,
    describe,
)

__all__ = [
    "GRADIENT_BACKENDS", "RANK_METHODS", "distance_saliency", "state_sequence", "gradient_x_input", "occlusion",
    "rank_agreement", "randomized_copy", "rank_tokens", "saliency_html",
]

GRADIENT_BACKENDS = ("tensorflow", "jax")
"""The Keras backends on which :func:`gradient_x_input` can differentiate."""


# ------------------------------------------------------------------------- the model as a chain


def _layer_chain(model, name: str = "model") -> list:
    """The layers of a one-input, one-output chain model, in order (input layer excluded)."""
    import keras

    check_instance(model, name, keras.Model, "a built keras.Model")
    try:
        inputs, outputs = model.inputs, model.outputs
    except (AttributeError, ValueError):
        inputs = outputs = None
    if not model.built or not inputs or not outputs:
        raise ValueError(f"{name} must be a built keras.Model with a defined input, got "
                         f"{model.name!r} (build it on keras.Input first).")
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(f"{name} must have one input and one output, got {len(inputs)} and "
                         f"{len(outputs)}.")
    layers = [la for la in model.layers if not isinstance(la, keras.layers.InputLayer)]
    previous = inputs[0]
    for layer in layers:
        try:
            source = layer.input
        except (AttributeError, ValueError):
            source = None
        if isinstance(source, (list, tuple)) and source:  # a Keras mask rides as a 2nd input
            source = source[0]
        if source is not previous:
            raise ValueError(f"{name} must be a chain of layers, each reading the output of the "
                             f"one before, but layer {layer.name!r} does not; got {model.name!r}.")
        previous = layer.output
    return layers


def _find(layers, name, kind, arg: str, what: str) -> int:
    """Index of the layer called ``name`` (or the first instance of ``kind`` when None)."""
    if name is None:
        for i, layer in enumerate(layers):
            if isinstance(layer, kind):
                return i
        raise ValueError(f"{arg}: the model has no {what}, got layers "
                         f"{[la.name for la in layers]}.")
    if not isinstance(name, str):
        raise ArgumentTypeError(f"{arg} must be a layer name (a string) or None, got "
                                f"{describe(name)}.")
    for i, layer in enumerate(layers):
        if layer.name == name:
            if not isinstance(layer, kind):
                raise ValueError(f"{arg} must name {what}, got layer {name!r} of type "
                                 f"{type(layer).__name__}.")
            return i
    raise ValueError(f"{arg} must name a layer of the model, got {name!r}; layers are "
                     f"{[la.name for la in layers]}.")


def _takes_mask(layer) -> bool:
    return "mask" in inspect.signature(layer.call).parameters


def _forward(layers, x, mask=None):
    """Run ``layers`` in order at inference, passing the Keras mask along explicitly."""
    for layer in layers:
        kwargs = {"mask": mask} if mask is not None and _takes_mask(layer) else {}
        y = layer(x, training=False, **kwargs) if _takes_training(layer) else layer(x, **kwargs)
        mask = layer.compute_mask(x, mask)
        x = y
    return x, mask


def _takes_training(layer) -> bool:
    return "training" in inspect.signature(layer.call).parameters


def _check_ids(ids, layers, name: str = "ids") -> np.ndarray:
    arr = as_array(ids, name)
    if arr.dtype.kind not in "iu":
        raise ArgumentTypeError(f"{name} must be an integer array of token ids, got "
                                f"{describe(ids)}.")
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] == 0 or arr.shape[0] == 0:
        raise ValueError(f"{name} must have shape (batch, T) or (T,) with T >= 1, got shape "
                         f"{arr.shape}.")
    import keras

    emb = next((la for la in layers if isinstance(la, keras.layers.Embedding)), None)
    if emb is not None and (arr.min() < 0 or arr.max() >= emb.input_dim):
        raise ValueError(f"{name} must hold ids in [0, {emb.input_dim}), got values from "
                         f"{arr.min()} to {arr.max()}.")
    return arr.astype("int32")


# ------------------------------------------------------------------------- the distance score


def distance_saliency(states, normalize: bool = True):
    """Score each step by how much it moves the state towards the final state.

    With ``h_0 = 0`` prepended to ``states = (h_1, ..., h_n)``, the distances to the final
    state are ``d_t = ||h_n - h_t||`` (``d_n = 0``) and step ``t`` scores

        ``s_t = d_{t-1} - d_t``,    divided by ``d_0 = ||h_n||`` when ``normalize``.

    The sum telescopes to ``d_0 - d_n = d_0``, so normalised scores add up to exactly 1; a
    step that leaves the state unchanged (a masked token, which a Keras RNN skips) scores
    exactly 0; and ``|s_t| <= ||h_t - h_{t-1}||`` by the triangle inequality. A final state
    of norm 0 gives scores of 0.

    Args:
        states: float ``(T, units)`` or ``(batch, T, units)``, the outputs of an RNN with
            ``return_sequences=True`` (:func:`state_sequence`). In a batch the last step is
            taken as ``h_n``: pad on the left (``padding="pre"``).
        normalize: divide by ``||h_n - h_0||``.

    Returns:
        A backend tensor ``(T,)`` or ``(batch, T)`` of the scores.

    Used in: book/sequence/rnn-saliency.md
    """
    from keras import ops

    if isinstance(states, np.ndarray) and states.dtype.kind == "f":
        states = ops.convert_to_tensor(states, dtype=states.dtype.name)  # keep float64 on JAX
    h = as_float_tensor(states, "states")
    normalize = check_bool(normalize, "normalize")
    rank = len(h.shape)
    if rank not in (2, 3) or h.shape[-2] == 0:
        raise ValueError(f"states must have shape (T, units) or (batch, T, units) with T >= 1, "
                         f"got shape {tuple(h.shape)}.")
    check_finite(h, "states")
    if rank == 2:
        h = h[None]
    path = ops.concatenate([ops.zeros_like(h[:, :1]), h], axis=1)          # h_0 .. h_n
    dist = ops.norm(h[:, -1:] - path, axis=-1)                               # d_0 .. d_n
    scores = dist[:, :-1] - dist[:, 1:]
    if normalize:
        d0 = dist[:, :1]
        safe = ops.where(d0 > 0, d0, ops.ones_like(d0))
        scores = ops.where(d0 > 0, scores / safe, ops.zeros_like(scores))
    return scores[0] if rank == 2 else scores


def _rnn_twin(layer):
    """A copy of the recurrent ``layer`` that returns its whole output sequence."""
    import keras

    config = layer.get_config()
    if config.get("go_backwards") or config.get("stateful"):
        raise ValueError(f"layer {layer.name!r} must read forwards and be stateless (go_backwards "
                         f"and stateful False), got go_backwards={config.get('go_backwards')}, "
                         f"stateful={config.get('stateful')}.")
    config.update(return_sequences=True, return_state=False, name=f"{layer.name}_sequence")
    if isinstance(layer, (keras.layers.SimpleRNN, keras.layers.LSTM, keras.layers.GRU)):
        return type(layer).from_config(config)
    return keras.layers.deserialize({"class_name": type(layer).__name__, "config": config,
                                     "module": type(layer).__module__, "registered_name": None})


def state_sequence(model, ids, layer: str | None = None) -> np.ndarray:
    """The outputs ``h_1..h_T`` of a recurrent layer inside a trained model, at every step.

    The layer itself may return only its last state; a twin with ``return_sequences=True``
    and the same weights is run on the layer's input, with the mask the embedding makes of
    the padding, so masked steps repeat the previous output (zeros before the first real
    token when padding is on the left). For an LSTM these are the outputs ``h_t``, not the
    cell states ``c_t``; the last one equals the layer's own output.

    Args:
        model: a chain model (see the module docstring) holding the recurrent layer.
        ids: int ``(batch, T)`` or ``(T,)`` token ids, 0 = padding.
        layer: the recurrent layer's name (default: the first ``keras.layers.RNN``).

    Returns:
        ``np.ndarray`` ``(batch, T, units)`` (``(T, units)`` for a 1-D ``ids``).

    Used in: book/sequence/rnn-saliency.md
    """
    import keras

    layers = _layer_chain(model)
    single = np.ndim(ids) == 1
    x = _check_ids(ids, layers)
    i = _find(layers, layer, keras.layers.RNN, "layer", "a recurrent layer (keras.layers.RNN)")
    rnn = layers[i]
    inner, mask = _forward(layers[:i], x)
    twin = _rnn_twin(rnn)
    twin.build(inner.shape)
    twin.set_weights(rnn.get_weights())
    out = twin(inner, mask=mask, training=False)
    out = np.asarray(keras.ops.convert_to_numpy(out))
    return out[0] if single else out


# ------------------------------------------------------------------------- reference scores


def _output_index(out_shape, index):
    index = check_int(index, "index", 0)
    width = out_shape[-1] if len(out_shape) > 1 else 1
    if index >= width:
        raise ValueError(f"index must be in [0, {width}) for an output of shape "
                         f"{tuple(out_shape)}, got {index}.")
    return index


def gradient_x_input(model, ids, output: str | None = None, index: int = 0,
                     embedding: str | None = None) -> np.ndarray:
    """Gradient x input on the embeddings: ``gamma_t = <d f / d e_t, e_t>``.

    ``f`` is column ``index`` of the output of layer ``output`` (default: the model's output),
    for example the logit before a sigmoid; ``e_t`` is the embedding of token ``t``. The
    layers after the embedding run with its mask, at inference (dropout off). Padding gets 0.

    Args:
        model: a chain model (see the module docstring) with a ``keras.layers.Embedding``.
        ids: int ``(batch, T)`` or ``(T,)``.
        output: the name of the layer whose output is explained.
        index: the output column.
        embedding: the embedding layer's name (default: the first Embedding).

    Returns:
        ``np.ndarray`` float ``(batch, T)`` (``(T,)`` for a 1-D ``ids``).

    Differentiates with ``tf.GradientTape`` on TensorFlow and ``jax.grad`` on JAX; other
    backends raise ``NotImplementedError``.

    Used in: book/sequence/rnn-saliency.md
    """
    import keras
    from keras import ops

    layers = _layer_chain(model)
    single = np.ndim(ids) == 1
    x = _check_ids(ids, layers)
    e_i = _find(layers, embedding, keras.layers.Embedding, "embedding", "an Embedding layer")
    o_i = len(layers) - 1 if output is None else _find(layers, output, keras.layers.Layer,
                                                       "output", "a layer")
    if o_i <= e_i:
        raise ValueError(f"output must come after the embedding, got {layers[o_i].name!r}.")
    index = _output_index(layers[o_i].output.shape, index)
    backend = keras.backend.backend()
    if backend not in GRADIENT_BACKENDS:
        raise NotImplementedError(
            f"gradient_x_input differentiates with tf.GradientTape or jax.grad; the Keras "
            f"backend is {backend!r}, expected one of {GRADIENT_BACKENDS}.")
    before, emb, after = layers[:e_i], layers[e_i], layers[e_i + 1:o_i + 1]
    h, _ = _forward(before, x)
    e = emb(h)
    mask = emb.compute_mask(h)

    def total(e):
        out, _ = _forward(after, e, mask)
        out = ops.reshape(out, (out.shape[0], -1))
        return ops.sum(out[:, index])

    if backend == "tensorflow":
        import tensorflow as tf

        e = tf.convert_to_tensor(e)
        with tf.GradientTape() as tape:
            tape.watch(e)
            value = total(e)
        grad = tape.gradient(value, e)
    else:
        import jax

        grad = jax.grad(total)(e)
    gamma = ops.sum(grad * e, axis=-1)
    if mask is not None:
        gamma = gamma * ops.cast(mask, gamma.dtype)
    out = np.asarray(ops.convert_to_numpy(gamma), dtype="float64")
    return out[0] if single else out


def occlusion(model, ids, output: str | None = None, index: int = 0, pad_id: int = 0,
              batch_size: int = 512) -> np.ndarray:
    """Change of an output when one token is masked out: ``f(x) - f(x with x_t -> pad)``.

    Every real position of every row gets one variant of the row with that token replaced
    by ``pad_id``; all variants are scored in batches. With an embedding that masks the
    padding (``mask_zero=True``) a Keras RNN skips the masked step, so the variant is the
    sentence with the token deleted. Padding positions get 0.

    Args:
        model: a chain model (see the module docstring).
        ids: int ``(batch, T)`` or ``(T,)``.
        output: the name of the layer whose output is explained (default: the model's).
        index: the output column.
        pad_id: the id that stands for "no token".
        batch_size: variants scored per call.

    Returns:
        ``np.ndarray`` float ``(batch, T)`` (``(T,)`` for a 1-D ``ids``).

    Used in: book/sequence/rnn-saliency.md
    """
    import keras

    layers = _layer_chain(model)
    single = np.ndim(ids) == 1
    x = _check_ids(ids, layers)
    pad_id = check_int(pad_id, "pad_id", 0)
    batch_size = check_int(batch_size, "batch_size", 1)
    o_i = len(layers) - 1 if output is None else _find(layers, output, keras.layers.Layer,
                                                       "output", "a layer")
    index = _output_index(layers[o_i].output.shape, index)

    scorer = keras.Model(model.inputs[0], layers[o_i].output)   # compiled by predict

    def score(batch):
        out = np.asarray(scorer.predict(batch, batch_size=batch_size, verbose=0), dtype="float64")
        return out.reshape(len(out), -1)[:, index]

    rows, cols = np.nonzero(x != pad_id)
    variants = x[rows]
    variants[np.arange(len(rows)), cols] = pad_id
    result = np.zeros(x.shape, dtype="float64")
    if len(rows):
        result[rows, cols] = score(x)[rows] - score(variants)
    return result[0] if single else result


# ------------------------------------------------------------------------- comparing scorings


RANK_METHODS = ("spearman", "kendall", "top_k")
"""The agreements :func:`rank_agreement` computes."""


def rank_agreement(a, b, method: str = "spearman", k: int | None = None) -> float:
    """How far two scorings of the same items rank them alike.

    - ``"spearman"``: Pearson correlation of the average ranks (Spearman's rho);
    - ``"kendall"``: Kendall's tau-b, ``(concordant - discordant)`` pairs over the
      tie-corrected number of pairs;
    - ``"top_k"``: the share of the ``k`` highest-scored items of ``a`` that are also among
      the ``k`` highest of ``b`` (``k`` required; ties broken by position).

    A constant scoring has no ranking: rho and tau are NaN then, as in SciPy.

    Args:
        a, b: float ``(n,)`` with ``n >= 2``, finite.
        method: one of :data:`RANK_METHODS`.
        k: for ``"top_k"``, an integer in ``[1, n]``.

    Returns:
        A float in ``[-1, 1]`` (``[0, 1]`` for ``"top_k"``) or NaN.

    Used in: book/sequence/rnn-saliency.md
    """
    a = as_array(a, "a", "float64")
    b = as_array(b, "b", "float64")
    if a.ndim != 1 or len(a) < 2:
        raise ValueError(f"a must have shape (n,) with n >= 2, got shape {a.shape}.")
    if b.shape != a.shape:
        raise ValueError(f"b must have shape {a.shape} to match a, got shape {b.shape}.")
    check_finite(a, "a")
    check_finite(b, "b")
    check_choice(method, "method", RANK_METHODS)
    if method == "top_k":
        if k is None:
            raise ValueError("k must be given for method='top_k', got None.")
        k = check_int(k, "k", 1, f"an integer in [1, {len(a)}]", len(a))
        top_a = set(np.argsort(-a, kind="stable")[:k].tolist())
        top_b = set(np.argsort(-b, kind="stable")[:k].tolist())
        return len(top_a & top_b) / k
    if k is not None:
        raise ValueError(f"k is only for method='top_k', got k={k!r} with method={method!r}.")
    if method == "spearman":
        ra, rb = rankdata(a) - (len(a) + 1) / 2, rankdata(b) - (len(b) + 1) / 2
        den = np.sqrt((ra ** 2).sum() * (rb ** 2).sum())
        return float((ra * rb).sum() / den) if den > 0 else float("nan")
    da = np.sign(a[:, None] - a[None, :])
    db = np.sign(b[:, None] - b[None, :])
    upper = np.triu_indices(len(a), 1)
    da, db = da[upper], db[upper]
    den = np.sqrt((da != 0).sum() * (db != 0).sum())
    return float((da * db).sum() / den) if den > 0 else float("nan")


def randomized_copy(model, layers=None, seed: int = 0):
    """A copy of ``model`` whose named layers are re-initialised: the sanity check's model.

    An attribution that explains what a model learned must change when the learned weights
    are replaced by fresh random ones. The copy keeps every other layer's trained weights;
    each re-initialised layer draws new weights from its own initialisers (seeded by
    ``seed`` and the layer's position, so the copy is reproducible and the global random
    state is not touched).

    Args:
        model: a built chain model (see the module docstring).
        layers: names of the layers to re-initialise (default: every layer with weights).
        seed: a non-negative integer.

    Returns:
        A new ``keras.Model`` (the original is unchanged).

    Used in: book/sequence/rnn-saliency.md
    """
    import keras

    chain = _layer_chain(model)
    seed = check_int(seed, "seed", 0)
    names = [la.name for la in chain]
    if layers is None:
        chosen = [la.name for la in chain if la.weights]
    else:
        if isinstance(layers, str) or not isinstance(layers, (list, tuple)) or not layers:
            raise ArgumentTypeError(f"layers must be a non-empty list of layer names or None, "
                                    f"got {describe(layers)}.")
        for name in layers:
            if name not in names:
                raise ValueError(f"layers must name layers of the model, got {name!r}; layers "
                                 f"are {names}.")
        chosen = list(layers)
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    for position, layer in enumerate(chain):
        if layer.name not in chosen or not layer.weights:
            continue
        config = layer.get_config()
        for key, value in config.items():
            if key.endswith("_initializer") and isinstance(value, dict):
                inner = dict(value.get("config") or {})
                if "seed" in inner:
                    inner["seed"] = seed * 1000 + position * 10 + len(key)
                    config[key] = {**value, "config": inner}
        fresh = type(layer).from_config(config)
        source = layer.input
        fresh.build((source[0] if isinstance(source, (list, tuple)) else source).shape)
        copy.get_layer(layer.name).set_weights(fresh.get_weights())
    return copy


# ------------------------------------------------------------------------- showing scores


def _check_tokens_scores(tokens, scores):
    if isinstance(tokens, str) or not isinstance(tokens, (list, tuple)) or not all(
            isinstance(t, str) for t in tokens):
        raise ArgumentTypeError(f"tokens must be a list of strings, got {describe(tokens)}.")
    s = as_array(scores, "scores", "float64")
    if s.shape != (len(tokens),):
        raise ValueError(f"scores must have shape ({len(tokens)},) to match tokens, got shape "
                         f"{s.shape}.")
    check_finite(s, "scores")
    return list(tokens), s


def rank_tokens(tokens, scores) -> list[tuple[int, str, float]]:
    """``(position, token, score)`` for every token, highest score first (ties: by position).

    Used in: book/sequence/rnn-saliency.md
    """
    tokens, s = _check_tokens_scores(tokens, scores)
    order = np.argsort(-s, kind="stable")
    return [(int(i), tokens[i], float(s[i])) for i in order]


def saliency_html(tokens, scores, sep: str = " ", scale: float | None = None,
                  label: str | None = None) -> str:
    """A self-contained HTML rendering of a scored sentence: each token on a tinted background.

    Positive scores are tinted red-orange, negative blue, with opacity ``|score| / scale``
    (``scale`` default: the largest ``|score|``). The text keeps the page's own colour and the
    tints are translucent, so the rendering reads in light and dark themes; each token's score
    is in its tooltip. Tokens are HTML-escaped.

    Args:
        tokens: list of strings; scores: float ``(len(tokens),)``.
        sep: put between tokens (``""`` for Chinese).
        scale: the ``|score|`` of full opacity (positive).
        label: an optional caption shown before the sentence (escaped).

    Returns:
        An HTML string (display it with ``IPython.display.HTML``).

    Used in: book/sequence/rnn-saliency.md
    """
    tokens, s = _check_tokens_scores(tokens, scores)
    if not isinstance(sep, str):
        raise ArgumentTypeError(f"sep must be a string, got {describe(sep)}.")
    if label is not None and not isinstance(label, str):
        raise ArgumentTypeError(f"label must be a string or None, got {describe(label)}.")
    if scale is None:
        scale = float(np.abs(s).max()) if len(s) and np.abs(s).max() > 0 else 1.0
    else:
        from kexue._checks import check_positive

        scale = check_positive(scale, "scale")
    spans = []
    for token, v in zip(tokens, s):
        alpha = min(abs(v) / scale, 1.0) * 0.75
        rgb = "230,85,13" if v > 0 else "49,130,189"
        spans.append(
            f'<span title="{v:+.3f}" style="background-color:rgba({rgb},{alpha:.3f});'
            f'border-radius:3px;padding:0 1px">{html.escape(token)}</span>')
    head = (f'<span style="opacity:0.7;font-size:90%;margin-right:0.6em">{html.escape(label)}'
            f'</span>' if label else "")
    return (f'<div style="line-height:1.9;margin:0.3em 0;color:inherit">{head}'
            f'{html.escape(sep).join(spans)}</div>')
