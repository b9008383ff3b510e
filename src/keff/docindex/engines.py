"""Embedding engines: where an index build runs the model (``inprocess`` or ``ray``).

- ``inprocess`` (the default): the encoder runs in this process, through keff's embedding cache.
- ``ray``: the texts the cache lacks are encoded by encoder actors on Ray Data
  (``map_batches``), on a small local Ray instance, or on the cluster ``RAY_ADDRESS`` names; the
  vectors come back to this process, go into the embedding cache and then through the index's
  usual vector-segment path.

Identical vectors
-----------------
A sentence-transformers encoder pads each batch to its longest text, so the last bits of a
vector can depend on which texts share its batch (measured on ``minilm``: a text encoded alone
differs by up to 7e-8 from the same text encoded in a batch). The ray engine therefore does not
let Ray choose the batches: it plans exactly the model batches the in-process path would run
(:class:`keff.encoders.CachedEncoder`: distinct texts the cache lacks, in first-occurrence
order, in chunks of its ``chunk_size``, each chunk longest first in batches of the encoder's
``batch_size``) and ships each model batch whole, as one Ray row, which a worker encodes as one
model call. Vectors are gathered back by row. A chunk is written to the cache only once all its
batches are back, so an interrupted Ray build leaves whole chunks cached and its re-run (with
either engine) plans the remaining chunks exactly as an uninterrupted build would; texts already
cached are never sent to Ray.

Each worker loads the encoder by its name once and checks that its fingerprint equals the
driver's; a worker with another model (or model version, or settings) is refused with an error
naming both fingerprints, before it encodes anything.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from keff.errors import KeffError, MissingExtra
from keff.progress import progress_bar

#: Engine names :func:`get_engine` accepts.
ENGINES = ("inprocess", "ray")

#: CPUs of the local Ray instance started when ``RAY_ADDRESS`` is unset.
LOCAL_RAY_CPUS = 2


class Engine(Protocol):
    """Encodes an index's documents with one encoder."""

    name: str

    def encode(self, encoder: Any, texts: Sequence[str]) -> np.ndarray:
        """Document vectors of ``texts``: float32 ``(len(texts), encoder.dim)``, rows in order."""
        ...

    def describe(self) -> dict[str, Any]:
        """What the index's history records about the engine."""
        ...


class InProcessEngine:
    """Encode in this process (the encoder's own batching and cache)."""

    name = "inprocess"

    def encode(self, encoder: Any, texts: Sequence[str]) -> np.ndarray:
        return encoder.encode(list(texts), kind="doc")

    def describe(self) -> dict[str, Any]:
        return {"name": self.name}


def get_engine(engine: str | Engine | None = None, **options: Any) -> Engine:
    """The engine named ``engine`` (``"inprocess"`` default, or ``"ray"``), or ``engine`` itself.

    Parameters
    ----------
    engine : str or Engine, optional
        A name from :data:`ENGINES` or an engine object.
    **options
        Options of the ray engine (``actors``, ``batches_per_call``); None values are ignored.
        Refused for ``inprocess``.
    """
    options = {k: v for k, v in options.items() if v is not None}
    if engine is None or engine == "inprocess":
        if options:
            raise KeffError(f"options {sorted(options)} only apply to the ray engine (--engine ray)")
        return InProcessEngine()
    if engine == "ray":
        return RayEngine(**options)
    if isinstance(engine, str):
        raise KeffError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if options:
        raise KeffError("engine options go with an engine name, not an engine object")
    return engine


# -- planning the model batches ---------------------------------------------------------------
@dataclass
class Plan:
    """The model batches the in-process path would run for the texts the cache lacks.

    Attributes
    ----------
    prepared : list of str
        Distinct model texts to encode (cache keys), in first-occurrence order.
    originals : list of str
        The text each one came from (what the encoder is given).
    chunks : list of (int, int)
        ``[start, stop)`` of each cache chunk in ``prepared``.
    batches : list of ndarray
        Indices into ``prepared`` of each model batch, longest text first.
    chunk_of_batch : list of int
        The chunk each batch belongs to.
    """

    prepared: list[str]
    originals: list[str]
    chunks: list[tuple[int, int]]
    batches: list[np.ndarray]
    chunk_of_batch: list[int]


def plan_batches(prepared: Sequence[str], originals: Sequence[str], chunk_size: int, batch_size: int) -> Plan:
    """Cut texts into cache chunks and each chunk into model batches as the in-process path does
    (:meth:`keff.encoders.CachedEncoder.encode`, then :func:`keff.encoders.base.encode_in_batches`)."""
    if chunk_size < 1 or batch_size < 1:
        raise KeffError(f"chunk and batch sizes must be >= 1, got {chunk_size} and {batch_size}")
    chunks, batches, chunk_of = [], [], []
    for c, start in enumerate(range(0, len(prepared), chunk_size)):
        stop = min(start + chunk_size, len(prepared))
        chunks.append((start, stop))
        order = sorted(range(start, stop), key=lambda i: -len(prepared[i]))  # stable, as encode_in_batches
        for b in range(0, len(order), batch_size):
            batches.append(np.asarray(order[b : b + batch_size], dtype=np.int64))
            chunk_of.append(c)
    return Plan(list(prepared), list(originals), chunks, batches, chunk_of)


# -- the ray engine ---------------------------------------------------------------------------
def import_ray():
    """``ray`` and ``ray.data``, or :class:`MissingExtra` naming ``pip install 'keff[ray]'``."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise MissingExtra(
            "the ray engine needs Ray Data, which is not installed; install it with: pip install 'keff[ray]'"
        ) from exc
    return ray


@contextlib.contextmanager
def ray_session(address: str | None = None) -> Iterator[Any]:
    """Ray, initialised for the duration: a Ray already initialised in this process is used as it
    is; else the cluster at ``address`` (default ``RAY_ADDRESS``); else a small local instance
    (:data:`LOCAL_RAY_CPUS` CPUs, no dashboard, logs in a temporary folder) that is shut down and
    removed afterwards."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    temp = None
    try:
        if address:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        else:
            temp = tempfile.mkdtemp(prefix="keff-ray-")
            ray.init(
                num_cpus=LOCAL_RAY_CPUS, include_dashboard=False, _temp_dir=temp,
                log_to_driver=False, configure_logging=False,
            )  # fmt: skip
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ...: one line for the user
        if temp:
            shutil.rmtree(temp, ignore_errors=True)
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise KeffError(f"cannot start or reach {where}: {exc}") from exc
    try:
        yield ray
    finally:
        ray.shutdown()
        if temp:
            shutil.rmtree(temp, ignore_errors=True)


class EncoderActor:
    """A Ray Data worker: loads the encoder by name once, refuses one whose fingerprint differs
    from the driver's, then encodes each shipped model batch as one model call.

    Parameters
    ----------
    name : str
        Encoder name (as :func:`keff.encoders.get_encoder` takes it).
    fingerprint : str
        The driver's encoder fingerprint.
    normalize : bool
        As the driver's encoder.
    """

    def __init__(self, name: str, fingerprint: str, normalize: bool) -> None:
        import socket

        from keff.encoders import get_encoder

        self.error: str | None = None
        self.encoder = get_encoder(name, cache=False, normalize=normalize)
        if self.encoder.fingerprint != fingerprint:
            self.error = (
                f"Ray worker on {socket.gethostname()} has encoder {name!r} with fingerprint "
                f"{self.encoder.fingerprint[:12]}, but the driver's has {fingerprint[:12]} (another model, model "
                "version or setting): install the same model on every worker"
            )

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.error is not None:
            raise FingerprintRefused(self.error)
        rows, vectors = [], []
        for ids, texts in zip(batch["rows"], batch["texts"]):
            texts = [str(t) for t in texts]
            vecs = self.encoder.encode(texts, kind="doc", batch_size=len(texts), show_progress=False)
            rows.append(np.asarray(ids, dtype=np.int64))
            vectors.append(np.asarray(vecs, dtype=np.float32))
        return {"row": np.concatenate(rows), "vector": np.concatenate(vectors)}


class FingerprintRefused(KeffError):
    """A Ray worker's encoder differs from the driver's."""


@dataclass
class RayEngine:
    """Encode on Ray Data (see the module docstring).

    Parameters
    ----------
    actors : int
        Encoder actors (each loads the model once; each takes one CPU).
    batches_per_call : int
        Model batches (of the encoder's ``batch_size`` texts) per actor call.
    address : str, optional
        Ray cluster address (default: ``RAY_ADDRESS``, else a local instance).
    """

    actors: int = 2
    batches_per_call: int = 1
    address: str | None = None
    name: str = "ray"

    def __post_init__(self) -> None:
        for field_name in ("actors", "batches_per_call"):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise KeffError(f"ray engine: {field_name} must be an integer >= 1, got {value!r}")

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "actors": self.actors, "batches_per_call": self.batches_per_call}

    def encode(self, encoder: Any, texts: Sequence[str]) -> np.ndarray:
        from keff.encoders import CachedEncoder

        texts = list(texts)
        cached = encoder if isinstance(encoder, CachedEncoder) else None
        raw = cached.encoder if cached is not None else encoder
        if not hasattr(raw, "batch_size") or not hasattr(raw, "prepare"):
            raise KeffError(f"the ray engine needs a keff encoder loaded by name, got {type(raw).__name__}")
        if not texts:
            return np.empty((0, raw.dim), dtype=np.float32)
        if cached is None:  # no cache: one chunk of every text, as BaseEncoder.encode runs them
            plan = plan_batches(raw.prepare(texts, "doc"), texts, len(texts), raw.batch_size)
            return np.asarray(self._run(raw, plan, None), dtype=np.float32)

        def on_ray(missing: list[str], originals: list[str]) -> dict[str, np.ndarray]:
            plan = plan_batches(missing, originals, cached.chunk_size, raw.batch_size)
            return dict(zip(missing, self._run(raw, plan, cached)))

        return cached.encode_through(texts, "doc", on_ray)

    def _run(self, raw: Any, plan: Plan, cached: Any) -> np.ndarray:
        """Encode every batch of ``plan`` on Ray; returns vectors in ``plan.prepared`` order and
        writes each finished chunk to ``cached``'s cache (when given)."""
        items = [{"rows": rows, "texts": [plan.originals[i] for i in rows]} for rows in plan.batches]
        gather = _Gather(plan, raw.dim, cached)
        with ray_session(self.address) as ray, _quiet_ray_data(ray):
            ds = ray.data.from_items(items, override_num_blocks=min(len(items), 32 * self.actors))
            ds = ds.map_batches(
                EncoderActor,
                fn_constructor_kwargs={"name": raw.name, "fingerprint": raw.fingerprint, "normalize": raw.normalize},
                compute=ray.data.ActorPoolStrategy(size=self.actors),
                batch_size=self.batches_per_call,
                batch_format="numpy",
                num_cpus=1,
            )
            where = os.environ.get("RAY_ADDRESS") or self.address or "a local Ray instance"
            description = f"encoding with {raw.name} on Ray ({self.actors} actors, {where})"
            with progress_bar(description, len(plan.prepared), unit="texts") as bar:
                try:
                    for batch in ds.iter_batches(batch_format="numpy", batch_size=None):
                        bar.advance(gather.add(batch["row"], batch["vector"]))
                except KeffError:
                    raise
                except Exception as exc:  # Ray wraps a worker's error in its own types
                    raise _unwrap(exc) from exc
        return gather.result()


@contextlib.contextmanager
def _quiet_ray_data(ray: Any) -> Iterator[None]:
    """No Ray Data progress bars or INFO lines (keff prints its own progress) while encoding."""
    ctx = ray.data.DataContext.get_current()
    saved = ctx.enable_progress_bars, ctx.print_on_execution_start
    ctx.enable_progress_bars = ctx.print_on_execution_start = False
    log = logging.getLogger("ray.data")
    level = log.level
    log.setLevel(logging.CRITICAL)  # a worker's error is raised here as one line
    try:
        yield
    finally:
        ctx.enable_progress_bars, ctx.print_on_execution_start = saved
        log.setLevel(level)


class _Gather:
    """Collects vectors coming back from Ray by row; writes each cache chunk once it is whole."""

    def __init__(self, plan: Plan, dim: int, cached: Any) -> None:
        self.plan = plan
        self.dim = dim
        self.cached = cached
        self.vectors = np.empty((len(plan.prepared), dim), dtype=np.float32)
        self.got = np.zeros(len(plan.prepared), dtype=bool)
        self.left = [stop - start for start, stop in plan.chunks]
        self.chunk_of_row = np.empty(len(plan.prepared), dtype=np.int64)
        for c, (start, stop) in enumerate(plan.chunks):
            self.chunk_of_row[start:stop] = c

    def add(self, rows: Any, vectors: Any) -> int:
        """Record one batch of results; returns how many texts it held."""
        rows = np.asarray(rows, dtype=np.int64)
        vecs = np.asarray(vectors)
        if vecs.dtype != np.float32 or vecs.shape != (len(rows), self.dim):
            raise KeffError(f"a Ray worker returned {vecs.dtype} vectors of shape {vecs.shape} for {len(rows)} texts")
        if ((rows < 0) | (rows >= len(self.got))).any() or self.got[rows].any():
            raise KeffError("a Ray worker returned a row that was not asked for, or twice")
        self.vectors[rows] = vecs
        self.got[rows] = True
        chunks, counts = np.unique(self.chunk_of_row[rows], return_counts=True)
        for c, n in zip(chunks.tolist(), counts.tolist()):
            self.left[c] -= n
            if self.left[c] == 0 and self.cached is not None:
                start, stop = self.plan.chunks[c]
                self.cached.cache.put_many(self.cached.fingerprint, self.plan.prepared[start:stop],
                                           self.vectors[start:stop])  # fmt: skip
        return len(rows)

    def result(self) -> np.ndarray:
        """Every vector, in ``plan.prepared`` order (an error if Ray lost any)."""
        if not self.got.all():
            raise KeffError(f"Ray returned {int(self.got.sum())} of {len(self.got)} vectors")
        return self.vectors


def _unwrap(exc: BaseException) -> KeffError:
    """The KeffError a Ray worker raised (Ray wraps it, sometimes only as text), else one line
    naming Ray's error."""
    seen = set()
    node: BaseException | None = exc
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        if isinstance(node, KeffError):
            return KeffError(str(node).strip().splitlines()[-1])
        cause = getattr(node, "cause", None)
        node = cause if isinstance(cause, BaseException) else (node.__cause__ or node.__context__)
    text = "\n".join(str(e) for e in _chain(exc))
    found = _KEFF_ERROR_LINE.findall(text)
    if found:
        return KeffError(found[-1].strip())
    first = next((line for line in str(exc).splitlines() if line.strip()), "")
    return KeffError(f"the Ray encoding failed: {type(exc).__name__}: {first[:300]}")


_KEFF_ERROR_LINE = re.compile(r"^keff\.[\w.]+\.\w+: (.+)$", re.MULTILINE)


def _chain(exc: BaseException) -> list[BaseException]:
    out, node = [], exc
    while node is not None and node not in out:
        out.append(node)
        node = node.__cause__ or node.__context__
    return out


__all__ = ["ENGINES", "Engine", "EncoderActor", "InProcessEngine", "Plan", "RayEngine", "get_engine", "plan_batches"]
