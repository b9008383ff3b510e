"""The page in a real browser: type a query, both columns fill, the screenshot is kept.

Drives the system's Chromium (/usr/bin/chromium) with Playwright's Python API (no browser
download); skipped with a message when either is missing. The screenshot goes to ``tmp_path`` and,
when ``KEFF_SCREENSHOT_DIR`` is set, there too.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the page test needs playwright: pip install 'keff[browser]'"
)
uvicorn = pytest.importorskip("uvicorn", reason="keff serve needs the serve extra: pip install 'keff[serve]'")
if not Path(CHROMIUM).is_file():
    pytest.skip(f"the page test needs Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


class BackgroundServer:
    """uvicorn serving ``app`` on 127.0.0.1 and a free port, in a thread."""

    def __init__(self, app) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise AssertionError("uvicorn did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _plot(path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 2.6), dpi=80)
    ax.bar(["hash", "hash2", "fused"], [0.41, 0.37, 0.45], color=["#5b6b8c", "#8a94a6", "#0f766e"])
    ax.set_ylabel("nDCG@10")
    ax.set_title("test plot (made by the test, not a measurement)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def test_page_shows_both_columns_for_a_typed_query(make_app, tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    _plot(reports / "example.png")
    app = make_app(reports_dir=reports)
    shot = tmp_path / "keff-serve-page.png"
    with BackgroundServer(app) as url, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(url + "/", wait_until="networkidle")
            page.wait_for_function("document.getElementById('index-meta').textContent.includes('documents')")
            page.fill("#query", "squash commits before rebase")
            page.press("#query", "Enter")
            page.wait_for_selector("#raw-results li.hit", timeout=15_000)
            page.wait_for_selector("#transformed-results li.hit", timeout=15_000)
            page.wait_for_selector("#plots img", timeout=15_000)
            page.wait_for_function("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
            raw = page.locator("#raw-results li.hit")
            fused = page.locator("#transformed-results li.hit")
            assert raw.count() == 10 and fused.count() == 10
            assert page.locator("#transformed-results .parts").count() == 10  # each encoder's share, per hit
            widths = page.eval_on_selector_all("#transformed-results .bar span", "els => els.map(e => e.style.width)")
            assert len(widths) == 20 and all(w.endswith("%") and 0 <= float(w[:-1]) <= 100 for w in widths), widths
            assert len(set(widths)) > 2  # bars on one scale, not all full
            what = page.text_content("#transformed-what")
            assert "fusion (fusion-weights)" in what and "0.70" in what and "0.30" in what
            assert "hash" in page.text_content("#raw-what")
            raw_scores = page.locator("#raw-results .score").all_text_contents()
            fused_scores = page.locator("#transformed-results .score").all_text_contents()
            assert raw_scores != fused_scores  # the columns differ
            assert page.text_content("#error") == ""
            assert not errors, errors
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    if os.environ.get("KEFF_SCREENSHOT_DIR"):
        out = Path(os.environ["KEFF_SCREENSHOT_DIR"])
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, out / shot.name)
