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
    defaults = model.generation_config
    assert defaults.eos_token_id == [stop] and defaults.fill_token_id == stop
    ids, _ = prompts()
    model.generation_config = defaults.replace(max_new_tokens=3, eos_token_id=[])  # as transformers' attribute
    try:
        assert model.generate(ids[:1]).shape == (1, ids.shape[1] + 3)
    finally:
        model.generation_config = defaults
    with pytest.raises(ValueError, match="must be a GenerationConfig"):
        model.generation_config = {"max_new_tokens": 3}


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


def test_length_and_ngram_constraints_equal_transformers(gpt_pair):
    reference, model, stop = gpt_pair
    ids, mask = prompts()
    for beams in (1, 3):
        settings = dict(max_new_tokens=9, num_beams=beams, no_repeat_ngram_size=2, min_new_tokens=3,
                        forced_eos_token_id=stop)
        got = model.generate(ids, attention_mask=mask, **settings)
        assert torch.equal(got, reference.generate(ids, attention_mask=mask, do_sample=False, **settings))
        assert not (got[:, ids.shape[1]:ids.shape[1] + 3] == stop).any()  # min_new_tokens


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
    settings |= dict(num_beams=3, repetition_penalty=1.2)  # beam sampling: draws among all beams' continuations
    torch.manual_seed(7)
    expected = reference.generate(ids, attention_mask=mask, **settings)
    torch.manual_seed(7)
    assert torch.equal(model.generate(ids, attention_mask=mask, **settings), expected)


def test_processors_equal_transformers_processors():
    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(4, VOCAB, generator=generator) * 3
    tokens = torch.randint(0, VOCAB, (4, 7), generator=generator)
    cases = [
        (processors.repetition_penalty(tokens, scores, 1.3), hf.RepetitionPenaltyLogitsProcessor(1.3)),
        (processors.repetition_penalty(tokens, scores, 1.3, padding=torch.tensor([0, 2, 3, 0])),  # left padding
         hf.RepetitionPenaltyLogitsProcessor(1.3, prompt_ignore_length=torch.tensor([0, 2, 3, 0]))),
        (processors.temperature(scores, 0.7), hf.TemperatureLogitsWarper(0.7)),
        (processors.top_k(scores, 9), hf.TopKLogitsWarper(9)),
        (processors.top_p(scores, 0.8), hf.TopPLogitsWarper(0.8)),
        (processors.top_p(scores, 0.01, keep=2), hf.TopPLogitsWarper(0.01, min_tokens_to_keep=2)),
    ]
    repeats = torch.tensor([[5, 6, 7, 5, 6, 8, 5], [1, 2, 3, 4, 5, 6, 7], [9, 9, 9, 9, 9, 9, 9], [3, 4, 3, 4, 3, 4, 3]])
    cases += [
        (processors.no_repeat_ngram(repeats, scores, 2), hf.NoRepeatNGramLogitsProcessor(2)),
        (processors.no_repeat_ngram(repeats, scores, 3), hf.NoRepeatNGramLogitsProcessor(3)),
        (processors.force_token(scores, 4), hf.ForcedEOSTokenLogitsProcessor(8, 4)),
    ]
    for mine, theirs in cases:
        inputs = repeats if isinstance(theirs, (hf.NoRepeatNGramLogitsProcessor, hf.ForcedEOSTokenLogitsProcessor)) \
            else tokens
        assert torch.equal(mine, theirs(inputs, scores.clone()))
    assert torch.isinf(processors.no_repeat_ngram(repeats, scores, 2)[0, 6])  # 5 → 6 was seen: banned after 5
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


def test_cli_streams_the_same_tokens(gpt_pair, tmp_path, capsys):
    from bertkit.cli import main

    _, model, stop = gpt_pair
    model.save_pretrained(tmp_path)
    ids, _ = prompts()
    prompt = " ".join(str(i) for i in ids[0].tolist())
    assert main(["generate", "--model", str(tmp_path), "--ids", prompt, "--max-new-tokens", "7", "--stop"]) == 0
    expected = model.generate(ids[:1], max_new_tokens=7, eos_token_id=[])[0, ids.shape[1]:]
    assert capsys.readouterr().out.split() == [str(t) for t in expected.tolist()]
    assert main(["generate", "--model", str(tmp_path), "--ids", "", "--max-new-tokens", "3"]) == 2
    assert "empty prompt" in capsys.readouterr().err
    assert main(["generate", "--model", str(tmp_path), "--ids", "1 2 3", "--max-new-tokens", "3", "--stop", "500"]) == 2
    assert "stop token 500 is outside the vocabulary" in capsys.readouterr().err


def test_cli_decodes_text_and_truncates_long_prompts(minilm_dir, tmp_path, capsys):
    """A GPT over the MiniLM WordPiece vocabulary: the prompt is tokenized, the continuation printed as text."""
    from bertkit.cli import main
    from bertkit.tokenization import BertTokenizer

    tokenizer = BertTokenizer.from_pretrained(minilm_dir)
    config = bertkit.BertConfig.from_dict(dict(model_type="gpt2", vocab_size=len(tokenizer.vocab), n_embd=12,
                                               n_head=2, n_layer=1, n_positions=16, eos_token_id=None))
    torch.manual_seed(0)
    model = bertkit.GPT2LMHeadModel(config)
    model.save_pretrained(tmp_path, tokenizer=tokenizer)
    text = "the quick brown fox jumps over the lazy dog again and again and again"
    assert main(["generate", "--model", str(tmp_path), text, "--max-new-tokens", "4"]) == 0
    captured = capsys.readouterr()
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert "truncated on the left to its last 12" in captured.err
    expected = model.generate(torch.tensor([ids[-12:]]), max_new_tokens=4)[0, 12:]
    assert captured.out.strip() == tokenizer.decode(expected.tolist(), skip_special_tokens=True).strip()


def test_cli_shows_the_next_token_distribution(gpt_pair, tmp_path, capsys):
    from bertkit.cli import main

    _, model, _ = gpt_pair
    model.save_pretrained(tmp_path)
    assert main(["generate", "--model", str(tmp_path), "--ids", "5 6 7", "--show-next", "3"]) == 0
    shown = capsys.readouterr().out.splitlines()[1].split()[1:]
    probabilities = model(torch.tensor([[5, 6, 7]])).logits[0, -1].softmax(-1)
    top = probabilities.topk(3)
    assert shown[0::2] == [str(i) for i in top.indices.tolist()]
    assert [float(p) for p in shown[1::2]] == pytest.approx(top.values.tolist(), rel=1e-2)


def test_bert_decoder_generates_as_transformers_bert_lm_head(tmp_path):
    """AutoModelForCausalLM on a BERT folder with is_decoder: transformers' BertLMHeadModel, logits and search."""
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=VOCAB, hidden_size=24, num_hidden_layers=2, num_attention_heads=3,
                                     intermediate_size=37, max_position_embeddings=40, is_decoder=True,
                                     attn_implementation="eager", eos_token_id=None)
    reference = transformers.BertLMHeadModel(config).eval()
    reference.save_pretrained(tmp_path)
    model = bertkit.AutoModelForCausalLM.from_pretrained(tmp_path)
    assert type(model).__name__ == "BertLMHeadModel"
    ids, mask = prompts()
    with torch.no_grad():
        assert torch.allclose(model(ids, labels=ids).logits, reference(ids).logits, atol=1e-5)
        assert torch.allclose(model(ids, labels=ids).loss, reference(ids, labels=ids).loss, atol=1e-5)
    for beams in (1, 3):
        settings = dict(max_new_tokens=8, num_beams=beams)
        expected = reference.generate(ids, attention_mask=mask, do_sample=False, pad_token_id=0, **settings)
        assert torch.equal(model.generate(ids, attention_mask=mask, **settings), expected)
    with pytest.raises(ValueError, match="needs is_decoder: true"):
        bertkit.BertLMHeadModel(bertkit.BertConfig(vocab_size=VOCAB, hidden_size=24, num_attention_heads=3))


@pytest.mark.parametrize("top_k", [0, 9])
def test_sampling_warpers_run_in_transformers_order(top_k):
    """temperature → top-k → top-p, as transformers' chain: the order decides the nucleus (a sharper distribution
    keeps fewer tokens under the same top-p)."""
    generator = torch.Generator().manual_seed(1)
    scores = torch.randn(4, VOCAB, generator=generator) * 2
    tokens = torch.randint(0, VOCAB, (4, 5), generator=generator)
    config = GenerationConfig(do_sample=True, temperature=0.5, top_k=top_k, top_p=0.9, max_new_tokens=8)
    chain = [hf.TemperatureLogitsWarper(0.5)] + ([hf.TopKLogitsWarper(top_k)] if top_k else []) + \
        [hf.TopPLogitsWarper(0.9)]
    expected = scores.clone()
    for warper in chain:
        expected = warper(tokens, expected)
    got = processors.process(tokens, scores.clone(), config, prompt_length=5)
    assert torch.equal(torch.isfinite(got), torch.isfinite(expected))
    torch.testing.assert_close(got[torch.isfinite(got)], expected[torch.isfinite(expected)])
    cooled_after = processors.top_p(scores, 0.9) / 0.5  # the wrong order keeps a wider nucleus
    assert torch.isfinite(cooled_after).sum() > torch.isfinite(got).sum()


def test_processors_at_their_edges_equal_transformers():
    """The edges a wrong comparison would move: top-k of 1, top-p at an exact tie with 1 − p, an n-gram as long as
    the sequence, the whole chain with penalty 2 and top-k 1."""
    uniform = torch.zeros(2, 4)  # probabilities exactly 0.25: cumulative 0.25 = 1 − 0.75
    assert torch.equal(processors.top_p(uniform, 0.75), hf.TopPLogitsWarper(0.75)(None, uniform.clone()))
    assert int(torch.isfinite(processors.top_p(uniform, 0.75)).sum()) == 2 * 3
    scores = torch.randn(3, VOCAB, generator=torch.Generator().manual_seed(2))
    assert torch.equal(processors.top_k(scores, 1), hf.TopKLogitsWarper(1)(None, scores.clone()))
    pair = torch.tensor([[5, 5], [5, 6], [7, 7]])
    assert torch.equal(processors.no_repeat_ngram(pair, scores, 2), hf.NoRepeatNGramLogitsProcessor(2)(pair, scores))
    assert torch.isinf(processors.no_repeat_ngram(pair, scores, 2)[0, 5])  # 5 → 5 seen: 5 banned after 5
    tokens = torch.randint(0, VOCAB, (3, 6), generator=torch.Generator().manual_seed(3))
    config = GenerationConfig(do_sample=True, repetition_penalty=2.0, top_k=1, max_new_tokens=4)
    expected = hf.TopKLogitsWarper(1)(tokens, hf.RepetitionPenaltyLogitsProcessor(2.0)(tokens, scores.clone()))
    assert torch.equal(processors.process(tokens, scores, config, prompt_length=6), expected)
    config = GenerationConfig(min_new_tokens=2, eos_token_id=[3, 4], max_new_tokens=9)
    for prompt_length in (6, 5, 4):  # 0, 1 and 2 tokens generated: stop tokens forbidden, then allowed
        reference = hf.MinNewTokensLengthLogitsProcessor(prompt_length, 2, [3, 4])(tokens, scores.clone())
        assert torch.equal(processors.process(tokens, scores, config, prompt_length), reference)


def test_each_processor_alone_and_the_kept_tokens_equal_transformers():
    """One processor at a time through ``process`` (so a skipped one shows), and ``keep`` reaching top-k / top-p."""
    scores = torch.randn(3, VOCAB, generator=torch.Generator().manual_seed(4)) * 2
    tokens = torch.randint(0, VOCAB, (3, 6), generator=torch.Generator().manual_seed(5))
    cases = [(dict(repetition_penalty=2.0), 1, hf.RepetitionPenaltyLogitsProcessor(2.0)),
             (dict(do_sample=True, temperature=2.0, top_k=0), 1, hf.TemperatureLogitsWarper(2.0)),
             (dict(do_sample=True, top_k=1), 2, hf.TopKLogitsWarper(1, min_tokens_to_keep=2)),
             (dict(do_sample=True, top_k=0, top_p=0.01), 2, hf.TopPLogitsWarper(0.01, min_tokens_to_keep=2))]
    for settings, keep, reference in cases:
        config = GenerationConfig(max_new_tokens=4, **settings)
        got = processors.process(tokens, scores, config, prompt_length=6, keep=keep)
        assert torch.equal(got, reference(tokens, scores.clone())), settings
    forced = GenerationConfig(forced_bos_token_id=7, max_new_tokens=4)
    first = processors.process(tokens[:, :1], scores, forced, prompt_length=1)
    assert torch.equal(first, hf.ForcedBOSTokenLogitsProcessor(7)(tokens[:, :1], scores.clone()))
    assert torch.equal(processors.process(tokens[:, :2], scores, forced, prompt_length=1), scores)  # only once
