"""Smoke test of bench/encode.py's worker protocol: one bertkit worker, 8 reviews, one pass (no timing asserted)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bertkit import corpora

ROOT = Path(__file__).resolve().parents[1]


def test_worker_answers_ready_pass_and_finish(tmp_path: Path) -> None:
    try:
        corpora.rotten_tomatoes_reviews()
    except FileNotFoundError as error:
        pytest.skip(str(error))
    command = [sys.executable, str(ROOT / "bench" / "encode.py"), "--worker", "bertkit-fp32", "--sentences", "8",
               "--batch-size", "8", "--threads", "1", "--onnx", str(tmp_path / "unused.onnx")]
    out = tmp_path / "vectors.npy"
    result = subprocess.run(command, input=f"pass\nfinish {out}\n", capture_output=True, text=True, timeout=120,
                            check=True)
    ready, timed, finished = (json.loads(line) for line in result.stdout.splitlines())
    assert ready["ready"] is True and ready["setup_s"] > 0 and isinstance(ready["note"], str)
    assert timed["seconds"] > 0
    assert "lee" in finished and (finished["lee"] is None or 0.3 < finished["lee"] < 1)
    vectors = np.load(out)
    assert vectors.shape == (8, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
