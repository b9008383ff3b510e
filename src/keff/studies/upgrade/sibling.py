"""The "I fine-tuned my model" upgrade: minilm fine-tuned on a BEIR set's training pairs.

The new model of this pair is the old one after a short in-domain fine-tune (the training
queries against their relevant documents; never the test queries), so the two spaces are close
but not identical: the case where a map fitted on few anchors should recover almost all of
re-embedding. The folder is cached by content (base model, pairs, settings) and loads with
:func:`keff.encoders.get_encoder`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from keff.data import load_beir
from keff.encoders import get_encoder
from keff.paths import cache_dir
from keff.studies.common import log

#: The fine-tune's settings (three passes over the training pairs, the library's defaults otherwise).
SIBLING_SETTINGS = {"epochs": 3, "seed": 0, "max_seconds": 900.0}


def training_pairs(data: Path, name: str) -> list[tuple[str, str]]:
    """(query, relevant document text) of the BEIR set's train split, in file order."""
    ds = load_beir(data / "beir" / name, splits=["train"])
    doc_text = dict(zip(ds.doc_ids, ds.doc_texts, strict=True))
    query_text = dict(zip(ds.query_ids, ds.query_texts, strict=True))
    pairs = []
    for qid, rels in ds.qrels["train"].items():
        pairs += [(query_text[qid], doc_text[did]) for did, grade in rels.items() if grade > 0 and did in doc_text]
    return pairs


def finetuned_sibling(data: Path, name: str = "scifact") -> Path:
    """The folder of minilm fine-tuned on ``name``'s training pairs (fine-tuned first if not cached)."""
    from keff.train.finetune import finetune_specialist

    pairs = training_pairs(data, name)
    spec = {"base": get_encoder("minilm", cache=False).fingerprint, "data": name, **SIBLING_SETTINGS,
            "pairs": hashlib.sha256(json.dumps(pairs).encode()).hexdigest()}  # fmt: skip
    key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]
    out = cache_dir() / "specialists" / f"minilm-{name}-sibling-{key}"
    if not (out / "keff_finetune.json").is_file():
        log(f"fine-tuning minilm on {len(pairs)} {name} training pairs ({SIBLING_SETTINGS})")
        finetune_specialist(pairs, out, **SIBLING_SETTINGS)
    return out
