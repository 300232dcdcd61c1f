"""The LeNet example (examples/lenet_fashion_mnist.py) on synthetic data: never the real files."""

from __future__ import annotations

import gzip
import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "lenet_fashion_mnist.py"


def load_example():
    """examples/ is not a package: load the script as a module."""
    name = "lenet_fashion_mnist_example"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def synthetic_data(n_train: int = 256, n_test: int = 64, seed: int = 0):
    """Learnable fake images: each class lights up its own band of rows, plus noise."""
    rng = np.random.default_rng(seed)

    def make(n):
        y = rng.integers(0, 10, size=n)
        x = rng.uniform(0, 0.3, size=(n, 28, 28, 1)).astype(np.float32)
        for i, c in enumerate(y):
            x[i, 2 * c + 4 : 2 * c + 7, :, 0] += 0.7
        return np.clip(x, 0, 1), y.astype(np.int64)

    return (*make(n_train), *make(n_test))


def test_lenet_objective_under_random_search():
    pytest.importorskip(
        "tensorflow", reason="tensorflow is not installed (pip install -e .[keras])"
    )
    pytest.importorskip("keras", reason="keras is not installed (pip install -e .[keras])")
    from hpostore import BasicScheduler, HPOTuner, RandomSearcher

    ex = load_example()
    data = synthetic_data()
    objective = ex.make_objective(data, max_epochs=1)
    searcher = RandomSearcher(ex.CONFIG_SPACE, initial_config=ex.INITIAL_CONFIG, seed=0)
    tuner = HPOTuner(BasicScheduler(searcher), objective, store=None, study="lenet", verbose=False)
    tuner.run(number_of_trials=2)

    assert len(tuner.records) == 2
    for r in tuner.records:
        assert isinstance(r["error"], float)
        assert math.isfinite(r["error"]) and 0.0 <= r["error"] <= 1.0
        assert set(r["config"]) == {"learning_rate", "batch_size"}
    assert tuner.records[0]["config"] == {"learning_rate": 0.1, "batch_size": 128}
    kinds = tuner.store.events(tuner.study).column("kind").to_pylist()
    assert kinds.count("evaluate") == 2
    tuner.close()


def _write_fake_gz(path: Path, payload: bytes) -> None:
    with gzip.open(path, "wb") as f:
        f.write(payload)


def test_load_fashion_mnist_names_missing_and_corrupted_files(tmp_path):
    ex = load_example()
    # Two tiny fake files (wrong md5), two absent.
    _write_fake_gz(tmp_path / "train-images-idx3-ubyte.gz", b"\x00\x00\x08\x03not really")
    _write_fake_gz(tmp_path / "t10k-labels-idx1-ubyte.gz", b"\x00\x00\x08\x01")
    with pytest.raises(RuntimeError) as info:
        ex.load_fashion_mnist(tmp_path)
    msg = str(info.value)
    assert "train-images-idx3-ubyte.gz: wrong md5" in msg
    assert "t10k-labels-idx1-ubyte.gz: wrong md5" in msg
    assert "train-labels-idx1-ubyte.gz: missing" in msg
    assert "t10k-images-idx3-ubyte.gz: missing" in msg
    assert "--data-dir" in msg and "FASHION_MNIST_DIR" in msg


def test_load_fashion_mnist_reads_data_dir_from_env(tmp_path, monkeypatch):
    ex = load_example()
    monkeypatch.setenv("FASHION_MNIST_DIR", str(tmp_path))
    with pytest.raises(RuntimeError, match="train-labels-idx1-ubyte.gz: missing"):
        ex.load_fashion_mnist()


def test_parse_idx_checks_magic_and_shape():
    ex = load_example()
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    raw = np.array([2051, 2, 28, 28], dtype=">u4").tobytes() + images.tobytes()
    out = ex._parse_idx(raw, "x", 2051, (2, 28, 28))
    np.testing.assert_array_equal(out, images)
    with pytest.raises(RuntimeError, match="magic number 2051, expected 2049"):
        ex._parse_idx(raw, "x", 2049, (2, 28, 28))
    with pytest.raises(RuntimeError, match="shape"):
        ex._parse_idx(raw, "x", 2051, (3, 28, 28))
