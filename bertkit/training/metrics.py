"""Training metrics as JSON lines (one object per logged step) and PNG plots of them."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

from ..atomic import write_atomic, write_text_atomic


def read_metrics(path: str | os.PathLike) -> list[dict]:
    """All records of a metrics file; a missing file has none."""
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


class MetricsLog:
    """Append-only JSON-lines log; on resume, records after the checkpoint's step are dropped (they will recur)."""

    def __init__(self, path: str | os.PathLike, resume_step: int | None = None):
        self.path = Path(path)
        if resume_step is None:
            write_text_atomic(self.path, "")
        else:
            kept = [r for r in read_metrics(self.path) if r.get("step", 0) <= resume_step]
            write_text_atomic(self.path, "".join(json.dumps(r) + "\n" for r in kept))

    def write(self, record: dict) -> None:
        """Append one record and flush it, so a killed run keeps everything logged before."""
        with self.path.open("a", encoding="utf-8") as file:
            file.write(json.dumps(record) + "\n")


def plot_metrics(
    metrics_path: str | os.PathLike, png_path: str | os.PathLike, keys: Sequence[str], title: str = ""
) -> Path | None:
    """One panel per metric key against the step (train records as lines, eval records as dots); None if no data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(metrics_path)
    panels = [k for k in keys if any(_finite(r.get(k)) for r in records)]
    if not panels:
        return None
    columns = min(2, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(5.5 * columns, 3.2 * rows), squeeze=False)
    for axis, key in zip(axes.flat, panels, strict=False):
        for split, style in (("train", "-"), ("eval", "o-")):
            points = [(r["step"], r[key]) for r in records if r.get("split", "train") == split and _finite(r.get(key))]
            if points:
                axis.plot(*zip(*points, strict=True), style, label=split, markersize=4)
        axis.set_title(key)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    for axis in list(axes.flat)[len(panels):]:
        axis.set_visible(False)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    write_atomic(png_path, lambda tmp: figure.savefig(tmp, format="png", dpi=90))
    plt.close(figure)
    return Path(png_path)


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)
