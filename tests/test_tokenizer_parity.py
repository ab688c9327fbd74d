"""bertkit's tokenizer gives the tokens of transformers' pure-Python BertTokenizer on every line of real corpora.

Corpora: the Python 3.11 docs (11 MB) and the Debian handbook in 26 languages (30 MB), fetched from Debian's
package registry by bertkit.corpora. Lines repeated across corpora are compared once. The reference is slow
(~0.1 MB/s), so the comparison is spread over two processes.
"""

from multiprocessing import get_context

import pytest
import transformers

from bertkit import corpora
from bertkit.assets import chinese_vocab_file, default_model_dir
from bertkit.tokenization import BertTokenizer

VOCABS = {"minilm-uncased": default_model_dir() / "vocab.txt", "bert-base-chinese": chinese_vocab_file()}
_workers: dict[str, tuple] = {}


def _tokenizers(vocab: str):
    if vocab not in _workers:
        path = VOCABS[vocab]
        _workers[vocab] = (BertTokenizer(path), transformers.BertTokenizerLegacy(vocab_file=str(path)))
    return _workers[vocab]


def _mismatches(job: tuple[str, list[str]]) -> list[tuple[str, list[str], list[str]]]:
    """Lines of one chunk where bertkit and the reference disagree (at most 5, with both tokenizations)."""
    vocab, lines = job
    ours, legacy = _tokenizers(vocab)
    found = []
    for line in lines:
        mine, reference = ours.tokenize(line), legacy.tokenize(line)
        if mine != reference and len(found) < 5:
            found.append((line, mine, reference))
    return found


@pytest.fixture(scope="module")
def lines() -> list[str]:
    docs = [line for line in corpora.python_docs_lines() if line.strip()]
    handbook = [line for lang in corpora.debian_handbook_languages() for line in corpora.debian_handbook_lines(lang)]
    assert len(docs) > 200_000 and len(handbook) > 170_000
    return sorted(set(docs) | set(handbook))


SAMPLE = 16  # `make test` checks every 16th line (~25k); `make test-slow` every line


@pytest.mark.parametrize("vocab", VOCABS)
def test_identical_to_the_python_reference_on_a_sample_of_lines(vocab, lines):
    chunks = [(vocab, lines[i::32 * SAMPLE]) for i in range(32)]
    with get_context("fork").Pool(2) as pool:
        mismatches = [m for found in pool.map(_mismatches, chunks) for m in found]
    assert mismatches == []


@pytest.mark.slow
@pytest.mark.parametrize("vocab", VOCABS)
def test_identical_to_the_python_reference_on_every_line(vocab, lines):
    chunks = [(vocab, lines[i::32]) for i in range(32)]
    with get_context("fork").Pool(2) as pool:
        mismatches = [m for found in pool.map(_mismatches, chunks) for m in found]
    assert mismatches == []


@pytest.mark.parametrize("every", [SAMPLE, pytest.param(1, marks=pytest.mark.slow)], ids=["sample", "every-line"])
def test_rust_reference_differs_only_by_the_greek_final_sigma(lines, tmp_path, every):
    """transformers' Rust tokenizer lower-cases Σ to σ everywhere; Python's str.lower() writes ς at a word's end."""
    lines = lines[::every]
    (tmp_path / "vocab.txt").write_bytes(VOCABS["minilm-uncased"].read_bytes())
    rust = transformers.BertTokenizer.from_pretrained(tmp_path)
    ours = BertTokenizer(VOCABS["minilm-uncased"])
    rust_ids = rust(lines, add_special_tokens=False)["input_ids"]
    differing = [(line, ids) for line, ids in zip(lines, rust_ids, strict=True) if ids != ours.text_to_ids(line)]
    assert len(differing) < 10 and (every > 1 or differing)
    for line, ids in differing:
        assert "Σ" in line
        assert ours.tokenize(line.replace("Σ", "σ")) == rust.convert_ids_to_tokens(ids)
