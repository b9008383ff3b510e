"""The numpy core must import without torch, FAISS, ONNX runtime or a server."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "faiss", "sentence_transformers", "transformers", "onnxruntime", "tokenizers", "matplotlib")


def test_import_keff_and_core_modules_stays_light():
    code = (
        "import sys\n"
        "import keff, keff.data, keff.eval, keff.index, keff.encoders, keff.tasks, keff.precomputed\n"
        "import keff.cli, keff.maps, keff.alignment, keff.sef, keff.uncertainty, keff.fusion, keff.projection\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"importing keff pulled in: {out.stdout.strip()}"
