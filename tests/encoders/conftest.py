"""Fixtures for keff.encoders tests: an isolated keff cache, real models, SciFact slices."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from keff.errors import ModelNotAvailable

TEXTS = [
    "The cat sat on the mat.",
    "Protein folding is driven by hydrophobic collapse.",
    "Stock markets fell sharply on Monday.",
    "How do vaccines train the immune system?",
]


@pytest.fixture(scope="package", autouse=True)
def isolated_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point KEFF_CACHE_DIR at a fresh folder for the whole encoders test package; models
    assembled once (``keff models fetch mpnet``) are still found through KEFF_MODEL_DIR."""
    from keff.paths import models_dir

    root = tmp_path_factory.mktemp("keff-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KEFF_MODEL_DIR", str(models_dir()))
        mp.setenv("KEFF_CACHE_DIR", str(root))
        yield root


def scifact_docs(data: Path, n: int) -> list[str]:
    """The first ``n`` SciFact documents as encoded for the precomputed vectors."""
    docs = []
    with open(data / "beir" / "scifact" / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            if len(docs) == n:
                break
            rec = json.loads(line)
            docs.append((rec["title"] + " " + rec["text"]).strip())
    return docs


def precomputed(data: Path, model: str, n: int) -> np.ndarray:
    """The first ``n`` precomputed SciFact corpus rows of ``model``."""
    return np.array(np.load(data / "embeddings" / "scifact" / model / "corpus.npy", mmap_mode="r")[:n])


def _raw(name: str):
    from keff.encoders import get_encoder

    try:
        return get_encoder(name, cache=False)
    except ModelNotAvailable as exc:
        pytest.skip(f"{name} not installed here: {exc}")


@pytest.fixture(scope="package")
def minilm(isolated_cache_dir: Path):
    """The real all-MiniLM-L6-v2 (sentence-transformers), uncached, loaded once."""
    pytest.importorskip("sentence_transformers", reason="needs keff[st]")
    return _raw("minilm")


@pytest.fixture(scope="package")
def minilm_int8(isolated_cache_dir: Path):
    pytest.importorskip("onnxruntime", reason="needs keff[onnx]")
    return _raw("minilm-int8-onnx")


@pytest.fixture(scope="package")
def minilm_l3(isolated_cache_dir: Path):
    pytest.importorskip("onnxruntime", reason="needs keff[onnx]")
    return _raw("minilm-l3-onnx")
