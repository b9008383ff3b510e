"""Fuzz every CLI verb with bad arguments and bad input files (seeded, bounded in time).

Each case runs ``keff`` in-process with one bad value among otherwise valid arguments and
asserts the contract of a failure on bad input: exit code 2, exactly one ``error:`` line on
stderr (the last line; progress lines may precede it), no traceback, no output file and no
temporary file left where the output would have gone. After all cases, every entry of the
embedding cache must still verify.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import numpy as np
import pytest

from keff.cli import main
from keff.cli.demo_cmd import sample_corpus_dir

SECONDS = float(os.environ.get("KEFF_FUZZ_SECONDS", "45"))
SEED = int(os.environ.get("KEFF_FUZZ_SEED", "20261201"))


def _write_inputs(root: Path) -> dict[str, Path]:
    """Good and bad input files the cases draw from."""
    root.mkdir(parents=True, exist_ok=True)
    f = {}

    def put(name: str, data: bytes | str) -> Path:
        p = root / name
        p.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
        f[name] = p
        return p

    rng = np.random.default_rng(0)
    good = rng.standard_normal((40, 8)).astype(np.float32)
    good /= np.linalg.norm(good, axis=1, keepdims=True)
    np.save(root / "good.npy", good)
    np.save(root / "good_b.npy", good @ np.linalg.qr(rng.standard_normal((8, 8)))[0].astype(np.float32))
    np.save(root / "short.npy", good[:10])
    np.save(root / "strings.npy", np.array(["a", "b"]))
    np.save(root / "one_d.npy", np.ones(5, dtype=np.float32))
    np.save(root / "empty_rows.npy", np.zeros((0, 8), dtype=np.float32))
    nan = good.copy()
    nan[3, 2] = np.nan
    np.save(root / "nan.npy", nan)
    np.savez(root / "arrays.npz", a=good)
    put("empty.npy", b"")
    put("truncated.npy", (root / "good.npy").read_bytes()[:100])
    put("garbage.bin", bytes(rng.integers(0, 256, 2048, dtype=np.uint8)))
    put("latin1.txt", "caf\xe9\n".encode("latin-1"))
    put("blank.txt", "\n   \n\n")
    put("texts.txt", "how to knead dough\nwhat is a pod\n")
    put("bad.jsonl", '{"id": "1", "question": "q", "answer": "a"}\n{"id": \n')
    put("docs.jsonl", '{"id": "new-doc", "text": "a note on proofing dough"}\n')
    put("unknown_layout.jsonl", json.dumps({"qid": 1, "q": "x", "a": "y"}) + "\n")
    put("not_a_sef.sef", b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    put("results.json", json.dumps({"format": "nope"}))
    put("layout.json", "[1, 2]")
    (root / "a_folder").mkdir()
    f.update({n: root / n for n in (
        "good.npy", "good_b.npy", "short.npy", "strings.npy", "one_d.npy", "empty_rows.npy", "nan.npy",
        "arrays.npz", "a_folder",
    )})  # fmt: skip
    return f


def _cases(files: dict[str, Path], tmp: Path, good_map: Path, good_result: Path, good_index: Path, rng: random.Random):
    """Yield (argv, output paths that must not appear) with exactly one bad value each."""
    sample = str(sample_corpus_dir())
    missing = str(tmp / "does" / "not" / "exist")
    under_a_file = str(files["texts.txt"] / "out.json")  # the parent is a file: unwritable on any account
    bad_paths = [missing, str(files["a_folder"]), str(files["garbage.bin"]), str(files["empty.npy"])]
    bad_vectors = [str(files[n]) for n in (
        "strings.npy", "one_d.npy", "empty_rows.npy", "nan.npy", "arrays.npz", "empty.npy", "truncated.npy",
        "garbage.bin", "a_folder",
    )] + [missing]  # fmt: skip
    bad_ints = ["-5", "0", "abc", "1e400", "", "nan"]
    bad_encoders = ["no-such-model", "", "../../etc", "owner/not-on-this-machine-\u2603"]
    bad_texts = [str(files["latin1.txt"]), str(files["blank.txt"]), missing, str(files["a_folder"])]
    bad_qa = [str(files["bad.jsonl"]), str(files["unknown_layout.jsonl"]), str(files["garbage.bin"]), missing]
    bad_layouts = ["nope", "question", "colour=red", str(files["layout.json"]), "relevance=a++b"]
    bad_sefs = [str(files["not_a_sef.sef"]), str(files["garbage.bin"]), missing, str(files["good.npy"])]
    bad_outs = [str(files["a_folder"]), under_a_file]

    def out(name: str) -> str:
        return str(tmp / "outs" / f"{name}-{rng.randrange(10**9)}")

    # each template: argv with {slot} placeholders; slot -> (good value, bad values)
    templates = [
        (["eval", "--data", "{data}", "--encoder", "{enc}", "--k", "{k}", "--out", "{out}"],
         {"data": (sample, bad_paths + bad_qa), "enc": ("hash", bad_encoders), "k": ("10", bad_ints),
          "out": (lambda: out("e.json"), bad_outs)}),
        (["eval", "--data", "{data}", "--encoder", "hash", "--qa-layout", "{layout}", "--sample-groups", "{n}"],
         {"data": (str(files["unknown_layout.jsonl"]), bad_qa[:1] + bad_qa[2:]),
          "layout": ("id=qid,question=q,answer=a", bad_layouts),
          "n": ("1", bad_ints)}),
        (["eval", "--data", sample, "--encoder", "hash", "--split", "{split}", "--backend", "{backend}"],
         {"split": ("test", ["dev", "", "../x"]), "backend": ("numpy", ["gpu", ""])}),
        (["compare", "{a}", "{b}", "--resamples", "{n}", "--out", "{out}"],
         {"a": (str(good_result), [str(files["results.json"]), str(files["garbage.bin"]), missing]),
          "b": (str(good_result), [str(files["results.json"]), missing]), "n": ("200", bad_ints),
          "out": (lambda: out("c.md"), bad_outs)}),
        (["align", "fit", "--source", "{src}", "--target", "hash", "--source-vectors", "{x}", "--target-vectors",
          "{y}", "--map", "{kind}", "--holdout", "{h}", "--out", "{out}"],
         {"src": ("hash", bad_encoders), "x": (str(files["good.npy"]), bad_vectors),
          "y": (str(files["good_b.npy"]), bad_vectors + [str(files["short.npy"])]),
          "kind": ("procrustes", ["rotation", "", "mlp2"]), "h": ("0.1", ["-1", "1", "2", "abc"]),
          "out": (lambda: out("m.sef"), bad_outs)}),
        (["align", "fit", "--source", "hash", "--target", "hash", "--anchors", "{anchors}", "--n-anchors", "{n}",
          "--out", "{out}"],
         {"anchors": (sample, bad_texts + bad_qa), "n": ("5", ["-5", "0", "100000", "x"]),
          "out": (lambda: out("m.sef"), bad_outs)}),
        (["align", "apply", "--map", "{map}", "--vectors", "{x}", "--out", "{out}"],
         {"map": (str(good_map), bad_sefs), "x": (str(files["good.npy"]), bad_vectors),
          "out": (lambda: out("o.npy"), bad_outs)}),
        (["align", "apply", "--map", str(good_map), "--texts", "{texts}", "--kind", "{kind}", "--out", "{out}"],
         {"texts": (str(files["texts.txt"]), bad_texts), "kind": ("doc", ["passage", ""]),
          "out": (lambda: out("o.npy"), bad_outs)}),
        (["align", "diagnose", "--source", "hash", "--target", "{tgt}", "--texts", "{texts}", "--n", "{n}"],
         {"tgt": ("hash", bad_encoders), "texts": (sample, bad_texts), "n": ("20", ["-1", "0", "2", "x"])}),
        (["project", "eval", "--pairs", "{pairs}", "--encoder", "hash", "--qa-layout", "{layout}", "--methods", "{m}"],
         {"pairs": (str(files["unknown_layout.jsonl"]), bad_qa[:1] + bad_qa[2:] + [sample]),
          "layout": ("id=qid,question=q,answer=a", bad_layouts), "m": ("procrustes", ["nope", "identity,zz"])}),
        (["project", "fit", "--pairs", "{pairs}", "--qa-layout", "id=qid,question=q,answer=a", "--encoder", "hash",
          "--method", "{m}", "--out", "{out}"],
         {"pairs": (str(files["unknown_layout.jsonl"]), bad_qa[:1] + bad_qa[2:]),
          "m": ("procrustes", ["identity", "nope", ""]), "out": (lambda: out("p.sef"), bad_outs)}),
        (["data", "check", "{data}"], {"data": (sample, bad_paths + [str(files["texts.txt"])])}),
        (["data", "fetch", "beir", "{name}", "--to", "{to}", "--base-url", "http://127.0.0.1:9"],
         {"name": ("x", ["../etc", "", "a/b", "."]),
          "to": (lambda: out("d"), [under_a_file, str(files["texts.txt"])])}),
        (["models", "fetch", "{name}"], {"name": ("mpnet", ["minilm", "", "x"])}),
        (["cache", "drop-seeded", "{id}"], {"id": ("0123456789abcdef", ["", "../x", "zz", "0" * 40])}),
        (["cache", "info", "--root", "{root}"], {"root": (str(tmp / "c"), [str(files["texts.txt"])])}),
        (["demo", "--data", "{data}", "--encoders", "{encs}", "--out", "{out}"],
         {"data": (sample, bad_paths), "encs": ("hash", ["", " , "]),
          "out": (lambda: out("demo"), [under_a_file, str(files["texts.txt"])])}),
        (["search", "-s", "{sef}", "--data", sample, "-k", "{k}", "--strategy", "{st}", "-q", "x"],
         {"sef": (str(files["not_a_sef.sef"]), bad_sefs), "k": ("3", bad_ints), "st": ("kalman", ["best", ""])}),
        (["index", "build", "{idx}", "--from", "{src}", "-e", "{enc}", "--backend", "{backend}"],
         {"idx": (lambda: out("ix"), [under_a_file, str(good_index)]), "src": (sample, bad_paths + bad_qa),
          "enc": ("hash", bad_encoders), "backend": ("exact", ["annoy", "", "hnsw --param"])}),
        (["index", "add", "{idx}", "--from", "{src}"],
         {"idx": (str(good_index), [missing, str(files["a_folder"]), str(files["texts.txt"])]),
          "src": (str(files["docs.jsonl"]), bad_paths + [str(files["bad.jsonl"]), sample])}),
        (["index", "remove", "{idx}", "{id}"],
         {"idx": (str(good_index), [missing, str(files["a_folder"])]), "id": ("t01", ["no-such-id", ""])}),
        (["query", "{idx}", "{text}", "-k", "{k}"],
         {"idx": (str(good_index), [missing, str(files["a_folder"]), str(files["garbage.bin"])]),
          "text": ("dough", ["", "   "]), "k": ("3", bad_ints)}),
        (["{verb}"], {"verb": ("eval", ["evaluate", "--nope", "align fit"])}),
    ]  # fmt: skip
    while True:
        argv_t, slots = rng.choice(templates)
        bad_slot = rng.choice(sorted(slots))
        values, outs = {}, []
        for slot, (good, bads) in slots.items():
            value = rng.choice(bads) if slot == bad_slot else (good() if callable(good) else good)
            values[slot] = value
            if slot in ("out", "to", "idx") and slot != bad_slot and argv_t[:2] == ["index", "build"]:
                outs.append(Path(value))
            elif slot in ("out", "to") and slot != bad_slot:
                outs.append(Path(value))
        argv = [a.format(**values) if "{" in a else a for a in argv_t]
        yield [a for part in argv for a in (part.split(" ") if part == "align fit" else [part])], outs


@pytest.fixture
def fuzz_world(tmp_path, run):
    files = _write_inputs(tmp_path / "in")
    good_map = tmp_path / "good.sef"
    res = run("align", "fit", "--source", "hash", "--target", "hash", "--anchors", str(sample_corpus_dir()),
              "--out", str(good_map))  # fmt: skip
    assert res.exit_code == 0, res.output
    good_result = tmp_path / "result.json"
    res = run("eval", "--data", str(sample_corpus_dir()), "--encoder", "hash", "--out", str(good_result))
    assert res.exit_code == 0, res.output
    good_index = tmp_path / "index"
    res = run("index", "build", str(good_index), "--from", str(sample_corpus_dir()), "-e", "hash")
    assert res.exit_code == 0, res.output
    return files, good_map, good_result, good_index


def test_every_verb_fails_cleanly_on_bad_input(fuzz_world, tmp_path, capsys, isolated_cache):
    files, good_map, good_result, good_index = fuzz_world
    rng = random.Random(SEED)
    deadline = time.monotonic() + SECONDS
    failures, n = [], 0
    for argv, outs in _cases(files, tmp_path, good_map, good_result, good_index, rng):
        if time.monotonic() > deadline or n >= 400:
            break
        n += 1
        capsys.readouterr()
        try:
            main(argv)
            code = 0
        except SystemExit as exc:
            code = exc.code
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        problems = []
        if code != 2:
            problems.append(f"exit code {code}")
        if "Traceback" in err:
            problems.append("traceback")
        if not lines or not lines[-1].startswith("error: ") or sum(x.startswith("error:") for x in lines) != 1:
            problems.append("not exactly one final 'error:' line")
        for o in outs:
            left = [p.name for p in o.parent.glob(f"*{o.name}*")] if o.parent.exists() else []
            if left:
                problems.append(f"left {left}")
        if problems:
            failures.append(f"{' '.join(argv)!r}: {', '.join(problems)}; stderr: {err.strip()[-300:]!r}")
    assert n >= 50, f"only {n} cases ran in {SECONDS} s"
    assert not failures, f"{len(failures)} of {n} cases broke the contract:\n" + "\n".join(failures[:20])
    _assert_cache_valid(isolated_cache)


def _assert_cache_valid(root: Path) -> None:
    """Every entry file under the cache verifies against the key its name says it holds."""
    from keff.encoders.cache import unpack_entry

    entries = [p for p in (root / "embeddings").glob("*/??/*") if p.is_file() and not p.name.startswith(".")]
    assert entries, "the fuzz run should have cached the sample corpus"
    for path in entries:
        unpack_entry(path.read_bytes(), key=bytes.fromhex(path.name))  # raises CacheCorrupt on any defect
