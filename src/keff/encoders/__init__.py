"""Frozen embedding models behind one small protocol, with a verified disk cache.

``get_encoder(name)`` returns an :class:`Encoder` (registry names: ``minilm``, ``mpnet``,
``minilm-l3-onnx``, ``minilm-int8-onnx``, ``hash``), cached on disk by default. Importing this
package never imports torch, onnxruntime or sentence-transformers; backends load them on use.
"""

from keff.encoders.base import BaseEncoder, Encoder, Kind
from keff.encoders.cache import CachedEncoder, CacheEntry, EmbeddingCache
from keff.encoders.fingerprint import ENCODER_FORMAT_VERSION
from keff.encoders.hash_encoder import HashEncoder
from keff.encoders.model_store import MPNET_PARTS, fetch_mpnet, mpnet_dir
from keff.encoders.onnx_backend import OnnxEncoder
from keff.encoders.registry import EncoderSpec, available_encoders, get_encoder
from keff.encoders.seeding import SeedReport, detectable_rows, probe_size, seed_cache
from keff.encoders.sentence_transformers_backend import SentenceTransformerEncoder

__all__ = [
    "ENCODER_FORMAT_VERSION",
    "MPNET_PARTS",
    "BaseEncoder",
    "CacheEntry",
    "CachedEncoder",
    "EmbeddingCache",
    "Encoder",
    "EncoderSpec",
    "HashEncoder",
    "Kind",
    "OnnxEncoder",
    "SeedReport",
    "SentenceTransformerEncoder",
    "available_encoders",
    "detectable_rows",
    "fetch_mpnet",
    "get_encoder",
    "mpnet_dir",
    "probe_size",
    "seed_cache",
]
