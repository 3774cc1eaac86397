"""ONNX Runtime engine and model registry (cards, checksums, providers)."""

from cardiogate.inference.card import ModelCard, TensorSpec
from cardiogate.inference.engine import InferenceEngine, LoadedModel, ModelError

__all__ = ["InferenceEngine", "LoadedModel", "ModelCard", "ModelError", "TensorSpec"]
