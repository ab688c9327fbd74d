"""Time to quality: held-out MLM loss and top-1 / top-5 masked-token accuracy over a fixed wall-clock budget.

    .venv/bin/python bench/pretrain_quality.py [--minutes 10] [--threads 2] [--evals 10] [--recipe FILE.yaml]

Recipes, each trained in its own process for ``--minutes`` of wall clock (the clock stops while the benchmark
evaluates; data preparation is not counted), on the same training shard of the English corpus (``bertkit corpus
en``; ``make pretrain-en``'s vocabulary):

(a) ``transformers``: transformers' ``BertForMaskedLM`` trained by its own ``Trainer`` as the ``run_mlm`` example
    does by default with ``--line_by_line``: post-LN, AdamW lr 5e-5, linear decay over 3 epochs, no warm-up, batch 8,
    MLM 15 % (80 / 10 / 10) by ``DataCollatorForLanguageModeling``, padding per batch; configs/pretrain-en.yaml's
    model size (mini: 4 layers, hidden 256) and tokenizer, lines cut at its max_seq_length.
(b) ``bertkit``: ``configs/pretrain-en.yaml`` as it is, through ``run_pretraining`` (threads, max_minutes and the
    output folder set here).
(c) ``--recipe FILE.yaml``: a further bertkit recipe, run as (b).

The held-out shard is every 20th document (what eval_fraction 0.05 holds out). Every recipe is scored on the same
fixed evaluation batches: held-out sequences of up to 64 tokens, 15 % of their tokens replaced by [MASK]; the
curves go to ``OUT/curves.jsonl`` and ``OUT/accuracy.png``. At the end each final model is scored on a cloze set
built from the held-out shard (``bertkit evaluate``'s). The time-to-quality ratio is (a)'s minutes over the
minutes (b) needs to reach (a)'s final held-out top-1 accuracy.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bertkit.atomic import write_text_atomic  # noqa: E402
from bertkit.pretraining.cloze import build_cloze, cloze_jsonl, held_out_sentences, read_cloze, score_cloze  # noqa: E402,E501
from bertkit.tokenization import AutoTokenizer  # noqa: E402

CONFIG = ROOT / "configs" / "pretrain-en.yaml"
CORPUS, VOCAB = ROOT / "out/en/corpus.txt", ROOT / "out/en/vocab"
HELD_OUT_EVERY, EVAL_SEQUENCES, EVAL_LENGTH = 20, 256, 64
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "amx_tile")


def cpu_description() -> str:
    """The CPU's name and the vector / matrix flags that decide the kernels torch picks."""
    name, flags = platform.processor() or "unknown CPU", set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                name = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    shown = " ".join(f for f in CPU_FLAGS if f in flags) or "none of " + " ".join(CPU_FLAGS)
    return f"{name}; flags: {shown}; torch CPU capability {torch.backends.cpu.get_cpu_capability()}"


def prepare(out: Path, cloze_n: int) -> None:
    """The corpus and vocabulary (built as ``make pretrain-en`` does if missing), the train / held-out shards, the
    fixed evaluation batches and the cloze set."""
    bertkit = [sys.executable, "-m", "bertkit"]
    if not CORPUS.is_file():
        subprocess.run([*bertkit, "corpus", "en", "-o", str(CORPUS)], check=True)
    if not (VOCAB / "vocab.txt").is_file():
        subprocess.run([*bertkit, "train-tokenizer", str(CORPUS), "--vocab-size", "16000", "-o", str(VOCAB)],
                       check=True)
    documents = [d for d in CORPUS.read_text(encoding="utf-8").split("\n\n") if d.strip()]
    held_out = documents[::HELD_OUT_EVERY]  # run_pretraining's rule for eval_fraction 0.05
    train = [d for i, d in enumerate(documents) if i % HELD_OUT_EVERY]
    write_text_atomic(out / "train.txt", "\n\n".join(d.strip("\n") for d in train) + "\n")
    write_text_atomic(out / "heldout.txt", "\n\n".join(d.strip("\n") for d in held_out) + "\n")
    tokenizer = AutoTokenizer.from_pretrained(VOCAB)
    torch.save(evaluation_batches(held_out, tokenizer), out / "eval.pt")
    items = build_cloze(held_out_sentences(out / "heldout.txt"), tokenizer, n=cloze_n, seed=0)
    write_text_atomic(out / "cloze.jsonl", cloze_jsonl(items))


def evaluation_batches(documents: list[str], tokenizer) -> list[dict[str, torch.Tensor]]:
    """Held-out sequences (consecutive sentences of a document, ≤ 64 tokens), 15 % of tokens → [MASK], fixed."""
    cls, sep, pad = (tokenizer.convert_tokens_to_ids(t) for t in ("[CLS]", "[SEP]", "[PAD]"))
    mask = tokenizer.convert_tokens_to_ids(tokenizer.mask_token)
    sequences: list[list[int]] = []
    for document in documents:
        current: list[int] = []
        for sentence in document.split("\n"):
            ids = tokenizer(sentence, add_special_tokens=False)["input_ids"][: EVAL_LENGTH - 2]
            if current and len(current) + len(ids) > EVAL_LENGTH - 2:
                sequences.append(current)
                current = []
            current += ids
        if current:
            sequences.append(current)
    rng = random.Random(0)
    sequences = [s for s in sequences if len(s) >= 8]
    rng.shuffle(sequences)
    batches = []
    for start in range(0, min(EVAL_SEQUENCES, len(sequences)), 32):
        rows = [[cls, *s, sep] for s in sequences[start:start + 32]]
        ids = torch.full((len(rows), max(map(len, rows))), pad)
        labels = torch.full_like(ids, -100)
        for r, row in enumerate(rows):
            ids[r, : len(row)] = torch.tensor(row)
            chosen = rng.sample(range(1, len(row) - 1), max(1, round(0.15 * (len(row) - 2))))
            labels[r, chosen] = ids[r, chosen]
            ids[r, chosen] = mask
        batches.append({"input_ids": ids, "attention_mask": (ids != pad).long(),
                        "token_type_ids": torch.zeros_like(ids), "labels": labels})
    return batches


@torch.no_grad()
def held_out_metrics(masked_logits, batches: list[dict[str, torch.Tensor]]) -> dict[str, float]:
    """Mean cross-entropy, top-1 and top-5 accuracy at the masked positions (``masked_logits(batch)`` gives the
    logits there, in the order of ``labels != -100``)."""
    loss = top1 = top5 = total = 0.0
    for batch in batches:
        targets = batch["labels"][batch["labels"] != -100]
        logits = masked_logits(batch).float()
        loss += torch.nn.functional.cross_entropy(logits, targets, reduction="sum").item()
        best = logits.topk(5, dim=-1).indices
        top1 += (best[:, 0] == targets).sum().item()
        top5 += (best == targets[:, None]).any(-1).sum().item()
        total += targets.numel()
    return {"loss": loss / total, "top1": top1 / total, "top5": top5 / total}


class Clock:
    """Training time (evaluations not counted) against the budget; evaluates on the fixed batches every ``every``
    seconds of it and when it is spent, appending each record to ``log``."""

    def __init__(self, batches: list[dict], budget_s: float, evals: int, log: Path, recipe: str):
        self.batches, self.budget_s, self.log, self.recipe = batches, budget_s, log, recipe
        self.every, self.start, self.paused, self.done = budget_s / evals, 0.0, 0.0, False
        self.next_due = self.every

    def begin(self) -> None:
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start - self.paused

    def maybe_evaluate(self, masked_logits, step: int, last: bool = False) -> bool:
        """Evaluate if due (or over budget or at the last step, once); returns whether the budget is spent."""
        over = self.elapsed() >= self.budget_s or last
        if (self.elapsed() >= self.next_due or over) and not self.done:
            began, at = time.perf_counter(), self.elapsed() / 60
            record = {"recipe": self.recipe, "minutes": round(at, 3), "step": step,
                      **held_out_metrics(masked_logits, self.batches)}
            with self.log.open("a", encoding="utf-8") as file:
                file.write(json.dumps(record) + "\n")
            print(json.dumps(record), flush=True)
            self.next_due += self.every
            self.done = over
            self.paused += time.perf_counter() - began
        return over


class BudgetSpent(Exception):
    """Raised from a bertkit recipe's evaluation hook: the training time is spent."""


def run_transformers(out: Path, minutes: float, evals: int, threads: int) -> None:
    """(a): transformers' Trainer + DataCollatorForLanguageModeling with run_mlm's defaults, for ``minutes``."""
    import transformers
    import yaml

    torch.set_num_threads(threads)
    recipe = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    tokenizer = transformers.AutoTokenizer.from_pretrained(VOCAB)
    lines = [line for line in (out / "train.txt").read_text(encoding="utf-8").splitlines() if line.strip()]
    encoded = tokenizer(lines, truncation=True, max_length=recipe["max_seq_length"], return_special_tokens_mask=True)
    dataset = [{k: encoded[k][i] for k in encoded} for i in range(len(lines))]
    config = transformers.BertConfig(vocab_size=len(tokenizer), hidden_size=256, num_hidden_layers=4,
                                     num_attention_heads=4, intermediate_size=1024)  # the mini preset
    transformers.set_seed(42)  # TrainingArguments' default seed
    model = transformers.BertForMaskedLM(config)
    held_out = torch.load(out / "eval.pt", weights_only=True)
    clock = Clock(held_out, 60 * minutes, evals, out / "curves-part.jsonl", "a transformers")

    def masked_logits(batch):  # the head at the masked positions only, as bertkit's evaluation does
        model.eval()
        hidden = model.bert(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                            token_type_ids=batch["token_type_ids"]).last_hidden_state
        model.train()
        return model.cls(hidden[batch["labels"] != -100])

    class Budget(transformers.TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            clock.begin()

        def on_step_end(self, args, state, control, **kwargs):
            control.should_training_stop = clock.maybe_evaluate(masked_logits, state.global_step)

    args = transformers.TrainingArguments(output_dir=str(out / "transformers-run"), per_device_train_batch_size=8,
                                          learning_rate=5e-5, num_train_epochs=3, save_strategy="no",
                                          report_to=[], use_cpu=True, disable_tqdm=True, logging_steps=500)
    collator = transformers.DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=dataset, data_collator=collator,
                                   callbacks=[Budget()])
    trainer.train()
    model.save_pretrained(out / "model-a")
    tokenizer.save_pretrained(out / "model-a")


def run_bertkit(out: Path, minutes: float, evals: int, threads: int, recipe: Path, name: str) -> None:
    """(b) / (c): a bertkit recipe through run_pretraining, its Trainer evaluated and stopped by the clock."""
    from bertkit.pretraining import PretrainingConfig
    from bertkit.pretraining import run as pretraining_run

    clock = Clock(torch.load(out / "eval.pt", weights_only=True), 60 * minutes, evals, out / "curves-part.jsonl", name)
    kept: dict = {}

    class Timed(pretraining_run.Trainer):  # the recipe's own Trainer, begun on the clock, asked after every step
        def __init__(self, model, args, data, compute, evaluate=None, **kwargs):
            super().__init__(model, args, data, compute, evaluate=self.timed_evaluation, **kwargs)

        def timed_evaluation(self, model) -> dict:
            kept["mlm"] = mlm = getattr(model, "generator", model)  # ELECTRA: its generator is the masked LM
            kept["tokenizer"] = self.tokenizer

            def masked_logits(batch):
                hidden = mlm.base_model(batch["input_ids"], batch["attention_mask"],
                                        batch["token_type_ids"]).last_hidden_state
                return mlm.cls.predictions(hidden[batch["labels"] != -100])

            last = self.step == self.args.max_steps
            if clock.maybe_evaluate(masked_logits, self.step, last=last) and not last:
                raise BudgetSpent
            return {}

        def train(self, resume: bool = False):
            clock.begin()
            return super().train(resume)

    pretraining_run.Trainer = Timed
    given = PretrainingConfig.given_values(recipe)
    # a recipe whose schedule runs on the clock gets the budget (its trainer's clock also counts the benchmark's
    # evaluations, which the benchmark's own clock leaves out: its schedule ends a little early)
    budget = minutes if given.get("lr_schedule_clock") == "budget" else None
    config = PretrainingConfig.from_yaml(recipe, {
        "corpus": [str(out / "train.txt")], "eval_corpus": [str(out / "heldout.txt")], "tokenizer": str(VOCAB),
        "output_dir": str(out / f"run-{name.split()[0]}"), "overwrite": True, "threads": threads,
        "max_minutes": budget, "eval_steps": 1, "progress": False})
    try:
        pretraining_run.run_pretraining(config)
    except BudgetSpent:
        pass
    kept["mlm"].save_pretrained(out / f"model-{name.split()[0]}", tokenizer=kept["tokenizer"])


def curves(out: Path) -> dict[str, list[dict]]:
    """Each recipe's evaluation records, in time order."""
    by_recipe: dict[str, list[dict]] = {}
    for line in (out / "curves-part.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        by_recipe.setdefault(record["recipe"], []).append(record)
    return by_recipe


def time_to_reach(records: list[dict], accuracy: float) -> float | None:
    """Minutes at the first evaluation whose top-1 accuracy is at least ``accuracy`` (None: never)."""
    return next((r["minutes"] for r in records if r["top1"] >= accuracy), None)


def plot(by_recipe: dict[str, list[dict]], path: Path) -> None:
    """Top-1 (solid) and top-5 (dashed) held-out accuracy vs minutes, one colour per recipe."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for number, (recipe, records) in enumerate(by_recipe.items()):
        minutes = [r["minutes"] for r in records]
        axes.plot(minutes, [r["top1"] for r in records], color=f"C{number}", marker="o", label=f"{recipe} top-1")
        axes.plot(minutes, [r["top5"] for r in records], color=f"C{number}", linestyle="--", label=f"{recipe} top-5")
    axes.set_xlabel("minutes of training (2 threads)")
    axes.set_ylabel("held-out masked-token accuracy")
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def cloze_score(folder: Path, cloze: Path) -> dict:
    """A final model's top-1 / top-5 on the cloze set (bertkit evaluate fill-mask's scoring)."""
    from bertkit.model import AutoModelForMaskedLM

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForMaskedLM.from_pretrained(folder)
    scores = score_cloze(model, tokenizer, read_cloze(cloze, tokenizer, model.config.max_tokens))
    return {k: scores[k] for k in ("items", "top1", "top5")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="wall-clock budget of each recipe")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--evals", type=int, default=10, help="evaluations over the budget (evenly spaced)")
    parser.add_argument("--recipe", type=Path, help="a further bertkit recipe (c), a PretrainingConfig YAML")
    parser.add_argument("--cloze-n", type=int, default=500)
    parser.add_argument("--out", type=Path, default=ROOT / "out/bench/pretrain_quality")
    parser.add_argument("--report-only", action="store_true", help="print the report of the runs already in --out")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # a recipe's own process
    args = parser.parse_args()
    if args.minutes <= 0 or args.evals < 1:
        raise SystemExit("--minutes must be positive and --evals ≥ 1")
    if args.recipe is not None and not args.recipe.is_file():
        raise SystemExit(f"--recipe {args.recipe}: no such file")
    if args.child:
        if args.child == "a":
            run_transformers(args.out, args.minutes, args.evals, args.threads)
        else:
            recipe = CONFIG if args.child == "b" else args.recipe
            run_bertkit(args.out, args.minutes, args.evals, args.threads, recipe, f"{args.child} {recipe.stem}")
        return
    if args.report_only:
        print(f"CPU: {cpu_description()}", flush=True)
        return report(args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "curves-part.jsonl").unlink(missing_ok=True)
    print(f"CPU: {cpu_description()}; {args.threads} threads; {args.minutes:g} minutes per recipe", flush=True)
    prepare(args.out, args.cloze_n)
    children = ["a", "b"] + (["c"] if args.recipe else [])
    for child in children:
        command = [sys.executable, __file__, "--child", child, "--minutes", str(args.minutes), "--threads",
                   str(args.threads), "--evals", str(args.evals), "--out", str(args.out)]
        subprocess.run(command + (["--recipe", str(args.recipe)] if args.recipe else []), check=True)
    report(args.out)


def report(out: Path) -> None:
    """Print both curves, the time-to-quality ratio and the cloze scores; write curves.jsonl and accuracy.png."""
    torch.set_num_threads(2)
    by_recipe = curves(out)
    cloze = {recipe: cloze_score(out / f"model-{recipe.split()[0]}", out / "cloze.jsonl") for recipe in by_recipe}
    for recipe, records in by_recipe.items():
        print(f"\n{recipe}\n{'minutes':>8} {'step':>6} {'loss':>7} {'top-1':>7} {'top-5':>7}")
        for r in records:
            print(f"{r['minutes']:>8.2f} {r['step']:>6} {r['loss']:>7.3f} {r['top1']:>7.1%} {r['top5']:>7.1%}")
        print(f"cloze ({cloze[recipe]['items']} items): top-1 {cloze[recipe]['top1']:.1%}, "
              f"top-5 {cloze[recipe]['top5']:.1%}")
    a_records, summary = next(iter(by_recipe.values())), {}
    target = a_records[-1]["top1"]
    for recipe, records in list(by_recipe.items())[1:]:
        if target <= a_records[0]["top1"]:  # (a) learned nothing measurable: any recipe "reaches" it at once
            print(f"\n(a)'s held-out top-1 did not rise above its first evaluation's ({target:.1%}): no time-to-"
                  f"quality ratio for {recipe}; give more --minutes")
            summary[recipe] = {"reaches_a_final_top1_at_minutes": None, "time_to_quality_ratio": None}
            continue
        reached = time_to_reach(records, target)
        ratio = a_records[-1]["minutes"] / reached if reached else None
        summary[recipe] = {"reaches_a_final_top1_at_minutes": reached, "time_to_quality_ratio": ratio}
        said = f"{ratio:.1f}× ({reached:.2f} vs {a_records[-1]['minutes']:.2f} minutes)" if reached else \
            "not reached within the budget"
        print(f"\ntime to (a)'s final held-out top-1 {target:.1%}: {recipe} {said}")
    lines = [json.dumps(r) for records in by_recipe.values() for r in records]
    lines.append(json.dumps({"summary": summary, "cloze": cloze, "cpu": cpu_description()}))
    write_text_atomic(out / "curves.jsonl", "\n".join(lines) + "\n")
    plot(by_recipe, out / "accuracy.png")
    print(f"wrote {out / 'curves.jsonl'} and {out / 'accuracy.png'}")


if __name__ == "__main__":
    main()
