"""Saving: every kind of model the book builds round-trips through ``.keras``, compiled.

Each model is built and compiled as its chapter builds and compiles it (small sizes), trained
for one batch so that the optimizer has state, and saved. A fresh Python process then does
``import kexue`` alone (which must import neither Keras nor TensorFlow), loads every file with
``keras.saving.load_model``, and reports its predictions, its loss on the same batch, its
compiled loss and optimizer, and whether it trains on (one compiled train step). The tagging
heads' losses must be bound to the loaded heads (a CRF's loss that read fresh transitions would
give another loss and would not move the loaded transitions).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import warnings
import zipfile
from pathlib import Path

import keras
import kexue
import numpy as np
import pytest
from kexue import capsules, geometry, mechanics, text, training
from kexue.layers import (
    CRF,
    MEMM,
    ClassCenters,
    MaskedBiRNN,
    MaskedGlobalAveragePooling1D,
    MaskedGlobalMaxPooling1D,
    MaskedSoftmax,
    SoftmaxTagger,
    TaggingLoss,
    TiedDense,
    TwoDense,
)
from kexue.losses import SmoothedCrossentropy, output_as_loss, smoothed_crossentropy
from kexue.optimizers import AdaFactor

pytestmark = pytest.mark.filterwarnings("ignore:Layer 'reshape:UserWarning")
RNG = np.random.default_rng(0)
VOCAB, T, K = 12, 6, 4


def _tag_data(k=K):
    x = RNG.integers(1, VOCAB, (8, T))
    y = RNG.integers(0, k, (8, T))
    x[:3, 4:] = 0
    y[:3, 4:] = -1  # padded positions (PAD_LABEL)
    return x, y


def tagger(head):
    """book/sequence/crf.md and memm.md: conv_tagger, Adam, loss=head.loss."""
    x, y = _tag_data()
    model = text.conv_tagger(VOCAB, head, depth=1, width=8, embed_dim=4)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=head.loss)
    return model, x, y


def dense_tagger(head):
    """book/sequence/memm.md's toy: emissions from a Dense layer on float features."""
    x = RNG.normal(size=(8, T, 5)).astype("float32")
    y = RNG.integers(0, 3, (8, T))
    inp = keras.Input((None, 5))
    model = keras.Model(inp, head(keras.layers.Dense(3, name="emissions")(inp)))
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=head.loss)
    return model, x, y


def masked_pooling_classifier():
    """book/keras/layers-within-layers-and-masks.md: TwoDense and the masked poolings."""
    inp = keras.Input((None,), dtype="int32", name="ids")
    h = keras.layers.Embedding(VOCAB, 8, mask_zero=True, name="embedding")(inp)
    h = TwoDense(8, 8, hidden_activation="relu", output_activation="relu", name="two_dense")(h)
    pooled = [MaskedGlobalAveragePooling1D(name="mean")(h), MaskedGlobalMaxPooling1D(name="max")(h)]
    h = keras.layers.Dropout(0.3)(keras.layers.Concatenate()(pooled))
    model = keras.Model(inp, keras.layers.Dense(1, activation="sigmoid", name="prob")(h))
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="binary_crossentropy",
                  metrics=["accuracy"])
    x = RNG.integers(1, VOCAB, (8, T))
    x[:4, 3:] = 0
    return model, x, RNG.integers(0, 2, (8, 1)).astype("float32")


def masked_birnn_attention():
    """MaskedBiRNN over padded sequences and MaskedSoftmax attention weights over time."""
    ids = keras.Input((T,), dtype="int32", name="ids")
    mask = keras.Input((T,), name="mask")
    h = keras.layers.Embedding(VOCAB, 4)(ids)
    h = MaskedBiRNN(keras.layers.LSTM(3, return_sequences=True), name="birnn")([h, mask])
    scores = keras.layers.Reshape((T,))(keras.layers.Dense(1)(h))
    weights = MaskedSoftmax(name="attention")(scores, mask=mask)
    with warnings.catch_warnings():  # Reshape drops the mask, which the loss must not see
        warnings.simplefilter("ignore", UserWarning)
        model = keras.Model([ids, mask], keras.layers.Reshape((T, 1))(weights))
    model.compile(optimizer="adam", loss="mse")
    x = RNG.integers(1, VOCAB, (8, T))
    m = np.ones((8, T), "float32")
    m[:4, 4:] = 0
    y = np.eye(T, dtype="float32")[RNG.integers(0, 4, 8)][..., None]
    return model, [x, m], y


def tied_language_model():
    """book/keras/reusing-layers-and-models.md: the output layer reuses the embedding matrix."""
    inp = keras.Input((None,), dtype="int32")
    tok = keras.layers.Embedding(VOCAB, 6, name="tok")
    h = keras.layers.Dense(6, activation="tanh", name="mix")(tok(inp))
    model = keras.Model(inp, TiedDense(tok, name="tied")(h))
    model.compile(optimizer=keras.optimizers.Adam(2e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model, RNG.integers(0, VOCAB, (8, T)), RNG.integers(0, VOCAB, (8, T))


def center_loss_model():
    """book/keras/custom-losses.md: ClassCenters' distance trained through output_as_loss."""
    image = keras.Input((10,), name="image")
    label = keras.Input((), dtype="int32", name="label")
    feature = keras.layers.Dense(3, name="feature")(keras.layers.Dense(8, activation="relu")(image))
    logits = keras.layers.Dense(4, name="logits")(feature)
    distance = ClassCenters(4, 3, name="center")([feature, label])
    model = keras.Model([image, label], {"logits": logits, "center": distance})
    model.compile(optimizer="adam",
                  loss={"logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                        "center": output_as_loss},
                  loss_weights={"logits": 1.0, "center": 0.5})
    labels = RNG.integers(0, 4, 8)
    x = {"image": RNG.normal(size=(8, 10)).astype("float32"), "label": labels}
    return model, x, {"logits": labels, "center": np.zeros((8, 1), "float32")}


def _mlp(loss, optimizer, sparse=True):
    model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(4)])
    model.compile(optimizer=optimizer, loss=loss)
    labels = RNG.integers(0, 4, 8)
    return model, RNG.normal(size=(8, 10)).astype("float32"), (
        labels if sparse else np.eye(4, dtype="float32")[labels])


def smoothed_ce_model():
    """book/keras/custom-losses.md: SmoothedCrossentropy(eps, sparse=True)."""
    return _mlp(SmoothedCrossentropy(0.2, sparse=True), "adam")


def smoothed_ce_function_model():
    """The registered function smoothed_crossentropy as a compiled loss (one-hot labels)."""
    return _mlp(smoothed_crossentropy, "adam", sparse=False)


def adafactor_model():
    """book/keras/adafactor.md: a model compiled with AdaFactor."""
    return _mlp(keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                AdaFactor(learning_rate=1e-2, beta1=0.5))


def accumulator_model():
    """book/keras/gradient-accumulation.md: GradientAccumulator around Adam (saved mid-cycle)."""
    return _mlp(keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                training.GradientAccumulator(keras.optimizers.Adam(1e-2), steps=3))


def recompute_model(mode):
    """book/keras/recomputation.md: residual_mlp with Recompute blocks (dropout inside)."""
    model = training.residual_mlp(10, 4, depth=2, width=8, dropout=0.1, mode=mode)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    return model, RNG.normal(size=(8, 10)).astype("float32"), RNG.integers(0, 4, 8)


def capsule_model():
    """book/capsules/*.md: shared trunk, a GAP head and a capsule head, MarginLoss per head."""
    heads = ("cnn", "su2018")
    model = capsules.shared_trunk_classifier((4, 4, 6, 6), heads=heads, num_classes=3,
                                             dim_capsule=4, routings=2)
    model.compile(optimizer=keras.optimizers.Adam(),
                  loss={h: capsules.MarginLoss(0.9, 0.1, 0.25) for h in heads},
                  metrics={h: [keras.metrics.CategoricalAccuracy(name="acc")] for h in heads})
    y = np.eye(3, dtype="float32")[RNG.integers(0, 3, 8)]
    return model, RNG.random((8, 14, 14, 1)).astype("float32"), {h: y for h in heads}


def rope_chain_model():
    """book/curiosities/skipping-rope.md: the skipping rope, both ends pinned (geometry="skip"),
    fitted by fit_rope (Adam through model.fit, nu moved between rounds, the L-BFGS-B polish)."""
    rope = mechanics.RopeChain(8, 3.0, 1.0, 0.0, anchor=(-1.0, 0.0), end=(1.0, 0.0),
                               geometry="skip")
    mechanics.fit_rope(rope, steps=20, rounds=2, record_every=5)
    x = np.zeros((4, 1))
    return rope, x, x


def isometric_rim_model():
    """book/curiosities/elliptical-sheets.md: IsometricRim(2, 1), Adam (cosine decay, beta_2=0.9)
    with steps_per_execution, fitted on a column of zeros."""
    rim = geometry.IsometricRim(2.0, 1.0, 16)
    steps = 10
    rim.compile(optimizer=keras.optimizers.Adam(
        keras.optimizers.schedules.CosineDecay(0.1, steps), beta_2=0.9),
        steps_per_execution=min(100, steps))
    rim.fit(np.zeros((steps, 1)), batch_size=1, epochs=1, verbose=0)
    x = np.zeros((4, 1))
    return rim, x, x


MODELS = {
    "tagger_softmax": lambda: tagger(SoftmaxTagger(K)),
    "tagger_crf": lambda: tagger(CRF(K, lr_multiplier=10)),
    "tagger_memm": lambda: tagger(MEMM(K, bidirectional=False, lr_multiplier=3)),
    "tagger_bimemm": lambda: tagger(MEMM(K, bidirectional=True)),
    "tagger_memm_low_rank": lambda: tagger(MEMM(K, rank=2)),
    "dense_crf": lambda: dense_tagger(CRF(3)),
    "masked_pooling": masked_pooling_classifier,
    "masked_birnn_attention": masked_birnn_attention,
    "tied_lm": tied_language_model,
    "center_loss": center_loss_model,
    "smoothed_ce": smoothed_ce_model,
    "smoothed_ce_function": smoothed_ce_function_model,
    "adafactor": adafactor_model,
    "accumulator": accumulator_model,
    "recompute_per_block": lambda: recompute_model("per_block"),
    "recompute_whole": lambda: recompute_model("whole"),
    "capsules": capsule_model,
    "rope_chain": rope_chain_model,
    "isometric_rim": isometric_rim_model,
}
HEADS = {"tagger_softmax", "tagger_crf", "tagger_memm", "tagger_bimemm", "tagger_memm_low_rank",
         "dense_crf"}

# The fresh process: `import kexue` alone, then load and check every model.
CHILD = textwrap.dedent(
    """
    import json, sys
    import kexue
    report = {"keras_after_import_kexue": "keras" in sys.modules,
              "tensorflow_after_import_kexue": "tensorflow" in sys.modules, "models": {}}
    import keras
    import numpy as np

    folder = sys.argv[1]
    manifest = json.load(open(folder + "/manifest.json"))
    arrays = np.load(folder + "/arrays.npz")

    def unflat(prefix, kind):
        if kind == "array":
            return arrays[prefix]
        if kind == "list":
            return [arrays[f"{prefix}/{i}"] for i in range(manifest["sizes"][prefix])]
        return {key: arrays[f"{prefix}/{key}"] for key in manifest["keys"][prefix]}

    for name, info in manifest["models"].items():
        model = keras.saving.load_model(f"{folder}/{name}.keras")
        x, y = unflat(name + "/x", info["x"]), unflat(name + "/y", info["y"])
        pred = model(x, training=False)
        pred = pred if isinstance(pred, dict) else {"out": pred}
        out = {"pred_err": max(float(np.max(np.abs(np.asarray(pred[k]) - arrays[f"{name}/pred/{k}"])))
                               for k in pred),
               "loss": float(model.compute_loss(x=x, y=y, y_pred=model(x), training=False)),
               "loss_type": type(model.loss).__name__ if not isinstance(model.loss, dict)
               else sorted(type(v).__name__ for v in model.loss.values()),
               "optimizer": type(model.optimizer).__name__,
               "iterations": int(model.optimizer.iterations.numpy())}
        head = model.layers[-1] if model.layers else model  # RopeChain, IsometricRim: no layers
        if type(model.loss).__name__ == "TaggingLoss":
            out["loss_bound_to_loaded_head"] = model.loss.head is head
        before = [np.array(w) for w in head.get_weights()] if info["head"] else []
        out["train_loss"] = float(model.train_on_batch(x, y, return_dict=True)["loss"])
        if before:
            out["head_weights_moved"] = any(
                not np.allclose(a, np.array(b)) for a, b in zip(before, head.get_weights()))
        report["models"][name] = out
    print("REPORT " + json.dumps(report))
    """
)


def _flatten(arrays, keys, sizes, prefix, value):
    if isinstance(value, dict):
        keys[prefix] = sorted(value)
        for k, v in value.items():
            arrays[f"{prefix}/{k}"] = np.asarray(v)
        return "dict"
    if isinstance(value, list):
        sizes[prefix] = len(value)
        for i, v in enumerate(value):
            arrays[f"{prefix}/{i}"] = np.asarray(v)
        return "list"
    arrays[prefix] = np.asarray(value)
    return "array"


def _registered_names(path):
    with zipfile.ZipFile(path) as archive:
        config = archive.read("config.json").decode()
    # classes: "registered_name": "kexue>CRF"; functions: "config": "kexue>output_as_loss"
    return set(re.findall(r'"(?:registered_name|config)": "(kexue>\w+)"', config))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Build, train one batch and save every model; load them all in one fresh process."""
    folder = tmp_path_factory.mktemp("saving")
    arrays, keys, sizes, models, expected, names = {}, {}, {}, {}, {}, set()
    for name, make in MODELS.items():
        keras.utils.set_random_seed(0)
        model, x, y = make()
        model.train_on_batch(x, y)
        pred = model(x, training=False)
        for k, v in (pred if isinstance(pred, dict) else {"out": pred}).items():
            arrays[f"{name}/pred/{k}"] = np.asarray(v)
        expected[name] = {
            "loss": float(model.compute_loss(x=x, y=y, y_pred=pred, training=False)),
            "loss_type": type(model.loss).__name__ if not isinstance(model.loss, dict)
            else sorted(type(v).__name__ for v in model.loss.values()),
            "optimizer": type(model.optimizer).__name__,
            "iterations": int(keras.ops.convert_to_numpy(model.optimizer.iterations)),
        }
        models[name] = {"x": _flatten(arrays, keys, sizes, f"{name}/x", x),
                        "y": _flatten(arrays, keys, sizes, f"{name}/y", y),
                        "head": name in HEADS}
        model.save(folder / f"{name}.keras")
        names |= _registered_names(folder / f"{name}.keras")
    np.savez(folder / "arrays.npz", **arrays)
    (folder / "manifest.json").write_text(
        json.dumps({"models": models, "keys": keys, "sizes": sizes}))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", CHILD, str(folder)], capture_output=True,
                          text=True, env=env, timeout=600, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("REPORT ")]
    assert proc.returncode == 0 and lines, f"the fresh process failed:\n{proc.stderr[-4000:]}"
    return json.loads(lines[-1][len("REPORT "):]), expected, names


def test_import_kexue_imports_neither_keras_nor_tensorflow(saved):
    report, _, _ = saved
    assert not report["keras_after_import_kexue"]
    assert not report["tensorflow_after_import_kexue"]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_round_trips_with_its_compiled_loss(saved, name):
    report, expected, _ = saved
    got, want = report["models"][name], expected[name]
    assert got["pred_err"] <= 1e-5, got
    assert got["loss"] == pytest.approx(want["loss"], rel=1e-5, abs=1e-6)
    assert got["loss_type"] == want["loss_type"]
    assert got["optimizer"] == want["optimizer"]
    assert got["iterations"] == want["iterations"]
    assert np.isfinite(got["train_loss"])


@pytest.mark.parametrize("name", sorted(HEADS))
def test_head_loss_is_bound_to_the_loaded_head(saved, name):
    got = saved[0]["models"][name]
    assert got["loss_type"] == "TaggingLoss"
    assert got["loss_bound_to_loaded_head"]
    if "softmax" not in name:  # the transitions receive the loss's gradient after loading
        assert got["head_weights_moved"]


def test_every_registered_object_is_saved_by_some_model(saved):
    """Each object kexue registers with Keras appears in one of the saved models above."""
    _, _, names = saved
    kexue.register_serializables()
    registered = {k for k in keras.saving.get_custom_objects() if k.startswith("kexue>")}
    assert registered, "no kexue objects registered"
    assert registered - names == set(), f"never saved by a test model: {sorted(registered - names)}"


def test_serializable_modules_hold_every_registration():
    """A module that registers Keras objects is listed in kexue.SERIALIZABLE_MODULES."""
    lib = Path(kexue.__file__).parent
    for path in lib.rglob("*.py"):
        if "@keras.saving.register_keras_serializable" not in path.read_text():
            continue
        module = ".".join(path.relative_to(lib.parent).with_suffix("").parts)
        assert any(module == m or module.startswith(m + ".") for m in kexue.SERIALIZABLE_MODULES), (
            f"{module} registers Keras objects but kexue.SERIALIZABLE_MODULES does not import it")


def test_import_kexue_registers_once_keras_is_imported():
    """In a fresh process: `import kexue`, then Keras; kexue's objects are registered."""
    code = ("import sys, kexue; assert 'keras' not in sys.modules; import keras; "
            "print(sorted(k for k in keras.saving.get_custom_objects() if k.startswith('kexue>')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), check=True).stdout
    for name in ("kexue>CRF", "kexue>TaggingLoss", "kexue>AdaFactor", "kexue>GradientAccumulator",
                 "kexue>Recompute", "kexue>MarginLoss", "kexue>SmoothedCrossentropy",
                 "kexue>RopeChain", "kexue>IsometricRim"):
        assert name in out


def test_tagging_loss_config_and_standalone_copy():
    head = CRF(K, lr_multiplier=2, name="crf_head")
    loss = head.loss
    assert isinstance(loss, TaggingLoss) and loss.head is head and head.loss is loss
    again = TaggingLoss.from_config(loss.get_config())  # outside a model load: a fresh head
    assert type(again.head) is CRF and again.head is not head
    assert again.head.get_config() == head.get_config()
    with pytest.raises(TypeError, match="head"):
        TaggingLoss(keras.layers.Dense(3))
    with pytest.raises(ValueError, match="not built"):
        again(np.zeros((1, 2)), np.zeros((1, 2, K), "float32"))


def test_rope_chain_and_isometric_rim_configs_round_trip():
    """from_config(get_config()) keeps every constructor argument (pinned end, geometry, initial
    angles, penalty; the second curve of the rim); the weights then carry the state."""
    rope = mechanics.RopeChain(6, 2.0, 1.5, 0.5, anchor=(0.5, 0.0), end=(1.5, -0.5),
                               geometry="rod", initial_angles=np.linspace(-1.2, 0.3, 6),
                               penalty=10.0, name="rope")
    rope.nu.assign([0.3, -0.2])
    again = mechanics.RopeChain.from_config(rope.get_config())
    assert again.get_config() == rope.get_config() and again.mu == rope.mu
    theta0 = keras.ops.convert_to_numpy(again.theta)
    np.testing.assert_array_equal(theta0, np.linspace(-1.2, 0.3, 6))
    again.set_weights(rope.get_weights())
    assert float(again.objective()) == float(rope.objective())

    radius = 2 * geometry.ellipse_quarter_length(2.0, 1.0) / np.pi  # a circle, same quarter length
    rim = geometry.IsometricRim(2.0, 1.0, 8, other=(radius, radius), name="rim")
    rim.theta.assign(np.linspace(-1.0, 0.0, 8))
    copy = geometry.IsometricRim.from_config(rim.get_config())
    assert copy.get_config() == rim.get_config() and copy.other == (radius, radius)
    copy.set_weights(rim.get_weights())
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(copy.defects()),
                                  keras.ops.convert_to_numpy(rim.defects()))


# ------------------------------------------------------------------ kexue.activations: xmin1exp

from kexue import activations  # noqa: E402


def xmin1exp_mlp_model():
    """book/geometry/activation-functions.md: Dense layers with activation=xmin1exp (by object
    and by registered name), He-normal kernels, Adam, sparse cross-entropy."""
    x = RNG.normal(size=(8, 6)).astype("float32")
    y = RNG.integers(0, 3, 8)
    by_name = keras.activations.deserialize("kexue>xmin1exp")
    model = keras.Sequential([
        keras.Input((6,)),
        keras.layers.Dense(5, activation=activations.xmin1exp, kernel_initializer="he_normal"),
        keras.layers.Dense(5, activation=by_name, kernel_initializer="he_normal"),
        keras.layers.Dense(3, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    return model, x, y


MODELS["xmin1exp_mlp"] = xmin1exp_mlp_model  # the module fixture `saved` saves and reloads it


def _assert_round_trip(saved, model, registered):
    """The reloaded ``model`` predicts and trains as the saved one; ``registered`` was saved."""
    report, expected, names = saved
    got, want = report["models"][model], expected[model]
    assert registered in names
    assert got["pred_err"] <= 1e-5, got
    assert got["loss"] == pytest.approx(want["loss"], rel=1e-5, abs=1e-6)
    assert got["optimizer"] == want["optimizer"] and got["iterations"] == want["iterations"]
    assert np.isfinite(got["train_loss"])


def test_xmin1exp_model_round_trips(saved):
    _assert_round_trip(saved, "xmin1exp_mlp", "kexue>xmin1exp")


def output_gated_gru_model():
    """book/geometry/rnn-gradients.md: RNN(OutputGatedGRUCell) on the adding problem, Adam with
    clipnorm, MSE."""
    from kexue.data import adding_problem
    from kexue.layers import OutputGatedGRUCell

    x, y = adding_problem(8, 6, seed=0)
    model = keras.Sequential([keras.Input((6, 2)), keras.layers.RNN(OutputGatedGRUCell(4)),
                              keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(1e-2, clipnorm=1.0), loss="mse")
    return model, x, y


MODELS["output_gated_gru"] = output_gated_gru_model


def test_output_gated_gru_round_trips(saved):
    _assert_round_trip(saved, "output_gated_gru", "kexue>OutputGatedGRUCell")


# ------------------------------------------------------- kexue.losses: multi-label cross-entropy

from kexue.losses import (  # noqa: E402
    MultilabelCategoricalCrossentropy,
    multilabel_categorical_crossentropy,
)


def _multilabel_mlp(loss):
    """book/sequence/multilabel-softmax.md: an MLP with raw logits, multi-hot targets (one label
    marked unknown with -1), Adam."""
    model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(5)])
    model.compile(optimizer="adam", loss=loss)
    y = (RNG.random((8, 5)) < 0.4).astype("float32")
    y[0, 0] = -1.0
    return model, RNG.normal(size=(8, 10)).astype("float32"), y


MODELS["multilabel_cce"] = lambda: _multilabel_mlp(MultilabelCategoricalCrossentropy(0.5))
MODELS["multilabel_cce_function"] = lambda: _multilabel_mlp(multilabel_categorical_crossentropy)


def test_multilabel_loss_round_trips(saved):
    _assert_round_trip(saved, "multilabel_cce", "kexue>MultilabelCategoricalCrossentropy")
    _assert_round_trip(saved, "multilabel_cce_function",
                       "kexue>multilabel_categorical_crossentropy")


# ---------------------------------------------------------- kexue.seq2seq: encoder–decoder

from kexue import seq2seq  # noqa: E402


def seq2seq_model():
    """book/sequence/exposure-bias.md: build_seq2seq (two sub-models, a tied output layer,
    keras.ops on the ids), teacher_forcing_loss, Adam."""
    src = RNG.integers(4, VOCAB, (4, 5)).astype("int32")
    src[0, 3:] = 0
    dec = np.concatenate([np.full((4, 1), seq2seq.BOS), src[:, :3]], axis=1).astype("int32")
    lab = np.concatenate([src[:, :3], np.full((4, 1), seq2seq.EOS)], axis=1).astype("int32")
    model = seq2seq.build_seq2seq(VOCAB, dim=8, heads=2)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=seq2seq.teacher_forcing_loss)
    return model, [src, dec], lab


MODELS["seq2seq"] = seq2seq_model


def test_seq2seq_model_round_trips(saved):
    _assert_round_trip(saved, "seq2seq", "kexue>teacher_forcing_loss")


def adversarial_model(method):
    """book/sequence/adversarial-training.md: a text CNN wrapped in AdversarialModel, Adam,
    binary cross-entropy from logits."""
    inp = keras.Input((T,), dtype="int32")
    h = keras.layers.Embedding(VOCAB, 4, name="emb")(inp)
    h = keras.layers.GlobalMaxPooling1D()(keras.layers.Conv1D(4, 3, activation="relu")(h))
    model = keras.Model(inp, keras.layers.Dense(1)(h))
    adv = training.AdversarialModel(model, "emb", method=method, epsilon=0.5)
    adv.compile(optimizer=keras.optimizers.Adam(1e-3),
                loss=keras.losses.BinaryCrossentropy(from_logits=True), metrics=["accuracy"])
    x = RNG.integers(0, VOCAB, (8, T))
    return adv, x, RNG.integers(0, 2, (8, 1)).astype("float32")


MODELS["adversarial_fgm"] = lambda: adversarial_model("fgm")
MODELS["adversarial_gradient_penalty"] = lambda: adversarial_model("gradient_penalty")


@pytest.mark.parametrize("name", ["adversarial_fgm", "adversarial_gradient_penalty"])
def test_adversarial_model_round_trips(saved, name):
    _assert_round_trip(saved, name, "kexue>AdversarialModel")


# ------------------------------------------- kexue.generative.denoising: noise-conditional denoiser

from kexue.generative import denoising as _denoising  # noqa: E402


def noise_conditional_denoiser_model():
    """book/generative/denoising-to-generative.md: noise_conditional_denoiser (conv), Adam,
    MSE on NoisyBatches (one batch here)."""
    model = _denoising.noise_conditional_denoiser((8, 8, 1), width=4)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    (noisy, sigma), clean, _ = _denoising.NoisyBatches(
        RNG.random((8, 8, 8, 1)).astype("float32"), [0.1, 0.5], batch_size=8)[0]
    return model, [noisy, sigma], clean


MODELS["noise_conditional_denoiser"] = noise_conditional_denoiser_model


def test_noise_conditional_denoiser_round_trips(saved):
    _assert_round_trip(saved, "noise_conditional_denoiser", "kexue>NoiseLevelEmbedding")
    _assert_round_trip(saved, "noise_conditional_denoiser", "kexue>ScaledNoiseSubtraction")


# ------------------------------------------------------------ kexue.generative.gan: GAN, GANLoss

from kexue.generative import gan as _gan  # noqa: E402


def gan_model(mode):
    """book/generative/single-loss-gan.md: a ring GAN (latent and data both 2-D, so that the
    protocol above applies: ``gan(x)`` is the generator, ``compute_loss`` the discriminator's
    loss on real x and generated y_pred), trained one batch; Adam, or two Adams in alternating
    mode (the discriminator's optimizer state is saved among the model's variables)."""
    gan = _gan.GAN(_gan.mlp_generator(2, width=8), _gan.mlp_discriminator(width=8), 2,
                   loss=_gan.GANLoss("hinge"), mode=mode, lam=0.5, seed=1)
    if mode == "single_loss":
        gan.compile(optimizer=keras.optimizers.Adam(1e-3))
    else:
        gan.compile(optimizer=keras.optimizers.Adam(1e-3),
                    d_optimizer=keras.optimizers.Adam(2e-3, beta_1=0.5))
    x = RNG.normal(size=(8, 2)).astype("float32")
    return gan, x, x


MODELS["gan_single_loss"] = lambda: gan_model("single_loss")
MODELS["gan_alternating"] = lambda: gan_model("alternating")


def test_gan_round_trips(saved, tmp_path):
    _assert_round_trip(saved, "gan_single_loss", "kexue>GAN")
    _assert_round_trip(saved, "gan_alternating", "kexue>GANLoss")
    gan, x, _ = gan_model("alternating")
    gan.train_on_batch(x)
    gan.save(tmp_path / "gan.keras")
    again = keras.saving.load_model(tmp_path / "gan.keras")
    assert (again.mode, again.lam, again.gan_loss.kind) == ("alternating", 0.5, "hinge")
    assert again.d_optimizer.get_config()["beta_1"] == 0.5
    for a, b in zip(gan.d_optimizer.variables, again.d_optimizer.variables):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
    np.testing.assert_array_equal(gan.sample(5), again.sample(5))


# ------------------------------------------- kexue.generative.divergences: FGANLoss in a GAN

from kexue.generative import divergences as _fdiv  # noqa: E402


def fgan_model():
    """book/generative/f-gan.md: a ring GAN trained with an f-GAN loss (squared Hellinger,
    critic and generator swapped), alternating Adam steps, trained one batch."""
    gan = _gan.GAN(_gan.mlp_generator(2, width=8), _gan.mlp_discriminator(width=8), 2,
                   loss=_fdiv.FGANLoss("squared_hellinger", swap=True), mode="alternating",
                   seed=2)
    gan.compile(optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5),
                d_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5))
    x = RNG.normal(size=(8, 2)).astype("float32")
    return gan, x, x


MODELS["fgan_hellinger"] = fgan_model


def test_fgan_loss_round_trips(saved, tmp_path):
    _assert_round_trip(saved, "fgan_hellinger", "kexue>FGANLoss")
    gan, x, _ = fgan_model()
    gan.train_on_batch(x)
    gan.save(tmp_path / "fgan.keras")
    again = keras.saving.load_model(tmp_path / "fgan.keras")
    assert isinstance(again.gan_loss, _fdiv.FGANLoss)
    assert again.gan_loss.get_config() == {"divergence": "squared_hellinger",
                                           "generator": "minimax", "swap": True}
    np.testing.assert_array_equal(gan.sample(5), again.sample(5))


# ---- kexue.generative.quantization and autoregressive: VQ-VAE and its prior

from kexue.generative import autoregressive as _ar  # noqa: E402
from kexue.generative import quantization as _vq  # noqa: E402


def vqvae_model(ema):
    """book/generative/vq-vae.md: a small VQ-VAE (8×8 images, 2×2 code grid), Adam, trained
    one batch; with ``ema`` the codebook moves by moving averages."""
    enc = _vq.vq_encoder(code_dim=3, channels=4, res_blocks=1, input_shape=(8, 8, 1))
    dec = _vq.vq_decoder(code_dim=3, channels=4, res_blocks=1, grid=(2, 2))
    model = _vq.VQVAE(enc, dec, _vq.VectorQuantizer(5, beta=1.0, gamma=0.25, ema=ema))
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    x = RNG.random((8, 8, 8, 1)).astype("float32")
    return model, x, x


def code_prior_model():
    """book/generative/vq-vae.md: the causal Transformer prior over a 2×3 code grid, Adam,
    sparse cross-entropy on logits."""
    model = _ar.code_transformer(5, grid=(2, 3), d_model=8, heads=2, layers=1)
    model.compile(optimizer="adam",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    inputs, targets = _ar.prior_inputs(RNG.integers(0, 5, size=(8, 2, 3)), 5)
    return model, inputs, targets


MODELS["vqvae"] = lambda: vqvae_model(False)
MODELS["vqvae_ema"] = lambda: vqvae_model(True)
MODELS["code_prior"] = code_prior_model


def test_vqvae_and_prior_round_trip(saved, tmp_path):
    _assert_round_trip(saved, "vqvae", "kexue>VQVAE")
    _assert_round_trip(saved, "vqvae_ema", "kexue>VectorQuantizer")
    _assert_round_trip(saved, "code_prior", "kexue>GridPositionEmbedding")
    model, x, _ = vqvae_model(True)
    model.train_on_batch(x)
    model.save(tmp_path / "vqvae.keras")
    again = keras.saving.load_model(tmp_path / "vqvae.keras")
    q = again.quantizer
    assert (q.num_codes, q.ema, q.beta, q.gamma) == (5, True, 1.0, 0.25)
    for a, b in zip(model.quantizer.weights, q.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
    np.testing.assert_array_equal(model.encode(x), again.encode(x))


# ------------------------------------ kexue.layers.attention and kexue.models.bert: Transformers

from kexue.layers import (  # noqa: E402
    MultiHeadSelfAttention,
    PositionEmbedding,
    SinusoidalPositionEmbedding,
    SynthesizerAttention,
    TransformerBlock,
)
from kexue.models import bert as _bert  # noqa: E402


def attention_classifier_model():
    """book/transformers/attention.md and synthesizer.md: position embeddings, a multi-head
    layer and a block with a mixed Synthesizer, mean-pooled to a sigmoid, Adam."""
    inp = keras.Input((T,), dtype="int32", name="ids")
    h = keras.layers.Embedding(VOCAB, 8, name="embedding")(inp)
    h = SinusoidalPositionEmbedding(name="sincos")(h)
    h = PositionEmbedding(T, name="learned_positions")(h)
    h = MultiHeadSelfAttention(2, 4, name="mhsa")(h)
    h = TransformerBlock(2, 4, 16, attention=SynthesizerAttention("mix", T, 2, 4, name="synth"),
                         name="block")(h)
    out = keras.layers.Dense(1, activation="sigmoid", name="out")(
        keras.layers.GlobalAveragePooling1D(name="mean")(h))
    model = keras.Model(inp, out)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy")
    x = RNG.integers(1, VOCAB, (8, T))
    return model, x, RNG.integers(0, 2, (8, 1)).astype("float32")


def _tiny_bert(**kw):
    return _bert.BertModel(_bert.BertConfig(vocab_size=VOCAB, width=8, layers=2, heads=2,
                                            ffn_dim=16, max_positions=T, dropout=0.0, **kw))


def bert_mlm_model():
    """book/transformers/attention.md: the small BERT compiled for MLM (logits at the masked
    positions, the pre-training loss), ALBERT-style shared blocks and factorised embedding."""
    model = _tiny_bert(shared_blocks=True, embedding_dim=4)
    model.compile(optimizer=_bert._optimizer(1e-3, 10, 2), loss=_bert._mlm_loss())
    batch = _bert.mask_tokens(RNG.integers(5, VOCAB, (8, T)), VOCAB, np.random.default_rng(0))
    x = {"token_ids": batch["token_ids"], "mlm_positions": batch["mlm_positions"]}
    return model, x, batch["mlm_labels"]


def bert_classifier_model():
    """book/transformers/attention.md: a sentence-pair classifier on the small BERT's [CLS]."""
    model = _bert.build_classifier(_tiny_bert(), 3)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = {"token_ids": RNG.integers(1, VOCAB, (8, T)).astype("int32"),
         "segment_ids": np.repeat([[0, 0, 0, 1, 1, 1]], 8, axis=0).astype("int32")}
    return model, x, RNG.integers(0, 3, 8)


MODELS["attention_classifier"] = attention_classifier_model
MODELS["bert_mlm"] = bert_mlm_model
MODELS["bert_classifier"] = bert_classifier_model


def test_transformer_models_round_trip(saved):
    for name in ("kexue>MultiHeadSelfAttention", "kexue>SynthesizerAttention",
                 "kexue>TransformerBlock", "kexue>SinusoidalPositionEmbedding",
                 "kexue>PositionEmbedding"):
        _assert_round_trip(saved, "attention_classifier", name)
    _assert_round_trip(saved, "bert_mlm", "kexue>BertModel")
    _assert_round_trip(saved, "bert_classifier", "kexue>ClsHead")


# ------------------------------------ kexue.generative.vae: the hierarchical VAE and its cells

from kexue.generative import vae as _vae  # noqa: E402
from kexue.regularizers import SpectralPenalty  # noqa: E402


def hierarchical_vae_model():
    """book/generative/nvae.md: HierarchicalVAE (two scales, residual posterior, KL warm-up,
    spectral penalty), Adamax, fitted on binary images (targets are not used)."""
    model = _vae.HierarchicalVAE((8, 8, 1), scales=((2, 1, 2), (4, 1, 2)), channels=4,
                                 kl_warmup_steps=5, spectral_strength=1e-3, seed=0)
    model.compile(optimizer=keras.optimizers.Adamax(2e-3))
    x = (RNG.random((8, 8, 8, 1)) < 0.5).astype("float32")
    return model, x, x


def vae_cells_model():
    """The NVAE cells and squeeze-excitation in a functional model, with the spectral penalty
    as a kernel regularizer, Adam, MSE."""
    inp = keras.Input((4, 4, 4))
    h = _vae.EncoderCell(4, kernel_regularizer=SpectralPenalty(1e-3), name="enc")(inp)
    h = _vae.SqueezeExcitation(2, name="se")(_vae.DecoderCell(4, name="dec")(h))
    model = keras.Model(inp, keras.layers.Conv2D(1, 1)(h))
    model.compile(optimizer="adam", loss="mse")
    return model, RNG.normal(size=(8, 4, 4, 4)).astype("float32"), RNG.normal(
        size=(8, 4, 4, 1)).astype("float32")


MODELS["hierarchical_vae"] = hierarchical_vae_model
MODELS["vae_cells"] = vae_cells_model


def test_hierarchical_vae_round_trips(saved, tmp_path):
    _assert_round_trip(saved, "hierarchical_vae", "kexue>HierarchicalVAE")
    for name in ("kexue>EncoderCell", "kexue>DecoderCell", "kexue>SqueezeExcitation",
                 "kexue>SpectralPenalty"):
        _assert_round_trip(saved, "vae_cells", name)
    model, x, _ = hierarchical_vae_model()
    model.fit(x, batch_size=4, epochs=1, verbose=0)
    model.save(tmp_path / "hvae.keras")
    again = keras.saving.load_model(tmp_path / "hvae.keras")
    assert again.get_config() == model.get_config()
    assert float(again.train_steps.numpy()) == 2.0                    # the warm-up resumes
    np.testing.assert_array_equal(again.sample(3, 0.7, seed=1), model.sample(3, 0.7, seed=1))
    np.testing.assert_array_equal(again.elbo(x, seed=2), model.elbo(x, seed=2))


# ------------------------------------ kexue.models.encoders: Synthesizer encoder classifiers

from kexue.models import encoders as _encoders  # noqa: E402


def retrieval_encoder_model():
    """book/transformers/synthesizer.md: a two-stream factorised-dense encoder on the key–value
    retrieval task, read out at the query (SelectPosition), Adam, sparse cross-entropy."""
    task = _encoders.key_value_retrieval(8, pairs=5, keys=8, values=4, seed=0)
    model = _encoders.encoder_classifier("factorized_dense", task["vocab_sizes"], 4, 6, dim=8,
                                         heads=2, pooling="last", factors=(2, 3))
    model.compile(optimizer="adam",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model, task["inputs"], task["labels"]


MODELS["retrieval_encoder"] = retrieval_encoder_model


def test_encoder_classifier_round_trips(saved):
    for name in ("kexue>SelectPosition", "kexue>SynthesizerAttention", "kexue>TransformerBlock"):
        _assert_round_trip(saved, "retrieval_encoder", name)


# ------------------------------------ kexue.models.compression: module replacement (Theseus)

from kexue.models import compression as _compression  # noqa: E402


def theseus_model():
    """book/transformers/bert-of-theseus.md: a 2-layer successor replacing the 4-layer
    predecessor's modules at rate 0.5 (one draw per example), the [CLS] head frozen."""
    predecessor = _bert.BertModel(_bert.BertConfig(vocab_size=VOCAB, width=8, layers=4, heads=2,
                                                   ffn_dim=16, max_positions=T, dropout=0.0))
    head = _bert.ClsHead(3, dropout=0.0)
    head.build((None, None, 8))
    successor = _compression.first_layers(predecessor, 2)
    model = _compression.TheseusModel(predecessor, successor, head, 0.5, "example", seed=1)
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model, {"token_ids": RNG.integers(1, VOCAB, (8, T))}, RNG.integers(0, 3, (8,))


MODELS["theseus"] = theseus_model


# ------------------------ kexue.models.bert: the pooled head (in a Theseus model, mean pooled)


def theseus_pooled_model():
    """book/transformers/bert-of-theseus.md: module replacement with the embedding as module 0
    and a mean-pooled head (PooledHead), one draw per batch."""
    config = _bert.BertConfig(vocab_size=VOCAB, width=8, layers=2, heads=2, ffn_dim=16,
                              max_positions=T, dropout=0.0)
    predecessor = _bert.BertModel(config)
    head = _bert.PooledHead(3, "mean", dropout=0.0)
    head.build((None, None, 8))
    successor = _compression.first_layers(_bert.BertModel(config), 1)
    model = _compression.TheseusModel(predecessor, successor, head, 0.5, seed=2,
                                      replace_embedding=True)
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model, {"token_ids": RNG.integers(1, VOCAB, (8, T))}, RNG.integers(0, 3, (8,))


MODELS["theseus_pooled"] = theseus_pooled_model


def test_pooled_theseus_round_trips(saved):
    _assert_round_trip(saved, "theseus_pooled", "kexue>PooledHead")


# ------------------------------- kexue.models.electra: replaced-token detection (ELECTRA pair)

from kexue.models import electra as _electra  # noqa: E402


def _electra_batch(rows=4):
    ids = RNG.integers(5, VOCAB, (rows, T)).astype("int32")
    batch = _bert.mask_tokens(ids, VOCAB, np.random.default_rng(0))
    batch["original_ids"] = ids
    return batch


def electra_model():
    """book/transformers/albert-electra.md: generator (1/2 width, the discriminator's token
    embedding) and discriminator, trained on L_MLM + 50 L_RTD; y is unused."""
    config = _bert.BertConfig(vocab_size=VOCAB, width=8, layers=1, heads=2, ffn_dim=16,
                              max_positions=T, dropout=0.0)
    model = _electra.Electra(_bert.BertModel(config), generator_fraction=0.5, seed=1)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    return model, _electra_batch(), np.zeros((4,), "float32")


def electra_generator_model():
    """book/transformers/albert-electra.md: the generator alone (its own token embedding)."""
    config = _bert.BertConfig(vocab_size=VOCAB, width=8, layers=1, heads=2, ffn_dim=16,
                              max_positions=T, dropout=0.0)
    model = _electra.ElectraGenerator(_electra.generator_config(config, 0.5))
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    batch = _electra_batch()
    return (model, {"token_ids": batch["token_ids"], "mlm_positions": batch["mlm_positions"]},
            batch["mlm_labels"])


MODELS["electra"] = electra_model
MODELS["electra_generator"] = electra_generator_model


def test_electra_round_trips(saved):
    _assert_round_trip(saved, "electra", "kexue>Electra")
    _assert_round_trip(saved, "electra_generator", "kexue>ElectraGenerator")


# ------------------------- kexue.models.compression: module replacement with a per-token head


def theseus_tagger_model():
    """book/transformers/bert-of-theseus.md: a 1-layer successor replacing the 4-layer
    predecessor (the embedding as module 0), the tagger's per-token dense head frozen."""
    predecessor = _bert.BertModel(_bert.BertConfig(vocab_size=VOCAB, width=8, layers=4, heads=2,
                                                   ffn_dim=16, max_positions=T, dropout=0.0))
    tagger = _bert.build_tagger(predecessor, K, dropout=0.0)
    model = _compression.TheseusModel(predecessor, _compression.first_layers(predecessor, 1),
                                      tagger.get_layer("tag_logits"), 0.5, seed=2,
                                      replace_embedding=True, token_dropout=0.0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model, {"token_ids": RNG.integers(1, VOCAB, (8, T))}, RNG.integers(0, K, (8, T))


MODELS["theseus_tagger"] = theseus_tagger_model


def test_theseus_tagger_round_trips(saved):
    _assert_round_trip(saved, "theseus_tagger", "kexue>TheseusModel")
