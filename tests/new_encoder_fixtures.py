"""Shared by the tests of today's encoders: tiny transformers configs of RoFormer, XLM-R, DeBERTa-v2 and ModernBERT
over the fine-tuning fixtures' WordPiece vocabulary."""

import transformers

SIZES = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, pad_token_id=0)


def transformers_config(model_type: str, vocab_size: int) -> transformers.PretrainedConfig:
    """A tiny config of the architecture, with its position machinery switched on (rotary, buckets, windows)."""
    sizes = SIZES | dict(vocab_size=vocab_size)
    if model_type == "roformer":
        return transformers.RoFormerConfig(**sizes, embedding_size=32, max_position_embeddings=64)
    if model_type == "xlm-roberta":  # positions count from pad_token_id + 1
        return transformers.XLMRobertaConfig(**sizes, max_position_embeddings=66, bos_token_id=2, eos_token_id=3)
    if model_type == "deberta-v2":
        return transformers.DebertaV2Config(**sizes, max_position_embeddings=64, relative_attention=True,
                                            position_buckets=16, pos_att_type=["p2c", "c2p"], share_att_key=True,
                                            norm_rel_ebd="layer_norm", position_biased_input=False, type_vocab_size=0)
    return transformers.ModernBertConfig(**sizes, max_position_embeddings=128, local_attention=16,
                                         global_attn_every_n_layers=2, bos_token_id=2, eos_token_id=3,
                                         cls_token_id=2, sep_token_id=3)


ARCHITECTURES = ("roformer", "xlm-roberta", "deberta-v2", "modernbert")
