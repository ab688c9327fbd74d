"""bertkit reads SentencePiece ``.model`` files and segments text exactly as the ``sentencepiece`` library does.

Oracles: ``sentencepiece`` 0.2 (its trainer makes the models from installed text, its processor gives the reference
ids, pieces, byte spans, n-best lists and samples) and ``protobuf`` (the model file's fields). Text: lines of the
Python docs and the Debian handbook in 26 languages that the models were not trained on, and HARD_TEXT.
"""

from __future__ import annotations

import collections
import math
import random

import pytest
import sentencepiece
from sentencepiece_fixtures import HARD_TEXT, MODELS, difference, held_out_lines, train_model

from bertkit.tokenization.sentencepiece import SentencePieceProcessor
from bertkit.tokenization.sentencepiece_model import (
    SentencePieceModelError,
    load_model,
    parse_model,
    serialize_model,
)

SAMPLE = 40  # `make test` compares every 40th held-out line (~1,200 per model); `make test-slow` every line


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("spm")
    return {name: train_model(folder, name) for name in MODELS}


def _pair(models, name):
    path = models[name]
    return SentencePieceProcessor(path), sentencepiece.SentencePieceProcessor(model_file=str(path))


@pytest.mark.parametrize("name", MODELS)
def test_ids_pieces_offsets_and_decoding_equal_sentencepiece(models, name):
    ours, reference = _pair(models, name)
    lines = list(held_out_lines()[::SAMPLE]) + HARD_TEXT
    mismatches = [d for line in lines if (d := difference(ours, reference, line))]
    assert mismatches == []


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_every_held_out_line_equals_sentencepiece(models, name):
    ours, reference = _pair(models, name)
    mismatches = [d for line in held_out_lines() if (d := difference(ours, reference, line))]
    assert mismatches[:5] == [] and len(held_out_lines()) > 30_000


def test_the_model_file_reads_as_protobuf_reads_it(models):
    from sentencepiece import sentencepiece_model_pb2

    for name, path in models.items():
        proto = sentencepiece_model_pb2.ModelProto()
        proto.ParseFromString(path.read_bytes())
        ours = load_model(path)
        assert [(p.piece, p.score, p.type) for p in ours.pieces] == [(p.piece, p.score, p.type) for p in proto.pieces]
        for spec, fields in ((proto.trainer_spec, ours.trainer_spec), (proto.normalizer_spec, ours.normalizer_spec)):
            for field, value in fields.items():
                expected = getattr(spec, field)
                assert (list(expected) if field in ("input", "control_symbols", "user_defined_symbols",
                                                    "accept_language") else expected) == value, (name, field)


def test_a_written_model_file_loads_in_sentencepiece_with_the_same_segmentations(models, tmp_path):
    for name in ("unigram-bytes", "bpe-identity"):
        model = load_model(models[name])
        assert parse_model(serialize_model(model)) == model
        written = tmp_path / f"{name}.model"
        written.write_bytes(serialize_model(model))
        original = sentencepiece.SentencePieceProcessor(model_file=str(models[name]))
        reloaded = sentencepiece.SentencePieceProcessor(model_file=str(written))
        for line in list(held_out_lines()[::200]) + HARD_TEXT:
            assert reloaded.encode(line) == original.encode(line)


@pytest.mark.parametrize("name", ["unigram", "unigram-bytes", "unigram-identity"])
def test_nbest_lists_and_scores_equal_sentencepiece(models, name):
    ours, reference = _pair(models, name)
    words = [w for line in held_out_lines()[::300] for w in line.split()[:6]]
    texts = words + list(held_out_lines()[::997]) + HARD_TEXT
    for text in texts:
        expected = [([p.piece for p in nb.pieces], nb.score)
                    for nb in reference.nbest_encode(text, nbest_size=8, return_type="proto").nbests]
        got = [([t.piece for t in tokens], score) for tokens, score in ours.nbest(text, 8)]
        assert got == expected, text  # ties in the order SentencePiece lists them, scores to the last float32 bit


def _exact_distribution(ours, text, alpha, nbest_size):
    """Every segmentation (or the n best) with its probability under SentencePiece's sampling."""
    listed = ours.nbest(text, 1024 if nbest_size < 0 else nbest_size)
    keys = [tuple(t.piece for t in tokens) for tokens, _ in listed]
    if nbest_size > 0:
        top = max(s for _, s in listed)
        weights = [math.exp(alpha * (s - top)) for _, s in listed]
        return keys, [w / sum(weights) for w in weights]
    normalized = ours.normalizer.normalize(text)[0]
    log_z = ours.unigram.forward(ours.unigram.lattice(normalized), alpha)[-1]
    probabilities = [math.exp(alpha * s - log_z) for _, s in listed]
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-6), "the word must have fewer than 1,024 segmentations"
    return keys, probabilities


def _chi_square_p(counts, keys, probabilities, draws):
    from scipy.stats import chisquare

    kept = [i for i, p in enumerate(probabilities) if p * draws >= 5]  # rarer ones pooled into one cell
    observed = [counts.get(keys[i], 0) for i in kept]
    expected = [probabilities[i] * draws for i in kept]
    observed.append(draws - sum(observed))
    expected.append(draws - sum(expected))
    return chisquare(observed, expected).pvalue


@pytest.mark.parametrize(("text", "alpha", "nbest_size"), [("hello", 0.5, -1), ("packages", 0.2, 5),
                                                           ("files", 1.0, -1)])
def test_sampled_segmentations_follow_sentencepiece_distribution(models, text, alpha, nbest_size):
    ours, reference = _pair(models, "unigram")
    keys, probabilities = _exact_distribution(ours, text, alpha, nbest_size)
    draws, rng = 6000, random.Random(1)
    counts = collections.Counter(tuple(ours.sample_encode(text, alpha, nbest_size, str, rng)) for _ in range(draws))
    assert set(counts) <= set(keys)
    assert ours.encode(text, str, enable_sampling=True, alpha=alpha, nbest_size=nbest_size) in [list(k) for k in keys]
    assert _chi_square_p(counts, keys, probabilities, draws) > 1e-3
    # the same test holds for the library's own sampler: the two draw from one distribution
    theirs = collections.Counter(tuple(reference.encode(text, out_type=str, enable_sampling=True, alpha=alpha,
                                                        nbest_size=nbest_size)) for _ in range(draws))
    assert _chi_square_p(theirs, keys, probabilities, draws) > 1e-3


def test_bpe_sampling_is_bpe_dropout(models):
    ours, reference = _pair(models, "bpe")
    text = "internationalization of packages"
    assert ours.sample_encode(text, 0.0, -1, str) == reference.encode(text, out_type=str)
    pieces = ours.sample_encode(text, 1.0, -1, str)  # every merge dropped: characters
    assert pieces == reference.encode(text, out_type=str, enable_sampling=True, alpha=1.0)
    assert all(len(p) == 1 for p in pieces)


def test_text_outside_the_vocabulary_is_never_dropped(models):
    ours, reference = _pair(models, "unigram")
    text = "abc \U0001f9ec\U0001f9ec def 𝔘"
    tokens = ours.encode_tokens(text)
    unknown = [t for t in tokens if t.id == ours.unk_id]
    assert [text[t.start:t.end] for t in unknown] == ["\U0001f9ec\U0001f9ec"]  # a run of them is one <unk>
    assert ours.decode([t.id for t in tokens]) == reference.decode(reference.encode(text))
    assert "\u2047" in ours.decode([t.id for t in tokens])  # shown as SentencePiece's " ⁇ ", not left out
    byte_model, _ = _pair(models, "unigram-bytes")
    assert byte_model.decode(byte_model.encode(text)) == "abc \U0001f9ec\U0001f9ec def U"  # bytes spell it out


def test_bad_model_files_name_the_file_and_the_part(models, tmp_path):
    not_a_model = tmp_path / "vocab.model"
    not_a_model.write_text("[PAD]\n[UNK]\nhello\n")
    with pytest.raises(SentencePieceModelError, match="vocab.model"):
        SentencePieceProcessor(not_a_model)
    data = models["unigram"].read_bytes()
    truncated = tmp_path / "truncated.model"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(SentencePieceModelError, match=r"truncated\.model.*truncated"):
        SentencePieceProcessor(truncated)

    model = load_model(models["unigram"])
    model.normalizer_spec["name"] = "nfkc_magic"
    with pytest.raises(SentencePieceModelError, match=r"normalizer_spec\.name 'nfkc_magic'"):
        SentencePieceProcessor(model=model)
    model = load_model(models["unigram"])
    model.pieces[10].type = 9
    with pytest.raises(SentencePieceModelError, match=r"pieces\[10\].*type 9"):
        parse_model(serialize_model(model), "odd.model")
    model = load_model(models["unigram"])
    model.trainer_spec["model_type"] = 3
    with pytest.raises(SentencePieceModelError, match="'word'"):
        SentencePieceProcessor(model=model)


def test_explain_segment_lists_the_nbest_with_probabilities_and_draws_them(models, tmp_path, capsys):
    from bertkit.cli import main
    from bertkit.tokenization.sp_explain import segmentations

    ours, reference = _pair(models, "unigram")
    best, drawn = segmentations(ours, "packages", nbest=4, alpha=0.5, samples=3)
    expected = reference.nbest_encode("packages", nbest_size=4, return_type="proto").nbests
    assert [s.pieces for s in best] == [[p.piece for p in nb.pieces] for nb in expected]
    keys, probabilities = _exact_distribution(ours, "packages", 0.5, -1)
    exact = dict(zip(keys, probabilities, strict=True))
    assert all(s.probability == pytest.approx(exact[tuple(s.pieces)], rel=1e-4) for s in best + drawn)
    assert main(["explain", "segment", "packages", "--model", str(models["unigram"]), "--output",
                 str(tmp_path / "seg.png"), "--nbest", "3"]) == 0
    printed = capsys.readouterr().out
    assert "3 best segmentations" in printed and "P=" in printed
    assert (tmp_path / "seg.png").read_bytes()[:4] == b"\x89PNG"
