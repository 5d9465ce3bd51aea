import numpy as np
import pytest
from kexue import runtime


def test_default_scale_is_book(monkeypatch):
    monkeypatch.delenv("KEXUE_SCALE", raising=False)
    assert runtime.scale() == "book"


@pytest.mark.parametrize("raw,expected", [("smoke", "smoke"), (" FULL ", "full"), ("book", "book")])
def test_scale_reads_the_environment(monkeypatch, raw, expected):
    monkeypatch.setenv("KEXUE_SCALE", raw)
    assert runtime.scale() == expected


def test_bad_scale_lists_the_three(monkeypatch):
    monkeypatch.setenv("KEXUE_SCALE", "huge")
    with pytest.raises(ValueError, match="'smoke', 'book', 'full'") as err:
        runtime.scale()
    assert "huge" in str(err.value)


def test_pick(monkeypatch):
    for name, value in [("smoke", 1), ("book", 10), ("full", 100)]:
        monkeypatch.setenv("KEXUE_SCALE", name)
        assert runtime.pick(smoke=1, book=10, full=100) == value


def test_pick_needs_every_scale():
    with pytest.raises(TypeError, match="full"):
        runtime.pick(smoke=1, book=2)


def test_seed_makes_numpy_and_keras_repeat():
    import keras

    def draw():
        return np.random.rand(3), keras.ops.convert_to_numpy(keras.random.normal((4,)))

    runtime.seed(3)
    a = draw()
    runtime.seed(3)
    b = draw()
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("bad", [-1, 1.5, "0", True])
def test_seed_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="seed"):
        runtime.seed(bad)


def test_banner(monkeypatch):
    monkeypatch.setenv("KEXUE_SCALE", "smoke")
    line = runtime.banner()
    assert "\n" not in line
    assert line.startswith("scale=smoke")
    for word in ("keras", "kexue", "devices", "CPU"):
        assert word in line
    assert runtime.elapsed() > 0


def test_glue_turns_numpy_scalars_into_python_numbers(monkeypatch):
    import myst_nb

    recorded = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display: recorded.update(
        {name: (value, display)}))
    runtime.glue("x", np.float32(0.5))
    runtime.glue("n", np.int64(3), display=True)
    runtime.glue("s", "text")
    assert recorded["x"] == (0.5, False) and type(recorded["x"][0]) is float
    assert recorded["n"] == (3, True) and type(recorded["n"][0]) is int
    assert recorded["s"] == ("text", False)


def test_argument_checks_name_the_argument_and_value():
    from kexue._checks import check_int, check_positive

    assert check_int(np.int64(3), "n") == 3 and check_positive(np.float32(0.5), "k") == 0.5
    for bad in (0, -1.0, float("nan"), True, "1"):
        with pytest.raises(ValueError, match="k must be a positive number"):
            check_positive(bad, "k")
    with pytest.raises(ValueError, match=r"n must be an integer >= 1, got 1.5 of type float"):
        check_int(1.5, "n")
