"""``bertkit predict --model DIR FILE``: run a fine-tuned model over a file, one JSON line per input."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..atomic import write_text_atomic


def read_inputs(path: Path, kind: str, columns: dict[str, str] | None = None) -> list[dict]:
    """A .txt file (one text a line), or .csv / .tsv / .jsonl rows with the task's columns (``columns`` maps a
    field to the file's column, as in fine-tuning: ``{"text": "review"}``)."""
    if not path.is_file():
        raise FileNotFoundError(f"no such input file: {path}")
    if path.suffix.lower() == ".txt":
        from ..textio import read_texts

        rows = [{"text": line} for line in read_texts(path)]
    else:
        from ..finetuning.data import read_rows

        rows = read_rows(path)
    if not rows:
        raise ValueError(f"{path} holds no inputs")
    if columns and path.suffix.lower() != ".txt":
        rows = [{**row, **{field: row[column] for field, column in columns.items() if column in row}}
                for row in rows]
    needed = {"qa": ("question", "context")}.get(kind, ("text",))
    missing = [c for c in needed if c not in rows[0]]
    if missing:
        raise ValueError(f"{path} has no column {missing[0]!r}; its columns are {sorted(rows[0])}")
    return rows


def rounded(value, digits: int = 4):
    """Probabilities and scores to ``digits`` significant digits (0.9987, 1.234e-05): what a reader compares;
    float64's 16 digits are noise beyond the model's float32."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v, digits) for v in value]
    return value


def run(args: argparse.Namespace) -> None:
    from ..finetuning.predict import QuestionAnswerer, SequenceClassifier, load_predictor

    predictor = load_predictor(args.model, args.batch_size, args.device)
    kind = "qa" if isinstance(predictor, QuestionAnswerer) else "other"
    # the columns the model was trained with, unless given here
    given = [item.split("=", 1) for item in args.columns or []]
    if any(len(pair) != 2 for pair in given):
        raise ValueError("--columns takes FIELD=COLUMN pairs, e.g. --columns text=review")
    from ..finetuning.data import check_columns

    roles = ("question", "context") if kind == "qa" else ("text", "text_pair")
    columns = dict(predictor.settings.columns) | check_columns(dict(given), roles, "of predict")
    rows = read_inputs(Path(args.file), kind, columns)
    if kind == "qa":
        outputs = predictor.predict([r["question"] for r in rows], [r["context"] for r in rows])
    elif isinstance(predictor, SequenceClassifier):
        pairs = [r["text_pair"] for r in rows] if "text_pair" in rows[0] else None
        outputs = predictor.predict([r["text"] for r in rows], pairs)
    else:
        outputs = predictor.predict([r["text"] for r in rows])
    lines = "".join(json.dumps({**row, **rounded(out)}, ensure_ascii=False) + "\n"
                    for row, out in zip(rows, outputs, strict=True))
    if args.output:
        write_text_atomic(args.output, lines)
        print(f"wrote {len(rows)} predictions to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(lines)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("predict", help="predict with a fine-tuned model (labels, entities or answers)")
    p.add_argument("file", help="inputs: .txt (one text a line) or .csv / .tsv / .jsonl with text (and text_pair) "
                                "or question and context columns")
    p.add_argument("--model", required=True, help="a fine-tuned folder (bertkit finetune's output_dir/best)")
    p.add_argument("--output", "-o", help="write JSON lines here instead of stdout")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="auto", help="auto (a GPU when there is one), cpu, cuda or cuda:N")
    p.add_argument("--columns", nargs="+", metavar="FIELD=COLUMN", help="which column holds text / text_pair / "
                   "question / context (default: the mapping the model was fine-tuned with)")
    p.set_defaults(run=run)
