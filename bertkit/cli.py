"""``bertkit <command>``: thin argument parsing over the library. Run ``bertkit --help``."""

from __future__ import annotations

import argparse
import importlib
import io
import json
import os
import sys
from pathlib import Path

from .assets import default_model_dir
from .atomic import write_bytes_atomic

# Modules under bertkit/commands/ that add their own subcommands: each has ``register(subparsers) -> None``.
COMMAND_MODULES: list[str] = ["train_tokenizer", "word_model", "pretrain", "explain", "finetune", "predict",
                                 "tune", "serve", "embeddings", "export", "merge_adapter", "generate",
                                 "pretrain_gpt", "seq2seq", "distill", "evaluate"]


def _model_dir(value: str | None) -> Path:
    return Path(value) if value else default_model_dir()


def cmd_tokenize(args: argparse.Namespace) -> None:
    """Print each text's tokens (WordPiece or byte-level BPE, as the folder holds) and ids."""
    from .tokenization import AutoTokenizer
    from .tokenization.display import format_tokens

    tokenizer = AutoTokenizer.from_pretrained(_model_dir(args.model))
    for text in args.texts:
        enc = tokenizer(text, text_pair=args.pair, add_special_tokens=not args.no_special_tokens)
        tokens = tokenizer.convert_ids_to_tokens(enc["input_ids"])
        print(format_tokens(tokens, enc["input_ids"]))


def cmd_encode(args: argparse.Namespace) -> None:
    """Embed texts from the arguments or a file (one text a line) into .npy or JSON lines."""
    from .encoding import SentenceEncoder

    texts = list(args.texts)
    if args.file:
        path = Path(args.file)
        if not path.is_file():
            raise FileNotFoundError(f"no such input file: {path}")
        from .textio import read_texts

        texts += read_texts(path)
    if not texts:
        raise ValueError("nothing to encode: give texts as arguments or --file FILE")
    if args.output is not None and Path(args.output).suffix not in (".npy", ".jsonl"):
        raise ValueError(f"-o {args.output}: write .npy (the vectors) or .jsonl (text + vector per line)")
    encoder = SentenceEncoder.from_pretrained(_model_dir(args.model), device=args.device, precision=args.precision,
                                              compile=args.compile, unpadded=args.unpadded or False)
    layers = [int(x) for x in args.layer.split(",")]
    vectors = encoder.encode(texts, pooling=args.pooling, layer=layers, normalize=args.normalize,
                             prompt_name=args.prompt_name, batch_size=args.batch_size, max_length=args.max_length,
                             show_progress_bar=len(texts) > 1000)
    if args.output is None:
        for text, vector in zip(texts, vectors, strict=True):
            print(json.dumps({"text": text, "embedding": float32_list(vector)}, ensure_ascii=False))
        return
    out = Path(args.output)
    if out.suffix == ".npy":
        import numpy as np

        buffer = io.BytesIO()
        np.save(buffer, vectors)
        write_bytes_atomic(out, buffer.getvalue())
    else:
        pairs = zip(texts, vectors, strict=True)
        lines = (json.dumps({"text": t, "embedding": float32_list(v)}, ensure_ascii=False) for t, v in pairs)
        write_bytes_atomic(out, ("\n".join(lines) + "\n").encode("utf-8"))
    print(f"wrote {len(texts)} embeddings of dimension {vectors.shape[1]} to {out}", file=sys.stderr)


def float32_list(vector) -> list[float]:
    """A float32 vector as the shortest decimals that read back to the same float32 values (stdout and .jsonl
    alike): no float64 noise digits, nothing rounded away."""
    return [float(str(x)) for x in vector.astype("float32")]


def cmd_params(args: argparse.Namespace) -> None:
    """Print the parameter breakdown of a preset or a model folder's config (and plot it)."""
    from .config import BertConfig
    from .model.parameters import format_breakdown, plot_breakdown

    if args.model:
        from .config import Seq2SeqConfig
        from .model.architectures import architecture
        from .model.deberta_v2_architecture import DebertaV2Config
        from .model.modernbert_architecture import ModernBertConfig
        from .model.xlnet_architecture import XLNetConfig
        from .t5_config import T5Config

        path = Path(args.model) / "config.json"
        try:  # an unreadable file: BertConfig.from_json_file names the problem
            model_type = json.loads(path.read_text(encoding="utf-8")).get("model_type")
        except (OSError, ValueError, AttributeError):
            model_type = None
        seq2seq = model_type is not None and architecture(model_type).seq2seq  # T5, BART, …: their own configs
        own = {"t5": T5Config, "xlnet": XLNetConfig, "modernbert": ModernBertConfig,  # configs of their own
               "deberta-v2": DebertaV2Config}
        config = own.get(model_type, Seq2SeqConfig if seq2seq else BertConfig).from_json_file(path)
    else:  # unlike the other commands, no model folder by default: the paper's sizes are what people count
        from .model.deberta_v2_architecture import DebertaV2Config
        from .model.modernbert_architecture import ModernBertConfig
        from .model.xlnet_architecture import XLNetConfig
        from .t5_config import T5Config

        own = {"t5": T5Config, "xlnet": XLNetConfig, "modernbert": ModernBertConfig, "deberta-v2": DebertaV2Config}
        config = own.get(args.arch, BertConfig).preset(args.preset, model_type=args.arch)
        print(f"the {args.arch} {args.preset!r} preset (defaults --arch bert --preset base; --model DIR counts a "
              "folder)", file=sys.stderr)
    if args.peft:  # trainable parameters per PEFT method instead of the breakdown
        from .finetuning.peft_counts import ALL, format_peft_table, plot_peft_table
        from .peft.config import PeftConfig

        methods = ALL if args.peft == "all" else args.peft.split(",")
        settings = PeftConfig(methods[0] if methods[0] in ALL else "lora", r=args.lora_r,
                              adapter_size=args.adapter_size, num_virtual_tokens=args.virtual_tokens)
        for method in methods:
            PeftConfig(method)  # an unknown method: the error lists the known ones
        print(format_peft_table(config, methods, settings))
        if args.plot:
            print(f"wrote {plot_peft_table(config, methods, settings, args.plot)}", file=sys.stderr)
        return
    print(format_breakdown(config, with_heads=args.heads))
    if args.plot:
        print(f"wrote {plot_breakdown(config, args.plot, with_heads=args.heads)}", file=sys.stderr)


def cmd_demo(args: argparse.Namespace) -> None:
    """The tour: tokenization, embeddings and their similarities, parameter counts."""
    from .demo import run_demo

    run_demo(_model_dir(args.model), quick=args.quick)


# Commands that need no torch: when one of them runs, only its own module is registered (the others' options are
# built from configs whose packages import torch, a second of start-up for nothing).
TORCH_FREE = {"tokenize": [], "train-tokenizer": ["train_tokenizer"]}


class Parser(argparse.ArgumentParser):
    """argparse with both spellings of a flag: ``--learning_rate`` reaches ``--learning-rate`` and ``--max-seq-len``
    reaches ``--max_seq_len`` (the subcommands' parsers are of this class too)."""

    def parse_known_args(self, args=None, namespace=None):  # noqa: D102 (argparse's own)
        args = sys.argv[1:] if args is None else list(args)
        known = self._option_string_actions
        spelled = []
        for position, arg in enumerate(args):
            if arg == "--":  # what follows is positional, kept as written
                spelled += args[position:]
                break
            flag, equals, value = arg.partition("=")
            if flag.startswith("--") and flag not in known:
                other = "--" + (flag[2:].replace("_", "-") if "_" in flag else flag[2:].replace("-", "_"))
                if other in known:
                    arg = other + equals + value
            spelled.append(arg)
        return super().parse_known_args(spelled, namespace)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``bertkit`` command line (for ``command``, only what that command needs)."""
    from . import __version__

    parser = Parser(prog="bertkit", description="BERT from raw text to a served model. Run `bertkit COMMAND --help` "
                                                "for a command's options.")
    parser.add_argument("--version", action="version", version=f"bertkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    model_help = "model folder (Hugging Face layout); default: the installed all-MiniLM-L6-v2"

    p = sub.add_parser("tokenize", help="print tokens and ids")
    p.add_argument("texts", nargs="+")
    p.add_argument("--pair", help="a second text, tokenized as [CLS] A [SEP] B [SEP]")
    p.add_argument("--no-special-tokens", action="store_true")
    p.add_argument("--model", help=model_help)
    p.set_defaults(run=cmd_tokenize)

    p = sub.add_parser("encode", help="texts → sentence embeddings (.npy or JSON lines)")
    p.add_argument("texts", nargs="*")
    p.add_argument("--file", help="a text file, one text a line")
    p.add_argument("--output", "-o", help="FILE.npy or FILE.jsonl; default: JSON lines on stdout")
    p.add_argument("--pooling", help="mean, max, cls, mean_sqrt_len_tokens, weightedmean, lasttoken (several "
                   "joined by '+'), or pooled (BERT's pooler); default: the model folder's")
    p.add_argument("--layer", default="-1",
                   help="hidden-state index, or several joined by commas and concatenated (--layer=-2,-1)")
    p.add_argument("--normalize", action=argparse.BooleanOptionalAction,
                   help="L2-normalise each vector (default: as the model folder says)")
    p.add_argument("--prompt-name", help="one of the folder's prompts (default: its default prompt, if any)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int)
    p.add_argument("--precision", default="fp32", type=str.lower, choices=["fp32", "bf16", "int8"],
                   help="fp32 (default), bf16 or int8; falls back to fp32, with a warning, where this CPU has no "
                        "native kernels for it")
    p.add_argument("--compile", action="store_true", help="run the model through torch.compile (slow first start)")
    p.add_argument("--unpadded", nargs="?", const="repad", choices=["repad", "loop", "nested"],
                   help="pack each batch's tokens without padding, attention per sequence (the same vectors; faster "
                        "on texts of mixed lengths); optionally how attention runs (default repad)")
    p.add_argument("--model", help=model_help)
    p.add_argument("--device", default="auto", help="auto (a GPU when there is one), cpu, cuda or cuda:N")
    p.set_defaults(run=cmd_encode)

    p = sub.add_parser("params", help="parameter breakdown of a BERT-family model")
    p.add_argument("--arch", default="bert", choices=["bert", "roberta", "albert", "electra", "distilbert", "ernie",
                                                      "nezha", "xlm", "t5", "xlnet", "roformer", "modernbert",
                                                      "deberta-v2"])
    p.add_argument("--preset", default="base", help="bert, ernie, xlm: tiny mini small medium base large; roberta, "
                   "nezha: base large; albert: base large xlarge xxlarge; electra: small base large (+ -generator); "
                   "distilbert: base; xlm also mlm-en-2048 mlm-17-1280 mlm-100-1280; t5: small base large v1_1-small "
                   "v1_1-base v1_1-large; xlnet: base large; roformer: base; modernbert: base large; "
                   "deberta-v2: (v3's) xsmall small base large (default: base)")
    p.add_argument("--model", help="a model folder whose config.json to count instead of a preset")
    p.add_argument("--heads", action="store_true", help="include the pretraining heads (MLM, NSP / SOP, RTD)")
    p.add_argument("--plot", metavar="PNG", help="also draw the breakdown as a bar chart")
    p.add_argument("--peft", metavar="METHODS", help="trainable parameters per PEFT method instead: lora, houlsby, "
                   "pfeiffer, prefix, ptuning_v2, prompt, ptuning, bitfit, head (several joined by ',') or all")
    p.add_argument("--lora-r", type=int, default=8, help="LoRA rank r (default 8)")
    p.add_argument("--adapter-size", type=int, default=64, help="adapter bottleneck width m (default 64)")
    p.add_argument("--virtual-tokens", type=int, default=20, help="prefix / prompt length n (default 20)")
    p.set_defaults(run=cmd_params)

    p = sub.add_parser("demo", help="tokenize, embed, compare, fine-tune, count, pretrain")
    p.add_argument("--quick", action="store_true", help="seconds instead of minutes for the two training steps")
    p.add_argument("--model", help=model_help)
    p.set_defaults(run=cmd_demo)

    for name in TORCH_FREE.get(command, COMMAND_MODULES):
        importlib.import_module(f"bertkit.commands.{name}").register(sub)
    return parser


def close_flags(parser: argparse.ArgumentParser, unknown: list[str]) -> str:
    """"; did you mean --learning-rate?" for unknown flags that resemble the command's."""
    import difflib

    flags = [f for f in parser._option_string_actions if f.startswith("--")]
    close = [m for arg in unknown if arg.startswith("-")
             for m in difflib.get_close_matches(arg.partition("=")[0], flags, n=1, cutoff=0.7)]
    return f"; did you mean {' or '.join(dict.fromkeys(close))}?" if close else ""


def main(argv: list[str] | None = None) -> int:
    """Entry point: run a command; bad input ends with one clear line and exit code 2."""
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command)
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # the command's own usage, not the top level's (which lists only the commands built for this one)
        command_parser = parser._subparsers._group_actions[0].choices[args.command]
        command_parser.error(f"unrecognized arguments: {' '.join(unknown)}{close_flags(command_parser, unknown)}")
    try:
        args.run(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"bertkit {args.command}: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `bertkit encode … | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except KeyboardInterrupt as interrupt:  # Ctrl-C: one line (a training run's step and checkpoint), no traceback
        describe = getattr(interrupt, "describe", None)
        said = describe(resumable=hasattr(args, "resume")) if describe else "stopped"
        print(f"bertkit {args.command}: interrupted: {said}", file=sys.stderr)
        return 130  # as a shell reports a command ended by SIGINT
    return 0


if __name__ == "__main__":
    sys.exit(main())
