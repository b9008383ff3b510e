"""Hostile SEF files whose checksum verifies: each loads correctly or fails with one clean error, fast.

The SHA-256 of a SEF file is an integrity check, not a signature: anyone can write a file that
verifies. Every file here is written byte by byte with its ``keff.sha256`` recomputed over what
it holds, so only keff's own checks stand between it and a hang, a crash, an unbounded
allocation or a silently wrong estimator. Each case must either load (and then be right) or
raise :class:`~keff.errors.FormatError` with a one-line message naming the file, within
:data:`TIME_LIMIT` seconds of CPU time.

A second group covers encoder names read from artifacts
(:func:`keff.encoders.registry.encoder_for_artifact`): a hub name or a folder outside keff's
cache is refused without constructing a sentence-transformers model.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import re
import struct
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from keff.errors import FingerprintMismatch, FormatError, KeffError, UntrustedEncoder
from keff.estimator import MAX_DIM, rebuild
from keff.fusion import Specialist
from keff.fusion.gate import LearnedGate
from keff.maps import MapChain, Procrustes, load_map
from keff.maps.chain import MAX_CHAIN_DEPTH, MAX_CHAIN_MAPS
from keff.sef import FORMAT_VERSION, MAX_ARRAYS, MAX_HEADER_BYTES, MAX_JSON_DEPTH, load_sef, payload_sha256

#: Every hostile file must load or fail within this many seconds.
TIME_LIMIT = 1.0
_CODES = {"<f4": "F32", "<f8": "F64", "<f2": "F16", "<i8": "I64", "<i4": "I32", "|u1": "U8"}


# -- writing hostile files whose checksum verifies ------------------------------------------------
def canonical(meta: dict[str, Any]) -> str:
    """The canonical metadata text keff hashes (with ``format_version`` added, as save_sef does)."""
    return json.dumps({**meta, "format_version": FORMAT_VERSION}, sort_keys=True, separators=(",", ":"))


def checksum(meta_text: str, arrays: dict[str, np.ndarray]) -> str:
    """:func:`keff.sef.payload_sha256` computed from the metadata text itself, so that metadata
    keff must refuse to parse (NaN, 100k levels deep) still carries a checksum that matches."""
    h = hashlib.sha256(b"keff.sef\n")
    h.update(meta_text.encode("utf-8"))
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"\n{name}\n{a.dtype.str}\n{list(a.shape)}\n".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def write_sef(
    path: Path,
    arrays: dict[str, np.ndarray],
    meta: dict[str, Any] | None = None,
    *,
    meta_text: str | None = None,
    edit: Callable[[dict], None] | None = None,
    header_text: Callable[[str], str] | None = None,
) -> Path:
    """Write a SEF file byte by byte, laid out as safetensors does, ``keff.sha256`` recomputed.

    ``edit(header)`` then changes the safetensors header (shapes, offsets, dtypes, extra keys)
    while the checksum stays the one of the real arrays; ``header_text(json_text)`` rewrites the
    header's JSON text itself (e.g. to nest it 100k deep).
    """
    arrays = {name: np.ascontiguousarray(a) for name, a in arrays.items()}
    meta_text = canonical(meta or {}) if meta_text is None else meta_text
    entries, body = {}, bytearray()
    for name, a in arrays.items():
        raw = a.tobytes()
        entries[name] = {
            "dtype": _CODES[a.dtype.str],
            "shape": list(a.shape),
            "data_offsets": [len(body), len(body) + len(raw)],
        }
        body += raw
    stamp = {"keff.format": "keff.sef", "keff.meta": meta_text, "keff.sha256": checksum(meta_text, arrays)}
    header = {"__metadata__": stamp, **entries}
    if edit is not None:
        edit(header)
    text = json.dumps(header)
    if header_text is not None:
        text = header_text(text)
    raw_header = text.encode("utf-8")
    path.write_bytes(struct.pack("<Q", len(raw_header)) + raw_header + bytes(body))
    return path


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# -- valid building blocks ------------------------------------------------------------------------
D = 4


def f32(*shape: int, value: float | None = None) -> np.ndarray:
    if value is not None:
        return np.full(shape, value, np.float32)
    return np.random.default_rng(sum(shape)).standard_normal(shape).astype(np.float32)


def procrustes_description(d_s: int = D, d_t: int = D, **over: Any) -> dict[str, Any]:
    base = {"type": "Procrustes", "params": {}, "source_dim": d_s, "target_dim": d_t, "fitted": {"scale_": 1.0}}
    return {**base, **over}


def procrustes_arrays(d_s: int = D, d_t: int = D) -> dict[str, np.ndarray]:
    return {"W_": np.eye(d_s, d_t, dtype=np.float32), "b_": np.zeros(d_t, np.float32)}


def map_meta(description: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "map", **description, "provenance": {}}


def map_file(tmp: Path, description: dict[str, Any], arrays: dict[str, np.ndarray], **write: Any) -> Callable:
    """Write a map file; the returned callable loads it with :func:`keff.maps.load_map`."""
    path = write_sef(tmp / "map.sef", arrays, map_meta(description), **write)
    return lambda: load_map(path)[0]


def procrustes_file(
    tmp: Path, *, d: int = D, arrays: dict | None = None, write: dict | None = None, **over: Any
) -> Callable:
    """A ``d``-d Procrustes map file: ``over`` replaces description fields, ``write`` goes to write_sef."""
    arrays = procrustes_arrays(d, d) if arrays is None else arrays
    return map_file(tmp, procrustes_description(d, d, **over), arrays, **(write or {}))


def entry(name: str, **fields: Any) -> dict[str, Callable[[dict], None]]:
    """write_sef options replacing fields of one array's safetensors entry."""
    return {"edit": lambda header: header[name].update(fields)}


def appended(text: str) -> dict[str, Callable[[str], str]]:
    """write_sef options appending ``text`` inside the safetensors header object."""
    return {"header_text": lambda header: header[:-1] + text + "}"}


def meta_replaced(old: str, new: str) -> dict[str, str]:
    """write_sef options writing the Procrustes metadata text with ``old`` replaced by ``new``."""
    return {"meta_text": canonical(map_meta(procrustes_description())).replace(old, new)}


def chain_description(parts: list[Any], d: int = 2) -> dict[str, Any]:
    return {"type": "MapChain", "parts": parts, "source_dim": d, "target_dim": d}


def flat_chain(n_parts: int, d: int = 2) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    part, arrays = procrustes_description(d, d), procrustes_arrays(d, d)
    return chain_description([part] * n_parts, d), {f"{i}/{k}": v for i in range(n_parts) for k, v in arrays.items()}


def deep_chain(depth: int, d: int = 2) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Chains nested ``depth`` deep around one Procrustes map (depth 1: a chain of one map)."""
    description, prefix = procrustes_description(d, d), ""
    for _ in range(depth):
        description = chain_description([description], d)
        prefix += "0/"
    return description, {prefix + k: v for k, v in procrustes_arrays(d, d).items()}


def chain_file(tmp: Path, chain: tuple[dict, dict], *, arrays: dict | None = None, **over: Any) -> Callable:
    description, chain_arrays = chain
    return map_file(tmp, {**description, **over}, {**chain_arrays, **(arrays or {})})


def estimator_file(
    tmp: Path, kind: Callable[..., tuple[dict, dict]], *, arrays: dict | None = None, **over: Any
) -> Callable:
    """A map file from a ``kind()`` -> (description, arrays) builder, ``over`` and ``arrays`` replacing parts."""
    description, base_arrays = kind()
    return map_file(tmp, {**description, **over}, {**base_arrays, **(arrays or {})})


def residual_mlp() -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    fitted = {"base_": "identity", "base_alpha_": None, "best_epoch_": 0}
    description = procrustes_description(type="ResidualMLP", params={"hidden": 3}, fitted=fitted)
    return description, {"W1_": f32(D, 3), "b1_": f32(3), "W2_": f32(3, D), "b2_": f32(D)}


def cluster_routed() -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    K, r = 2, 2
    params = {"n_clusters": K, "rank": r}
    description = procrustes_description(type="ClusterRouted", params=params, fitted={"n_clusters_": K})
    arrays = {
        "centroids_": np.eye(K, D, dtype=np.float32),
        "U_": np.zeros((K, D, r), np.float32),
        "R_": np.stack([np.eye(r, dtype=np.float32)] * K),
        "mu_q_": f32(K, D),
        "t_": f32(K, D),
        "cluster_sizes_": np.array([3, 4], np.int64),
    }
    return description, arrays


def low_rank() -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    description = procrustes_description(type="LowRankAffine", params={"rank": 2}, fitted={"alpha_": 1.0})
    return description, {"A_": f32(D, 2), "C_": f32(2, D), "b_": f32(D)}


def centroid_estimator(d: int = D, **fitted: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    values = {"median_": 0.1, "scale_": 0.05, "n_features_in_": d, **fitted}
    return {"type": "CentroidDistance", "params": {}, "fitted": values}, {
        "centroid_": np.eye(1, d, dtype=np.float32)[0]
    }


def knn(k: Any = 2, rows: int = 5) -> tuple[dict, dict]:
    fitted = {"median_": 0.1, "scale_": 0.1, "n_features_in_": D}
    return {"type": "KnnDensity", "params": {"k": k}, "fitted": fitted}, {"reference_": f32(rows, D)}


def calibrated(x: np.ndarray, y: np.ndarray, base: Any = None) -> tuple[dict, dict]:
    base_description, base_arrays = centroid_estimator()
    base = base_description if base is None else base
    description = {"type": "CalibratedVariance", "params": {"base": base}, "fitted": {"n_features_in_": D}}
    return description, {"x_": x, "y_": y, **{f"base/{k}": v for k, v in base_arrays.items()}}


def specialist_file(
    tmp: Path,
    *,
    uncertainty: tuple[dict, dict] | None = None,
    centroid: np.ndarray | None = None,
    extra_arrays: dict | None = None,
    drop: str | None = None,
    **over: Any,
) -> Callable:
    """A specialist file (Procrustes map, CentroidDistance estimator); the callable loads it."""
    desc, unc_arrays = centroid_estimator() if uncertainty is None else uncertainty
    meta = {
        "kind": "specialist", "name": "toy", "encoder": "hash", "fingerprint": "ab" * 32, "domain": None,
        "map": procrustes_description(), "uncertainty": desc, "info": {}, **over,
    }  # fmt: skip
    arrays = {"centroid": np.eye(1, D, dtype=np.float32)[0] if centroid is None else centroid}
    if meta["map"] is not None:
        arrays.update({f"map/{k}": v for k, v in procrustes_arrays().items()})
    arrays.update({f"uncertainty/{k}": v for k, v in unc_arrays.items()})
    arrays.update(extra_arrays or {})
    arrays.pop(drop, None)
    path = write_sef(tmp / "spec.sef", arrays, meta)
    return lambda: Specialist.load(path)


def gate_file(tmp: Path, *, arrays: dict | None = None, **fitted: Any) -> Callable:
    """A LearnedGate saved as SEF; the callable loads it and rebuilds the gate."""
    values = {"n_specialists_": 3, "n_iter_": 5, "converged_": True, "n_features_in_": D, **fitted}
    description = {"type": "LearnedGate", "params": {}, "fitted": values}
    base = {"mean_": f32(D), "std_": f32(D, value=1.0), "coef_": f32(D, 3), "intercept_": f32(3)}
    path = write_sef(tmp / "gate.sef", {**base, **(arrays or {})}, {"kind": "gate", **description})

    def load():
        loaded, meta = load_sef(path, kind="gate")
        return rebuild({"LearnedGate": LearnedGate}, meta, loaded, what="gate")

    return load


def overlapping_spans(tmp: Path) -> Callable:
    """A 1 MB file whose header lists 100 arrays, all claiming the same 1 MB."""
    arrays = {**procrustes_arrays(), "x0": np.zeros(1 << 18, np.float32)}

    def same_span(header: dict) -> None:
        header.update({f"x{i}": dict(header["x0"]) for i in range(1, 100)})

    return procrustes_file(tmp, arrays=arrays, write={"edit": same_span})


# -- the corpus -----------------------------------------------------------------------------------
#: id -> (builder(tmp) returning a loader, regex the FormatError must match or None: it must load)
CASES: dict[str, tuple[Callable[[Path], Callable], str | None]] = {}


def add(case_id: str, expected: str | None, build: Callable[..., Callable], /, *args: Any, **kwargs: Any) -> None:
    """Register a case: ``build(tmp, *args, **kwargs)`` writes the file and returns its loader."""
    assert case_id not in CASES, case_id
    CASES[case_id] = (lambda tmp: build(tmp, *args, **kwargs)), expected


P = procrustes_file
# safetensors header: shapes, offsets, dtypes, sizes, nesting
add("shape-2**62x4", "too large", P, write=entry("W_", shape=[2**62, 4]))
add("shape-2**70", "too large", P, write=entry("b_", shape=[2**70]))
with_empty = {**procrustes_arrays(), "e": np.zeros(0, np.float32)}
add("shape-empty-axis-2**62", "too large", P, arrays=with_empty, write=entry("e", shape=[0, 2**62]))
add("shape-float-384.9", "shape .* is not a list of at most 8 integers", P, d=384, write=entry("b_", shape=[384.9]))
add("shape-bool", "shape .* is not a list", P, d=1, write=entry("W_", shape=[True, True]))
add("shape-strings", "shape .* is not a list", P, write=entry("W_", shape=["4", "4"]))
add("shape-negative", "shape .* is not a list", P, write=entry("W_", shape=[-4, -4]))
add("shape-nine-axes", "at most 8", P, write=entry("b_", shape=[1] * 8 + [4]))
add("offsets-float", "data_offsets .* not a pair of integers", P, write=entry("W_", data_offsets=[0.0, 64.0]))
add("offsets-strings", "data_offsets .* not a pair of integers", P, write=entry("W_", data_offsets=["0", "64"]))
add("offsets-three", "data_offsets .* not a pair of integers", P, write=entry("W_", data_offsets=[0, 32, 64]))
add("offsets-past-end", "outside the", P, write=entry("W_", data_offsets=[2**70, 2**70 + 64]))
add("dtype-unknown", "dtype 'BF16' is not one of", P, write=entry("W_", dtype="BF16"))
add("dtype-list", "dtype .* is not one of", P, write=entry("W_", dtype=["F32"]))
add("entry-not-object", "must be an object", P, write={"edit": lambda header: header.update(W_=5)})
add("entry-extra-field", "must be an object", P, write=entry("W_", strides=[1]))
add("header-too-large", "at most", P, write={"header_text": lambda text: text + " " * MAX_HEADER_BYTES})
add("header-just-under-limit", None, P, write={"header_text": lambda text: text.ljust(MAX_HEADER_BYTES)})
many = {**procrustes_arrays(), **{f"x{i}": np.zeros(1, np.uint8) for i in range(MAX_ARRAYS)}}
add("too-many-arrays", f"at most {MAX_ARRAYS}", P, arrays=many)
add("header-nested-100k", "nests 100001 levels deep", P, write=appended(f', "deep": {nested(100_000)}'))
add("header-unterminated-string", "not valid JSON", P, write={"header_text": lambda t: t + '"' + "\\\\" * 500_000})
overlong_digits = '{"a":1' + "0" * 5000 + "}"
add("header-5000-digit-int", "not valid JSON", P, write=appended(f', "n": {overlong_digits}'))
add("overlapping-spans", "overlap", overlapping_spans)
# keff.meta: nesting, non-finite and huge numbers, escapes
add("meta-nested-100k", "nests 100001 levels deep", P, write=meta_replaced('"kind"', f'"x":{nested(100_000)},"kind"'))
add("meta-nested-objects-65", f"at most {MAX_JSON_DEPTH}", P, note=json.loads('{"a":' * 64 + "1" + "}" * 64))
add("meta-nested-but-allowed", None, P, note=json.loads(nested(MAX_JSON_DEPTH - 1)))
add("meta-escaped-brackets-2MB", None, P, note='\\"[{' * 500_000)
add("meta-nan", "not a finite number", P, write=meta_replaced('"scale_":1.0', '"scale_":NaN'))
add("meta-infinity", "not a finite number", P, write=meta_replaced('"scale_":1.0', '"scale_":-Infinity'))
add("meta-1e999", "out of range", P, write=meta_replaced('"scale_":1.0', '"scale_":1e999'))
add("meta-4000-digit-int", "is not an integer >= 1", P, source_dim=10**4000)
add("meta-not-object", "not a JSON object", P, write={"meta_text": "[1]"})
add("format-version-float", "format_version", P, write=meta_replaced('"format_version":1', '"format_version":1.0'))
# declared dimensions, fitted scalars, parameters, types
for label, bad in [("string", "4"), ("float", 4.0), ("bool", True), ("zero", 0), ("negative", -1), ("null", None)]:
    add(f"source-dim-{label}", "source_dim = .* is not an integer", P, source_dim=bad)
add(
    "target-dim-absurd",
    f"target_dim = {MAX_DIM + 1} is not an integer >= 1 and <= {MAX_DIM}",
    P,
    target_dim=MAX_DIM + 1,
)
for label, bad in [("string", "2"), ("bool", True), ("null", None), ("list", [1.0]), ("huge-int", 10**400)]:
    add(f"procrustes-scale-{label}", "scale_ = .* is not a finite number", P, fitted={"scale_": bad})
add("fitted-not-object", "fitted values must be a JSON object", P, fitted=[1.0])
add("params-not-object", "params must be a JSON object", P, params="center")
add("params-unknown", "does not take the parameters", P, params={"teleport": True})
add("params-wrong-type", "center must be True or False", P, params={"center": "yes"})
add("unknown-map-type", "unknown map type 'Teleporter'", P, type="Teleporter")
add("map-type-list", "unknown map type", P, type=["Procrustes"])
# arrays against the declared dimensions, each other, dtypes and finiteness
expect_W = r"W_ has shape \(3, 4\), expected \(source_dim_=4, target_dim_=4\)"
add("W-disagrees-with-dims", expect_W, P, arrays={"W_": f32(3, 4), "b_": f32(4)})
add("b-disagrees-with-W", r"b_ has shape \(5,\), expected \(target_dim_=4\)", P, arrays={"W_": f32(4, 4), "b_": f32(5)})
add("W-one-axis", r"W_ has shape \(16,\)", P, arrays={"W_": f32(16), "b_": f32(4)})
add(
    "W-integers",
    "W_ has dtype int64, expected floating point",
    P,
    arrays={"W_": np.eye(4, dtype=np.int64), "b_": f32(4)},
)
add("W-nan", "W_ holds NaN", P, arrays={"W_": f32(4, 4, value=np.nan), "b_": f32(4)})
add("W-f64-too-big-for-f32", "W_ holds NaN or infinite", P, arrays={"W_": np.full((4, 4), 1e300), "b_": f32(4)})
add("W-f64-and-b-f16-are-cast", None, P, arrays={"W_": np.eye(4), "b_": np.zeros(4, np.float16)})
add("array-missing", r"lacks arrays \['b_'\]", P, arrays={"W_": f32(4, 4)})
add("array-unexpected", r"unexpected arrays \['junk'\]", P, arrays={**procrustes_arrays(), "junk": f32(1)})
add("affine-alpha-negative", "alpha_ = -1.0", P, type="Affine", fitted={"alpha_": -1.0})
add("affine-alphas-huge-int", "alphas must be", P, type="Affine", params={"alphas": [10**400]}, fitted={"alpha_": 1.0})
add("contrastive-epoch-string", "best_epoch_ = '3'", P, type="ContrastiveMap", fitted={"best_epoch_": "3"})
E = estimator_file
add("low-rank-valid", None, E, low_rank)
add(
    "low-rank-ranks-disagree",
    r"C_ has shape \(3, 4\), expected \(r=2, target_dim_=4\)",
    E,
    low_rank,
    arrays={"C_": f32(3, 4)},
)
add("low-rank-procrustes-base-lacks-B", r"lacks arrays \['B_'\]", E, low_rank, params={"rank": 2, "base": "procrustes"})
add("low-rank-rank-bool", "rank must be an integer", E, low_rank, params={"rank": True})
add("residual-mlp-valid", None, E, residual_mlp)
add("residual-mlp-hidden-float", "hidden must be a positive int", E, residual_mlp, params={"hidden": 3.5})
expect_W1 = r"W1_ has shape \(4, 3\), expected \(source_dim_=4, hidden=5\)"
add("residual-mlp-hidden-disagrees", expect_W1, E, residual_mlp, params={"hidden": 5})
linear = {"base_": "linear", "base_alpha_": 1.0, "best_epoch_": 0}
add("residual-mlp-base-contradicts", "records base 'linear'", E, residual_mlp, fitted=linear)
bad_epoch = {"base_": "identity", "base_alpha_": None, "best_epoch_": -1}
add("residual-mlp-epoch-negative", "best_epoch_ = -1", E, residual_mlp, fitted=bad_epoch)
add("cluster-routed-valid", None, E, cluster_routed)
expect_K = r"centroids_ has shape \(2, 4\), expected \(n_clusters_=3"
add("cluster-routed-K-disagrees", expect_K, E, cluster_routed, fitted={"n_clusters_": 3})
add("cluster-routed-K-string", "n_clusters_ = '2' is not an integer", E, cluster_routed, fitted={"n_clusters_": "2"})
expect_sizes = "cluster_sizes_ has dtype float32, expected integers"
add("cluster-routed-sizes-float", expect_sizes, E, cluster_routed, arrays={"cluster_sizes_": f32(2)})
add("cluster-routed-unequal-dims", "arrays are 4-d but the map claims 4 -> 5", E, cluster_routed, target_dim=5)
question = {"n_clusters": 2, "rank": 2, "routing": "question"}
labels = {"questions_": f32(3, D), "labels_": np.array([0, 1, 7], np.int64)}
add(
    "cluster-routed-labels-out-of-range",
    r"labels_ must lie in \[0, 2\)",
    E,
    cluster_routed,
    params=question,
    arrays=labels,
)
hot = {"n_clusters": 2, "rank": 2, "temperature": 10**400}
add("cluster-routed-temperature-huge-int", "temperature must be a finite number", E, cluster_routed, params=hot)
# chains: length, nesting, declared dimensions, strays
C = chain_file
add("chain-20000-parts", "at most|more than", C, flat_chain(20_000))
parts_only = (chain_description([procrustes_description(2, 2)] * 20_000), flat_chain(1)[1])
add("chain-20000-parts-2-arrays", f"more than {MAX_CHAIN_MAPS} maps", C, parts_only)
add("chain-over-bound-few-arrays", f"more than {MAX_CHAIN_MAPS} maps", C, flat_chain(MAX_CHAIN_MAPS + 1))
add("chain-at-bound", None, C, flat_chain(MAX_CHAIN_MAPS))
half = flat_chain(MAX_CHAIN_MAPS // 2 + 1)
two_halves = (chain_description([half[0], half[0]]), {f"{i}/{k}": v for i in range(2) for k, v in half[1].items()})
add("chain-nested-total-over-bound", f"more than {MAX_CHAIN_MAPS} maps", C, two_halves)
add("chain-depth-at-bound", None, C, deep_chain(MAX_CHAIN_DEPTH))
add("chain-depth-over-bound", f"more than {MAX_CHAIN_DEPTH} deep", C, deep_chain(MAX_CHAIN_DEPTH + 1))
add("chain-depth-30", f"more than {MAX_CHAIN_DEPTH} deep", C, deep_chain(30))
add("chain-declared-dims-disagree", "declares source_dim 7 but its parts give 2", C, flat_chain(3), source_dim=7)
odd_part = (chain_description([procrustes_description(2, 2), 5]), flat_chain(1)[1])
add("chain-part-not-object", "part 1: a map description must be a JSON object", C, odd_part)
add("chain-parts-not-list", "no 'parts' list", C, flat_chain(1), parts={"0": 1})
add("chain-stray-arrays", "arrays of no part", C, flat_chain(2), arrays={"W_": f32(2, 2), "9/W_": f32(2, 2)})
skew = chain_description([procrustes_description(2, 3), procrustes_description(2, 2)])
skew_arrays = {f"0/{k}": v for k, v in procrustes_arrays(2, 3).items()}
skew_arrays.update({f"1/{k}": v for k, v in procrustes_arrays(2, 2).items()})
add("chain-misaligned-parts", "do not line up", C, (skew, skew_arrays))
expect_part = r"part 1: cannot rebuild Procrustes: Procrustes array W_ has shape"
add("chain-part-error-is-located", expect_part, C, flat_chain(2), arrays={"1/W_": f32(3, 2)})
# specialists and their uncertainty estimators
S = specialist_file
add("specialist-valid", None, S)
add("specialist-without-map-valid", None, S, map=None)
add("specialist-centroid-wrong-dim", r"centroid has shape \(3,\), expected \(frame_dim=4\)", S, centroid=f32(3))
add("specialist-centroid-2d", r"centroid has shape \(1, 4\)", S, centroid=f32(1, 4))
add("specialist-centroid-missing", r"lacks arrays \['centroid'\]", S, drop="centroid")
add("specialist-estimator-other-dim", "takes 3-d vectors but the map outputs 4-d", S, uncertainty=centroid_estimator(3))
add("specialist-name-object", "name must be a non-empty string", S, name={"x": 1})
add("specialist-encoder-list", "encoder must be a non-empty string", S, encoder=["hash"])
add("specialist-info-string", "info must be a JSON object", S, info="x")
add("specialist-stray-arrays", "belong to no part", S, extra_arrays={"other/x": f32(2)})
add(
    "specialist-map-arrays-without-map",
    "no map but the file holds map arrays",
    S,
    map=None,
    extra_arrays={"map/W_": f32(4, 4)},
)
add("centroid-scale-string", "scale_ = '1' is not a finite number", S, uncertainty=centroid_estimator(scale_="1"))
add("centroid-scale-zero", "scale_ = 0.0 is not a finite number > 1e-12", S, uncertainty=centroid_estimator(scale_=0.0))
absurd = centroid_estimator(n_features_in_=2**40)
add("centroid-n-features-absurd", "n_features_in_ = 1099511627776 is not an integer", S, map=None, uncertainty=absurd)
split = (centroid_estimator(5)[0], centroid_estimator(4)[1])
expect_c = r"centroid_ has shape \(4,\), expected \(n_features_in_=5\)"
add("centroid-estimator-vector-disagrees", expect_c, S, map=None, centroid=f32(5), uncertainty=split)
oracle = ({**centroid_estimator()[0], "type": "Oracle"}, centroid_estimator()[1])
add("unknown-uncertainty-type", "unknown uncertainty type 'Oracle'", S, uncertainty=oracle)
add("knn-valid", None, S, uncertainty=knn())
add("knn-too-few-reference-rows", "needs at least 3 reference rows; got 2", S, uncertainty=knn(rows=2))
add("knn-k-string", "k must be an integer", S, uncertainty=knn(k="2"))
knots = np.arange(3.0)
add("calibrated-valid", None, S, uncertainty=calibrated(knots, knots / 4))
add("calibrated-knots-decreasing", "strictly increasing", S, uncertainty=calibrated(knots[::-1].copy(), knots))
add(
    "calibrated-knots-disagree",
    r"y_ has shape \(4,\), expected \(m=3\)",
    S,
    uncertainty=calibrated(knots, np.arange(4.0)),
)
add("calibrated-base-not-object", "no 'base'", S, uncertainty=calibrated(knots, knots, base="CentroidDistance"))
constant = ({"type": "ConstantVariance", "params": {"value": "1"}, "fitted": {"n_features_in_": D}}, {})
add("constant-value-string", "value must be a finite number", S, uncertainty=constant)
# the learned gate
G = gate_file
add("gate-valid", None, G)
expect_coef = r"coef_ has shape \(4, 2\), expected \(n_features_in_=4, n_specialists_=3\)"
add("gate-coef-disagrees", expect_coef, G, arrays={"coef_": f32(4, 2)})
add("gate-std-zero", "std_ must all be > 0", G, arrays={"std_": np.zeros(D, np.float32)})
add("gate-converged-string", "converged_ = 'yes' is not true or false", G, converged_="yes")
add("gate-one-specialist", "n_specialists_ = 1", G, n_specialists_=1)


def timed(load: Callable[[], Any]) -> tuple[Any, float]:
    """The load's outcome and the CPU seconds this thread spent on it (not wall time: on a shared
    machine other processes' load would otherwise decide the verdict; not the process's CPU time:
    threads earlier tests left running, e.g. thread pools, would be charged to the load). A full
    garbage collection runs first: one owed to the objects earlier tests left would otherwise fall
    inside the load (0.86 s for a 0.04 s load in one full-suite run)."""
    gc.collect()
    start = time.thread_time()
    try:
        result = load()
    except Exception as exc:  # the assertions below say which exceptions are allowed
        result = exc
    return result, time.thread_time() - start


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_file_loads_or_fails_cleanly_and_fast(name, tmp_path):
    build, expected = CASES[name]
    load = build(tmp_path)
    result, elapsed = timed(load)
    assert elapsed < TIME_LIMIT, f"{name}: took {elapsed:.2f} s"
    if expected is None:
        assert not isinstance(result, BaseException), f"{name}: should load, got {type(result).__name__}: {result}"
        return
    assert isinstance(result, FormatError), f"{name}: expected FormatError, got {type(result).__name__}: {result!r}"
    message = str(result)
    assert re.search(expected, message), message
    assert "\n" not in message and len(message) < 2000
    if not name.startswith("gate-"):  # gates have no file loader of their own
        assert str(tmp_path) in message, f"the message does not name the file: {message}"


def test_checksum_helper_agrees_with_keff():
    arrays = procrustes_arrays()
    meta = map_meta(procrustes_description())
    assert checksum(canonical(meta), arrays) == payload_sha256({**meta, "format_version": FORMAT_VERSION}, arrays)


def test_loaded_hostile_but_valid_files_are_right(tmp_path):
    """Cases that load must give the estimator the file describes, in the declared dtypes."""
    loaded = CASES["W-f64-and-b-f16-are-cast"][0](tmp_path)()
    assert loaded.W_.dtype == np.float32 and loaded.b_.dtype == np.float32
    assert np.array_equal(loaded.W_, np.eye(4, dtype=np.float32))
    c = CASES["chain-at-bound"][0](tmp_path)()
    assert isinstance(c, MapChain) and len(c.maps) == MAX_CHAIN_MAPS
    X = np.random.default_rng(0).standard_normal((3, 2)).astype(np.float32)
    np.testing.assert_allclose(c.transform(X), X)
    deep = CASES["chain-depth-at-bound"][0](tmp_path)()
    np.testing.assert_allclose(deep.transform(X), X)


def test_chain_at_the_bound_loads_well_under_a_second(tmp_path):
    _, elapsed = timed(CASES["chain-at-bound"][0](tmp_path))
    assert elapsed < TIME_LIMIT / 4, f"a {MAX_CHAIN_MAPS}-part chain took {elapsed:.2f} s"


def test_overlapping_arrays_are_refused_before_any_copy(tmp_path):
    """100 arrays claiming the same 1 MB: no 100 MB of copies before the overlap is found."""
    load = CASES["overlapping-spans"][0](tmp_path)
    tracemalloc.start()
    try:
        result, _ = timed(load)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(result, FormatError)
    assert peak < 20 << 20, f"peak {peak / 1e6:.0f} MB while reading a 1 MB file"


def test_chain_constructor_enforces_the_same_bounds():
    part = Procrustes().fit(np.eye(3), np.eye(3))
    with pytest.raises(KeffError, match=f"at most {MAX_CHAIN_MAPS} maps"):
        MapChain([part] * (MAX_CHAIN_MAPS + 1))
    chain = MapChain([part])
    for _ in range(MAX_CHAIN_DEPTH - 1):
        chain = MapChain([chain])
    with pytest.raises(KeffError, match=f"nest at most {MAX_CHAIN_DEPTH} deep"):
        MapChain([chain])


# -- encoder names read from artifacts ------------------------------------------------------------
@pytest.fixture
def no_model_loading(monkeypatch, tmp_path):
    """keff's cache in a temporary folder, and a sentence-transformers backend that must not be built."""
    import keff.encoders.registry as registry
    import keff.encoders.sentence_transformers_backend as st_backend

    cache = tmp_path / "cache"
    (cache / "models" / "fine-tuned").mkdir(parents=True)
    (cache / "models" / "fine-tuned" / "modules.json").write_text("[]")
    monkeypatch.setenv("KEFF_CACHE_DIR", str(cache))
    built = []

    def refuse(*args, **kwargs):
        built.append(args)
        raise AssertionError(f"a sentence-transformers model was constructed for {args!r}")

    monkeypatch.setattr(registry, "SentenceTransformerEncoder", refuse)
    monkeypatch.setattr(st_backend, "SentenceTransformerEncoder", refuse)
    monkeypatch.setattr(st_backend, "_hub_snapshot", refuse)
    return cache, built


def outside_model(tmp_path: Path) -> Path:
    folder = tmp_path / "elsewhere" / "model"
    folder.mkdir(parents=True)
    (folder / "modules.json").write_text("[]")
    return folder


ARTIFACT_NAMES: dict[str, Callable[[Path, Path], str]] = {
    "hub-name": lambda cache, tmp: "sentence-transformers/all-MiniLM-L6-v2",
    "hub-name-with-revision": lambda cache, tmp: "evil/model@main",
    "folder-outside-cache": lambda cache, tmp: str(outside_model(tmp)),
    "relative-folder-outside-cache": lambda cache, tmp: os.path.relpath(outside_model(tmp)),
    "dotdot-escape-from-cache": lambda cache, tmp: _dotdot_escape(cache, outside_model(tmp)),
    "symlink-in-cache-to-outside": lambda cache, tmp: _symlink(cache / "models" / "link", outside_model(tmp)),
    "the-cache-root-itself": lambda cache, tmp: str(cache),
    "absolute-system-folder": lambda cache, tmp: "/etc",
    "home-folder": lambda cache, tmp: "~",
    "nul-byte": lambda cache, tmp: "model\x00name",
    "empty": lambda cache, tmp: "",
    "huge": lambda cache, tmp: "x/" * 100_000,
}


def _dotdot_escape(cache: Path, target: Path) -> str:
    """``cache/models/../../elsewhere/model``: starts inside the cache, resolves outside it."""
    return str(cache / "models" / ".." / ".." / target.parent.name / target.name)


def _symlink(link: Path, target: Path) -> str:
    link.symlink_to(target, target_is_directory=True)
    return str(link)


@pytest.mark.parametrize("label", list(ARTIFACT_NAMES))
def test_untrusted_encoder_names_are_refused_without_loading(label, tmp_path, no_model_loading):
    from keff.encoders.registry import encoder_for_artifact

    cache, built = no_model_loading
    name = ARTIFACT_NAMES[label](cache, tmp_path)
    start = time.thread_time()
    with pytest.raises(UntrustedEncoder) as info:
        encoder_for_artifact(name, "ab" * 32, what="map hostile.sef")
    assert time.thread_time() - start < TIME_LIMIT
    message = str(info.value)
    assert message.startswith("map hostile.sef asks for encoder") and "--encoder" in message
    assert "\n" not in message and len(message) < 2000
    assert built == []


def test_registry_names_and_cache_folders_are_trusted(tmp_path, no_model_loading):
    from keff.encoders import get_encoder
    from keff.encoders.registry import encoder_for_artifact, trusted_cache_folder

    cache, built = no_model_loading
    fingerprint = get_encoder("hash").fingerprint
    assert encoder_for_artifact("hash", fingerprint, what="map m.sef").fingerprint == fingerprint
    with pytest.raises(
        FingerprintMismatch, match=r"map m.sef was fitted on encoder 'hash' with fingerprint 000000000000"
    ):
        encoder_for_artifact("hash", "0" * 64, what="map m.sef")
    with pytest.raises(FingerprintMismatch, match="records no encoder fingerprint"):
        encoder_for_artifact("hash", "", what="map m.sef")
    inside = cache / "models" / "fine-tuned"
    assert trusted_cache_folder(str(inside)) == inside.resolve()
    with pytest.raises(AssertionError, match="sentence-transformers model was constructed"):
        encoder_for_artifact(str(inside), fingerprint, what="map m.sef")  # trusted: keff tries to load it
    assert len(built) == 1


def test_an_explicit_encoder_overrides_the_artifact(tmp_path, no_model_loading):
    from keff.encoders import get_encoder
    from keff.encoders.registry import encoder_for_artifact

    fingerprint = get_encoder("hash").fingerprint
    enc = encoder_for_artifact("evil/model", fingerprint, what="map m.sef", explicit="hash")
    assert enc.fingerprint == fingerprint
    assert encoder_for_artifact("evil/model", "", what="map m.sef", explicit="hash").fingerprint == fingerprint
    with pytest.raises(FingerprintMismatch, match="refit the map m.sef"):
        encoder_for_artifact("evil/model", "0" * 64, what="map m.sef", explicit="hash")


def test_specialist_load_encoder_uses_the_trust_rule(tmp_path, no_model_loading):
    from keff.encoders import get_encoder

    _, built = no_model_loading
    spec = specialist_file(tmp_path, encoder="evil/model")()
    with pytest.raises(UntrustedEncoder, match="specialist 'toy' asks for encoder 'evil/model'"):
        spec.load_encoder()
    spec.fingerprint = get_encoder("hash").fingerprint
    assert spec.load_encoder(explicit="hash").fingerprint == spec.fingerprint
    assert built == []
