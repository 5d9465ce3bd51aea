"""Datasets of the book: one registry of files, checked by sha256, and their loaders.

Every file the book reads is registered once in :data:`REGISTRY` with its canonical
URL and sha256. :func:`fetch` returns a verified local path for a registered file,
looking in this order:

1. the cache, ``$KEXUE_DATA`` (default: Keras's cache, ``~/.keras/datasets``);
2. the offline mirror ``$KEXUE_DATA_MIRROR``, a folder laid out like the registry
   names (``mnist/train-images-idx3-ubyte.gz``, ...), used in place;
3. the canonical URL, downloaded with ``keras.utils.get_file`` and its hash.

A file whose sha256 matches neither the canonical hash nor the mirror's own hash
(where the mirror holds different bytes of the same data) raises
:class:`DataIntegrityError` naming the file and both hashes, and is never used; a
file that cannot be found anywhere raises :class:`DataNotFoundError` saying how to
get it.

Loaders: :func:`load_mnist`, :func:`load_fashion_mnist`, :func:`load_imdb`, :func:`load_icwb2`
and :func:`load_cws` (SIGHAN 2005 word segmentation); Chinese text: :func:`load_clue` (TNEWS,
IFLYTEK, AFQMC), :func:`load_chinese_sentiment`, :func:`load_stsb_zh`, :func:`segment` (jieba)
and :func:`load_chinese_corpus` (a cached segmented corpus); English text:
:func:`load_english_corpus`. Synthetic: :func:`adding_problem`.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import tarfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kexue._checks import check_bool, check_choice, check_int, check_real, describe

KERAS_DATASETS_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"


class DataIntegrityError(ValueError):
    """A data file's sha256 is not the registered one."""


class DataNotFoundError(FileNotFoundError):
    """A registered data file is neither cached, mirrored nor downloadable."""


@dataclass(frozen=True)
class DataFile:
    """One registered file.

    Attributes:
        name: relative path, the same in the cache and in the mirror
            (``"mnist/train-images-idx3-ubyte.gz"``).
        url: canonical download URL.
        sha256: sha256 of the canonical file.
        mirror_name: the file's path in the mirror where it differs from ``name``
            (another folder name, or different bytes of the same data), else ``None``.
        mirror_sha256: sha256 of that mirror file.
        note: how the mirror file differs from the canonical one, if it does.
        archive: for a file distributed inside a zip archive, the registry name of that
            archive; when the file is neither cached nor mirrored it is extracted from the
            (verified) archive.
        member: the file's path inside ``archive``.

    A member of an archive may have ``sha256=None`` when only the archive's hash is
    published; it is then always re-extracted from the verified archive, never trusted
    from the cache.
    """

    name: str
    url: str
    sha256: str | None
    mirror_name: str | None = None
    mirror_sha256: str | None = None
    note: str = ""
    archive: str | None = None
    member: str | None = None

    def __post_init__(self):
        for key in ("name", "url"):
            if not isinstance(getattr(self, key), str) or not getattr(self, key):
                raise TypeError(f"{key} must be a non-empty string, got "
                                f"{describe(getattr(self, key))}.")
        for key in ("sha256", "mirror_sha256"):
            value = getattr(self, key)
            if value is not None and not (isinstance(value, str) and len(value) == 64
                                          and all(c in "0123456789abcdef" for c in value)):
                raise ValueError(f"{key} must be 64 lower-case hex digits or None, got "
                                 f"{describe(value)}.")

    def accepted(self) -> dict[str, str]:
        """Accepted sha256 values, keyed by what they identify."""
        out = {"canonical": self.sha256} if self.sha256 else {}
        if self.mirror_sha256:
            out["mirror"] = self.mirror_sha256
        return out


def _keras_file(subdir: str, fname: str, sha256: str, mirror_subdir: str | None = None) -> DataFile:
    mirror_name = f"{mirror_subdir}/{fname}" if mirror_subdir else None
    return DataFile(f"{subdir}/{fname}", KERAS_DATASETS_URL + fname, sha256, mirror_name)


ICWB2_URL = "http://sighan.cs.uchicago.edu/bakeoff2005/data/icwb2-data.zip"
"""The SIGHAN 2005 bakeoff archive (plain HTTP: that is where the organisers host it)."""

_ICWB2_MEMBERS = {  # path in the archive (under icwb2-data/): sha256, where published
    "gold/pku_test_gold.utf8": "913f78b20b17ea1e154f6246644d7d624b2710641f109a15daee9d63c9fb88d4",
    "gold/msr_test_gold.utf8": "cd1a8473841f1b2fcddd14d12599ad8872e6167feb64807af5bac2f6a32cb75d",
    "gold/cityu_test_gold.utf8": "2785b66a6f7c0e72f34e35859da383a81d721deb1c673a85786f0152e014935a",
    "gold/as_testing_gold.utf8": "75acac0f0d457187d4b5dbc66227fb887ad172bca617125054db10f56c72bc20",
    "gold/pku_training_words.utf8": "68fdbcef065d315e5dc3dc4c0e1b68997b1849141ba93b8fa2325fb088b5b0f3",
    "gold/msr_training_words.utf8": "d5328d5cc8576c8e008e70ad33882aae4ce2cbbbf6cd1130c59a66a248961b8c",
    "gold/cityu_training_words.utf8": "2a1542c4232b6d8d0ea66eb2365fdaccd915386ff9674016758159d6d2323604",
    "gold/as_training_words.utf8": "e70a54d88390ab21fa8d38cf6df80a25d51a5cdf70821da5591f3972933c6254",
    "testing/pku_test.utf8": "48c2655b535ea33802c873373f3176e57d39ba1a45a4dbba164e9125d7ce149e",
    "testing/msr_test.utf8": "8068b0c5a8f309e2ff2ba88dc26de7a8dac2f2684c9c7d8094337d9ce272f601",
    "testing/cityu_test.utf8": "1cdfcf0ab9f7b9a60b05448222d32fc93b428e7e8cde238e3af56a0bb500b116",
    "testing/as_test.utf8": "fa5052f0082a5884e9d4302a4108f9de06907215561b859c74cf1bed6ab35393",
    # The training sets: only the archive's hash is published; verified through it.
    "training/pku_training.utf8": None,
    "training/msr_training.utf8": None,
    "training/cityu_training.utf8": None,
    "training/as_training.utf8": None,
}


def _icwb2_files() -> list[DataFile]:
    archive = DataFile(
        "icwb2/icwb2-data.zip", ICWB2_URL,
        "296c54adf4abc3702eca0cbce70b55fe22a344ea02d33175a4d1183e074072b4",
        note="52,640,127 bytes; everything below is extracted from it when not mirrored",
    )
    members = [
        DataFile(f"icwb2/{path}", ICWB2_URL, sha, archive=archive.name, member=f"icwb2-data/{path}")
        for path, sha in _ICWB2_MEMBERS.items()
    ]
    return [archive, *members]


REGISTRY: dict[str, DataFile] = {
    f.name: f
    for f in [
        # MNIST: the four canonical idx files (LeCun's bytes, served by Keras's bucket).
        _keras_file("mnist", "train-images-idx3-ubyte.gz",
                    "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
        _keras_file("mnist", "train-labels-idx1-ubyte.gz",
                    "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
        _keras_file("mnist", "t10k-images-idx3-ubyte.gz",
                    "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
        _keras_file("mnist", "t10k-labels-idx1-ubyte.gz",
                    "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
        # Fashion-MNIST: exactly the files keras.datasets.fashion_mnist downloads.
        _keras_file("fashion-mnist", "train-images-idx3-ubyte.gz",
                    "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", "fashion_mnist"),
        _keras_file("fashion-mnist", "train-labels-idx1-ubyte.gz",
                    "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", "fashion_mnist"),
        _keras_file("fashion-mnist", "t10k-images-idx3-ubyte.gz",
                    "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", "fashion_mnist"),
        _keras_file("fashion-mnist", "t10k-labels-idx1-ubyte.gz",
                    "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", "fashion_mnist"),
        # IMDB: Keras's word index (rank of each word by frequency) ...
        _keras_file("imdb", "imdb_word_index.json",
                    "027313fe9a320280f3bf0fac5baf58c4a683cf39a7ed9c3d3d3912bde4284cf6"),
        # ... and the raw labelled reviews of Maas et al. (2011).
        DataFile(
            "imdb/aclImdb_v1.tar.gz",
            "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
            "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe",
            mirror_name="imdb/aclImdb_v1_labeled.tar.gz",
            mirror_sha256="d47e885cb89cc6a4890c3c14e911bff8be08b55e0bfdfe4d5cc30d2027c7f567",
            note="re-packed archive of the 50,000 labelled reviews (texts unchanged; "
            "no unsup/ reviews, no *.feat files)",
        ),
    ]
    + _icwb2_files()
}
"""Every data file of the book, by name."""

def data_dir() -> Path:
    """The cache folder: ``$KEXUE_DATA``, else Keras's ``datasets`` cache."""
    env = os.environ.get("KEXUE_DATA")
    if env:
        return Path(env).expanduser()
    return _keras_home() / "datasets"


def _keras_home() -> Path:
    """Keras's own cache root (``$KERAS_HOME`` as Keras read it, else ``~/.keras``)."""
    try:
        from keras.src.backend.config import keras_home  # not exported by Keras

        return Path(keras_home()).expanduser()
    except ImportError:  # pragma: no cover
        return Path(os.environ.get("KERAS_HOME", "~/.keras")).expanduser()


def mirror_dir() -> Path | None:
    """The offline mirror named by ``$KEXUE_DATA_MIRROR``, or ``None``."""
    env = os.environ.get("KEXUE_DATA_MIRROR")
    return Path(env).expanduser() if env else None


def sha256sum(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks of ``chunk`` bytes (a positive integer)."""
    chunk = check_int(chunk, "chunk", what="a positive number of bytes")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path (str or os.PathLike), got {describe(path)}.")
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _entry(name: str) -> DataFile:
    if not isinstance(name, str):
        raise TypeError(f"name must be a registered file name (a string), got {describe(name)}.")
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"name {name!r} is not a registered data file; registered: "
            f"{', '.join(sorted(REGISTRY))}."
        ) from None


def _verify(path: Path, entry: DataFile) -> None:
    accepted = entry.accepted()
    if not accepted:  # an archive member known only through its archive's hash
        return
    got = sha256sum(path)
    if got not in accepted.values():
        wanted = " or ".join(f"{v} ({k})" for k, v in accepted.items())
        raise DataIntegrityError(
            f"{path} is corrupt or not the registered file {entry.name!r}: its sha256 is "
            f"{got}, expected {wanted}. The file was not used; delete it and fetch it again "
            f"from {entry.url}."
        )


def _how_to_get(entry: DataFile, cached: Path, mirror_note: str = "") -> str:
    mirror = entry.mirror_name or entry.name
    return (
        f"Data file {entry.name!r} is not available offline and could not be downloaded. "
        f"Download {entry.url} (sha256 {entry.sha256}) to {cached}, or set "
        f"KEXUE_DATA_MIRROR to a folder that holds {mirror!r}.{mirror_note}"
    )


def _checked_mirror() -> tuple[Path | None, str]:
    """The mirror folder (``None`` if unset or missing) and a note for error messages
    when ``KEXUE_DATA_MIRROR`` names a folder that does not exist (also warned once)."""
    mirror = mirror_dir()
    if mirror is None or mirror.is_dir():
        return mirror, ""
    note = (f" KEXUE_DATA_MIRROR is set to {str(mirror)!r}, which is not an existing folder, "
            "so no mirror was searched.")
    if mirror not in _WARNED_MIRRORS:
        _WARNED_MIRRORS.add(mirror)
        warnings.warn(note.strip(), stacklevel=3)
    return None, note


_WARNED_MIRRORS: set[Path] = set()


def _with_note(err: Exception, note: str) -> Exception:
    """``err`` again (same type), its message preceded by ``note``."""
    return type(err)(f"{note} {err}")


def fetch(name: str, download: bool = True) -> Path:
    """Return a verified local path of the registered file ``name``.

    Args:
        name: a key of :data:`REGISTRY`.
        download: whether to try the canonical URL when the file is neither cached
            nor mirrored.

    Raises:
        KeyError: ``name`` is not registered.
        DataIntegrityError: the cached, mirrored or downloaded file has the wrong sha256
            (the message names the file and both hashes). A corrupt cached file is
            deleted (with a warning, and a note in any later error), then fetched again;
            a corrupt mirror file is left alone and reported.
        DataNotFoundError: the file is nowhere and could not be downloaded.

    A member of an archive without a published sha256 (the icwb2 training sets) is never
    taken from the cache or the mirror as a loose file: every call extracts it again from
    the archive, itself fetched and verified by its sha256 in the same call.
    """
    entry = _entry(name)
    download = check_bool(download, "download")
    cached = data_dir() / entry.name
    if not entry.accepted():
        return _extract_unhashed_member(entry, cached, download)
    removed = ""
    if cached.exists():
        got = sha256sum(cached)
        if got in entry.accepted().values():
            return cached
        cached.unlink()
        removed = (f"A corrupt copy of {entry.name!r} was found in the cache at {cached} "
                   f"(sha256 {got}) and removed.")
        warnings.warn(f"{removed} Fetching it again.", stacklevel=2)
    try:
        return _fetch_uncached(entry, cached, download)
    except (DataIntegrityError, DataNotFoundError) as err:
        if removed:
            raise _with_note(err, removed) from err
        raise


def _fetch_uncached(entry: DataFile, cached: Path, download: bool) -> Path:
    """:func:`fetch` of a file with a published hash that is not (validly) cached."""
    mirror, mirror_note = _checked_mirror()
    if mirror is not None:
        for rel in filter(None, (entry.mirror_name, entry.name)):
            candidate = mirror / rel
            if candidate.exists():
                _verify(candidate, entry)
                return candidate
    if entry.archive is not None:
        try:
            return _extract_member(entry, cached, download)
        except (DataIntegrityError, DataNotFoundError) as err:
            note = (f"{entry.name!r} (member {entry.member!r} of {entry.archive!r}) is neither "
                    f"cached nor mirrored, so it was to be extracted from the archive.{mirror_note}")
            raise _with_note(err, note) from err
    if not download:
        raise DataNotFoundError(_how_to_get(entry, cached, mirror_note))
    import keras

    cached.parent.mkdir(parents=True, exist_ok=True)
    try:
        path = keras.utils.get_file(
            fname=cached.name,
            origin=entry.url,
            file_hash=entry.sha256,
            cache_dir=str(data_dir()),
            cache_subdir=str(Path(entry.name).parent),
        )
    except ValueError as err:  # get_file's wording for a hash mismatch
        raise DataIntegrityError(f"{entry.url}: {err}") from err
    except Exception as err:
        raise DataNotFoundError(f"{_how_to_get(entry, cached, mirror_note)} ({err})") from err
    return Path(path)


def _extract_unhashed_member(entry: DataFile, cached: Path, download: bool) -> Path:
    """A member without a published sha256: extracted again from its verified archive."""
    if entry.archive is None:  # pragma: no cover - the registry never holds such a file
        raise DataIntegrityError(
            f"{entry.name!r} has neither a published sha256 nor an archive to verify it "
            "through; it is never used.")
    try:
        return _extract_member(entry, cached, download)
    except (DataIntegrityError, DataNotFoundError) as err:
        note = (f"{entry.name!r} (member {entry.member!r} of {entry.archive!r}) has no published "
                f"sha256, so it is only ever read from the verified archive")
        mirror = mirror_dir()
        if mirror is not None and (mirror / entry.name).exists():
            note += f" (the loose copy at {mirror / entry.name} is not used)"
        raise _with_note(err, note + ":") from err


def _extract_member(entry: DataFile, cached: Path, download: bool) -> Path:
    """Extract ``entry.member`` of its verified archive to ``cached``, then verify it."""
    import zipfile

    archive = fetch(entry.archive, download=download)
    with zipfile.ZipFile(archive) as zf:
        try:
            info = zf.getinfo(entry.member)
        except KeyError:
            raise DataIntegrityError(
                f"{archive} has no member {entry.member!r}; it is not the registered archive."
            ) from None
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f"{cached.name}.part{os.getpid()}")  # parallel workers
        with zf.open(info) as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst)
    try:
        _verify(tmp, entry)
    except DataIntegrityError:
        tmp.unlink()
        raise
    tmp.replace(cached)
    return cached


# ---------------------------------------------------------------- MNIST-like idx files


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read a gzip-compressed IDX file (the MNIST format) into a ``uint8`` array.

    The header's magic number gives the number of dimensions; the array has the
    shape the header states, e.g. ``(60000, 28, 28)`` for images, ``(60000,)`` for labels.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path (str or os.PathLike), got {describe(path)}.")
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"path {path} is not an unsigned-byte IDX file (header {raw[:4]!r}).")
    ndim = raw[3]
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    data = np.frombuffer(raw, dtype=np.uint8, offset=offset)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"path {path}: header says {dims}, file holds {data.size} values.")
    return data.reshape(dims)


def _load_idx_set(subdir: str):
    def get(stem):
        return read_idx(fetch(f"{subdir}/{stem}.gz"))

    return (
        (get("train-images-idx3-ubyte"), get("train-labels-idx1-ubyte")),
        (get("t10k-images-idx3-ubyte"), get("t10k-labels-idx1-ubyte")),
    )


def load_mnist():
    """MNIST from the four canonical IDX files.

    Returns ``(x_train, y_train), (x_test, y_test)``: ``uint8`` arrays of shapes
    ``(60000, 28, 28)``, ``(60000,)``, ``(10000, 28, 28)``, ``(10000,)``, the same
    arrays ``keras.datasets.mnist.load_data()`` returns (which reads a re-packed
    ``mnist.npz`` of these files).

    Used in: book/keras/gradient-accumulation.md
    """
    return _load_idx_set("mnist")


def load_fashion_mnist():
    """Fashion-MNIST through ``keras.datasets.fashion_mnist.load_data()``.

    The four verified files are put where Keras's loader looks for them (its cache,
    ``~/.keras/datasets/fashion-mnist``), so Keras reads them without downloading.
    Returns ``(x_train, y_train), (x_test, y_test)`` with the shapes of MNIST.
    """
    import keras

    keras_cache = _keras_home() / "datasets" / "fashion-mnist"
    keras_cache.mkdir(parents=True, exist_ok=True)
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        name = f"fashion-mnist/{stem}.gz"
        src = fetch(name)
        dst = keras_cache / f"{stem}.gz"
        if dst.resolve() != src.resolve():
            if not dst.exists() or sha256sum(dst) != REGISTRY[name].sha256:
                shutil.copyfile(src, dst)
    return keras.datasets.fashion_mnist.load_data()


# ---------------------------------------------------------------------------- IMDB

KERAS_TEXT_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'
"""Characters replaced by spaces before splitting (Keras's classic text filters)."""

_TRANSLATE = str.maketrans(KERAS_TEXT_FILTERS, " " * len(KERAS_TEXT_FILTERS))


def tokenize(text: str) -> list[str]:
    """Split a review into words the way Keras's classic text utilities did.

    Lower-case, every character of :data:`KERAS_TEXT_FILTERS` becomes a space, split
    on whitespace. Apostrophes and non-ASCII letters stay inside words; ``<br />``
    becomes the word ``br``, as in Keras's IMDB word index.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {describe(text)}.")
    return text.lower().translate(_TRANSLATE).split()


@dataclass
class TextSplit:
    """One split of a labelled text data set.

    Attributes:
        texts: the raw texts, ``list[str]`` of length N.
        labels: ``int64`` array of shape ``(N,)``.
        sequences: ``list[list[int]]`` of length N, the encoded texts.
        ids: where each text came from (e.g. ``"train/pos/0_9.txt"``).
    """

    texts: list[str]
    labels: np.ndarray
    sequences: list[list[int]]
    ids: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class ImdbData:
    """IMDB reviews: ``train`` and ``test`` splits, and the word index used."""

    train: TextSplit
    test: TextSplit
    word_index: dict[str, int]


def imdb_word_index() -> dict[str, int]:
    """Keras's IMDB word index: word to frequency rank (1 = most frequent)."""
    with open(fetch("imdb/imdb_word_index.json"), encoding="utf-8") as fh:
        return json.load(fh)


def _read_acl_imdb(path: Path) -> dict[str, list[tuple[str, str, int]]]:
    out: dict[str, list[tuple[str, str, int]]] = {"train": [], "test": []}
    with tarfile.open(path, "r:gz") as tar:
        for member in tar:
            parts = member.name.split("/")
            if (not member.isfile() or len(parts) != 4 or parts[1] not in out
                    or parts[2] not in ("pos", "neg") or not parts[3].endswith(".txt")):
                continue
            text = tar.extractfile(member).read().decode("utf-8")
            out[parts[1]].append(("/".join(parts[1:]), text, int(parts[2] == "pos")))
    for split in out.values():
        split.sort(key=lambda item: item[0])
    return out


def load_imdb(num_words: int | None = None, maxlen: int | None = None, skip_top: int = 0,
              start_char: int | None = 1, oov_char: int = 2, index_from: int = 3,
              seed: int = 113) -> ImdbData:
    """The 50,000 labelled IMDB reviews, raw and encoded in Keras's conventions.

    Each review is split by :func:`tokenize` and each word mapped through Keras's
    word index: a word of rank ``r`` becomes ``r + index_from``; ``0`` is padding,
    ``start_char`` starts every sequence (``None``: no start mark), and ``oov_char``
    replaces words missing from the index and every index ``>= num_words`` or
    ``< skip_top`` (offset included, as ``keras.datasets.imdb.load_data`` does).
    Each split is shuffled with ``seed`` (train first, then test, one generator, as
    Keras does); with ``maxlen``, sequences of ``maxlen`` or more indices (start
    mark included) are dropped, again as Keras does.

    This is our tokenisation of the raw texts: Keras's ``imdb.npz`` was made by a
    tokeniser that was never published, so the sequences are close to, but not
    identical with, Keras's arrays.

    Returns:
        :class:`ImdbData` with ``train`` and ``test`` of 25,000 reviews each (fewer
        with ``maxlen``); labels are 1 for positive, 0 for negative.

    Used in: book/keras/layers-within-layers-and-masks.md
    """
    index_from = check_int(index_from, "index_from", 0)
    oov_char = check_int(oov_char, "oov_char", 0)
    skip_top = check_int(skip_top, "skip_top", 0)
    seed = check_int(seed, "seed", 0)
    if start_char is not None:
        start_char = check_int(start_char, "start_char", 0)
    if num_words is not None:
        num_words = check_int(num_words, "num_words", index_from + 1,
                              f"an integer > index_from={index_from}")
    if maxlen is not None:
        maxlen = check_int(maxlen, "maxlen", 1, "a positive integer")
    word_index = imdb_word_index()
    raw = _read_acl_imdb(fetch("imdb/aclImdb_v1.tar.gz"))
    rng = np.random.RandomState(seed)
    splits = {}
    for split_name, items in raw.items():
        order = rng.permutation(len(items))
        ids, texts, labels, seqs = [], [], [], []
        for i in order:
            ident, text, label = items[i]
            seq = [start_char] if start_char is not None else []
            for word in tokenize(text):
                rank = word_index.get(word)
                seq.append(oov_char if rank is None else rank + index_from)
            if maxlen is not None and len(seq) >= maxlen:
                continue
            if num_words is not None or skip_top:
                top = num_words if num_words is not None else np.inf
                seq = [w if skip_top <= w < top else oov_char for w in seq]
            ids.append(ident)
            texts.append(text)
            labels.append(label)
            seqs.append(seq)
        splits[split_name] = TextSplit(texts, np.asarray(labels, dtype="int64"), seqs, ids)
    return ImdbData(splits["train"], splits["test"], word_index)


# ---------------------------------------------------------- SIGHAN 2005 word segmentation

ICWB2_CORPORA = ("pku", "msr", "cityu", "as")
"""The four corpora of the SIGHAN 2005 bakeoff (each its own segmentation standard)."""

_ICWB2_SPLITS = {
    "train": "icwb2/training/{c}_training.utf8",
    "gold": "icwb2/gold/{c}_test_gold.utf8",
    "test": "icwb2/testing/{c}_test.utf8",
    "words": "icwb2/gold/{c}_training_words.utf8",
}


def load_icwb2(corpus: str = "pku", split: str = "gold"):
    """One file of the SIGHAN 2005 bakeoff (icwb2-data).

    Args:
        corpus: one of :data:`ICWB2_CORPORA`.
        split: ``"train"`` (segmented training set; extracted from ``icwb2-data.zip``),
            ``"gold"`` (segmented test set), ``"test"`` (the unsegmented test input) or
            ``"words"`` (the training word list the official scorer uses for OOV).

    Returns:
        ``"train"``/``"gold"``: a list of sentences, each a list of words (blank lines
        dropped, words split on any whitespace, including the ideographic space of AS);
        ``"test"``: a list of strings; ``"words"``: a ``set`` of words.

    Used in: book/sequence/crf.md, book/sequence/memm.md
    """
    if not isinstance(corpus, str) or corpus not in ICWB2_CORPORA:
        raise ValueError(f"corpus must be one of {ICWB2_CORPORA}, got {describe(corpus)}.")
    if not isinstance(split, str) or split not in _ICWB2_SPLITS:
        raise ValueError(f"split must be one of {tuple(_ICWB2_SPLITS)}, got {describe(split)}.")
    name = _ICWB2_SPLITS[split].format(c=corpus)
    if (corpus, split) == ("as", "gold"):
        name = "icwb2/gold/as_testing_gold.utf8"  # the archive's own spelling
    with open(fetch(name), encoding="utf-8-sig") as fh:
        lines = [line.strip() for line in fh]
    lines = [line for line in lines if line]
    if split == "test":
        return lines
    if split == "words":
        return set(lines)
    return [line.split() for line in lines]


def load_cws(corpus: str = "pku", official: bool = False, test_fraction: float = 0.2, seed: int = 0):
    """Training and test sentences for Chinese word segmentation.

    ``official=True``: the bakeoff's own training set and gold test set, with the official
    training word list for OOV. ``official=False`` (what works offline with only the gold
    files): a seeded random split of the gold test set into ``1 - test_fraction`` for
    training and ``test_fraction`` for testing, with OOV measured against the words of
    that training part.

    Returns:
        ``(train, test, train_words)``: two lists of sentences (lists of words) and a set.
    """
    if not isinstance(corpus, str) or corpus not in ICWB2_CORPORA:
        raise ValueError(f"corpus must be one of {ICWB2_CORPORA}, got {describe(corpus)}.")
    if check_bool(official, "official"):
        return load_icwb2(corpus, "train"), load_icwb2(corpus, "gold"), load_icwb2(corpus, "words")
    test_fraction = check_real(test_fraction, "test_fraction", 0.0, 1.0, low_open=True,
                               high_open=True)
    seed = check_int(seed, "seed", 0)
    sentences = load_icwb2(corpus, "gold")
    order = np.random.default_rng(seed).permutation(len(sentences))
    n_test = int(round(test_fraction * len(sentences)))
    test = [sentences[i] for i in sorted(order[:n_test])]
    train = [sentences[i] for i in sorted(order[n_test:])]
    return train, test, {w for s in train for w in s}


# ---------------------------------------------------------------- synthetic: the adding problem


def adding_problem(num: int, length: int, seed: int = 0):
    """The adding problem: a long-range regression task for recurrent networks.

    Each sequence has ``length`` steps of two channels. Channel 0 holds values drawn
    uniformly from ``[0, 1)``; channel 1 is a marker that is 1 at exactly two steps, one drawn
    uniformly from the first half (``[0, length // 2)``) and one from the second half
    (``[length // 2, length)``), and 0 elsewhere. The target is the sum of the two marked
    values, so a model must carry the first marked value across up to ``length - 1`` steps.
    Predicting the mean (1.0) for every sequence gives a mean squared error of
    ``Var(u1 + u2) = 1/6``, the level an untrained or memoryless model sits at.

    Args:
        num: number of sequences (>= 1).
        length: steps per sequence (>= 2).
        seed: seed of NumPy's ``default_rng``; the same seed gives the same data.

    Returns:
        ``(x, y)``: ``x`` float32 of shape ``(num, length, 2)`` (values, markers) and ``y``
        float32 of shape ``(num, 1)`` (the sum of the two marked values).

    Used in: book/geometry/rnn-gradients.md
    """
    num = check_int(num, "num", 1)
    length = check_int(length, "length", 2)
    seed = check_int(seed, "seed", 0)
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.0, 1.0, size=(num, length)).astype(np.float32)
    half = length // 2
    first = rng.integers(0, half, size=num)
    second = rng.integers(half, length, size=num)
    markers = np.zeros((num, length), np.float32)
    rows = np.arange(num)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = np.stack([values, markers], axis=-1)
    y = (values[rows, first] + values[rows, second])[:, None]
    return x, y


# ------------------------------------------------- Chinese text: CLUE, sentiment, sentence pairs


def _pinned(repo: str, commit: str, path: str) -> str:
    """Raw-file URL of ``path`` in the GitHub repository ``repo`` at ``commit``."""
    return f"https://raw.githubusercontent.com/{repo}/{commit}/{path}"


_AFQMC = ("LeslieOverfitting/nlp_AFQMC", "c5ab1362720637c3cd10e48ef0ac3523d84ac057")
_FEWCLUE = ("CLUEbenchmark/FewCLUE", "62a02c6f31cf32814cfe522f78ef088228840f8d")
_UER = ("dbiir/UER-py", "5743050cc41f0f21986c9f938db5ac1726052629")
_SOPHON = ("SophonPlus/ChineseNlpCorpus", "a0b781d72158bde242c0626c9e354d2b328865ff")
_TEXT2VEC = ("shibing624/text2vec", "8e90a0f171286ac9a47b5bf492612a3b38c2d3f5")
TNEWS_URL = "https://storage.googleapis.com/cluebenchmark/tasks/tnews_public.zip"
"""CLUE's TNEWS archive; the registered files are members of it."""

_TEXT_FILES = [
    # CLUE AFQMC (Ant Financial question matching): the train set as the source repo's CSV.
    DataFile("clue/afqmc/train.csv", _pinned(*_AFQMC, "data/train.csv"),
             "3485780b635f019683809ff9a85218f8bdd91eb9505b6a8e0426de2f6b08e5bc",
             note="CLUE's train.json converted to CSV (sentence1,sentence2,label), 34,334 rows"),
    DataFile("clue/afqmc/dev.json", _pinned(*_AFQMC, "data/dev.json"),
             "20b35a40e1aec2141e50247f798b2eef0e974accb9ca7196105ecb547c65c7b8"),
    # CLUE IFLYTEK, FewCLUE's copy (app descriptions, 119 classes).
    DataFile("clue/iflytek_fewclue/train_few_all.json",
             _pinned(*_FEWCLUE, "datasets/iflytek/train_few_all.json"),
             "8de5db8d8a9fa77ae2e5da36a78c762625303600d547f96cc3b674a012243fe6"),
    DataFile("clue/iflytek_fewclue/dev_few_all.json",
             _pinned(*_FEWCLUE, "datasets/iflytek/dev_few_all.json"),
             "25e8dd5031ce5d1f7f78f00edff81749a2dc00c17894151c2790c55a4ac3f5dc"),
    DataFile("clue/iflytek_fewclue/test_public.json",
             _pinned(*_FEWCLUE, "datasets/iflytek/test_public.json"),
             "f3cca532ec3d63b4afd2d8ce73f2f6e3eaa224cf8fa2fb9a6ebe2e602742dc19"),
    # CLUE TNEWS 1.1 (news titles, 15 classes, keyword lists): members of CLUE's archive.
    *[DataFile(f"clue/tnews/{m}", TNEWS_URL, sha,
               note=f"member {m} of the archive; extract it to the cache")
      for m, sha in (("train.json", "e2c6c008569d23b50778a45abe4c2d9cef140177982203ed7dbad9ddcd748b25"),
                     ("dev.json", "0dd33323dfdf224a690f684746b00048a46b70f3b244d411293c8470572644ef"),
                     ("labels.json", "934374ed5986bb49d6f09dbbc46acfb1ab9fbcc4cb0fec3392b496b3402ad294"))],
    # ChnSentiCorp in Baidu ERNIE's split (train 9,600 / dev 1,200 / test 1,200).
    *[DataFile(f"sentiment/chnsenticorp_ernie/{s}.tsv",
               _pinned(*_UER, f"datasets/chnsenticorp/{s}.tsv"), sha)
      for s, sha in (("train", "0b2653c23e5c79f539472e90cb10522f0ada4b80d3da95572d8b48fda47d5b33"),
                     ("dev", "d129e443eac08ce7643013dad496a8edf282be39cac1a4f2ad080818b296b331"),
                     ("test", "34f9d71eba6096cd8689e18913d28cf9a5f3c18a6c2804cd13304a321738c4bc"))],
    # Two review sets of SophonPlus/ChineseNlpCorpus.
    DataFile("sentiment/sophonplus/ChnSentiCorp_htl_all.csv",
             _pinned(*_SOPHON, "datasets/ChnSentiCorp_htl_all/ChnSentiCorp_htl_all.csv"),
             "1d414b9c65caf3a836abdb4efded621968502ad3338e1a9d885ae131c86083f0"),
    DataFile("sentiment/sophonplus/waimai_10k.csv",
             _pinned(*_SOPHON, "datasets/waimai_10k/waimai_10k.csv"),
             "b8b5c11c00b51578d35937fca56e03a126b45381f1ea4b22893237cb377a26fe"),
    # Chinese STS-B (the STS benchmark translated; scores 0-5).
    *[DataFile(f"sentence_pair/stsb_zh/STS-B.{s}.data",
               _pinned(*_TEXT2VEC, f"examples/data/STS-B/STS-B.{s}.data"), sha)
      for s, sha in (("train", "456904474b184025fc620fa62d887bdcd6c0de28bc94888602fc8112b8d0719c"),
                     ("valid", "5d3297cb522b763970631790508c567a141be4d3b729669ae2a19743383340c6"),
                     ("test", "a22c0e4dba5d589b8f68feca2c11329031fdaee084c37c30ebea7feea12a3545"))],
    # English plain text: six NLTK corpora, one sentence per line (built, see the note).
    DataFile("text_corpus/english_corpus_nltk.txt",
             "https://raw.githubusercontent.com/nltk/nltk_data/gh-pages/packages/corpora/",
             "8a7f89cf5071e9a881ddcffec84c741cb88ff3beddc562fdb508a91fcdb08b2d",
             note="built from the NLTK corpora brown (tags stripped), abc, state_union, webtext, "
                  "inaugural and movie_reviews, concatenated, one sentence per line"),
]
REGISTRY.update({f.name: f for f in _TEXT_FILES})


def _read_json_lines(path: Path) -> list[dict]:
    # Split on "\n" only: IFLYTEK's descriptions hold U+2028, which str.splitlines breaks on.
    with open(path, encoding="utf-8-sig", newline="") as fh:
        text = fh.read()
    return [json.loads(line) for line in text.split("\n") if line.strip()]


CLUE_TASKS = {"tnews": ("train", "dev"), "iflytek": ("train", "dev", "test"),
              "afqmc": ("train", "dev")}
"""The CLUE tasks the book loads and their labelled splits."""

_IFLYTEK_SPLITS = {"train": "train_few_all", "dev": "dev_few_all", "test": "test_public"}


def clue_labels(task: str) -> list[str]:
    """Class names of a CLUE classification task, in label-id order.

    ``"tnews"``: the 15 ``label_desc`` values of ``labels.json`` (``"news_story"``, ...);
    ``"iflytek"``: the 119 app categories (Chinese names), ordered by their integer label.
    """
    task = _check_clue_task(task, ("tnews", "iflytek"))
    if task == "tnews":
        return [r["label_desc"] for r in _read_json_lines(fetch("clue/tnews/labels.json"))]
    names: dict[int, str] = {}
    for split in _IFLYTEK_SPLITS.values():
        for r in _read_json_lines(fetch(f"clue/iflytek_fewclue/{split}.json")):
            names[int(r["label"])] = r["label_des"]
    return [names[i] for i in sorted(names)]


def _check_clue_task(task, tasks) -> str:
    if not isinstance(task, str) or task not in tasks:
        raise ValueError(f"task must be one of {tuple(tasks)}, got {describe(task)}.")
    return task


def load_clue(task: str, split: str = "train") -> list[dict]:
    """Labelled records of a CLUE task, read from the mirror or cache (never the network
    unless a file is missing there).

    Args:
        task: ``"tnews"`` (news titles, 15 classes; 38,696 of the 53,360 training titles
            carry a keyword list), ``"iflytek"`` (app descriptions, 119 classes; FewCLUE's
            copy: train 3,024 / dev 1,373 / test 1,749, since only that copy is mirrored) or
            ``"afqmc"`` (question pairs, same meaning or not).
        split: one of ``CLUE_TASKS[task]``. TNEWS's public ``"dev"`` set is CLUE's dev set.

    Returns:
        A list of dicts, in file order:
        ``tnews``: ``{"sentence", "label", "label_desc", "keywords"}``, ``label`` an int in
        ``[0, 15)`` (position in :func:`clue_labels`), ``keywords`` a list of strings
        (empty for titles without keywords);
        ``iflytek``: ``{"sentence", "label", "label_desc"}``, ``label`` an int in ``[0, 119)``;
        ``afqmc``: ``{"sentence1", "sentence2", "label"}``, ``label`` 0 or 1.

    Used in: the word, exposure-bias and adversarial-training chapters of book/sequence/.
    """
    task = _check_clue_task(task, CLUE_TASKS)
    if not isinstance(split, str) or split not in CLUE_TASKS[task]:
        raise ValueError(f"split must be one of {CLUE_TASKS[task]} for task {task!r}, got "
                         f"{describe(split)}.")
    if task == "tnews":
        codes = [r["label"] for r in _read_json_lines(fetch("clue/tnews/labels.json"))]
        index = {code: i for i, code in enumerate(codes)}
        return [{"sentence": r["sentence"], "label": index[r["label"]],
                 "label_desc": r["label_desc"],
                 "keywords": [k for k in r.get("keywords", "").split(",") if k]}
                for r in _read_json_lines(fetch(f"clue/tnews/{split}.json"))]
    if task == "iflytek":
        return [{"sentence": r["sentence"], "label": int(r["label"]),
                 "label_desc": r["label_des"]}
                for r in _read_json_lines(fetch(f"clue/iflytek_fewclue/{_IFLYTEK_SPLITS[split]}.json"))]
    if split == "dev":
        return [{"sentence1": r["sentence1"], "sentence2": r["sentence2"], "label": int(r["label"])}
                for r in _read_json_lines(fetch("clue/afqmc/dev.json"))]
    import csv

    with open(fetch("clue/afqmc/train.csv"), encoding="utf-8-sig", newline="") as fh:
        return [{"sentence1": r["sentence1"], "sentence2": r["sentence2"], "label": int(r["label"])}
                for r in csv.DictReader(fh)]


SENTIMENT_SETS = ("chnsenticorp", "hotel", "waimai")
"""Chinese review sets: ChnSentiCorp (ERNIE split), hotel reviews, food-delivery reviews."""


def load_chinese_sentiment(name: str = "chnsenticorp", split: str = "train") -> TextSplit:
    """Chinese reviews labelled 1 (positive) or 0 (negative).

    Args:
        name: ``"chnsenticorp"`` (Baidu ERNIE's split of ChnSentiCorp: ``"train"`` 9,600,
            ``"dev"`` 1,200, ``"test"`` 1,200), ``"hotel"`` (ChnSentiCorp_htl_all, 7,766
            hotel reviews) or ``"waimai"`` (11,987 food-delivery reviews); the last two have
            one split, ``"all"``.
        split: see ``name``.

    Returns:
        :class:`TextSplit` with the raw texts, ``int64`` labels, empty ``sequences`` (encode
        them yourself: characters or :func:`segment` words) and ids ``"<file>:<row>"``.
        Rows whose text is empty are dropped.
    """
    if not isinstance(name, str) or name not in SENTIMENT_SETS:
        raise ValueError(f"name must be one of {SENTIMENT_SETS}, got {describe(name)}.")
    splits = ("train", "dev", "test") if name == "chnsenticorp" else ("all",)
    if not isinstance(split, str) or split not in splits:
        raise ValueError(f"split must be one of {splits} for {name!r}, got {describe(split)}.")
    import csv

    if name == "chnsenticorp":
        fname, delimiter, text_key = f"sentiment/chnsenticorp_ernie/{split}.tsv", "\t", "text_a"
    else:
        fname = ("sentiment/sophonplus/ChnSentiCorp_htl_all.csv" if name == "hotel"
                 else "sentiment/sophonplus/waimai_10k.csv")
        delimiter, text_key = ",", "review"
    texts, labels, ids = [], [], []
    with open(fetch(fname), encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh, delimiter=delimiter, quoting=csv.QUOTE_NONE if delimiter == "\t"
                                else csv.QUOTE_MINIMAL)
        for row, rec in enumerate(reader):
            text = (rec.get(text_key) or "").strip()
            if not text:
                continue
            texts.append(text)
            labels.append(int(rec["label"]))
            ids.append(f"{Path(fname).name}:{row}")
    return TextSplit(texts, np.asarray(labels, dtype="int64"), [], ids)


def load_stsb_zh(split: str = "train") -> list[dict]:
    """Chinese STS-B sentence pairs with their similarity score.

    Args:
        split: ``"train"`` (5,231 pairs), ``"valid"`` (1,458) or ``"test"`` (1,361).

    Returns:
        A list of ``{"sentence1", "sentence2", "score"}``, ``score`` a float in ``[0, 5]``
        (this translated copy gives whole numbers).
    """
    check_choice(split, "split", ("train", "valid", "test"))
    out = []
    with open(fetch(f"sentence_pair/stsb_zh/STS-B.{split}.data"), encoding="utf-8-sig") as fh:
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            if len(parts) == 3 and parts[0] and parts[1]:
                out.append({"sentence1": parts[0], "sentence2": parts[1], "score": float(parts[2])})
    return out


def load_english_corpus(max_lines: int | None = None) -> list[list[str]]:
    """The English plain-text corpus (six NLTK corpora, about 4.1 million tokens).

    Each line is one sentence, already tokenised by the corpora (punctuation separated);
    it is lower-cased and split on whitespace. ``max_lines`` keeps only the first lines.

    Returns:
        A list of sentences, each a list of lower-case tokens (186,822 sentences in all).
    """
    if max_lines is not None:
        max_lines = check_int(max_lines, "max_lines", 1)
    out = []
    with open(fetch("text_corpus/english_corpus_nltk.txt"), encoding="utf-8") as fh:
        for line in fh:
            words = line.lower().split()
            if words:
                out.append(words)
                if max_lines is not None and len(out) >= max_lines:
                    break
    return out


# ---------------------------------------------------------- segmentation and the Chinese corpus


def _jieba():
    try:
        import jieba
    except ImportError as err:  # pragma: no cover - jieba is in requirements.txt
        raise ImportError("Chinese word segmentation needs jieba: pip install jieba") from err
    import logging

    jieba.setLogLevel(logging.WARNING)
    return jieba


def segment(texts, hmm: bool = True) -> list[list[str]]:
    """Split Chinese texts into words with jieba (its own dictionary; works offline).

    Args:
        texts: a string or a list of strings.
        hmm: whether jieba may propose words missing from its dictionary (its HMM).

    Returns:
        A list of word lists, one per text (a single list for a single string); whitespace
        tokens are dropped.
    """
    hmm = check_bool(hmm, "hmm")
    single = isinstance(texts, str)
    items = [texts] if single else texts
    if not isinstance(items, (list, tuple)) or not all(isinstance(t, str) for t in items):
        raise TypeError(f"texts must be a string or a list of strings, got {describe(texts)}.")
    jieba = _jieba()
    out = [[p for w in jieba.lcut(t, HMM=hmm) for p in w.split()] for t in items]
    return out[0] if single else out


CORPUS_SOURCES = {
    # already segmented by the SIGHAN annotators (simplified characters)
    "pku": ("icwb2/gold/pku_test_gold.utf8",),
    "msr": ("icwb2/gold/msr_test_gold.utf8",),
    # raw texts, segmented with jieba
    "tnews": ("clue/tnews/train.json", "clue/tnews/dev.json", "clue/tnews/labels.json"),
    "iflytek": ("clue/iflytek_fewclue/train_few_all.json",),
    "afqmc": ("clue/afqmc/train.csv",),
    "chnsenticorp": ("sentiment/chnsenticorp_ernie/train.tsv",),
    "hotel": ("sentiment/sophonplus/ChnSentiCorp_htl_all.csv",),
    "waimai": ("sentiment/sophonplus/waimai_10k.csv",),
}
"""Sources of :func:`load_chinese_corpus` and the registered files each reads. Only training
splits are used, so that evaluation texts (ChnSentiCorp dev/test, IFLYTEK dev/test, AFQMC
dev, STS-B) never enter the word-vector corpus."""

_CORPUS_VERSION = "1"  # bump when the way a source is turned into sentences changes


def _source_texts(source: str) -> list[str]:
    if source == "tnews":
        return [r["sentence"] for s in ("train", "dev") for r in load_clue("tnews", s)]
    if source == "iflytek":
        return [r["sentence"] for r in load_clue("iflytek", "train")]
    if source == "afqmc":
        seen: dict[str, None] = {}
        for r in load_clue("afqmc", "train"):
            seen.setdefault(r["sentence1"])
            seen.setdefault(r["sentence2"])
        return list(seen)  # each distinct question once
    if source == "chnsenticorp":
        return load_chinese_sentiment("chnsenticorp", "train").texts
    return load_chinese_sentiment(source, "all").texts


def load_chinese_corpus(sources=("pku", "msr", "tnews", "iflytek", "afqmc", "chnsenticorp"),
                        progress: bool = False) -> list[list[str]]:
    """A segmented Chinese corpus for word vectors: a list of sentences (lists of words).

    ``"pku"`` and ``"msr"`` are the SIGHAN gold test files, segmented by hand; every other
    source (see :data:`CORPUS_SOURCES`) is raw text segmented by :func:`segment`. The
    segmented text is cached under ``<data cache>/corpus/`` in a file named by a hash of the
    source names, the sha256 of every input file, jieba's version and the recipe's version,
    so it is rebuilt whenever an input changes and read back (seconds) otherwise.

    Args:
        sources: names from :data:`CORPUS_SOURCES`, concatenated in this order.
        progress: show a tqdm bar while segmenting.

    Returns:
        ``list[list[str]]``, one entry per sentence or text (no empty entries).
    """
    if isinstance(sources, str):
        sources = (sources,)
    if not isinstance(sources, (list, tuple)) or not sources:
        raise TypeError(f"sources must be a non-empty list of names from {tuple(CORPUS_SOURCES)}, "
                        f"got {describe(sources)}.")
    for s in sources:
        check_choice(s, "sources", tuple(CORPUS_SOURCES))
    progress = check_bool(progress, "progress")
    out: list[list[str]] = []
    for source in sources:
        out.extend(_cached_source(source, progress))
    return out


def _cached_source(source: str, progress: bool) -> list[list[str]]:
    files = CORPUS_SOURCES[source]
    paths = [fetch(name) for name in files]
    if source in ("pku", "msr"):
        return load_icwb2(source, "gold")
    jieba = _jieba()
    key = hashlib.sha256("|".join(
        [_CORPUS_VERSION, source, getattr(jieba, "__version__", "?")]
        + [sha256sum(p) for p in paths]).encode()).hexdigest()[:16]
    cached = data_dir() / "corpus" / f"zh-{source}-{key}.txt"
    if cached.exists():
        with open(cached, encoding="utf-8") as fh:
            return [line.split() for line in fh.read().split("\n") if line]
    texts = _source_texts(source)
    if progress:
        from tqdm.auto import tqdm

        texts = tqdm(texts, desc=f"segmenting {source}", leave=False)
    sentences = [words for words in (segment(list(texts)) if not progress
                                     else [segment(t) for t in texts]) if words]
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_name(f"{cached.name}.part{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write("\n".join(" ".join(w) for w in sentences) + "\n")
    tmp.replace(cached)
    return sentences


# ---------------------------------------------------------------- synthetic and MNIST multi-label sets

from kexue._checks import as_array, check_shape  # noqa: E402


def teacher_multilabel(num: int, n_labels: int, signal: float, dim: int = 64,
                       mean_labels: float = 3.0, seed: int = 0):
    """A multi-label task with a known teacher: x ~ N(0, I), labels where a noisy score is high.

    The teacher's weights are ``W ~ N(0, signal^2 / dim)`` (``n_labels x dim``), so each clean
    score ``W x`` has standard deviation about ``signal``; logistic noise (scale 1, standard
    deviation pi/sqrt(3)) is added, and a label is positive where the noisy score exceeds one
    threshold ``tau``, set at the ``1 - mean_labels / n_labels`` quantile of all scores of the
    sample, so that rows carry ``mean_labels`` positives on average (some rows none). ``signal``
    sets the signal-to-noise ratio, ``n_labels / mean_labels`` the imbalance.

    Returns ``(x, y)``: float32 ``(num, dim)`` and multi-hot float32 ``(num, n_labels)``. The
    same arguments give the same data.

    Used in: book/sequence/multilabel-softmax.md
    """
    num = check_int(num, "num", 1)
    n_labels = check_int(n_labels, "n_labels", 2)
    signal = check_real(signal, "signal", 0.0, low_open=True)
    dim = check_int(dim, "dim", 1)
    mean_labels = check_real(mean_labels, "mean_labels", 0.0, n_labels, low_open=True,
                             high_open=True)
    seed = check_int(seed, "seed", 0)
    rng = np.random.default_rng(seed)
    w = rng.normal(0.0, signal / np.sqrt(dim), size=(dim, n_labels))
    x = rng.normal(size=(num, dim))
    scores = x @ w + rng.logistic(size=(num, n_labels))
    tau = np.quantile(scores, 1.0 - mean_labels / n_labels)
    return x.astype(np.float32), (scores > tau).astype(np.float32)


def digit_canvas(images, labels, num: int, grid: int = 2, p: float = 0.6, classes: int = 10,
                 seed: int = 0):
    """Canvases of ``grid x grid`` cells, each holding a random digit image with probability p.

    ``images``: ``(N, h, w)`` (MNIST: ``uint8 (N, 28, 28)``), ``labels``: ``(N,)`` integers in
    ``[0, classes)``. Every cell of every canvas independently holds one image drawn at random
    from ``images`` (with probability ``p``) or stays blank; the label of a canvas is the
    multi-hot set of the digits on it, so a digit drawn twice counts once and a blank canvas
    has no label. With MNIST, ``grid=2`` gives 56 x 56 canvases with 0 to 4 digits (2.4 on
    average at ``p=0.6``).

    Returns ``(x, y)``: ``x`` of the dtype of ``images`` and shape ``(num, grid*h, grid*w)``,
    ``y`` multi-hot float32 ``(num, classes)``. The same arguments give the same canvases.

    Used in: book/sequence/multilabel-softmax.md
    """
    images = as_array(images, "images")
    check_shape(images, "images", ("N", None, None))
    labels = as_array(labels, "labels")
    check_shape(labels, "labels", (images.shape[0],))
    num = check_int(num, "num", 1)
    grid = check_int(grid, "grid", 1)
    p = check_real(p, "p", 0.0, 1.0)
    classes = check_int(classes, "classes", 1)
    if labels.size and (labels.dtype.kind not in "iu" or labels.min() < 0
                        or labels.max() >= classes):
        raise ValueError(f"labels must be integers in [0, {classes}), got values from "
                         f"{labels.min()!r} to {labels.max()!r} (dtype {labels.dtype}).")
    if images.shape[0] == 0:
        raise ValueError("images must hold at least one image, got shape (0, ...).")
    rng = np.random.default_rng(check_int(seed, "seed", 0))
    _, h, w = images.shape
    x = np.zeros((num, grid * h, grid * w), images.dtype)
    y = np.zeros((num, classes), np.float32)
    filled = rng.random((num, grid, grid)) < p
    picks = rng.integers(0, images.shape[0], size=(num, grid, grid))
    for r in range(grid):
        for c in range(grid):
            rows = np.flatnonzero(filled[:, r, c])
            x[rows, r * h:(r + 1) * h, c * w:(c + 1) * w] = images[picks[rows, r, c]]
            y[rows, labels[picks[rows, r, c]]] = 1.0
    return x, y
