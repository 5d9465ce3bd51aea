"""Bad input to every public callable of kexue raises a clear error; valid input works.

Every case calls one public callable with one bad argument and asserts the exception type and
that the message names the argument (and, where given, what was expected). A meta-test
enumerates the public callables of every module of the package (``__all__`` where a module has
one, else its public names defined in the module) and fails when one has neither a case here
nor an entry in ``NO_BAD_INPUT`` saying why none exists. The examples of issue 11 are here
verbatim (``ISSUE``), and so is the valid input the issue found refused.
"""

from __future__ import annotations

import importlib
import inspect
import math
import pkgutil
import re
from collections.abc import Callable
from dataclasses import dataclass

import keras
import kexue
import numpy as np
import pytest
from kexue import (
    capsules,
    data,
    geometry,
    losses,
    mechanics,
    optimizers,
    report,
    runtime,
    stats,
    text,
    training,
    viz,
)
from kexue.layers import core, crf, masking, memm, reuse
from numpy import arange, array, eye, full, nan, zeros

BACKEND = keras.backend.backend()


@dataclass(frozen=True)
class Case:
    target: str      # "module.name" of the public callable
    arg: str         # the argument the message must name
    call: Callable   # call(monkeypatch, tmp_path) makes the bad call
    exc: type        # the exception type expected
    match: str = ""  # a further regex the message must match (what was expected)
    tf_only: bool = False
    label: str = ""

    @property
    def id(self):
        return f"{self.target.split('.', 1)[1]}:{self.label or self.arg}"


CASES: list[Case] = []


def case(target, arg, exc, match="", tf_only=False, label=""):
    """Decorator-free registration: ``case(...)(lambda mp, tmp: ...)``."""
    def register(fn):
        CASES.append(Case(target, arg, fn, exc, match, tf_only, label))
        return fn
    return register


def bad(target, arg, exc, fn, match="", label="", tf_only=False):
    CASES.append(Case(target, arg, lambda mp, tmp: fn(), exc, match, tf_only, label))


# ------------------------------------------------------------------ the inputs the cases share

F = "float32"
EM = zeros((2, 3, 4), F)              # emissions (B=2, T=3, K=4)
TRANS = zeros((4, 4), F)
TAGS = zeros((2, 3), "int32")
MASK = array([[1, 1, 0], [1, 1, 1]], F)
X3 = zeros((2, 5, 3), F)              # a padded batch (B=2, T=5, d=3)
M5 = array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], F)


def head(cls, **kw):
    """A built tagging head with K = 4."""
    layer = cls(4, **kw)
    layer.build((None, None, 4))
    return layer


def seq_model(build=True):
    model = keras.Sequential([keras.layers.Dense(3, name="a"), keras.layers.Dense(2, name="b")])
    if build:
        model.build((None, 4))
    return model


def functional():
    x = keras.Input((4,))
    return keras.Model(x, keras.layers.Dense(2, name="out")(keras.layers.Dense(3, name="a")(x)))


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(2, name="a")

    def call(self, x):
        return self.dense(x)


def idx_file(tmp):
    path = tmp / "bad.gz"
    import gzip

    with gzip.open(path, "wb") as fh:
        fh.write(b"\x01\x02\x03\x04")
    return path


def vocab():
    return text.CharVocab(["a", "b"])


# ----------------------------------------------------------------------- the issue's examples

ISSUE = [
    # data.sha256sum(f, chunk=0) returned the empty-file hash for any file
    Case("kexue.data.sha256sum", "chunk", lambda mp, tmp: data.sha256sum(__file__, chunk=0),
         ValueError, r"positive", label="issue-chunk0"),
    # tags >= K: a finite CRF loss; the softmax and MEMM heads must raise the same clear error
    Case("kexue.layers.crf.crf_nll", "tags",
         lambda mp, tmp: crf.crf_nll(zeros((1, 3, 4)), full((1, 3), 7), zeros((4, 4))),
         ValueError, r"integers in \[0, 4\), got 7", label="issue-tags>=K"),
    Case("kexue.layers.crf.SoftmaxTagger", "tags",
         lambda mp, tmp: head(crf.SoftmaxTagger).sequence_loss(zeros((1, 3, 4)), full((1, 3), 7)),
         ValueError, r"integers in \[0, 4\), got 7", label="issue-tags>=K"),
    Case("kexue.layers.memm.MEMM", "tags",
         lambda mp, tmp: head(memm.MEMM).sequence_loss(zeros((1, 3, 4)), full((1, 3), 7)),
         ValueError, r"integers in \[0, 4\), got 7", label="issue-tags>=K"),
    Case("kexue.layers.crf.CRF", "tags",
         lambda mp, tmp: head(crf.CRF).sequence_loss(zeros((1, 3, 4)), full((1, 3), 7)),
         ValueError, r"integers in \[0, 4\), got 7", label="issue-tags>=K"),
    Case("kexue.losses.SmoothedCrossentropy", "y_true",
         lambda mp, tmp: losses.SmoothedCrossentropy(sparse=True)(array([0, 5]), zeros((2, 3))),
         ValueError, r"\[0, 3\), got 5", label="issue-label>=n"),
    # silent broadcasting
    Case("kexue.layers.masking.reverse_valid", "lengths",
         lambda mp, tmp: masking.reverse_valid(arange(6.).reshape(2, 3), array([3])),
         ValueError, r"shape \(batch=2,\)", label="issue-broadcast"),
    Case("kexue.capsules.margin_loss", "y_true",
         lambda mp, tmp: capsules.margin_loss(eye(3), full((3, 1), .5)),
         ValueError, r"shape \(batch=3, classes=1\) to match y_pred, got shape \(3, 3\)",
         label="issue-broadcast"),
    # a non-prefix mask that the CRF rejects
    Case("kexue.layers.masking.MaskedBiRNN", "mask",
         lambda mp, tmp: masking.MaskedBiRNN(keras.layers.GRU(2, return_sequences=True))(
             [X3, array([[1, 0, 1, 0, 0], [1, 1, 1, 1, 1]], F)]),
         ValueError, "prefix mask", label="issue-non-prefix"),
    Case("kexue.layers.crf.viterbi_decode", "emissions",
         lambda mp, tmp: crf.viterbi_decode(full((3, 4), nan), zeros((4, 4))),
         ValueError, "NaN", label="issue-nan"),
    Case("kexue.stats.angle_pdf", "theta", lambda mp, tmp: stats.angle_pdf(None, 3),
         TypeError, "real numbers", label="issue-None"),
    Case("kexue.text.decode_all", "batch_size",
         lambda mp, tmp: text.decode_all([zeros((2, 4))], lambda e, n: [[0, 0]], batch_size=-1),
         ValueError, ">= 1", label="issue-negative"),
    Case("kexue.data.load_imdb", "maxlen", lambda mp, tmp: data.load_imdb(maxlen=True),
         TypeError, "positive integer", label="issue-bool"),
    Case("kexue.layers.memm.MEMM", "bidirectional",
         lambda mp, tmp: memm.MEMM(4, bidirectional="no"), TypeError, "True or False",
         label="issue-'no'"),
    # obscure errors: a Python-list mask that is not a (batch, T) mask
    Case("kexue.layers.crf.crf_log_norm", "mask",
         lambda mp, tmp: crf.crf_log_norm(EM, TRANS, [[1, 1], [1, 1, 1]]),
         TypeError, "array", label="issue-list-mask"),
    Case("kexue.layers.masking.masked_mean", "mask",
         lambda mp, tmp: masking.masked_mean(X3, [[1, 1, 0], [1, 1, 1]]),
         ValueError, r"shape \(batch=2, T=5\)", label="issue-list-mask"),
]
CASES += ISSUE

# ------------------------------------------------------------------------------ kexue.runtime

case("kexue.runtime.scale", "KEXUE_SCALE", ValueError, "'smoke', 'book', 'full'")(
    lambda mp, tmp: (mp.setenv("KEXUE_SCALE", "huge"), runtime.scale()))
bad("kexue.runtime.pick", "full", TypeError, lambda: runtime.pick(smoke=1, book=2))
bad("kexue.runtime.work", "full", TypeError, lambda: runtime.work(smoke=1, book=2),
    label="missing")
bad("kexue.runtime.work", "book", ValueError, lambda: runtime.work(smoke=1, book=0, full=3),
    "positive number", label="zero")
bad("kexue.runtime.work", "full", ValueError,
    lambda: runtime.work(smoke=1, book=2, full=float("inf")), "positive number", label="inf")
bad("kexue.runtime.work", "smoke", TypeError, lambda: runtime.work(smoke="1", book=2, full=3),
    "positive number", label="string")
bad("kexue.runtime.seed", "seed", ValueError, lambda: runtime.seed(-1), label="negative")
bad("kexue.runtime.seed", "seed", ValueError, lambda: runtime.seed(1.5), label="float")
bad("kexue.runtime.seed", "seed", ValueError, lambda: runtime.seed(True), label="bool")
bad("kexue.runtime.glue", "name", ValueError, lambda: runtime.glue("two words", 1))
bad("kexue.runtime.glue", "display", TypeError, lambda: runtime.glue("x", 1, display="yes"))

# --------------------------------------------------------------------------------- kexue.data

bad("kexue.data.DataFile", "name", TypeError, lambda: data.DataFile(3, "http://x", None))
bad("kexue.data.DataFile", "sha256", ValueError, lambda: data.DataFile("a/b", "http://x", "xyz"))
bad("kexue.data.sha256sum", "chunk", TypeError, lambda: data.sha256sum(__file__, chunk=1.5),
    label="float")
bad("kexue.data.sha256sum", "path", TypeError, lambda: data.sha256sum(None))
bad("kexue.data.fetch", "name", KeyError, lambda: data.fetch("mnist/nope.gz"), "not a registered")
bad("kexue.data.fetch", "name", TypeError, lambda: data.fetch(3), label="type")
bad("kexue.data.fetch", "download", TypeError,
    lambda: data.fetch("mnist/train-labels-idx1-ubyte.gz", download="no"))
bad("kexue.data.read_idx", "path", TypeError, lambda: data.read_idx(None))
case("kexue.data.read_idx", "path", ValueError, "unsigned-byte IDX", label="header")(
    lambda mp, tmp: data.read_idx(idx_file(tmp)))
bad("kexue.data.tokenize", "text", TypeError, lambda: data.tokenize(None))
bad("kexue.data.tokenize", "text", TypeError, lambda: data.tokenize(b"bytes"), label="bytes")
bad("kexue.data.load_imdb", "num_words", ValueError, lambda: data.load_imdb(num_words=3),
    "> index_from=3")
bad("kexue.data.load_imdb", "maxlen", ValueError, lambda: data.load_imdb(maxlen=0), label="zero")
bad("kexue.data.load_imdb", "seed", ValueError, lambda: data.load_imdb(seed=-1))
bad("kexue.data.load_imdb", "skip_top", TypeError, lambda: data.load_imdb(skip_top="1"))
bad("kexue.data.load_icwb2", "corpus", ValueError, lambda: data.load_icwb2("xx"), "one of")
bad("kexue.data.load_icwb2", "corpus", ValueError, lambda: data.load_icwb2(["pku"]),
    label="list")
bad("kexue.data.load_icwb2", "split", ValueError, lambda: data.load_icwb2("pku", "dev"))
bad("kexue.data.load_cws", "test_fraction", ValueError, lambda: data.load_cws(test_fraction=1.0))
bad("kexue.data.load_cws", "test_fraction", ValueError,
    lambda: data.load_cws(test_fraction=nan), label="nan")
bad("kexue.data.load_cws", "official", TypeError, lambda: data.load_cws(official="yes"))
bad("kexue.data.load_cws", "corpus", ValueError, lambda: data.load_cws("xx"))
bad("kexue.data.load_cws", "seed", ValueError, lambda: data.load_cws(seed=-3))

# -------------------------------------------------------------------------------- kexue.stats

bad("kexue.stats.angle_pdf", "theta", TypeError, lambda: stats.angle_pdf("abc", 3), label="str")
bad("kexue.stats.angle_pdf", "theta", ValueError, lambda: stats.angle_pdf(nan, 3), "NaN",
    label="nan")
bad("kexue.stats.angle_pdf", "n", ValueError, lambda: stats.angle_pdf(1.0, 1), ">= 2")
bad("kexue.stats.angle_cdf", "theta", ValueError, lambda: stats.angle_cdf([0.1, nan], 3), "NaN")
bad("kexue.stats.angle_cdf", "n", TypeError, lambda: stats.angle_cdf(1.0, 2.5))
bad("kexue.stats.angle_sf", "theta", ValueError, lambda: stats.angle_sf([nan], 3), "NaN")
bad("kexue.stats.angle_sf", "n", ValueError, lambda: stats.angle_sf(1.0, 0))
bad("kexue.stats.cos_pdf", "eta", TypeError, lambda: stats.cos_pdf(None, 3))
bad("kexue.stats.cos_pdf", "n", TypeError, lambda: stats.cos_pdf(0.1, True))
bad("kexue.stats.angle_variance", "n", ValueError, lambda: stats.angle_variance(1))
bad("kexue.stats.angle_variance", "n", TypeError, lambda: stats.angle_variance(2.0),
    label="float")
bad("kexue.stats.angle_variance_quad", "n", ValueError, lambda: stats.angle_variance_quad(0))
bad("kexue.stats.sample_cosines", "n", ValueError, lambda: stats.sample_cosines(1, 5))
bad("kexue.stats.sample_cosines", "num", ValueError, lambda: stats.sample_cosines(3, -1))
bad("kexue.stats.sample_cosines", "dist", ValueError,
    lambda: stats.sample_cosines(3, 5, dist="cauchy"))
bad("kexue.stats.sample_cosines", "chunk", ValueError, lambda: stats.sample_cosines(3, 5, chunk=0))
bad("kexue.stats.sample_cosines", "seed", ValueError, lambda: stats.sample_cosines(3, 5, seed=-2))
bad("kexue.stats.sample_angles", "num", TypeError, lambda: stats.sample_angles(3, 2.0))
bad("kexue.stats.sample_angles", "dist", ValueError, lambda: stats.sample_angles(3, 2, dist=None))
bad("kexue.stats.laplace_curvature", "at", ValueError, lambda: stats.laplace_curvature(3, at=0.0))
bad("kexue.stats.laplace_curvature", "at", ValueError, lambda: stats.laplace_curvature(3, at=nan),
    label="nan")
bad("kexue.stats.laplace_curvature", "n", ValueError, lambda: stats.laplace_curvature(1))

# ----------------------------------------------------------------------------- kexue.training

bad("kexue.training.GradientAccumulator", "steps", ValueError,
    lambda: training.GradientAccumulator(keras.optimizers.SGD(), steps=0))
bad("kexue.training.GradientAccumulator", "steps", TypeError,
    lambda: training.GradientAccumulator(keras.optimizers.SGD(), steps=1.5), label="float")
bad("kexue.training.GradientAccumulator", "optimizer", TypeError,
    lambda: training.GradientAccumulator("adam", steps=2))


def _grads(**kw):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    args = dict(model=model, loss_fn=keras.losses.MeanSquaredError(), x=zeros((4, 2), F),
                y=zeros((4, 1), F), sizes=[2, 2])
    args.update(kw)
    return training.average_micro_batch_grads(**args)


bad("kexue.training.average_micro_batch_grads", "sizes", ValueError, lambda: _grads(sizes=[0, 4]),
    "positive", tf_only=True)
bad("kexue.training.average_micro_batch_grads", "sizes", ValueError,
    lambda: _grads(sizes=[1.5, 2.5]), "positive", label="float", tf_only=True)
bad("kexue.training.average_micro_batch_grads", "sizes", ValueError, lambda: _grads(sizes=[1, 2]),
    "add up", label="sum", tf_only=True)
bad("kexue.training.average_micro_batch_grads", "weighting", ValueError,
    lambda: _grads(weighting="median"), tf_only=True)
bad("kexue.training.average_micro_batch_grads", "loss_fn", TypeError,
    lambda: _grads(loss_fn="mse"), tf_only=True)
bad("kexue.training.BatchLossHistory", "key", TypeError, lambda: training.BatchLossHistory(3))
bad("kexue.training.recompute", "fn", TypeError, lambda: training.recompute(3), "callable")
bad("kexue.training.Recompute", "enabled", TypeError,
    lambda: training.Recompute(keras.layers.Dense(2), enabled="yes"))
bad("kexue.training.Recompute", "preserve_rng_state", TypeError,
    lambda: training.Recompute(keras.layers.Dense(2), preserve_rng_state=1))
bad("kexue.training.Recompute", "layer", TypeError, lambda: training.Recompute("dense"))
bad("kexue.training.residual_block", "width", ValueError, lambda: training.residual_block(0))
bad("kexue.training.residual_block", "dropout", ValueError,
    lambda: training.residual_block(4, dropout=1.0))
bad("kexue.training.residual_block", "dropout", TypeError,
    lambda: training.residual_block(4, dropout="0.1"), label="str")
bad("kexue.training.residual_mlp", "mode", ValueError,
    lambda: training.residual_mlp(4, 2, 1, 4, mode="all"))
bad("kexue.training.residual_mlp", "depth", ValueError, lambda: training.residual_mlp(4, 2, 0, 4))
bad("kexue.training.residual_mlp", "dropout", ValueError,
    lambda: training.residual_mlp(4, 2, 1, 4, dropout=nan))
bad("kexue.training.residual_mlp", "preserve_rng_state", TypeError,
    lambda: training.residual_mlp(4, 2, 1, 4, preserve_rng_state="no"))
bad("kexue.training.peak_rss_mb", "batches", ValueError, lambda: training.peak_rss_mb("none", [0]))
bad("kexue.training.peak_rss_mb", "batches", ValueError, lambda: training.peak_rss_mb("none", 8),
    label="int")
bad("kexue.training.peak_rss_mb", "mode", ValueError, lambda: training.peak_rss_mb("x", [8]))
bad("kexue.training.peak_rss_mb", "depth", ValueError,
    lambda: training.peak_rss_mb("none", [8], depth=0))
bad("kexue.training.peak_rss_mb", "timeout", ValueError,
    lambda: training.peak_rss_mb("none", [8], timeout=-1))
bad("kexue.training.max_batch_under", "cap_mb", ValueError,
    lambda: training.max_batch_under(nan, [1, 2], [10, 20]))
bad("kexue.training.max_batch_under", "peaks_mb", ValueError,
    lambda: training.max_batch_under(100, [1, 2], [10, nan]))
bad("kexue.training.max_batch_under", "batches", ValueError,
    lambda: training.max_batch_under(100, [1, 1], [10, 20]), "distinct")
bad("kexue.training.peak_rss_curves", "modes", ValueError,
    lambda: training.peak_rss_curves("none", [8]))
bad("kexue.training.peak_rss_curves", "modes", ValueError,
    lambda: training.peak_rss_curves(["x"], [8]), label="unknown")
bad("kexue.training.peak_rss_curves", "workers", ValueError,
    lambda: training.peak_rss_curves(["none"], [8], workers=0))

# --------------------------------------------------------------------------- kexue.optimizers

bad("kexue.optimizers.idiv", "C", ValueError,
    lambda: optimizers.idiv(-np.ones((2, 2)), np.ones(2), np.ones(2)))
bad("kexue.optimizers.idiv", "a", ValueError,
    lambda: optimizers.idiv(np.ones((2, 2)), np.ones(3), np.ones(2)), "shapes")
bad("kexue.optimizers.idiv", "a", ValueError,
    lambda: optimizers.idiv(np.ones((2, 2)), array([1, nan]), np.ones(2)), label="nan")
bad("kexue.optimizers.idiv", "b", ValueError,
    lambda: optimizers.idiv(np.ones((2, 2)), np.ones(2), zeros(2)), "positive")
bad("kexue.optimizers.rank1_idiv", "C", ValueError, lambda: optimizers.rank1_idiv(np.ones(3)))
bad("kexue.optimizers.rank1_idiv", "C", ValueError, lambda: optimizers.rank1_idiv(zeros((2, 2))),
    "positive total", label="zero")
bad("kexue.optimizers.rank1_idiv", "C", ValueError,
    lambda: optimizers.rank1_idiv(full((2, 2), nan)), label="nan")
bad("kexue.optimizers.rank1_idiv", "C", TypeError, lambda: optimizers.rank1_idiv("C"),
    label="str")
bad("kexue.optimizers.ema_weights", "betas", ValueError, lambda: optimizers.ema_weights([]))
bad("kexue.optimizers.ema_weights", "betas", ValueError, lambda: optimizers.ema_weights([1.5]),
    r"\[0, 1\]", label="range")
bad("kexue.optimizers.ema_weights", "betas", ValueError, lambda: optimizers.ema_weights([nan]),
    label="nan")
bad("kexue.optimizers.slot_floats", "optimizer", TypeError, lambda: optimizers.slot_floats("adam"))
bad("kexue.optimizers.slot_floats", "optimizer", ValueError,
    lambda: optimizers.slot_floats(keras.optimizers.Adam()), "not built", label="unbuilt")
bad("kexue.optimizers.AdaFactor", "decay_c", ValueError, lambda: optimizers.AdaFactor(decay_c=0))
bad("kexue.optimizers.AdaFactor", "decay_c", TypeError, lambda: optimizers.AdaFactor(decay_c="1"),
    label="str")
bad("kexue.optimizers.AdaFactor", "relative_step", TypeError,
    lambda: optimizers.AdaFactor(relative_step="yes"))
bad("kexue.optimizers.AdaFactor", "beta1", ValueError, lambda: optimizers.AdaFactor(beta1=1.0))
bad("kexue.optimizers.AdaFactor", "epsilon1", ValueError,
    lambda: optimizers.AdaFactor(epsilon1=-1.0))
bad("kexue.optimizers.AdaFactor", "clip_threshold", ValueError,
    lambda: optimizers.AdaFactor(clip_threshold=0.0))
bad("kexue.optimizers.AdaFactor", "min_dim_size_to_factor", ValueError,
    lambda: optimizers.AdaFactor(min_dim_size_to_factor=-1))
bad("kexue.optimizers.AdaFactor", "learning_rate", ValueError,
    lambda: optimizers.AdaFactor(learning_rate=-1.0))

# ------------------------------------------------------------------------- kexue.layers.core

bad("kexue.layers.core.TwoDense", "hidden_dim", ValueError, lambda: core.TwoDense(0, 3))
bad("kexue.layers.core.TwoDense", "output_dim", TypeError, lambda: core.TwoDense(3, 2.5))
bad("kexue.layers.core.TwoDense", "hidden_activation", ValueError,
    lambda: core.TwoDense(3, 3, hidden_activation="nope"))
bad("kexue.layers.core.ClassCenters", "num_classes", ValueError, lambda: core.ClassCenters(0, 2))
bad("kexue.layers.core.ClassCenters", "features", ValueError,
    lambda: core.ClassCenters(3, 2)([zeros((2, 5), F), zeros(2, "int32")]),
    r"shape \(batch, feature_dim=2\)")
bad("kexue.layers.core.ClassCenters", "labels", ValueError,
    lambda: core.ClassCenters(3, 2)([zeros((2, 2), F), array([0, 5])]), r"\[0, 3\), got 5",
    label="range")
bad("kexue.layers.core.ClassCenters", "labels", ValueError,
    lambda: core.ClassCenters(3, 2)([zeros((2, 2), F), array([0, 1, 2])]), "batch=2",
    label="batch")
bad("kexue.layers.core.ClassCenters", "inputs", ValueError,
    lambda: core.ClassCenters(3, 2)(zeros((2, 2), F)), r"\[features, labels\]")
bad("kexue.layers.core.TiedDense", "embedding", TypeError,
    lambda: core.TiedDense(keras.layers.Dense(3)))
bad("kexue.layers.core.TiedDense", "inputs", ValueError,
    lambda: core.TiedDense(keras.layers.Embedding(5, 4))(zeros((2, 3), F)), "output_dim")
bad("kexue.layers.core.TiedDense", "use_bias", TypeError,
    lambda: core.TiedDense(keras.layers.Embedding(5, 4), use_bias="no"))
bad("kexue.layers.core.TiedDense", "activation", ValueError,
    lambda: core.TiedDense(keras.layers.Embedding(5, 4), activation="nope"))

# -------------------------------------------------------------------------- kexue.layers.crf

C = "kexue.layers.crf."
bad(C + "check_chain_inputs", "emissions", ValueError, lambda: crf.check_chain_inputs(zeros((3, 4))),
    r"shape \(batch, time, tags\)")
bad(C + "check_chain_inputs", "emissions", TypeError,
    lambda: crf.check_chain_inputs(zeros((2, 3, 4), "int32")), "float", label="dtype")
bad(C + "check_chain_inputs", "emissions", ValueError,
    lambda: crf.check_chain_inputs(zeros((2, 0, 4), F)), "one time step", label="empty")
bad(C + "check_chain_inputs", "trans", ValueError,
    lambda: crf.check_chain_inputs(EM, zeros((3, 3))), r"\(tags=4, tags=4\)")
bad(C + "check_chain_inputs", "mask", ValueError,
    lambda: crf.check_chain_inputs(EM, mask=array([[1, 0, 1], [1, 1, 1]])), "prefix")
bad(C + "check_chain_inputs", "tags", ValueError,
    lambda: crf.check_chain_inputs(EM, tags=full((2, 3), 4)), r"\[0, 4\)")
bad(C + "check_chain_inputs", "tags", ValueError,
    lambda: crf.check_chain_inputs(EM, tags=full((2, 3), -1), mask=MASK), r"\[0, 4\)",
    label="negative")
bad(C + "mask_from_labels", "y_true", ValueError, lambda: crf.mask_from_labels(zeros((2, 3, 1))))
bad(C + "mask_from_labels", "pad_label", TypeError,
    lambda: crf.mask_from_labels(TAGS, pad_label=-1.5))
bad(C + "mask_from_labels", "y_true", TypeError, lambda: crf.mask_from_labels("abc"), label="str")
bad(C + "crf_path_score", "tags", ValueError,
    lambda: crf.crf_path_score(EM, zeros((2, 4), "int32"), TRANS), r"\(batch=2, time=3\)")
bad(C + "crf_path_score", "tags", ValueError,
    lambda: crf.crf_path_score(EM, array([[0, 1, 2], [3, 4, 0]]), TRANS), r"got 4",
    label="range")
bad(C + "crf_path_score", "tags", ValueError,
    lambda: crf.crf_path_score(EM, full((2, 3), 0.5), TRANS), r"integers", label="fraction")
bad(C + "crf_log_norm", "trans", ValueError, lambda: crf.crf_log_norm(EM, zeros((4, 3))))
bad(C + "crf_log_norm", "trans", TypeError, lambda: crf.crf_log_norm(EM, None), label="None")
bad(C + "crf_path_score", "tags", TypeError, lambda: crf.crf_path_score(EM, None, TRANS),
    label="None")
bad(C + "viterbi_decode", "trans", ValueError,
    lambda: crf.viterbi_decode(EM, full((4, 4), nan)), "NaN", label="nan")
bad(C + "crf_nll", "mask", ValueError,
    lambda: crf.crf_nll(zeros((0, 3, 4), F), zeros((0, 3), "int32"), TRANS, MASK),
    r"\(batch=0, time=3\) to match emissions", label="batch")
bad(C + "crf_log_norm", "mask", ValueError,
    lambda: crf.crf_log_norm(EM, TRANS, array([[0, 0, 0], [1, 1, 1]])), "real position")
bad(C + "crf_log_norm", "emissions", TypeError, lambda: crf.crf_log_norm(None, TRANS), label="None")
bad(C + "crf_nll", "mask", ValueError, lambda: crf.crf_nll(EM, TAGS, TRANS, zeros((3, 3))),
    r"\(batch=2, time=3\)")
bad(C + "crf_marginals", "emissions", TypeError, lambda: crf.crf_marginals(None, TRANS))
bad(C + "crf_marginals", "mask", ValueError,
    lambda: crf.crf_marginals(EM, TRANS, full((2, 3), 2.0)), "0/1")
bad(C + "viterbi", "lengths", ValueError, lambda: crf.viterbi(EM, TRANS, [0, 3]), r"\[1, 4\)")
bad(C + "viterbi", "lengths", ValueError, lambda: crf.viterbi(EM, TRANS, [1.5, 3]), "integers",
    label="fraction")
bad(C + "viterbi", "pairwise", ValueError, lambda: crf.viterbi(EM, zeros((3, 3))))
bad(C + "viterbi", "unary", ValueError, lambda: crf.viterbi(full((1, 2, 2), nan), zeros((2, 2))),
    "NaN")
bad(C + "viterbi", "unary", ValueError, lambda: crf.viterbi(zeros((1, 0, 2)), zeros((2, 2))),
    "empty", label="empty")
bad(C + "viterbi_decode", "lengths", ValueError,
    lambda: crf.viterbi_decode(EM, TRANS, lengths=[0, 3]))
bad(C + "viterbi_decode", "lengths", ValueError,
    lambda: crf.viterbi_decode(EM, TRANS, lengths=[3]), r"shape \(2,\)", label="count")
bad(C + "viterbi_decode", "allowed_start", ValueError,
    lambda: crf.viterbi_decode(EM, TRANS, allowed_start=[7]), r"\[0, 4\)")
bad(C + "viterbi_decode", "allowed_end", TypeError,
    lambda: crf.viterbi_decode(EM, TRANS, allowed_end=3))
bad(C + "viterbi_decode", "trans", ValueError, lambda: crf.viterbi_decode(EM, zeros((3, 3))))
bad(C + "all_paths", "length", ValueError, lambda: crf.all_paths(0, 3))
bad(C + "all_paths", "num_tags", TypeError, lambda: crf.all_paths(3, 1.5))
bad(C + "brute_force_scores", "emissions", ValueError,
    lambda: crf.brute_force_scores(EM, TRANS), r"\(time, tags\)")
bad(C + "brute_force_scores", "trans", ValueError,
    lambda: crf.brute_force_scores(zeros((3, 4)), zeros((3, 3))))
bad(C + "TaggingHead", "num_tags", ValueError, lambda: crf.TaggingHead(1), ">= 2")
bad(C + "TaggingHead", "pad_label", ValueError, lambda: crf.TaggingHead(4, pad_label=0),
    "outside")
bad(C + "TaggingHead", "pad_label", ValueError, lambda: crf.TaggingHead(4, pad_label=-1.5),
    label="float")
bad(C + "SoftmaxTagger", "y_true", ValueError,
    lambda: head(crf.SoftmaxTagger).loss(full((2, 3), 4), EM), r"\[0, 4\)", label="loss")
bad(C + "SoftmaxTagger", "y_pred", ValueError,
    lambda: head(crf.SoftmaxTagger).loss(TAGS, zeros((2, 3, 5), F)), r"tags=4", label="width")
bad(C + "SoftmaxTagger", "lengths", ValueError,
    lambda: head(crf.SoftmaxTagger).decode(EM, lengths=[9, 1]), label="decode")
bad(C + "TaggingLoss", "head", TypeError, lambda: crf.TaggingLoss("crf"))
bad(C + "TaggingLoss", "head", ValueError,
    lambda: crf.TaggingLoss(crf.CRF(4))(TAGS, EM), "not built", label="unbuilt")
bad(C + "TaggingLoss", "y_true", ValueError,
    lambda: crf.TaggingLoss(head(crf.SoftmaxTagger))(full((2, 3), 4), EM), r"\[0, 4\)",
    label="range")
bad(C + "CRF", "lr_multiplier", ValueError, lambda: crf.CRF(4, lr_multiplier=0))
bad(C + "CRF", "num_tags", TypeError, lambda: crf.CRF("4"))
bad(C + "CRF", "trans", ValueError, lambda: head(crf.CRF).set_transitions(zeros((3, 3))),
    label="set_transitions")
bad(C + "CRF", "y_true", ValueError, lambda: head(crf.CRF).loss(full((2, 3), 9), EM),
    r"\[0, 4\)", label="loss")
bad(C + "CRF", "allowed_start", ValueError,
    lambda: head(crf.CRF).decode(EM, allowed_start=[4]), label="decode")

# ---------------------------------------------------------------------- kexue.layers.masking

M = "kexue.layers.masking."
bad(M + "very_negative", "dtype", TypeError, lambda: masking.very_negative("string"))
bad(M + "very_negative", "dtype", TypeError, lambda: masking.very_negative("bool"), label="bool")
bad(M + "very_negative", "dtype", TypeError, lambda: masking.very_negative(3), label="int")
bad(M + "padding_mask", "ids", ValueError, lambda: masking.padding_mask(zeros(3)))
bad(M + "padding_mask", "pad_id", TypeError, lambda: masking.padding_mask(TAGS, pad_id=0.5))
bad(M + "padding_mask", "ids", TypeError, lambda: masking.padding_mask([["a", "b"]]), label="str")
bad(M + "masked_mean", "axis", ValueError, lambda: masking.masked_mean(X3, M5, axis=2))
bad(M + "masked_mean", "axis", ValueError, lambda: masking.masked_mean(X3, M5, axis=True),
    label="bool")
bad(M + "masked_mean", "mask", ValueError, lambda: masking.masked_mean(X3, M5 * 2), "0/1",
    label="values")
bad(M + "masked_mean", "mask", ValueError, lambda: masking.masked_mean(X3, None), label="None")
bad(M + "masked_mean", "x", TypeError, lambda: masking.masked_mean(zeros((2, 5), bool), M5),
    label="bool")
bad(M + "masked_max", "mask", ValueError, lambda: masking.masked_max(X3, np.ones((2, 5, 3, 1))),
    r"\(batch, T\)")
bad(M + "masked_max", "mask", ValueError, lambda: masking.masked_max(X3, np.ones((3, 5))),
    r"batch=2", label="batch")
bad(M + "masked_max", "x", ValueError, lambda: masking.masked_max(zeros(5, F), M5), label="rank")
bad(M + "masked_softmax", "mask", ValueError,
    lambda: masking.masked_softmax(zeros((2, 5), F), np.ones((2, 4))))
bad(M + "masked_softmax", "logits", TypeError,
    lambda: masking.masked_softmax(zeros((2, 5), "int32"), M5), "float")
bad(M + "masked_softmax", "axis", ValueError,
    lambda: masking.masked_softmax(zeros((2, 5), F), M5, axis="1"))
bad(M + "masked_softmax", "mask", ValueError,
    lambda: masking.masked_softmax(zeros((2, 5), F), M5 - 0.5), "0/1", label="values")
bad(M + "reverse_valid", "lengths", ValueError, lambda: masking.reverse_valid(X3, [2, 6]),
    r"\[0, 6\)", label="range")
bad(M + "reverse_valid", "lengths", ValueError, lambda: masking.reverse_valid(X3, [2.5, 1]),
    "integers", label="fraction")
bad(M + "reverse_valid", "x", ValueError, lambda: masking.reverse_valid(zeros(3), [1]))
bad(M + "reverse_valid", "lengths", ValueError, lambda: masking.reverse_valid(X3, np.ones((2, 1))),
    label="rank")
bad(M + "MaskedGlobalAveragePooling1D", "inputs", ValueError,
    lambda: masking.MaskedGlobalAveragePooling1D()(zeros((2, 3), F)), r"\(batch, T, d\)")
bad(M + "MaskedGlobalAveragePooling1D", "mask", ValueError,
    lambda: masking.MaskedGlobalAveragePooling1D()(X3, mask=np.ones((2, 4))), "T=5")
bad(M + "MaskedGlobalMaxPooling1D", "inputs", ValueError,
    lambda: masking.MaskedGlobalMaxPooling1D()(zeros((2, 3), F)))
bad(M + "MaskedGlobalMaxPooling1D", "mask", ValueError,
    lambda: masking.MaskedGlobalMaxPooling1D()(X3, mask=full((2, 5), 3.0)), "0/1")
bad(M + "MaskedSoftmax", "mask", ValueError,
    lambda: masking.MaskedSoftmax()(zeros((2, 5), F), mask=np.ones((2, 4))))
bad(M + "MaskedBiRNN", "rnn", ValueError, lambda: masking.MaskedBiRNN(keras.layers.LSTM(3)),
    "return_sequences")
bad(M + "MaskedBiRNN", "rnn", TypeError, lambda: masking.MaskedBiRNN(keras.layers.Dense(3)),
    label="type")
bad(M + "MaskedBiRNN", "merge_mode", ValueError,
    lambda: masking.MaskedBiRNN(keras.layers.LSTM(3, return_sequences=True), merge_mode="mul"))
bad(M + "MaskedBiRNN", "inputs", ValueError,
    lambda: masking.MaskedBiRNN(keras.layers.GRU(2, return_sequences=True))(X3), r"\[x, mask\]")
bad(M + "MaskedBiRNN", "mask", ValueError,
    lambda: masking.MaskedBiRNN(keras.layers.GRU(2, return_sequences=True))(
        [X3, np.ones((2, 4))]), "T=5", label="shape")

# ------------------------------------------------------------------------- kexue.layers.memm

E = "kexue.layers.memm."
bad(E + "memm_logits", "trans R", ValueError,
    lambda: memm.memm_logits(EM, TAGS, (zeros((4, 2)), zeros((4, 1)))), r"rank=2")
bad(E + "memm_logits", "trans", ValueError,
    lambda: memm.memm_logits(EM, TAGS, (zeros((4, 2)),)), "pair", label="pair")
bad(E + "memm_logits", "reverse", TypeError,
    lambda: memm.memm_logits(EM, TAGS, TRANS, reverse="yes"))
bad(E + "memm_logits", "tags", ValueError, lambda: memm.memm_logits(EM, full((2, 3), 7), TRANS),
    r"\[0, 4\)")
bad(E + "memm_nll", "tags", TypeError, lambda: memm.memm_nll(EM, None, TRANS), label="None")
bad(E + "memm_nll", "reduction", ValueError,
    lambda: memm.memm_nll(EM, TAGS, TRANS, reduction="avg"))
bad(E + "memm_nll", "bidirectional", TypeError,
    lambda: memm.memm_nll(EM, TAGS, TRANS, bidirectional="yes"))
bad(E + "memm_nll", "tags", ValueError, lambda: memm.memm_nll(EM, full((2, 3), 4), TRANS, MASK),
    r"\[0, 4\)")
bad(E + "memm_sequence_log_prob", "mask", ValueError,
    lambda: memm.memm_sequence_log_prob(EM, TAGS, TRANS, array([[1, 0, 1], [1, 1, 1]])), "prefix")
bad(E + "memm_sequence_log_prob", "tags", ValueError,
    lambda: memm.memm_sequence_log_prob(EM, zeros((2, 2), "int32"), TRANS), "time=3")
bad(E + "memm_viterbi", "emissions", ValueError,
    lambda: memm.memm_viterbi(full((1, 2, 4), nan), TRANS), "NaN")
bad(E + "memm_viterbi", "exact", TypeError, lambda: memm.memm_viterbi(EM, TRANS, exact="yes"))
bad(E + "memm_viterbi", "lengths", ValueError, lambda: memm.memm_viterbi(EM, TRANS, [0, 1]))
bad(E + "memm_viterbi", "trans", ValueError, lambda: memm.memm_viterbi(EM, zeros((3, 3))))
bad(E + "MEMM", "rank", ValueError, lambda: memm.MEMM(4, rank=0))
bad(E + "MEMM", "lr_multiplier", ValueError, lambda: memm.MEMM(4, lr_multiplier=-1.0))
bad(E + "MEMM", "bidirectional", TypeError, lambda: memm.MEMM(4, bidirectional=1), label="int")
bad(E + "MEMM", "y_true", ValueError, lambda: head(memm.MEMM).loss(full((2, 3), 5), EM),
    r"\[0, 4\)", label="loss")
bad(E + "MEMM", "lengths", ValueError, lambda: head(memm.MEMM).decode(EM, lengths=[4, 1]),
    label="decode")

# ------------------------------------------------------------------------ kexue.layers.reuse

R = "kexue.layers.reuse."
bad(R + "features_of", "model", TypeError, lambda: reuse.features_of("model", "a"))
bad(R + "features_of", "model", ValueError, lambda: reuse.features_of(seq_model(False), "a"),
    "not built", label="unbuilt")
bad(R + "features_of", "model", TypeError, lambda: reuse.features_of(Subclassed(), "a"),
    "not a functional model", label="subclassed")
bad(R + "features_of", "layer_names", ValueError, lambda: reuse.features_of(functional(), []))
bad(R + "features_of", "layer_names", TypeError, lambda: reuse.features_of(functional(), [3]),
    label="int")
bad(R + "features_of", "layer_names", ValueError, lambda: reuse.features_of(functional(), "nope"),
    "no layer named", label="missing")
bad(R + "split_at", "start", ValueError, lambda: reuse.split_at(functional(), []))
bad(R + "split_at", "start", TypeError, lambda: reuse.split_at(seq_model(), 0), label="int")
bad(R + "split_at", "start", ValueError, lambda: reuse.split_at(seq_model(), "nope"),
    "no layer named", label="missing")
bad(R + "replace_layer", "new_layer", TypeError,
    lambda: reuse.replace_layer(functional(), "a", "dense"))
bad(R + "replace_layer", "layer_name", ValueError,
    lambda: reuse.replace_layer(functional(), "nope", keras.layers.Dense(3)), "no layer named")
bad(R + "insert_after", "new_layer", TypeError, lambda: reuse.insert_after(seq_model(), "a", None))
bad(R + "insert_after", "layer_name", TypeError,
    lambda: reuse.insert_after(functional(), 3, keras.layers.Dense(3)))
bad(R + "clone_with_weights", "model", TypeError, lambda: reuse.clone_with_weights("model"))

# -------------------------------------------------------------------------------- kexue.text

T = "kexue.text."
bad(T + "words_to_tags", "words", TypeError, lambda: text.words_to_tags("中国人"))
bad(T + "words_to_tags", "words", ValueError, lambda: text.words_to_tags(["a", ""]), "empty",
    label="empty")
bad(T + "words_to_tags", "words", TypeError, lambda: text.words_to_tags([1, 2]), label="ints")
bad(T + "tags_to_words", "tags", ValueError, lambda: text.tags_to_words("abc", [0, 1]),
    "same length")
bad(T + "tags_to_words", "tags", ValueError, lambda: text.tags_to_words("ab", [0, 7]),
    r"\[0, 4\)", label="range")
bad(T + "illegal_transitions", "tags", ValueError, lambda: text.illegal_transitions([0, 5]))
bad(T + "illegal_transitions", "check_ends", TypeError,
    lambda: text.illegal_transitions([0, 0], check_ends="no"))
bad(T + "chunk_words", "maxlen", ValueError, lambda: text.chunk_words(["ab"], 0))
bad(T + "chunk_words", "words", TypeError, lambda: text.chunk_words("abc", 2))
bad(T + "CharVocab", "chars", TypeError, lambda: text.CharVocab("ab"))
bad(T + "CharVocab", "chars", ValueError, lambda: text.CharVocab(["ab"]), label="multi-char")
bad(T + "CharVocab", "min_count", ValueError, lambda: text.CharVocab.fit([["a"]], min_count=0),
    label="fit")
bad(T + "CharVocab", "text", TypeError, lambda: vocab().encode(3), label="encode")
bad(T + "encode_batch", "vocab", TypeError, lambda: text.encode_batch(None, [["a"]]))
bad(T + "encode_batch", "sentences", ValueError, lambda: text.encode_batch(vocab(), []))
bad(T + "encode_batch", "maxlen", ValueError,
    lambda: text.encode_batch(vocab(), [["ab", "a"]], maxlen=2), "more than maxlen")
bad(T + "encode_batch", "pad_label", ValueError,
    lambda: text.encode_batch(vocab(), [["a"]], pad_label=0))
bad(T + "seg_scores", "pred", ValueError, lambda: text.seg_scores([["a"]], [["a"], ["b"]]),
    "gold sentences but 2 predicted")
bad(T + "seg_scores", "gold", TypeError, lambda: text.seg_scores(["ab"], ["ab"]), label="str")
bad(T + "seg_scores", "train_words", TypeError,
    lambda: text.seg_scores([["a"]], [["a"]], train_words=3))
bad(T + "conv_tagger", "head", TypeError, lambda: text.conv_tagger(10, "crf"))
bad(T + "conv_tagger", "depth", ValueError, lambda: text.conv_tagger(10, crf.CRF(4), depth=0))
bad(T + "conv_tagger", "vocab_size", ValueError, lambda: text.conv_tagger(0, crf.CRF(4)))
bad(T + "predict_emissions", "batch_size", ValueError,
    lambda: text.predict_emissions(lambda x: x, vocab(), ["ab"], batch_size=0))
bad(T + "predict_emissions", "texts", TypeError,
    lambda: text.predict_emissions(lambda x: x, vocab(), "ab"))
bad(T + "predict_emissions", "vocab", TypeError,
    lambda: text.predict_emissions(lambda x: x, None, ["ab"]))
bad(T + "decode_all", "decode", TypeError, lambda: text.decode_all([zeros((2, 4))], None))
bad(T + "decode_all", "emissions", ValueError, lambda: text.decode_all([zeros(4)], crf.CRF(4)),
    label="rank")
bad(T + "score_paths", "paths", ValueError, lambda: text.score_paths([["ab"]], []),
    "1 gold sentences but 0")
bad(T + "score_paths", "paths", ValueError, lambda: text.score_paths([["ab"]], [[1, 9]]),
    r"\[0, 4\)", label="range")
bad(T + "seg_scores", "match", ValueError,
    lambda: text.seg_scores([["a"]], [["a"]], match="diff"), "'spans', 'lcs'", label="match")
bad(T + "seg_scores", "pred", ValueError, lambda: text.seg_scores([["a"]], [["a", ""]]),
    "empty word", label="empty word")
bad(T + "score_paths", "match", ValueError,
    lambda: text.score_paths([["ab"]], [[1, 3]], match="LCS"), "'spans', 'lcs'", label="match")

# ------------------------------------------------------------------------------ kexue.losses

L = "kexue.losses."
bad(L + "smoothed_crossentropy", "epsilon", ValueError,
    lambda: losses.smoothed_crossentropy(eye(3), zeros((3, 3)), epsilon=1.0), r"\[0, 1\)")
bad(L + "smoothed_crossentropy", "y_true", ValueError,
    lambda: losses.smoothed_crossentropy(eye(3), zeros((3, 4))), r"n=4")
bad(L + "smoothed_crossentropy", "y_true", ValueError,
    lambda: losses.smoothed_crossentropy(5 * eye(3), zeros((3, 3))), r"\[0, 1\]", label="values")
bad(L + "smoothed_crossentropy", "logits", TypeError,
    lambda: losses.smoothed_crossentropy(eye(3), zeros((3, 3), "int32")), "float", label="dtype")
bad(L + "SmoothedCrossentropy", "epsilon", ValueError,
    lambda: losses.SmoothedCrossentropy(epsilon=-0.1))
bad(L + "SmoothedCrossentropy", "sparse", TypeError,
    lambda: losses.SmoothedCrossentropy(sparse="yes"))
bad(L + "SmoothedCrossentropy", "y_true", ValueError,
    lambda: losses.SmoothedCrossentropy(sparse=True)(zeros((2, 2)), zeros((2, 3))),
    "sparse labels", label="shape")
bad(L + "optimal_logit_gap", "n", ValueError, lambda: losses.optimal_logit_gap(1, 0.1))
bad(L + "optimal_logit_gap", "epsilon", ValueError, lambda: losses.optimal_logit_gap(10, nan))
bad(L + "smoothed_ce_minimum", "n", TypeError, lambda: losses.smoothed_ce_minimum(1.5, 0.1))
bad(L + "smoothed_ce_minimum", "epsilon", TypeError,
    lambda: losses.smoothed_ce_minimum(10, "0.1"))
bad(L + "output_as_loss", "y_pred", ValueError, lambda: losses.output_as_loss(None, zeros(3)),
    r"\(batch, k\)")
bad(L + "output_as_loss", "y_pred", TypeError, lambda: losses.output_as_loss(None, None),
    label="None")

# ---------------------------------------------------------------------------- kexue.capsules

P = "kexue.capsules."
U = zeros((2, 3, 4, 5), F)
bad(P + "squash", "k", ValueError, lambda: capsules.squash(zeros((2, 3), F), k=0))
bad(P + "squash", "eps", ValueError, lambda: capsules.squash(zeros((2, 3), F), eps=-1.0))
bad(P + "squash", "axis", ValueError, lambda: capsules.squash(zeros((2, 3), F), axis=5))
bad(P + "squash", "x", TypeError, lambda: capsules.squash(zeros((2, 3), "int32")), "float")
bad(P + "route", "u_hat", ValueError, lambda: capsules.route(zeros((2, 3, 4), F)),
    "num_capsule")
bad(P + "route", "mode", ValueError, lambda: capsules.route(U, mode="x"), "routing mode")
bad(P + "route", "iterations", ValueError, lambda: capsules.route(U, iterations=0))
bad(P + "route", "return_coupling", TypeError, lambda: capsules.route(U, return_coupling="yes"))
bad(P + "Capsule", "num_capsule", ValueError, lambda: capsules.Capsule(0, 4))
bad(P + "Capsule", "routing", ValueError, lambda: capsules.Capsule(2, 4, routing="x"))
bad(P + "Capsule", "share_weights", TypeError, lambda: capsules.Capsule(2, 4, share_weights=1))
bad(P + "Capsule", "inputs", ValueError, lambda: capsules.Capsule(2, 4)(zeros((2, 3), F)))
bad(P + "CapsuleLength", "inputs", ValueError, lambda: capsules.CapsuleLength()(zeros(3, F)))
bad(P + "margin_loss", "m_plus", ValueError,
    lambda: capsules.margin_loss(eye(3), full((3, 3), .5, F), m_plus=2.0))
bad(P + "margin_loss", "y_true", ValueError,
    lambda: capsules.margin_loss(2 * eye(3), full((3, 3), .5, F)), r"\[0, 1\]", label="values")
bad(P + "MarginLoss", "m_minus", ValueError, lambda: capsules.MarginLoss(m_plus=0.1, m_minus=0.9))
bad(P + "MarginLoss", "lam", ValueError, lambda: capsules.MarginLoss(lam=-1))
bad(P + "cnn_trunk", "widths", ValueError, lambda: capsules.cnn_trunk((1, 2, 3)))
bad(P + "cnn_trunk", "widths", ValueError, lambda: capsules.cnn_trunk(64), label="int")
bad(P + "cnn_trunk", "widths", ValueError, lambda: capsules.cnn_trunk((1, 2, 3, True)),
    label="bool")
bad(P + "cnn_trunk", "name", TypeError, lambda: capsules.cnn_trunk(name=3))
bad(P + "gap_head", "channels", ValueError, lambda: capsules.gap_head(0))
bad(P + "gap_head", "num_classes", TypeError, lambda: capsules.gap_head(8, 1.5))
bad(P + "capsule_head", "channels", ValueError, lambda: capsules.capsule_head(0))
bad(P + "capsule_head", "routing", ValueError, lambda: capsules.capsule_head(8, routing="x"))
bad(P + "cnn_gap_classifier", "widths", ValueError, lambda: capsules.cnn_gap_classifier((1, 2)))
bad(P + "cnn_gap_classifier", "num_classes", ValueError,
    lambda: capsules.cnn_gap_classifier((4, 4, 4, 4), num_classes=0))
bad(P + "capsule_classifier", "widths", ValueError, lambda: capsules.capsule_classifier((0,) * 4))
bad(P + "capsule_classifier", "routings", ValueError,
    lambda: capsules.capsule_classifier((4, 4, 4, 4), routings=0))
bad(P + "shared_trunk_classifier", "heads", ValueError,
    lambda: capsules.shared_trunk_classifier(heads="cnn"))
bad(P + "shared_trunk_classifier", "head", ValueError,
    lambda: capsules.shared_trunk_classifier(heads=("cnn", "max")), label="unknown")
bad(P + "shared_trunk_classifier", "heads", ValueError,
    lambda: capsules.shared_trunk_classifier(heads=("cnn", "cnn")), "distinct", label="repeated")
bad(P + "make_pair_testset", "rng", TypeError,
    lambda: capsules.make_pair_testset(zeros((4, 28, 28)), zeros(4, int), 0))
bad(P + "make_pair_testset", "y", ValueError,
    lambda: capsules.make_pair_testset(zeros((4, 28, 28)), zeros(3, int),
                                       np.random.default_rng(0)))
bad(P + "make_pair_testset", "x", ValueError,
    lambda: capsules.make_pair_testset(zeros((4, 28)), zeros(4, int), np.random.default_rng(0)))
bad(P + "make_pair_testset", "y", TypeError,
    lambda: capsules.make_pair_testset(zeros((4, 28, 28)), zeros(4), np.random.default_rng(0)),
    "int", label="float")
bad(P + "pair_accuracy", "pairs", ValueError, lambda: capsules.pair_accuracy(eye(3), zeros((3, 3))))
bad(P + "pair_accuracy", "thr", ValueError,
    lambda: capsules.pair_accuracy(eye(3), zeros((3, 2), int), thr=nan))
bad(P + "pair_accuracy", "pairs", ValueError,
    lambda: capsules.pair_accuracy(eye(3), full((3, 2), 3)), r"\[0, 3\)", label="range")
bad(P + "pair_accuracy", "scores", ValueError,
    lambda: capsules.pair_accuracy(full((3, 3), nan), zeros((3, 2), int)), "finite")
bad(P + "smooth_max", "K", ValueError, lambda: capsules.smooth_max(zeros(3, F), K=0))
bad(P + "smooth_max", "axis", ValueError, lambda: capsules.smooth_max(zeros(3, F), axis=3))
bad(P + "smoothed_kmeans_loss", "V", ValueError,
    lambda: capsules.smoothed_kmeans_loss(np.ones((3, 2)), np.ones((2, 3))), "same d")
bad(P + "smoothed_kmeans_loss", "metric", ValueError,
    lambda: capsules.smoothed_kmeans_loss(np.ones((3, 2)), np.ones((2, 2)), metric="l1"))
bad(P + "smoothed_kmeans_loss", "K", ValueError,
    lambda: capsules.smoothed_kmeans_loss(np.ones((3, 2)), np.ones((2, 2)), K=-1.0))
bad(P + "soft_assign", "metric", ValueError,
    lambda: capsules.soft_assign(np.ones((3, 2)), np.ones((2, 2)), metric="cosine"))
bad(P + "soft_assign", "U", ValueError,
    lambda: capsules.soft_assign(full((3, 2), nan), np.ones((2, 2))), "finite")
bad(P + "soft_kmeans", "V0", ValueError,
    lambda: capsules.soft_kmeans(np.ones((3, 2)), np.ones((2, 3))), "same d")
bad(P + "soft_kmeans", "iters", ValueError,
    lambda: capsules.soft_kmeans(np.ones((3, 2)), np.ones((2, 2)), iters=0))
bad(P + "lloyd_kmeans", "iters", ValueError,
    lambda: capsules.lloyd_kmeans(np.ones((3, 2)), np.ones((2, 2)), iters=0))
bad(P + "lloyd_kmeans", "V0", ValueError,
    lambda: capsules.lloyd_kmeans(np.ones((3, 2)), np.ones((2, 3))))

# ---------------------------------------------------------------------- kexue.viz and report

bad("kexue.viz.format_number", "value", TypeError, lambda: viz.format_number([1, 2]))
bad("kexue.viz.format_number", "spec", TypeError, lambda: viz.format_number(1.5, spec=3))
bad("kexue.viz.table", "frame", TypeError, lambda: viz.table("x"))
bad("kexue.viz.table", "formats", ValueError, lambda: viz.table({"a": [1]}, {"b": ".2f"}),
    "does not have")
bad("kexue.viz.table", "wrap", ValueError, lambda: viz.table({"a": [1]}, wrap={"b": "3em"}))
bad("kexue.viz.table", "caption", TypeError, lambda: viz.table({"a": [1]}, caption=3))
bad("kexue.report.Rule", "kind", ValueError, lambda: report.Rule("around", 1.0))
bad("kexue.report.Rule", "a", ValueError, lambda: report.Rule("above", nan), label="nan")
bad("kexue.report.Rule", "b", ValueError, lambda: report.Rule("within", 1.0), label="missing")
bad("kexue.report.within", "tol", ValueError, lambda: report.within(1.0, 0.1, rel=0.1))
bad("kexue.report.within", "target", TypeError, lambda: report.within("1", 0.1))
bad("kexue.report.within", "tolerance", ValueError, lambda: report.within(1.0, -0.1),
    label="negative")
bad("kexue.report.above", "threshold", ValueError, lambda: report.above(nan))
bad("kexue.report.above", "threshold", TypeError, lambda: report.above("x"), label="str")
bad("kexue.report.below", "threshold", TypeError, lambda: report.below(None))
bad("kexue.report.between", "low", ValueError, lambda: report.between(2, 1), "low <= high")
bad("kexue.report.between", "high", ValueError, lambda: report.between(0, nan), label="nan")


def _claim(**kw):
    row = dict(claim="c", article="a", ours="1", scale="book", verdict="reproduced",
               rule="> 0", asserted=True)
    row.update(kw)
    return report.Claim(**row)


bad("kexue.report.Claim", "verdict", ValueError, lambda: _claim(verdict="maybe"))
bad("kexue.report.Claim", "asserted", TypeError, lambda: _claim(asserted="yes"))
bad("kexue.report.Claim", "claim", ValueError, lambda: _claim(claim=""))
bad("kexue.report.ClaimsTable", "rows", TypeError, lambda: report.ClaimsTable("x", "book"))
bad("kexue.report.ClaimsTable", "scale", ValueError, lambda: report.ClaimsTable([], "huge"))
bad("kexue.report.Claims", "article", ValueError, lambda: report.Claims(""))
bad("kexue.report.Claims", "scale", ValueError, lambda: report.Claims("a", scale="huge"))
bad("kexue.report.Claims", "ours", ValueError,
    lambda: report.Claims("a", "book").add("c", article="a"), label="add")
bad("kexue.report.Claims", "asserted", TypeError,
    lambda: report.Claims("a", "book").add("c", article="a", ours=1.0,
                                           reproduced_if=report.above(0), asserted="yes"),
    label="add-asserted")


# ---------------------------------------------------------------------------- kexue.mechanics

KC, KO, KF = "kexue.mechanics.chain.", "kexue.mechanics.ode.", "kexue.mechanics.closed_forms."
bad(KC + "RopeChain", "n_links", ValueError, lambda: mechanics.RopeChain(0, 1.0, 1.0, 1.0))
bad(KC + "RopeChain", "initial_angles", ValueError,
    lambda: mechanics.RopeChain(5, 1.0, 1.0, 1.0, initial_angles=zeros(4)), r"\(n_links=5,\)",
    label="shape")
bad(KF + "TroposkienShape", "n_points", ValueError, lambda: mechanics.troposkien(1.0, 3.0).curve(4),
    "odd")
bad(KC + "arc_angles", "side", ValueError, lambda: mechanics.arc_angles(5, 3.0, (0, 0), (1, 0), 2))
bad(KC + "arc_angles", "end", ValueError, lambda: mechanics.arc_angles(5, 1.0, (0, 0), (2, 0)),
    "closer", label="reach")
bad(KF + "catenary", "a", ValueError, lambda: mechanics.catenary(0.5, -1.0), "positive")
bad(KF + "catenary_parameter", "length", ValueError, lambda: mechanics.catenary_parameter(2.0, 1.5),
    "exceed")
bad(KC + "chain_energy", "geometry", ValueError,
    lambda: mechanics.chain_energy(zeros(3), 1.0, 1.0, 1.0, geometry="loop"), "'rod', 'skip'")
bad(KC + "chain_energy", "omega", ValueError, lambda: mechanics.chain_energy(zeros(3), 1.0, nan, 1.0))
bad(KC + "chain_positions", "theta", ValueError, lambda: mechanics.chain_positions(zeros((2, 2)), 1.0),
    r"shape \(n_links,\)")
bad(KC + "chain_positions", "anchor", ValueError,
    lambda: mechanics.chain_positions(zeros(3), 1.0, (0, 0, 0)), r"shape \(2,\)")
bad(KO + "euler_lagrange_residuals", "s", ValueError,
    lambda: mechanics.euler_lagrange_residuals([0, 2, 1], zeros(3), zeros(3), 1.0, 1.0),
    "increasing")
bad(KO + "euler_lagrange_residuals", "y", ValueError,
    lambda: mechanics.euler_lagrange_residuals([0, 1, 2], zeros(3), zeros(4), 1.0, 1.0),
    r"shape \(m=3,\)", label="shape")
bad(KO + "first_integral_rhs", "listing", TypeError,
    lambda: mechanics.first_integral_rhs(0.0, [1.0, 0.0], 2.0, 3.0, 0.0, listing="yes"))
bad(KO + "first_integral_rhs", "state", ValueError,
    lambda: mechanics.first_integral_rhs(0.0, [1.0, 0.0, 0.0], 2.0, 3.0, 0.0), r"shape \(2,\)")
bad(KC + "fit_rope", "rope", TypeError, lambda: mechanics.fit_rope("rope"), "RopeChain")
bad(KC + "fit_rope", "steps", ValueError,
    lambda: mechanics.fit_rope(mechanics.RopeChain(3, 1.0, 1.0, 1.0), steps=-1))
bad(KC + "hanging_angles", "tilt", ValueError, lambda: mechanics.hanging_angles(4, tilt=4.0))
bad(KC + "hanging_chain_omegas", "n_modes", ValueError,
    lambda: mechanics.hanging_chain_omegas(5, 1.0, 1.0, n_modes=6), r"\[1, 5\]")
bad(KF + "hanging_chain_omegas_exact", "g", ValueError,
    lambda: mechanics.hanging_chain_omegas_exact(0.0, 1.0))
bad(KO + "rod_first_integral", "positions", ValueError,
    lambda: mechanics.rod_first_integral(zeros(3), 1.0, 1.0, 1.0), "n_links")
bad(KO + "rope_ode", "state", ValueError, lambda: mechanics.rope_ode(0.0, [0, 0, 1], 1.0, 1.0),
    r"shape \(4,\)")
bad(KO + "shoot_rope", "rtol", ValueError, lambda: mechanics.shoot_rope(1.0, 1.0, 1.0, rtol=1.0))
bad(KC + "solve_chain", "end", ValueError,
    lambda: mechanics.solve_chain(5, 1.0, 1.0, 1.0, end=(3.0, 0.0)), "closer")
bad(KC + "solve_chain", "n_links", TypeError, lambda: mechanics.solve_chain(2.5, 1.0, 1.0, 1.0),
    label="float")
bad(KF + "troposkien", "length", ValueError, lambda: mechanics.troposkien(1.0, 1.5), "exceed")
bad(KO + "troposkien_first_integral_fit", "omega", ValueError,
    lambda: mechanics.troposkien_first_integral_fit(zeros((3, 2)), 0.0))

# ----------------------------------------------------------------------------- kexue.geometry

GM = "kexue.geometry."
bad(GM + "IsometricRim", "n_segments", ValueError, lambda: geometry.IsometricRim(2.0, 1.0, 1))
bad(GM + "arc_length_from_height_grid", "step", ValueError,
    lambda: geometry.arc_length_from_height_grid(2.0, 1.0, 0.5), "well below")
bad(GM + "ellipse_arc_length", "t", ValueError, lambda: geometry.ellipse_arc_length(nan, 2.0, 1.0),
    "finite")
bad(GM + "ellipse_arc_length", "a", TypeError, lambda: geometry.ellipse_arc_length(0.1, "2", 1.0),
    label="str")
bad(GM + "ellipse_arc_length_ops", "order", ValueError,
    lambda: geometry.ellipse_arc_length_ops(0.1, 2.0, 1.0, order=1))
bad(GM + "ellipse_height", "s", ValueError, lambda: geometry.ellipse_height(5.0, 2.0, 1.0), r"\[0, l=")
bad(GM + "ellipse_height_slope", "a", ValueError,
    lambda: geometry.ellipse_height_slope(0.1, -2.0, 1.0), "positive")
bad(GM + "ellipse_param_at_arc", "tol", ValueError,
    lambda: geometry.ellipse_param_at_arc(0.1, 2.0, 1.0, tol=0.0))
bad(GM + "ellipse_param_at_arc_ops", "newton_steps", ValueError,
    lambda: geometry.ellipse_param_at_arc_ops(0.1, 2.0, 1.0, newton_steps=0))
bad(GM + "ellipse_quarter_length", "b", ValueError, lambda: geometry.ellipse_quarter_length(1.0, 0.0))
bad(GM + "glue_condition", "quarter_shift", TypeError,
    lambda: geometry.glue_condition(0.1, 2.0, 1.0, quarter_shift="no"))
bad(GM + "glue_condition", "other", ValueError,
    lambda: geometry.glue_condition(0.1, 2.0, 1.0, other=(1.0, 2.0, 3.0)), "pair", label="triple")
bad(GM + "rim_curve", "n_points", ValueError, lambda: geometry.rim_curve(2.0, 1.0, 2))
bad(GM + "sheet_meshes", "n_gen", ValueError, lambda: geometry.sheet_meshes(2.0, 1.0, 11, 1))
bad(GM + "solid_length", "other", ValueError, lambda: geometry.solid_length(2.0, 1.0, (1.0, 1.0)),
    "quarter length")
bad(GM + "solid_volume", "n_points", ValueError,
    lambda: geometry.solid_volume(2.0, 1.0, n_points=0))
bad(GM + "surface_area", "y", ValueError,
    lambda: geometry.surface_area(zeros((3, 3)), zeros((3, 2)), zeros((3, 3))), r"shape \(3, 3\)")

# -------------------------------------------------------------------- kexue.stats: HSIC and CKA

HS = "kexue.stats."
XS = arange(6.0)
bad(HS + "median_bandwidth", "x", ValueError, lambda: stats.median_bandwidth(zeros(5)), "distinct")
bad(HS + "median_bandwidth", "x", ValueError, lambda: stats.median_bandwidth([1.0, nan, 2.0]),
    "finite", label="NaN")
bad(HS + "gram_matrix", "kernel", ValueError, lambda: stats.gram_matrix(XS, kernel="rbf"),
    "gaussian")
bad(HS + "gram_matrix", "sigma", ValueError, lambda: stats.gram_matrix(XS, sigma=0.0), "positive")
bad(HS + "gram_matrix", "x", ValueError, lambda: stats.gram_matrix(zeros((2, 3, 4))), r"\(n, d\)",
    label="rank")
bad(HS + "hsic", "y", ValueError, lambda: stats.hsic(XS, arange(5.0)), "as many samples",
    label="mismatched n")
bad(HS + "hsic", "x", ValueError, lambda: stats.hsic(XS[:3], XS[:3], estimator="unbiased"),
    "n >= 4", label="unbiased n<4")
bad(HS + "hsic", "y", ValueError, lambda: stats.hsic(XS, [0, 1, 2, nan, 4, 5]), "finite",
    label="NaN")
bad(HS + "hsic", "estimator", ValueError, lambda: stats.hsic(XS, XS, estimator="u"), "unbiased")
bad(HS + "hsic", "sigma", ValueError, lambda: stats.hsic(XS, XS, sigma=(1.0, 2.0, 3.0)), "pair",
    label="triple")
bad(HS + "hsic", "x", TypeError, lambda: stats.hsic("abc", XS), label="str")
bad(HS + "hsic_gram", "L", ValueError, lambda: stats.hsic_gram(eye(4), eye(5)), "shape of K")
bad(HS + "hsic_gram", "K", ValueError, lambda: stats.hsic_gram(zeros((4, 3)), zeros((4, 3))),
    "square", label="not square")
bad(HS + "hsic_gram", "K", ValueError, lambda: stats.hsic_gram(eye(3), eye(3), "unbiased"),
    "at least 4", label="unbiased n<4")
bad(HS + "hsic_gram", "K", ValueError, lambda: stats.hsic_gram(full((4, 4), nan), eye(4)),
    "finite", label="NaN")
bad(HS + "hsic_test", "permutations", ValueError, lambda: stats.hsic_test(XS, XS, permutations=0))
bad(HS + "hsic_test", "seed", ValueError, lambda: stats.hsic_test(XS, XS, seed=-1))
bad(HS + "hsic_test", "y", ValueError, lambda: stats.hsic_test(XS, XS[:4]), "as many samples",
    label="mismatched n")
bad(HS + "cka", "x", ValueError, lambda: stats.cka(zeros((6, 2)), XS), "vary", label="constant")
bad(HS + "cka", "kernel", ValueError, lambda: stats.cka(XS, XS, kernel=None))
bad(HS + "cka_gram", "L", ValueError, lambda: stats.cka_gram(eye(4), zeros((4, 4))), "vary")
bad(HS + "cka_gram", "L", ValueError, lambda: stats.cka_gram(eye(4), eye(3)), "shape of K",
    label="shape")
bad(HS + "hsic_ops", "sigma", ValueError, lambda: stats.hsic_ops(XS, XS, sigma=None), "positive")
bad(HS + "hsic_ops", "y", ValueError,
    lambda: stats.hsic_ops(XS.astype(F), arange(5.0).astype(F), sigma=1.0), r"n=6",
    label="mismatched n")
bad(HS + "hsic_ops", "x", TypeError, lambda: stats.hsic_ops(arange(6), XS, sigma=1.0), "float",
    label="int dtype")


# ------------------------------------------- RNN gradients: adding problem, profiles, cell

bad("kexue.data.adding_problem", "num", ValueError, lambda: data.adding_problem(0, 5), ">= 1")
bad("kexue.data.adding_problem", "length", ValueError, lambda: data.adding_problem(3, 1), ">= 2")
bad("kexue.data.adding_problem", "seed", ValueError, lambda: data.adding_problem(3, 5, seed=-1))
bad("kexue.data.adding_problem", "num", TypeError, lambda: data.adding_problem("3", 5),
    label="str")
JP = "kexue.training.jacobian_profile"
X_RNN = zeros((2, 4, 3), F)
bad(JP, "layer", TypeError, lambda: training.jacobian_profile("lstm", X_RNN), "recurrent layer")
bad(JP, "layer", TypeError, lambda: training.jacobian_profile(keras.layers.Dense(2), X_RNN),
    "state_size", label="dense")
bad(JP, "inputs", ValueError, lambda: training.jacobian_profile(keras.layers.LSTM(2), zeros((2, 3))),
    "shape", label="rank")
bad(JP, "inputs", ValueError,
    lambda: training.jacobian_profile(keras.layers.LSTM(2), full((1, 3, 2), nan)), "finite",
    label="nan")
bad(JP, "wrt", ValueError, lambda: training.jacobian_profile(keras.layers.GRU(2), X_RNN, wrt="x"))
bad(JP, "direction", ValueError,
    lambda: training.jacobian_profile(keras.layers.GRU(2), X_RNN, direction="back"))
bad(JP, "of", ValueError, lambda: training.jacobian_profile(keras.layers.GRU(2), X_RNN, of="h"))
bad(JP, "per_example", TypeError,
    lambda: training.jacobian_profile(keras.layers.GRU(2), X_RNN, per_example="yes"))
bad(JP, "initial_state", ValueError,
    lambda: training.jacobian_profile(keras.layers.LSTM(2), X_RNN, initial_state=[zeros((2, 2))]),
    "list of 2", label="length")
bad(JP, "initial_state[0]", ValueError,
    lambda: training.jacobian_profile(keras.layers.GRU(2), X_RNN, initial_state=[zeros((3, 2))]),
    "shape", label="shape")
OG = "kexue.layers.recurrent.OutputGatedGRUCell"
bad(OG, "units", ValueError, lambda: kexue.layers.recurrent.OutputGatedGRUCell(0), "positive")
bad(OG, "units", TypeError, lambda: kexue.layers.recurrent.OutputGatedGRUCell(1.5), label="float")
bad(OG, "recurrent_initializer", ValueError,
    lambda: kexue.layers.recurrent.OutputGatedGRUCell(2, recurrent_initializer="nope"))

# ---------------------------------------------------------------- callables with no bad input

NO_BAD_INPUT = {
    "kexue.register_serializables": "takes no arguments",
    "kexue.runtime.versions": "takes no arguments",
    "kexue.runtime.devices": "takes no arguments",
    "kexue.runtime.banner": "takes no arguments",
    "kexue.runtime.elapsed": "takes no arguments",
    "kexue.runtime.publish_run_time": "takes no arguments",
    "kexue.data.DataIntegrityError": "an exception class: any message is valid",
    "kexue.data.DataNotFoundError": "an exception class: any message is valid",
    "kexue.data.data_dir": "takes no arguments (reads KEXUE_DATA, any path is valid)",
    "kexue.data.mirror_dir": "takes no arguments (reads KEXUE_DATA_MIRROR, any path is valid)",
    "kexue.data.load_mnist": "takes no arguments",
    "kexue.data.load_fashion_mnist": "takes no arguments",
    "kexue.data.imdb_word_index": "takes no arguments",
    "kexue.data.TextSplit": "a plain record that the loaders fill, not an entry point",
    "kexue.data.ImdbData": "a plain record that the loaders fill, not an entry point",
    "kexue.text.SegScores": "a plain record that seg_scores fills, not an entry point",
    "kexue.mechanics.chain.RopeSolution": "a plain record that solve_chain and fit_rope fill",
}


# ---------------------------------------------------------------------------------- the tests


def _public_callables():
    """``{"module.name": object}`` for every public callable of every public kexue module."""
    found = {}
    modules = [kexue] + [importlib.import_module(m.name) for m in pkgutil.walk_packages(
        kexue.__path__, "kexue.") if not any(p.startswith("_") for p in m.name.split("."))]
    for module in modules:
        names = getattr(module, "__all__", None)
        if names is None:
            names = [n for n in vars(module) if not n.startswith("_")]
        for name in names:
            obj = getattr(module, name)
            if callable(obj) and getattr(obj, "__module__", None) == module.__name__ and (
                    inspect.isfunction(obj) or inspect.isclass(obj)):
                found[f"{module.__name__}.{name}"] = obj
    return found


PUBLIC = _public_callables()


def test_every_public_callable_has_a_bad_input_case():
    covered = {c.target for c in CASES}
    missing = sorted(set(PUBLIC) - covered - set(NO_BAD_INPUT))
    assert not missing, f"public callables without a bad-input case in this file: {missing}"
    stale = sorted((covered | set(NO_BAD_INPUT)) - set(PUBLIC))
    assert not stale, f"cases or exemptions name callables that do not exist: {stale}"
    assert not covered & set(NO_BAD_INPUT), "a callable is both covered and exempted"


def test_case_counts():
    """The size of the suite, printed for the record (``pytest -s``)."""
    covered = {c.target for c in CASES}
    print(f"\nbad-input suite: {len(CASES)} cases over {len(covered)} callables "
          f"({len(NO_BAD_INPUT)} more exempted, {len(PUBLIC)} public callables in all)")
    assert len(covered) + len(NO_BAD_INPUT) == len(PUBLIC)


@pytest.mark.parametrize("c", CASES, ids=lambda c: c.id)
def test_bad_input_raises_a_clear_error(c, monkeypatch, tmp_path):
    if c.tf_only and BACKEND != "tensorflow":
        pytest.skip("the callable needs the TensorFlow backend")
    with pytest.raises(c.exc) as info:
        c.call(monkeypatch, tmp_path)
    message = re.sub(r"\x1b\[[0-9;]*m", "", str(info.value))  # Keras bolds a layer's error
    assert re.search(rf"(?<![\w.]){re.escape(c.arg)}(?!\w)", message), (
        f"the message does not name {c.arg!r}: {message}")
    if c.match:
        assert re.search(c.match, message), f"the message does not say {c.match!r}: {message}"
    # every message says what it got: a value, a shape, a type or the offending entry
    assert re.search(r"got|shape|\bnot\b|needs|must not|more than|but|row \d", message), message


# ------------------------------------------------------------------ valid input that must work


def test_reuse_accepts_a_built_sequential():
    x = np.ones((2, 4), F)
    for model in (seq_model(), keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="a"),
                                                 keras.layers.Dense(2, name="b")])):
        assert reuse.features_of(model, "a")(x).shape == (2, 3)
        assert [f.shape for f in reuse.features_of(model, ["a", "b"])(x)] == [(2, 3), (2, 2)]
        head_, tail = reuse.split_at(model, "a")
        np.testing.assert_allclose(np.asarray(tail(head_(x))), np.asarray(model(x)), rtol=1e-6)
        added = reuse.insert_after(model, "a", keras.layers.Dense(3, name="extra"))
        assert added(x).shape == (2, 2) and "extra" in [layer.name for layer in added.layers]
        assert added.get_layer("a") is model.get_layer("a")


def test_numpy_scalars_are_accepted_where_python_numbers_are(monkeypatch):
    y, z = eye(3, dtype=F), np.random.default_rng(0).normal(size=(3, 3)).astype(F)
    a = losses.SmoothedCrossentropy(epsilon=np.float32(.1))(y, z)
    b = losses.SmoothedCrossentropy(epsilon=0.1)(y, z)
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)
    assert losses.optimal_logit_gap(np.int64(10), np.float32(.1)) == pytest.approx(
        losses.optimal_logit_gap(10, 0.1), rel=1e-6)
    assert optimizers.AdaFactor(learning_rate=np.float32(.1), beta1=np.float64(.9)).beta1 == .9
    assert capsules.squash(z, k=np.float32(.5)).shape == (3, 3)
    assert crf.CRF(np.int64(4), lr_multiplier=np.float32(2)).num_tags == 4
    assert masking.padding_mask(np.array([[1, 0]]), pad_id=np.int64(0)).shape == (1, 2)
    assert text.chunk_words(["ab", "c"], np.int64(2)) == [["ab"], ["c"]]
    assert training.max_batch_under(np.float32(105), [1, 2], [10, 20])[0] == 10
    # load_imdb with NumPy integers, on a tiny fake of the data (the real one is 80 MB)
    monkeypatch.setattr(data, "imdb_word_index", lambda: {"good": 1, "film": 2})
    monkeypatch.setattr(data, "fetch", lambda name: name)
    monkeypatch.setattr(data, "_read_acl_imdb", lambda path: {
        "train": [("train/pos/0_9.txt", "Good film", 1)], "test": [("test/neg/0_1.txt", "film", 0)]})
    imdb = data.load_imdb(num_words=np.int64(1000), maxlen=np.int64(1000), seed=np.int64(1))
    assert imdb.train.sequences == [[1, 4, 5]] and imdb.test.sequences == [[1, 5]]


def test_masked_positions_never_leak():
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype(F)
    poisoned = x.copy()
    poisoned[M5 == 0] = np.nan
    ref = masking.masked_mean(x, M5)
    for out in (masking.masked_mean(poisoned, M5),
                masking.MaskedGlobalAveragePooling1D()(poisoned, mask=M5)):
        np.testing.assert_allclose(np.asarray(out), np.asarray(ref), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(masking.masked_max(poisoned, M5)),
                               np.asarray(masking.masked_max(x, M5)))
    np.testing.assert_allclose(np.asarray(masking.MaskedGlobalMaxPooling1D()(poisoned, mask=M5)),
                               np.asarray(masking.masked_max(x, M5)))
    rnn = masking.MaskedBiRNN(keras.layers.GRU(2, return_sequences=True))
    clean, dirty = np.asarray(rnn([x, M5])), np.asarray(rnn([poisoned, M5]))
    np.testing.assert_allclose(dirty, clean, rtol=1e-5, atol=1e-6)
    # the three tagging heads: NaN emissions or any tag at padded positions change nothing
    rng = np.random.default_rng(1)
    em = rng.normal(size=(2, 3, 4)).astype(F)
    em_bad = em.copy()
    em_bad[MASK == 0] = np.nan
    tags = rng.integers(0, 4, size=(2, 3))
    tags_bad = tags.copy()
    tags_bad[MASK == 0] = 99
    for layer in (head(crf.SoftmaxTagger), head(crf.CRF), head(memm.MEMM)):
        a = layer.sequence_loss(em, tags, MASK)
        b = layer.sequence_loss(em_bad, tags_bad, MASK)
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5)
    marg = crf.crf_marginals(em_bad, TRANS, MASK)
    np.testing.assert_allclose(np.asarray(marg), np.asarray(crf.crf_marginals(em, TRANS, MASK)),
                               rtol=1e-5, atol=1e-7)


def test_valid_unusual_input_works():
    # a Python-list mask, integer inputs to masked_max and masked_mean, a boolean mask
    x = np.arange(10).reshape(2, 5, 1)
    mask = [[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]]
    assert np.asarray(masking.masked_max(x, mask)).ravel().tolist() == [1, 9]
    assert np.asarray(masking.masked_mean(x, np.array(mask, bool))).ravel().tolist() == [0.5, 7.0]
    assert crf.crf_log_norm(EM, TRANS, [[1, 1, 0], [1, 1, 1]]).shape == (2,)
    assert masking.very_negative("int32") == np.iinfo("int32").min // 2
    # the three heads give one message for tags >= K
    messages = set()
    for layer in (head(crf.SoftmaxTagger), head(crf.CRF), head(memm.MEMM)):
        with pytest.raises(ValueError) as info:
            layer.sequence_loss(zeros((1, 3, 4)), full((1, 3), 7))
        messages.add(str(info.value))
    assert len(messages) == 1, messages


@pytest.mark.skipif(BACKEND != "tensorflow", reason="traces a tf.function")
def test_checks_do_not_break_graph_tracing():
    """Inside a compiled function the tensors are symbolic: value checks are skipped, shape
    checks still run, and the graph gives the eager result."""
    import tensorflow as tf

    spec = [tf.TensorSpec((None, None, 4), "float32"), tf.TensorSpec((None, None), "int32"),
            tf.TensorSpec((4, 4), "float32"), tf.TensorSpec((None, None), "float32")]
    em = np.random.default_rng(2).normal(size=(2, 3, 4)).astype(F)
    for fn in (crf.crf_path_score, memm.memm_nll):
        graph = tf.function(fn, input_signature=spec)
        np.testing.assert_allclose(graph(em, TAGS, TRANS, MASK).numpy(),
                                   np.asarray(fn(em, TAGS, TRANS, MASK)), rtol=1e-5)
    pooled = tf.function(lambda x, m: masking.masked_mean(x, m), input_signature=[
        tf.TensorSpec((None, None, 3), "float32"), tf.TensorSpec((None, None), "float32")])
    np.testing.assert_allclose(pooled(X3, M5).numpy(), np.asarray(masking.masked_mean(X3, M5)))
    with pytest.raises(ValueError, match="trans must have shape"):
        tf.function(crf.crf_log_norm, input_signature=spec[:1] + [tf.TensorSpec((3, 3))])(
            em, np.zeros((3, 3), F))


@pytest.mark.skipif(BACKEND != "jax", reason="traces with jax.jit")
def test_checks_do_not_break_jax_tracing():
    import jax

    em = np.random.default_rng(2).normal(size=(2, 3, 4)).astype(F)
    for fn in (crf.crf_nll, memm.memm_nll):
        np.testing.assert_allclose(np.asarray(jax.jit(fn)(em, TAGS, TRANS, MASK)),
                                   np.asarray(fn(em, TAGS, TRANS, MASK)), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(jax.jit(masking.masked_mean)(X3, M5)),
                               np.asarray(masking.masked_mean(X3, M5)))


def test_heads_train_in_a_compiled_step():
    """model.fit with each head: y_true is symbolic in the compiled loss, so value checks skip."""
    em = np.random.default_rng(3).normal(size=(4, 3, 4)).astype(F)
    y = np.array([[0, 1, -1], [2, 3, 1], [1, -1, -1], [3, 3, 3]])
    for layer in (crf.SoftmaxTagger(4), crf.CRF(4), memm.MEMM(4)):
        inp = keras.Input((None, 4))
        model = keras.Model(inp, layer(keras.layers.Dense(4)(inp)))
        model.compile(keras.optimizers.SGD(0.1), loss=layer.loss)
        history = model.fit(em, y, batch_size=4, epochs=2, verbose=0)
        assert all(math.isfinite(v) for v in history.history["loss"])


def test_masked_layers_build_on_symbolic_tensors():
    ids = keras.Input((None,), dtype="int32")
    h = keras.layers.Embedding(8, 4)(ids)
    mask = keras.layers.Lambda(lambda t: keras.ops.cast(t > 0, "float32"))(ids)
    h = masking.MaskedBiRNN(keras.layers.GRU(3, return_sequences=True))([h, mask])
    out = masking.MaskedGlobalAveragePooling1D()(h, mask=mask)
    model = keras.Model(ids, out)
    x = np.array([[3, 4, 0], [5, 6, 7]])
    assert model.predict(x, verbose=0).shape == (2, 6)


# ------------------------------------------------ kexue.training: signal propagation by depth

DN = "kexue.training.depth_norms"
bad(DN, "activation", ValueError, lambda: training.depth_norms("nope", "he_normal", 2, 4),
    "activation name")
bad(DN, "activation", TypeError, lambda: training.depth_norms(3, "he_normal", 2, 4),
    "callable", label="int")
bad(DN, "initializer", ValueError, lambda: training.depth_norms("relu", "nope", 2, 4),
    "initializer")
bad(DN, "initializer", TypeError, lambda: training.depth_norms("relu", 0.5, 2, 4),
    label="float")
bad(DN, "depth", ValueError, lambda: training.depth_norms("relu", "he_normal", 0, 4), ">= 1")
bad(DN, "width", ValueError, lambda: training.depth_norms("relu", "he_normal", 2, 0))
bad(DN, "width", ValueError, lambda: training.depth_norms("relu", "he_normal", 2, [4, 4, 4]),
    "depth=2", label="length")
bad(DN, "n", ValueError, lambda: training.depth_norms("relu", "he_normal", 2, 4, n=0))
bad(DN, "seed", ValueError, lambda: training.depth_norms("relu", "he_normal", 2, 4, seed=-1))
bad(DN, "inputs", ValueError,
    lambda: training.depth_norms("relu", "he_normal", 2, 4, inputs=full((3, 4), nan)), "finite")
bad(DN, "inputs", ValueError,
    lambda: training.depth_norms("relu", "he_normal", 2, 4, inputs=zeros(4)), "shape",
    label="rank")
bad(DN, "cotangents", ValueError,
    lambda: training.depth_norms("relu", "he_normal", 2, 4, n=3, cotangents=zeros((3, 5))),
    "shape")
bad(DN, "dtype", ValueError, lambda: training.depth_norms("relu", "he_normal", 2, 4, dtype="int8"))


# -------------------------------------------------------------------------- kexue.activations

from kexue import activations  # noqa: E402

AC = "kexue.activations."
bad(AC + "xmin1exp", "x", TypeError, lambda: activations.xmin1exp(arange(3)), "float dtype")
bad(AC + "xmin1exp", "x", TypeError, lambda: activations.xmin1exp("1.0"), label="str")
bad(AC + "xmin1exp_naive", "x", TypeError, lambda: activations.xmin1exp_naive(None))
bad(AC + "derivative", "activation", TypeError, lambda: activations.derivative("relu", zeros(3)),
    "callable")
bad(AC + "derivative", "activation", ValueError,
    lambda: activations.derivative(lambda v: v[:1], zeros(3, F)), "elementwise",
    label="not-elementwise")
bad(AC + "saturated_intervals", "threshold", ValueError,
    lambda: activations.saturated_intervals(activations.xmin1exp, 0.0), "positive")
bad(AC + "saturated_intervals", "grid", ValueError,
    lambda: activations.saturated_intervals(activations.xmin1exp, 0.1, grid=2))
bad(AC + "saturation_fraction", "std", ValueError,
    lambda: activations.saturation_fraction(activations.xmin1exp, 0.1, std=nan), "positive")
bad(AC + "saturation_fraction", "threshold", TypeError,
    lambda: activations.saturation_fraction(activations.xmin1exp, "0.1"), label="str")
bad(AC + "saturation_fraction_mc", "n", ValueError,
    lambda: activations.saturation_fraction_mc(activations.xmin1exp, 0.1, n=0))
bad(AC + "saturation_fraction_mc", "seed", TypeError,
    lambda: activations.saturation_fraction_mc(activations.xmin1exp, 0.1, seed=1.5))
bad(AC + "dead_unit_fraction", "model", TypeError,
    lambda: activations.dead_unit_fraction("model", zeros((2, 3))), "Keras model")
bad(AC + "dead_unit_fraction", "x", ValueError,
    lambda: activations.dead_unit_fraction(keras.Sequential([
        keras.Input((3,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(2)]),
        full((2, 3), nan)), "finite", label="nan")
bad(AC + "dead_unit_fraction", "share", ValueError,
    lambda: activations.dead_unit_fraction(keras.Sequential([
        keras.Input((3,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(2)]),
        zeros((2, 3)), share=0.0))


# ----------------------------------------------------------- kexue.stats: random matrices, MP

ST = "kexue.stats."
bad(ST + "gram_moments", "dist", ValueError, lambda: stats.gram_moments(4, 4, "cauchy"))
bad(ST + "gram_moments", "m", ValueError, lambda: stats.gram_moments(0, 4))
bad(ST + "gram_moments", "variance", ValueError, lambda: stats.gram_moments(4, 4, variance=-1.0),
    "positive")
bad(ST + "orthogonality_mse", "w", ValueError, lambda: stats.orthogonality_mse(zeros(3)), "shape")
bad(ST + "orthogonality_mse", "w", ValueError,
    lambda: stats.orthogonality_mse(full((2, 2), nan)), "NaN", label="nan")
bad(ST + "sample_matrix", "dist", ValueError, lambda: stats.sample_matrix(3, 3, "cauchy"))
bad(ST + "sample_matrix", "n", TypeError, lambda: stats.sample_matrix(3, 2.5))
bad(ST + "sample_matrix", "seed", ValueError, lambda: stats.sample_matrix(3, 3, seed=-1))
bad(ST + "marchenko_pastur_support", "ratio", ValueError,
    lambda: stats.marchenko_pastur_support(0.0), "positive")
bad(ST + "marchenko_pastur_support", "variance", ValueError,
    lambda: stats.marchenko_pastur_support(1.0, nan))
bad(ST + "marchenko_pastur_pdf", "x", ValueError,
    lambda: stats.marchenko_pastur_pdf([1.0, nan], 1.0), "NaN")
bad(ST + "marchenko_pastur_pdf", "ratio", TypeError,
    lambda: stats.marchenko_pastur_pdf(1.0, "1"), label="str")
bad(ST + "marchenko_pastur_cdf", "x", TypeError, lambda: stats.marchenko_pastur_cdf(None, 1.0))
bad(ST + "marchenko_pastur_cdf", "variance", ValueError,
    lambda: stats.marchenko_pastur_cdf(1.0, 1.0, variance=0.0))


# ------------------------------------------------- kexue.training: curvature (Hessian probes)

def _curv_model():
    return keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])


_CURV_X, _CURV_Y = zeros((4, 2), F), zeros((4, 1), F)
_CURV_MSE = keras.losses.MeanSquaredError()
TH = "kexue.training.top_hessian_eigenvalue"
HV = "kexue.training.hessian_vector_product"
bad(TH, "model", TypeError, lambda: training.top_hessian_eigenvalue("mlp", _CURV_MSE, _CURV_X,
                                                                    _CURV_Y))
bad(TH, "loss_fn", TypeError,
    lambda: training.top_hessian_eigenvalue(_curv_model(), "mse", _CURV_X, _CURV_Y), "callable")
bad(TH, "iters", ValueError,
    lambda: training.top_hessian_eigenvalue(_curv_model(), _CURV_MSE, _CURV_X, _CURV_Y, iters=0))
bad(TH, "tol", ValueError,
    lambda: training.top_hessian_eigenvalue(_curv_model(), _CURV_MSE, _CURV_X, _CURV_Y, tol=-1.0))
bad(TH, "seed", TypeError,
    lambda: training.top_hessian_eigenvalue(_curv_model(), _CURV_MSE, _CURV_X, _CURV_Y,
                                            seed=0.5), label="float")
bad(TH, "x", ValueError,
    lambda: training.top_hessian_eigenvalue(_curv_model(), _CURV_MSE, full((4, 2), nan),
                                            _CURV_Y), "finite", label="nan")
bad(TH, "x", ValueError,
    lambda: training.top_hessian_eigenvalue(_curv_model(), _CURV_MSE, zeros((3, 2), F),
                                            _CURV_Y), "same", label="length")
bad(TH, "training", TypeError,
    lambda: training.top_hessian_eigenvalue(_curv_model(), _CURV_MSE, _CURV_X, _CURV_Y,
                                            training="yes"))
bad(HV, "vectors", ValueError,
    lambda: training.hessian_vector_product(_curv_model(), _CURV_MSE, _CURV_X, _CURV_Y,
                                            [zeros((2, 1))]), "one array per", label="count")
bad(HV, "vectors", ValueError,
    lambda: training.hessian_vector_product(_curv_model(), _CURV_MSE, _CURV_X, _CURV_Y,
                                            [zeros((1, 2)), zeros((1,))]), "shape", label="shape")
bad(HV, "vectors", ValueError,
    lambda: training.hessian_vector_product(_curv_model(), _CURV_MSE, _CURV_X, _CURV_Y,
                                            [full((2, 1), nan), zeros((1,))]), "finite",
    label="nan")
bad(HV, "model", ValueError,
    lambda: training.hessian_vector_product(keras.Sequential([keras.layers.Dense(1)]),
                                            _CURV_MSE, _CURV_X, _CURV_Y, []), "built",
    label="unbuilt")
bad("kexue.data.load_clue", "task", ValueError, lambda: data.load_clue("cmnli"), "one of")
bad("kexue.data.load_clue", "split", ValueError, lambda: data.load_clue("tnews", "test"), "one of")
bad("kexue.data.clue_labels", "task", ValueError, lambda: data.clue_labels("afqmc"), "one of")
bad("kexue.data.load_chinese_sentiment", "name", ValueError,
    lambda: data.load_chinese_sentiment("imdb"), "one of")
bad("kexue.data.load_chinese_sentiment", "split", ValueError,
    lambda: data.load_chinese_sentiment("hotel", "train"), "one of")
bad("kexue.data.load_stsb_zh", "split", ValueError, lambda: data.load_stsb_zh("dev"), "one of")
bad("kexue.data.load_english_corpus", "max_lines", ValueError,
    lambda: data.load_english_corpus(max_lines=0))
bad("kexue.data.segment", "texts", TypeError, lambda: data.segment(["a", 3]))
bad("kexue.data.segment", "hmm", TypeError, lambda: data.segment("a", hmm="yes"))
bad("kexue.data.load_chinese_corpus", "sources", ValueError,
    lambda: data.load_chinese_corpus(["pku", "wiki"]), "one of")
bad("kexue.data.load_chinese_corpus", "sources", TypeError, lambda: data.load_chinese_corpus([]),
    label="empty")

# ------------------------------------------------- kexue.transport: EMD, WMD, WRD, retrieval

from kexue import transport  # noqa: E402

_TP, _TQ, _TC = array([0.5, 0.5]), array([1.0]), zeros((2, 1))
_TX, _TY = eye(3)[:2], eye(3)[1:]
bad("kexue.transport.emd", "p", ValueError, lambda: transport.emd(array([0.5, 0.6]), _TQ, _TC),
    "sum to 1", label="mass")
bad("kexue.transport.emd", "q", ValueError, lambda: transport.emd(_TP, array([-1.0, 2.0]),
                                                                   zeros((2, 2))),
    "non-negative", label="negative")
bad("kexue.transport.emd", "cost", ValueError, lambda: transport.emd(_TP, _TQ, zeros((1, 2))),
    "shape", label="shape")
bad("kexue.transport.emd", "cost", ValueError, lambda: transport.emd(_TP, _TQ, full((2, 1), nan)),
    "finite", label="nan")
bad("kexue.transport.emd", "solver", ValueError, lambda: transport.emd(_TP, _TQ, _TC, "simplex"),
    "one of")
bad("kexue.transport.emd", "return_plan", TypeError,
    lambda: transport.emd(_TP, _TQ, _TC, return_plan="yes"))
bad("kexue.transport.transport_lp", "p", TypeError, lambda: transport.transport_lp("p", _TQ, _TC))
bad("kexue.transport.transport_lp", "drop_redundant", TypeError,
    lambda: transport.transport_lp(_TP, _TQ, _TC, drop_redundant=1))
bad("kexue.transport.cost_matrix", "metric", ValueError,
    lambda: transport.cost_matrix(_TX, _TY, "manhattan"), "one of")
bad("kexue.transport.cost_matrix", "y", ValueError,
    lambda: transport.cost_matrix(_TX, zeros((2, 4))), "dim=3", label="dim")
bad("kexue.transport.cost_matrix", "x", ValueError,
    lambda: transport.cost_matrix(zeros((2, 3)), _TY, "cosine"), "zero vector", label="zero")
bad("kexue.transport.wmd", "x", ValueError, lambda: transport.wmd(zeros((0, 3)), _TY),
    "at least one word", label="empty")
bad("kexue.transport.wmd", "solver", ValueError, lambda: transport.wmd(_TX, _TY, solver="lp"),
    "one of")
bad("kexue.transport.wcd", "y", ValueError, lambda: transport.wcd(_TX, zeros(3)), "shape",
    label="rank")
bad("kexue.transport.wrd", "y", ValueError, lambda: transport.wrd(_TX, zeros((1, 3))),
    "zero vector", label="zero")
bad("kexue.transport.wrd_similarity", "x", ValueError,
    lambda: transport.wrd_similarity(full((1, 3), nan), _TY), "finite", label="nan")
bad("kexue.transport.wrd_lower_bound", "x", ValueError,
    lambda: transport.wrd_lower_bound(zeros((1, 3)), _TY), "zero vector", label="zero")
bad("kexue.transport.sentence_centroids", "sentences", TypeError,
    lambda: transport.sentence_centroids([]), label="empty")
bad("kexue.transport.sentence_centroids", "sentences[1]", ValueError,
    lambda: transport.sentence_centroids([_TX, zeros((2, 4))]), "dim=3", label="dim")
bad("kexue.transport.sentence_centroids", "weighting", ValueError,
    lambda: transport.sentence_centroids([_TX], "idf"), "one of")
bad("kexue.transport.nearest_neighbours", "distance", TypeError,
    lambda: transport.nearest_neighbours(None, zeros(3), 1), "callable")
bad("kexue.transport.nearest_neighbours", "bounds", ValueError,
    lambda: transport.nearest_neighbours(len, zeros((2, 2)), 1), "1-D", label="rank")
bad("kexue.transport.nearest_neighbours", "k", ValueError,
    lambda: transport.nearest_neighbours(len, zeros(3), 4), r"\[1, 3\]")
bad("kexue.transport.nearest_neighbours", "prune", TypeError,
    lambda: transport.nearest_neighbours(len, zeros(3), 1, prune="no"))
bad("kexue.transport.Neighbours", "indices", TypeError,
    lambda: transport.Neighbours([0], zeros(1), 1, 1), "array")


# ------------------------------------------------- multi-label loss, scores and data sets
from kexue import metrics  # noqa: E402

_Y3, _S3 = array([[1, 0, 0], [0, 1, 0]], F), zeros((2, 3), F)
bad(L + "multilabel_categorical_crossentropy", "y_true", ValueError,
    lambda: losses.multilabel_categorical_crossentropy(array([[2, 0, 0], [0, 1, 0]], F), _S3),
    r"0 or 1 or -1", label="values")
bad(L + "multilabel_categorical_crossentropy", "y_true", ValueError,
    lambda: losses.multilabel_categorical_crossentropy(_Y3, zeros((2, 4), F)), r"shape",
    label="shape")
bad(L + "multilabel_categorical_crossentropy", "logits", TypeError,
    lambda: losses.multilabel_categorical_crossentropy(_Y3, zeros((2, 3), "int32")), "float",
    label="dtype")
bad(L + "multilabel_categorical_crossentropy", "threshold", ValueError,
    lambda: losses.multilabel_categorical_crossentropy(_Y3, _S3, threshold=nan))
bad(L + "MultilabelCategoricalCrossentropy", "threshold", TypeError,
    lambda: losses.MultilabelCategoricalCrossentropy(threshold="0"))
bad(L + "pairwise_multilabel_loss", "gamma", ValueError,
    lambda: losses.pairwise_multilabel_loss(_Y3, _S3, gamma=0.0), "positive")
bad(L + "pairwise_multilabel_loss", "y_true", ValueError,
    lambda: losses.pairwise_multilabel_loss(-_Y3, _S3), r"0 or 1", label="ignored")
bad(L + "log_elementary_symmetric", "k", ValueError,
    lambda: losses.log_elementary_symmetric(_S3, 4), r"\[0, 3\]")
bad(L + "log_elementary_symmetric", "scores", TypeError,
    lambda: losses.log_elementary_symmetric(zeros((2, 3), "int32"), 1), "float", label="dtype")
bad(L + "newton_elementary_symmetric", "k", TypeError,
    lambda: losses.newton_elementary_symmetric(_S3, 1.5))
bad(L + "combinatorial_softmax_loss", "max_labels", ValueError,
    lambda: losses.combinatorial_softmax_loss(_Y3, zeros((2, 4), F), 4), "at most")
bad(L + "combinatorial_softmax_loss", "y_true", ValueError,
    lambda: losses.combinatorial_softmax_loss(_Y3, _S3, 1), r"shape", label="no-threshold-column")
bad(L + "combinatorial_softmax_loss", "y_true", ValueError,
    lambda: losses.combinatorial_softmax_loss(array([[1, 1, 0]], F), zeros((1, 4), F), 1),
    "positives", label="too-many")
bad(L + "binary_crossentropy_with_pos_weight", "pos_weight", ValueError,
    lambda: losses.binary_crossentropy_with_pos_weight(_Y3, _S3, pos_weight=-1.0), "positive")
bad("kexue.metrics.multilabel_scores", "y_pred", ValueError,
    lambda: metrics.multilabel_scores(eye(3), zeros((3, 4))), "shape")
bad("kexue.metrics.multilabel_scores", "y_true", ValueError,
    lambda: metrics.multilabel_scores(2 * eye(3), eye(3)), "0/1", label="values")
bad("kexue.metrics.best_threshold", "scores", ValueError,
    lambda: metrics.best_threshold(eye(3), full((3, 3), nan)), "finite")
bad("kexue.metrics.best_threshold", "scores", TypeError,
    lambda: metrics.best_threshold(eye(3), None), label="none")
bad("kexue.data.teacher_multilabel", "mean_labels", ValueError,
    lambda: data.teacher_multilabel(10, 5, 1.0, mean_labels=5))
bad("kexue.data.teacher_multilabel", "signal", ValueError,
    lambda: data.teacher_multilabel(10, 5, 0.0))
bad("kexue.data.digit_canvas", "labels", ValueError,
    lambda: data.digit_canvas(zeros((3, 4, 4)), array([0, 1, 10]), 5), r"\[0, 10\)")
bad("kexue.data.digit_canvas", "labels", ValueError,
    lambda: data.digit_canvas(zeros((3, 4, 4)), array([0, 1]), 5), "shape", label="length")
bad("kexue.data.digit_canvas", "p", ValueError,
    lambda: data.digit_canvas(zeros((3, 4, 4)), array([0, 1, 2]), 5, p=1.5))

# ---------------------------------------------------------------- kexue.attribution (RNN saliency)
from kexue import attribution  # noqa: E402

AT = "kexue.attribution."


def _att_model():
    runtime.seed(0)
    return text.rnn_classifier(10, embed_dim=3, units=2)


def _two_inputs():
    a, b = keras.Input((None,), dtype="int32"), keras.Input((None,), dtype="int32")
    e = keras.layers.Embedding(10, 3)
    return keras.Model([a, b], keras.layers.Add()([e(a), e(b)]))


IDS = array([[0, 3, 4], [5, 6, 7]])
bad(AT + "distance_saliency", "states", ValueError,
    lambda: attribution.distance_saliency(zeros((2, 3, 4, 5), F)), "shape", label="rank")
bad(AT + "distance_saliency", "states", TypeError,
    lambda: attribution.distance_saliency(zeros((3, 2), "int32")), "float", label="int")
bad(AT + "distance_saliency", "states", ValueError,
    lambda: attribution.distance_saliency(full((3, 2), nan)), "finite", label="nan")
bad(AT + "distance_saliency", "normalize", TypeError,
    lambda: attribution.distance_saliency(zeros((3, 2), F), normalize="yes"))
bad(AT + "state_sequence", "model", TypeError, lambda: attribution.state_sequence("lstm", IDS),
    "keras.Model")
bad(AT + "state_sequence", "model", ValueError,
    lambda: attribution.state_sequence(_two_inputs(), IDS), "one input", label="two-inputs")
bad(AT + "state_sequence", "ids", ValueError,
    lambda: attribution.state_sequence(_att_model(), array([[0, 3, 12]])), r"\[0, 10\)",
    label="range")
bad(AT + "state_sequence", "ids", TypeError,
    lambda: attribution.state_sequence(_att_model(), zeros((2, 3), F)), "integer", label="float")
bad(AT + "state_sequence", "layer", ValueError,
    lambda: attribution.state_sequence(_att_model(), IDS, layer="logit"), "recurrent")
bad(AT + "gradient_x_input", "output", ValueError,
    lambda: attribution.gradient_x_input(_att_model(), IDS, output="nope"), "name a layer")
bad(AT + "gradient_x_input", "index", ValueError,
    lambda: attribution.gradient_x_input(_att_model(), IDS, output="logit", index=1), r"\[0, 1\)")
bad(AT + "gradient_x_input", "ids", ValueError,
    lambda: attribution.gradient_x_input(_att_model(), zeros((2, 0), "int32")), "shape",
    label="empty")
bad(AT + "occlusion", "pad_id", ValueError,
    lambda: attribution.occlusion(_att_model(), IDS, pad_id=-1), ">= 0")
bad(AT + "occlusion", "batch_size", ValueError,
    lambda: attribution.occlusion(_att_model(), IDS, batch_size=0), ">= 1")
bad(AT + "rank_agreement", "b", ValueError,
    lambda: attribution.rank_agreement([1.0, 2, 3], [1.0, 2]), "shape")
bad(AT + "rank_agreement", "a", ValueError,
    lambda: attribution.rank_agreement([1.0], [1.0]), "n >= 2", label="short")
bad(AT + "rank_agreement", "method", ValueError,
    lambda: attribution.rank_agreement([1.0, 2], [2.0, 1], method="pearson"), "one of")
bad(AT + "rank_agreement", "k", ValueError,
    lambda: attribution.rank_agreement([1.0, 2], [2.0, 1], method="top_k", k=3), r"\[1, 2\]")
bad(AT + "rank_agreement", "k", ValueError,
    lambda: attribution.rank_agreement([1.0, 2], [2.0, 1], method="top_k"), "given",
    label="missing")
bad(AT + "randomized_copy", "layers", ValueError,
    lambda: attribution.randomized_copy(_att_model(), ["nope"]), "name layers")
bad(AT + "randomized_copy", "layers", TypeError,
    lambda: attribution.randomized_copy(_att_model(), "rnn"), "list", label="str")
bad(AT + "randomized_copy", "seed", ValueError,
    lambda: attribution.randomized_copy(_att_model(), seed=-1), ">= 0")
bad(AT + "rank_tokens", "scores", ValueError,
    lambda: attribution.rank_tokens(["a", "b"], [1.0]), "shape")
bad(AT + "rank_tokens", "tokens", TypeError, lambda: attribution.rank_tokens("ab", [1.0, 2.0]),
    "list of strings")
bad(AT + "saliency_html", "scale", ValueError,
    lambda: attribution.saliency_html(["a"], [1.0], scale=0), "positive")
bad(AT + "saliency_html", "sep", TypeError,
    lambda: attribution.saliency_html(["a"], [1.0], sep=None), "string")
bad("kexue.text.rnn_classifier", "cell", ValueError,
    lambda: text.rnn_classifier(10, cell="transformer"), "one of")
bad("kexue.text.rnn_classifier", "dropout", ValueError,
    lambda: text.rnn_classifier(10, dropout=1.0), r"\[0, 1\)")
bad("kexue.text.rnn_classifier", "vocab_size", ValueError, lambda: text.rnn_classifier(1), ">= 2")


# ------------------------------------------------- kexue.training: adversarial training (FGM)

def _adv_model():
    inp = keras.Input((4,), dtype="int32")
    h = keras.layers.Embedding(6, 2, name="emb")(inp)
    return keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(h)))


AM, EA, FP = ("kexue.training.AdversarialModel", "kexue.training.embedding_attack",
              "kexue.training.fgm_perturbation")
_ADV_X, _ADV_Y = zeros((3, 4), "int32"), zeros((3,), "int32")
bad(AM, "epsilon", ValueError, lambda: training.AdversarialModel(_adv_model(), "emb", epsilon=0.0),
    "positive")
bad(AM, "epsilon", ValueError,
    lambda: training.AdversarialModel(_adv_model(), "emb", epsilon=-0.5), "positive",
    label="negative")
bad(AM, "method", ValueError,
    lambda: training.AdversarialModel(_adv_model(), "emb", method="pgd"), "one of")
bad(AM, "mode", ValueError,
    lambda: training.AdversarialModel(_adv_model(), "emb", mode="input"), "one of")
bad(AM, "norm", ValueError,
    lambda: training.AdversarialModel(_adv_model(), "emb", norm="l1"), "one of")
bad(AM, "embedding", ValueError, lambda: training.AdversarialModel(_adv_model(), "embed"),
    "Embedding layers", label="name")
bad(AM, "embedding", TypeError,
    lambda: training.AdversarialModel(_adv_model(), keras.layers.Dense(2)), label="type")
bad(AM, "embedding", ValueError,
    lambda: training.AdversarialModel(_adv_model(), keras.layers.Embedding(3, 2)), "not inside",
    label="foreign")
bad(AM, "model", TypeError, lambda: training.AdversarialModel("mlp", "emb"))
bad(AM, "model", ValueError,
    lambda: training.AdversarialModel(keras.Sequential([keras.layers.Embedding(3, 2)]), "emb"),
    "built", label="unbuilt")
bad(EA, "epsilon", ValueError,
    lambda: training.embedding_attack(_adv_model(), "emb", _ADV_X, _ADV_Y,
                                      "sparse_categorical_crossentropy", 0.0), "positive")
bad(EA, "x", ValueError,
    lambda: training.embedding_attack(_adv_model(), "emb", _ADV_X, _ADV_Y[:2],
                                      "sparse_categorical_crossentropy", 0.1), "same",
    label="length")
bad(EA, "loss", TypeError,
    lambda: training.embedding_attack(_adv_model(), "emb", _ADV_X, _ADV_Y, 3, 0.1), "callable")
bad(EA, "batch_size", ValueError,
    lambda: training.embedding_attack(_adv_model(), "emb", _ADV_X, _ADV_Y,
                                      "sparse_categorical_crossentropy", 0.1, batch_size=0))
bad(EA, "norm", ValueError,
    lambda: training.embedding_attack(_adv_model(), "emb", _ADV_X, _ADV_Y,
                                      "sparse_categorical_crossentropy", 0.1, norm="L2"), "one of")
bad(FP, "epsilon", ValueError, lambda: training.fgm_perturbation(zeros(3, F), 0.0), "positive")
bad(FP, "epsilon", ValueError, lambda: training.fgm_perturbation(zeros(3, F), -1.0), "positive",
    label="negative")
bad(FP, "grad", TypeError, lambda: training.fgm_perturbation(zeros(3, "int32"), 0.1), "float",
    label="dtype")
bad(FP, "grad", ValueError, lambda: training.fgm_perturbation(array([1.0, nan]), 0.1), "finite",
    label="nan")
bad(FP, "grad", ValueError, lambda: training.fgm_perturbation(array(1.0), 0.1, per_example=True),
    "axis", label="scalar")
bad(FP, "norm", ValueError, lambda: training.fgm_perturbation(zeros(3, F), 0.1, norm="linf"),
    "one of")
bad(FP, "per_example", TypeError,
    lambda: training.fgm_perturbation(zeros(3, F), 0.1, per_example="yes"))
NO_BAD_INPUT["kexue.training.EmbeddingAttack"] = "a plain record that embedding_attack fills"

# ------------------------------------------------------------ kexue.embeddings: simpler GloVe

EMB = "kexue.embeddings."
_SENTS = [["a", "b", "c"], ["a", "b"]]
_IDS, _SIDS = array([0, 1, 2, 0, 1]), array([0, 0, 0, 1, 1])
_VEC = zeros((3, 2), F)
_PI, _PJ, _PT, _PW = array([0, 1]), array([1, 2]), zeros(2, F), full(2, 1.0, F)


def _emb():
    from kexue import embeddings

    return embeddings


def _wv():
    return _emb().WordVectors(["a", "b", "c"], eye(3, dtype=F), array([3, 2, 1]))


bad(EMB + "build_vocab", "sentences", TypeError, lambda: _emb().build_vocab("a b c"))
bad(EMB + "build_vocab", "min_count", ValueError, lambda: _emb().build_vocab(_SENTS, min_count=0))
bad(EMB + "encode", "index", TypeError, lambda: _emb().encode(_SENTS, ["a", "b"]))
bad(EMB + "encode", "sentences[1]", TypeError, lambda: _emb().encode([["a"], "b"], {"a": 0}),
    label="sentence")
bad(EMB + "cooccurrence", "ids", ValueError,
    lambda: _emb().cooccurrence(array([0, 5]), array([0, 0]), 3), "\\[0, 3\\)")
bad(EMB + "cooccurrence", "window", ValueError, lambda: _emb().cooccurrence(_IDS, _SIDS, 3, 0))
bad(EMB + "cooccurrence", "sentence_ids", ValueError,
    lambda: _emb().cooccurrence(_IDS, _SIDS[:3], 3), "shape", label="length")
bad(EMB + "pmi_targets", "counts", ValueError,
    lambda: _emb().pmi_targets(eye(3), array([1, 2])), "shape")
bad(EMB + "pmi_targets", "X", ValueError, lambda: _emb().pmi_targets(zeros((2, 3)), array([1, 1])),
    "square")
bad(EMB + "glove_weights", "x_max", ValueError, lambda: _emb().glove_weights([1.0], x_max=0.0))
bad(EMB + "glove_weights", "truncate", TypeError,
    lambda: _emb().glove_weights([1.0], truncate="yes"))
bad(EMB + "glove_loss", "i", ValueError, lambda: _emb().glove_loss(_VEC, array([0, 3]), _PJ, _PT, _PW),
    "\\[0, 3\\)")
bad(EMB + "glove_loss", "target", ValueError,
    lambda: _emb().glove_loss(_VEC, _PI, _PJ, zeros(3, F), _PW), "shape", label="length")
bad(EMB + "glove_gradient", "vectors", ValueError,
    lambda: _emb().glove_gradient(zeros(3, F), _PI, _PJ, _PT, _PW), "shape")
bad(EMB + "glove_gradient", "weight", TypeError,
    lambda: _emb().glove_gradient(_VEC, _PI, _PJ, _PT, None))
bad(EMB + "adagrad_update", "accumulator", ValueError,
    lambda: _emb().adagrad_update(_VEC, zeros((2, 2), F), _VEC), "shape")
bad(EMB + "adagrad_update", "learning_rate", ValueError,
    lambda: _emb().adagrad_update(_VEC, _VEC, _VEC, learning_rate=0.0))
bad(EMB + "fit_glove", "vocab_size", ValueError, lambda: _emb().fit_glove(_PI, _PJ, _PT, _PW, 0))
bad(EMB + "fit_glove", "j", ValueError, lambda: _emb().fit_glove(_PI, _PJ, _PT, _PW, 2),
    "\\[0, 2\\)")
bad(EMB + "fit_glove", "epochs", ValueError,
    lambda: _emb().fit_glove(_PI, _PJ, _PT, _PW, 3, epochs=0))
bad(EMB + "fit_glove", "init", ValueError,
    lambda: _emb().fit_glove(_PI, _PJ, _PT, _PW, 3, dim=2, init=zeros((3, 4))), "shape")
bad(EMB + "similarity_transform", "context_vectors", ValueError,
    lambda: _emb().similarity_transform(zeros((2, 3))), "N > dim")
bad(EMB + "WordVectors", "vectors", ValueError,
    lambda: _emb().WordVectors(["a", "b"], zeros((3, 2)), array([1, 1])), "shape")
bad(EMB + "WordVectors", "words", TypeError,
    lambda: _emb().WordVectors("ab", zeros((2, 2)), array([1, 1])))
bad(EMB + "WordVectors", "word", ValueError, lambda: _wv().most_related("zz"), "vocabulary",
    label="unknown word")
bad(EMB + "WordVectors", "n_context", ValueError, lambda: _wv().most_similar("a", n_context=2))
bad(EMB + "WordVectors", "words", TypeError, lambda: _wv().lookup("abc"), label="lookup")
bad(EMB + "WordVectors", "c", ValueError, lambda: _wv().analogy("a", "b", "zz"), "vocabulary",
    label="analogy")
bad(EMB + "train_word_vectors", "sentences", TypeError, lambda: _emb().train_word_vectors("abc"))
bad(EMB + "train_word_vectors", "sentences", ValueError,
    lambda: _emb().train_word_vectors([["a"]], min_count=1), "at least two", label="too few")
bad(EMB + "train_word_vectors", "truncate", TypeError,
    lambda: _emb().train_word_vectors(_SENTS, truncate=1))


# ---------------------------------------------- kexue.seq2seq and the generated-text metrics

from kexue import metrics as _metrics  # noqa: E402
from kexue import seq2seq as _s2s  # noqa: E402

S2 = "kexue.seq2seq."
_S2_VOCAB = _s2s.make_vocab(["上海证券", "周星驰"], min_count=1)
_S2_DEC = array([[2, 5, 6], [2, 7, 0]])
_S2_STATES = (zeros((2, 1)),)


def _s2_step(tokens, states):
    return np.log(full((len(tokens), 5), 0.2)), states


bad(S2 + "make_vocab", "texts", TypeError, lambda: _s2s.make_vocab(5))
bad(S2 + "make_vocab", "min_count", ValueError, lambda: _s2s.make_vocab(["ab"], min_count=0))
bad(S2 + "encode_pairs", "vocab", TypeError, lambda: _s2s.encode_pairs("v", ["a"], ["b"]))
bad(S2 + "encode_pairs", "sources", ValueError,
    lambda: _s2s.encode_pairs(_S2_VOCAB, ["上海", "周"], ["上"]), "same length")
bad(S2 + "encode_pairs", "targets", ValueError,
    lambda: _s2s.encode_pairs(_S2_VOCAB, ["上海"], ["上海证券"], max_target=2), "more than",
    label="too long")
bad(S2 + "decode_ids", "ids", ValueError, lambda: _s2s.decode_ids(_S2_VOCAB, zeros((2, 2), int)),
    "shape")
bad(S2 + "build_seq2seq", "vocab_size", ValueError, lambda: _s2s.build_seq2seq(3))
bad(S2 + "build_seq2seq", "dim", ValueError, lambda: _s2s.build_seq2seq(10, dim=10, heads=4),
    "multiple")
bad(S2 + "teacher_forcing_loss", "y_true", ValueError,
    lambda: _s2s.teacher_forcing_loss(zeros((2, 3, 1), "int32"), zeros((2, 3, 5), F)), "shape")
bad(S2 + "random_replace", "decoder_input", ValueError,
    lambda: _s2s.random_replace(array([[5, 6, 0]])), "BOS")
bad(S2 + "random_replace", "p_apply", ValueError, lambda: _s2s.random_replace(_S2_DEC, 1.5))
bad(S2 + "random_replace", "pool", ValueError, lambda: _s2s.random_replace(_S2_DEC, pool="all"),
    "one of")
bad(S2 + "random_replace", "vocab_size", TypeError,
    lambda: _s2s.random_replace(_S2_DEC, pool="vocab"), label="missing")
bad(S2 + "random_replace", "rng", TypeError, lambda: _s2s.random_replace(_S2_DEC, rng=0))
bad(S2 + "model_decoder", "model", TypeError, lambda: _s2s.model_decoder("seq2seq"))
bad(S2 + "greedy_decode", "step", TypeError, lambda: _s2s.greedy_decode(3, _S2_STATES, 2))
bad(S2 + "greedy_decode", "states", TypeError, lambda: _s2s.greedy_decode(_s2_step, (), 2))
bad(S2 + "greedy_decode", "max_len", ValueError,
    lambda: _s2s.greedy_decode(_s2_step, _S2_STATES, 0))
bad(S2 + "beam_search", "beam", ValueError,
    lambda: _s2s.beam_search(_s2_step, _S2_STATES, 0, 2))
bad(S2 + "beam_search", "states", ValueError,
    lambda: _s2s.beam_search(_s2_step, (zeros((2, 1)), zeros((3, 1))), 2, 2), "first axis",
    label="batch")
bad(S2 + "generate", "model", TypeError, lambda: _s2s.generate("seq2seq", zeros((2, 3), int)))
bad(S2 + "generate", "beam", ValueError, lambda: _s2s.generate(None, zeros((2, 3), int), beam=0))
bad(S2 + "sequence_log_prob", "labels", ValueError,
    lambda: _s2s.sequence_log_prob(_s2s.build_seq2seq(8, dim=4, heads=2), zeros((2, 3), int),
                                   zeros((2, 3), int), zeros((2, 4), int)), "shape")
NO_BAD_INPUT[S2 + "toy_beam_example"] = "takes no arguments"

MT = "kexue.metrics."
bad(MT + "keyword_f1", "hypotheses", TypeError, lambda: _metrics.keyword_f1("ab", [["ab"]]))
bad(MT + "keyword_f1", "hypotheses", ValueError,
    lambda: _metrics.keyword_f1([["a"]], [["a"], ["b"]]), "same length", label="length")
bad(MT + "keyword_f1", "references[0]", TypeError,
    lambda: _metrics.keyword_f1([["a"]], ["a"]), label="string")
bad(MT + "lcs_length", "a", TypeError, lambda: _metrics.lcs_length(3, "abc"))
bad(MT + "rouge_l", "hypothesis", TypeError, lambda: _metrics.rouge_l(None, "abc"))
bad(MT + "bleu", "max_n", ValueError, lambda: _metrics.bleu("ab", "ab", max_n=0))
bad(MT + "bleu", "epsilon", ValueError, lambda: _metrics.bleu("ab", "ab", epsilon=0.0))
bad(MT + "generation_scores", "sep", ValueError,
    lambda: _metrics.generation_scores(["a"], ["a"], sep=""))
bad(MT + "generation_scores", "references", ValueError,
    lambda: _metrics.generation_scores(["a"], []), "same length")

# ---- kexue.generative.evaluation
from kexue.generative import evaluation as _gen_eval  # noqa: E402

GE = "kexue.generative.evaluation."
bad(GE + "class_histogram", "probs", ValueError, lambda: _gen_eval.class_histogram(zeros(3)),
    "shape")
bad(GE + "kl_to_uniform", "probs", TypeError, lambda: _gen_eval.kl_to_uniform("probs"))
bad(GE + "mean_max_probability", "probs", ValueError,
    lambda: _gen_eval.mean_max_probability(array([[0.5, nan]])), "finite")
bad(GE + "frechet_distance", "sigma1", ValueError,
    lambda: _gen_eval.frechet_distance(zeros(2), eye(3), zeros(2), eye(2)), "shape")
bad(GE + "frechet_distance", "sigma2", ValueError,
    lambda: _gen_eval.frechet_distance(zeros(2), eye(2), zeros(2), array([[1.0, 1], [0, 1]])),
    "symmetric", label="asymmetric")
bad(GE + "frechet_distance_from_features", "f2", ValueError,
    lambda: _gen_eval.frechet_distance_from_features(zeros((5, 3)), zeros((5, 4))), "match")
bad(GE + "train_image_classifier", "dataset", ValueError,
    lambda: _gen_eval.train_image_classifier("cifar10"), "one of")
bad(GE + "train_image_classifier", "num_train", ValueError,
    lambda: _gen_eval.train_image_classifier(num_train=5))
bad(GE + "SampleScorer", "batch_size", ValueError,
    lambda: _gen_eval.SampleScorer(functional(), 0.9, "mnist", batch_size=0))
bad(GE + "ring_centres", "modes", ValueError, lambda: _gen_eval.ring_centres(0))
bad(GE + "gaussian_ring", "std", ValueError, lambda: _gen_eval.gaussian_ring(10, std=0.0))
bad(GE + "ring_coverage", "samples", ValueError,
    lambda: _gen_eval.ring_coverage(zeros((4, 3))), "shape")
bad(GE + "ring_coverage", "min_fraction", ValueError,
    lambda: _gen_eval.ring_coverage(zeros((4, 2)), min_fraction=0.0))


# ---------------------------------------------- kexue.generative.denoising: denoisers, Langevin

from kexue.generative import denoising as _dn  # noqa: E402

DN = "kexue.generative.denoising."
_MIX = _dn.GaussianMixture([0.8, 0.2], [-2.0, 2.0], 0.15)


def _dn_score(x, s=None):
    return -x


bad(DN + "GaussianMixture", "weights", ValueError,
    lambda: _dn.GaussianMixture([0.5, -0.5], [0.0, 1.0], 0.1), "positive")
bad(DN + "GaussianMixture", "means", ValueError,
    lambda: _dn.GaussianMixture([0.5, 0.5], [[0.0, 1.0]], 0.1), "shape", label="shape")
bad(DN + "GaussianMixture", "stds", ValueError,
    lambda: _dn.GaussianMixture([0.5, 0.5], [0.0, 1.0], [0.1, 0.0]), "positive")
bad(DN + "GaussianMixture", "x", ValueError, lambda: _MIX.score(zeros((3, 2))), "shape",
    label="points")
bad(DN + "GaussianMixture", "sigma", ValueError, lambda: _MIX.posterior_mean(zeros(3), 0.0),
    "positive", label="posterior")
bad(DN + "GaussianMixture", "num", ValueError, lambda: _MIX.sample(0), label="sample")
bad(DN + "tweedie_denoiser", "score_fn", TypeError,
    lambda: _dn.tweedie_denoiser("score", zeros(3), 0.1))
bad(DN + "tweedie_denoiser", "sigma", ValueError,
    lambda: _dn.tweedie_denoiser(_dn_score, zeros(3), -1.0))
bad(DN + "langevin", "step_size", ValueError, lambda: _dn.langevin(_dn_score, zeros(3), 0.0, 5))
bad(DN + "langevin", "x0", TypeError, lambda: _dn.langevin(_dn_score, [1, 2], 0.1, 5))
bad(DN + "langevin", "score_fn", ValueError,
    lambda: _dn.langevin(lambda x: x[:1], zeros(3), 0.1, 5), "shaped like", label="shape")
bad(DN + "annealed_langevin", "sigmas", ValueError,
    lambda: _dn.annealed_langevin(_dn_score, zeros(3), [0.1, 1.0], 5, 0.1), "decreasing")
bad(DN + "annealed_langevin", "steps_per_level", ValueError,
    lambda: _dn.annealed_langevin(_dn_score, zeros(3), [1.0, 0.1], 0, 0.1))
bad(DN + "langevin_stationary_variance", "step_size", ValueError,
    lambda: _dn.langevin_stationary_variance(1.0, 4.0), "below")
bad(DN + "geometric_sigmas", "sigma_min", ValueError, lambda: _dn.geometric_sigmas(0.1, 1.0, 3),
    "exceed")
bad(DN + "geometric_sigmas", "levels", ValueError, lambda: _dn.geometric_sigmas(1.0, 0.1, 0))
bad(DN + "NoiseLevelEmbedding", "units", ValueError, lambda: _dn.NoiseLevelEmbedding(0))
bad(DN + "ScaledNoiseSubtraction", "inputs", ValueError,
    lambda: _dn.ScaledNoiseSubtraction()([zeros((2, 3), F), zeros((2, 1), F)]), "list")
bad(DN + "noise_conditional_denoiser", "architecture", ValueError,
    lambda: _dn.noise_conditional_denoiser((4,), architecture="unet"), "one of")
bad(DN + "noise_conditional_denoiser", "input_shape", ValueError,
    lambda: _dn.noise_conditional_denoiser((6, 6, 1)), "divisible", label="conv")
bad(DN + "NoisyBatches", "sigmas", ValueError,
    lambda: _dn.NoisyBatches(zeros((4, 2), F), [0.1, 0.0]), "positive")
bad(DN + "NoisyBatches", "data", TypeError, lambda: _dn.NoisyBatches(zeros(4, F), [0.1]))
bad(DN + "model_score", "model", TypeError, lambda: _dn.model_score(_dn_score))

# ------------------------------------------------------------ kexue.generative.gan: GAN training

from kexue.generative import gan as _gan_mod  # noqa: E402

GN = "kexue.generative.gan."
_GL = _gan_mod.GANLoss()


def _ring_gan(**kw):
    return _gan_mod.GAN(_gan_mod.mlp_generator(2, width=4), _gan_mod.mlp_discriminator(width=4),
                        2, **kw)


bad(GN + "GANLoss", "kind", ValueError, lambda: _gan_mod.GANLoss("wasserstein"), "one of")
bad(GN + "GANLoss", "real_logits", ValueError, lambda: _GL.d_loss(zeros((4, 2), F), zeros((4, 1), F)),
    "shape", label="d_loss shape")
bad(GN + "GANLoss", "fake_logits", TypeError, lambda: _GL.g_loss("logits"), label="g_loss type")
bad(GN + "single_loss", "loss", TypeError,
    lambda: _gan_mod.single_loss("hinge", zeros((2, 1), F), zeros((2, 1), F), zeros((2, 1), F)))
bad(GN + "single_loss", "lam", ValueError,
    lambda: _gan_mod.single_loss(_GL, zeros((2, 1), F), zeros((2, 1), F), zeros((2, 1), F),
                                 lam=nan))
bad(GN + "GAN", "generator", TypeError,
    lambda: _gan_mod.GAN("G", _gan_mod.mlp_discriminator(width=4), 2))
bad(GN + "GAN", "latent_dim", ValueError, lambda: _ring_gan().__class__(
    _gan_mod.mlp_generator(2, width=4), _gan_mod.mlp_discriminator(width=4), 0))
bad(GN + "GAN", "mode", ValueError, lambda: _ring_gan(mode="joint"), "one of")
bad(GN + "GAN", "lam", ValueError, lambda: _ring_gan(lam=0.0), label="lam zero")
bad(GN + "GAN", "loss", TypeError, lambda: _ring_gan(loss="hinge"), "d_loss", label="loss type")
bad(GN + "GAN", "d_optimizer", ValueError,
    lambda: _ring_gan().compile(optimizer="sgd", d_optimizer="sgd"), "alternating",
    label="d_optimizer in single_loss mode")
bad(GN + "GAN", "num", ValueError, lambda: _ring_gan().sample(0), label="sample num")
bad(GN + "GAN", "which", ValueError,
    lambda: _ring_gan().loss_gradients(zeros((2, 2), F), zeros((2, 2), F), "both"), "one of",
    label="loss_gradients which")
bad(GN + "mlp_generator", "latent_dim", TypeError, lambda: _gan_mod.mlp_generator(2.5))
bad(GN + "mlp_generator", "depth", ValueError, lambda: _gan_mod.mlp_generator(2, depth=-1))
bad(GN + "mlp_discriminator", "width", ValueError, lambda: _gan_mod.mlp_discriminator(width=0))
bad(GN + "dcgan_generator", "channels", ValueError, lambda: _gan_mod.dcgan_generator(8, 0))
bad(GN + "dcgan_discriminator", "channels", TypeError,
    lambda: _gan_mod.dcgan_discriminator("32"))

# ------------------------------------------- kexue.generative.divergences: f-divergences, f-GAN

from kexue.generative import divergences as _fdiv  # noqa: E402

FD = "kexue.generative.divergences."
_FD_P = np.linspace(-1.0, 1.0, 8)

bad(FD + "get_divergence", "divergence", ValueError, lambda: _fdiv.get_divergence("chi2"),
    "one of")
bad(FD + "get_divergence", "divergence", TypeError, lambda: _fdiv.get_divergence(3),
    label="type")
bad(FD + "variational_bound", "divergence", ValueError,
    lambda: _fdiv.variational_bound("hellinger", zeros((4, 1), F), zeros((4, 1), F)), "one of")
bad(FD + "variational_bound", "fake", ValueError,
    lambda: _fdiv.variational_bound("reverse_kl", -np.ones(3), np.ones(3), logits=False),
    "domain", label="outside the domain")
bad(FD + "variational_bound", "logits", TypeError,
    lambda: _fdiv.variational_bound("kl", zeros(3, F), zeros(3, F), logits="no"))
bad(FD + "variational_bound", "real", TypeError,
    lambda: _fdiv.variational_bound("kl", "v", zeros(3, F)), label="real type")
bad(FD + "optimal_critic", "ratio", ValueError,
    lambda: _fdiv.optimal_critic("kl", array([1.0, 0.0])), "positive")
bad(FD + "f_divergence_quadrature", "p_pdf", TypeError,
    lambda: _fdiv.f_divergence_quadrature("kl", 0.3, lambda x: 1.0, -1, 1))
bad(FD + "f_divergence_quadrature", "hi", ValueError,
    lambda: _fdiv.f_divergence_quadrature("kl", lambda x: 1.0, lambda x: 1.0, 1, -1), "greater")
bad(FD + "gaussian_f_divergence", "std_q", ValueError,
    lambda: _fdiv.gaussian_f_divergence("kl", 0, 1, 0, 0.0), "positive")
bad(FD + "gaussian_f_divergence", "mean_p", TypeError,
    lambda: _fdiv.gaussian_f_divergence("kl", "0"))
bad(FD + "estimate_divergences", "divergences", TypeError,
    lambda: _fdiv.estimate_divergences([], _FD_P, _FD_P))
bad(FD + "estimate_divergences", "divergences", ValueError,
    lambda: _fdiv.estimate_divergences(["kl", "kl"], _FD_P, _FD_P), "repeat", label="repeat")
bad(FD + "estimate_divergences", "q_samples", ValueError,
    lambda: _fdiv.estimate_divergences("kl", _FD_P, zeros((8, 2))), "dimension")
bad(FD + "estimate_divergences", "p_samples", ValueError,
    lambda: _fdiv.estimate_divergences("kl", array([0.0, nan]), _FD_P), "finite",
    label="p_samples finite")
bad(FD + "estimate_divergences", "steps", ValueError,
    lambda: _fdiv.estimate_divergences("kl", _FD_P, _FD_P, steps=0))
bad(FD + "FGANLoss", "divergence", ValueError, lambda: _fdiv.FGANLoss("wasserstein"), "one of")
bad(FD + "FGANLoss", "generator", ValueError, lambda: _fdiv.FGANLoss("kl", generator="ns"),
    "one of")
bad(FD + "FGANLoss", "swap", TypeError, lambda: _fdiv.FGANLoss("kl", swap=1))
bad(FD + "FGANLoss", "fake_logits", TypeError, lambda: _fdiv.FGANLoss("kl").g_loss("v"),
    label="g_loss type")
NO_BAD_INPUT[FD + "FDivergence"] = "a plain record that the table F_DIVERGENCES fills"


# ---- kexue.generative.quantization and autoregressive: VQ-VAE and its prior

from kexue.generative import autoregressive as _ar  # noqa: E402
from kexue.generative import quantization as _vq  # noqa: E402

VQ = "kexue.generative.quantization."
AR = "kexue.generative.autoregressive."


def _small_vqvae():
    enc = _vq.vq_encoder(code_dim=3, channels=4, res_blocks=0, input_shape=(8, 8, 1))
    dec = _vq.vq_decoder(code_dim=3, channels=4, res_blocks=0, grid=(2, 2))
    return _vq.VQVAE(enc, dec, _vq.VectorQuantizer(4))


def _small_prior():
    return _ar.code_transformer(4, grid=(2, 2), d_model=4, heads=1, layers=1)


bad(VQ + "straight_through", "proxy", ValueError,
    lambda: _vq.straight_through(zeros((2, 3), F), zeros((3, 2), F)), "same shape")
bad(VQ + "straight_through", "value", TypeError, lambda: _vq.straight_through("v", zeros(2, F)),
    label="type")
bad(VQ + "VectorQuantizer", "num_codes", ValueError, lambda: _vq.VectorQuantizer(1), ">= 2")
bad(VQ + "VectorQuantizer", "decay", ValueError, lambda: _vq.VectorQuantizer(4, decay=1.0))
bad(VQ + "VectorQuantizer", "ema", TypeError, lambda: _vq.VectorQuantizer(4, ema="yes"))
bad(VQ + "VectorQuantizer", "gamma", ValueError, lambda: _vq.VectorQuantizer(4, gamma=-1.0))
bad(VQ + "VectorQuantizer", "z", ValueError,
    lambda: _vq.VectorQuantizer(4, code_dim=3)(zeros((2, 5), F)), "code_dim=3",
    label="code_dim mismatch")
bad(VQ + "VectorQuantizer", "vectors", ValueError,
    lambda: (lambda q: (q.build((None, 2)), q.initialize_from(zeros((3, 2)))))(
        _vq.VectorQuantizer(4)), "at least", label="initialize_from too few")
bad(VQ + "codebook_perplexity", "codes", ValueError,
    lambda: _vq.codebook_perplexity(array([0, 4]), 4), r"\[0, 4\)")
bad(VQ + "codebook_perplexity", "codes", ValueError,
    lambda: _vq.codebook_perplexity(array([0.5]), 4), "integers", label="float")
bad(VQ + "code_usage", "num_codes", TypeError, lambda: _vq.code_usage(array([0]), 2.5))
bad(VQ + "code_usage", "codes", ValueError, lambda: _vq.code_usage(zeros(0, int), 3),
    "at least one", label="empty")
bad(VQ + "vq_encoder", "input_shape", ValueError, lambda: _vq.vq_encoder(input_shape=(30, 30, 1)),
    "divisible by 4")
bad(VQ + "vq_encoder", "res_blocks", ValueError, lambda: _vq.vq_encoder(res_blocks=-1))
bad(VQ + "vq_decoder", "grid", ValueError, lambda: _vq.vq_decoder(grid=(7,)), "rows, cols")
bad(VQ + "vq_decoder", "channels", TypeError, lambda: _vq.vq_decoder(channels="32"))
bad(VQ + "VQVAE", "quantizer", TypeError,
    lambda: _vq.VQVAE(_vq.vq_encoder(), _vq.vq_decoder(), "vq"), "VectorQuantizer")
bad(VQ + "VQVAE", "encoder", TypeError,
    lambda: _vq.VQVAE(None, _vq.vq_decoder(), _vq.VectorQuantizer(4)), label="encoder None")
bad(VQ + "VQVAE", "codes", ValueError, lambda: _small_vqvae().decode(full((1, 2, 2), 4)),
    r"\[0, 4\)", label="decode codes")
bad(VQ + "VQVAE", "batch_size", ValueError,
    lambda: _small_vqvae().encode(zeros((2, 8, 8, 1), F), batch_size=0), label="encode")
bad(AR + "GridPositionEmbedding", "rows", ValueError, lambda: _ar.GridPositionEmbedding(0, 3))
bad(AR + "GridPositionEmbedding", "h", ValueError,
    lambda: _ar.GridPositionEmbedding(2, 3)(zeros((1, 5, 4), F)), "rows\\*cols=6",
    label="length")
bad(AR + "code_transformer", "d_model", ValueError,
    lambda: _ar.code_transformer(4, d_model=6, heads=4), "divisible")
bad(AR + "code_transformer", "grid", ValueError, lambda: _ar.code_transformer(4, grid=(7, 0)),
    "rows, cols")
bad(AR + "code_transformer", "dropout", ValueError,
    lambda: _ar.code_transformer(4, dropout=1.0), label="dropout")
bad(AR + "prior_inputs", "codes", ValueError, lambda: _ar.prior_inputs(zeros((2, 4), int), 4),
    "shape")
bad(AR + "prior_inputs", "codes", ValueError, lambda: _ar.prior_inputs(full((1, 2, 2), 9), 4),
    r"\[0, 4\)", label="range")
bad(AR + "code_nll", "model", TypeError, lambda: _ar.code_nll("prior", zeros((1, 2, 2), int)))
bad(AR + "code_nll", "codes", ValueError,
    lambda: _ar.code_nll(_small_prior(), full((1, 2, 2), 4)), r"\[0, 4\)", label="range")
bad(AR + "sample_codes", "temperature", ValueError,
    lambda: _ar.sample_codes(_small_prior(), 2, temperature=0.0))
bad(AR + "sample_codes", "num", ValueError, lambda: _ar.sample_codes(_small_prior(), 0))
bad(AR + "sample_codes", "model", ValueError,
    lambda: _ar.sample_codes(keras.Sequential([keras.Input((4,)), keras.layers.Dense(4)]), 2),
    "GridPositionEmbedding", label="not a prior")

# ------------------------------- attention, Transformer blocks, the small BERT and its baseline

from kexue.layers import attention as _att  # noqa: E402
from kexue.models import baselines as _baselines  # noqa: E402
from kexue.models import bert as _bert  # noqa: E402

AT = "kexue.layers.attention."
BE = "kexue.models.bert."
_Q = zeros((2, 2, 6, 4), F)  # (batch, heads, n, d_k)
_XA = zeros((2, 6, 8), F)
_BV = _bert.BertVocab(["a", "b", "c"])
_BC = _bert.BertConfig(vocab_size=len(_BV), width=8, layers=1, heads=2, ffn_dim=8,
                       max_positions=6)

bad(AT + "attention_mask", "key_mask", ValueError, lambda: _att.attention_mask(zeros((2, 3, 4))),
    "shape")
bad(AT + "attention_mask", "causal", TypeError, lambda: _att.attention_mask(None, causal="yes"))
bad(AT + "scaled_dot_product_attention", "key_mask", ValueError,
    lambda: _att.scaled_dot_product_attention(_Q, _Q, _Q, key_mask=zeros((2, 5), bool)),
    r"shape \(batch=2, m=6\)", label="mask shape mismatch")
bad(AT + "scaled_dot_product_attention", "q", TypeError,
    lambda: _att.scaled_dot_product_attention(zeros((2, 2, 6, 4), "int32"), _Q, _Q))
bad(AT + "sinusoidal_positions", "dim", ValueError, lambda: _att.sinusoidal_positions(4, 5),
    "even")
bad(AT + "sinusoidal_shift_matrix", "shift", TypeError,
    lambda: _att.sinusoidal_shift_matrix(1.5, 4))
bad(AT + "SinusoidalPositionEmbedding", "merge", ValueError,
    lambda: _att.SinusoidalPositionEmbedding("mul"), "one of")
bad(AT + "SinusoidalPositionEmbedding", "dim", ValueError,
    lambda: _att.SinusoidalPositionEmbedding("concat"), label="concat without dim")
bad(AT + "PositionEmbedding", "inputs", ValueError,
    lambda: _att.PositionEmbedding(4)(_XA), "max_len=4", label="too long")
bad(AT + "PositionEmbedding", "max_len", ValueError, lambda: _att.PositionEmbedding(0))
bad(AT + "MultiHeadSelfAttention", "heads", ValueError,
    lambda: _att.MultiHeadSelfAttention(0, 4))
bad(AT + "MultiHeadSelfAttention", "key_mask", ValueError,
    lambda: _att.MultiHeadSelfAttention(2, 4)(_XA, key_mask=zeros((2, 5), bool)), "shape",
    label="mask shape mismatch")
bad(AT + "SynthesizerAttention", "kind", ValueError,
    lambda: _att.SynthesizerAttention("conv", 6, 2, 4), "one of")
bad(AT + "SynthesizerAttention", "factors", ValueError,
    lambda: _att.SynthesizerAttention("factorized_dense", 6, 2, 4, factors=(2, 2)), "a \\* b")
bad(AT + "SynthesizerAttention", "context", ValueError,
    lambda: _att.SynthesizerAttention("random", 6, 2, 4)(_XA, context=_XA + 1.0),
    "self-attention", label="cross-attention")
bad(AT + "TransformerBlock", "attention", TypeError,
    lambda: _att.TransformerBlock(2, 4, 8, attention="dot"))
bad(AT + "TransformerBlock", "attention", ValueError,
    lambda: _att.TransformerBlock(3, 3, 8, attention=_att.MultiHeadSelfAttention(
        3, 3, output_projection=False))(_XA), "heads \\* value_size", label="heads vs width")

bad(BE + "BertConfig", "heads", ValueError,
    lambda: _bert.BertConfig(vocab_size=50, width=8, heads=3), "divide",
    label="head size does not divide the width")
bad(BE + "BertConfig", "activation", ValueError,
    lambda: _bert.BertConfig(vocab_size=50, activation="tanh"), "one of")
bad(BE + "BertVocab", "chars", TypeError, lambda: _bert.BertVocab("abc"))
bad(BE + "BertVocab", "path", ValueError,
    lambda: _bert.BertVocab.load(__file__),
    "vocabulary file", label="load")
bad(BE + "build_vocab", "min_count", ValueError, lambda: _bert.build_vocab(["ab"], min_count=0))
bad(BE + "pack_sequences", "seq_len", ValueError, lambda: _bert.pack_sequences(_BV, ["ab"], 2))
bad(BE + "pack_sequences", "vocab", TypeError, lambda: _bert.pack_sequences(vocab(), ["ab"], 8))
bad(BE + "classification_inputs", "texts2", ValueError,
    lambda: _bert.classification_inputs(_BV, ["ab"], ["a", "b"]), "one text per text")
bad(BE + "classification_inputs", "texts", ValueError,
    lambda: _bert.classification_inputs(_BV, "ab"))
bad(BE + "mask_tokens", "token_ids", ValueError,
    lambda: _bert.mask_tokens(array([[2, 9, 3]]), 8, np.random.default_rng(0)), r"\[0, 8\)")
bad(BE + "mask_tokens", "rng", TypeError, lambda: _bert.mask_tokens(array([[2, 5, 3]]), 8, 0))
bad(BE + "mask_tokens", "rate", ValueError,
    lambda: _bert.mask_tokens(array([[2, 5, 3]]), 8, np.random.default_rng(0), rate=0.0))
bad(BE + "BertEmbedding", "config", TypeError, lambda: _bert.BertEmbedding("config"))
bad(BE + "MLMHead", "embedding", TypeError, lambda: _bert.MLMHead(_BC, "token embedding"))
bad(BE + "BertModel", "config", ValueError,
    lambda: _bert.BertModel({"vocab_size": 50, "wdth": 8}), "unknown fields")
bad(BE + "BertModel", "token_ids", ValueError,
    lambda: _bert.BertModel(_BC)(zeros((1, 9), "int32")), "max_positions=6", label="too long")
bad(BE + "BertModel", "token_ids", TypeError,
    lambda: _bert.BertModel(_BC)(zeros((1, 4), F)), label="float ids")
bad(BE + "ClsHead", "num_classes", ValueError, lambda: _bert.ClsHead(1))
bad(BE + "build_classifier", "bert", TypeError, lambda: _bert.build_classifier("bert", 2))
bad(BE + "masked_accuracy", "model", TypeError,
    lambda: _bert.masked_accuracy(seq_model(), zeros((2, 4), "int32")))
bad(BE + "pretrain", "vocab", ValueError,
    lambda: _bert.pretrain(_bert.BertConfig(vocab_size=50), _BV, ["ab"], 1), "but")
bad(BE + "pretrain", "steps", ValueError, lambda: _bert.pretrain(_BC, _BV, ["ab"], 0))
bad(BE + "pretrain", "init", ValueError,
    lambda: _bert.pretrain(_BC, _BV, ["ab"], 1, init=_bert.BertModel(
        _bert.BertConfig.from_dict({**_BC.to_dict(), "layers": _BC.layers + 1}))), "configuration")
bad(BE + "pretrain", "init", TypeError, lambda: _bert.pretrain(_BC, _BV, ["ab"], 1, init="m"))
bad(BE + "untie_blocks", "model", TypeError, lambda: _bert.untie_blocks("albert"))
bad(BE + "untie_blocks", "model", ValueError, lambda: _bert.untie_blocks(_bert.BertModel(_BC)),
    "shared_blocks", label="not shared")
bad(BE + "fine_tune", "x", TypeError, lambda: _bert.fine_tune(functional(), zeros((2, 4)), [0, 1]))
bad(BE + "fine_tune", "y", ValueError,
    lambda: _bert.fine_tune(functional(), {"token_ids": zeros((2, 4))}, [0, 1, 1]), "shape")
bad(BE + "PretrainSpec", "heads", ValueError,
    lambda: _bert.PretrainSpec(config={"width": 8, "heads": 3}), "divide")
bad(BE + "PretrainSpec", "config", TypeError,
    lambda: _bert.PretrainSpec(config={"vocab_size": 9}), label="vocab_size given")
bad(BE + "provenance_hashes", "spec", TypeError, lambda: _bert.provenance_hashes("small-bert"))
bad(BE + "write_checkpoint", "spec", TypeError,
    lambda: _bert.write_checkpoint("/nonexistent", "x", {}, _BV, None))
bad(BE + "read_record", "name", TypeError, lambda: _bert.read_record(3))
bad(BE + "check_checkpoint", "name", ValueError, lambda: _bert.check_checkpoint("huge-bert"),
    "one of")
bad(BE + "load_pretrained", "name", ValueError, lambda: _bert.load_pretrained("huge-bert"),
    "one of")
bad(BE + "load_or_train", "name", ValueError, lambda: _bert.load_or_train("huge-bert"), "one of")
bad("kexue.models.baselines.bag_of_characters", "vocab_size", ValueError,
    lambda: _baselines.bag_of_characters(1, 3))
NO_BAD_INPUT[BE + "clue_pretraining_texts"] = "takes no arguments"
NO_BAD_INPUT[BE + "PretrainResult"] = "a plain record that pretrain fills"
NO_BAD_INPUT[BE + "CheckpointError"] = "an exception class: any message is valid"
NO_BAD_INPUT[BE + "main"] = "the command line: argparse reports bad arguments and exits"

# ------------------------------- kexue.generative.vae and kexue.regularizers (NVAE), BN recalibration

from kexue import regularizers as _reg  # noqa: E402
from kexue.generative import vae as _vae  # noqa: E402

VA = "kexue.generative.vae."
RG = "kexue.regularizers."
_HV_CACHE = []


def _hv():
    """One tiny HierarchicalVAE, built once for the cases that call its methods."""
    if not _HV_CACHE:
        _HV_CACHE.append(_vae.HierarchicalVAE((8, 8, 1), scales=((2, 1, 2),), channels=4))
    return _HV_CACHE[0]


def _bn_model():
    return keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization()])


bad(VA + "gaussian_log_prob", "mean", ValueError,
    lambda: _vae.gaussian_log_prob(zeros(3, F), zeros(4, F), zeros(3, F)), "shape")
bad(VA + "bernoulli_log_prob", "logits", TypeError,
    lambda: _vae.bernoulli_log_prob(zeros(3, F), "logits"))
bad(VA + "gaussian_kl", "logvar2", ValueError,
    lambda: _vae.gaussian_kl(zeros(2), zeros(2), zeros(2), array([0.0, nan])), "finite")
bad(VA + "residual_normal_kl", "delta_logvar", TypeError,
    lambda: _vae.residual_normal_kl(zeros(2, F), array([1, 2]), zeros(2, F)), "float")
bad(VA + "linear_gaussian_chain", "std2", ValueError,
    lambda: _vae.linear_gaussian_chain(0.0, 1.0, 0.5, 0.0, 0.0))
bad(VA + "multivariate_gaussian_kl", "cov_q", ValueError,
    lambda: _vae.multivariate_gaussian_kl(zeros(2), eye(2), zeros(2), -eye(2)), "definite")
bad(VA + "multivariate_gaussian_kl", "mean_q", ValueError,
    lambda: _vae.multivariate_gaussian_kl(zeros(2), eye(2), zeros(3), eye(2)), "shape",
    label="mean shape")
bad(VA + "chain_kl_terms", "prior", ValueError,
    lambda: _vae.chain_kl_terms((0.0, 1.0, 0.5, 0.0, 1.0), (1.0, 2.0)), "tuple")
bad(VA + "latent_count", "sizes", ValueError, lambda: _vae.latent_count([1, 2], [8], 4),
    "match")
bad(VA + "latent_count", "channels[0]", ValueError, lambda: _vae.latent_count([1], [8], 0),
    label="channels")
bad(VA + "SqueezeExcitation", "reduction", ValueError, lambda: _vae.SqueezeExcitation(0))
bad(VA + "EncoderCell", "channels", TypeError, lambda: _vae.EncoderCell(2.5))
bad(VA + "EncoderCell", "inputs", ValueError,
    lambda: _vae.EncoderCell(4)(zeros((2, 4, 4, 3), F)), "shape", label="input channels")
bad(VA + "DecoderCell", "expand", ValueError, lambda: _vae.DecoderCell(4, expand=0))
bad(VA + "HierarchicalVAE", "scales", ValueError,
    lambda: _vae.HierarchicalVAE((8, 8, 1), scales=((5, 1, 2),), channels=4), "halved")
bad(VA + "HierarchicalVAE", "residual_posterior", TypeError,
    lambda: _vae.HierarchicalVAE((8, 8, 1), scales=((2, 1, 2),), residual_posterior="yes"))
bad(VA + "HierarchicalVAE", "x", ValueError, lambda: _hv().elbo(zeros((2, 4, 4, 1), F)),
    "shape", label="elbo shape")
bad(VA + "HierarchicalVAE", "k", ValueError,
    lambda: _hv().iwae_bound(zeros((2, 8, 8, 1), F), k=0), label="iwae k")
bad(VA + "HierarchicalVAE", "temperature", ValueError, lambda: _hv().sample(2, -1.0),
    label="sample temperature")
bad(VA + "BernoulliBatches", "images", ValueError,
    lambda: _vae.BernoulliBatches(full((4, 3), 2.0, F)), r"\[0, 1\]")
bad(RG + "spectral_norm_estimate", "kernel", ValueError,
    lambda: _reg.spectral_norm_estimate(zeros(3, F)), "axes")
bad(RG + "spectral_norm_estimate", "iterations", ValueError,
    lambda: _reg.spectral_norm_estimate(eye(3, dtype=F), iterations=0))
bad(RG + "SpectralPenalty", "strength", ValueError, lambda: _reg.SpectralPenalty(-1.0))
bad(RG + "spectral_penalty", "model", TypeError, lambda: _reg.spectral_penalty("model"))
bad("kexue.training.recalibrate_batchnorm", "model", ValueError,
    lambda: training.recalibrate_batchnorm(seq_model(), [zeros((2, 4), F)]), "BatchNormalization")
bad("kexue.training.recalibrate_batchnorm", "batches", TypeError,
    lambda: training.recalibrate_batchnorm(_bn_model(), 3), label="batches type")
bad("kexue.training.recalibrate_batchnorm", "batches", ValueError,
    lambda: training.recalibrate_batchnorm(_bn_model(), []), "at least one", label="empty")

# ------------------------------- kexue.models.encoders: Synthesizer encoder classifiers, retrieval

from kexue.models import encoders as _enc  # noqa: E402

EN = "kexue.models.encoders."
bad(EN + "encoder_classifier", "heads", ValueError,
    lambda: _enc.encoder_classifier("dot", 10, 2, 8, dim=10, heads=4), "divide")
bad(EN + "encoder_classifier", "kind", ValueError,
    lambda: _enc.encoder_classifier("linear", 10, 2, 8), "one of", label="kind")
bad(EN + "encoder_classifier", "vocab_size", ValueError,
    lambda: _enc.encoder_classifier("dot", (10, 1), 2, 8), "list", label="vocab_size")
bad(EN + "encoder_classifier", "pooling", ValueError,
    lambda: _enc.encoder_classifier("dot", 10, 2, 8, pooling="max"), "one of", label="pooling")
bad(EN + "encoder_attention", "model", TypeError, lambda: _enc.encoder_attention("m", zeros(2)))
bad(EN + "encoder_attention", "inputs", ValueError,
    lambda: _enc.encoder_attention(_enc.encoder_classifier("dot", 10, 2, 8, dim=8, heads=2),
                                   zeros(3, "int32")), "shape", label="inputs rank")
bad(EN + "key_value_retrieval", "keys", ValueError,
    lambda: _enc.key_value_retrieval(10, pairs=8, keys=4), "distinct")
bad(EN + "key_value_retrieval", "num", ValueError, lambda: _enc.key_value_retrieval(0),
    label="num")
bad(EN + "SelectPosition", "index", TypeError, lambda: _enc.SelectPosition(1.5))
bad(EN + "SelectPosition", "index", ValueError, lambda: _enc.SelectPosition(5)(X3), "got 5",
    label="index range")

# ------------------------------------------------ kexue.models.enlarge: width-k BERT enlargement

from kexue.models import enlarge as _enlarge  # noqa: E402

ENL = "kexue.models.enlarge."
bad(ENL + "repeat_axes", "k", ValueError, lambda: _enlarge.repeat_axes(zeros(3), 0), ">= 1")
bad(ENL + "repeat_axes", "axes", ValueError, lambda: _enlarge.repeat_axes(zeros((2, 3)), 2, (1, -1)),
    "distinct", label="repeated axis")
bad(ENL + "repeat_axes", "axes", TypeError, lambda: _enlarge.repeat_axes(zeros(3), 2, [0]),
    label="list")
bad(ENL + "repeat_axes", "layout", ValueError,
    lambda: _enlarge.repeat_axes(zeros(3), 2, layout="spread"), "one of")
bad(ENL + "repeat_axes", "array", TypeError, lambda: _enlarge.repeat_axes("abc", 2))
bad(ENL + "enlarge_bert", "model", TypeError, lambda: _enlarge.enlarge_bert(seq_model(), 2),
    "BertModel")
bad(ENL + "enlarge_bert", "k", ValueError, lambda: _enlarge.enlarge_bert(_bert.BertModel(_BC), 0))
bad(ENL + "enlarge_bert", "layout", ValueError,
    lambda: _enlarge.enlarge_bert(_bert.BertModel(_BC), 2, layout="tiled"), "one of")
bad(ENL + "enlarge_bert", "scale_epsilon", TypeError,
    lambda: _enlarge.enlarge_bert(_bert.BertModel(_BC), 2, scale_epsilon="yes"))

# ------------------------------------------ kexue.models.compression: module replacement (Theseus)

from kexue.models import compression as _comp  # noqa: E402

CO = "kexue.models.compression."
_PRED = _bert.BertConfig.from_dict({**_BC.to_dict(), "layers": 2})


def _theseus(**kw):
    pred = _bert.BertModel(_PRED)
    return _comp.TheseusModel(pred, _comp.first_layers(pred, 1), _bert.ClsHead(2), **kw)


bad(CO + "first_layers", "model", TypeError, lambda: _comp.first_layers("bert", 1))
bad(CO + "first_layers", "n", ValueError,
    lambda: _comp.first_layers(_bert.BertModel(_PRED), 3), label="more layers")
bad(CO + "TheseusModel", "successor", ValueError,
    lambda: _comp.TheseusModel(_bert.BertModel(_PRED), _bert.BertModel(_BC).__class__(
        _bert.BertConfig.from_dict({**_PRED.to_dict(), "layers": 3})), _bert.ClsHead(2)),
    "divide", label="layers")
bad(CO + "TheseusModel", "head", TypeError,
    lambda: _comp.TheseusModel(_bert.BertModel(_PRED), _bert.BertModel(_BC), "head"))
bad(CO + "TheseusModel", "replace_rate", ValueError, lambda: _theseus(replace_rate=1.5))
bad(CO + "TheseusModel", "granularity", ValueError, lambda: _theseus(granularity="token"))
bad(CO + "TheseusModel", "replaced", ValueError,
    lambda: _theseus()(zeros((1, 4), "int32") + 1, training=True, replaced=[True, False]),
    "shape", label="replaced shape")

# ------------------------------------------------------------ kexue.stats.moving_average
bad("kexue.stats.moving_average", "values", ValueError,
    lambda: stats.moving_average([], 3), "non-empty", label="empty")
bad("kexue.stats.moving_average", "values", ValueError,
    lambda: stats.moving_average([1.0, nan], 1), label="NaN")
bad("kexue.stats.moving_average", "window", ValueError,
    lambda: stats.moving_average([1.0, 2.0], 0), label="zero")
bad("kexue.stats.moving_average", "parts", TypeError,
    lambda: stats.moving_average([1.0, 2.0], 1, parts=1.5), label="float")

# ------------------------------------------------- kexue.models.cost: parameters, compute, memory

from kexue.models import cost as _cost  # noqa: E402

CS = "kexue.models.cost."
bad(CS + "block_parameters", "config", TypeError, lambda: _cost.block_parameters(64))
bad(CS + "parameter_count", "config", TypeError, lambda: _cost.parameter_count("bert"))
bad(CS + "parameter_count", "parts", TypeError, lambda: _cost.parameter_count(_BC, parts=1),
    label="parts")
bad(CS + "multiply_adds_per_token", "seq_len", ValueError,
    lambda: _cost.multiply_adds_per_token(_BC, 0))
bad(CS + "multiply_adds_per_token", "mlm_fraction", ValueError,
    lambda: _cost.multiply_adds_per_token(_BC, 8, mlm_fraction=1.5), label="fraction")
bad(CS + "training_memory", "batch_size", ValueError, lambda: _cost.training_memory(_BC, 0, 8))
bad(CS + "training_memory", "bytes_per_float", TypeError,
    lambda: _cost.training_memory(_BC, 2, 8, bytes_per_float=4.0), label="bytes")

# ------------------------------- kexue.models.bert.PooledHead, kexue.models.encoders: pooled heads

from kexue.models import encoders as _enc_heads  # noqa: E402

EH = "kexue.models.encoders."
bad("kexue.models.bert.PooledHead", "num_classes", ValueError, lambda: _bert.PooledHead(1))
bad("kexue.models.bert.PooledHead", "pooling", ValueError, lambda: _bert.PooledHead(3, "max"),
    "one of")
bad("kexue.models.bert.PooledHead", "dropout", ValueError,
    lambda: _bert.PooledHead(3, dropout=1.0))
bad("kexue.models.bert.PooledHead", "inputs", ValueError,
    lambda: _bert.PooledHead(3)(zeros((2, 4), F)), "shape", label="rank 2")
bad(EH + "pooled_classifier", "encoder", TypeError,
    lambda: _enc_heads.pooled_classifier("bert", 3))
bad(EH + "pooled_classifier", "pooling", ValueError,
    lambda: _enc_heads.pooled_classifier(_bert.BertModel(_BC), 3, "max"), label="pooling")
bad(CO + "TheseusModel", "replace_embedding", TypeError,
    lambda: _theseus(replace_embedding="yes"), label="replace_embedding")
bad(CO + "TheseusModel", "replaced", ValueError,
    lambda: _theseus(replace_embedding=True)(zeros((1, 4), "int32") + 1, training=True,
                                             replaced=[True]),
    "shape", label="replaced with the embedding module")
bad(CO + "fit_theseus", "theseus", TypeError,
    lambda: _comp.fit_theseus("model", {"token_ids": zeros((2, 4), "int32")}, [0, 1]))
bad(CO + "fit_theseus", "x", TypeError,
    lambda: _comp.fit_theseus(_theseus(), zeros((2, 4), "int32"), [0, 1]), label="x array")
bad(CO + "fit_theseus", "y", ValueError,
    lambda: _comp.fit_theseus(_theseus(), {"token_ids": zeros((2, 4), "int32") + 1}, [0, 1, 1]),
    "shape", label="y length")

# ------------------------------ kexue.models.electra and kexue.generative.gan: replaced tokens

from kexue.generative import gan as _gan  # noqa: E402
from kexue.models import electra as _el  # noqa: E402

EL = "kexue.models.electra."
_I2 = zeros((2, 4), "int32")
_P2 = zeros((2, 1), "int32")
_PQ = full((2, 3), 1 / 3)
bad(EL + "generator_config", "fraction", ValueError, lambda: _el.generator_config(_BC, 0.0))
bad(EL + "generator_config", "fraction", ValueError, lambda: _el.generator_config(_BC, 0.875),
    "divide", label="indivisible width")
bad(EL + "ElectraGenerator", "config", ValueError,
    lambda: _el.ElectraGenerator(_bert.BertConfig.from_dict({**_BC.to_dict(),
                                                             "shared_blocks": True})), "post-LN")
bad(EL + "ElectraGenerator", "token_embedding", TypeError,
    lambda: _el.ElectraGenerator(_BC, token_embedding="emb"), label="type")
bad(EL + "ElectraGenerator", "token_embedding", ValueError,
    lambda: _el.ElectraGenerator(_BC, token_embedding=keras.layers.Embedding(99, 8)),
    "map", label="size")
bad(EL + "ElectraGenerator", "inputs", ValueError,
    lambda: _el.ElectraGenerator(_BC)({"ids": _I2}), "token_ids", label="inputs")
bad(EL + "Electra", "discriminator", TypeError, lambda: _el.Electra("bert"))
bad(EL + "Electra", "generator_fraction", ValueError,
    lambda: _el.Electra(_bert.BertModel(_BC), generator_fraction=2.0), label="fraction")
bad(EL + "Electra", "rtd_weight", ValueError,
    lambda: _el.Electra(_bert.BertModel(_BC), rtd_weight=-1.0), label="weight")
bad(EL + "Electra", "inputs", ValueError,
    lambda: _el.Electra(_bert.BertModel(_BC))({"token_ids": _I2}), "original_ids",
    label="inputs")
bad(EL + "replace_tokens", "sampled_ids", ValueError,
    lambda: _el.replace_tokens(_I2, _P2, _P2, zeros((2, 2), "int32")), "shape")
bad(EL + "replace_tokens", "mlm_positions", TypeError,
    lambda: _el.replace_tokens(_I2, zeros((2, 1), F), _P2, _P2), "int", label="dtype")
bad(EL + "rtd_loss", "rtd_labels", ValueError,
    lambda: _el.rtd_loss(zeros((2, 1, 5), F), _P2, _P2, zeros((2, 4), F), zeros((2, 3)),
                         _I2), "shape")
bad(EL + "rtd_loss", "rtd_weight", ValueError,
    lambda: _el.rtd_loss(zeros((2, 1, 5), F), _P2, _P2, zeros((2, 4), F), _I2, _I2,
                         rtd_weight=-2.0), label="weight")
bad(EL + "pretrain_electra", "steps", ValueError,
    lambda: _el.pretrain_electra(_BC, _BV, ["abc"], 0))
bad(EL + "pretrain_electra", "vocab", ValueError,
    lambda: _el.pretrain_electra(_BC.__class__.from_dict({**_BC.to_dict(), "vocab_size": 20}),
                                 _BV, ["abc"], 1), "agree", label="vocab size")
bad(EL + "pretrain_electra", "jit_compile", ValueError,
    lambda: _el.pretrain_electra(_BC, _BV, ["abc"], 1, jit_compile="yes"), label="jit")
bad(EL + "rtd_metrics", "electra", TypeError, lambda: _el.rtd_metrics("pair", _I2))
bad(EL + "rtd_metrics", "sequences", ValueError,
    lambda: _el.rtd_metrics(_el.Electra(_bert.BertModel(_BC)), zeros(4, "int32")), "shape",
    label="rank")
bad(EL + "rtd_optimal_discriminator", "p", ValueError,
    lambda: _el.rtd_optimal_discriminator(full((2, 3), 0.5), _PQ), "distribution")
bad(EL + "rtd_optimal_discriminator", "q", ValueError,
    lambda: _el.rtd_optimal_discriminator(_PQ, full((3, 3), 1 / 3)), "shape", label="shape")
bad(EL + "rtd_optimal_discriminator", "mask_rate", ValueError,
    lambda: _el.rtd_optimal_discriminator(_PQ, _PQ, 1.0), label="rate")
bad(EL + "simulate_rtd", "draws", ValueError, lambda: _el.simulate_rtd(_PQ, _PQ, draws=0))
bad(EL + "simulate_rtd", "context_probs", ValueError,
    lambda: _el.simulate_rtd(_PQ, _PQ, context_probs=[1.0]), "one probability",
    label="contexts")
NO_BAD_INPUT[EL + "ElectraResult"] = "a plain record that pretrain_electra fills"
bad("kexue.generative.gan.optimal_discriminator", "q", ValueError,
    lambda: _gan.optimal_discriminator([0.5], [-0.1]), "non-negative")
bad("kexue.generative.gan.optimal_discriminator", "p", ValueError,
    lambda: _gan.optimal_discriminator([nan], [0.1]), label="nan")
bad("kexue.generative.gan.fit_logistic_discriminator", "samples_q", ValueError,
    lambda: _gan.fit_logistic_discriminator(zeros((4, 2)), zeros((4, 3))), "dimension")
bad("kexue.generative.gan.fit_logistic_discriminator", "samples_p", ValueError,
    lambda: _gan.fit_logistic_discriminator(zeros(0), zeros(3)), "at least one",
    label="empty")
bad("kexue.generative.gan.fit_logistic_discriminator", "steps", ValueError,
    lambda: _gan.fit_logistic_discriminator(zeros(3), zeros(3), steps=0), label="steps")

# ------------------------------------------------------------ tagging (kexue.models.bert)
bad("kexue.models.bert.tagging_inputs", "texts", ValueError,
    lambda: _bert.tagging_inputs(_bert.BertVocab.fit(["ab"], min_count=1), ["abcdef"],
                                 max_len=4), "at most", label="too long")
bad("kexue.models.bert.tagging_inputs", "tags", ValueError,
    lambda: _bert.tagging_inputs(_bert.BertVocab.fit(["ab"], min_count=1), ["ab"], [[0]],
                                 max_len=4), "one non-negative tag", label="length")
bad("kexue.models.bert.build_tagger", "bert", TypeError, lambda: _bert.build_tagger("bert", 4))
bad("kexue.models.bert.build_tagger", "num_tags", ValueError,
    lambda: _bert.build_tagger(_bert.BertModel(_PRED), 1))
bad("kexue.models.bert.fine_tune", "sample_weight", ValueError,
    lambda: _bert.fine_tune(_bert.build_tagger(_bert.BertModel(_PRED), 2),
                            {"token_ids": zeros((2, 4), "int32") + 5,
                             "segment_ids": zeros((2, 4), "int32")},
                            zeros((2, 4), "int32"), sample_weight=zeros((2, 3))),
    label="shape")
bad("kexue.models.baselines.character_tagger", "window", ValueError,
    lambda: _baselines.character_tagger(10, 4, window=2), "odd", label="even")
bad("kexue.models.baselines.character_tagger", "num_tags", ValueError,
    lambda: _baselines.character_tagger(10, 1))

# ------------------------------------------- segmentation tagging and ELECTRA checkpoints
bad(BE + "segmentation_pieces", "sentences", TypeError,
    lambda: _bert.segmentation_pieces("天气很好"))
bad(BE + "segmentation_pieces", "max_len", ValueError,
    lambda: _bert.segmentation_pieces([["天气"]], max_len=2))
bad(BE + "segmentation_inputs", "pieces", TypeError,
    lambda: _bert.segmentation_inputs(_BV, ["天气"]))
bad(BE + "segmented_words", "pieces", ValueError,
    lambda: _bert.segmented_words([["ab"]], zeros((2, 6), "int32")), "one word list",
    label="count")
bad(BE + "segmented_words", "logits", ValueError,
    lambda: _bert.segmented_words([["abcdef"]], zeros((1, 4), "int32")), "more than",
    label="too short")
bad(BE + "ElectraSpec", "generator_fraction", ValueError,
    lambda: _bert.ElectraSpec(config={"width": 8, "heads": 2}, generator_fraction=0.0))
bad(BE + "ElectraSpec", "rtd_weight", ValueError,
    lambda: _bert.ElectraSpec(config={"width": 8, "heads": 2}, rtd_weight=-1.0))
bad(CS + "pretraining_multiply_adds", "objective", ValueError,
    lambda: _cost.pretraining_multiply_adds(_BC, 8, "gan"))
bad(CS + "pretraining_multiply_adds", "mask_rate", ValueError,
    lambda: _cost.pretraining_multiply_adds(_BC, 8, mask_rate=2.0))

# ---------------------------- kexue.models.compression: module replacement with a per-token head
_TAG_HEAD = keras.layers.Dense(4)
_TAG_HEAD.build((None, None, _BC.width + 1))
bad(CO + "TheseusModel", "head", ValueError,
    lambda: _comp.TheseusModel(_bert.BertModel(_PRED), _comp.first_layers(
        _bert.BertModel(_PRED), 1), _TAG_HEAD), "width", label="per-token head width")
bad(CO + "TheseusModel", "token_dropout", ValueError, lambda: _theseus(token_dropout=1.0))
bad(CO + "fit_theseus", "sample_weight", ValueError,
    lambda: _comp.fit_theseus(_theseus(), {"token_ids": zeros((2, 4), "int32") + 1}, [0, 1],
                              sample_weight=zeros(3)), "shape", label="sample_weight length")
