"""Request bodies of the text-embeddings-inference (v1.x) and OpenAI-style routes, as TEI's OpenAPI spells them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

TextOrIds = str | list[str] | list[int] | list[list[int]]  # one text, texts, one id sequence, id sequences
Direction = Literal["right", "left", "Right", "Left"]


class EmbedRequest(BaseModel):
    inputs: TextOrIds
    normalize: bool | None = None  # None: the model folder's own setting
    truncate: bool | None = None  # None: the server's --auto-truncate
    truncation_direction: Direction = "right"
    prompt_name: str | None = None
    dimensions: int | None = Field(default=None, ge=1)


class EmbedAllRequest(BaseModel):
    inputs: TextOrIds
    truncate: bool | None = None
    truncation_direction: Direction = "right"
    prompt_name: str | None = None


class TokenizeRequest(BaseModel):
    inputs: str | list[str]
    add_special_tokens: bool = True
    prompt_name: str | None = None


class DecodeRequest(BaseModel):
    ids: list[int] | list[list[int]]
    skip_special_tokens: bool = True


class PredictRequest(BaseModel):
    inputs: str | list[str] | list[list[str]]  # a text, a pair [a, b], or a batch of [text] / [a, b]
    truncate: bool | None = None
    truncation_direction: Direction = "right"
    raw_scores: bool = False
    adapter_id: str | None = None  # bertkit: which served adapter classifies (bertkit serve --adapter NAME=DIR)


class RerankRequest(BaseModel):
    query: str
    texts: list[str]
    truncate: bool | None = None
    truncation_direction: Direction = "right"
    raw_scores: bool = False
    return_text: bool = False


class SimilarityInput(BaseModel):
    source_sentence: str
    sentences: list[str]


class SimilarityParameters(BaseModel):
    truncate: bool | None = None
    truncation_direction: Direction = "right"
    prompt_name: str | None = None


class SimilarityRequest(BaseModel):
    inputs: SimilarityInput
    parameters: SimilarityParameters | None = None


class ClassificationParameters(BaseModel):
    """What ``InferenceClient.text_classification`` sends (the Hugging Face Inference API's task parameters)."""

    top_k: int | None = Field(default=None, ge=1)
    function_to_apply: Literal["sigmoid", "softmax", "none"] | None = None


class OpenAIEmbeddingsRequest(BaseModel):
    input: TextOrIds
    model: str | None = None
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None
