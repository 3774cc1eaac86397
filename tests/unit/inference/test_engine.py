"""The engine on real ONNX Runtime sessions: loading, verification, providers, metrics."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import REGISTRY

from cardiogate.inference import InferenceEngine, ModelError
from cardiogate.inference import providers as providers_module
from cardiogate.inference.engine import load_model
from tiny_model import write_model


def test_load_verify_warm_up_and_run(model_dir: Path) -> None:
    model = load_model(model_dir)
    assert model.provider == "CPUExecutionProvider"  # no NVIDIA device on this machine
    assert model.warmup_seconds > 0
    before = REGISTRY.get_sample_value(
        "cardiogate_inference_seconds_count",
        {"model": "tiny-calcium", "provider": "CPUExecutionProvider"},
    )
    x = np.linspace(-1, 1, 128, dtype=np.float32).reshape(2, 1, 8, 8)
    [y] = model.run({"image": x})
    np.testing.assert_allclose(y, np.maximum(x, 0) * 2)
    after = REGISTRY.get_sample_value(
        "cardiogate_inference_seconds_count",
        {"model": "tiny-calcium", "provider": "CPUExecutionProvider"},
    )
    assert after == (before or 0) + 1
    info = {
        "model": "tiny-calcium",
        "version": "0.0.1",
        "task": "calcium",
        "provider": "CPUExecutionProvider",
    }
    assert REGISTRY.get_sample_value("cardiogate_model_info", info) == 1


def test_changed_model_is_refused(model_dir: Path) -> None:
    with (model_dir / "model.onnx").open("ab") as f:
        f.write(b"\x00")
    with pytest.raises(ModelError, match="does not match its card"):
        load_model(model_dir)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"training_data": ""}, "not a valid model card"),
        ({"task": "Calcium score"}, "not a valid model card"),  # not a task name
        (
            {"inputs": [{"name": "pixels", "shape": [1], "dtype": "float32"}]},
            "tensors the model lacks",
        ),
    ],
)
def test_bad_card_is_refused(tmp_path: Path, change: dict[str, object], message: str) -> None:
    folder = write_model(tmp_path / "m", **change)
    with pytest.raises(ModelError, match=message):
        load_model(folder)


def test_folder_without_model_file(model_dir: Path) -> None:
    (model_dir / "model.onnx").unlink()
    with pytest.raises(ModelError, match="needs both"):
        InferenceEngine.from_directory(model_dir.parent)


def test_engine_loads_every_folder_by_task(tmp_path: Path) -> None:
    write_model(tmp_path / "a", task="calcium")
    write_model(tmp_path / "b", task="stenosis")
    engine = InferenceEngine.from_directory(tmp_path)
    assert set(engine.models) == {"calcium", "stenosis"}
    assert "calcium" in engine
    write_model(tmp_path / "c", task="calcium")
    with pytest.raises(ModelError, match="two models for task"):
        InferenceEngine.from_directory(tmp_path)


def test_empty_models_dir(tmp_path: Path) -> None:
    engine = InferenceEngine.from_directory(tmp_path / "none")
    with pytest.raises(ModelError, match="no model is loaded for task calcium"):
        engine.get("calcium")


def test_sessions_are_shared_by_threads(model_dir: Path) -> None:
    model = load_model(model_dir)
    inputs = [np.full((1, 1, 8, 8), i, dtype=np.float32) for i in range(32)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda x: model.run({"image": x})[0], inputs))
    for i, y in enumerate(results):
        np.testing.assert_array_equal(y, np.full((1, 1, 8, 8), 2.0 * i, dtype=np.float32))


def test_gpu_probe_failure_falls_back_quietly(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """Pretend an NVIDIA device is present: the CUDA and TensorRT probes run for real, fail
    for want of libraries, and nothing of theirs reaches our console."""
    monkeypatch.setattr(providers_module, "nvidia_device_present", lambda: True)
    assert providers_module.choose_provider(
        providers_module.DEFAULT_PREFERENCE, model_dir / "model.onnx"
    ) == ("CPUExecutionProvider")
    out, err = capfd.readouterr()
    assert "EP Error" not in out + err
    assert "Failed to load library" not in out + err


def test_gpu_library_preload_goes_to_the_debug_log(
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """onnxruntime.preload_dlls prints what it cannot find; that belongs in the log."""
    monkeypatch.setattr(
        providers_module.ort,
        "preload_dlls",
        lambda: print("Failed to load libcudnn.so.9: not found"),
        raising=False,
    )
    with caplog.at_level("DEBUG", logger="cardiogate.inference.providers"):
        providers_module.preload_gpu_libraries()
    out, err = capfd.readouterr()
    assert out + err == ""
    assert "libcudnn.so.9" in caplog.text


def test_loading_prints_nothing_to_the_console(model_dir: Path) -> None:
    script = (
        "import logging, sys; from pathlib import Path;"
        "from cardiogate.inference.engine import load_model;"
        f"print(load_model(Path({str(model_dir)!r})).provider)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "CPUExecutionProvider"
    assert result.stderr == ""


def test_card_fields_round_trip(model_dir: Path) -> None:
    card = json.loads((model_dir / "card.json").read_text())
    model = load_model(model_dir)
    assert model.card.sha256 == card["sha256"]
    assert model.card.clinical_use == "not for clinical use"
