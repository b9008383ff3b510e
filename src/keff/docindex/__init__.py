"""A persistent index of a user's own documents, serving keff's learned transforms.

``Index.build(path, documents, encoders)``, ``Index.open(path).search(texts, k)``, ``add``,
``remove``; documents come from a BEIR folder, a JSONL file or a folder of text files
(:func:`read_documents`). See :mod:`keff.docindex.index` for the on-disk format and its
guarantees. Learned transforms applied at query time (query maps, fusion weights,
specialists): :mod:`keff.docindex.transforms`; evaluating and fitting them on judged queries:
:mod:`keff.docindex.evaluate`. Model upgrade without downtime: :mod:`keff.docindex.upgrade` (``upgrade``, ``reembed``).
"""

from keff.docindex.backends import KINDS as BACKENDS
from keff.docindex.documents import Document
from keff.docindex.evaluate import evaluate_index, fit_fusion_weights, fit_query_map
from keff.docindex.index import Hit, Index
from keff.docindex.ingest import read_documents
from keff.docindex.transforms import FusionWeights
from keff.docindex.upgrade import UpgradeRefused

__all__ = [
    "BACKENDS",
    "Document",
    "FusionWeights",
    "Hit",
    "Index",
    "UpgradeRefused",
    "evaluate_index",
    "fit_fusion_weights",
    "fit_query_map",
    "read_documents",
]
