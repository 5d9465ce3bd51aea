"""Layers built from other layers or other layers' weights.

- :class:`TwoDense`: a layer made of two ``Dense`` layers (layers within a layer);
- :class:`ClassCenters`: learnable class centres held in an ``Embedding`` (center loss);
- :class:`TiedDense`: an output layer that reuses an ``Embedding``'s matrix, transposed.
"""

from __future__ import annotations

import keras
from keras import ops

from kexue._checks import (
    as_tensor,
    check_bool,
    check_dtype,
    check_int,
    check_int_range,
    check_shape,
    describe,
)


def _activation(value, name):
    """``keras.activations.get(value)``, with an error that names the argument."""
    try:
        return keras.activations.get(value)
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"{name} must be an activation (a name such as 'relu', a callable or None), got "
            f"{describe(value)}.") from err


@keras.saving.register_keras_serializable(package="kexue")
class TwoDense(keras.layers.Layer):
    """``y = g(f(x W1 + b1) W2 + b2)``: two ``Dense`` layers inside one layer.

    Input ``(..., d)``, output ``(..., output_dim)``. The two sub-layers are created in
    ``__init__`` and Keras 3 tracks them: their four weights are this layer's weights, they
    are built by :meth:`build`, and they are saved and restored with the layer. The map acts
    on the last axis only, so a propagated mask passes through unchanged
    (``supports_masking``).

    Used in: book/keras/layers-within-layers-and-masks.md
    """

    def __init__(self, hidden_dim, output_dim, hidden_activation="relu",
                 output_activation=None, **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim = check_int(hidden_dim, "hidden_dim", what="a positive integer")
        self.output_dim = check_int(output_dim, "output_dim", what="a positive integer")
        self.hidden_activation = keras.activations.serialize(
            _activation(hidden_activation, "hidden_activation"))
        self.output_activation = keras.activations.serialize(
            _activation(output_activation, "output_activation"))
        self.hidden = keras.layers.Dense(hidden_dim, activation=hidden_activation,
                                         name="hidden")
        self.out = keras.layers.Dense(output_dim, activation=output_activation, name="out")
        self.supports_masking = True

    def build(self, input_shape):
        if len(input_shape) < 1 or input_shape[-1] is None:
            raise ValueError(f"inputs must have shape (..., d) with a known d, got shape "
                             f"{tuple(input_shape)}.")
        self.hidden.build(input_shape)
        self.out.build((*input_shape[:-1], self.hidden_dim))

    def call(self, inputs):
        return self.out(self.hidden(inputs))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update(hidden_dim=self.hidden_dim, output_dim=self.output_dim,
                      hidden_activation=self.hidden_activation,
                      output_activation=self.output_activation)
        return config


@keras.saving.register_keras_serializable(package="kexue")
class ClassCenters(keras.layers.Layer):
    """Squared distance of each feature vector to the learnable centre of its class.

    ``call([features, labels])`` with ``features`` ``(batch, d)`` and integer ``labels``
    ``(batch,)`` or ``(batch, 1)`` returns ``(batch, 1)``: ``||x - c_y||^2``. The centres are
    the rows of an ``Embedding(num_classes, feature_dim)`` looked up by the label, i.e.
    ``onehot(y) @ C``; the gradient of ``lambda * ||x - c_y||^2`` pulls ``c_y`` towards the
    features of class ``y``. Used as a second model output with an identity loss, this is
    the center loss of Wen et al. (2016).

    Used in: book/keras/custom-losses.md
    """

    def __init__(self, num_classes, feature_dim, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = check_int(num_classes, "num_classes", what="a positive integer")
        self.feature_dim = check_int(feature_dim, "feature_dim", what="a positive integer")
        self.centers = keras.layers.Embedding(num_classes, feature_dim,
                                              embeddings_initializer="zeros", name="centers")

    def build(self, input_shape):
        self.centers.build((None,))

    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError(
                f"inputs must be a list [features, labels] (ClassCenters), got {describe(inputs)}.")
        x, y = inputs
        x = as_tensor(x, "features")
        check_dtype(x, "features", "float")
        dims = {"feature_dim": self.feature_dim}
        check_shape(x, "features", ("batch", "feature_dim"), dims)
        y = as_tensor(y, "labels")
        check_dtype(y, "labels", "number")
        if len(y.shape) == 2 and y.shape[-1] == 1:
            y = ops.squeeze(y, -1)
        if len(y.shape) != 1:
            raise ValueError(f"labels must have shape (batch,) or (batch, 1), got shape "
                             f"{tuple(y.shape)}.")
        check_shape(y, "labels", ("batch",), dims)
        check_int_range(y, "labels", 0, self.num_classes)
        c = self.centers(ops.cast(y, "int32"))
        return ops.sum(ops.square(x - c), axis=-1, keepdims=True)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], 1)

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, feature_dim=self.feature_dim)
        return config


@keras.saving.register_keras_serializable(package="kexue")
class TiedDense(keras.layers.Layer):
    """Logits ``h E^T + b`` that reuse the matrix ``E`` of an ``Embedding`` layer.

    Input ``(..., d)``, output ``(..., V)`` for an ``Embedding(V, d)``. The layer holds a
    reference to the embedding *layer* and reads ``embedding.embeddings`` in ``call``, so
    the two share one variable (the same object, not a copy), whichever is built first; its
    own weight is only the bias ``(V,)``. ``TiedDense(emb, use_bias=False)`` equals Keras 3's
    ``ReversibleEmbedding(..., tie_weights=True)`` called with ``reverse=True``.

    The embedding must be used in the same model (it is saved there); in a saved model the
    tie is restored through the embedding layer's name.

    Used in: book/keras/reusing-layers-and-models.md
    """

    def __init__(self, embedding, activation=None, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        if isinstance(embedding, dict):
            embedding = keras.layers.deserialize(embedding)
        if not isinstance(embedding, keras.layers.Embedding):
            raise TypeError(
                f"embedding must be a keras.layers.Embedding, got {describe(embedding)}."
            )
        self.embedding = embedding
        self.activation = _activation(activation, "activation")
        self.use_bias = check_bool(use_bias, "use_bias")

    def build(self, input_shape):
        if input_shape[-1] is not None and input_shape[-1] != self.embedding.output_dim:
            raise ValueError(
                f"inputs must have shape (..., {self.embedding.output_dim}) (the embedding's "
                f"output_dim), got shape {tuple(input_shape)}."
            )
        if not self.embedding.built:
            self.embedding.build((None,))
        if self.use_bias:
            self.bias = self.add_weight(shape=(self.embedding.input_dim,), initializer="zeros",
                                        name="bias")

    @property
    def kernel(self):
        """The shared variable: ``embedding.embeddings`` itself, shape ``(V, d)``."""
        return self.embedding.embeddings

    def call(self, inputs):
        z = ops.matmul(inputs, ops.transpose(self.embedding.embeddings))
        if self.use_bias:
            z = z + self.bias
        return self.activation(z)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.embedding.input_dim)

    def get_config(self):
        config = super().get_config()
        config.update(embedding=keras.layers.serialize(self.embedding),
                      activation=keras.activations.serialize(self.activation),
                      use_bias=self.use_bias)
        return config
