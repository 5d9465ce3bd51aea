"""kexue.models.compression: first_layers and the module-replacement (BERT-of-Theseus) model:
all-predecessor and all-successor choices equal the two models, only the successor's blocks
train, the replacement rate, and the .keras round trip."""

import keras
import numpy as np
import pytest
from kexue.models import bert
from kexue.models.bert import BertConfig, BertModel, BertVocab, ClsHead
from kexue.models.compression import TheseusModel, first_layers

TEXTS = ["今天天气很好", "我们去公园玩吧", "机器学习很有趣", "北京是中国的首都", "你好世界", "一二三"]
VOCAB = BertVocab.fit(TEXTS, min_count=1)
CONFIG = BertConfig(vocab_size=len(VOCAB), width=8, layers=4, heads=2, ffn_dim=16,
                    max_positions=12, dropout=0.0)
X = bert.classification_inputs(VOCAB, TEXTS, max_len=10)


def np_(x):
    return keras.ops.convert_to_numpy(x)


def parts(rate=0.5, granularity="batch", seed=0):
    keras.utils.set_random_seed(0)
    pretrained = BertModel(CONFIG)
    predecessor = BertModel(CONFIG)  # stands for the fine-tuned copy: other weights
    head = ClsHead(3, dropout=0.0)
    head.build((None, None, CONFIG.width))
    successor = first_layers(pretrained, 2)
    return predecessor, successor, head, TheseusModel(predecessor, successor, head, rate,
                                                      granularity, seed)


def test_first_layers_copies_the_embedding_and_the_first_blocks():
    keras.utils.set_random_seed(1)
    model = BertModel(CONFIG)
    small = first_layers(model, 2)
    assert small.config.layers == 2 and small.config.width == CONFIG.width
    full = model.encode(X["token_ids"], X["segment_ids"], return_hidden=True)
    cut = small.encode(X["token_ids"], X["segment_ids"], return_hidden=True)
    for a, b in zip(full[:3], cut):
        np.testing.assert_allclose(np_(b), np_(a), atol=1e-6)


def test_the_two_extreme_choices_are_the_two_models():
    predecessor, successor, head, theseus = parts()
    pred_logits = np_(head(predecessor(X)))
    none = theseus(X, training=True, replaced=[False, False])
    np.testing.assert_allclose(np_(none), pred_logits, atol=1e-6)
    succ_logits = np_(theseus.successor_model()(X))
    every = theseus(X, training=True, replaced=[True, True])
    np.testing.assert_allclose(np_(every), succ_logits, atol=1e-6)
    np.testing.assert_allclose(np_(theseus(X)), succ_logits, atol=1e-6)  # inference
    # per example: row 0 all successor, the others all predecessor
    rows = np.zeros((2, len(TEXTS)), bool)
    rows[:, 0] = True
    mixed = np_(theseus(X, training=True, replaced=rows))
    np.testing.assert_allclose(mixed[0], succ_logits[0], atol=1e-6)
    np.testing.assert_allclose(mixed[1:], pred_logits[1:], atol=1e-6)
    # the successor's embedding is the predecessor's
    for a, b in zip(successor.embedding.get_weights(), predecessor.embedding.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_only_the_successor_blocks_train():
    predecessor, successor, head, theseus = parts(rate=0.7)
    frozen = [predecessor, head, successor.embedding]
    before = [[w.copy() for w in part.get_weights()] for part in frozen]
    blocks = [w.copy() for w in successor.block_layers[0].get_weights()
              + successor.block_layers[1].get_weights()]
    assert {id(v) for v in theseus.trainable_variables} == {
        id(v) for b in successor.block_layers for v in b.trainable_variables}
    theseus.compile(optimizer=keras.optimizers.Adam(1e-2),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    theseus.fit(X, np.arange(len(TEXTS)) % 3, batch_size=3, epochs=2, verbose=0)
    for part, old in zip(frozen, before):
        for a, b in zip(part.get_weights(), old):
            np.testing.assert_array_equal(a, b)
    after = successor.block_layers[0].get_weights() + successor.block_layers[1].get_weights()
    assert max(np.abs(a - b).max() for a, b in zip(after, blocks)) > 1e-4


def test_replacement_rate_over_a_thousand_draws():
    _, _, _, theseus = parts(rate=0.3, seed=5)
    draws = np.stack([np_(theseus.draw_replacements()) for _ in range(1000)])
    assert draws.shape == (1000, 2)
    assert abs(draws.mean() - 0.3) < 4 * np.sqrt(0.3 * 0.7 / draws.size)  # 4 s.e. = 0.041
    assert abs(np.corrcoef(draws[:, 0], draws[:, 1])[0, 1]) < 0.13  # independent modules
    _, _, _, per_example = parts(rate=0.3, granularity="example")
    assert tuple(per_example.draw_replacements(5).shape) == (2, 5)


def test_theseus_model_round_trips_as_keras(tmp_path):
    _, _, _, theseus = parts(rate=0.4, granularity="example", seed=3)
    path = tmp_path / "theseus.keras"
    theseus.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, TheseusModel)
    assert (loaded.replace_rate, loaded.granularity, loaded.seed, loaded.group) == (
        0.4, "example", 3, 2)
    np.testing.assert_allclose(np_(loaded(X)), np_(theseus(X)), atol=1e-6)
    fixed = [True, False]
    np.testing.assert_allclose(np_(loaded(X, training=True, replaced=fixed)),
                               np_(theseus(X, training=True, replaced=fixed)), atol=1e-6)


def test_bad_configurations():
    predecessor, successor, head, theseus = parts()
    with pytest.raises(ValueError, match="divide"):
        TheseusModel(predecessor, first_layers(predecessor, 3), head)
    other = BertModel(BertConfig.from_dict({**CONFIG.to_dict(), "layers": 2, "width": 16}))
    with pytest.raises(ValueError, match="configuration"):
        TheseusModel(predecessor, other, head)
    with pytest.raises(ValueError, match="shape"):
        theseus(X, training=True, replaced=[True, False, True])


def test_registered_when_the_bert_module_is_imported_before_keras():
    """The registration that importing Keras triggers imports this module while
    kexue.models.bert may still be half-imported; it must not fail (a fresh process)."""
    import subprocess
    import sys

    code = ("import warnings; warnings.simplefilter('error')\n"
            "import kexue.models.bert\nimport keras\n"
            "assert keras.saving.get_registered_object('kexue>TheseusModel') is not None\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]


# ------------------------------------------- pooled heads, and the embedding as module 0

from kexue.models.bert import PooledHead  # noqa: E402
from kexue.models.encoders import pooled_classifier  # noqa: E402


def pooled_parts(pooling="mean", rate=0.5, granularity="batch", seed=0):
    keras.utils.set_random_seed(0)
    pretrained, predecessor = BertModel(CONFIG), BertModel(CONFIG)
    head = PooledHead(3, pooling, dropout=0.0)
    head.build((None, None, CONFIG.width))
    successor = first_layers(pretrained, 2)
    theseus = TheseusModel(predecessor, successor, head, rate, granularity, seed,
                           replace_embedding=True)
    return predecessor, successor, head, theseus


def test_pooled_head_reads_cls_or_the_mean_of_the_real_positions():
    keras.utils.set_random_seed(2)
    encoder = BertModel(CONFIG)
    hidden = np_(encoder(X))
    real = X["token_ids"] != 0
    cls_head, mean_head, reference = PooledHead(3, "cls", 0.0), PooledHead(3, "mean", 0.0), \
        ClsHead(3, dropout=0.0)
    for layer in (cls_head, mean_head, reference):
        layer.build((None, None, CONFIG.width))
    weights = reference.get_weights()
    cls_head.set_weights(weights)
    mean_head.set_weights(weights)
    np.testing.assert_allclose(np_(cls_head(hidden)), np_(reference(hidden)), atol=1e-6)
    pooled = (hidden * real[..., None]).sum(1) / real.sum(1, keepdims=True)
    np.testing.assert_allclose(np_(mean_head(hidden, key_mask=real)),
                               pooled @ weights[0] + weights[1], atol=1e-5)
    # the functional classifiers: [CLS] pooling is build_classifier's function
    ours, theirs = pooled_classifier(encoder, 3, "cls"), bert.build_classifier(encoder, 3)
    ours.get_layer("head").set_weights(theirs.get_layer("cls_head").get_weights())
    np.testing.assert_allclose(np_(ours(X)), np_(theirs(X)), atol=1e-6)
    mean_model = pooled_classifier(encoder, 3, "mean", dropout=0.0)
    mean_model.get_layer("head").set_weights(weights)
    np.testing.assert_allclose(np_(mean_model(X)), pooled @ weights[0] + weights[1], atol=1e-5)


def test_embedding_as_module_zero_extremes_and_a_hand_composed_hybrid():
    predecessor, successor, head, theseus = pooled_parts()
    mask = X["token_ids"] != 0
    pred_logits = np_(head(predecessor(X), key_mask=mask))
    np.testing.assert_allclose(np_(theseus(X, training=True, replaced=[False] * 3)),
                               pred_logits, atol=1e-6)
    succ_logits = np_(theseus.successor_model()(X))
    np.testing.assert_allclose(np_(theseus(X, training=True, replaced=[True] * 3)),
                               succ_logits, atol=1e-6)
    np.testing.assert_allclose(np_(theseus(X)), succ_logits, atol=1e-6)  # inference
    # the successor keeps its own (pre-trained) embedding, not the predecessor's
    assert not np.allclose(successor.embedding.get_weights()[0],
                           predecessor.embedding.get_weights()[0])
    # embedding from the predecessor, module 1 from the successor, module 2 from the predecessor
    ids, seg = X["token_ids"], X["segment_ids"]
    h = predecessor.embedding(ids, seg)
    h = successor.blocks[0](h, key_mask=mask)
    for block in predecessor.blocks[2:]:
        h = block(h, key_mask=mask)
    np.testing.assert_allclose(np_(theseus(X, training=True, replaced=[False, True, False])),
                               np_(head(h, key_mask=mask)), atol=1e-6)


def test_a_seeded_training_pass_is_one_of_the_hybrids():
    *_, theseus = pooled_parts(seed=7)
    hybrids = {}
    for code in range(8):
        choice = [bool(code >> k & 1) for k in range(3)]
        hybrids[code] = np_(theseus(X, training=True, replaced=choice))
    seen = set()
    for _ in range(6):
        out = np_(theseus(X, training=True))
        match = [c for c, v in hybrids.items() if np.allclose(out, v, atol=1e-6)]
        assert len(match) == 1
        seen.add(match[0])
    assert len(seen) > 2  # the draws vary from call to call
    # the same seed gives the same sequence of hybrids
    *_, again = pooled_parts(seed=7)
    *_, first = pooled_parts(seed=7)
    for _ in range(3):
        np.testing.assert_allclose(np_(again(X, training=True)), np_(first(X, training=True)),
                                   atol=1e-6)


def test_replacement_rate_one_half_per_module_over_a_thousand_calls():
    *_, theseus = pooled_parts(rate=0.5, seed=11)
    draws = np.stack([np_(theseus.draw_replacements()) for _ in range(1000)])
    assert draws.shape == (1000, 3)
    assert np.all(np.abs(draws.mean(0) - 0.5) < 0.05), draws.mean(0)


def test_with_the_embedding_replaced_only_the_successor_trains():
    predecessor, successor, head, theseus = pooled_parts(rate=1.0)  # every module chosen
    expected = {id(v) for v in successor.embedding.trainable_variables}
    expected |= {id(v) for b in successor.block_layers for v in b.trainable_variables}
    assert {id(v) for v in theseus.trainable_variables} == expected
    frozen = [predecessor, head]
    before = [[w.copy() for w in part.get_weights()] for part in frozen]
    emb = [w.copy() for w in successor.embedding.get_weights()]
    theseus.compile(optimizer=keras.optimizers.Adam(1e-2),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    theseus.train_on_batch(X, np.arange(len(TEXTS)) % 3)
    for part, old in zip(frozen, before):
        for a, b in zip(part.get_weights(), old):
            np.testing.assert_array_equal(a, b)
    assert max(np.abs(a - b).max() for a, b in zip(successor.embedding.get_weights(), emb)) > 0


def test_pooled_theseus_round_trips_as_keras(tmp_path):
    *_, theseus = pooled_parts(rate=0.3, granularity="example", seed=4)
    path = tmp_path / "pooled.keras"
    theseus.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.replace_embedding and isinstance(loaded.head, PooledHead)
    assert loaded.head.pooling == "mean"
    np.testing.assert_allclose(np_(loaded(X)), np_(theseus(X)), atol=1e-6)
    fixed = [True, False, True]
    np.testing.assert_allclose(np_(loaded(X, training=True, replaced=fixed)),
                               np_(theseus(X, training=True, replaced=fixed)), atol=1e-6)


def test_fit_theseus_trains_the_successor_and_validates_on_it():
    from kexue.models.compression import fit_theseus

    predecessor, successor, head, theseus = pooled_parts(rate=0.5)
    frozen = [w.copy() for w in predecessor.get_weights() + head.get_weights()]
    history = fit_theseus(theseus, X, np.arange(len(TEXTS)) % 3, (X, np.arange(len(TEXTS)) % 3),
                          epochs=1, batch_size=6, learning_rate=1e-2)
    assert len(history["loss"]) == 1 and len(history["val_accuracy"]) == 1
    for a, b in zip(predecessor.get_weights() + head.get_weights(), frozen):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------- a per-token head (a tagger's dense layer)


def tagger_parts(rate=0.5, seed=0, replace_embedding=True):
    keras.utils.set_random_seed(0)
    pretrained, predecessor = BertModel(CONFIG), BertModel(CONFIG)
    tagger = bert.build_tagger(predecessor, 4, dropout=0.0)
    head = tagger.get_layer("tag_logits")
    successor = first_layers(pretrained, 2)
    theseus = TheseusModel(predecessor, successor, head, rate, seed=seed,
                           replace_embedding=replace_embedding, token_dropout=0.0)
    return tagger, predecessor, successor, head, theseus


def test_per_token_head_extremes_are_the_two_taggers():
    tagger, predecessor, successor, head, theseus = tagger_parts()
    pred_logits = np_(tagger(X))
    assert pred_logits.shape == (*X["token_ids"].shape, 4)
    np.testing.assert_allclose(np_(theseus(X, training=True, replaced=[False] * 3)),
                               pred_logits, atol=1e-6)
    small = theseus.successor_model(name="small_tagger")
    assert small.output_shape == (None, None, 4)
    succ_logits = np_(small(X))
    np.testing.assert_allclose(np_(theseus(X, training=True, replaced=[True] * 3)),
                               succ_logits, atol=1e-6)
    np.testing.assert_allclose(np_(theseus(X)), succ_logits, atol=1e-6)  # inference
    # the successor tagger is build_tagger on the successor with the head's weights
    reference = bert.build_tagger(successor, 4, dropout=0.0)
    reference.get_layer("tag_logits").set_weights(head.get_weights())
    np.testing.assert_allclose(succ_logits, np_(reference(X)), atol=1e-6)


def test_successor_model_has_no_side_effects():
    _, predecessor, successor, head, theseus = tagger_parts(replace_embedding=False)
    ids = {id(v) for v in theseus.trainable_variables}
    flags = [v.trainable for v in successor.weights]
    before = [w.copy() for w in theseus.get_weights()]
    small = theseus.successor_model()
    assert {id(v) for v in theseus.trainable_variables} == ids
    assert [v.trainable for v in successor.weights] == flags
    assert not successor.embedding.trainable and not head.trainable
    # every weight of the compressed tagger trains, and none is shared with the mixture
    assert len(small.trainable_weights) == len(small.weights)
    assert not {id(v) for v in small.weights} & {id(v) for v in theseus.weights}
    small.set_weights([w + 1.0 for w in small.get_weights()])
    for a, b in zip(theseus.get_weights(), before):
        np.testing.assert_array_equal(a, b)


def test_per_token_train_step_moves_only_the_successor():
    from kexue.models.compression import fit_theseus

    _, predecessor, successor, head, theseus = tagger_parts(rate=1.0)
    frozen = [w.copy() for w in predecessor.get_weights() + head.get_weights()]
    blocks = [w.copy() for w in successor.get_weights()]
    tags = np.arange(X["token_ids"].size).reshape(X["token_ids"].shape) % 4
    weights = (X["token_ids"] != 0).astype("float32")
    history = fit_theseus(theseus, X, tags, epochs=1, batch_size=6, learning_rate=1e-2,
                          sample_weight=weights)
    assert len(history["loss"]) == 1 and 0.0 <= history["accuracy"][0] <= 1.0
    for a, b in zip(predecessor.get_weights() + head.get_weights(), frozen):
        np.testing.assert_array_equal(a, b)
    assert max(np.abs(a - b).max() for a, b in zip(successor.get_weights(), blocks)) > 0


def test_per_token_theseus_round_trips_as_keras(tmp_path):
    *_, theseus = tagger_parts(rate=0.3, seed=4)
    path = tmp_path / "tagger.keras"
    theseus.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.per_token and loaded.token_dropout == 0.0
    assert isinstance(loaded.head, keras.layers.Dense)
    np.testing.assert_allclose(np_(loaded(X)), np_(theseus(X)), atol=1e-6)
    fixed = [True, False, True]
    np.testing.assert_allclose(np_(loaded(X, training=True, replaced=fixed)),
                               np_(theseus(X, training=True, replaced=fixed)), atol=1e-6)


def test_per_token_bad_input():
    from kexue.models.compression import fit_theseus

    _, predecessor, successor, head, theseus = tagger_parts()
    wide = keras.layers.Dense(4)
    wide.build((None, None, CONFIG.width + 1))
    with pytest.raises(ValueError, match="head"):
        TheseusModel(predecessor, successor, wide)
    with pytest.raises(ValueError, match="token_dropout"):
        TheseusModel(predecessor, successor, head, token_dropout=1.0)
    with pytest.raises(ValueError, match="y"):  # per-token heads need one tag per position
        fit_theseus(theseus, X, np.zeros(len(TEXTS), "int32"))
