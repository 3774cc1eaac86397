"""Without the phantoms (a separate distribution), ``cardiogate synth`` and the tasks' demo
data say how to install them; a module the installed phantoms lack is not mistaken for them."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from cardiogate.cli import main
from cardiogate.errors import ConfigurationError
from cardiogate.phantoms import phantoms_missing
from cardiogate.tasks import DemoCase
from cardiogate.tasks.calcium import demo as calcium_demo
from cardiogate.tasks.stenosis import demo as stenosis_demo

SAID = (
    "the phantoms are not installed: pip install ./service/phantoms "
    "(a separate distribution; the service runs without it)"
)


@pytest.fixture
def no_phantoms(monkeypatch: pytest.MonkeyPatch) -> None:
    """``import cardiogate_phantoms`` fails as it does where they are not installed."""
    for name in [m for m in sys.modules if m.startswith("cardiogate_phantoms")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "cardiogate_phantoms", None)


@pytest.mark.usefixtures("no_phantoms")
@pytest.mark.parametrize("kind", ["ct", "xa"])
def test_synth_exits_2_saying_how_to_install_them(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["synth", kind, "--out", str(tmp_path / kind)]) == 2
    assert capsys.readouterr().err == f"cardiogate: {SAID}\n"
    assert not (tmp_path / kind).exists()


@pytest.mark.usefixtures("no_phantoms")
@pytest.mark.parametrize(
    "case", [calcium_demo.case, stenosis_demo.case], ids=["calcium", "stenosis"]
)
def test_the_demo_cases_say_how_to_install_them(case: Callable[[], DemoCase]) -> None:
    with pytest.raises(ConfigurationError) as caught:
        case()
    assert str(caught.value) == SAID
    assert isinstance(caught.value.__cause__, ModuleNotFoundError)


def test_a_submodule_of_the_phantoms_missing_is_them_missing() -> None:
    missing = ModuleNotFoundError("No module named 'cardiogate_phantoms.xa'")
    missing.name = "cardiogate_phantoms.xa"
    with pytest.raises(ConfigurationError, match="phantoms are not installed"):
        phantoms_missing(missing)


def test_a_module_the_phantoms_need_is_raised_as_it_came() -> None:
    missing = ModuleNotFoundError("No module named 'scipy'")
    missing.name = "scipy"
    with pytest.raises(ModuleNotFoundError) as caught:
        phantoms_missing(missing)
    assert caught.value is missing
