"""The package's layers (docs/architecture.md): lower layers never import higher ones, and no module imports a module
that imports it back — read from the source (every ``import``, those inside functions too), so a lazy import that
only hides a circle is caught as well."""

import ast
import importlib.util
from pathlib import Path

import pytest

import bertkit
from bertkit.encoding import pooling

PACKAGE = Path(bertkit.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Module → the bertkit modules it imports (``from .x import y`` counts ``x`` and ``x.y``, a module or a name)."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        name = _module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = graph.setdefault(name, set())
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names if a.name.startswith("bertkit"))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                if module.startswith("bertkit"):
                    targets.add(module)
                    targets.update(f"{module}.{a.name}" for a in node.names)
    return graph


GRAPH = _imports()


def _imported(source: str, target: str) -> list[str]:
    """The modules under ``source`` that import ``target`` or anything under it."""
    return sorted(m for m, targets in GRAPH.items() if (m == source or m.startswith(source + "."))
                  and any(t == target or t.startswith(target + ".") for t in targets))


# (importer, imported): each was a circle or an upward import once; the first names the lower side
FORBIDDEN = [
    ("bertkit.demo", "bertkit.cli"),  # demo and cli are one layer: what both use sits below them
    ("bertkit.encoding.whitening", "bertkit.encoding.modules"),  # modules.py reads Whitening folders
    ("bertkit.finetuning.qa", "bertkit.finetuning.tasks"),  # tasks.py chooses QATask; both build on task_base.py
    ("bertkit.tokenization.pretrained", "bertkit.tokenization.chinese"),  # chinese.py builds on BertTokenizer
    ("bertkit.peft", "bertkit.finetuning"),  # fine-tuning applies PEFT, not the other way
    ("bertkit.encoding", "bertkit.finetuning"),  # both layer 2, side by side
    ("bertkit.generation", "bertkit.model"),  # the models' generate() builds on generation, with its KV cache
]


def test_lower_layers_do_not_import_higher_ones():
    found = {(low, high): _imported(low, high) for low, high in FORBIDDEN}
    assert {pair: modules for pair, modules in found.items() if modules} == {}


# Still there: bertkit/config.py reads and writes config.json through model/architectures.py. Strict: once fixed, this
# fails, and the pair moves to FORBIDDEN.
PENDING = [
    ("bertkit.config", "bertkit.model"),  # config ↔ model/architectures
]


@pytest.mark.xfail(strict=True, reason="config.py reads config.json through model/architectures.py")
@pytest.mark.parametrize("low,high", PENDING)
def test_pending_upward_imports(low, high):
    assert _imported(low, high) == []


def test_the_layers_of_the_architecture_note():
    """Layer 1 (tokenization, model) imports no layer 2, 3 or 4; layer 2 no serving or commands."""
    higher = ["bertkit.training", "bertkit.pretraining", "bertkit.finetuning", "bertkit.encoding", "bertkit.serving",
              "bertkit.commands", "bertkit.cli", "bertkit.demo"]
    for low in ("bertkit.tokenization", "bertkit.model"):
        assert {high: _imported(low, high) for high in higher if _imported(low, high)} == {}
    assert _imported("bertkit.tokenization", "bertkit.model") == []
    for low in ("bertkit.training", "bertkit.pretraining", "bertkit.finetuning", "bertkit.encoding"):
        for high in ("bertkit.serving", "bertkit.commands", "bertkit.cli", "bertkit.demo"):
            assert _imported(low, high) == [], (low, high)


def test_the_graph_sees_lazy_imports():
    """The reader is what the tests above stand on: a function-level import is an edge."""
    assert "bertkit.demo" in GRAPH["bertkit.cli"]


def test_pooling_has_one_import_path():
    """No shim at ``bertkit.pooling``, no kept-for-old-callers lists: ``bertkit.encoding.pooling`` is the one place."""
    assert importlib.util.find_spec("bertkit.pooling") is None
    assert not hasattr(pooling, "TOKEN_POOLING") and not hasattr(pooling, "POOLING_STRATEGIES")
    assert _imported("bertkit", "bertkit.pooling") == []


def test_modules_export_only_what_they_define():
    """A module's ``__all__`` names its own definitions, not names imported to be passed on (packages' ``__init__``
    files, the public API, aside): each name is imported from the one place that defines it."""
    passed_on = {}
    for path in PACKAGE.rglob("*.py"):
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text(), str(path))
        imported = {a.asname or a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom | ast.Import)
                    for a in node.names}
        exported = {elt.value for node in tree.body if isinstance(node, ast.Assign)
                    and any(getattr(t, "id", None) == "__all__" for t in node.targets)
                    for elt in node.value.elts}
        if imported & exported:
            passed_on[_module_name(path)] = sorted(imported & exported)
    assert passed_on == {}


def _module_circles(package: str) -> list[list[str]]:
    """Groups of modules under ``package`` that import each other round a circle (strongly connected, Tarjan)."""
    nodes = sorted(m for m in GRAPH if m.startswith(package + ".") and not GRAPH.get(m + ".__init__"))
    edges = {m: {t for t in GRAPH[m] if t in GRAPH and t in nodes and t != m} for m in nodes}
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                circles.append(sorted(group))

    for node in nodes:
        if node not in index:
            visit(node)
    return circles


@pytest.mark.parametrize("package", ["bertkit.tokenization", "bertkit.encoding", "bertkit.serving"])
def test_no_module_circles_inside_a_package(package):
    """The SentencePiece files once went round (sp_files ↔ sp_tokenizer, unigram ↔ unigram_nbest, the two trainers)."""
    assert _module_circles(package) == []


def test_the_circle_finder_sees_a_circle():
    GRAPH["bertkit.tokenization.sp_folder"].add("bertkit.tokenization.sp_files")
    try:
        assert any("bertkit.tokenization.sp_folder" in c for c in _module_circles("bertkit.tokenization"))
    finally:
        GRAPH["bertkit.tokenization.sp_folder"].discard("bertkit.tokenization.sp_files")
