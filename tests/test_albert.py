"""ALBERT's shared block untied at fine-tuning time (kexue.models.bert.untie_blocks) against its
references: the parameter-count formula of kexue.models.cost against Keras's count, one plain
SGD step of the shared and the untied model (each copy moves by its own gradient, the shared
block by their sum), and the independence of the copies. The identity at step 0 and the
gradient sum are tested in test_bert.py, whose tiny models and inputs these tests reuse (the
same shapes: on JAX, the operations compiled for one file serve the other)."""

import dataclasses

import keras
import numpy as np
import pytest
from gradients import model_grads
from kexue.models import bert, cost
from test_bert import TEXTS, VOCAB, np_, tiny


def block_weights(block):
    return [np_(v) for v in block.trainable_variables]


@pytest.mark.parametrize("kw", [dict(embedding_dim=4), dict(), dict(pre_ln=True),
                                dict(embedding_dim=4, pre_ln=True)])
def test_parameter_formula_is_keras_count_for_shared_untied_and_bert(kw):
    shared = tiny(layers=3, shared_blocks=True, **kw)
    untied = bert.untie_blocks(shared)
    config = shared.config
    assert cost.parameter_count(config) == shared.count_params()
    assert cost.parameter_count(untied.config) == untied.count_params()
    grown = untied.count_params() - shared.count_params()
    assert grown == (config.layers - 1) * cost.block_parameters(config)
    # Keras sees one set of weights per block object: shared once, untied once per layer
    per_block = len(shared.block_layers[0].trainable_variables)
    assert (len(untied.trainable_variables) - len(shared.trainable_variables)
            == (config.layers - 1) * per_block)
    # the same computation: every term of the forward cost is unchanged by untying
    for n in (1, 16):
        assert (cost.multiply_adds_per_token(config, n)
                == cost.multiply_adds_per_token(untied.config, n))


def test_one_sgd_step_moves_each_copy_by_its_own_gradient_and_the_shared_block_by_the_sum():
    shared = tiny(shared_blocks=True, layers=2)
    untied = bert.untie_blocks(shared)
    ids = bert.classification_inputs(VOCAB, TEXTS[:4], max_len=8)["token_ids"]  # as test_bert
    x = {"token_ids": ids, "mlm_positions": np.tile(np.arange(1, 5, dtype="int32"), (4, 1))}
    target = np.random.default_rng(0).normal(size=(4, 4, len(VOCAB))).astype("float32")
    before = block_weights(shared.block_layers[0])
    lr, loss = 0.5, keras.losses.MeanSquaredError()
    for model in (shared, untied):  # one step of plain gradient descent
        for v, g in zip(model.trainable_variables, model_grads(model, loss, x, target)):
            v.assign(np_(v) - lr * g)
    moved_shared = [a - b for a, b in zip(block_weights(shared.block_layers[0]), before)]
    moved = [[a - b for a, b in zip(block_weights(blk), before)] for blk in untied.block_layers]
    for j, step in enumerate(moved_shared):
        assert np.abs(step).max() > 0
        # each step is read back from float32 weights: allow a few units in the last place of
        # the largest weight (the update itself is rounded when it is assigned)
        ulp = float(np.spacing(np.float32(np.abs(before[j]).max())))
        np.testing.assert_allclose(sum(m[j] for m in moved), step, rtol=1e-4, atol=4 * ulp)
    # the copies now differ from each other, and the two models compute different functions
    assert max(float(np.abs(u - v).max()) for u, v in zip(*moved)) > 1e-6
    assert float(np.abs(np_(shared(x)) - np_(untied(x))).max()) > 1e-6


def test_untied_copies_are_weights_of_their_own():
    shared = tiny(shared_blocks=True, layers=2)
    untied = bert.untie_blocks(shared)
    assert untied.blocks[0] is not untied.blocks[1]
    kernel = untied.block_layers[1].trainable_variables[0]
    kernel.assign(np_(kernel) + 1.0)
    first, again = block_weights(untied.block_layers[0]), block_weights(shared.block_layers[0])
    for a, b in zip(first, again):  # neither the source nor the other copy moved
        np.testing.assert_array_equal(a, b)
    assert untied.config == dataclasses.replace(shared.config, shared_blocks=False)


def test_an_untied_pre_ln_classifier_starts_as_the_shared_one():
    shared = tiny(pre_ln=True, shared_blocks=True)
    for v in shared.final_norm.trainable_variables:  # not the default ones and zeros
        v.assign(np.random.default_rng(1).normal(size=v.shape).astype("float32"))
    untied = bert.untie_blocks(shared)
    x = bert.classification_inputs(VOCAB, TEXTS[:4], TEXTS[4:8], max_len=16)
    heads = [bert.build_classifier(encoder, 3) for encoder in (shared, untied)]
    heads[1].get_layer("cls_head").set_weights(heads[0].get_layer("cls_head").get_weights())
    np.testing.assert_allclose(np_(heads[1](x)), np_(heads[0](x)), atol=1e-6)
