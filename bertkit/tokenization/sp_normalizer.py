"""SentencePiece's text normalisation: the model's charsmap, whitespace rules and the ``▁`` meta-symbol.

Text → normalised text in one left-to-right pass, as SentencePiece's ``Normalizer::Normalize``:

1. at each position the longest user-defined symbol written there is kept as is; otherwise the longest rule of the
   precompiled charsmap (``nmt_nfkc``: NFKC plus mapping control characters away and odd spaces to " ") replaces
   the characters it matches; otherwise one character is copied;
2. ``remove_extra_whitespaces`` drops leading and trailing spaces and folds each run of spaces into one;
3. ``add_dummy_prefix`` puts one space in front, so a word is spelled the same at the start of a text as inside it;
4. ``escape_whitespaces`` writes each space as ``▁`` (U+2581), which the vocabulary's pieces carry.

Each normalised character remembers the original character it came from, which gives token offsets.
"""

from __future__ import annotations

from .charsmap import PrecompiledCharsmap

SPACE_SYMBOL = "\u2581"


def utf8_length(char: str) -> int:
    """Bytes of one character in UTF-8."""
    code = ord(char)
    return 1 if code < 0x80 else 2 if code < 0x800 else 3 if code < 0x10000 else 4


def lead_byte(char: str) -> int:
    """The first byte of a character in UTF-8."""
    code = ord(char)
    if code < 0x80:
        return code
    return 0xC0 | code >> 6 if code < 0x800 else 0xE0 | code >> 12 if code < 0x10000 else 0xF0 | code >> 18


class PrefixMatcher:
    """Longest-match search for user-defined symbols (they bypass normalisation and are never split)."""

    def __init__(self, symbols: list[str]):
        self.by_first: dict[str, list[str]] = {}
        for symbol in sorted(set(s for s in symbols if s), key=len, reverse=True):
            self.by_first.setdefault(symbol[0], []).append(symbol)

    def match(self, text: str, start: int) -> str | None:
        """The longest symbol that starts at ``text[start]``, or None."""
        for symbol in self.by_first.get(text[start], ()):
            if text.startswith(symbol, start):
                return symbol
        return None


class Normalizer:
    """One model's normaliser settings; ``normalize`` gives the text the model segments, with its alignment."""

    def __init__(self, spec: dict, user_defined: list[str] = (), treat_whitespace_as_suffix: bool = False):
        blob = spec.get("precompiled_charsmap") or b""
        self.charsmap = PrecompiledCharsmap(blob) if blob else None
        self.add_dummy_prefix = spec.get("add_dummy_prefix", True)
        self.remove_extra_whitespaces = spec.get("remove_extra_whitespaces", True)
        self.escape_whitespaces = spec.get("escape_whitespaces", True)
        self.treat_whitespace_as_suffix = treat_whitespace_as_suffix
        self.matcher = PrefixMatcher(list(user_defined)) if user_defined else None
        self._single: dict[str, tuple] = {}  # character → (replacement, lead bytes that may extend the rule)
        self._symbols = [s for s in user_defined if s]
        self._table: dict[int, str] = {}  # code point → replacement, for characters no longer rule starts with
        self._ascii_table = self._plain_ascii()

    def _prefix(self, text: str, data: bytes | None, i: int, b: int) -> tuple[str, int, int]:
        """The normalised form of the text at char ``i`` / byte ``b``: (replacement, chars, bytes consumed)."""
        if self.matcher is not None:
            symbol = self.matcher.match(text, i)
            if symbol is not None:
                return symbol, len(symbol), len(symbol.encode("utf-8", "surrogatepass"))
        char = text[i]
        if self.charsmap is None:
            return char, 1, utf8_length(char)
        single = self._single.get(char)
        if single is None:
            single = self._single[char] = self.charsmap.single(char)
        follow = single[1]
        # The common case: no longer rule starts with this character followed by the next one (e + U+0301 would).
        if follow is not None and (not follow or i + 1 >= len(text) or lead_byte(text[i + 1]) not in follow):
            return (char if single[0] is None else single[0]), 1, utf8_length(char)
        found = self.charsmap.longest_match(data, b)
        if found is None:
            return text[i], 1, utf8_length(text[i])
        replacement, n_bytes = found
        n_chars = sum(1 for byte in data[b:b + n_bytes] if byte & 0xC0 != 0x80)
        try:
            return replacement.decode("utf-8"), n_chars, n_bytes
        except UnicodeDecodeError:
            raise ValueError(f"the precompiled charsmap maps {text[i:i + n_chars]!r} to bytes that are not "
                             "UTF-8") from None

    def _plain(self, char: str) -> tuple[str, frozenset[int]] | None:
        """A character's replacement and the lead bytes that may extend its rule, or None when a rule ends inside
        it or its replacement holds two spaces in a row (the fast path folds those, SentencePiece does not)."""
        if self.charsmap is None:
            return char, frozenset()
        single = self._single.get(char)
        if single is None:
            single = self._single[char] = self.charsmap.single(char)
        replacement, follow = single
        replacement = char if replacement is None else replacement
        if follow is None or "  " in replacement:
            return None
        if replacement != char:
            self._table[ord(char)] = replacement
        return replacement, follow

    def _plain_ascii(self) -> dict[int, str] | None:
        """The replacements of ASCII characters, when no rule joins two ASCII characters (else None)."""
        table = {}
        for code in range(128):
            rule = self._plain(chr(code))
            if rule is None or any(byte < 0x80 for byte in rule[1]):
                return None
            if rule[0] != chr(code):
                table[code] = rule[0]
        return table

    def _char_table(self, text: str) -> dict[int, str] | None:
        """The per-character replacements of ``text``, or None when a rule may span two of its characters or a
        user-defined symbol occurs in it (then the general pass is needed)."""
        if self._symbols and any(symbol in text for symbol in self._symbols):
            return None
        if self._ascii_table is not None and text.isascii():
            return self._ascii_table
        chars = set(text)
        follows: set[int] = set()
        for char in chars:
            rule = self._plain(char)
            if rule is None:
                return None
            follows |= rule[1]
        if follows and any(lead_byte(char) in follows for char in chars):
            return None
        return self._table

    def normalize_text(self, text: str) -> str:
        """The normalised text alone, as ``normalize`` gives it: one ``str.translate`` and a split on spaces when
        every character is replaced on its own (the common case), else the general pass."""
        table = self._char_table(text)
        if table is None:
            return self.normalize_with_spans(text)[0]
        mapped = text.translate(table)
        if self.remove_extra_whitespaces:
            mapped = " ".join([word for word in mapped.split(" ") if word]) if "  " in mapped else mapped.strip(" ")
        if not mapped:  # all spaces or removed characters: the general pass has the edge cases
            return self.normalize_with_spans(text)[0]
        if self.add_dummy_prefix:
            mapped = mapped + " " if self.treat_whitespace_as_suffix else " " + mapped
        return mapped.replace(" ", SPACE_SYMBOL) if self.escape_whitespaces else mapped

    def is_space(self, char: str) -> bool:
        """Whether the character normalises to a space (nmt_nfkc: tabs, newlines, U+3000, zero-width joiners...)."""
        data = char.encode("utf-8", "surrogatepass") if self.charsmap is not None else None
        return self._prefix(char, data, 0, 0)[0] == " "

    def normalize(self, text: str) -> tuple[str, list[int]]:
        """Normalised text and, for each of its characters and one past the end, the original character index."""
        normalized, starts, _, end = self.normalize_with_spans(text)
        return normalized, [*starts, end]

    def normalize_with_spans(self, text: str) -> tuple[str, list[int], list[int], int]:
        """Normalised text; for each of its characters the original span ``[start, end)`` of the rule that made it;
        and the original index the normalised text ends at."""
        data = text.encode("utf-8", "surrogatepass") if self.charsmap is not None else None
        space = SPACE_SYMBOL if self.escape_whitespaces else " "
        n, i, b = len(text), 0, 0
        if self.remove_extra_whitespaces:  # leading spaces (after normalisation) are dropped
            while i < n:
                piece, chars, nbytes = self._prefix(text, data, i, b)
                if piece != " ":
                    break
                i, b = i + chars, b + nbytes
        if i >= n:
            return "", [], [], i
        out: list[str] = []
        starts: list[int] = []
        ends: list[int] = []
        if self.add_dummy_prefix and not self.treat_whitespace_as_suffix:
            out.append(space)
            starts.append(i)
            ends.append(i)
        prev_space = self.remove_extra_whitespaces
        while i < n:
            piece, chars, nbytes = self._prefix(text, data, i, b)
            if prev_space:
                piece = piece.lstrip(" ")
            if piece:
                out.append(piece.replace(" ", space) if self.escape_whitespaces else piece)
                starts += [i] * len(piece)
                ends += [i + chars] * len(piece)
                prev_space = piece.endswith(" ")
            i, b = i + chars, b + nbytes
            if not self.remove_extra_whitespaces:
                prev_space = False
        normalized = "".join(out)
        end = i
        if self.remove_extra_whitespaces:  # trailing spaces: the end is where the last one came from
            while normalized.endswith(space):
                normalized = normalized[:-1]
                end = starts.pop()
                ends.pop()
        if self.add_dummy_prefix and self.treat_whitespace_as_suffix:
            normalized += space
            starts.append(end)
            ends.append(end)
        return normalized, starts, ends, end
