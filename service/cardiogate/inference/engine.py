"""The inference engine: one ONNX Runtime session per model folder, loaded at start-up.

Every folder under the models directory with a ``card.json`` is loaded, checksum-verified
and warmed up; any failure stops start-up with a message naming the folder. Sessions are
shared by worker threads (ONNX Runtime's ``run`` is thread-safe) and every run is timed into
``cardiogate_inference_seconds{model, provider}``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from cardiogate.errors import CardiogateError
from cardiogate.inference.card import CARD_FILE, MODEL_FILE, CardError, ModelCard, read_card
from cardiogate.inference.providers import CPU, DEFAULT_PREFERENCE, choose_provider
from cardiogate.metrics import INFERENCE_SECONDS, MODEL_INFO

log = logging.getLogger(__name__)


class ModelError(CardiogateError):
    """A model could not be loaded, verified, warmed up or run."""


_NUMPY: dict[str, type[np.generic]] = {
    "float32": np.float32,
    "float16": np.float16,
    "int64": np.int64,
    "int32": np.int32,
    "uint8": np.uint8,
    "bool": np.bool_,
}


@dataclass(frozen=True)
class LoadedModel:
    card: ModelCard
    folder: Path
    session: ort.InferenceSession
    provider: str
    warmup_seconds: float

    def run(self, inputs: dict[str, np.ndarray[Any, Any]]) -> list[np.ndarray[Any, Any]]:
        """Run the model; returns the outputs in the card's order."""
        started = time.perf_counter()
        try:
            outputs = self.session.run([o.name for o in self.card.outputs], inputs)
        except Exception as e:  # onnxruntime raises its own exception types
            raise ModelError(f"model {self.card.name} failed to run: {e}") from e
        INFERENCE_SECONDS.labels(self.card.name, self.provider).observe(
            time.perf_counter() - started
        )
        return list(outputs)


def _check_graph(card: ModelCard, session: ort.InferenceSession, folder: Path) -> None:
    graph_inputs = {i.name for i in session.get_inputs()}
    graph_outputs = {o.name for o in session.get_outputs()}
    missing = [s.name for s in card.inputs if s.name not in graph_inputs]
    missing += [s.name for s in card.outputs if s.name not in graph_outputs]
    if missing:
        raise ModelError(f"{folder}: the card names tensors the model lacks: {missing}")


WARMUP_DIMENSION = 64  # a dynamic spatial size every fully convolutional network can take


def _warmup_inputs(card: ModelCard) -> dict[str, np.ndarray[Any, Any]]:
    """Zeros of each input's shape: dynamic ``batch`` dimensions 1, other dynamic ones 64."""

    def size(d: int | str) -> int:
        if isinstance(d, int):
            return d
        return 1 if "batch" in d.lower() else WARMUP_DIMENSION

    return {
        spec.name: np.zeros([size(d) for d in spec.shape], dtype=_NUMPY[spec.dtype])
        for spec in card.inputs
    }


def load_model(
    folder: Path, preference: Sequence[str] = DEFAULT_PREFERENCE, cache_dir: Path | None = None
) -> LoadedModel:
    """Verify, load and warm up one model folder."""
    try:
        card = read_card(folder)
    except CardError as e:
        raise ModelError(str(e)) from e
    model_path = folder / MODEL_FILE
    provider = choose_provider(preference, model_path)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    provider_options: dict[str, Any] = {}
    if provider == "TensorrtExecutionProvider" and cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        provider_options = {
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": str(cache_dir),
        }
    providers: list[Any] = [(provider, provider_options)] if provider != CPU else []
    providers.append(CPU)
    try:
        session = ort.InferenceSession(str(model_path), options, providers=providers)
    except Exception as e:
        raise ModelError(f"{folder}: ONNX Runtime cannot load the model: {e}") from e
    _check_graph(card, session, folder)
    actual = session.get_providers()[0]
    started = time.perf_counter()
    try:
        session.run(None, _warmup_inputs(card))
    except Exception as e:
        raise ModelError(f"{folder}: warm-up inference failed: {e}") from e
    model = LoadedModel(card, folder, session, actual, time.perf_counter() - started)
    MODEL_INFO.labels(card.name, card.version, card.task, actual).set(1)
    log.info(
        "model %s %s (%s) loaded on %s; warm-up %.2f s; %s",
        card.name,
        card.version,
        card.task,
        actual,
        model.warmup_seconds,
        card.clinical_use,
    )
    return model


def load_candidates(
    candidates_dir: Path,
    serving: dict[str, LoadedModel],
    preference: Sequence[str] = DEFAULT_PREFERENCE,
    cache_dir: Path | None = None,
) -> dict[str, LoadedModel]:
    """Every ``<candidates_dir>/<task>/card.json`` folder (shadow mode) whose task has a
    serving model. Unlike a serving model, a bad candidate is logged, naming its folder, and
    skipped: it must not stop the service."""
    candidates: dict[str, LoadedModel] = {}
    folders = (
        sorted(p.parent for p in candidates_dir.glob(f"*/{CARD_FILE}"))
        if candidates_dir.is_dir()
        else []
    )
    for folder in folders:
        try:
            model = load_model(folder, preference, cache_dir)
        except ModelError as e:
            log.error("candidate model in %s skipped: %s", folder, e)
            continue
        task = model.card.task
        if task != folder.name:
            log.error(
                "candidate model in %s skipped: its card's task is %s; the folder must be "
                "named after its task",
                folder,
                task,
            )
        elif task not in serving:
            log.error(
                "candidate model in %s skipped: no serving model for task %s to compare with",
                folder,
                task,
            )
        else:
            candidates[task] = model
            log.info(
                "candidate model %s %s runs in shadow beside %s %s (%s): compared, never sent",
                model.card.name,
                model.card.version,
                serving[task].card.name,
                serving[task].card.version,
                task,
            )
    return candidates


class InferenceEngine:
    """Every model in the models directory, by task, and the candidate models that run in
    shadow beside them (:mod:`cardiogate.learning.shadow`)."""

    def __init__(
        self, models: dict[str, LoadedModel], candidates: dict[str, LoadedModel] | None = None
    ) -> None:
        self._models = models
        self._candidates = candidates or {}

    @classmethod
    def from_directory(
        cls,
        models_dir: Path,
        preference: Sequence[str] = DEFAULT_PREFERENCE,
        cache_dir: Path | None = None,
        candidates_dir: Path | None = None,
    ) -> InferenceEngine:
        """Load every ``<models_dir>/*/card.json`` folder, failing on the first bad one,
        and the candidates of ``candidates_dir`` (default ``<models_dir>/candidates``;
        :func:`load_candidates`). The candidates and archive folders sit one level deeper
        (``candidates/<task>/card.json``), so the serving glob never picks them up."""
        models: dict[str, LoadedModel] = {}
        folders = (
            sorted(p.parent for p in models_dir.glob(f"*/{CARD_FILE}"))
            if models_dir.is_dir()
            else []
        )
        for folder in folders:
            model = load_model(folder, preference, cache_dir)
            if model.card.task in models:
                raise ModelError(
                    f"two models for task {model.card.task}: {models[model.card.task].folder} "
                    f"and {folder}; keep one"
                )
            models[model.card.task] = model
        if not folders:
            log.warning("no models found in %s; analyses will not run", models_dir)
        candidates = load_candidates(
            models_dir / "candidates" if candidates_dir is None else candidates_dir,
            models,
            preference,
            cache_dir,
        )
        return cls(models, candidates)

    def get(self, task: str) -> LoadedModel:
        try:
            return self._models[task]
        except KeyError:
            raise ModelError(f"no model is loaded for task {task}") from None

    def __contains__(self, task: str) -> bool:
        return task in self._models

    @property
    def models(self) -> dict[str, LoadedModel]:
        return dict(self._models)

    def candidate(self, task: str) -> LoadedModel | None:
        """The candidate model running in shadow for ``task``, if one is loaded."""
        return self._candidates.get(task)

    @property
    def candidates(self) -> dict[str, LoadedModel]:
        return dict(self._candidates)
