"""``torch.nn.Transformer`` weights → bertkit's encoder-decoder: the same computation, the blocks' names.

``nn.Transformer`` has no embeddings of its own (it takes embedded inputs), packs Q, K, V in one ``in_proj_weight``,
and closes each stack with a LayerNorm (``encoder.norm`` / ``decoder.norm``) in post-LN and pre-LN alike. Each of
its layers maps onto a bertkit layer half by half: ``self_attn`` → ``attention``, the decoder's ``multihead_attn``
→ ``crossattention``, ``linear1`` / ``linear2`` → ``intermediate`` / ``output``, ``norm1/2/3`` → the LayerNorm of
each half in order.
"""

from __future__ import annotations

import re

import torch

from ..config import Seq2SeqConfig

_HALVES = {"encoder": ("attention", "output"), "decoder": ("attention", "crossattention", "output")}
_ATTENTION = {"self_attn": "attention", "multihead_attn": "crossattention"}


def seq2seq_config(state_dict: dict[str, torch.Tensor], nhead: int, norm_first: bool = False,
                   activation: str = "relu", vocab_size: int = 32000, **fields) -> Seq2SeqConfig:
    """The Seq2SeqConfig of an ``nn.Transformer`` state dict (sizes read from the tensors; heads, pre-LN and the
    activation are not in a state dict, so they are given)."""
    d_model = state_dict["encoder.layers.0.linear1.weight"].shape[1]
    layers = {stack: 1 + max(int(m.group(1)) for k in state_dict if (m := re.match(rf"{stack}\.layers\.(\d+)\.", k)))
              for stack in ("encoder", "decoder")}
    return Seq2SeqConfig(**dict(
        vocab_size=vocab_size, hidden_size=d_model, num_attention_heads=nhead, num_hidden_layers=layers["encoder"],
        decoder_layers=layers["decoder"], intermediate_size=state_dict["encoder.layers.0.linear1.weight"].shape[0],
        decoder_ffn_dim=state_dict["decoder.layers.0.linear1.weight"].shape[0], hidden_act=activation,
        norm_first=norm_first, final_layer_norm=True, embedding_layer_norm=False,
        layer_norm_eps=1e-5) | fields)


def convert_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``nn.Transformer.state_dict()`` → the state-dict entries of a bertkit ``TransformerModel`` (its stacks; the
    embeddings are the caller's, as in ``nn.Transformer``)."""
    out: dict[str, torch.Tensor] = {}
    for name, tensor in state_dict.items():
        if match := re.fullmatch(r"(encoder|decoder)\.norm\.(weight|bias)", name):
            out[f"{match.group(1)}.encoder.LayerNorm.{match.group(2)}"] = tensor
            continue
        match = re.fullmatch(r"(encoder|decoder)\.layers\.(\d+)\.(.+)", name)
        if match is None:
            raise ValueError(f"{name} is not a torch.nn.Transformer weight (custom encoder or decoder?)")
        stack, index, rest = match.groups()
        layer = f"{stack}.encoder.layer.{index}."
        if attn := re.fullmatch(r"(self_attn|multihead_attn)\.in_proj_(weight|bias)", rest):
            half, kind = _ATTENTION[attn.group(1)], attn.group(2)
            for part, chunk in zip(("query", "key", "value"), tensor.chunk(3), strict=True):
                out[f"{layer}{half}.self.{part}.{kind}"] = chunk
        elif attn := re.fullmatch(r"(self_attn|multihead_attn)\.out_proj\.(weight|bias)", rest):
            out[f"{layer}{_ATTENTION[attn.group(1)]}.output.dense.{attn.group(2)}"] = tensor
        elif linear := re.fullmatch(r"linear([12])\.(weight|bias)", rest):
            module = "intermediate.dense" if linear.group(1) == "1" else "output.dense"
            out[f"{layer}{module}.{linear.group(2)}"] = tensor
        elif norm := re.fullmatch(r"norm([123])\.(weight|bias)", rest):
            out[f"{layer}{_HALVES[stack][int(norm.group(1)) - 1]}.output.LayerNorm.{norm.group(2)}"
                .replace("output.output.", "output.")] = tensor
        else:
            raise ValueError(f"{name} is not a torch.nn.Transformer weight")
    return out


def load_nn_transformer(model: torch.nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    """Copy an ``nn.Transformer``'s weights into a ``TransformerModel``; every stack weight must be matched."""
    converted = convert_state_dict(state_dict)
    own = model.state_dict()
    stacks = {n for n in own if ".encoder." in n and ".embeddings." not in n}
    missing = sorted(stacks - set(converted))
    wrong = [n for n, t in converted.items() if n not in own or own[n].shape != t.shape]
    if missing or wrong:
        raise ValueError(f"the nn.Transformer does not match this model's config: missing {missing[:4]}, "
                         f"unexpected or misshapen {wrong[:4]}")
    model.load_state_dict(converted, strict=False)
