"""Every pooling mode of ``bertkit.encoding.pooling`` against sentence-transformers' ``Pooling`` on the same token
vectors: padded rows of several lengths, a row with one token, several modes concatenated, the prompt left out."""

import warnings

import pytest
import torch

from bertkit.encoding.pooling import POOLING_MODES, Pooling, parse_modes, pool

with warnings.catch_warnings():  # sentence-transformers warns about its own module layout
    warnings.simplefilter("ignore")
    from sentence_transformers.models import Pooling as ReferencePooling


def reference(modes, hidden, mask, include_prompt=True, prompt_length=None):
    """sentence-transformers' sentence vector for ``modes`` (a tuple) over ``hidden`` and ``mask``."""
    module = ReferencePooling(hidden.shape[-1], pooling_mode=modes, include_prompt=include_prompt)
    features = {"token_embeddings": hidden, "attention_mask": mask}
    if prompt_length is not None:
        features["prompt_length"] = prompt_length
    return module(features)["sentence_embedding"]


def batch(lengths=(7, 4, 1, 6), seq=7, dim=5, dtype=torch.float64):
    """Random token vectors (batch, seq, dim) and a right-padded 0/1 mask with ``lengths`` real tokens per row."""
    hidden = torch.randn(len(lengths), seq, dim, generator=torch.Generator().manual_seed(0), dtype=dtype)
    mask = (torch.arange(seq).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)).to(torch.int64)
    return hidden, mask


@pytest.mark.parametrize("mode", POOLING_MODES)
def test_each_mode_matches_sentence_transformers(mode):
    hidden, mask = batch()
    ours = pool((mode,), hidden, mask)
    assert ours.shape == (4, 5)
    torch.testing.assert_close(ours, reference((mode,), hidden, mask), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(Pooling(mode)(hidden, mask), ours, rtol=0, atol=0)


@pytest.mark.parametrize("mode", ["mean", "mean_sqrt_len_tokens", "weightedmean", "max", "cls", "lasttoken"])
def test_a_row_of_one_token_pools_to_that_token_exactly(mode):
    hidden, mask = batch(lengths=(1, 1), seq=4)
    torch.testing.assert_close(pool((mode,), hidden, mask), hidden[:, 0], rtol=0, atol=0)


@pytest.mark.parametrize("mode", ["mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken"])
def test_a_row_without_real_tokens_pools_to_zeros(mode):
    hidden, mask = batch(lengths=(3, 0), seq=4)
    ours = pool((mode,), hidden, mask)
    assert torch.equal(ours[1], torch.zeros(5, dtype=hidden.dtype))
    torch.testing.assert_close(ours, reference((mode,), hidden, mask), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", POOLING_MODES)
def test_a_boolean_mask_pools_as_its_0_1_mask(mode):
    hidden, mask = batch()
    assert torch.equal(pool((mode,), hidden, mask.bool()), pool((mode,), hidden, mask))


@pytest.mark.parametrize("mode", ["cls", "lasttoken", "max", "mean"])
def test_the_first_and_last_real_token_are_found_per_row(mode):
    """Rows whose real tokens start at different places (a left-padded batch) pool each its own tokens."""
    hidden, _ = batch(seq=6)
    mask = torch.tensor([[0, 0, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1], [0, 1, 1, 0, 0, 0], [0, 0, 0, 0, 1, 1]])
    torch.testing.assert_close(pool((mode,), hidden, mask), reference((mode,), hidden, mask), rtol=1e-12,
                               atol=1e-12)


@pytest.mark.parametrize("modes", [("cls", "mean"), ("max", "lasttoken", "weightedmean"), ("mean", "mean")])
def test_several_modes_are_concatenated_in_order(modes):
    hidden, mask = batch()
    ours = pool(modes, hidden, mask)
    assert ours.shape == (4, 5 * len(modes))
    torch.testing.assert_close(ours, reference(modes, hidden, mask), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(Pooling("+".join(modes))(hidden, mask), ours, rtol=0, atol=0)


@pytest.mark.parametrize("modes", [("mean",), ("cls", "weightedmean"), ("lasttoken", "max")])
def test_the_prompt_is_left_out_only_when_asked(modes):
    hidden, mask = batch(lengths=(7, 4, 3, 6))  # a real token past the prompt in every row
    kept = mask.clone()
    excluded = Pooling(modes, include_prompt=False)(hidden, mask, prompt_length=2)
    assert torch.equal(mask, kept)  # the caller's mask is not changed
    torch.testing.assert_close(excluded, reference(modes, hidden, mask, include_prompt=False, prompt_length=2),
                               rtol=1e-12, atol=1e-12)
    for included in (Pooling(modes)(hidden, mask, prompt_length=2),  # include_prompt defaults to True
                     Pooling(modes, include_prompt=True)(hidden, mask, prompt_length=2),
                     Pooling(modes, include_prompt=False)(hidden, mask)):  # no prompt given: nothing left out
        torch.testing.assert_close(included, reference(modes, hidden, mask), rtol=1e-12, atol=1e-12)


def test_modes_parse_from_a_joined_string_or_a_sequence_and_unknown_ones_are_refused():
    assert parse_modes("cls+mean") == ("cls", "mean") == parse_modes(["cls", "mean"])
    assert parse_modes("weightedmean") == ("weightedmean",) and Pooling("max+cls").strategy == "max+cls"
    for bad in ("cls mean", "average", "", ()):
        with pytest.raises(ValueError, match="pooling must be one of"):
            parse_modes(bad)
    assert repr(Pooling("cls", include_prompt=False)).endswith("(strategy='cls', include_prompt=False)")
