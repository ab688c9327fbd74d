"""Docstrings, comments and messages speak to a user who has not read the project's notes: no issue numbers, no
"the seeds'" (name the recipe or the rule meant instead)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTES = re.compile(r"[Ii]ssue \d|seeds'")
PENDING: set[str] = set()  # files whose comments another change is rewriting (none now)


def test_no_issue_numbers_or_seeds_in_the_source():
    files = [*ROOT.glob("bertkit/**/*.py"), *ROOT.glob("tests/*.py"), *ROOT.glob("bench/*.py"),
             *ROOT.glob("configs/*.yaml"), ROOT / "Makefile", ROOT / "README.md"]
    found = [f"{path.relative_to(ROOT)}:{number}" for path in files if str(path.relative_to(ROOT)) not in PENDING
             and path.name != "test_source_text.py"
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if NOTES.search(line)]
    assert found == []
