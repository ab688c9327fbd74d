"""Subcommands of ``bertkit`` that live beside their layer: each module has ``register(subparsers)``."""
