"""Reusing trained layers and models: sub-models, cuts, and rebuilt graphs (Keras 3).

Everything here works on *functional* models (``keras.Model(inputs, outputs)`` or a built
``Sequential``), whose layer calls form a graph that Keras 3 exposes through public API:
``model.get_layer(name).output`` is a symbolic tensor of that graph, ``keras.Model`` accepts
any of them as inputs or outputs, and ``keras.models.clone_model`` re-runs the graph with a
``clone_function`` (which layer object to use) and a ``call_function`` (how to call it).

- :func:`features_of`: the model from the inputs to named intermediate outputs;
- :func:`split_at`: a head (inputs → cut) and a tail (cut → outputs) with
  ``tail(head(x)) == model(x)``;
- :func:`replace_layer`, :func:`insert_after`: the same graph with one layer swapped or one
  layer added, every other layer *shared* with the original (same weights);
- :func:`clone_with_weights`: an independent copy with equal weights.
"""

from __future__ import annotations

import keras

from kexue._checks import describe


def _check_functional(model, name="model"):
    if not isinstance(model, keras.Model):
        raise TypeError(f"{name} must be a keras.Model, got {describe(model)}.")
    if isinstance(model, keras.Sequential):
        try:
            if model.inputs:
                return
        except (AttributeError, ValueError):
            pass
        raise ValueError(
            f"{name} (Sequential {model.name!r}) is not built, so its layers have no .output to "
            "cut at: start it with keras.Input(shape), or call model.build(input_shape) first."
        )
    try:
        model.inputs  # noqa: B018 - subclassed models have no symbolic graph
        if model.inputs is None:
            raise AttributeError
    except (AttributeError, ValueError) as err:
        raise TypeError(
            f"{name} ({model.name!r}) is not a functional model: a subclassed keras.Model has no "
            "symbolic graph, so its layers have no .output to cut at. Rebuild it with "
            "keras.Model(inputs, outputs)."
        ) from err


def _graph(model):
    """The functional graph of a checked model: itself, or a built Sequential's graph."""
    if isinstance(model, keras.Sequential):
        inputs, outputs = model.inputs, model.outputs
        return keras.Model(inputs[0] if len(inputs) == 1 else inputs,
                           outputs[0] if len(outputs) == 1 else outputs, name=model.name)
    return model


def _layer(model, name, arg="layer_name"):
    if not isinstance(name, str):
        raise TypeError(f"{arg} must be a layer name (a string), got {describe(name)}.")
    names = [layer.name for layer in model.layers]
    if name not in names:
        raise ValueError(f"{arg} must name a layer of model {model.name!r}, got {name!r}: no "
                         f"layer named {name!r}; layers: {names}.")
    return model.get_layer(name)


def _as_list(value):
    return list(value) if isinstance(value, (list, tuple)) else [value]


def features_of(model, layer_names):
    """A model from ``model``'s inputs to the outputs of the named layers (shared weights).

    ``layer_names`` is one name (one output) or a list (a list of outputs).

    Used in: book/keras/reusing-layers-and-models.md
    """
    _check_functional(model)
    model = _graph(model)
    names = _as_list(layer_names)
    if not names:
        raise ValueError("layer_names must name at least one layer, got an empty list.")
    outputs = [_layer(model, n, "layer_names").output for n in names]
    return keras.Model(model.input, outputs if isinstance(layer_names, (list, tuple))
                       else outputs[0], name=f"{model.name}_features")


def split_at(model, start):
    """Cut ``model`` at the outputs of the layer(s) ``start``: ``(head, tail)``.

    ``head`` maps the inputs to the cut tensors, ``tail`` maps the cut tensors to the outputs,
    and ``tail(head(x))`` equals ``model(x)``; both share the original layers. The cut must
    separate the inputs from the outputs: if some path (a residual skip) bypasses it, Keras
    raises a ``ValueError`` saying the output is not connected to the inputs, and the bypassing
    tensor must be added to ``start``.

    Used in: book/keras/reusing-layers-and-models.md
    """
    _check_functional(model)
    model = _graph(model)
    names = _as_list(start)
    if not names:
        raise ValueError("start must name at least one layer, got an empty list.")
    cut = [_layer(model, n, "start").output for n in names]
    cut_arg = cut if isinstance(start, (list, tuple)) else cut[0]
    outputs = model.outputs if len(model.outputs) > 1 else model.outputs[0]
    head = keras.Model(model.input, cut_arg, name=f"{model.name}_head")
    tail = keras.Model(cut_arg, outputs, name=f"{model.name}_tail")
    return head, tail


def replace_layer(model, layer_name, new_layer):
    """``model``'s graph with the layer ``layer_name`` replaced by ``new_layer``.

    Every other layer is the same object as in ``model`` (weights shared, not copied), so
    training the new model also changes the old one; ``new_layer`` must accept the inputs of
    the layer it replaces.

    Used in: book/keras/reusing-layers-and-models.md
    """
    _check_functional(model)
    _layer(model, layer_name)
    if not isinstance(new_layer, keras.layers.Layer):
        raise TypeError(f"new_layer must be a keras Layer, got {describe(new_layer)}.")
    return keras.models.clone_model(
        model, clone_function=lambda layer: new_layer if layer.name == layer_name else layer)


def insert_after(model, layer_name, new_layer):
    """``model``'s graph with ``new_layer`` applied to the output of ``layer_name``.

    Every consumer of that output now reads ``new_layer``'s output instead. All original
    layers are shared with ``model``. Built on ``keras.models.clone_model(call_function=...)``;
    for a built ``Sequential`` the result is the equivalent functional model.

    Used in: book/keras/reusing-layers-and-models.md
    """
    _check_functional(model)
    model = _graph(model)
    _layer(model, layer_name)
    if not isinstance(new_layer, keras.layers.Layer):
        raise TypeError(f"new_layer must be a keras Layer, got {describe(new_layer)}.")

    def call(layer, *args, **kwargs):
        out = layer(*args, **kwargs)
        return new_layer(out) if layer.name == layer_name else out

    return keras.models.clone_model(model, clone_function=lambda layer: layer, call_function=call)


def clone_with_weights(model):
    """An independent copy of ``model``: same architecture, fresh variables, equal values.

    ``keras.models.clone_model`` alone re-initialises the weights; this copies them over.

    Used in: book/keras/reusing-layers-and-models.md
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model, got {describe(model)}.")
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy
