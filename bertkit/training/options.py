"""Typed run options from a YAML file plus overrides: the one loader every command's config shares.

A config is a dataclass that inherits :class:`Options`. Values are typed from the field annotations whatever
their source — YAML (whose 1.1 rules read ``1e-4`` as a string), ``key=value`` overrides or ``--key value`` flags —
so a mistake is one line naming the field, the value and what was expected, before any work starts; an unknown key
is refused with the nearest known names ("did you mean …").
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import difflib
import inspect
import io
import os
import tokenize
import types
import typing
from pathlib import Path
from typing import Any, ClassVar

import yaml

TRUE, FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


class Options:
    """Mixin for an options dataclass: ``from_yaml(path, overrides)``, ``from_dict(values)``, ``to_dict()``."""

    KIND: ClassVar[str] = "run"  # says whose options they are in error messages: "unknown fine-tuning option(s)"
    ALIASES: ClassVar[dict[str, str]] = {}  # other names accepted for a field
    # what a resumed run may change: how long it runs, where and how it reports, never what it computes
    RESUME_CHANGEABLE: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def from_dict(cls, values: dict[str, Any]):
        """Build from a dict: aliases resolved, unknown keys refused, every value typed by its field."""
        values = {cls.ALIASES.get(k, k): v for k, v in values.items()}
        hints = typing.get_type_hints(cls)
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown {cls.KIND} option(s) {unknown}{suggestions(unknown, known)}")
        typed = {name: coerce(name, value, hints[name]) for name, value in values.items()}
        return cls(**typed)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike | None, overrides: list[str] | tuple[str, ...] | dict[str, Any] = ()):
        """A YAML file's options (or none), then overrides: ``key=value`` strings (values read as YAML) or a dict."""
        return cls.from_dict(cls.given_values(path, overrides))

    @classmethod
    def resumed(cls, path: str | os.PathLike | None, overrides: list[str] | tuple[str, ...] | dict[str, Any] = ()):
        """Options for ``--resume``: the run's saved settings (``output_dir``'s), with the given ones over them
        (the run then refuses a given one that changes what it computes)."""
        from .state import saved_run_config

        given = {cls.ALIASES.get(k, k): v for k, v in cls.given_values(path, overrides).items()}
        default = next(f.default for f in dataclasses.fields(cls) if f.name == "output_dir")
        return cls.from_dict((saved_run_config(given.get("output_dir", default)) or {}) | given)

    @classmethod
    def given_values(cls, path: str | os.PathLike | None,
                     overrides: list[str] | tuple[str, ...] | dict[str, Any] = ()) -> dict[str, Any]:
        """The options a YAML file (or none) and overrides give, untyped."""
        values: dict[str, Any] = {}
        if path is not None:
            path = Path(path)
            if not path.is_file():
                raise FileNotFoundError(f"no such config file: {path}")
            try:
                values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            except yaml.YAMLError as error:
                raise ValueError(f"{path} is not valid YAML: {error}") from None
            if not isinstance(values, dict):
                raise ValueError(f"{path} must hold a mapping of option: value")
        values.update(overrides if isinstance(overrides, dict) else parse_overrides(overrides, cls))
        return values

    def to_dict(self) -> dict[str, Any]:
        """The options by name, the command's own first (as ``--help`` lists them)."""
        values = dataclasses.asdict(self)
        return {f.name: values[f.name] for f in option_fields(type(self))}


def suggestions(unknown: list[str], known: list[str]) -> str:
    """"; did you mean learning_rate?" for the unknown names that resemble known ones."""
    close = {name: difflib.get_close_matches(name, known, n=2, cutoff=0.6) for name in unknown}
    hints = [f"{name} → {' or '.join(matches)}" for name, matches in close.items() if matches]
    return f"; did you mean: {', '.join(hints)}?" if hints else "; `--help` lists the options"


def _describe(hint: Any) -> str:
    return {int: "an integer", float: "a number", bool: "true or false", str: "a text"}.get(hint, str(hint))


def coerce(name: str, value: Any, hint: Any) -> Any:
    """``value`` as the annotation ``hint`` asks (int, float, bool, str, list, dict, optional), or a ValueError
    naming the field: ``learning_rate must be a number, got 'fast'``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in ("null", "none", "~")):
            if type(None) in args:
                return None
        options = [a for a in args if a is not type(None)]
        return coerce(name, value, options[0]) if len(options) == 1 else value
    if origin is list:
        items = value if isinstance(value, list) else [value]
        return [coerce(name, item, args[0]) if args else item for item in items]
    if origin is dict or hint is dict:
        if isinstance(value, str):  # a flag's text: `--verbalizer '{"pos": "great"}'`
            try:
                value = yaml.safe_load(value)
            except yaml.YAMLError:
                pass
        if not isinstance(value, dict):
            raise ValueError(f"{name} must be a mapping (key: value), got {value!r}")
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in TRUE + FALSE:
            return value.lower() in TRUE
        raise ValueError(f"{name} must be true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ValueError(f"{name} must be a number, got {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)  # a folder named 2024
        raise ValueError(f"{name} must be {_describe(str)}, got {value!r}")
    return value


def parse_overrides(overrides: list[str] | tuple[str, ...], config_class: type | None = None) -> dict[str, Any]:
    """``["lr=3e-5", "epochs=2"]`` → ``{"lr": 3e-05, "epochs": 2}``: values read as YAML, except a text option of
    ``config_class`` (``pattern="{text} It was [MASK]."`` stays the text typed) and what YAML cannot read."""
    texts = set()
    if config_class is not None:
        hints = typing.get_type_hints(config_class)
        texts = {name for name, hint in hints.items() if hint is str or (
            typing.get_origin(hint) in (typing.Union, types.UnionType) and set(typing.get_args(hint)) == {
                str, type(None)})}
        texts |= {alias for alias, name in getattr(config_class, "ALIASES", {}).items() if name in texts}
    values = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"override {item!r} is not key=value")
        key = key.strip().replace("-", "_")
        if key in texts and raw.strip().lower() not in ("null", "none", "~"):
            values[key] = raw
            continue
        try:
            values[key] = yaml.safe_load(raw)
        except yaml.YAMLError:  # not YAML: the text as typed (the option's type check says if it cannot be)
            values[key] = raw
    return values


def add_option_flags(parser: argparse.ArgumentParser, config_class: type) -> None:
    """One ``--field-name VALUE`` flag per field (lists take several values; aliases too, e.g. ``--lr``), all
    defaulting to 'not given' so the YAML file stands; values are typed later, with the same rules as YAML's.
    The command's own options come first, then those it inherits (the shared training options)."""
    names = {f.name: [f.name] for f in option_fields(config_class)}
    for alias, name in getattr(config_class, "ALIASES", {}).items():
        if alias not in names:
            names[name].append(alias)
    hints = typing.get_type_hints(config_class)
    docs, defaults = field_docs(config_class), field_defaults(config_class)
    for name, spellings in names.items():
        flags = ["--" + s.replace("_", "-") for s in spellings]
        hint = hints[name]
        doc = docs.get(name, "")
        shown = f"{doc} (default: {defaults[name]})" if doc else f"default: {defaults[name]}"
        help_text = shown.replace("%", "%%")  # argparse formats help with %
        if typing.get_origin(hint) is list:
            parser.add_argument(*flags, dest=name, nargs="+", default=argparse.SUPPRESS, help=help_text)
        elif hint is bool or bool in typing.get_args(hint):  # `--bf16` alone means true; `--bf16 false` works
            parser.add_argument(*flags, dest=name, nargs="?", const="true", default=argparse.SUPPRESS,
                                metavar="BOOL", help=help_text)
        else:
            parser.add_argument(*flags, dest=name, default=argparse.SUPPRESS, metavar=name.upper(), help=help_text)


def option_fields(config_class: type) -> list[dataclasses.Field]:
    """The config's fields, its command's own first, then the ones it inherits (the shared training options)."""
    return sorted(dataclasses.fields(config_class),
                  key=lambda f: config_class.__mro__.index(declared_by(config_class, f.name)))


def declared_by(config_class: type, name: str) -> type:
    """The class that first declares the field ``name`` (a subclass redeclaring it only changes its default)."""
    return next(k for k in reversed(config_class.__mro__) if name in vars(k).get("__annotations__", {}))


def field_docs(config_class: type) -> dict[str, str]:
    """Each field's one-line doc: the comment on the line that defines it in the dataclass's source (one place
    for the reader of the code and for ``--help``)."""
    docs: dict[str, str] = {}
    for klass in reversed([k for k in config_class.__mro__ if dataclasses.is_dataclass(k)]):
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):  # no source (a frozen install): the help shows the defaults only
            continue
        comments = {token.start[0]: token.string.lstrip("#").strip()
                    for token in tokenize.generate_tokens(io.StringIO(source).readline)
                    if token.type == tokenize.COMMENT}
        class_node = ast.parse(source).body[0]
        for node in getattr(class_node, "body", []):
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                line = next((comments[n] for n in range(node.lineno, node.end_lineno + 1) if n in comments), None)
                if line:
                    docs[node.target.id] = line
    return docs


def field_defaults(config_class: type) -> dict[str, str]:
    """Each field's default as a YAML file would spell it (``none``, ``true``, ``[query, value]``)."""
    def spell(value: Any) -> str:
        if value is None or isinstance(value, bool):
            return {None: "none", True: "true", False: "false"}[value]
        if isinstance(value, (list, tuple)):
            return "[" + ", ".join(spell(v) for v in value) + "]"
        if isinstance(value, dict):
            return "{" + ", ".join(f"{k}: {spell(v)}" for k, v in value.items()) + "}"
        return str(value)

    shown = {}
    for f in dataclasses.fields(config_class):
        if f.default is not dataclasses.MISSING:
            shown[f.name] = spell(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            shown[f.name] = spell(f.default_factory())
        else:
            shown[f.name] = "required"
    return shown


def flag_values(args: argparse.Namespace, config_class: type) -> dict[str, Any]:
    """The options given as ``--flags`` on the command line."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(config_class) if hasattr(args, f.name)}
