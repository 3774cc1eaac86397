"""The model card: the contract between a model folder and the service.

A model is a folder with ``model.onnx`` and ``card.json``; users bring their own weights by
dropping such a folder into the models directory. docs/models.md documents every field.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cardiogate.errors import CardiogateError
from cardiogate.inference.ood import OODProfile

CARD_FILE = "card.json"
MODEL_FILE = "model.onnx"
DTYPES = ("float32", "float16", "int64", "int32", "uint8", "bool")


class CardError(CardiogateError):
    """A model folder's card is missing, malformed or does not match its model."""


class TensorSpec(BaseModel):
    """One input or output: its name in the ONNX graph, shape and element type.

    Shape entries are integers or names of dynamic dimensions (e.g. ``"batch"``).
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    shape: list[int | str]
    dtype: Literal["float32", "float16", "int64", "int32", "uint8", "bool"]


class ModelCard(BaseModel):
    """``card.json``: what the model is, how to feed it and what it was trained on."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    name: str = Field(min_length=1, max_length=64)
    version: str = Field(min_length=1, max_length=32)
    task: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")  # an installed task's name
    description: str = ""
    inputs: list[TensorSpec] = Field(min_length=1)
    outputs: list[TensorSpec] = Field(min_length=1)
    preprocessing: dict[str, Any] = Field(default_factory=dict)
    postprocessing: dict[str, Any] = Field(default_factory=dict)
    labels: list[str] = Field(default_factory=list)
    training_data: str = Field(min_length=1)
    metrics: dict[str, Any] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    intended_use: str = Field(min_length=1)
    clinical_use: Literal["not for clinical use", "cleared"] = "not for clinical use"
    license: str = ""
    authors: str = ""
    ood: OODProfile | None = None  # out-of-distribution check (cardiogate.inference.ood)

    @field_validator("inputs", "outputs")
    @classmethod
    def _unique_names(cls, specs: list[TensorSpec]) -> list[TensorSpec]:
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError("tensor names must be unique")
        return specs


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_card(folder: Path) -> ModelCard:
    """Read and validate ``folder/card.json`` and check ``model.onnx`` against its sha256.

    Raises
    ------
    CardError
        Naming the folder and what is wrong.
    """
    card_path, model_path = folder / CARD_FILE, folder / MODEL_FILE
    if not card_path.is_file() or not model_path.is_file():
        raise CardError(f"model folder {folder} needs both {CARD_FILE} and {MODEL_FILE}")
    try:
        card = ModelCard.model_validate(json.loads(card_path.read_text()))
    except (json.JSONDecodeError, ValidationError) as e:
        raise CardError(f"{card_path} is not a valid model card: {e}") from e
    actual = file_sha256(model_path)
    if actual != card.sha256:
        raise CardError(
            f"{model_path} does not match its card: sha256 {actual[:12]}..., "
            f"card says {card.sha256[:12]}... (refusing a model that was changed)"
        )
    return card
