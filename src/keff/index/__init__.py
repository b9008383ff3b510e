"""Nearest-neighbour search over (n, d) float32 vectors.

Importing this package never imports FAISS; the ``"faiss"`` backend loads it on first use.
"""

from keff.index.exact import BACKENDS, ExactIndex

__all__ = ["BACKENDS", "ExactIndex"]
