"""kexue.data: registry, mirror lookup, integrity errors, and the loaders on real files."""

import gzip
import shutil

import numpy as np
import pytest
from kexue import data

SMALL = "mnist/t10k-labels-idx1-ubyte.gz"  # 4.5 kB, the cheapest real file


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache folder, so tests never touch the user's cache."""
    path = tmp_path / "cache"
    monkeypatch.setenv("KEXUE_DATA", str(path))
    return path


@pytest.fixture
def offline(monkeypatch):
    """No network: any download attempt fails as it does on a machine without internet."""
    import keras

    def no_network(*args, **kwargs):
        raise Exception(f"URL fetch failure on {kwargs.get('origin')}: no network")

    monkeypatch.setattr(keras.utils, "get_file", no_network)


def test_registry_entries_are_well_formed():
    for name, entry in data.REGISTRY.items():
        assert name == entry.name
        # The SIGHAN organisers serve their archive over plain HTTP only; it is hash-checked.
        assert entry.url.startswith("https://") or entry.url == data.ICWB2_URL
        assert entry.accepted() or entry.archive in data.REGISTRY
        for h in entry.accepted().values():
            assert len(h) == 64 and int(h, 16) >= 0


def test_fetch_from_mirror_without_network(mirror, cache, offline):
    path = data.fetch(SMALL)
    assert path == mirror / SMALL
    assert data.sha256sum(path) == data.REGISTRY[SMALL].sha256
    assert not (cache / SMALL).exists(), "mirror files are used in place, not copied"


def test_fetch_uses_mirror_folder_name(mirror, cache, offline):
    name = "fashion-mnist/t10k-labels-idx1-ubyte.gz"
    assert data.fetch(name) == mirror / "fashion_mnist" / "t10k-labels-idx1-ubyte.gz"


def test_repacked_mirror_archive_is_accepted_by_its_own_hash(mirror, cache, offline):
    entry = data.REGISTRY["imdb/aclImdb_v1.tar.gz"]
    path = data.fetch(entry.name)
    assert path == mirror / entry.mirror_name
    assert data.sha256sum(path) == entry.mirror_sha256 != entry.sha256


def test_corrupt_mirror_file_raises_with_both_hashes(mirror, tmp_path, cache, offline,
                                                     monkeypatch):
    fake = tmp_path / "mirror"
    (fake / "mnist").mkdir(parents=True)
    blob = bytearray((mirror / SMALL).read_bytes())
    blob[-1] ^= 0xFF
    (fake / SMALL).write_bytes(bytes(blob))
    monkeypatch.setenv("KEXUE_DATA_MIRROR", str(fake))
    with pytest.raises(data.DataIntegrityError) as err:
        data.fetch(SMALL)
    msg = str(err.value)
    assert SMALL in msg and str(fake / SMALL) in msg
    assert data.REGISTRY[SMALL].sha256 in msg
    assert data.sha256sum(fake / SMALL) in msg
    assert not (cache / SMALL).exists()


def test_corrupt_cache_file_is_never_used(mirror, cache, offline):
    bad = cache / SMALL
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not the labels")
    with pytest.warns(UserWarning, match="corrupt copy .* removed"):
        path = data.fetch(SMALL)
    assert path == mirror / SMALL
    assert not bad.exists(), "the corrupt cache file must be removed"


def test_valid_cache_file_is_used(mirror, cache, offline):
    good = cache / SMALL
    good.parent.mkdir(parents=True)
    shutil.copyfile(mirror / SMALL, good)
    assert data.fetch(SMALL) == good


def test_missing_file_without_mirror_or_network_says_how_to_get_it(cache, offline, monkeypatch):
    monkeypatch.delenv("KEXUE_DATA_MIRROR", raising=False)
    with pytest.raises(data.DataNotFoundError) as err:
        data.fetch(SMALL)
    msg = str(err.value)
    entry = data.REGISTRY[SMALL]
    assert entry.url in msg and entry.sha256 in msg and "KEXUE_DATA_MIRROR" in msg


def test_download_false_does_not_try_the_network(cache, monkeypatch):
    import keras

    monkeypatch.delenv("KEXUE_DATA_MIRROR", raising=False)
    monkeypatch.setattr(keras.utils, "get_file", lambda *a, **k: pytest.fail("downloaded"))
    with pytest.raises(data.DataNotFoundError):
        data.fetch(SMALL, download=False)


def test_unknown_name():
    with pytest.raises(KeyError, match="not a registered"):
        data.fetch("mnist/nope.gz")


def test_read_idx_rejects_other_files(tmp_path):
    path = tmp_path / "x.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(b"\x00\x00\x0d\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match="unsigned-byte IDX"):
        data.read_idx(path)


def test_mnist_equals_the_keras_layout_npz(mirror, offline):
    (x, y), (xt, yt) = data.load_mnist()
    assert x.shape == (60000, 28, 28) and x.dtype == np.uint8
    assert y.shape == (60000,) and xt.shape == (10000, 28, 28) and yt.shape == (10000,)
    np.testing.assert_array_equal(y[:10], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4])
    with np.load(mirror / "mnist" / "mnist.npz") as ref:  # same arrays, Keras's npz layout
        np.testing.assert_array_equal(x, ref["x_train"])
        np.testing.assert_array_equal(y, ref["y_train"])
        np.testing.assert_array_equal(xt, ref["x_test"])
        np.testing.assert_array_equal(yt, ref["y_test"])


def test_fashion_mnist_through_keras(mirror, offline):
    (x, y), (xt, yt) = data.load_fashion_mnist()
    assert x.shape == (60000, 28, 28) and xt.shape == (10000, 28, 28)
    assert np.bincount(y).tolist() == [6000] * 10
    assert np.bincount(yt).tolist() == [1000] * 10


def test_tokenize_follows_keras_filters():
    assert data.tokenize("Don't STOP!<br /><br />It's 10/10...") == [
        "don't", "stop", "br", "br", "it's", "10", "10"]


@pytest.fixture(scope="module")
def imdb():
    import os

    if not os.environ.get("KEXUE_DATA_MIRROR"):
        pytest.skip("no offline data mirror")
    return data.load_imdb()


def test_imdb_splits(imdb):
    assert len(imdb.train) == len(imdb.test) == 25000
    assert imdb.train.labels.mean() == imdb.test.labels.mean() == 0.5
    assert len(set(imdb.train.ids)) == 25000


def test_imdb_encoding_conventions(imdb):
    wi = imdb.word_index
    text, seq = imdb.train.texts[0], imdb.train.sequences[0]
    words = data.tokenize(text)
    assert seq[0] == 1 and len(seq) == len(words) + 1
    assert seq[1:] == [wi[w] + 3 if w in wi else 2 for w in words]
    assert min(min(s) for s in imdb.test.sequences) >= 1


def test_imdb_num_words_maxlen_and_seed(imdb):
    small = data.load_imdb(num_words=100, maxlen=200, seed=113)
    assert max(max(s) for s in small.train.sequences) < 100
    assert max(len(s) for s in small.train.sequences) < 200
    assert 0 < len(small.train) < 25000
    # maxlen drops reviews, it does not truncate them; the order follows the seed
    kept = {i for i, s in zip(imdb.train.ids, imdb.train.sequences) if len(s) < 200}
    assert set(small.train.ids) == kept
    assert small.train.ids == [i for i in imdb.train.ids if i in kept]


@pytest.mark.parametrize("kwargs", [{"num_words": 2}, {"maxlen": 0}, {"num_words": 1.5}])
def test_imdb_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        data.load_imdb(**kwargs)


# ------------------------------------------------------------------ SIGHAN 2005 (icwb2)


def test_icwb2_gold_from_the_mirror(mirror, cache, offline):
    gold = data.load_icwb2("pku", "gold")
    raw = data.load_icwb2("pku", "test")
    words = data.load_icwb2("pku", "words")
    assert len(gold) == len(raw) == 1944  # 1,945 lines, one of them blank
    assert ["".join(s) for s in gold[:50]] == raw[:50]
    assert gold[0][:3] == ["共同", "创造", "美好"]
    assert sum(map(len, gold)) == 104372
    assert len(words) > 50000 and "研习班" in words
    as_gold = data.load_icwb2("as", "gold")  # the archive spells it as_testing_gold
    assert len(as_gold) > 14000 and all(w.strip() for w in as_gold[0])


def test_cws_split_is_seeded_disjoint_and_complete(mirror, cache, offline):
    train, test, words = data.load_cws("pku", seed=0)
    assert len(test) == 389 and len(train) + len(test) == 1944
    again = data.load_cws("pku", seed=0)
    assert again[0] == train and again[1] == test
    assert data.load_cws("pku", seed=1)[1] != test
    assert words == {w for s in train for w in s}
    with pytest.raises(ValueError, match="test_fraction"):
        data.load_cws("pku", test_fraction=1.0)
    with pytest.raises(ValueError, match="corpus must be one of"):
        data.load_icwb2("ctb")
    with pytest.raises(ValueError, match="split must be one of"):
        data.load_icwb2("pku", "dev")


def fake_icwb2_zip(path):
    """A small zip laid out like icwb2-data.zip (CRLF lines, a BOM, a blank line)."""
    import zipfile

    files = {
        "icwb2-data/training/pku_training.utf8": "\ufeff迈向  充满  希望  的  新  世纪\r\n\r\n中共中央  总书记\r\n",
        "icwb2-data/gold/pku_test_gold.utf8": "共同  创造\r\n",
        "icwb2-data/gold/pku_training_words.utf8": "迈向\r\n充满\r\n",
    }
    with zipfile.ZipFile(path, "w") as zf:
        for name, content in files.items():
            zf.writestr(name, content.encode("utf-8"))
    return path


def test_official_training_set_is_extracted_from_the_archive(cache, offline, monkeypatch, tmp_path):
    import dataclasses

    monkeypatch.delenv("KEXUE_DATA_MIRROR", raising=False)
    archive = fake_icwb2_zip(tmp_path / "icwb2-data.zip")
    entry = data.REGISTRY["icwb2/icwb2-data.zip"]
    monkeypatch.setitem(data.REGISTRY, entry.name, dataclasses.replace(entry, sha256=data.sha256sum(archive)))
    (cache / "icwb2").mkdir(parents=True)
    shutil.copy(archive, cache / entry.name)
    train = data.load_icwb2("pku", "train")
    assert train == [["迈向", "充满", "希望", "的", "新", "世纪"], ["中共中央", "总书记"]]
    assert (cache / "icwb2/training/pku_training.utf8").exists()
    # A member with a published hash is checked after extraction: the fake gold is rejected.
    with pytest.raises(data.DataIntegrityError, match="pku_test_gold"):
        data.load_icwb2("pku", "gold")
    assert not (cache / "icwb2/gold/pku_test_gold.utf8").exists()
    # The real archive is not here and cannot be downloaded: the error says how to get it.
    monkeypatch.setitem(data.REGISTRY, entry.name, entry)
    (cache / entry.name).unlink()
    (cache / "icwb2/training/pku_training.utf8").unlink()
    with pytest.raises(data.DataNotFoundError, match="icwb2-data.zip"):
        data.load_icwb2("pku", "train")


# ------------------------------------------- unverifiable members and clearer error messages


@pytest.fixture
def fake_archive(tmp_path, monkeypatch):
    """The fake icwb2 zip registered under its own sha256 (the real one is not mirrored)."""
    import dataclasses

    archive = fake_icwb2_zip(tmp_path / "icwb2-data.zip")
    entry = data.REGISTRY["icwb2/icwb2-data.zip"]
    monkeypatch.setitem(data.REGISTRY, entry.name,
                        dataclasses.replace(entry, sha256=data.sha256sum(archive)))
    return archive


TRAIN = "icwb2/training/pku_training.utf8"
GARBAGE = "垃圾  数据\n".encode()


def test_unhashed_member_in_the_mirror_is_never_used(tmp_path, cache, offline, monkeypatch,
                                                     fake_archive):
    fake = tmp_path / "mirror"
    (fake / "icwb2/training").mkdir(parents=True)
    (fake / TRAIN).write_bytes(GARBAGE)
    monkeypatch.setenv("KEXUE_DATA_MIRROR", str(fake))
    # Without the archive the loose file is refused, and the error says so.
    with pytest.raises(data.DataNotFoundError) as err:
        data.load_icwb2("pku", "train")
    msg = str(err.value)
    assert TRAIN in msg and "icwb2-data/training/pku_training.utf8" in msg
    assert "no published sha256" in msg and str(fake / TRAIN) in msg and "not used" in msg
    # With the verified archive in the mirror, the member comes from the archive.
    shutil.copy(fake_archive, fake / "icwb2/icwb2-data.zip")
    want = [["迈向", "充满", "希望", "的", "新", "世纪"], ["中共中央", "总书记"]]
    assert data.load_icwb2("pku", "train") == want
    assert (fake / TRAIN).read_bytes() == GARBAGE, "the mirror is never written"


def test_unhashed_member_in_the_cache_is_extracted_again(cache, offline, monkeypatch,
                                                         fake_archive):
    monkeypatch.delenv("KEXUE_DATA_MIRROR", raising=False)
    (cache / "icwb2/training").mkdir(parents=True)
    shutil.copy(fake_archive, cache / "icwb2/icwb2-data.zip")
    first = data.load_icwb2("pku", "train")
    (cache / TRAIN).write_bytes(GARBAGE)  # tampered with between two calls
    assert data.load_icwb2("pku", "train") == first
    # A corrupt archive is never used, and the error names the member it was needed for.
    (cache / "icwb2/icwb2-data.zip").write_bytes(b"not a zip")
    with pytest.warns(UserWarning, match="corrupt copy"), \
            pytest.raises(data.DataNotFoundError) as err:
        data.load_icwb2("pku", "train")
    msg = str(err.value)
    assert "corrupt copy" in msg and "removed" in msg and TRAIN in msg


def test_corrupt_cache_file_removed_is_said_in_the_error(cache, offline, monkeypatch):
    monkeypatch.delenv("KEXUE_DATA_MIRROR", raising=False)
    bad = cache / SMALL
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not the labels")
    with pytest.warns(UserWarning, match="corrupt copy"), \
            pytest.raises(data.DataNotFoundError) as err:
        data.fetch(SMALL)
    msg = str(err.value)
    assert f"corrupt copy of {SMALL!r} was found in the cache at {bad}" in msg
    assert "removed" in msg and data.REGISTRY[SMALL].url in msg
    assert not bad.exists()


def test_member_is_named_when_its_archive_is_missing(cache, offline, monkeypatch, tmp_path):
    monkeypatch.setenv("KEXUE_DATA_MIRROR", str(tmp_path))  # an empty mirror
    with pytest.raises(data.DataNotFoundError) as err:
        data.fetch("icwb2/gold/pku_test_gold.utf8")
    msg = str(err.value)
    assert "icwb2/gold/pku_test_gold.utf8" in msg and "icwb2-data/gold/pku_test_gold.utf8" in msg
    assert "icwb2/icwb2-data.zip" in msg and data.ICWB2_URL in msg


def test_mirror_folder_that_does_not_exist_is_reported(cache, offline, monkeypatch, tmp_path):
    missing = tmp_path / "no-such-mirror"
    monkeypatch.setenv("KEXUE_DATA_MIRROR", str(missing))
    monkeypatch.setattr(data, "_WARNED_MIRRORS", set())
    with pytest.warns(UserWarning, match="not an existing folder"), \
            pytest.raises(data.DataNotFoundError) as err:
        data.fetch(SMALL)
    msg = str(err.value)
    assert "KEXUE_DATA_MIRROR" in msg and str(missing) in msg and "not an existing folder" in msg


# ------------------------------------------------------------------------- the adding problem


def test_adding_problem_shapes_markers_and_targets():
    x, y = data.adding_problem(500, 9, seed=3)
    assert x.shape == (500, 9, 2) and y.shape == (500, 1)
    assert x.dtype == np.float32 and y.dtype == np.float32
    values, markers = x[..., 0], x[..., 1]
    assert ((values >= 0) & (values < 1)).all()
    assert set(np.unique(markers)) == {0.0, 1.0}
    np.testing.assert_array_equal(markers[:, :4].sum(1), 1)   # one marker in [0, 9 // 2)
    np.testing.assert_array_equal(markers[:, 4:].sum(1), 1)   # one in [9 // 2, 9)
    np.testing.assert_array_equal(y[:, 0], (values * markers).sum(1))
    both = [np.flatnonzero(m) for m in markers]
    np.testing.assert_array_equal(y[:, 0], [values[i, a] + values[i, b]
                                            for i, (a, b) in enumerate(both)])


def test_adding_problem_is_seeded_and_its_baseline_is_one_sixth():
    a, b = data.adding_problem(20, 6, seed=1), data.adding_problem(20, 6, seed=1)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], data.adding_problem(20, 6, seed=2)[0])
    _, y = data.adding_problem(40000, 2, seed=0)
    assert abs(np.mean((y - 1.0) ** 2) - 1 / 6) < 0.005   # Var(u1 + u2) = 2 / 12
    x, _ = data.adding_problem(3, 2)                      # length 2: both steps are marked
    np.testing.assert_array_equal(x[..., 1], 1.0)


@pytest.mark.parametrize("kwargs, name", [(dict(num=0, length=5), "num"),
                                          (dict(num=3, length=1), "length"),
                                          (dict(num=3, length=5, seed=-1), "seed"),
                                          (dict(num=2.0, length=5), "num")])
def test_adding_problem_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        data.adding_problem(**kwargs)


# ------------------------------------------------------------------ Chinese and English text


def test_clue_tasks_from_the_mirror(mirror, cache, offline):
    tnews = data.load_clue("tnews", "train")
    assert len(tnews) == 53360 and len(data.load_clue("tnews", "dev")) == 10000
    assert sum(bool(r["keywords"]) for r in tnews) == 38696
    labels = data.clue_labels("tnews")
    assert len(labels) == 15 and all(labels[r["label"]] == r["label_desc"] for r in tnews[:500])
    assert "上海证券交易所" in tnews[1]["keywords"]
    sizes = {s: len(data.load_clue("iflytek", s)) for s in ("train", "dev", "test")}
    assert sizes == {"train": 3024, "dev": 1373, "test": 1749}
    assert len(data.clue_labels("iflytek")) == 119
    # U+2028 inside a description must not split a record
    assert any("\u2028" in r["sentence"] for r in data.load_clue("iflytek", "train"))
    afqmc = data.load_clue("afqmc", "train")
    assert len(afqmc) == 34334 and {r["label"] for r in afqmc} == {0, 1}
    assert len(data.load_clue("afqmc", "dev")) == 4316


def test_chinese_sentiment_and_stsb_from_the_mirror(mirror, cache, offline):
    sizes = {s: len(data.load_chinese_sentiment("chnsenticorp", s)) for s in ("train", "dev", "test")}
    assert sizes == {"train": 9600, "dev": 1200, "test": 1200}
    train = data.load_chinese_sentiment("chnsenticorp", "train")
    assert set(train.labels.tolist()) == {0, 1} and abs(train.labels.mean() - 0.5) < 0.01
    assert train.texts[0].startswith("选择珠江花园的原因就是方便")
    assert len(data.load_chinese_sentiment("waimai", "all")) == 11987
    assert len(data.load_chinese_sentiment("hotel", "all")) == 7765  # one empty review dropped
    stsb = {s: data.load_stsb_zh(s) for s in ("train", "valid", "test")}
    assert [len(v) for v in stsb.values()] == [5231, 1458, 1361]
    scores = np.array([r["score"] for r in stsb["train"]])
    assert scores.min() == 0 and scores.max() == 5


def test_english_corpus_from_the_mirror(mirror, cache, offline):
    first = data.load_english_corpus(max_lines=2)
    assert first[0][:4] == ["the", "fulton", "county", "grand"] and len(first) == 2


def test_segment_with_jieba():
    assert data.segment("我爱北京天安门") == ["我", "爱", "北京", "天安门"]
    assert data.segment(["今天 天气", ""]) == [["今天", "天气"], []]


def test_chinese_corpus_is_cached_and_rebuilt_when_an_input_changes(mirror, cache, offline,
                                                                    monkeypatch):
    gold = data.load_chinese_corpus(["pku"])
    assert gold == data.load_icwb2("pku", "gold")
    first = data.load_chinese_corpus(["chnsenticorp"])
    assert len(first) == 9600 and all(first)
    files = list((cache / "corpus").glob("zh-chnsenticorp-*.txt"))
    assert len(files) == 1
    calls = []
    monkeypatch.setattr(data, "segment", lambda texts, hmm=True: calls.append(1) or [["x"]])
    assert data.load_chinese_corpus(["chnsenticorp"]) == first and not calls  # read back
    # a different input (here: a different jieba version) names a different cache file
    import jieba

    monkeypatch.setattr(jieba, "__version__", "0.0-test", raising=False)
    assert data.load_chinese_corpus(["chnsenticorp"]) == [["x"]] and calls


def test_corrupt_text_file_is_rejected(mirror, tmp_path, cache, offline, monkeypatch):
    fake = tmp_path / "mirror" / "sentence_pair" / "stsb_zh"
    fake.mkdir(parents=True)
    src = mirror / "sentence_pair" / "stsb_zh" / "STS-B.test.data"
    (fake / src.name).write_bytes(src.read_bytes()[:-10])
    monkeypatch.setenv("KEXUE_DATA_MIRROR", str(tmp_path / "mirror"))
    with pytest.raises(data.DataIntegrityError, match="STS-B.test.data"):
        data.load_stsb_zh("test")


# ------------------------------------------------------------ multi-label sets: teacher, canvases


def test_teacher_multilabel_has_the_mean_label_count_and_is_reproducible():
    x, y = data.teacher_multilabel(4000, 50, 3.0, dim=16, mean_labels=3, seed=2)
    assert x.shape == (4000, 16) and y.shape == (4000, 50) and y.dtype == np.float32
    assert set(np.unique(y)) <= {0.0, 1.0}
    assert y.sum(1).mean() == pytest.approx(3.0, abs=0.01)
    x2, y2 = data.teacher_multilabel(4000, 50, 3.0, dim=16, mean_labels=3, seed=2)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    # a stronger signal makes the labels more predictable from x (least squares fit)
    def fit_r2(signal):
        xs, ys = data.teacher_multilabel(4000, 50, signal, dim=16, seed=3)
        coef, *_ = np.linalg.lstsq(xs, ys - ys.mean(0), rcond=None)
        return 1 - ((ys - ys.mean(0) - xs @ coef) ** 2).sum() / ((ys - ys.mean(0)) ** 2).sum()
    assert fit_r2(10.0) > fit_r2(1.0)


def test_digit_canvas_places_the_digits_it_labels():
    rng = np.random.default_rng(0)
    images = rng.integers(1, 255, (20, 4, 3)).astype(np.uint8)     # no blank pixel
    labels = np.arange(20) % 10
    x, y = data.digit_canvas(images, labels, 500, grid=2, p=0.6, seed=1)
    assert x.shape == (500, 8, 6) and x.dtype == np.uint8 and y.shape == (500, 10)
    cells = x.reshape(500, 2, 4, 2, 3).transpose(0, 1, 3, 2, 4).reshape(500, 4, 4, 3)
    filled = cells.any(axis=(2, 3))
    assert filled.mean() == pytest.approx(0.6, abs=0.03)
    for i in range(500):                    # each filled cell is one of the images, labelled
        found = set()
        for cell in cells[i][filled[i]]:
            j = np.flatnonzero((images == cell).all(axis=(1, 2)))
            assert j.size == 1
            found.add(int(labels[j[0]]))
        assert found == set(np.flatnonzero(y[i]).tolist())
    again = data.digit_canvas(images, labels, 500, grid=2, p=0.6, seed=1)
    assert np.array_equal(x, again[0]) and np.array_equal(y, again[1])
