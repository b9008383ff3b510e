"""Data for keff: BEIR corpora, Q/A pair sets, ordered paragraphs, grouped splits, leak checks.

Everything here is numpy and the standard library (scipy only inside :func:`split_parity`).
Every loader validates its input and raises :class:`~keff.errors.DataError` naming the file,
the 1-based line and the id at fault.
"""

from keff.data._groups import key_components
from keff.data.beir import BeirDataset, load_beir
from keff.data.fetch import BEIR_BASE_URL, fetch_beir
from keff.data.leakage import LeakReport, leak_check, split_parity
from keff.data.qa import QAPairs, load_qa, qa_field
from keff.data.qa_layout import PRESETS as QA_PRESETS
from keff.data.qa_layout import QALayout, parse_qa_layout
from keff.data.qa_task import QARetrievalTask, qa_retrieval_task
from keff.data.sequences import Article, load_wikitext
from keff.data.splits import Split, grouped_kfold, grouped_split, sample_groups

__all__ = [
    "BEIR_BASE_URL",
    "QA_PRESETS",
    "Article",
    "BeirDataset",
    "LeakReport",
    "QALayout",
    "QAPairs",
    "QARetrievalTask",
    "Split",
    "fetch_beir",
    "grouped_kfold",
    "grouped_split",
    "key_components",
    "leak_check",
    "load_beir",
    "load_qa",
    "qa_field",
    "load_wikitext",
    "parse_qa_layout",
    "qa_retrieval_task",
    "sample_groups",
    "split_parity",
]
