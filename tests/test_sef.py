"""keff.sef: round trip, verification, and a fuzz test that corrupted files give clean errors."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from keff.errors import FormatError
from keff.sef import FORMAT_VERSION, MAX_ARRAYS, MAX_JSON_DEPTH, json_depth, load_sef, save_sef


@pytest.fixture
def artifact(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        "W": rng.standard_normal((6, 4)).astype(np.float32),
        "b": rng.standard_normal(4).astype(np.float32),
        "labels": np.arange(5, dtype=np.int64),
    }
    meta = {"kind": "map", "type": "Procrustes", "params": {"center": True}, "source": {"name": "a"}}
    path = save_sef(tmp_path / "m.sef", arrays, meta)
    return path, arrays, meta


def test_round_trip_is_exact(artifact):
    path, arrays, meta = artifact
    got, got_meta = load_sef(path, kind="map")
    assert set(got) == set(arrays)
    for k in arrays:
        assert got[k].dtype == arrays[k].dtype and np.array_equal(got[k], arrays[k])
    assert got_meta == {**meta, "format_version": FORMAT_VERSION}


def test_plain_safetensors_readers_can_open_it(artifact):
    from safetensors.numpy import load_file

    path, arrays, _ = artifact
    assert np.array_equal(load_file(str(path))["W"], arrays["W"])


def test_wrong_kind_and_missing_file(artifact, tmp_path):
    path, _, _ = artifact
    with pytest.raises(FormatError, match="expected a 'specialist'"):
        load_sef(path, kind="specialist")
    with pytest.raises(FormatError, match="cannot read"):
        load_sef(tmp_path / "absent.sef")


def test_refuses_non_finite_and_unsupported_arrays(tmp_path):
    with pytest.raises(FormatError, match="NaN"):
        save_sef(tmp_path / "x.sef", {"W": np.array([np.nan], dtype=np.float32)}, {})
    with pytest.raises(FormatError, match="dtype"):
        save_sef(tmp_path / "x.sef", {"W": np.array(["a"])}, {})
    assert not (tmp_path / "x.sef").exists()


def rewrite_header(path, edit):
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    edit(header)
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n :])


def test_tampered_metadata_fails_checksum(artifact):
    path, _, _ = artifact

    def edit(h):
        meta = json.loads(h["__metadata__"]["keff.meta"])
        meta["params"]["center"] = False
        h["__metadata__"]["keff.meta"] = json.dumps(meta)

    rewrite_header(path, edit)
    with pytest.raises(FormatError, match="SHA-256 mismatch"):
        load_sef(path)


def test_other_format_version_is_named(artifact):
    path, _, _ = artifact

    def edit(h):
        meta = json.loads(h["__metadata__"]["keff.meta"])
        meta["format_version"] = 99
        h["__metadata__"]["keff.meta"] = json.dumps(meta)

    rewrite_header(path, edit)
    with pytest.raises(FormatError, match="format_version 99"):
        load_sef(path)


def test_plain_safetensors_file_is_not_a_sef(tmp_path):
    from safetensors.numpy import save_file

    save_file({"W": np.eye(2, dtype=np.float32)}, str(tmp_path / "plain.sef"))
    with pytest.raises(FormatError, match="not a keff SEF file"):
        load_sef(tmp_path / "plain.sef")


def test_fuzz_corrupted_files_give_only_clean_errors(artifact, tmp_path):
    path, arrays, meta = artifact
    good = path.read_bytes()
    rng = np.random.default_rng(1234)
    outcomes = {"error": 0, "identical": 0}
    for trial in range(600):
        data = bytearray(good)
        how = trial % 4
        if how == 0:  # flip random bits
            for _ in range(int(rng.integers(1, 4))):
                i = int(rng.integers(len(data)))
                data[i] ^= 1 << int(rng.integers(8))
        elif how == 1:  # truncate
            data = data[: int(rng.integers(len(data)))]
        elif how == 2:  # overwrite a random run with random bytes
            i = int(rng.integers(len(data)))
            data[i : i + 8] = rng.integers(0, 256, size=8, dtype=np.uint8).tobytes()
        else:  # insert garbage
            i = int(rng.integers(len(data)))
            data[i:i] = rng.integers(0, 256, size=int(rng.integers(1, 16)), dtype=np.uint8).tobytes()
        bad = tmp_path / f"bad{trial}.sef"
        bad.write_bytes(bytes(data))
        try:
            got, got_meta = load_sef(bad)
        except FormatError:
            outcomes["error"] += 1
            continue
        # a corruption that load accepts must not have changed anything (e.g. header padding)
        assert got_meta == {**meta, "format_version": FORMAT_VERSION}
        assert all(np.array_equal(got[k], arrays[k]) for k in arrays)
        outcomes["identical"] += 1
    assert outcomes["error"] > 500


@pytest.mark.parametrize(
    "text, depth",
    [(b"", 0), (b"1", 0), (b"[[[]]]", 3), (b'{"a": [{}]}', 3), (b'["[[[", "{{"]', 1),
     (b'["a\\\\", "[["]', 1), (b'["\\"[[", 2]', 1), (b"[[[", 3)],
)  # fmt: skip
def test_json_depth_skips_strings_and_escapes(text, depth):
    assert json_depth(text) == depth


def test_save_refuses_what_load_would_refuse(tmp_path):
    deep: list = []
    for _ in range(MAX_JSON_DEPTH):
        deep = [deep]
    with pytest.raises(FormatError, match="nests deeper"):
        save_sef(tmp_path / "deep.sef", {}, {"x": deep})
    with pytest.raises(FormatError, match=f"at most {MAX_ARRAYS}"):
        save_sef(tmp_path / "many.sef", {f"a{i}": np.zeros(1) for i in range(MAX_ARRAYS + 1)}, {})
    assert not list(tmp_path.iterdir())
