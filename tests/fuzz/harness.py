"""Coverage-guided fuzzing (atheris, libFuzzer) of received bytes to stored instance, and
of a stored file to the analyses' loaders. Not a pytest module: ``make fuzz`` runs it.

    python tests/fuzz/harness.py ingest|loaders CORPUS_DIR -max_total_time=60

The corpus directory is seeded with small synthetic instances when empty. A crash is any
exception the target does not name: a status other than stored / Cannot understand, a file
outside the spool, a loader error that is not a CardiogateError.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

sys.path[:0] = [
    str(Path(__file__).resolve().parents[1]),
    str(Path(__file__).resolve().parents[2] / "service"),
]

with atheris.instrument_imports(include=["cardiogate", "pydicom"]):
    from cardiogate.analyses.ct_volume import load_ct_series
    from cardiogate.analyses.xa_cine import load_xa_cine
    from cardiogate.errors import CardiogateError
    from cardiogate.logs import quiet_pydicom

import hostile  # noqa: E402  # after instrumentation, so the modules above are instrumented

WORK = Path(tempfile.mkdtemp(prefix="cardiogate-fuzz-"))
RIG: hostile.IngestRig | None = None


def _seed(target: str, corpus: Path) -> None:
    corpus.mkdir(parents=True, exist_ok=True)
    if any(corpus.iterdir()):
        return
    for i, ds in enumerate(hostile.seeds()):
        for j, syntax in enumerate(hostile.SYNTAXES):
            if target == "ingest":
                blob = bytes([j]) + hostile.encode(ds, syntax)
            else:
                blob = bytes([i]) + hostile.part10(ds, syntax)
            (corpus / f"seed-{i}-{j}").write_bytes(blob)


def ingest(data: bytes) -> None:
    """One C-STORE of ``data[1:]`` under the transfer syntax ``data[0]`` picks."""
    global RIG
    if RIG is None:
        RIG = hostile.IngestRig(WORK / "ingest")
    if not data:
        return
    syntax = hostile.SYNTAXES[data[0] % len(hostile.SYNTAXES)]
    status = RIG.c_store(data[1:], syntax)
    RIG.check(data[1:], status)


def loaders(data: bytes) -> None:
    """``data[1:]`` as a stored file: an XA cine alone, or one slice of a CT series."""
    if not data:
        return
    path = WORK / "candidate.dcm"
    path.write_bytes(data[1:])
    try:
        if data[0] % 2:
            load_xa_cine([path])
        else:
            others = hostile.ct_slices()[1:]
            load_ct_series([path, *others])
    except CardiogateError:
        pass


def main() -> None:
    target = sys.argv.pop(1)
    corpus = next((Path(a) for a in sys.argv[1:] if not a.startswith("-")), None)
    if corpus is not None and not corpus.is_file():  # a file: replay one crash artifact
        _seed(target, corpus)
    quiet_pydicom()
    atheris.Setup(sys.argv, {"ingest": ingest, "loaders": loaders}[target])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
