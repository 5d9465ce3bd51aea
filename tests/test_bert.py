"""kexue.models.bert and baselines: vocabulary, packing, MLM masking statistics, the model's
parts, pre-training through the checkpoint code path, provenance hashes, corrupt and stale
checkpoints, and the committed checkpoint against the current code."""

import json
import sys
import warnings

import keras
import numpy as np
import pytest
from kexue.models import bert
from kexue.models.baselines import bag_of_characters
from kexue.models.bert import (
    PRETRAINED,
    PRETRAINED_DIR,
    BertConfig,
    BertModel,
    BertVocab,
    CheckpointError,
    PretrainSpec,
)

TEXTS = ["今天天气很好", "我们去公园玩吧", "机器学习很有趣", "北京是中国的首都", "你好世界",
         "一二三四五六七八九十"] * 6
VOCAB = BertVocab.fit(TEXTS, min_count=1)
TINY = dict(width=8, layers=2, heads=2, ffn_dim=16, max_positions=16, dropout=0.0)


def np_(x):
    return keras.ops.convert_to_numpy(x)


def tiny(**kw):
    return BertModel(BertConfig(vocab_size=len(VOCAB), **{**TINY, **kw}))


# ------------------------------------------------------------------ vocabulary and inputs


def test_vocab_special_tokens_and_file_round_trip(tmp_path):
    assert VOCAB.tokens[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert min(VOCAB.index.values()) == 5 and len(VOCAB) == len(VOCAB.chars) + 5
    assert VOCAB.encode("天?").tolist() == [VOCAB.index["天"], VOCAB.UNK]
    VOCAB.save(tmp_path / "vocab.txt")
    again = BertVocab.load(tmp_path / "vocab.txt")
    assert again.tokens == VOCAB.tokens


def test_pretraining_texts_come_from_training_splits_only(monkeypatch):
    import kexue.data

    asked = []

    def fake(task, split="train"):
        asked.append((task, split))
        if task == "afqmc":
            return [{"sentence1": "问一", "sentence2": "问二", "label": 0}]
        return [{"sentence": f"{task}文本", "label": 0}]

    monkeypatch.setattr(kexue.data, "load_clue", fake)
    texts = bert.clue_pretraining_texts()
    assert sorted(asked) == [("afqmc", "train"), ("iflytek", "train"), ("tnews", "train")]
    assert texts == ["tnews文本", "iflytek文本", "问一", "问二"]


def test_pack_sequences_fills_rows_and_cuts_long_texts():
    rows = bert.pack_sequences(VOCAB, ["今天", "你好世界", "一二三四五六七八九十"], 8)
    e = VOCAB.encode
    first = [2, *e("今天"), 3]
    assert rows[0, :4].tolist() == first
    # every row starts with [CLS], no text piece longer than 6 characters, nothing lost
    assert (rows[:, 0] == 2).all() and rows.shape[1] == 8
    chars = [int(i) for i in rows.ravel() if i >= 5]
    assert len(chars) == 2 + 4 + 10


def test_classification_inputs_single_and_pair():
    single = bert.classification_inputs(VOCAB, ["今天天气"], max_len=8)
    assert single["token_ids"][0].tolist() == [2, *VOCAB.encode("今天天气"), 3, 0, 0]
    assert single["segment_ids"].sum() == 0
    pair = bert.classification_inputs(VOCAB, ["今天天气很好"], ["你好"], max_len=8)
    ids, seg = pair["token_ids"][0].tolist(), pair["segment_ids"][0].tolist()
    assert ids == [2, *VOCAB.encode("今天天"), 3, *VOCAB.encode("你好"), 3]  # longer side cut
    assert seg == [0, 0, 0, 0, 0, 1, 1, 1]


# ------------------------------------------------------------------ MLM masking


def test_masking_statistics_on_1e5_tokens():
    rng = np.random.default_rng(0)
    V, T = 500, 100
    lengths = rng.integers(20, T - 1, 1800)
    ids = np.zeros((1800, T), "int32")
    for i, n in enumerate(lengths):
        ids[i, 0], ids[i, 1:n + 1], ids[i, n + 1] = 2, rng.integers(5, V, n), 3
    assert lengths.sum() >= 1e5
    out = bert.mask_tokens(ids, V, np.random.default_rng(1))
    w = out["mlm_weights"].astype(bool)
    rows = np.repeat(np.arange(len(ids))[:, None], w.shape[1], axis=1)[w]
    pos = out["mlm_positions"][w]
    assert (ids[rows, pos] >= 5).all(), "a special token or padding was chosen"
    np.testing.assert_array_equal(out["mlm_labels"][w], ids[rows, pos])
    changed = out["token_ids"] != ids
    assert not changed[ids < 5].any(), "padding or a special token was changed"
    assert w.sum() / lengths.sum() == pytest.approx(0.15, abs=0.005)
    new = out["token_ids"][rows, pos]
    masked = (new == 4).mean()
    kept = (new == ids[rows, pos]).mean()
    random = 1 - masked - kept
    assert masked == pytest.approx(0.8, abs=0.01)
    assert kept == pytest.approx(0.1 + 0.1 / (V - 5), abs=0.01)
    assert random == pytest.approx(0.1, abs=0.01)
    # only the chosen positions change
    assert changed.sum() == ((new != ids[rows, pos]).sum())
    # the same seed gives the same masking
    again = bert.mask_tokens(ids, V, np.random.default_rng(1))
    np.testing.assert_array_equal(again["token_ids"], out["token_ids"])


def test_a_row_without_real_tokens_gets_no_prediction():
    out = bert.mask_tokens(np.array([[2, 3, 0, 0], [2, 7, 8, 3]]), 10, np.random.default_rng(0))
    assert out["mlm_weights"][0].sum() == 0 and out["mlm_weights"][1].sum() == 1


# ------------------------------------------------------------------ the model's parts


def test_parts_tied_head_and_hidden_states():
    model = tiny()
    assert model.mlm.logits.kernel is model.embedding.token.embeddings
    ids = bert.classification_inputs(VOCAB, TEXTS[:3], max_len=12)["token_ids"]
    hidden = model.encode(ids, return_hidden=True)
    assert len(hidden) == 3 and all(h.shape == (3, 12, 8) for h in hidden)
    np.testing.assert_allclose(np_(model(ids)), np_(hidden[-1]), atol=1e-6)
    # the MLM logits at chosen positions are those of the full sequence there
    pos = np.array([[1, 2], [3, 1], [0, 4]])
    full = np_(model.mlm_logits(hidden[-1]))
    at = np_(model({"token_ids": ids, "mlm_positions": pos}))
    np.testing.assert_allclose(at, np.take_along_axis(full, pos[:, :, None], axis=1), atol=1e-5)


def test_padding_does_not_reach_real_positions():
    model = tiny()
    ids = bert.classification_inputs(VOCAB, ["今天天气很好"], max_len=16)["token_ids"]
    short = ids[:, :8]
    np.testing.assert_allclose(np_(model(ids))[:, :8], np_(model(short)), atol=1e-5)


def test_shared_blocks_and_factorised_embedding_parameter_counts():
    V, E, H, F, L = len(VOCAB), 4, 8, 16, 3
    shared = tiny(layers=L, shared_blocks=True, embedding_dim=E)
    untied = tiny(layers=L, embedding_dim=E)
    assert shared.blocks[0] is shared.blocks[2] and len(shared.blocks) == L
    block = 4 * (H * H + H) + 2 * 2 * H + (H * F + F) + (F * H + H)
    embed = V * E + (E * H + H) + 2 * H + 16 * H + 2 * H
    head = H * E + E + 2 * E + V
    assert shared.count_params() == embed + block + head
    assert untied.count_params() == embed + L * block + head


def test_heads_must_divide_the_width():
    with pytest.raises(ValueError, match="heads must divide width=8"):
        BertConfig(vocab_size=50, width=8, heads=3)


def test_classifier_and_bert_round_trip_as_keras(tmp_path):
    model = tiny(pre_ln=True)
    clf = bert.build_classifier(model, 3)
    x = bert.classification_inputs(VOCAB, TEXTS[:4], TEXTS[4:8], max_len=16)
    before = np_(clf(x))
    clf.save(tmp_path / "clf.keras")
    again = keras.saving.load_model(tmp_path / "clf.keras")
    np.testing.assert_allclose(np_(again(x)), before, atol=1e-6)
    inner = [layer for layer in again.layers if isinstance(layer, BertModel)][0]
    assert inner.config == model.config
    assert inner.mlm.logits.kernel is inner.embedding.token.embeddings


def test_bag_of_characters_is_a_mean_and_one_dense_layer():
    model = bag_of_characters(len(VOCAB), 3, dim=4)
    ids = bert.classification_inputs(VOCAB, ["今天", "你好世界"], max_len=8)["token_ids"]
    emb = np_(model.get_layer("char_embedding").embeddings)
    kernel, bias = (np_(w) for w in model.get_layer("logits").weights)
    mean = np.stack([emb[row[row > 0]].mean(0) for row in ids])
    np.testing.assert_allclose(np_(model(ids)), mean @ kernel + bias, atol=1e-5)
    assert model.count_params() == len(VOCAB) * 4 + 5 * 3


# ------------------------------------------------------------------ pre-training and checkpoints

SPEC = PretrainSpec(config=TINY, steps=2, batch_size=4, learning_rate=1e-2, held_out=0.2,
                    min_count=1)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny checkpoint made by the code path of `make pretrained` (two steps)."""
    folder = tmp_path_factory.mktemp("ckpt")
    vocab, result = bert._train_checkpoint(SPEC, texts=TEXTS)
    record = bert.write_checkpoint(folder, "tiny", SPEC, vocab, result)
    return folder, vocab, result, record


def test_pretraining_steps_write_a_loadable_checkpoint(checkpoint):
    folder, vocab, result, record = checkpoint
    assert len(result.losses) == 2 and np.isfinite(result.losses).all()
    assert result.losses[0] == pytest.approx(np.log(len(vocab)), rel=0.2)
    assert 0 <= result.held_out_accuracy <= 1 and result.held_out > 0
    assert record["steps"] == 2 and record["losses"] == [round(v, 4) for v in result.losses]
    assert record["hashes"] == bert.provenance_hashes(SPEC)
    model, vocab2, record2 = bert.load_pretrained("tiny", folder, SPEC)
    assert vocab2.tokens == vocab.tokens and record2 == record
    ids = bert.classification_inputs(vocab, TEXTS[:2], max_len=16)["token_ids"]
    np.testing.assert_allclose(np_(model(ids)), np_(result.model(ids)), atol=1e-6)


def test_pretraining_from_init_continues_that_model_and_leaves_it_unchanged(checkpoint):
    _, vocab, result, _ = checkpoint
    before = [np_(w).copy() for w in result.model.weights]
    config = result.model.config
    cont = bert.pretrain(config, vocab, TEXTS, 1, batch_size=4, learning_rate=1e-9,
                         init=result.model)
    for w0, w1, w2 in zip(before, result.model.weights, cont.model.weights):
        np.testing.assert_array_equal(np_(w1), w0)  # init untouched
        np.testing.assert_allclose(np_(w2), w0, atol=1e-6)  # a 1e-9 step away from init
    fresh = bert.pretrain(config, vocab, TEXTS, 1, batch_size=4, learning_rate=1e-9)
    assert max(np.abs(np_(a) - np_(b)).max()
               for a, b in zip(fresh.model.weights, result.model.weights)) > 1e-3


def test_provenance_hash_changes_with_code_and_recipe(tmp_path, monkeypatch):
    base = bert.provenance_hashes(SPEC)
    assert bert.provenance_hashes(SPEC) == base
    other = bert.provenance_hashes(PretrainSpec(config={**TINY, "width": 16}, steps=2))
    assert other["recipe"] != base["recipe"] and other["code"] == base["code"]
    more = bert.provenance_hashes(SPEC, code=bert._WEIGHT_CODE + ("kexue.losses:output_as_loss",))
    assert more["code"] != base["code"] and more["recipe"] == base["recipe"]
    # an edit to a function's code changes the hash, an edit to its docstring or comments not
    src = tmp_path / "prov_probe.py"
    monkeypatch.syspath_prepend(str(tmp_path))

    def code_hash(text):
        src.write_text(text)
        sys.modules.pop("prov_probe", None)
        return bert._code_of("prov_probe:f")

    a = code_hash('def f(x):\n    """Doc."""\n    return x + 1\n')
    assert code_hash('def f(x):\n    """Other doc."""\n    # a comment\n    return x + 1\n') == a
    assert code_hash('def f(x):\n    """Doc."""\n    return x + 2\n') != a


def test_corrupt_or_stale_checkpoints_are_never_used(checkpoint, tmp_path, monkeypatch):
    import shutil

    folder, *_ = checkpoint
    corrupt = tmp_path / "corrupt"
    shutil.copytree(folder, corrupt)
    data = bytearray((corrupt / "model.weights.h5").read_bytes())
    data[-100] ^= 0xFF
    (corrupt / "model.weights.h5").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256.*make pretrained"):
        bert.load_pretrained("tiny", corrupt, SPEC)
    stale = tmp_path / "stale"
    shutil.copytree(folder, stale)
    record = json.loads((stale / "provenance.json").read_text())
    record["hashes"]["code"] = "0" * 64
    (stale / "provenance.json").write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match="stale: its code hash.*make pretrained"):
        bert.load_pretrained("tiny", stale, SPEC)
    with pytest.raises(CheckpointError, match="recipe"):
        bert.check_checkpoint("tiny", folder, PretrainSpec(config=TINY, steps=4))
    # load_or_train says why and trains again (with the recipe) instead of loading
    _, vocab, result, _ = checkpoint
    trained = []

    def train_again(spec, log_every=0):
        trained.append(spec)
        return vocab, result

    monkeypatch.setattr(bert, "_train_checkpoint", train_again)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model, _, rec = bert.load_or_train("tiny", corrupt, SPEC)
    assert trained == [SPEC] and model is result.model and rec["retrained"]
    assert any("sha256" in str(w.message) for w in caught)


def test_a_committed_checkpoint_needs_its_registered_sha256(monkeypatch):
    if not (PRETRAINED_DIR / "small-bert" / "provenance.json").exists():
        pytest.skip("no committed checkpoint yet")
    monkeypatch.setitem(bert.REGISTERED_SHA256, "small-bert", "0" * 64)
    with pytest.raises(CheckpointError, match="REGISTERED_SHA256.*make pretrained"):
        bert.load_pretrained("small-bert")


def test_committed_checkpoint_matches_the_code():
    """Fails, naming `make pretrained`, when a committed checkpoint is no longer what the
    current code, recipe and data would make."""
    for name in PRETRAINED:
        if not (PRETRAINED_DIR / name / "provenance.json").exists():
            pytest.fail(f"no committed checkpoint {name!r}: run `make pretrained NAME={name}` "
                        f"and commit lib/kexue/models/pretrained/{name}/")
        try:
            bert.check_checkpoint(name)
        except CheckpointError as err:
            pytest.fail(f"{err} (run `make pretrained` and commit "
                        f"lib/kexue/models/pretrained/{name}/)")
        record = bert.read_record(name)
        assert record["weights_sha256"] == bert.REGISTERED_SHA256[name]
        assert (PRETRAINED_DIR / name / "model.weights.h5").stat().st_size <= 6e6
        assert record["config"]["max_positions"] == PRETRAINED[name].config["max_positions"]


def test_fine_tune_takes_the_inputs_each_model_needs():
    """The baseline takes token ids only, a BERT classifier ids and segments: fine_tune picks
    them from the same dict (the BERT classifier's train step is run by test_saving)."""
    x = bert.classification_inputs(VOCAB, TEXTS[:12], TEXTS[12:24], max_len=12)
    y = np.arange(12) % 2
    history = bert.fine_tune(bag_of_characters(len(VOCAB), 2, dim=4), x, y, validation=(x, y),
                             epochs=2, batch_size=12)
    assert set(history) >= {"loss", "accuracy", "val_accuracy"} and len(history["loss"]) == 2
    assert np.isfinite(history["loss"]).all()


# ------------------------------------------------------------------ untying a shared block


def test_untied_model_is_the_shared_model_at_step_zero():
    shared = tiny(shared_blocks=True, embedding_dim=4, layers=2)
    untied = bert.untie_blocks(shared)
    assert not untied.config.shared_blocks and untied.blocks[0] is not untied.blocks[1]
    block = sum(int(np.prod(w.shape)) for w in shared.block_layers[0].weights)
    assert untied.count_params() == shared.count_params() + block
    ids = bert.classification_inputs(VOCAB, TEXTS[:4], max_len=8)
    x = {**ids, "mlm_positions": np.tile(np.arange(3, dtype="int32"), (4, 1))}
    np.testing.assert_allclose(np_(untied(x)), np_(shared(x)), atol=1e-6)
    with pytest.raises(ValueError, match="shared_blocks"):
        bert.untie_blocks(untied)


def test_shared_block_gradient_is_the_sum_of_the_untied_layers_gradients():
    from gradients import model_grads

    shared = tiny(shared_blocks=True, layers=2)
    untied = bert.untie_blocks(shared)
    ids = {"token_ids": bert.classification_inputs(VOCAB, TEXTS[:4], max_len=8)["token_ids"],
           "mlm_positions": np.tile(np.arange(1, 5, dtype="int32"), (4, 1))}
    target = np.random.default_rng(0).normal(size=(4, 4, len(VOCAB))).astype("float32")

    def loss(y, pred):
        return keras.ops.mean((pred - y) ** 2)

    g_shared = {id(v): g for v, g in zip(shared.trainable_variables,
                                         model_grads(shared, loss, ids, target))}
    g_untied = {id(v): g for v, g in zip(untied.trainable_variables,
                                         model_grads(untied, loss, ids, target))}
    for j, v in enumerate(shared.block_layers[0].trainable_variables):
        per_layer = [g_untied[id(blk.trainable_variables[j])] for blk in untied.block_layers]
        np.testing.assert_allclose(sum(per_layer), g_shared[id(v)], rtol=1e-4, atol=1e-6)
    # and outside the blocks, the two models' gradients are the same
    emb = [g_untied[id(u)] for u in untied.embedding.trainable_variables]
    for g, v in zip(emb, shared.embedding.trainable_variables):
        np.testing.assert_allclose(g, g_shared[id(v)], rtol=1e-4, atol=1e-6)


def test_main_refuses_to_write_when_the_hashed_code_changes_during_training(monkeypatch,
                                                                             tmp_path):
    """The record's hashes are read before training; if the files change meanwhile, `main`
    writes nothing rather than a record that names other code than the one that ran."""
    monkeypatch.setitem(bert.PRETRAINED, "tiny", SPEC)
    calls = iter([{"code": "before"}, {"code": "after"}])
    monkeypatch.setattr(bert, "provenance_hashes", lambda spec: next(calls))
    monkeypatch.setattr(bert, "_train_checkpoint", lambda spec, log_every=0: (VOCAB, None))
    with pytest.raises(CheckpointError, match="changed on disk during training"):
        bert.main(["pretrain", "--name", "tiny", "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------- tagging


def test_tagging_inputs_put_each_tag_under_its_character():
    texts, tags = ["今天天气", "你好"], [[0, 1, 3, 2], [1, 3]]
    x, y, w = bert.tagging_inputs(VOCAB, texts, tags, max_len=8)
    assert x["token_ids"].shape == y.shape == w.shape == (2, 8)
    np.testing.assert_array_equal(
        x["token_ids"], bert.classification_inputs(VOCAB, texts, max_len=8)["token_ids"])
    assert y[0, 1:5].tolist() == [0, 1, 3, 2] and y[1, 1:3].tolist() == [1, 3]
    assert w[0].tolist() == [0, 1, 1, 1, 1, 0, 0, 0] and w[1].sum() == 2
    assert x["token_ids"][0, 1] == VOCAB.index["今"]
    assert set(bert.tagging_inputs(VOCAB, texts, max_len=8)) == {"token_ids", "segment_ids"}


def test_a_tagger_fine_tunes_on_weighted_positions_only():
    texts = ["今天天气很好", "我们去公园玩", "机器学习有趣", "北京中国首都"] * 4
    tags = [np.arange(len(t)) % 4 for t in texts]
    x, y, w = bert.tagging_inputs(VOCAB, texts, tags, max_len=10)
    model = bert.build_tagger(tiny(), 4)
    assert tuple(model(x).shape) == (16, 10, 4)
    hist = bert.fine_tune(model, x, y, (x, y, w), epochs=2, batch_size=8, learning_rate=1e-2,
                          sample_weight=w)
    assert len(hist["val_accuracy"]) == 2 and np.isfinite(hist["loss"]).all()
    # accuracy is over the weighted positions: recompute it from the predictions
    pred = np_(model(x, training=False)).argmax(-1)
    mine = float(((pred == y) * w).sum() / w.sum())
    assert hist["val_accuracy"][-1] == pytest.approx(mine, abs=1e-6)


def test_character_tagger_sees_only_its_window():
    from kexue.models.baselines import character_tagger

    ids = np.array([[5, 6, 7, 8, 9, 10]], "int32")
    for window, reach in ((1, 0), (3, 1)):
        model = character_tagger(len(VOCAB), 4, dim=8, window=window)
        base = np_(model(ids))
        changed = ids.copy()
        changed[0, 3] = 11
        moved = np.abs(np_(model(changed)) - base).max(-1)[0] > 0
        assert moved.tolist() == [abs(i - 3) <= reach for i in range(6)], (window, moved)
