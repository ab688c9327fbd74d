"""Generation against transformers' ``generate`` on the same random GPT-2: greedy, beam search (length penalty,
early stopping), sampling (processed distributions and seeded draws), stop tokens, the cache; bad input."""

import pytest
import torch
import transformers
from transformers.generation import logits_process as hf

import bertkit
from bertkit.generation import GenerationConfig, generate, processors

VOCAB = 101


@pytest.fixture(scope="module")
def gpt_pair(tmp_path_factory):
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=VOCAB, n_embd=24, n_head=3, n_layer=2, n_inner=37, n_positions=40,
                                     bos_token_id=0, eos_token_id=0, attn_implementation="eager")
    reference = transformers.GPT2LMHeadModel(config).eval()
    # a stop token the model actually emits: the one greedy decoding of the test prompts picks most often
    prompt, mask = prompts()
    greedy = reference.generate(prompt, attention_mask=mask, max_new_tokens=12, do_sample=False, eos_token_id=None,
                                pad_token_id=0)
    stop = int(torch.mode(greedy[:, prompt.shape[1]:].flatten()).values)
    reference.config.eos_token_id = reference.generation_config.eos_token_id = stop
    reference.generation_config.pad_token_id = stop
    folder = tmp_path_factory.mktemp("gpt2")
    reference.save_pretrained(folder)
    return reference, bertkit.AutoModelForCausalLM.from_pretrained(folder), stop


def prompts():
    generator = torch.Generator().manual_seed(3)
    ids = torch.randint(1, VOCAB, (3, 6), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, :2] = 0  # left-padded rows, as transformers' generate expects
    mask[2, :4] = 0
    return ids, mask


def test_model_defaults_come_from_the_config(gpt_pair):
    _, model, stop = gpt_pair
    defaults = model.generation_config()
    assert defaults.eos_token_id == [stop] and defaults.fill_token_id == stop


def test_greedy_equals_transformers_and_stops(gpt_pair):
    reference, model, stop = gpt_pair
    ids, mask = prompts()
    expected = reference.generate(ids, attention_mask=mask, max_new_tokens=12, do_sample=False)
    got = model.generate(ids, attention_mask=mask, max_new_tokens=12)
    assert torch.equal(got, expected)
    new = got[:, ids.shape[1]:]
    assert (new == stop).any()  # the stop token is exercised: after it, a row holds only the filler
    for row in new:
        hits = (row == stop).nonzero()
        if len(hits):
            assert (row[hits[0]:] == stop).all()


@pytest.mark.parametrize("length_penalty, early_stopping", [(1.0, False), (0.5, True), (2.0, False),
                                                            (1.3, "never"), (-0.5, True)])
def test_beam_search_equals_transformers(gpt_pair, length_penalty, early_stopping):
    reference, model, _ = gpt_pair
    ids, mask = prompts()
    settings = dict(max_new_tokens=10, num_beams=3, length_penalty=length_penalty, early_stopping=early_stopping)
    expected = reference.generate(ids, attention_mask=mask, do_sample=False, **settings)
    got = model.generate(ids, attention_mask=mask, **settings)
    assert torch.equal(got, expected)


def test_repetition_penalty_in_greedy_and_beams_equals_transformers(gpt_pair):
    reference, model, _ = gpt_pair
    ids, mask = prompts()
    for beams in (1, 2):
        settings = dict(max_new_tokens=8, num_beams=beams, repetition_penalty=1.7)
        assert torch.equal(model.generate(ids, attention_mask=mask, **settings),
                           reference.generate(ids, attention_mask=mask, do_sample=False, **settings))


def test_seeded_sampling_draws_the_same_tokens(gpt_pair):
    reference, model, _ = gpt_pair
    ids, mask = prompts()
    settings = dict(max_new_tokens=10, do_sample=True, temperature=0.8, top_k=20, top_p=0.9)
    torch.manual_seed(5)
    expected = reference.generate(ids, attention_mask=mask, **settings)
    torch.manual_seed(5)
    got = model.generate(ids, attention_mask=mask, **settings)
    assert torch.equal(got, expected)
    torch.manual_seed(6)
    assert not torch.equal(model.generate(ids, attention_mask=mask, **settings), got)  # the seed matters


def test_processors_equal_transformers_processors():
    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(4, VOCAB, generator=generator) * 3
    tokens = torch.randint(0, VOCAB, (4, 7), generator=generator)
    cases = [
        (processors.repetition_penalty(tokens, scores, 1.3), hf.RepetitionPenaltyLogitsProcessor(1.3)),
        (processors.temperature(scores, 0.7), hf.TemperatureLogitsWarper(0.7)),
        (processors.top_k(scores, 9), hf.TopKLogitsWarper(9)),
        (processors.top_p(scores, 0.8), hf.TopPLogitsWarper(0.8)),
        (processors.top_p(scores, 0.01, keep=2), hf.TopPLogitsWarper(0.01, min_tokens_to_keep=2)),
    ]
    for mine, theirs in cases:
        assert torch.equal(mine, theirs(tokens, scores.clone()))
    kept = torch.isfinite(processors.top_p(scores, 0.8)).sum(dim=1)
    assert (kept >= 1).all() and (kept < VOCAB).all()


def test_cache_off_gives_the_same_tokens(gpt_pair):
    _, model, _ = gpt_pair
    ids, mask = prompts()
    for beams in (1, 3):
        cached = model.generate(ids, attention_mask=mask, max_new_tokens=8, num_beams=beams)
        assert torch.equal(model.generate(ids, attention_mask=mask, max_new_tokens=8, num_beams=beams,
                                          use_cache=False), cached)


def test_streamer_sees_each_step(gpt_pair):
    _, model, _ = gpt_pair
    ids, _ = prompts()
    seen = []
    out = model.generate(ids[:1], max_new_tokens=6, eos_token_id=[], streamer=seen.append)
    assert torch.equal(torch.stack(seen, dim=1), out[:, 1 * ids.shape[1]:])
    assert out.shape == (1, ids.shape[1] + 6)


def test_any_stepper_drives_the_search():
    """The search knows only the Stepper interface: a bigram table (token t → t + 1 most likely) counts up."""

    class Counting:
        def next_logits(self, tokens):
            return torch.nn.functional.one_hot((tokens[:, -1] + 1) % 10, 10).float() * 5

        def reorder(self, rows):
            pass

    prompt = torch.tensor([[2], [6]])
    out = generate(Counting(), prompt, GenerationConfig(max_new_tokens=5, eos_token_id=9, pad_token_id=0))
    assert out.tolist() == [[2, 3, 4, 5, 6, 7], [6, 7, 8, 9, 0, 0]]
    beams = generate(Counting(), prompt, GenerationConfig(max_new_tokens=4, num_beams=2))
    assert beams.tolist() == [[2, 3, 4, 5, 6], [6, 7, 8, 9, 0]]


@pytest.mark.parametrize("settings, message", [
    (dict(max_new_tokens=0), "max_new_tokens must be an integer ≥ 1"),
    (dict(temperature=0.0), "temperature must be a number > 0"),
    (dict(top_p=1.5), r"top_p must lie in \(0, 1\]"),
    (dict(eos_token_id=[VOCAB + 5]), "stop token 106 is outside the vocabulary of 101"),
    (dict(num_beams=VOCAB + 1), "num_beams=102 exceeds the vocabulary of 101"),
    (dict(max_new_tokens=39), "needs 45 positions but the model has 40"),
    (dict(early_stopping="sometimes"), "early_stopping must be"),
    (dict(beams=3), "unknown generation setting"),
])
def test_bad_settings_are_clear_errors(gpt_pair, settings, message):
    _, model, _ = gpt_pair
    ids, _ = prompts()
    with pytest.raises(ValueError, match=message):
        model.generate(ids, **settings)


def test_bad_prompts_are_clear_errors(gpt_pair):
    _, model, _ = gpt_pair
    with pytest.raises(ValueError, match="empty prompt"):
        model.generate(torch.zeros(1, 0, dtype=torch.long))
    with pytest.raises(ValueError, match="needs 50 positions"):
        model.generate(torch.ones(1, 45, dtype=torch.long), max_new_tokens=5)
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 101\)"):
        model.generate(torch.tensor([[3, 500]]))
    with pytest.raises(ValueError, match="2-D"):
        model.generate(torch.tensor([3, 4]))
