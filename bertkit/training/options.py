"""Typed run options from a YAML file plus ``key=value`` overrides: the one loader the commands' configs share.

A config is a dataclass that inherits :class:`Options`; unknown keys are errors that list the known ones, and
values given as text where a number is expected (YAML 1.1 reads ``2e-5`` as a string) are converted.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, ClassVar

import yaml


class Options:
    """Mixin for an options dataclass: ``from_yaml(path, overrides)``, ``from_dict(values)``, ``to_dict()``."""

    KIND: ClassVar[str] = "run"  # says whose options they are in error messages: "unknown fine-tuning option(s)"
    ALIASES: ClassVar[dict[str, str]] = {}  # other names accepted for a field

    @classmethod
    def from_dict(cls, values: dict[str, Any]):
        """Build from a dict; an unknown key is an error that lists the known ones."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {cls.ALIASES.get(k, k): v for k, v in values.items()}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown {cls.KIND} option(s) {unknown}; known: {sorted(known)}")
        for f in dataclasses.fields(cls):  # YAML 1.1 reads 2e-5 (no dot) as a string
            if "float" in str(f.type) and isinstance(values.get(f.name), str):
                try:
                    values[f.name] = float(values[f.name])
                except ValueError:
                    raise ValueError(f"{f.name} must be a number, got {values[f.name]!r}") from None
        return cls(**values)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike | None, overrides: list[str] | tuple[str, ...] = ()):
        """A YAML file's options (or none), then ``key=value`` overrides (values parsed as YAML: 2e-5, true)."""
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
        values.update(parse_overrides(overrides))
        return cls.from_dict(values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def parse_overrides(overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``["lr=3e-5", "epochs=2"]`` → ``{"lr": 3e-05, "epochs": 2}``."""
    values = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"override {item!r} is not key=value")
        values[key.strip().replace("-", "_")] = yaml.safe_load(raw)
    return values
