"""A persistent index of a user's own documents, serving keff's learned transforms.

``Index.build(path, documents, encoders)``, ``Index.open(path).search(texts, k)``, ``add``,
``remove``; documents come from a BEIR folder, a JSONL file or a folder of text files
(:func:`read_documents`). See :mod:`keff.docindex.index` for the on-disk format and its
guarantees.
"""

from keff.docindex.backends import KINDS as BACKENDS
from keff.docindex.documents import Document
from keff.docindex.index import Hit, Index
from keff.docindex.ingest import read_documents

__all__ = ["BACKENDS", "Document", "Hit", "Index", "read_documents"]
