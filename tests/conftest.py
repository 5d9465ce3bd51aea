"""Shared test set-up: quiet TensorFlow, a non-interactive plot backend, the data mirror."""

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402

_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
if "KEXUE_DATA_MIRROR" not in os.environ and (_SHARED / "MANIFEST.md").exists():
    os.environ["KEXUE_DATA_MIRROR"] = str(_SHARED)


def pytest_collection_modifyitems(config, items):
    """Skip the tests marked ``tensorflow_only`` (they use TensorFlow directly: tf.GradientTape,
    tf.function, tf.recompute_grad) when Keras runs on another backend (the JAX lane)."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        return
    skip = pytest.mark.skip(reason=f"uses TensorFlow directly; the Keras backend is {backend}")
    for item in items:
        if "tensorflow_only" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def mirror():
    """The offline data mirror; tests that need real data skip without one."""
    path = os.environ.get("KEXUE_DATA_MIRROR")
    if not path or not Path(path).is_dir():
        pytest.skip("no offline data mirror (KEXUE_DATA_MIRROR)")
    return Path(path)
