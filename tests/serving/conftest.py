"""Fixtures of the serving tests: servers in subprocesses (always stopped), in-process oracles, a tiny MLM."""

import shutil

import pytest
import torch
import transformers
from serving_process import running_server

from bertkit import SentenceEncoder


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread in the test process: on the shared 2-core machine two threads spin against other load."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def minilm_server(tmp_path_factory):
    """MiniLM with the defaults, two workers (one torch thread each), batches of at most 64, tokens shown, HTTP."""
    log = tmp_path_factory.mktemp("minilm-server") / "server.log"
    with running_server(["-num_worker", "2", "-max_batch_size", "64", "-show_tokens_to_client"], log, http=True) as s:
        yield s


@pytest.fixture(scope="session")
def local(minilm_dir):
    """The server's default encoding in-process: SentenceEncoder, mean of layer -2, 25 tokens."""
    encoder = SentenceEncoder.from_pretrained(minilm_dir)
    return lambda texts, max_length=25: encoder.encode(texts, pooling="mean", layer=-2, max_length=max_length,
                                                       allow_empty=True)


@pytest.fixture(scope="session")
def tiny_mlm(tmp_path_factory, minilm_dir):
    """A small random transformers BertForMaskedLM with MiniLM's vocabulary, saved by the test: (folder, model)."""
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=64, max_position_embeddings=64)
    model = transformers.BertForMaskedLM(config).eval()
    folder = tmp_path_factory.mktemp("tiny-mlm")
    model.save_pretrained(folder)
    for name in ("vocab.txt", "tokenizer_config.json"):
        shutil.copy(minilm_dir / name, folder / name)
    return folder, model


@pytest.fixture(scope="session")
def tiny_server(tiny_mlm, tmp_path_factory):
    """The tiny MLM checkpoint served with one worker of one thread, HTTP on."""
    log = tmp_path_factory.mktemp("tiny-server") / "server.log"
    with running_server(["-model_dir", str(tiny_mlm[0]), "--torch-threads", "1"], log, http=True) as server:
        yield server
