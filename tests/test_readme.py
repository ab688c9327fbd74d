"""The README's Python example runs as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    assert blocks, "the README has no Python example"
    monkeypatch.chdir(tmp_path)  # the example saves a model folder in the working directory
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    assert namespace["vectors"].shape == (2, 384)
    assert (tmp_path / "my-bert" / "vocab.txt").is_file()


def readme_commands() -> list[str]:
    """The `bertkit …` lines of the README's shell blocks: comments and optional [parts] removed, continuations
    joined."""
    text = README.read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", re.sub(r"\[[^\]]*\]", "", line)).strip()
            if line.startswith("bertkit "):
                commands.append(line)
    return commands


QUICK = ("bertkit tokenize", "bertkit encode", "bertkit params", "bertkit explain")


def test_readme_commands_parse_and_the_quick_ones_run(tmp_path, monkeypatch, capsys):
    """Every documented command line is one the CLI accepts; the ones that take seconds run as written."""
    import shlex

    from bertkit.cli import build_parser, main

    monkeypatch.chdir(tmp_path)
    commands = readme_commands()
    assert len(commands) > 15
    for command in commands:
        argv = shlex.split(command)[1:]
        build_parser(argv[0]).parse_args(argv)  # argparse exits on an unknown option
        if command.startswith(QUICK):
            assert main(argv) == 0, command
    assert (tmp_path / "vectors.npy").is_file()
