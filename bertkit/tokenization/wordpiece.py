"""WordPiece: greedy longest-match-first segmentation of one word into vocabulary pieces."""

from __future__ import annotations

CONTINUATION = "##"


class WordPiece:
    """Splits a word into the longest vocabulary prefix, then the longest ``##`` piece, and so on.

    "unaffable" → ["un", "##aff", "##able"]. A word that cannot be covered, or one longer than
    ``max_input_chars_per_word`` characters, becomes the single ``unk_token``.
    """

    def __init__(self, vocab: dict[str, int], unk_token: str = "[UNK]", max_input_chars_per_word: int = 100):
        self.vocab = vocab
        self.unk_token = unk_token
        self.max_input_chars_per_word = max_input_chars_per_word
        # No piece is longer than the longest token, so matches need not start from the word's end.
        self.max_piece_chars = max(map(len, vocab))

    def tokenize(self, word: str) -> list[str]:
        """The pieces of one word (no whitespace inside)."""
        if len(word) > self.max_input_chars_per_word:
            return [self.unk_token]
        pieces = []
        start = 0
        while start < len(word):
            piece = self._longest_piece(word, start)
            if piece is None:
                return [self.unk_token]
            pieces.append(piece)
            start += len(piece) - (len(CONTINUATION) if start else 0)
        return pieces

    def _longest_piece(self, word: str, start: int) -> str | None:
        """The longest vocabulary piece of ``word`` that begins at ``start`` (``##``-prefixed after the first)."""
        prefix = CONTINUATION if start else ""
        for end in range(min(len(word), start + self.max_piece_chars), start, -1):
            piece = prefix + word[start:end]
            if piece in self.vocab:
                return piece
        return None
