"""Compressing a fine-tuned BERT into fewer layers by module replacement (BERT-of-Theseus).

The fine-tuned predecessor's ``L_p`` blocks are cut into ``L_s`` consecutive modules of
``r = L_p / L_s`` blocks each; successor module ``i`` is one block. In every training step each
module is, independently with probability ``p``, replaced by its successor block; the embedding,
the predecessor's blocks and the classification head stay frozen, so only the successor blocks
learn, and each learns to stand in for its module inside the predecessor's own computation. At
inference the successor alone runs.

- :func:`first_layers`: a :class:`~kexue.models.bert.BertModel` made of the embedding and the
  first ``n`` blocks of another (the successor's starting point: the pre-trained model's first
  layers);
- :class:`TheseusModel`: the mixture, trained by ``fit`` (:func:`fit_theseus`), with a
  classification head (one output per sequence) or a per-token head (a tagger's dense layer,
  one output per position); :meth:`TheseusModel.successor_model` the compressed classifier or
  tagger.

Used in: book/transformers/bert-of-theseus.md
"""

from __future__ import annotations

import dataclasses

import keras
from keras import ops

from kexue import _checks
from kexue._checks import check_bool, check_choice, check_instance, check_int, check_real
from kexue.models import bert, encoders

# ``bert`` is used through its attributes: this module is imported while Keras registers the
# package's objects, which can happen while ``kexue.models.bert`` itself is being imported.

__all__ = ["TheseusModel", "first_layers", "fit_theseus"]

_BERT = "a kexue.models.bert.BertModel"


def first_layers(model, n):
    """A new :class:`BertModel` of ``n`` layers with copies of ``model``'s embedding, first
    ``n`` blocks and MLM head (``model`` unchanged; ``n <= model.config.layers``).

    Used in: book/transformers/bert-of-theseus.md
    """
    check_instance(model, "model", bert.BertModel, _BERT)
    if model.config.shared_blocks:
        raise ValueError("model must have independent blocks (shared_blocks=False), got a "
                         "shared-block model; untie it first (kexue.models.bert.untie_blocks).")
    n = check_int(n, "n", maximum=model.config.layers)
    small = bert.BertModel(dataclasses.replace(model.config, layers=n))
    small.embedding.set_weights(model.embedding.get_weights())
    for source, target in zip(model.blocks, small.block_layers):
        target.set_weights(source.get_weights())
    if model.final_norm is not None:
        small.final_norm.set_weights(model.final_norm.get_weights())
    small.mlm.set_weights(model.mlm.get_weights())
    return small


@keras.saving.register_keras_serializable(package="kexue")
class TheseusModel(keras.Model):
    """Module replacement between a fine-tuned ``predecessor`` (:class:`BertModel` of ``L_p``
    layers) with its ``head`` and a ``successor`` (:class:`BertModel` of ``L_s`` layers,
    ``L_s`` dividing ``L_p``). The head is a classification head
    (:class:`~kexue.models.bert.ClsHead` or :class:`~kexue.models.bert.PooledHead`) or a
    per-token head: a ``keras.layers.Dense`` applied at every position after a dropout of
    rate ``token_dropout`` (a :func:`~kexue.models.bert.build_tagger` tagger's
    ``get_layer("tag_logits")``, whose dropout rate is 0.1 by default).

    Inputs as :func:`~kexue.models.bert.build_classifier`'s (``{"token_ids", "segment_ids"}``
    or ids ``(B, T)``); output: class logits ``(B, num_classes)``, or with a per-token head
    tag logits ``(B, T, num_tags)``. With ``training=True`` the
    hidden state passes module ``i`` (predecessor blocks ``i r .. i r + r - 1``) through the
    successor's block ``i`` instead, with probability ``replace_rate``, one independent draw
    per module and batch (``granularity="batch"``, the article's) or per module and example
    (``"example"``), seeded; otherwise (inference) the successor's blocks alone run.
    By default the predecessor's embedding feeds both paths (it is copied into the successor
    so that the extracted successor is the model that was trained) and only the successor's
    blocks are trainable. With ``replace_embedding=True`` the embedding is one more module
    (module 0, as in the article's code): the successor keeps its own embedding, which is
    trainable and replaces the predecessor's with the same probability, so a draw has
    ``M = L_s + 1`` entries. The predecessor and the head are frozen at construction and used
    as they are (shared, not copied).

    Used in: book/transformers/bert-of-theseus.md
    """

    def __init__(self, predecessor, successor, head, replace_rate=0.5, granularity="batch",
                 seed=0, replace_embedding=False, token_dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        check_instance(predecessor, "predecessor", bert.BertModel, _BERT)
        check_instance(successor, "successor", bert.BertModel, _BERT)
        check_instance(head, "head", (bert.ClsHead, keras.layers.Dense),
                       "a kexue.models.bert.ClsHead (or its subclass PooledHead), or a "
                       "keras.layers.Dense per-token head")
        lp, ls = predecessor.config.layers, successor.config.layers
        if predecessor.config.shared_blocks or successor.config.shared_blocks:
            raise ValueError("predecessor and successor must have independent blocks "
                             "(shared_blocks=False), got a shared-block model.")
        if ls > lp or lp % ls:
            raise ValueError(f"successor's layers must divide predecessor's layers ({lp}), got "
                             f"{ls}.")
        same = dataclasses.replace(successor.config, layers=lp)
        if same != predecessor.config:
            raise ValueError(f"successor must be the predecessor's configuration with fewer "
                             f"layers, got {successor.config} for predecessor "
                             f"{predecessor.config}.")
        self.replace_rate = check_real(replace_rate, "replace_rate", 0.0, 1.0)
        self.granularity = check_choice(granularity, "granularity", ("batch", "example"))
        self.seed = check_int(seed, "seed", minimum=0)
        self.replace_embedding = check_bool(replace_embedding, "replace_embedding")
        self.token_dropout = check_real(token_dropout, "token_dropout", 0.0, 1.0,
                                        high_open=True)
        self.per_token = isinstance(head, keras.layers.Dense)
        width = predecessor.config.width
        if self.per_token and head.built and head.kernel.shape[0] != width:
            raise ValueError(f"head must read the predecessor's width {width}, got a Dense "
                             f"layer with input size {head.kernel.shape[0]}.")
        self.token_drop = keras.layers.Dropout(self.token_dropout)
        self.predecessor, self.successor, self.head = predecessor, successor, head
        self.group = lp // ls
        self.modules = ls + int(self.replace_embedding)
        if not self.replace_embedding:
            successor.embedding.set_weights(predecessor.embedding.get_weights())
        if not head.built:
            head.build((None, None, width))
        for frozen in (predecessor, head, successor.mlm):
            frozen.trainable = False
            for v in frozen.weights:  # also what a reloaded model rebuilt after its config
                v.trainable = False
        successor.embedding.trainable = self.replace_embedding
        for v in successor.embedding.weights:
            v.trainable = self.replace_embedding
        if successor.final_norm is not None:
            successor.final_norm.trainable = False
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        self.built = True

    def draw_replacements(self, batch_size=None):
        """One training step's choices, ``True`` where a module is replaced by its successor
        (each with probability ``replace_rate``, independently): bool ``(M,)`` (granularity
        ``"batch"``) or ``(M, batch_size)`` (``"example"``), ``M = L_s`` modules, or
        ``L_s + 1`` with ``replace_embedding`` (entry 0 is then the embedding)."""
        shape = (self.modules,)
        if self.granularity == "example":
            shape += (batch_size,)
        u = keras.random.uniform(shape, seed=self.seed_generator)
        return ops.less(u, self.replace_rate)

    def _hidden(self, inputs, training, replaced=None):
        token_ids, segment_ids, _ = bert._as_inputs(inputs)
        key_mask = ops.not_equal(token_ids, 0)

        def pick(k, successor_out, predecessor_out):
            # both paths run and the choice selects one (a data-dependent branch would not
            # trace on every backend with the blocks' dropout inside); a module's gradient
            # reaches only the path that was chosen
            choice = replaced[k]
            if len(replaced.shape) == 2:  # one choice per example
                choice = choice[:, None, None]
            return ops.where(choice, successor_out, predecessor_out)

        h = self.predecessor.embedding(token_ids, segment_ids, training=training)
        if self.replace_embedding:
            own = self.successor.embedding(token_ids, segment_ids, training=training)
            h = own if replaced is None else pick(0, own, h)
        first = int(self.replace_embedding)
        pred, succ = self.predecessor.blocks, self.successor.blocks
        for i, block in enumerate(succ):
            out = block(h, key_mask=key_mask, training=training)
            if replaced is not None:
                kept = h
                for b in pred[i * self.group:(i + 1) * self.group]:
                    kept = b(kept, key_mask=key_mask, training=training)
                out = pick(first + i, out, kept)
            h = out
        final = self.predecessor.final_norm
        return (h if final is None else final(h)), key_mask

    def call(self, inputs, training=None, replaced=None):
        """Logits ``(B, num_classes)``, with a per-token head ``(B, T, num_tags)``;
        ``replaced`` (bool ``(M,)``, or ``(M, B)`` per example, as :meth:`draw_replacements`
        gives; optional) fixes the choices of a pass instead of drawing them (drawn only with
        ``training=True``)."""
        if replaced is None and training:
            token_ids = bert._as_inputs(inputs)[0]
            replaced = self.draw_replacements(ops.shape(token_ids)[0])
        elif replaced is not None:
            replaced = ops.convert_to_tensor(replaced, dtype="bool")
            if len(replaced.shape) not in (1, 2) or replaced.shape[0] != self.modules:
                raise ValueError(f"replaced must have shape ({self.modules},) or "
                                 f"({self.modules}, batch), one entry per module, got shape "
                                 f"{tuple(replaced.shape)}.")
        hidden, key_mask = self._hidden(inputs, training, replaced)
        if self.per_token:
            return self.head(self.token_drop(hidden, training=training))
        if isinstance(self.head, bert.PooledHead):
            return self.head(hidden, key_mask=key_mask, training=training)
        return self.head(hidden, training=training)

    def successor_model(self, name="successor_classifier"):
        """The compressed model, ready for further fine-tuning
        (:func:`kexue.models.bert.fine_tune`) or export: a functional classifier
        (:func:`~kexue.models.bert.build_classifier`, or
        :func:`~kexue.models.encoders.pooled_classifier` for a :class:`PooledHead`) or, with a
        per-token head, a tagger (:func:`~kexue.models.bert.build_tagger`) on a copy of the
        successor (the predecessor's final LayerNorm included, as the mixture computes it) with
        a copy of the head, every weight trainable. Nothing of this model changes, and later
        training of the returned model leaves it alone.
        """
        successor = bert.BertModel(self.successor.config)
        successor.set_weights(self.successor.get_weights())
        if self.predecessor.final_norm is not None:
            successor.final_norm.set_weights(self.predecessor.final_norm.get_weights())
        head = self.head
        if self.per_token:
            model = bert.build_tagger(successor, head.units, self.token_dropout, name=name)
            model.get_layer("tag_logits").set_weights(head.get_weights())
        elif isinstance(head, bert.PooledHead):
            model = encoders.pooled_classifier(successor, head.num_classes, head.pooling,
                                               head.dropout, name=name)
            model.get_layer("head").set_weights(head.get_weights())
        else:
            model = bert.build_classifier(successor, head.num_classes, head.dropout,
                                          name=name)
            model.get_layer("cls_head").set_weights(head.get_weights())
        return model

    def get_config(self):
        config = super().get_config()
        config.update(
            predecessor=keras.saving.serialize_keras_object(self.predecessor),
            successor=keras.saving.serialize_keras_object(self.successor),
            head=keras.saving.serialize_keras_object(self.head),
            replace_rate=self.replace_rate, granularity=self.granularity, seed=self.seed,
            replace_embedding=self.replace_embedding, token_dropout=self.token_dropout)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("predecessor", "successor", "head"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


def fit_theseus(theseus, x, y, validation=None, epochs=3, batch_size=32, learning_rate=1e-4,
                seed=0, verbose=0, sample_weight=None):
    """The module-replacement stage: train ``theseus`` (a :class:`TheseusModel`) on the task,
    with the optimiser and schedule of :func:`kexue.models.bert.fine_tune` (AdamW, linear
    warm-up over 10% of the steps, then decay) and the cross-entropy of the logits.
    Compiles ``theseus`` (so that the frozen parts are frozen in the train step), then fits.

    ``x``: a dict ``{"token_ids", "segment_ids"}`` of int arrays ``(N, T)``
    (:func:`kexue.models.bert.classification_inputs`); ``y``: int labels ``(N,)``, or with a
    per-token head tags ``(N, T)`` with ``sample_weight`` ``(N, T)`` (1 on the positions
    that count, as :func:`kexue.models.bert.tagging_inputs` gives). Returns the Keras
    ``History``'s dict (``loss``, ``accuracy``, over the weighted positions with weights; with
    ``validation=(x_dev, y_dev)`` or ``(x_dev, y_dev, w_dev)`` also ``val_loss``,
    ``val_accuracy``: the validation pass is the successor alone).

    Used in: book/transformers/bert-of-theseus.md
    """
    check_instance(theseus, "theseus", TheseusModel, "a kexue.models.compression.TheseusModel")
    if not isinstance(x, dict) or "token_ids" not in x:
        raise TypeError(f"x must be a dict with 'token_ids' (and 'segment_ids'), as "
                        f"classification_inputs gives, got {_checks.describe(x)}.")
    keys = [k for k in ("token_ids", "segment_ids") if k in x]
    y = _checks.as_array(y, "y")
    _checks.check_shape(y, "y", x["token_ids"].shape if theseus.per_token
                        else (len(x["token_ids"]),))
    return bert._compile_and_fit(theseus, lambda d: {k: d[k] for k in keys}, x, y, validation,
                                 epochs, batch_size, learning_rate, seed, verbose,
                                 sample_weight)
