"""Layer 3: a bert-as-service 1.10 compatible server (ZMQ), an HTTP API and a web page to look inside BERT."""

from .protocol import SERVER_VERSION
from .settings import ServerSettings

__all__ = ["SERVER_VERSION", "BertServer", "ServerSettings"]


def __getattr__(name: str):
    if name == "BertServer":  # imported on use: the server pulls in ZMQ and multiprocessing
        from .server import BertServer

        return BertServer
    raise AttributeError(f"module 'bertkit.serving' has no attribute {name!r}")
