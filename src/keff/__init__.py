"""keff: small, trustworthy transforms over frozen embedding models, measured on real retrieval.

Importing keff is cheap and never imports torch, FAISS or a server; heavy backends load only
when a model or index that needs them is asked for.
"""

from keff.errors import DataError, KeffError, ModelNotAvailable

__version__ = "0.1.0"

__all__ = ["DataError", "KeffError", "ModelNotAvailable", "__version__"]
