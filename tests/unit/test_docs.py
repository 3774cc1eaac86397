"""The documentation site: its generated pages match the code, every setting is described, it
builds with ``mkdocs build --strict``, and its executed examples still come out as shown."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, DOCS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


generate = _load("generate")
examples_run = sys.modules["examples_run"]


@pytest.mark.parametrize("page", sorted(generate.PAGES))
def test_the_generated_page_matches_the_code(page: str) -> None:
    assert (DOCS / page).read_text() == generate.PAGES[page](), (
        f"docs/{page} is out of date: run make docs"
    )


def test_every_setting_has_a_description() -> None:
    assert generate.undescribed_settings() == []


def test_a_setting_without_a_description_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import BaseModel

    class Bare(BaseModel):
        described: int = 0
        bare: int = 0

    Bare.model_fields["described"].description = "says what it is"
    monkeypatch.setattr(generate, "setting_models", lambda: iter([("Bare", Bare)]))
    assert generate.undescribed_settings() == ["Bare.bare"]


def test_the_settings_page_names_every_variable_and_each_task_setting() -> None:
    from cardiogate.config import Settings

    page = generate.settings_page()
    for name in Settings.model_fields:
        assert f"`CARDIOGATE_{name.upper()}`" in page
    assert "`CARDIOGATE_REQUIRE_CALLED_AE_TITLE` | boolean | `true` |" in page
    assert "`CARDIOGATE_CALCIUM_THRESHOLD_HU` | number, at least 0 | `130` |" in page
    assert "`calcium_slice_thickness_mm` | JSON list [number, number] | `[2.0, 3.5]` |" in page
    assert "`CARDIOGATE_STENOSIS_MAX_FRAMES`" in page
    assert "ctqc" not in page  # the test plug-in is installed, but it is not cardiogate's


def test_the_metrics_page_lists_every_metric_with_type_and_labels() -> None:
    page = generate.metrics_page()
    assert "| `cardiogate_jobs_total` | counter | `task`, `outcome` |" in page
    assert "| `cardiogate_build_info` | info | `version` |" in page
    assert "| `cardiogate_jobs_by_state` | gauge | `state` |" in page
    assert "| `cardiogate_job_turnaround_seconds` | histogram | `task` |" in page


def test_the_cli_page_has_every_command_and_option() -> None:
    page = generate.cli_page()
    for command in ("serve", "analyze", "route explain", "synth", "review export", "demo"):
        assert f"## `cardiogate {command}`" in page
    assert "| `--seed SEED` | the same seed writes the same series | default `0` |" in page


def test_masking_hides_what_changes_between_runs_and_nothing_else() -> None:
    first = "[  1.5 s] CT: delivered\n[  0.5 s] up on 127.0.0.1:4321\nSR 1.2.826.0.1.99.7\nLAD 9.2"
    second = "[  0.4 s] up on 127.0.0.1:5555\n[  2.0 s] CT: delivered\nSR 1.2.826.0.1.98.3\nLAD 9.2"
    assert examples_run.mask_example("a.txt", first) == examples_run.mask_example("a.txt", second)
    changed = second.replace("9.2", "8.0")
    assert examples_run.mask_example("a.txt", first) != examples_run.mask_example("a.txt", changed)
    jobs = '{"items": [{"id": 1, "task": "b"}, {"id": 2, "task": "a", "state": "delivered"}]}'
    swapped = '{"items": [{"id": 1, "task": "a", "state": "delivered"}, {"id": 2, "task": "b"}]}'
    assert examples_run.mask_example("j.json", jobs) == examples_run.mask_example("j.json", swapped)
    failed = swapped.replace("delivered", "failed")
    assert examples_run.mask_example("j.json", jobs) != examples_run.mask_example("j.json", failed)


def _mkdocs_or_skip() -> None:
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        if os.environ.get("CI"):
            pytest.fail("mkdocs and mkdocs-material are not installed (the dev extra has them)")
        pytest.skip("mkdocs is not installed (pip install -e '.[dev]')")


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    _mkdocs_or_skip()
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=REPO,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    page = (tmp_path / "site" / "getting-started" / "index.html").read_text()
    assert "calcium CT: delivered" in page  # the executed demo, through the snippet
    assert (tmp_path / "site" / "images" / "ohif-calcium-sr.png").is_file()


@pytest.mark.slow
def test_the_executed_examples_come_out_as_the_pages_show() -> None:
    fresh = examples_run.run_examples()
    assert sorted(fresh) == sorted(p.name for p in (DOCS / "examples").iterdir())
    for name, text in fresh.items():
        shown = (DOCS / "examples" / name).read_text()
        assert examples_run.mask_example(name, text) == examples_run.mask_example(name, shown), (
            f"docs/examples/{name} differs from a fresh run: make docs EXAMPLES=--examples"
        )
