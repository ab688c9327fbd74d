"""Build SentencePiece's ``nmt_nfkc`` normalisation rules and compile them into a ``precompiled_charsmap``.

The rules follow SentencePiece's ``normalizer/builder.cc`` (``BuildNFKCMap`` then ``BuildNmtNFKCMap``), with Python's
``unicodedata`` standing in for ICU:

1. every code point whose NFKC differs from itself maps to its NFKC;
2. every sequence that NFKD-decomposes a character (``e`` + U+0301), spelled with any character whose NFKD is that
   part (``ｅ`` + U+0301 too), maps to the NFC of the decomposition (``é``);
3. nmt: tabs, newlines, zero-width and bidi marks, U+2581 and U+FFFD become a space, ASCII control characters are
   removed, and the full-width tilde is left alone (Japanese uses both tildes differently);
4. a rule of two or more characters that the shorter rules already give is dropped (``RemoveRedundantMap``).

``compile_charsmap`` writes the rules as SentencePiece stores them: a double-array trie (darts-clone's units) over the
UTF-8 keys whose values point into the NUL-ended replacement strings. Identical subtries are stored once, as
darts-clone does, so the blob stays a few hundred kilobytes. ``charsmap.py`` reads it back.
"""

from __future__ import annotations

import functools
import itertools
import struct
import sys
import unicodedata

# The zero-width joiner stays (emoji sequences need it); the Arabic letter mark joins the bidi marks.
NMT_SPACES = (0x09, 0x0A, 0x0C, 0x0D, 0x061C, 0x1680, 0x200B, 0x200C, 0x200E, 0x200F, 0x2028, 0x2029, 0x2581,
              0xFEFF, 0xFFFD)
NMT_REMOVED = (*range(0x01, 0x09), 0x0B, *range(0x0E, 0x20), 0x7F, 0x8F, 0x9F)
FULL_WIDTH_TILDE = 0xFF5E


def _is_unicode_char(code: int) -> bool:
    """ICU's ``U_IS_UNICODE_CHAR``: not a surrogate, not a noncharacter."""
    return not (0xD800 <= code <= 0xDFFF or 0xFDD0 <= code <= 0xFDEF or code & 0xFFFE == 0xFFFE)


def nfkc_rules() -> dict[str, str]:
    """SentencePiece's ``BuildNFKCMap``: single characters to their NFKC, decompositions to their composition."""
    rules: dict[str, str] = {}
    decomposed: set[str] = set()
    originals: dict[str, list[str]] = {}  # a fully decomposed character → the characters that decompose to it
    nfkc, nfkd = functools.partial(unicodedata.normalize, "NFKC"), functools.partial(unicodedata.normalize, "NFKD")
    for code in range(1, sys.maxunicode + 1):
        if not _is_unicode_char(code):
            continue
        char = chr(code)
        if unicodedata.category(char) == "Cn":  # unassigned: normalises to itself
            continue
        composed = nfkc(char)
        if composed != char:
            rules[char] = composed
        parts = nfkd(char)
        if len(parts) == 1:
            originals.setdefault(parts, []).append(char)
        else:
            decomposed.add(parts)
    for parts in decomposed:
        composed = unicodedata.normalize("NFC", parts)
        if composed == parts:
            continue
        for spelled in itertools.product(*(originals.get(c, [c]) for c in parts)):
            key = "".join(spelled)
            if key != composed:
                rules[key] = composed
    return rules


def apply_rules(rules: dict[str, str], text: str, longest: int) -> str:
    """Longest-match replacement of ``text`` by ``rules`` with keys up to ``longest`` characters (the builder's
    ``Normalize``)."""
    out, i = [], 0
    while i < len(text):
        for size in range(min(longest, len(text) - i), 0, -1):
            replacement = rules.get(text[i:i + size])
            if replacement is not None:
                out.append(replacement)
                i += size
                break
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def remove_redundant(rules: dict[str, str]) -> dict[str, str]:
    """Drop each rule of two or more characters that the shorter rules already give (``RemoveRedundantMap``)."""
    kept = {k: v for k, v in rules.items() if len(k) == 1}
    longest = max(map(len, rules), default=1)
    for size in range(2, longest + 1):
        for key in sorted(k for k in rules if len(k) == size):  # sorted: std::map's order, as the builder
            if rules[key] != apply_rules(kept, key, size - 1):
                kept[key] = rules[key]
    return kept


@functools.lru_cache(maxsize=1)
def nmt_nfkc_rules() -> dict[str, str]:
    """SentencePiece's ``BuildNmtNFKCMap``: NFKC plus the nmt rules for spaces and control characters."""
    rules = nfkc_rules()
    rules.update({chr(code): " " for code in NMT_SPACES})
    rules.update({chr(code): "" for code in NMT_REMOVED})
    rules.pop(chr(FULL_WIDTH_TILDE), None)
    return remove_redundant(rules)


# -- the double-array trie ------------------------------------------------------------------------------------

BLOCK = 256  # a node's children lie in the 256-unit block of its base (index = base XOR label)
OPEN_BLOCKS = 16  # as darts-clone: only the last blocks are searched for free units
LEAF_BIT, HAS_LEAF_BIT = 1 << 31, 1 << 8


def _dawg(keys: list[bytes], values: list[int]) -> tuple[list[tuple[int | None, tuple]], int]:
    """The trie of the keys with identical subtries merged: nodes (value, ((label, child), ...)) and the root."""
    trie: list[tuple[dict[int, int], list]] = [({}, [None])]
    for key, value in zip(keys, values, strict=True):
        node = 0
        for byte in key:
            children = trie[node][0]
            if byte not in children:
                children[byte] = len(trie)
                trie.append(({}, [None]))
            node = children[byte]
        trie[node][1][0] = value
    nodes: list[tuple[int | None, tuple]] = []
    known: dict[tuple, int] = {}
    canonical = [0] * len(trie)
    for index in range(len(trie) - 1, -1, -1):  # children were appended after their parent
        children, value = trie[index]
        signature = (value[0], tuple((label, canonical[child]) for label, child in sorted(children.items())))
        if signature not in known:
            known[signature] = len(nodes)
            nodes.append(signature)
        canonical[index] = known[signature]
    return nodes, canonical[0]


class _Placer:
    """Finds a base for each node: every unit ``base ^ label`` free, and no two nodes on one base."""

    def __init__(self):
        self.used = bytearray(BLOCK)
        self.used[0] = 1  # the root's own unit
        self.bases: set[int] = set()

    def place(self, labels: list[int]) -> int:
        """A free base for a node whose children (and leaf, label 0) have these labels; marks their units used."""
        used = self.used
        while True:
            position = used.find(0, max(0, len(used) - OPEN_BLOCKS * BLOCK))
            while position >= 0:
                base = position ^ labels[0]
                if base and base not in self.bases and not any(used[base ^ label] for label in labels[1:]):
                    self.bases.add(base)
                    for label in labels:
                        used[base ^ label] = 1
                    return base
                position = used.find(0, position + 1)
            used.extend(bytes(BLOCK))


def _offset_bits(offset: int) -> int:
    """darts-clone's ``set_offset``: bits 10.. (shifted 8 when bit 9 is set, for offsets of 2^21 and more)."""
    if offset < 1 << 21:
        return offset << 10
    if offset >= 1 << 29 or offset & 0xFF:
        raise ValueError(f"a double-array offset {offset} does not fit darts-clone's units")
    return (offset << 2) | (1 << 9)


def double_array(keys: list[bytes], values: list[int]) -> list[int]:
    """darts-clone units of a trie mapping each key (no NUL byte) to its value (< 2^31)."""
    nodes, root = _dawg(keys, values)
    placer, bases, order = _Placer(), {}, [root]
    for node in order:  # breadth first: a node's base before its children's
        value, children = nodes[node]
        labels = ([0] if value is not None else []) + [label for label, _ in children]
        bases[node] = placer.place(labels)
        for _, child in children:
            if child not in bases:
                bases[child] = None
                order.append(child)
    units = [0] * len(placer.used)
    units[0] = _offset_bits(bases[root])
    for node in order:
        value, children = nodes[node]
        base = bases[node]
        if value is not None:
            units[base] = value | LEAF_BIT
        for label, child in children:
            has_leaf = HAS_LEAF_BIT if nodes[child][0] is not None else 0
            units[base ^ label] = label | has_leaf | _offset_bits((base ^ label) ^ bases[child])
    return units


def compile_charsmap(rules: dict[str, str]) -> bytes:
    """SentencePiece's ``precompiled_charsmap`` of the rules: trie size, darts-clone units, replacement strings."""
    if not rules or any(not key or "\0" in key for key in rules):
        raise ValueError("charsmap rules need at least one key, and no key may be empty or hold a NUL")
    strings, positions = bytearray(), {}
    for replacement in sorted(set(rules.values())):
        positions[replacement] = len(strings)
        strings += replacement.encode("utf-8") + b"\0"
    ordered = sorted((key.encode("utf-8"), positions[value]) for key, value in rules.items())
    units = double_array([k for k, _ in ordered], [v for _, v in ordered])
    return struct.pack(f"<I{len(units)}I", 4 * len(units), *units) + bytes(strings)


@functools.lru_cache(maxsize=1)
def nmt_nfkc_charsmap() -> bytes:
    """The ``precompiled_charsmap`` of SentencePiece's ``nmt_nfkc`` normaliser, built from ``unicodedata``."""
    return compile_charsmap(nmt_nfkc_rules())


NORMALIZATIONS = ("identity", "nfkc", "nmt_nfkc")


def normalizer_spec(name: str) -> dict:
    """A ``normalizer_spec`` SentencePiece's trainer would write for ``normalization_rule_name=name``."""
    if name not in NORMALIZATIONS:
        raise ValueError(f"normalization {name!r} is not one bertkit builds ({', '.join(NORMALIZATIONS)})")
    blob = b"" if name == "identity" else nmt_nfkc_charsmap() if name == "nmt_nfkc" else nfkc_charsmap()
    return {"name": name, "precompiled_charsmap": blob, "add_dummy_prefix": True, "remove_extra_whitespaces": True,
            "escape_whitespaces": True, "normalization_rule_tsv": ""}


@functools.lru_cache(maxsize=1)
def nfkc_charsmap() -> bytes:
    """The ``precompiled_charsmap`` of SentencePiece's ``nfkc`` normaliser (NFKC without the nmt rules)."""
    return compile_charsmap(remove_redundant(nfkc_rules()))
