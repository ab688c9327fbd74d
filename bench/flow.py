"""BERT-flow vs BERT-whitening vs raw vectors, and SBERT's softmax objective vs MNRL, with all-MiniLM-L6-v2.

    .venv/bin/python bench/flow.py [--threads 2] [--fit-texts 2000] [--train-steps 12] [--skip-training | --skip-maps]

Part 1, no training of the encoder: whitening and the flow are fitted on unlabelled text and applied after pooling,
before the cosine (as in a saved folder: the module before Normalize).
- Retrieval (bench/retrieval.py's set): Python-docs section titles → their opening prose; 30 % of the pages are the
  test, and whitening and the flow are fitted on the titles and passages of the other pages.
- The Lee set (gensim's test data): Pearson of cosine vs the human similarity of the 1,225 pairs of 50 news
  documents; whitening and the flow are fitted on gensim's Lee background corpus (300 other news documents of the
  same source, cut into passages of three sentences, since 300 documents are fewer than 384 dimensions).
Part 2: MiniLM trained for the same steps on the same training-page pairs, with MNRL (title, passage; in-batch
negatives) and with SBERT's softmax classifier on (title, passage, 1) rows and as many (title, another page's
passage, 0) rows — no NLI-style labelled set installs here (see /work/shared/docs/assets.md), so the labels are
built from the pairs and the comparison is on pairs either loss can use; both models are then scored as in part 1.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from retrieval import cpu_model  # noqa: E402

from bertkit.encoding import SentenceEncoder, fit_whitening  # noqa: E402
from bertkit.encoding.flow import fit_flow  # noqa: E402
from bertkit.encoding.pairs import python_docs_pairs, split_by_source  # noqa: E402
from bertkit.encoding.retrieval import retrieval_metrics  # noqa: E402
from bertkit.encoding.training import EmbeddingTrainConfig, train_embeddings  # noqa: E402


def lee_folder() -> Path:
    """gensim's test-data folder (the Lee corpus, its human judgments and its background corpus)."""
    spec = importlib.util.find_spec("gensim")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("the Lee set comes with gensim: pip install gensim")
    return Path(next(iter(spec.submodule_search_locations))) / "test" / "test_data"


def lee_set() -> tuple[list[str], np.ndarray, list[str]]:
    """The 50 Lee documents, their human similarity matrix, and the background corpus as 3-sentence passages."""
    folder = lee_folder()
    documents = [d for d in (folder / "lee.cor").read_text(encoding="latin-1").splitlines() if d.strip()]
    passages = []
    for document in (folder / "lee_background.cor").read_text(encoding="latin-1").splitlines():
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", document.strip()) if s]
        passages += [" ".join(sentences[i: i + 3]) for i in range(0, len(sentences), 3)]
    return documents, np.loadtxt(folder / "similarities0-1.txt"), passages


def lee_pearson(vectors: np.ndarray, human: np.ndarray) -> float:
    """Pearson between the cosines and the human judgments over the upper triangle of pairs."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    upper = np.triu_indices(len(vectors), k=1)
    return float(np.corrcoef((unit @ unit.T)[upper], human[upper])[0, 1])


def fitted_maps(fit_vectors: np.ndarray, args: argparse.Namespace) -> dict[str, tuple[object, float]]:
    """name → (a map of vectors, seconds to fit it): raw, whitening (all / 256 dimensions), the flow."""
    maps: dict[str, tuple[object, float]] = {"raw (the model's own mean pooling)": (lambda v: v, 0.0)}
    for k in (None, 256):
        started = time.perf_counter()
        whitening = fit_whitening(fit_vectors, k)
        name = f"whitening k={k or fit_vectors.shape[1]}"
        maps[name] = (lambda v, w=whitening: w(torch.from_numpy(v)).numpy(), time.perf_counter() - started)
    started = time.perf_counter()
    flow = fit_flow(fit_vectors, steps=args.steps, hidden=args.hidden, epochs=args.epochs, seed=args.seed)
    seconds = time.perf_counter() - started
    with torch.no_grad():
        nll = float(flow.nll(torch.from_numpy(fit_vectors)))
    name = f"BERT-flow ({args.steps} steps, hidden {args.hidden}; fit NLL {nll:.2f} nats/dim)"
    maps[name] = (lambda v, f=flow: f(torch.from_numpy(v)).detach().numpy(), seconds)
    return maps


def compare_maps(args: argparse.Namespace, encoder: SentenceEncoder, test: list, fit_corpus: list[str]) -> None:
    """Part 1: the retrieval table and the Lee table."""
    queries, passages = ([getattr(p, side) for p in test] for side in ("query", "passage"))
    q, p, fit = (encoder.encode(texts, normalize=False, batch_size=32) for texts in (queries, passages, fit_corpus))
    print(f"\nRetrieval: {len(test)} test titles over {len(test)} passages; maps fitted on {len(fit_corpus)} "
          "training-page texts\n")
    print("| vectors | recall@1 | recall@10 | MRR@10 | fit s |\n|---|---|---|---|---|")
    for name, (apply, seconds) in fitted_maps(fit, args).items():
        metrics = retrieval_metrics(apply(q), apply(p))
        print(f"| {name} | {metrics['recall@1']:.3f} | {metrics['recall@10']:.3f} | {metrics['mrr@10']:.3f} "
              f"| {seconds:.1f} |", flush=True)
    documents, human, background = lee_set()
    docs, fit = (encoder.encode(texts, normalize=False, batch_size=32) for texts in (documents, background))
    print(f"\nLee: {len(documents)} documents, {len(documents) * (len(documents) - 1) // 2} pairs; maps fitted on "
          f"{len(background)} background passages\n")
    print("| vectors | Pearson | fit s |\n|---|---|---|")
    for name, (apply, seconds) in fitted_maps(fit, args).items():
        print(f"| {name} | {lee_pearson(apply(docs), human):.4f} | {seconds:.1f} |", flush=True)


def training_rows(train: list, seed: int) -> tuple[list[dict], list[dict]]:
    """The same pairs for both losses: (anchor, positive) for MNRL; for softmax each pair labelled 1 and the title
    with a passage of another page labelled 0."""
    rng = random.Random(seed)
    pairs = [{"anchor": p.query, "positive": p.passage} for p in train]
    labelled = []
    for pair in train:
        other = rng.choice([p for p in train if p.source != pair.source])
        labelled += [{"premise": pair.query, "hypothesis": pair.passage, "label": 1},
                     {"premise": pair.query, "hypothesis": other.passage, "label": 0}]
    return pairs, labelled


def compare_losses(args: argparse.Namespace, train: list, test: list) -> None:
    """Part 2: MNRL vs softmax for the same steps and batch size, scored on the retrieval test and the Lee set."""
    pairs, labelled = training_rows(train, args.seed)
    documents, human, _ = lee_set()
    queries, passages = [p.query for p in test], [p.passage for p in test]
    print(f"\nTraining: {args.train_steps} steps of {args.batch_size} rows, lr 2e-5 (softmax's classifier "
          f"{args.classifier_lr_scale:g}×), max_seq_length "
          f"{args.max_seq_length}; MNRL on {len(pairs)} pairs, softmax on {len(labelled)} labelled rows (the same "
          "pairs and as many mismatched ones)\n")
    print("| loss | recall@1 | recall@10 | MRR@10 | Lee Pearson | final loss | train s |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for loss, rows in (("mnrl", pairs), ("softmax", labelled)):
            if loss not in args.losses.split(","):
                continue
            data = Path(tmp) / f"{loss}.jsonl"
            data.write_text("".join(json.dumps(r) + "\n" for r in rows))
            config = EmbeddingTrainConfig(train_file=str(data), loss=loss, batch_size=args.batch_size,
                                          max_steps=args.train_steps, learning_rate=2e-5, seed=args.seed,
                                          max_seq_length=args.max_seq_length, output_dir=str(Path(tmp) / loss),
                                          threads=args.threads, progress=False,
                                          **({"classifier_lr_scale": args.classifier_lr_scale} if loss == "softmax"
                                             else {}))
            started = time.perf_counter()
            result = train_embeddings(config)
            seconds = time.perf_counter() - started
            trained = SentenceEncoder.from_pretrained(Path(tmp) / loss / "model")
            metrics = retrieval_metrics(*(trained.encode(t, batch_size=32) for t in (queries, passages)))
            pearson = lee_pearson(trained.encode(documents, batch_size=32), human)
            print(f"| {loss} | {metrics['recall@1']:.3f} | {metrics['recall@10']:.3f} | {metrics['mrr@10']:.3f} "
                  f"| {pearson:.4f} | {result['final_loss']:.3f} | {seconds:.0f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--fit-texts", type=int, default=2000, help="training-page texts the maps are fitted on")
    parser.add_argument("--steps", type=int, default=4, help="the flow's Glow steps")
    parser.add_argument("--hidden", type=int, default=256, help="the flow's coupling width")
    parser.add_argument("--epochs", type=int, default=50, help="the flow's passes (best held-out one kept)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-steps", type=int, default=12, help="steps of each bi-encoder training")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--classifier-lr-scale", type=float, default=100.0,
                        help="softmax's fresh classifier learns this many times faster than the encoder (SBERT: 1; "
                             "at 1, a dozen steps leave it near random)")
    parser.add_argument("--losses", default="mnrl,softmax", help="which trainings of part 2 to run")
    parser.add_argument("--skip-training", action="store_true", help="part 1 only")
    parser.add_argument("--skip-maps", action="store_true", help="part 2 only")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"CPU: {cpu_model()}, {args.threads} threads, torch {torch.__version__}")
    train, test = split_by_source(python_docs_pairs())
    fit_corpus = [t for p in train for t in (p.query, p.passage)][: args.fit_texts]
    if not args.skip_maps:
        compare_maps(args, SentenceEncoder.from_pretrained(), test, fit_corpus)
    if not args.skip_training:
        compare_losses(args, train, test)


if __name__ == "__main__":
    main()
