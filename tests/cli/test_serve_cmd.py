"""``keff serve``: one URL line when ready, the key only from the environment, loud non-loopback warning."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading

import pytest

pytest.importorskip("fastapi", reason="keff serve needs the serve extra: pip install 'keff[serve]'")
httpx = pytest.importorskip("httpx")

from keff.docindex import Document, Index  # noqa: E402

KEY = "cli-test-key-0123456789"


@pytest.fixture
def small_index(tmp_path, monkeypatch):
    monkeypatch.setenv("KEFF_CACHE_DIR", str(tmp_path / "cache"))
    docs = [Document(f"d{i}", f"{['git rebase', 'bread dough'][i % 2]} note {i}") for i in range(10)]
    Index.build(tmp_path / "ix", docs, ["hash"]).close()
    return tmp_path / "ix"


def _first_line(proc: subprocess.Popen, timeout: float) -> str:
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        proc.kill()
        raise AssertionError(f"keff serve printed no URL in {timeout} s; stderr: {proc.stderr.read()}") from None


def test_keff_serve_prints_its_url_and_takes_the_key_from_the_environment(small_index, tmp_path):
    env = {**os.environ, "KEFF_CACHE_DIR": str(tmp_path / "cache"), "MY_KEY": KEY}
    code = "import sys; from keff.cli import main; main(sys.argv[1:])"
    args = ["serve", str(small_index), "--port", "0", "--api-key-env", "MY_KEY"]
    proc = subprocess.Popen([sys.executable, "-c", code, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        line = _first_line(proc, 60)
        assert line.startswith("keff serve: http://127.0.0.1:") and "10 documents" in line and "writes on" in line
        url = line.split()[2]
        assert KEY not in line
        with httpx.Client(base_url=url, timeout=10) as client:
            assert client.get("/health").json()["documents"] == 10
            doc = {"documents": [{"id": "n1", "text": "okapi zebra"}]}
            assert client.post("/documents", json=doc).status_code == 401
            assert client.post("/documents", json=doc, headers={"X-API-Key": KEY}).status_code == 200
            hits = client.post("/search", json={"queries": "okapi zebra", "k": 1}).json()["results"][0]["hits"]
            assert hits[0]["id"] == "n1"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert Index.open(small_index).n_docs == 11


def test_keff_serve_without_the_key_is_read_only_and_warns_off_loopback(small_index, monkeypatch, capsys):
    import uvicorn

    from keff.cli import main

    started = []

    def fake_run(self, sockets=None):  # bind nothing: only the checks before it are tested
        started.append((self.config.host, self.config.port, self.config.app.state.service.config.writes_enabled))

    monkeypatch.setattr(uvicorn.Server, "run", fake_run)
    monkeypatch.delenv("KEFF_API_KEY", raising=False)
    with pytest.raises(SystemExit) as exit_:
        main(["serve", str(small_index), "--host", "0.0.0.0", "--port", "8099"])
    err = " ".join(capsys.readouterr().err.split())
    assert exit_.value.code == 2 and "did not start" in err
    assert "WARNING" in err and "binding 0.0.0.0" in err and "writes are off" in err
    assert started == [("0.0.0.0", 8099, False)]


def test_keff_serve_refuses_a_missing_index_in_one_line(tmp_path, capsys):
    from keff.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["serve", str(tmp_path / "nothing")])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and err.startswith("error:") and "no index here" in err and len(err.splitlines()) == 1


def test_the_key_is_never_an_option():
    from typer.main import get_command

    from keff.cli import app

    params = {p.name for p in get_command(app).commands["serve"].params}
    assert "api_key_env" in params and "api_key" not in params


def test_loopback_binding_stays_quiet(small_index, monkeypatch, capsys):
    import uvicorn

    from keff.cli import main

    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: None)
    with pytest.raises(SystemExit):
        main(["serve", str(small_index)])
    assert "WARNING" not in capsys.readouterr().err
