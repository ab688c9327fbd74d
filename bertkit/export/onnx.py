"""ONNX export: a sentence-embedding model folder → ``out/onnx/model.onnx`` beside its config and tokenizer.

The graph is the encoder plus the folder's own pooling and normalisation, with dynamic batch and length: inputs
``input_ids``, ``attention_mask``, ``token_type_ids`` (int64), outputs ``last_hidden_state`` (what
sentence-transformers' and text-embeddings-inference's ONNX backends read, pooling themselves) and
``sentence_embedding`` (pooled, normalised when the folder says so). It goes through the public model API
(``EncoderModel.forward``, any architecture of the family) and torch's dynamo exporter (the TorchScript exporter
mis-exported MiniLM); while traced, the model skips its value-dependent checks and shortcuts.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import torch

from ..atomic import current_umask
from ..encoding import SentenceEncoder
from ..encoding.pooling import Pooling
from ..model import EncoderModel

INPUT_NAMES = ["input_ids", "attention_mask", "token_type_ids"]
OUTPUT_NAMES = ["last_hidden_state", "sentence_embedding"]
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack", ".ckpt", ".onnx")
OPSET = 18


class SentenceEmbeddingGraph(torch.nn.Module):
    """Encoder → pooling → (normalisation): what gets exported."""

    def __init__(self, model: EncoderModel, pooling: str, normalize: bool):
        super().__init__()
        # while exported the model skips its value-dependent checks and shortcuts (``kernels.exporting``)
        self.model, self.pool, self.normalize = model.eval(), Pooling(pooling), normalize

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.model(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state
        pooled = self.pool(hidden, attention_mask)
        if self.normalize:
            pooled = torch.nn.functional.normalize(pooled, p=2.0, dim=1)
        return hidden, pooled


def export_onnx(model_dir: str | Path, out_dir: str | Path, pooling: str | None = None,
                normalize: bool | None = None) -> Path:
    """Export ``model_dir`` into ``out_dir`` (written whole into a temporary folder, then renamed into place);
    pooling and normalisation default to the folder's own sentence-transformers settings. Returns the .onnx path."""
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"{model_dir} is not a model folder (no config.json)")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ValueError(f"output folder {out_dir} exists and is not empty: give a new or empty folder")
    encoder = SentenceEncoder.from_pretrained(model_dir, device="cpu")
    pooling = pooling or getattr(encoder, "pooling", "mean")
    normalize = bool(getattr(encoder, "normalize", True)) if normalize is None else normalize
    graph = SentenceEmbeddingGraph(encoder.model, pooling, normalize)
    example = encoder.tokenizer(["a short text", "a second, longer example text"], padding=True,
                                return_tensors="pt")
    inputs = tuple(example[name].long() for name in INPUT_NAMES)
    positions = encoder.model.config.max_tokens
    batch, length = torch.export.Dim("batch"), torch.export.Dim("sequence", max=positions)
    dynamic = {name: {0: batch, 1: length} for name in INPUT_NAMES}
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    staging.chmod(0o777 & ~current_umask())  # mkdtemp's folder is private; the export is an ordinary folder
    try:
        for item in model_dir.iterdir():  # config, tokenizer, pooling / sentence-transformers files: not weights
            if item.is_dir():
                shutil.copytree(item, staging / item.name)
            elif not item.name.endswith(WEIGHT_SUFFIXES):
                shutil.copy2(item, staging / item.name)
        (staging / "onnx").mkdir()
        with torch.inference_mode(False):
            program = torch.onnx.export(graph, inputs, dynamo=True, input_names=INPUT_NAMES,
                                        output_names=OUTPUT_NAMES, dynamic_shapes=dynamic, opset_version=OPSET,
                                        external_data=False, verbose=False)
        program.save(str(staging / "onnx" / "model.onnx"))
        if out_dir.exists():
            out_dir.rmdir()  # empty, checked above
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir / "onnx" / "model.onnx"
