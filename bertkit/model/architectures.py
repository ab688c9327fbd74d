"""What distinguishes the architectures of the family on disk: their ``config.json`` fields and defaults, and the
names transformers gives their weights. The blocks are shared; this table maps each ``model_type`` onto them.

Names: bertkit's modules carry BERT's names (``encoder.layer.3.attention.self.query``) in every architecture; an
architecture whose transformers names differ (ALBERT, DistilBERT, the heads of RoBERTa / ELECTRA) lists regex
renames from bertkit's name to transformers'. Loading and saving apply them, so checkpoints map one to one.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..config import BertConfig
from .deberta_v2_architecture import DEBERTA_V2_SPEC
from .modernbert_architecture import MODERNBERT_SPEC
from .t5_architecture import T5_SPEC, t5_feed_forward_proj
from .xlnet_architecture import XLNET_SPEC

Rename = tuple[str, str | Callable[[re.Match, BertConfig], str]]

# Fields every architecture writes, with transformers' BERT names.
COMMON_FIELDS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                 "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings",
                 "type_vocab_size", "initializer_range", "layer_norm_eps", "pad_token_id", "position_embedding_type")
# config.json keys that do not change what the encoder computes (bookkeeping, generation, task-head settings).
IGNORED_KEYS = frozenset({
    "architectures", "model_type", "transformers_version", "_name_or_path", "dtype", "torch_dtype", "use_cache",
    "output_attentions", "output_hidden_states", "return_dict", "is_encoder_decoder", "chunk_size_feed_forward",
    "sep_token_id", "cls_token_id", "decoder_start_token_id", "gradient_checkpointing",
    "output_past", "directionality", "pooler_fc_size", "pooler_num_attention_heads", "pooler_num_fc_layers",
    "pooler_size_per_head", "pooler_type", "tokenizer_class", "prefix", "task_specific_params", "finetuning_task",
    "use_bfloat16", "torchscript", "tf_legacy_loss", "id2label", "label2id", "num_labels", "problem_type",
    "classifier_dropout", "max_length", "min_length", "do_sample", "early_stopping", "num_beams", "temperature",
    "top_k", "top_p", "repetition_penalty", "length_penalty", "no_repeat_ngram_size", "bad_words_ids",
    # refused by refuse_unsupported() when set; harmless at their defaults
    "pruned_heads", "tie_word_embeddings",
    "auto_map",  # the class transformers loads a folder's own head with (finetuning/remote.py)
})
# bertkit's fine-tuned folders: the task head's settings and how inputs were prepared, read by the fine-tuning
# layer's TaskConfig; an encoder loaded alone from such a folder has no use for them
TASK_KEYS = frozenset({"classifier_head", "classifier_inner_size", "pooling", "finetuning"})
IGNORED_KEYS |= TASK_KEYS


@dataclass(frozen=True)
class Architecture:
    """One ``model_type``: its weight prefix, config fields and transformers' names for bertkit's modules."""

    model_type: str
    prefix: str  # attribute of the encoder inside head models, and the checkpoints' name prefix
    defaults: dict[str, Any]  # transformers' config defaults, for fields a config.json omits
    renamed_fields: dict[str, str] = field(default_factory=dict)  # config.json name → bertkit field
    extra_fields: tuple[str, ...] = ()  # bertkit fields this architecture writes besides COMMON_FIELDS
    fixed: dict[str, Any] = field(default_factory=dict)  # bertkit fields the architecture does not let vary
    ignored: frozenset[str] = frozenset()
    renames: tuple[Rename, ...] = ()  # bertkit weight name (regex) → transformers' name
    seq2seq: bool = False  # an encoder-decoder (Seq2SeqConfig, AutoModelForSeq2SeqLM)
    written: tuple[str, ...] | None = None  # the fields its config.json has, instead of COMMON_FIELDS
    copies: dict[str, str] = field(default_factory=dict)  # config.json name → the name it must equal (one field)
    required: dict[str, Any] = field(default_factory=dict)  # config.json settings allowed only at these values
    derived: Callable[[dict[str, Any]], dict[str, Any]] | None = None  # fills fields whose default depends on others
    unwritten: tuple[str, ...] = ()  # bertkit fields config.json carries inside another field (T5's dropout_rate)


def _albert_layer(match: re.Match, config: BertConfig) -> str:
    """bertkit's unique layer k → ALBERT's albert_layer_groups.G.albert_layers.J (k = G·inner + J)."""
    group, inner = divmod(int(match.group(1)), config.inner_group_num)
    return f"encoder.albert_layer_groups.{group}.albert_layers.{inner}."


BERT_DEFAULTS = {f.name: f.default for f in dataclasses.fields(BertConfig) if f.default is not dataclasses.MISSING}
ARCHITECTURES: dict[str, Architecture] = {
    arch.model_type: arch for arch in (
        Architecture("bert", "bert", BERT_DEFAULTS),
        Architecture("roberta", "roberta", BERT_DEFAULTS | {"vocab_size": 50265, "pad_token_id": 1}, renames=(
            (r"cls\.predictions\.transform\.dense\.", "lm_head.dense."),
            (r"cls\.predictions\.transform\.LayerNorm\.", "lm_head.layer_norm."),
            (r"cls\.predictions\.decoder\.", "lm_head.decoder."),
            (r"cls\.predictions\.bias", "lm_head.bias"),
        )),
        Architecture("albert", "albert", BERT_DEFAULTS | dict(
            vocab_size=30000, embedding_size=128, hidden_size=4096, num_attention_heads=64, intermediate_size=16384,
            hidden_act="gelu_new", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, num_hidden_groups=1,
            inner_group_num=1, classifier_dropout_prob=0.1),
            extra_fields=("embedding_size", "num_hidden_groups", "inner_group_num", "classifier_dropout_prob"),
            renames=(
                (r"encoder\.layer\.(\d+)\.", _albert_layer),
                (r"attention\.self\.", "attention."),
                (r"attention\.output\.dense\.", "attention.dense."),
                (r"attention\.output\.LayerNorm\.", "attention.LayerNorm."),
                (r"intermediate\.dense\.", "ffn."),
                (r"(albert_layers\.\d+)\.output\.dense\.", r"\1.ffn_output."),
                (r"(albert_layers\.\d+)\.output\.LayerNorm\.", r"\1.full_layer_layer_norm."),
                (r"embeddings_project\.", "encoder.embedding_hidden_mapping_in."),
                (r"pooler\.dense\.", "pooler."),
                (r"cls\.predictions\.transform\.", "predictions."),
                (r"cls\.predictions\.", "predictions."),
                (r"cls\.seq_relationship\.", "sop_classifier.classifier."),
            )),
        Architecture("electra", "electra", BERT_DEFAULTS | dict(
            embedding_size=128, hidden_size=256, num_attention_heads=4, intermediate_size=1024),
            extra_fields=("embedding_size",),
            ignored=frozenset({"summary_type", "summary_use_proj", "summary_activation", "summary_last_dropout"}),
            renames=(
                (r"cls\.predictions\.transform\.", "generator_predictions."),
                (r"cls\.predictions\.decoder\.", "generator_lm_head."),
                (r"cls\.predictions\.bias", "generator_lm_head.bias"),
            )),
        Architecture("distilbert", "distilbert", BERT_DEFAULTS | dict(num_hidden_layers=6),
            renamed_fields=dict(dim="hidden_size", n_layers="num_hidden_layers", n_heads="num_attention_heads",
                                hidden_dim="intermediate_size", activation="hidden_act", dropout="hidden_dropout_prob",
                                attention_dropout="attention_probs_dropout_prob"),
            fixed=dict(type_vocab_size=0, layer_norm_eps=1e-12),
            ignored=frozenset({"qa_dropout", "seq_classif_dropout", "tie_weights_"}),
            renames=(
                (r"encoder\.layer\.", "transformer.layer."),
                (r"attention\.self\.query\.", "attention.q_lin."),
                (r"attention\.self\.key\.", "attention.k_lin."),
                (r"attention\.self\.value\.", "attention.v_lin."),
                (r"attention\.output\.dense\.", "attention.out_lin."),
                (r"attention\.output\.LayerNorm\.", "sa_layer_norm."),
                (r"intermediate\.dense\.", "ffn.lin1."),
                (r"(layer\.\d+)\.output\.dense\.", r"\1.ffn.lin2."),
                (r"(layer\.\d+)\.output\.LayerNorm\.", r"\1.output_layer_norm."),
                (r"cls\.predictions\.transform\.dense\.", "vocab_transform."),
                (r"cls\.predictions\.transform\.LayerNorm\.", "vocab_layer_norm."),
                (r"cls\.predictions\.decoder\.", "vocab_projector."),
                (r"cls\.predictions\.bias", "vocab_projector.bias"),
            )),
        Architecture("ernie", "ernie", BERT_DEFAULTS, extra_fields=("task_type_vocab_size", "use_task_id")),
        # NEZHA's config.json has no position_embedding_type: its positions are always the relative encoding
        Architecture("nezha", "nezha", BERT_DEFAULTS | dict(vocab_size=21128, bos_token_id=2, eos_token_id=3),
                     extra_fields=("max_relative_position", "bos_token_id", "eos_token_id"),
                     fixed=dict(position_embedding_type="nezha"), ignored=frozenset({"use_relative_position"})),
        # RoFormer's config.json names no position type: its positions are rotary, over the whole head
        Architecture("roformer", "roformer", BERT_DEFAULTS | dict(vocab_size=50000, max_position_embeddings=1536),
                     extra_fields=("embedding_size", "rotary_value", "bos_token_id", "eos_token_id"),
                     fixed=dict(position_embedding_type="rotary", rotary_dim=None, rotary_base=10000.0)),
        Architecture("xlm", "transformer", BERT_DEFAULTS | dict(
            vocab_size=30145, hidden_size=2048, num_attention_heads=16, intermediate_size=None, pad_token_id=2,
            bos_token_id=0, eos_token_id=1),
            renamed_fields=dict(emb_dim="hidden_size", n_layers="num_hidden_layers", n_heads="num_attention_heads",
                                dropout="hidden_dropout_prob", attention_dropout="attention_probs_dropout_prob",
                                init_std="initializer_range", gelu_activation="hidden_act", n_words="vocab_size",
                                pad_index="pad_token_id", bos_index="bos_token_id", eos_index="eos_token_id"),
            written=("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "hidden_act",
                     "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings",
                     "initializer_range", "layer_norm_eps", "pad_token_id", "bos_token_id", "eos_token_id", "n_langs",
                     "use_lang_emb"),
            # post-LN, learned positions, no segment table (segment ids index the word embeddings, xlm.py)
            fixed=dict(type_vocab_size=0, norm_first=False, position_embedding_type="absolute"),
            required=dict(sinusoidal_embeddings=False, causal=False, asm=False, is_encoder=True),
            ignored=frozenset({"summary_type", "summary_use_proj", "summary_activation", "summary_proj_to_labels",
                               "summary_first_dropout", "start_n_top", "end_n_top", "mask_token_id", "lang_id",
                               "unk_index", "mask_index", "id2lang", "lang2id", "embed_init_std"}),
            derived=lambda f: f | dict(intermediate_size=4 * f["hidden_size"], hidden_act={
                True: "gelu", False: "relu"}.get(f["hidden_act"], f["hidden_act"])),
            renames=(
                (r"embeddings\.word_embeddings\.", "embeddings."),
                (r"embeddings\.position_embeddings\.", "position_embeddings."),
                (r"embeddings\.lang_embeddings\.", "lang_embeddings."),
                (r"embeddings\.LayerNorm\.", "layer_norm_emb."),
                (r"encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)\.",
                 lambda m, c: f"attentions.{m.group(1)}.{m.group(2)[0]}_lin."),
                (r"encoder\.layer\.(\d+)\.attention\.output\.dense\.", r"attentions.\1.out_lin."),
                (r"encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.", r"layer_norm1.\1."),
                (r"encoder\.layer\.(\d+)\.intermediate\.dense\.", r"ffns.\1.lin1."),
                (r"encoder\.layer\.(\d+)\.output\.dense\.", r"ffns.\1.lin2."),
                (r"encoder\.layer\.(\d+)\.output\.LayerNorm\.", r"layer_norm2.\1."),
            )),
        Architecture("gpt2", "transformer", BERT_DEFAULTS | dict(
            vocab_size=50257, max_position_embeddings=1024, intermediate_size=None, hidden_act="gelu_new",
            layer_norm_eps=1e-5, pad_token_id=None, bos_token_id=50256, eos_token_id=50256),
            renamed_fields=dict(n_embd="hidden_size", n_layer="num_hidden_layers", n_head="num_attention_heads",
                                n_inner="intermediate_size", n_positions="max_position_embeddings",
                                activation_function="hidden_act", resid_pdrop="hidden_dropout_prob",
                                attn_pdrop="attention_probs_dropout_prob", layer_norm_epsilon="layer_norm_eps"),
            extra_fields=("bos_token_id", "eos_token_id"),
            # GPT-2 as the blocks compute it: pre-LN, causal, no segments, learned positions
            fixed=dict(type_vocab_size=0, norm_first=True, is_decoder=True, position_embedding_type="absolute"),
            copies=dict(embd_pdrop="resid_pdrop"),  # bertkit has one dropout for embeddings and residuals
            required=dict(scale_attn_weights=True, scale_attn_by_inverse_layer_idx=False,
                          reorder_and_upcast_attn=False, add_cross_attention=False),
            ignored=frozenset({"n_ctx", "summary_type", "summary_use_proj", "summary_activation",
                               "summary_proj_to_labels", "summary_first_dropout"}),
            derived=lambda f: f | dict(intermediate_size=f.get("intermediate_size") or 4 * f["hidden_size"]),
            renames=(
                (r"embeddings\.word_embeddings\.", "wte."),
                (r"embeddings\.position_embeddings\.", "wpe."),
                (r"encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.", r"h.\1.ln_1."),
                # query / key / value are one Conv1D c_attn in GPT-2: gpt2.py splits and joins it
                (r"encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)\.", r"h.\1.attn.c_attn.\2."),
                (r"encoder\.layer\.(\d+)\.attention\.output\.dense\.", r"h.\1.attn.c_proj."),
                (r"encoder\.layer\.(\d+)\.intermediate\.dense\.", r"h.\1.mlp.c_fc."),
                (r"encoder\.layer\.(\d+)\.output\.dense\.", r"h.\1.mlp.c_proj."),
                (r"encoder\.layer\.(\d+)\.output\.LayerNorm\.", r"h.\1.ln_2."),
                (r"encoder\.LayerNorm\.", "ln_f."),
            )),
    )
}

# -- encoder-decoders: bertkit's Transformer, BART, Marian (T5: t5_architecture.py) -----------------------------
# transformers' BART / Marian names for the stacks' modules (each layer: self_attn, encoder_attn, fc1, fc2 and a
# LayerNorm after each half); the crossattention renames come first, as ``attention.self.`` is inside them.
_SEQ2SEQ_RENAMES: tuple[Rename, ...] = (
    (r"(en|de)coder\.embeddings\.word_embeddings\.", r"\1coder.embed_tokens."),
    (r"(en|de)coder\.embeddings\.position_embeddings\.", r"\1coder.embed_positions."),
    (r"(en|de)coder\.embeddings\.LayerNorm\.", r"\1coder.layernorm_embedding."),
    (r"(en|de)coder\.encoder\.layer\.", r"\1coder.layers."),
    (r"(en|de)coder\.encoder\.LayerNorm\.", r"\1coder.layer_norm."),
    (r"\.crossattention\.self\.(query|key|value)\.", lambda m, c: f".encoder_attn.{m.group(1)[0]}_proj."),
    (r"\.crossattention\.output\.dense\.", ".encoder_attn.out_proj."),
    (r"\.crossattention\.output\.LayerNorm\.", ".encoder_attn_layer_norm."),
    (r"\.attention\.self\.(query|key|value)\.", lambda m, c: f".self_attn.{m.group(1)[0]}_proj."),
    (r"\.attention\.output\.dense\.", ".self_attn.out_proj."),
    (r"\.attention\.output\.LayerNorm\.", ".self_attn_layer_norm."),
    (r"\.intermediate\.dense\.", ".fc1."),
    (r"(layers\.\d+)\.output\.dense\.", r"\1.fc2."),
    (r"(layers\.\d+)\.output\.LayerNorm\.", r"\1.final_layer_norm."),
)
_SEQ2SEQ_FIELDS = dict(d_model="hidden_size", encoder_layers="num_hidden_layers",
                       encoder_attention_heads="num_attention_heads", encoder_ffn_dim="intermediate_size",
                       activation_function="hidden_act", dropout="hidden_dropout_prob",
                       attention_dropout="attention_probs_dropout_prob", init_std="initializer_range")
_SEQ2SEQ_WRITTEN = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                    "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob", "activation_dropout",
                    "max_position_embeddings", "initializer_range", "pad_token_id", "scale_embedding")
# config.json keys of BART / Marian that change nothing at their usual values (refuse_seq2seq checks them)
_SEQ2SEQ_IGNORED = frozenset({"encoder_layerdrop", "decoder_layerdrop", "forced_eos_token_id", "forced_bos_token_id",
                              "decoder_vocab_size", "normalize_before", "add_final_layer_norm", "normalize_embedding",
                              "static_position_embeddings", "add_bias_logits", "extra_pos_embeddings",
                              "num_hidden_layers", "classif_dropout", "gradient_checkpointing"})
_SEQ2SEQ_SIZES = dict(vocab_size=50265, hidden_size=1024, num_hidden_layers=12, num_attention_heads=16,
                      intermediate_size=4096, hidden_act="gelu", hidden_dropout_prob=0.1,
                      attention_probs_dropout_prob=0.0, activation_dropout=0.0, max_position_embeddings=1024,
                      initializer_range=0.02, scale_embedding=False, decoder_layers=12, decoder_attention_heads=16,
                      decoder_ffn_dim=4096)
_SEQ2SEQ_FIXED = dict(type_vocab_size=0, layer_norm_eps=1e-5, norm_first=False, final_layer_norm=False,
                      add_final_logits_bias=True)
for _arch in (
    Architecture("transformer", "model", {}, seq2seq=True),  # bertkit's own names (nn.Transformer: nn_transformer)
    Architecture("bart", "model", _SEQ2SEQ_SIZES | dict(pad_token_id=1, bos_token_id=0, eos_token_id=2,
                                                        decoder_start_token_id=2),
                 renamed_fields=_SEQ2SEQ_FIELDS, ignored=_SEQ2SEQ_IGNORED, renames=_SEQ2SEQ_RENAMES, seq2seq=True,
                 written=_SEQ2SEQ_WRITTEN,
                 fixed=_SEQ2SEQ_FIXED | dict(position_embedding_type="absolute", position_offset=2,
                                             embedding_layer_norm=True, share_encoder_decoder_embeddings=True)),
    Architecture("marian", "model", _SEQ2SEQ_SIZES | dict(vocab_size=58101, pad_token_id=58100, eos_token_id=0,
                                                          decoder_start_token_id=58100),
                 renamed_fields=_SEQ2SEQ_FIELDS, ignored=_SEQ2SEQ_IGNORED, renames=_SEQ2SEQ_RENAMES, seq2seq=True,
                 written=_SEQ2SEQ_WRITTEN,
                 fixed=_SEQ2SEQ_FIXED | dict(position_embedding_type="sinusoidal", sinusoidal_layout="halves",
                                             position_offset=0, embedding_layer_norm=False)),
):
    ARCHITECTURES[_arch.model_type] = _arch


ARCHITECTURES["t5"] = Architecture("t5", "model", **T5_SPEC)  # its fields and names: t5_architecture.py
ARCHITECTURES["xlnet"] = Architecture("xlnet", "transformer", **XLNET_SPEC)  # xlnet_architecture.py
ARCHITECTURES["deberta-v2"] = Architecture("deberta-v2", "deberta", **DEBERTA_V2_SPEC)  # deberta_v2_architecture.py
ARCHITECTURES["modernbert"] = Architecture("modernbert", "model", **MODERNBERT_SPEC)  # modernbert_architecture.py
# XLM-R is RoBERTa under another name: its prefix, names and fields; only the defaults of XLMRobertaConfig
ARCHITECTURES["xlm-roberta"] = dataclasses.replace(ARCHITECTURES["roberta"], model_type="xlm-roberta",
                                                   defaults=BERT_DEFAULTS | {"pad_token_id": 1})
SUPPORTED = tuple(ARCHITECTURES)


def refuse_seq2seq(values: dict[str, Any]) -> None:
    """BART / Marian settings that change what is computed but are not built: layer drop, a target vocabulary of
    its own, the old configs' pre-LN / final-LayerNorm / logit-bias switches away from their BART values."""
    problems = [f"{key}={values[key]!r}" for key, usual in (
        ("encoder_layerdrop", 0.0), ("decoder_layerdrop", 0.0), ("normalize_before", False),
        ("add_final_layer_norm", False), ("add_bias_logits", False), ("static_position_embeddings",
                                                                      values.get("model_type") == "marian"),
        ("normalize_embedding", values.get("model_type") != "marian"), ("extra_pos_embeddings", None))
        if key in values and values[key] != usual and not (key == "extra_pos_embeddings" and values[key] == 2)]
    if values.get("decoder_vocab_size") not in (None, values.get("vocab_size")):
        problems.append(f"decoder_vocab_size={values['decoder_vocab_size']} ≠ vocab_size (a target vocabulary of "
                        "its own)")
    if problems:
        raise ValueError("config.json asks for what bertkit's encoder-decoder does not build: " + "; ".join(problems))


def architecture(model_type: str) -> Architecture:
    """The architecture of a ``model_type``; an unknown one is a clear error."""
    if model_type not in ARCHITECTURES:
        raise ValueError(f"model_type {model_type!r} is not supported by bertkit; it knows {', '.join(SUPPORTED)}")
    return ARCHITECTURES[model_type]


def refuse_unsupported(values: dict[str, Any]) -> None:
    """Settings transformers honours that the blocks do not compute: an error, never a silent difference."""
    problems = []
    if values.get("tie_word_embeddings") is False and not ARCHITECTURES.get(values.get("model_type"),
                                                                             ARCHITECTURES["bert"]).seq2seq:
        problems.append("tie_word_embeddings=false (bertkit's MLM decoder is the word-embedding matrix)")
    if values.get("pruned_heads"):  # from_pretrained prunes the built model; a bare config cannot say the shapes
        problems.append("pruned_heads (attention heads removed from some layers: load the folder with "
                        "from_pretrained, which removes them)")
    if problems:
        raise ValueError("config.json asks for what bertkit cannot compute: " + "; ".join(problems))


def config_fields(values: dict[str, Any], accepted: set[str]) -> dict[str, Any]:
    """bertkit field values of a ``config.json`` dict (old BERT configs without ``model_type`` are BERT's).

    ``accepted`` are the field names of the config class being built (a task config adds its label fields);
    a key that is neither one of them nor known to be harmless is refused, naming it.
    """
    arch = architecture(values.get("model_type") or "bert")
    if arch.seq2seq != ("decoder_layers" in accepted):
        kind = "an encoder-decoder: load it with bertkit.AutoModelForSeq2SeqLM" if arch.seq2seq else \
            "not an encoder-decoder: load it with bertkit.AutoModel"
        raise ValueError(f"a {arch.model_type!r} model is {kind}")
    refuse_unsupported(values)
    if arch.seq2seq:
        refuse_seq2seq(values)
    fields, unknown, unsupported = {}, [], []
    for key, value in values.items():
        name = arch.renamed_fields.get(key, key)
        if key in arch.required:
            if value != arch.required[key]:
                unsupported.append(f"{key}={value!r}")
        elif key in arch.copies:
            other = arch.copies[key]
            if value != values.get(other, arch.defaults.get(arch.renamed_fields.get(other, other))):
                unsupported.append(f"{key}={value!r} differing from {other}")
        elif key == "sinusoidal_pos_embds" and arch.model_type == "distilbert":
            if value:
                fields["position_embedding_type"] = "sinusoidal"
        elif name in accepted:
            fields[name] = value
        elif key not in IGNORED_KEYS and key not in arch.ignored:
            unknown.append(key)
    if unsupported:
        raise ValueError(f"config.json asks for what bertkit's {arch.model_type} blocks cannot compute: "
                         f"{'; '.join(unsupported)}")
    if unknown:
        raise ValueError(f"config.json has field(s) bertkit does not know for model_type {arch.model_type!r}: "
                         f"{', '.join(sorted(unknown))}; refusing rather than ignoring them")
    defaults = {k: v for k, v in arch.defaults.items() if k in accepted and k not in fields}
    for name, value in arch.fixed.items():
        if name in fields and fields[name] != value:
            raise ValueError(f"{arch.model_type} models have {name}={value!r}; config.json says {fields[name]!r}")
    fields = defaults | fields | {k: v for k, v in arch.fixed.items() if k in accepted}
    fields["model_type"] = arch.model_type
    if arch.derived is not None:
        fields = arch.derived(fields)
    nullable = ("embedding_size", "num_hidden_groups", "pad_token_id", "bos_token_id", "eos_token_id", "mem_len",
                "reuse_len")
    return {k: v for k, v in fields.items() if v is not None or k in nullable}


def config_values(config: BertConfig) -> dict[str, Any]:
    """The ``config.json`` dict of a config: transformers' field names for its architecture, plus bertkit's own
    fields where they leave their defaults (and any fields a subclass adds, such as a task's labels)."""
    arch = architecture(config.model_type)
    to_json = {bertkit: name for name, bertkit in arch.renamed_fields.items()}
    values: dict[str, Any] = {"architectures": [], "model_type": arch.model_type}
    for name in (arch.written or COMMON_FIELDS) + arch.extra_fields:
        if name in arch.fixed:
            continue
        value = getattr(config, name)
        if name == "position_embedding_type" and arch.model_type == "distilbert" and value in ("absolute",
                                                                                             "sinusoidal"):
            values["sinusoidal_pos_embds"] = value == "sinusoidal"
            continue
        if name == "hidden_act" and arch.model_type == "xlm":  # XLM's switch: gelu_activation true / false
            value = value == "gelu"
        if name == "hidden_act" and arch.model_type == "t5":  # T5's feed_forward_proj: relu, gated-gelu, …
            value = t5_feed_forward_proj(config)
        if name == "embedding_size" and value is None:
            value = config.hidden_size
        values[to_json.get(name, name)] = value
    values |= {name: values[other] for name, other in arch.copies.items()} | arch.required
    base = {f.name: f for f in dataclasses.fields(BertConfig)}
    for name, spec in base.items():  # bertkit-only settings (pre-LN, relative bias, sharing in a BERT, …)
        value = getattr(config, name)
        if name not in values and name not in to_json and name not in arch.fixed and name != "model_type" \
                and name not in arch.unwritten and value != spec.default:  # fixed ones are restored on reading
            values[name] = value
    for spec in dataclasses.fields(config):
        if spec.name not in base and spec.name not in arch.fixed and spec.name not in arch.ignored:
            values[to_json.get(spec.name, spec.name)] = getattr(config, spec.name)
    return values


def hf_name(name: str, config: BertConfig) -> str:
    """transformers' name for one of bertkit's weight names."""
    for pattern, replacement in architecture(config.model_type).renames:
        if callable(replacement):
            name = re.sub(pattern, lambda m, r=replacement: r(m, config), name)
        else:
            name = re.sub(pattern, replacement, name)
    return name
