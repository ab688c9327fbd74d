"""Helpers shared by the tokenizer.json and AutoTokenizer tests: varied lines, folders saved by transformers,
MiniLM's tokenizer.json and variants of it, small tokenizers of other kinds."""

import copy
import json
import random

import tokenizers
import transformers

FRAGMENTS = [
    "Hello", "world", "Don't", "panic!", "unaffable", "résumé", "naïve", "CAFÉ", "Ångström", "façade", "Zoë",
    "İstanbul", "straße", "ǅemal", "ﬁnance", "Ⅻ", "ＦＵＬＬ", "ｗｉｄｔｈ", "，", "。", "自然语言处理", "中文", "漢字",
    "日本語の", "テキスト", "한국어", "텍스트", "العربية", "עברית", "हिन्दी", "ไทย", "Ελληνικά", "Москва", "ПРИВЕТ",
    "😀", "👍🏽", "∑∫√", "→", "€100", "$5.00", "©2024", "x^2+y^2", "a_b-c", "http://example.com/a_b?c=d&e=f#g",
    "@user", "#tag", "(parens)", "[brackets]", "\"quoted\"", "'single'", "…", "—", "«guillemets»", "¿Qué?", "¡Sí!",
    "x" * 101, "y" * 100, "antidisestablishmentarianism", "[MASK]", "[CLS]", "[SEP]", "[PAD]", "[UNK]", "[mask]",
    "[MASK]ed", "a[SEP]b", "3.14159", "1,000,000", "ĲSSELMEER", "Łódź", "Dvořák", "Øresund", "ÀÉÎÕÜ", "tiếng Việt",
]
# Spaces of every kind, control characters (deleted: their neighbours join), zero-width and soft-hyphen characters.
SEPARATORS = [" ", " ", " ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u2003", "\u3000", "", "\u200b", "\x00", "\x7f",
              "\ufffd", "\x0b", "\u2028", "\x85", "\u00ad", "-", ", ", ". "]
OPTIONS = {
    "uncased": {},
    "cased": {"do_lower_case": False},
    "uncased-strip-true": {"strip_accents": True},
    "uncased-strip-false": {"strip_accents": False},
    "cased-strip-true": {"do_lower_case": False, "strip_accents": True},
    "cased-strip-none": {"do_lower_case": False, "strip_accents": None},
    "no-chinese-chars": {"tokenize_chinese_chars": False},
}


def varied_lines(n: int, seed: int = 0) -> list[str]:
    """Random lines of fragments in many scripts, joined by assorted spaces and control characters.

    No Σ and no decomposed accents: those are the two known differences from the Rust tokenizer, tested below.
    """
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        parts = [rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 12))]
        line = parts[0] + "".join(rng.choice(SEPARATORS) + part for part in parts[1:])
        case = rng.random()
        lines.append(line.upper() if case < 0.2 else line.lower() if case < 0.35 else line)
    return lines


def folder_maker(minilm_dir, tmp_path_factory):
    """make(name): a folder saved by transformers' BertTokenizerFast with OPTIONS[name] (tokenizer.json, no
    vocab.txt), made once."""
    folders = {}

    def make(name: str):
        if name not in folders:
            folder = tmp_path_factory.mktemp(name)
            transformers.BertTokenizerFast.from_pretrained(minilm_dir, **OPTIONS[name]).save_pretrained(folder)
            (folder / "vocab.txt").unlink(missing_ok=True)
            assert (folder / "tokenizer.json").is_file()
            folders[name] = folder
        return folders[name]

    return make


def minilm_tokenizer_json(minilm_dir) -> dict:
    """MiniLM's tokenizer.json, without the padding / truncation state its last call left there."""
    document = json.loads((minilm_dir / "tokenizer.json").read_text(encoding="utf-8"))
    return {**document, "padding": None, "truncation": None}


def json_only_folder(folder, document: dict):
    """A folder holding nothing but this tokenizer.json."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.json").write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return folder


def variant(document: dict, change: dict) -> dict:
    """A copy of the document with top-level parts replaced (and the model's fields updated; vocabulary copied)."""
    out = {**document, "model": {**document["model"], "vocab": dict(document["model"]["vocab"])}}
    for key, value in change.items():
        if key == "model":
            out["model"].update(value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def trained(kind: str, lines: list[str]) -> tokenizers.Tokenizer:
    """A small tokenizer of each non-WordPiece kind, trained on the test lines."""
    if kind == "byte-level-bpe":
        trainer = tokenizers.ByteLevelBPETokenizer()
    elif kind == "char-bpe":
        trainer = tokenizers.CharBPETokenizer()
    elif kind == "sentencepiece-bpe":
        trainer = tokenizers.SentencePieceBPETokenizer()
    elif kind == "unigram":
        trainer = tokenizers.SentencePieceUnigramTokenizer()
        trainer.train_from_iterator(lines, vocab_size=300, show_progress=False)
        return trainer
    else:
        words = sorted({word for line in lines for word in line.split()})
        tokenizer = tokenizers.Tokenizer(tokenizers.models.WordLevel(
            {"[UNK]": 0, **{word: i + 1 for i, word in enumerate(words)}}, unk_token="[UNK]"))
        tokenizer.pre_tokenizer = tokenizers.pre_tokenizers.BertPreTokenizer()
        return tokenizer
    trainer.train_from_iterator(lines, vocab_size=400, min_frequency=1, show_progress=False)
    return trainer
