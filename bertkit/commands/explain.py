"""``bertkit explain WHAT TEXT``: a step of the method shown on the user's own text — masking, the attention
kernels' patterns, an encoder-decoder batch's masks, a Unigram model's segmentations."""

from __future__ import annotations

import argparse


def cmd_explain(args: argparse.Namespace) -> None:
    """Show one masked training instance, position by position (or draw the attention kernels' patterns)."""
    if args.what == "attention-cost":
        from .attention_cost import cmd_attention_cost

        args.output = args.output or "attention-patterns.png"
        return cmd_attention_cost(args)
    if args.what == "masks":
        from ..seq2seq.explain import cmd_explain_masks

        return cmd_explain_masks(args)
    if args.what == "segment":
        from ..tokenization.sp_explain import draw_segment, explain_segment, load_processor

        if not args.model:
            raise ValueError("explain segment needs --model: a SentencePiece .model file or a folder with one")
        processor, text = load_processor(args.model), " ".join(args.text)
        print(explain_segment(processor, text, args.nbest, args.alpha, args.samples, args.seed))
        picture = draw_segment(processor, text, args.output or "segment.png", args.nbest, args.alpha, args.samples,
                               args.seed)
        print(f"wrote {picture}")
        return None
    from ..assets import default_model_dir
    from ..pretraining import MaskingConfig
    from ..pretraining.explain import explain_masking
    from ..tokenization import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.model or default_model_dir())
    masking = MaskingConfig(strategy=args.strategy, mlm_probability=args.mlm_probability)
    units = None
    if args.units_file:
        from ..pretraining.units import load_units

        units = load_units(args.units_file)
    print(explain_masking(" ".join(args.text), tokenizer, masking, seed=args.seed, units=units))


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``bertkit explain``."""
    from ..pretraining.masking import STRATEGIES

    p = sub.add_parser("explain", help="explain a pretraining step on your text: `explain masking TEXT`; "
                       "`explain attention-cost TEXT`: each attention kernel's pattern as a PNG; "
                       "`explain masks \"SRC => TGT\" …`: an encoder-decoder batch's masks and the sinusoids as a PNG; "
                       "`explain segment WORD --model SPM`: a Unigram model's n-best segmentations and samples")
    p.add_argument("what", choices=["masking", "attention-cost", "masks", "segment"])
    p.add_argument("text", nargs="+")
    p.add_argument("--strategy", default="token", choices=STRATEGIES)
    p.add_argument("--mlm-probability", type=float, default=0.15)
    p.add_argument("--units-file", help="masking --strategy phrase / entity: the phrases or entities, one per line")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", help="whose vocab.txt to use; default: the installed MiniLM")
    p.add_argument("--output", help="attention-cost / masks / segment: the PNG to write (default "
                   "attention-patterns.png / masks.png / segment.png)")
    p.add_argument("--nbest", type=int, default=5, help="segment: how many best segmentations")
    p.add_argument("--samples", type=int, default=5, help="segment: how many sampled segmentations")
    p.add_argument("--alpha", type=float, default=1.0, help="segment: sampling sharpness (P ∝ exp(alpha·score))")
    p.set_defaults(run=cmd_explain)
