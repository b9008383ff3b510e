"""``keff data fetch beir`` against a local HTTP server, and ``keff data check``."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading

import pytest

from keff.cli.demo_cmd import sample_corpus_dir


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def zip_server(tmp_path):
    """Serve tmp_path/www on 127.0.0.1, holding two_domains.zip (a small valid BEIR set)."""
    www = tmp_path / "www"
    staging = tmp_path / "staging"
    shutil.copytree(sample_corpus_dir(), staging / "two_domains")
    www.mkdir()
    shutil.make_archive(str(www / "two_domains"), "zip", root_dir=staging, base_dir="two_domains")
    handler = functools.partial(QuietHandler, directory=str(www))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_fetch_beir_from_local_server(run, zip_server, tmp_path):
    dest = tmp_path / "datasets"
    res = run("data", "fetch", "beir", "two_domains", "--to", str(dest), "--base-url", zip_server)
    assert res.exit_code == 0, res.output
    assert "48 documents" in res.output
    assert (dest / "two_domains" / "corpus.jsonl").is_file()


def test_fetch_missing_dataset_is_a_clean_error(zip_server, tmp_path, capsys):
    from keff.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["data", "fetch", "beir", "absent", "--to", str(tmp_path / "d"), "--base-url", zip_server])
    assert exc.value.code == 2
    assert "absent.zip" in capsys.readouterr().err
    assert not (tmp_path / "d" / "absent").exists()


def test_check_reports_counts(run):
    res = run("data", "check", str(sample_corpus_dir()))
    assert res.exit_code == 0, res.output
    assert "48 documents, 36 queries" in res.output
    assert "test: 24 judged queries" in res.output
