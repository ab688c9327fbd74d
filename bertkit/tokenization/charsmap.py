"""SentencePiece's precompiled normalisation (``precompiled_charsmap``): a double-array trie over UTF-8 bytes.

The blob is a little-endian uint32 ``trie_size``, then ``trie_size`` bytes of darts-clone double-array units, then
the replacement strings, each ended by a NUL byte. A key (one or more characters of the input, as UTF-8) found in the
trie maps to the offset of its replacement string: ``nmt_nfkc`` sends full-width ``Ａ`` to ``A``, control characters to
nothing, and so on. At each position the longest key that matches wins.

A darts-clone unit packs, in 32 bits: the label (low 8 bits, plus bit 31 for a leaf), a has-leaf flag (bit 8), and
the offset to the node's children (bits 10.., shifted left 8 more when bit 9 is set). A leaf unit's low 31 bits are
its value.
"""

from __future__ import annotations

import struct


class CharsmapError(ValueError):
    """A precompiled charsmap that cannot be read."""


def _offset(unit: int) -> int:
    """Where a node's children start, relative to the node (XOR)."""
    return (unit >> 10) << ((unit & (1 << 9)) >> 6)


class DoubleArray:
    """A darts-clone double-array trie: the common-prefix search SentencePiece's normaliser uses."""

    def __init__(self, units: list[int]):
        self.units = units

    def prefixes(self, key: bytes, start: int = 0) -> list[tuple[int, int]]:
        """(value, length) of every key in the trie that is a prefix of ``key[start:]``, shortest first."""
        units = self.units
        found = []
        node = _offset(units[0])
        for i in range(start, len(key)):
            byte = key[i]
            node ^= byte
            if node >= len(units):
                break
            unit = units[node]
            if unit & ((1 << 31) | 0xFF) != byte:
                break
            node ^= _offset(unit)
            if (unit >> 8) & 1:
                found.append((units[node] & 0x7FFFFFFF, i + 1 - start))
        return found

    def items(self) -> dict[bytes, int]:
        """Every key of the trie with its value (depth first), to compare two charsmaps rule by rule."""
        units, found = self.units, {}
        stack = [(0, b"")]
        while stack:
            node, key = stack.pop()
            base = node ^ _offset(units[node])
            if node and (units[node] >> 8) & 1:
                found[key] = units[base] & 0x7FFFFFFF
            stack += [(base ^ label, key + bytes([label])) for label in range(1, 256)
                      if base ^ label < len(units) and units[base ^ label] & ((1 << 31) | 0xFF) == label]
        return found

    def next_labels(self, key: bytes) -> frozenset[int]:
        """The bytes that can follow ``key`` inside a longer key of the trie (empty: no longer key)."""
        units = self.units
        node = _offset(units[0])
        for byte in key:
            node ^= byte
            if node >= len(units) or units[node] & ((1 << 31) | 0xFF) != byte:
                return frozenset()
            node ^= _offset(units[node])
        return frozenset(label for label in range(1, 256)
                         if node ^ label < len(units) and units[node ^ label] & ((1 << 31) | 0xFF) == label)


class PrecompiledCharsmap:
    """The normalisation rules of a SentencePiece model: longest-match replacement of input bytes."""

    def __init__(self, blob: bytes):
        if len(blob) < 4:
            raise CharsmapError(f"the charsmap has {len(blob)} bytes, fewer than its 4-byte header")
        (trie_size,) = struct.unpack_from("<I", blob)
        if trie_size % 4 or 4 + trie_size > len(blob) or trie_size == 0:
            raise CharsmapError(f"the charsmap's trie size {trie_size} does not fit its {len(blob)} bytes")
        self.trie = DoubleArray(list(struct.unpack_from(f"<{trie_size // 4}I", blob, 4)))
        self.strings = blob[4 + trie_size:]
        self._replacements: dict[int, bytes] = {}

    def replacement(self, value: int) -> bytes:
        """The NUL-terminated replacement string stored at ``value``."""
        cached = self._replacements.get(value)
        if cached is None:
            end = self.strings.find(b"\0", value)
            if value >= len(self.strings) or end < 0:
                raise CharsmapError(f"the charsmap points at byte {value} of its {len(self.strings)} string bytes")
            cached = self._replacements[value] = self.strings[value:end]
        return cached

    def single(self, char: str) -> tuple[str | None, frozenset[int] | None]:
        """One character's replacement (None: kept), and the lead bytes of the next characters that could extend
        the match into a longer rule (None: the general search is needed whatever follows)."""
        data = char.encode("utf-8", "surrogatepass")
        found = self.trie.prefixes(data)
        if found and found[-1][1] != len(data):
            return None, None  # a rule ending inside the character: leave it to the general search
        replacement = self.replacement(found[-1][0]).decode("utf-8", "replace") if found else None
        return replacement, self.trie.next_labels(data)

    def rules(self) -> dict[str, str]:
        """Every rule of the charsmap: key → replacement, as text."""
        return {key.decode("utf-8", "replace"): self.replacement(value).decode("utf-8", "replace")
                for key, value in self.trie.items().items()}

    def longest_match(self, key: bytes, start: int) -> tuple[bytes, int] | None:
        """The replacement of the longest rule matching at ``start`` and the bytes it consumes, or None."""
        found = self.trie.prefixes(key, start)
        if not found:
            return None
        value, length = found[-1]  # lengths grow along the search, so the last is the longest
        return self.replacement(value), length
