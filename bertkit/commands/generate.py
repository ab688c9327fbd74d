"""``bertkit generate --model DIR "prompt"``: continue a prompt with a causal LM, printing tokens as they come."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def load_tokenizer(folder: Path) -> Any:
    """The folder's tokenizer (bertkit.AutoTokenizer), or a clear error pointing at ``--ids``."""
    from ..tokenization import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read a tokenizer from {folder} ({error}); give the prompt as token ids with "
                         "--ids, e.g. --ids \"464 2068 7586\"") from None


def prompt_ids(args: argparse.Namespace, tokenizer: Any, positions: int) -> list[int]:
    """The prompt's token ids, left-truncated (keeping its end) so that prompt + new tokens fit the positions."""
    if args.ids:
        try:
            ids = [int(x) for x in args.prompt.replace(",", " ").split()]
        except ValueError:
            raise ValueError(f"--ids: the prompt must be token ids separated by spaces, got {args.prompt!r}") from None
    else:
        ids = tokenizer.encode(args.prompt, add_special_tokens=False)
    if not ids:
        raise ValueError("empty prompt: give some text (or --ids with at least one token id)")
    room = positions - (0 if args.show_next else args.max_new_tokens)
    if room < 1:
        raise ValueError(f"--max-new-tokens {args.max_new_tokens} leaves no room for a prompt in the model's "
                         f"{positions} positions")
    if len(ids) > room:
        print(f"[prompt truncated on the left to its last {room} of {len(ids)} tokens]", file=sys.stderr)
        ids = ids[-room:]
    return ids


class Printer:
    """Prints the text of the tokens generated so far as it grows (decoding the whole continuation each time, so
    that WordPiece ``##`` pieces and byte-level BPE characters join correctly)."""

    def __init__(self, tokenizer: Any, stops: list[int]):
        self.tokenizer, self.stops = tokenizer, set(stops)
        self.ids: list[int] = []
        self.printed = ""
        self.done = False

    def __call__(self, tokens: Any) -> None:
        token = int(tokens[0])
        if self.done or token in self.stops:
            self.done = True
            return
        self.ids.append(token)
        if self.tokenizer is None:
            print(token, end=" ", flush=True)
            return
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if text.startswith(self.printed):
            print(text[len(self.printed):], end="", flush=True)
        self.printed = text


def next_tokens(model: Any, tokenizer: Any, prompt: Any, k: int) -> list[tuple[str, float]]:
    """The k most likely next tokens after the prompt, with their probabilities (the LM's fill-mask)."""
    import torch

    with torch.no_grad():
        probabilities = model(prompt, logits_to_keep=1).logits[0, -1].softmax(-1)
    top = probabilities.topk(min(k, len(probabilities)))
    names = [str(i) for i in top.indices.tolist()] if tokenizer is None else \
        tokenizer.convert_ids_to_tokens(top.indices.tolist())
    return list(zip(names, top.values.tolist(), strict=True))


def run_generate(args: argparse.Namespace) -> None:
    import torch

    from ..model import AutoModelForCausalLM

    folder = Path(args.model)
    if args.threads:
        torch.set_num_threads(args.threads)
    model = AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = None if args.ids else load_tokenizer(folder)
    settings = {k: v for k, v in dict(
        max_new_tokens=args.max_new_tokens, do_sample=args.do_sample, num_beams=args.num_beams,
        temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, repetition_penalty=args.repetition_penalty,
        length_penalty=args.length_penalty, early_stopping=args.early_stopping, use_cache=not args.no_cache,
    ).items() if v is not None}
    if args.stop is not None:
        settings["eos_token_id"] = args.stop
    config = model.generation_config.replace(**settings)
    ids = prompt_ids(args, tokenizer, model.config.max_position_embeddings)
    if args.seed is not None:
        torch.manual_seed(args.seed)
    prompt = torch.tensor([ids])
    if args.show_next:
        print(args.prompt)
        print("  next: " + "  ".join(f"{token} {p:.3g}" for token, p in next_tokens(model, tokenizer, prompt,
                                                                                    args.show_next)))
        return
    if args.echo:
        print(args.prompt, end=" ", flush=True)
    if config.num_beams > 1:  # the best beam is known only at the end
        out = model.generate(prompt, generation_config=config)
        printer = Printer(tokenizer, config.eos_token_id)
        for token in out[0, len(ids):]:
            printer(token[None])
    else:
        model.generate(prompt, generation_config=config, streamer=Printer(tokenizer, config.eos_token_id))
    print(flush=True)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "generate", help="continue a prompt with a causal language model (GPT-2), streaming the tokens",
        description="Greedy by default; --do-sample samples (with --temperature / --top-k / --top-p), --num-beams N "
                    "searches N beams (printed at the end). A prompt longer than the model's positions minus "
                    "--max-new-tokens is truncated on the left (its end is kept), with a note on stderr.")
    p.add_argument("prompt", help="the text to continue (with --ids: token ids separated by spaces)")
    p.add_argument("--model", required=True, help="a causal LM folder (config.json model_type gpt2 + weights)")
    p.add_argument("--ids", action="store_true", help="the prompt is token ids; print ids, not text")
    p.add_argument("--max-new-tokens", type=int, default=50)
    p.add_argument("--do-sample", action="store_true", default=None, help="sample instead of greedy decoding")
    p.add_argument("--num-beams", type=int)
    p.add_argument("--temperature", type=float)
    p.add_argument("--top-k", type=int)
    p.add_argument("--top-p", type=float)
    p.add_argument("--repetition-penalty", type=float)
    p.add_argument("--length-penalty", type=float)
    p.add_argument("--early-stopping", type=lambda v: v if v == "never" else v.lower() in ("1", "true", "yes"),
                   help="beam search: true, false or never")
    p.add_argument("--stop", type=int, nargs="*", help="stop token ids (default: the model's end-of-text token)")
    p.add_argument("--seed", type=int, help="seed the sampler for a reproducible draw")
    p.add_argument("--no-cache", action="store_true", help="recompute every position at each step (slower)")
    p.add_argument("--echo", action="store_true", help="print the prompt before the continuation")
    p.add_argument("--show-next", type=int, metavar="K", help="print the K most likely next tokens instead")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.set_defaults(run=run_generate)
