"""keff.uncertainty is numpy core: importing it pulls in no heavy backend (nor scipy.stats)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "faiss", "sentence_transformers", "transformers", "onnxruntime", "scipy.stats")


def test_import_stays_light():
    code = f"import sys, keff.uncertainty\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"importing keff.uncertainty pulled in: {out.stdout.strip()}"
