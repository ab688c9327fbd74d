"""The decoding loops over a :class:`Stepper`: greedy / sampling (:func:`sample`) and beam search
(:func:`beam_search`), with transformers' semantics step for step, so that the same model gives the same tokens.

Beam search keeps, per input, ``num_beams`` running hypotheses and the ``num_beams`` best finished ones. Each step
scores every (beam, token) continuation by its summed log-probability, takes the best K = max(2, 1 + stop tokens) ·
beams of them (enough that ``num_beams`` remain unfinished), moves those ending in a stop token to the finished set
(score / generated length ** ``length_penalty``) and continues the best ``num_beams`` others. It ends when every
input's finished set can no longer improve (``early_stopping``: True — the set is full; False — the best running
beam, scored at the current length, cannot beat the worst finished; "never" — nor at the longest length).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .config import GenerationConfig
from .processors import process
from .stepper import Stepper

Streamer = Callable[[torch.Tensor], None]  # receives each step's (rows,) new tokens
_NEG = -1.0e9  # transformers' "impossible" score: added, not −∞, so that arithmetic stays finite


def generate(stepper: Stepper, prompt: torch.Tensor, config: GenerationConfig, streamer: Streamer | None = None,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """(rows, t) prompt → (rows, t + generated) token ids: the prompt followed by what the model wrote.

    Rows that end early (a stop token) are filled with ``config.fill_token_id``; with beams, each row is its
    input's best finished hypothesis. ``streamer`` sees each step's new tokens (greedy and sampling only).
    """
    if not isinstance(prompt, torch.Tensor) or prompt.dim() != 2 or prompt.is_floating_point():
        raise ValueError("the prompt must be a 2-D (rows, tokens) tensor of token ids")
    if prompt.shape[1] == 0:
        raise ValueError("empty prompt: give at least one token (GPT-2 starts from its <|endoftext|> token)")
    if config.num_beams > 1:
        if streamer is not None:
            raise ValueError("beam search cannot stream: its best hypothesis is known only at the end")
        return beam_search(stepper, prompt, config, generator)
    return sample(stepper, prompt, config, streamer, generator)


def _stopped(tokens: torch.Tensor, config: GenerationConfig) -> torch.Tensor:
    """Whether each token is a stop token."""
    if not config.eos_token_id:
        return torch.zeros_like(tokens, dtype=torch.bool)
    return torch.isin(tokens, torch.tensor(config.eos_token_id, device=tokens.device))


def sample(stepper: Stepper, prompt: torch.Tensor, config: GenerationConfig, streamer: Streamer | None = None,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """Greedy decoding (``do_sample=False``: the most likely token) or sampling from the processed distribution."""
    sequences = prompt
    unfinished = torch.ones(prompt.shape[0], dtype=torch.bool, device=prompt.device)
    logits = stepper.next_logits(prompt)
    for step in range(config.max_new_tokens):
        scores = process(sequences, logits, config)
        if config.do_sample:
            chosen = torch.multinomial(scores.softmax(dim=-1), 1, generator=generator).squeeze(1)
        else:
            chosen = scores.argmax(dim=-1)
        if config.eos_token_id:
            chosen = torch.where(unfinished, chosen, config.fill_token_id)
        sequences = torch.cat([sequences, chosen[:, None]], dim=1)
        if streamer is not None:
            streamer(chosen)
        unfinished &= ~_stopped(chosen, config)
        if not bool(unfinished.any()) or step == config.max_new_tokens - 1:
            break
        logits = stepper.next_logits(chosen[:, None])
    return sequences


def _gather(tensor: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Select along the beam dimension (dim 1) of a (batch, beams, …) tensor."""
    while index.dim() < tensor.dim():
        index = index.unsqueeze(-1)
    return torch.take_along_dim(tensor, index, dim=1)


def beam_search(stepper: Stepper, prompt: torch.Tensor, config: GenerationConfig,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Beam search (``num_beams`` > 1), or beam sampling with ``do_sample``; returns each input's best hypothesis."""
    batch, prompt_len = prompt.shape
    beams, device = config.num_beams, prompt.device
    max_length = prompt_len + config.max_new_tokens
    keep = max(2, 1 + len(config.eos_token_id)) * beams  # continuations kept per step: ≥ beams stay unfinished
    top_beams = torch.arange(keep, device=device) < beams  # only these may enter the finished set
    # transformers' filler of unwritten positions (its `pad or eos[0] if eos else -1`, precedence included)
    fill = (config.fill_token_id or config.eos_token_id[0]) if config.eos_token_id else -1
    stepper.reorder(torch.arange(batch, device=device).repeat_interleave(beams))

    running = torch.full((batch, beams, max_length), fill, dtype=torch.long, device=device)
    running[:, :, :prompt_len] = prompt[:, None, :]
    finished = running.clone()
    running_scores = torch.zeros(batch, beams, device=device)
    running_scores[:, 1:] = _NEG  # all beams start equal: only the first one's continuations count
    finished_scores = torch.full((batch, beams), _NEG, device=device)
    is_finished = torch.zeros(batch, beams, dtype=torch.bool, device=device)
    can_improve = torch.ones(batch, 1, dtype=torch.bool, device=device)
    origins = torch.full((batch, beams, config.max_new_tokens), -1, dtype=torch.long, device=device)  # beam per step
    finished_origins = origins.clone()
    hits_stop = torch.zeros(batch, beams, dtype=torch.bool, device=device)

    length = prompt_len
    logits = stepper.next_logits(prompt.repeat_interleave(beams, dim=0))
    while True:
        flat = running[:, :, :length].reshape(batch * beams, length)
        log_probs = process(flat, logits.log_softmax(dim=-1), config, keep=len(config.eos_token_id) + 1
                            if config.eos_token_id else 2)
        vocab = log_probs.shape[-1]
        totals = (log_probs.view(batch, beams, vocab) + running_scores[:, :, None]).view(batch, beams * vocab)

        # the best `keep` continuations over all beams of an input (or sampled without replacement)
        if config.do_sample:
            picked = torch.multinomial(totals.softmax(dim=-1), keep, generator=generator)
            top_scores, order = torch.gather(totals, 1, picked).sort(dim=-1, descending=True)
            picked = picked.gather(1, order)
        else:
            top_scores, picked = torch.topk(totals, keep)
        source = picked // vocab
        top_sequences = _gather(running, source)
        top_sequences[:, :, length] = picked % vocab
        top_origins = _gather(origins, source)
        top_origins[:, :, length - prompt_len] = source + torch.arange(batch, device=device)[:, None] * beams
        ended = _stopped(top_sequences[:, :, length], config) | (length + 1 >= max_length)

        # the unfinished best `beams` continue
        still_running = top_scores + ended.float() * _NEG
        best = torch.topk(still_running, beams)[1]
        running, running_scores = _gather(top_sequences, best), _gather(still_running, best)
        origins = _gather(top_origins, best)

        # the finished ones enter the finished set if they beat its worst
        just_finished = ended & top_beams[None, :]
        candidate = top_scores / ((length + 1 - prompt_len) ** config.length_penalty)
        full = is_finished.all(dim=-1, keepdim=True) & (config.early_stopping is True)
        candidate = candidate + full.float() * _NEG + (~can_improve).float() * _NEG + (~just_finished) * _NEG
        merged = torch.topk(torch.cat([finished_scores, candidate], dim=1), beams)[1]
        finished = _gather(torch.cat([finished, top_sequences], dim=1), merged)
        finished_scores = _gather(torch.cat([finished_scores, candidate], dim=1), merged)
        finished_origins = _gather(torch.cat([finished_origins, top_origins], dim=1), merged)
        is_finished = _gather(torch.cat([is_finished, just_finished], dim=1), merged)
        hits_stop = ended

        length += 1
        can_improve = _can_improve(can_improve, running_scores, finished_scores, is_finished, length, max_length,
                                   prompt_len, config)
        done = not bool(can_improve.any()) or (bool(is_finished.all()) and config.early_stopping is True) \
            or bool(hits_stop.all())
        if done:
            break
        stepper.reorder(origins[:, :, length - 1 - prompt_len].reshape(-1))
        logits = stepper.next_logits(running[:, :, length - 1].reshape(-1, 1))

    best = finished[:, 0]
    generated = int((finished_origins[:, 0] >= 0).sum(dim=1).max())  # the longest kept hypothesis's length
    return best[:, :prompt_len + generated]


def _can_improve(can_improve: torch.Tensor, running_scores: torch.Tensor, finished_scores: torch.Tensor,
                 is_finished: torch.Tensor, length: int, max_length: int, prompt_len: int,
                 config: GenerationConfig) -> torch.Tensor:
    """Whether the best running beam could still beat the worst finished one (transformers' heuristic)."""
    if config.early_stopping == "never" and config.length_penalty > 0:
        best_length = max_length - prompt_len
    else:
        best_length = length - prompt_len
    best_possible = running_scores[:, :1] / (best_length ** config.length_penalty)
    worst = torch.where(is_finished, finished_scores.min(dim=1, keepdim=True)[0], -1.0e9)
    return can_improve & (best_possible > worst).any(dim=-1, keepdim=True)
