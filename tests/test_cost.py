"""kexue.models.cost: parameter counts equal Keras's count of the built model (BERT and ALBERT
configurations, with and without a factorised embedding, post- and pre-LN), multiply-adds equal
a count made from the model's own kernels, and the training-memory estimate's identities."""

import numpy as np
import pytest
from kexue.models import cost
from kexue.models.bert import BertConfig, BertModel

BASE = dict(vocab_size=40, width=16, layers=3, heads=2, ffn_dim=24, max_positions=12,
            dropout=0.0)
VARIANTS = {"bert": {}, "albert": dict(shared_blocks=True),
            "bert-factorised": dict(embedding_dim=8),
            "albert-factorised": dict(shared_blocks=True, embedding_dim=8),
            "pre-ln": dict(pre_ln=True), "wider-embedding": dict(embedding_dim=20)}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_parameter_count_equals_keras_count(name):
    config = BertConfig(**{**BASE, **VARIANTS[name]})
    model = BertModel(config)
    assert cost.parameter_count(config) == model.count_params()
    parts = cost.parameter_count(config.to_dict(), parts=True)
    assert parts["total"] == model.count_params()
    assert parts["embedding"] == model.embedding.count_params()
    tied = int(np.prod(model.embedding.token.embeddings.shape))  # counted in the embedding
    assert parts["head"] == model.mlm.count_params() - tied
    blocks = sum(b.count_params() for b in model.block_layers)
    blocks += model.final_norm.count_params() if model.final_norm is not None else 0
    assert parts["blocks"] == blocks


def test_block_parameters_closed_form():
    h, f = 16, 24
    config = BertConfig(**BASE)
    assert cost.block_parameters(config) == 4 * h * h + 4 * h + 2 * h * f + f + h + 4 * h
    assert cost.block_parameters(config) == BertModel(config).block_layers[0].count_params()


def test_sharing_saves_exactly_the_repeated_blocks():
    bert = BertConfig(**BASE)
    albert = BertConfig(**{**BASE, "shared_blocks": True})
    saved = cost.parameter_count(bert) - cost.parameter_count(albert)
    assert saved == (BASE["layers"] - 1) * cost.block_parameters(bert)


def _kernel_multiply_adds(model, n, mlm_fraction):
    """Brute force: one multiply-add per kernel entry per application, layer by layer."""
    c = model.config
    total = 0
    for block in model.blocks:  # the shared block appears `layers` times
        for dense in (block.attention.query, block.attention.key, block.attention.value,
                      block.attention.out, block.ffn_inner, block.ffn_outer):
            total += int(np.prod(dense.kernel.shape))
        total += 2 * n * c.width  # Q K^T and the weighted sum of V, per query token
    if model.embedding.projection is not None:
        total += int(np.prod(model.embedding.projection.kernel.shape))
    head = int(np.prod(model.mlm.transform.kernel.shape)) + int(
        np.prod(model.embedding.token.embeddings.shape))
    return total + mlm_fraction * head


@pytest.mark.parametrize("name", ["bert", "albert-factorised"])
@pytest.mark.parametrize("n", [1, 12])
def test_multiply_adds_match_the_kernels(name, n):
    model = BertModel(BertConfig(**{**BASE, **VARIANTS[name]}))
    for fraction in (0.0, 0.15, 1.0):
        expected = _kernel_multiply_adds(model, n, fraction)
        assert cost.multiply_adds_per_token(model.config, n, fraction) == round(expected)


def test_sharing_does_not_change_compute():
    bert = BertConfig(**BASE)
    albert = BertConfig(**{**BASE, "shared_blocks": True})
    assert cost.multiply_adds_per_token(bert, 12) == cost.multiply_adds_per_token(albert, 12)
    factorised = BertConfig(**{**BASE, "shared_blocks": True, "embedding_dim": 8})
    extra = cost.multiply_adds_per_token(factorised, 12) - cost.multiply_adds_per_token(bert, 12)
    assert extra == 8 * 16  # the E -> H projection


def test_training_memory_identities():
    bert = BertConfig(**BASE)
    albert = BertConfig(**{**BASE, "shared_blocks": True})
    m_bert = cost.training_memory(bert, 4, 12)
    m_albert = cost.training_memory(albert, 4, 12)
    p = BertModel(bert).count_params()
    assert m_bert["weights_and_optimizer"] == 16 * p  # 4 floats of 4 bytes per parameter
    assert m_bert["parameters"] == m_bert["gradients"] == m_bert["optimizer"] // 2 == 4 * p
    assert m_bert["activations"] == m_albert["activations"]  # each layer keeps its own
    b, n, h, f, heads, layers = 4, 12, 16, 24, 2, 3
    floats = layers * (b * n * (8 * h + 2 * f) + 2 * b * heads * n * n) + 3 * b * n * h
    assert m_bert["activations"] == 4 * floats
    assert m_bert["total"] == m_bert["weights_and_optimizer"] + m_bert["activations"]
    half = cost.training_memory(bert, 4, 12, bytes_per_float=2)
    assert half["total"] * 2 == m_bert["total"]
    # activations grow with the batch, the weights do not
    m8 = cost.training_memory(bert, 8, 12)
    assert m8["weights_and_optimizer"] == m_bert["weights_and_optimizer"]
    assert m8["activations"] > m_bert["activations"]
