"""Query ↔ passage pairs from reStructuredText, retrieval metrics, and the split by page."""

import numpy as np
import pytest

from bertkit.encoding.pairs import (
    Pair,
    clean_inline,
    python_docs_pairs,
    python_docs_prose,
    rst_prose,
    rst_sections,
    split_by_source,
)
from bertkit.encoding.retrieval import retrieval_metrics

PROSE = ("The :mod:`json` module exposes an API familiar to users of the standard library, with "
         "``dumps`` and :func:`loads <json.loads>`, as `described here <https://json.org>`_ and in *detail* "
         "below, for every **kind** of object that can be serialised [#note]_ today.")
DOC = f"""
:tocdepth: 2

=============
Top title
=============

.. module:: json
   :synopsis: Encode and decode.

{PROSE}

Is there a short answer?
------------------------

Yes.

Several debuggers are described below, and the built-in function breakpoint lets you drop into any of them
when you need to look at a running program in some detail.

Too short
~~~~~~~~~

Only a few words here.

::

    code block with many many words that must not count as the passage of anything at all ok

Examples
^^^^^^^^

* a list item is not prose, however many words it has, and it has quite a few words in it here indeed
"""


def test_rst_sections():
    sections = rst_sections(DOC)
    assert [title for title, _ in sections] == ["Top title", "Is there a short answer?"]
    assert sections[0][1] == ("The json module exposes an API familiar to users of the standard library, with dumps "
                              "and loads, as described here and in detail below, for every kind of object that can "
                              "be serialised today.")
    assert sections[1][1].startswith("Yes. Several debuggers are described below")
    assert clean_inline(":meth:`~io.TextIOBase.read` and :ref:`the tutorial <tut>`") == "io.TextIOBase.read and " \
                                                                                     "the tutorial"


def test_rst_prose_is_every_paragraph_of_enough_words_without_markup(tmp_path):
    debuggers = ("Several debuggers are described below, and the built-in function breakpoint lets you drop into "
                 "any of them when you need to look at a running program in some detail.")
    assert rst_prose(DOC) == [clean_inline(PROSE), debuggers]
    # in document order; no title, directive, field, code block or list item
    assert rst_prose(DOC, min_words=1) == [clean_inline(PROSE), "Yes.", debuggers, "Only a few words here."]
    root = tmp_path / "html" / "_sources"
    root.mkdir(parents=True)
    for name in ("a", "b", "whatsnew-3.11"):
        (root / f"{name}.rst.txt").write_text(DOC.replace("Several", f"Page {name}: several"))
    files = sorted(root.rglob("*.rst.txt"))
    assert [p.split(":")[0] for p in python_docs_prose({"b.rst.txt"}, files) if p.startswith("Page")] == ["Page b"]
    assert python_docs_prose({"whatsnew-3.11.rst.txt"}, files) == []  # release notes are never a page


def test_pairs_keep_unique_titles_and_split_by_page(tmp_path):
    root = tmp_path / "html" / "_sources"
    (root / "library").mkdir(parents=True)
    for name in ("a", "b", "c"):
        page = DOC.replace("Top title", f"Title of {name}").replace("library", f"library {name}")
        (root / "library" / f"{name}.rst.txt").write_text(page)
    pairs = python_docs_pairs(sorted(root.rglob("*.rst.txt")))
    # "Is there a short answer?" is in every page, with the same passage: dropped as ambiguous
    assert [p.query for p in pairs] == ["Title of a", "Title of b", "Title of c"]
    assert pairs[0].source == "library/a.rst.txt"
    many = [Pair(f"q{i}", f"p{i}", f"page{i % 40}.rst.txt") for i in range(400)]
    train, test = split_by_source(many, test_percent=30)
    assert len(train) + len(test) == 400 and 0.15 < len(test) / 400 < 0.45
    assert not {p.source for p in train} & {p.source for p in test}
    assert split_by_source(many, test_percent=30) == (train, test)


def test_retrieval_metrics_by_hand():
    queries = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    passages = np.array([[1.0, 0.1], [0.1, 1.0], [-1.0, 0.0]])
    # query 0 → passage 0 first; query 1 → passage 1 first; query 2's relevant passage 2 is ranked third
    metrics = retrieval_metrics(queries, passages, ks=(1, 2))
    assert metrics == {"recall@1": pytest.approx(2 / 3), "recall@2": pytest.approx(2 / 3),
                       "mrr@10": pytest.approx((1 + 1 + 1 / 3) / 3)}
    assert retrieval_metrics(queries, passages, relevant=[0, 1, 0])["recall@1"] == 1.0
    with pytest.raises(ValueError, match="one passage index per query"):
        retrieval_metrics(queries, passages, relevant=[0, 5, 1])
