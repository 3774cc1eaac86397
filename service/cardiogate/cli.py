"""Command line: ``cardiogate serve | analyze | route explain | synth | demo | review export |
models promote | rollback | history``.

Flags override environment variables, which override the YAML file named by
``--config`` / ``CARDIOGATE_CONFIG``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cardiogate import __version__
from cardiogate.config import ENV_PREFIX, Settings, load_settings
from cardiogate.errors import CardiogateError, ConfigurationError
from cardiogate.learning.models_cli import add_models_parser, run_models
from cardiogate.logs import setup_logging
from cardiogate.phantoms import phantoms_missing

if TYPE_CHECKING:
    from cardiogate.pipeline.explain import Explained
    from cardiogate.tasks import Tasks

log = logging.getLogger("cardiogate")

# flag -> (setting name, type, what it sets); every flag is optional and only overrides
# when given
_SERVE_FLAGS: dict[str, tuple[str, type, str]] = {
    "--ae-title": ("ae_title", str, "our AE title"),
    "--dicom-host": ("dicom_host", str, "the address the DICOM listener binds"),
    "--dicom-port": ("dicom_port", int, "the DICOM listener's port"),
    "--http-host": ("http_host", str, "the address the HTTP API binds"),
    "--http-port": ("http_port", int, "the HTTP API's port"),
    "--data-dir": ("data_dir", Path, "the spool, outbox and SQLite database"),
    "--database-url": ("database_url", str, "SQLite or PostgreSQL instead of the data dir's"),
    "--models-dir": ("models_dir", Path, "the model folders (model.onnx + card.json)"),
    "--quiet-seconds": ("quiet_seconds", float, "a series is complete after this long quiet"),
    "--listener-processes": ("listener_processes", int, "processes accepting associations"),
    "--max-associations": ("max_associations", int, "concurrent associations in all"),
    "--min-free-disk-mb": ("min_free_disk_mb", int, "refuse associations below this free disk"),
    "--log-level": ("log_level", str, "DEBUG, INFO, WARNING or ERROR"),
}
UID = re.compile(r"[0-9]+(\.[0-9]+)*")  # what a StudyInstanceUID looks like (PS3.5 9.1)


def _env(name: str) -> str:
    return f"{ENV_PREFIX}{name.upper()}"


def _stenosis(text: str) -> dict[str, Any]:
    """``VESSEL:POSITION:PERCENT[:LENGTH_MM]`` -> the fields of a StenosisSpec."""
    parts = text.split(":")
    if len(parts) not in (3, 4):
        raise argparse.ArgumentTypeError(
            f"expected VESSEL:POSITION:PERCENT[:LENGTH_MM], got {text!r}"
        )
    try:
        numbers = [float(p) for p in parts[1:]]
    except ValueError as e:
        raise argparse.ArgumentTypeError(
            f"position, percent and length must be numbers: {text!r}"
        ) from e
    return dict(
        zip(("vessel", "position", "percent", "length_mm"), [parts[0], *numbers], strict=False)
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cardiogate",
        description="DICOM inference service for cardiology (research use, not for clinical use).",
    )
    parser.add_argument("--version", action="version", version=f"cardiogate {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the DICOM listener, pipeline and HTTP API")
    serve.add_argument("--config", type=Path, help=f"YAML settings file ({_env('config')})")
    for flag, (name, kind, text) in _SERVE_FLAGS.items():
        serve.add_argument(flag, dest=name, type=kind, default=None, help=f"{text} ({_env(name)})")

    analyze = sub.add_parser("analyze", help="analyse the DICOM files in a folder, offline")
    analyze.add_argument("path", type=Path, help="a folder (searched recursively) or one file")
    analyze.add_argument(
        "--json", action="store_true", help="print a JSON list (one entry per series)"
    )
    analyze.add_argument(
        "--models-dir", type=Path, default=None, help=f"the model folders ({_env('models_dir')})"
    )

    route = sub.add_parser("route", help="the routing rules: which series are analysed and why")
    route_sub = route.add_subparsers(dest="route_command", required=True)
    explain = route_sub.add_parser(
        "explain",
        help="for each series of a folder or a stored study: the rule that routes it, or why "
        "none does, with the current settings",
    )
    explain.add_argument(
        "target",
        help="a folder (searched recursively) or one file, or the StudyInstanceUID of a study "
        "the service has stored",
    )
    explain.add_argument("--json", action="store_true", help="print a JSON list")
    explain.add_argument("--config", type=Path, help=f"YAML settings file ({_env('config')})")
    explain.add_argument(
        "--models-dir", type=Path, default=None, help=f"the model folders ({_env('models_dir')})"
    )
    explain.add_argument(
        "--data-dir", type=Path, default=None, help=f"the service's data ({_env('data_dir')})"
    )
    explain.add_argument(
        "--database-url", default=None, help=f"the service's database ({_env('database_url')})"
    )

    synth = sub.add_parser(
        "synth", help="write a synthetic DICOM series and its truth.json (needs the phantoms)"
    )
    synth.add_argument(
        "kind", choices=["ct", "xa"], help="ct: a cardiac CT series; xa: an angiography cine"
    )
    synth.add_argument("--seed", type=int, default=0, help="the same seed writes the same series")
    synth.add_argument("--out", type=Path, required=True, help="the folder to write")
    synth.add_argument("--slices", type=int, default=64, help="CT: number of slices")
    synth.add_argument("--frames", type=int, default=30, help="XA: number of frames")
    synth.add_argument("--rows", type=int, default=512, help="image rows (height in pixels)")
    synth.add_argument("--columns", type=int, default=512, help="image columns (width in pixels)")
    synth.add_argument("--contrast", action="store_true", help="CT: a contrast-enhanced series")
    lesions = synth.add_mutually_exclusive_group()
    lesions.add_argument(
        "--stenosis",
        action="append",
        type=_stenosis,
        metavar="VESSEL:POSITION:PERCENT[:LENGTH_MM]",
        help="XA: draw this stenosis (repeatable), e.g. LAD:0.35:75:6; default: seeded ones",
    )
    lesions.add_argument("--normal", action="store_true", help="XA: no stenosis")
    synth.add_argument("--artery", choices=["LCA", "RCA"], help="XA: the injected artery")

    review = sub.add_parser("review", help="the review queue's verdicts")
    review_sub = review.add_subparsers(dest="review_command", required=True)
    export = review_sub.add_parser(
        "export", help="write the verdicts as JSON lines (the model output judged, verdict, note)"
    )
    export.add_argument("out", type=Path, help="the JSON lines file to write")
    export.add_argument(
        "--dataset",
        type=Path,
        metavar="DIR",
        default=None,
        help="also write the settled results with their fused labels (DIR/manifest.jsonl) "
        "and copy their series from the spool (DIR/series/<SeriesInstanceUID>/)",
    )
    export.add_argument(
        "--data-dir", type=Path, default=None, help=f"the service's data ({_env('data_dir')})"
    )
    export.add_argument(
        "--database-url", default=None, help=f"the service's database ({_env('database_url')})"
    )

    add_models_parser(sub)

    demo = sub.add_parser(
        "demo", help="run the service on two synthetic studies, end to end, and stop"
    )
    demo.add_argument("--keep", type=Path, metavar="DIR", help="keep the data under DIR")
    demo.add_argument("--json", action="store_true", help="print the summary as JSON")
    return parser


def _use_config(path: Path | None) -> None:
    if path is not None:
        os.environ[_env("config")] = str(path)


def _serve(args: argparse.Namespace) -> int:
    from cardiogate.app import Application
    from cardiogate.dicom.listener import freeze_startup_heap

    _use_config(args.config)
    overrides: dict[str, Any] = {name: getattr(args, name) for name, *_ in _SERVE_FLAGS.values()}
    settings = load_settings(**overrides)
    setup_logging(settings.log_level, settings.log_format)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    app = Application(settings)
    try:
        app.start()
        freeze_startup_heap()
        while not stop.wait(1.0):
            pass
    finally:
        app.stop()
    return 0


def _analyze(args: argparse.Namespace) -> int:
    from cardiogate.inference import InferenceEngine
    from cardiogate.pipeline.offline import (
        analyze_folder,
        format_skipped,
        format_table,
        scan_folder,
    )
    from cardiogate.tasks import load_tasks

    settings = load_settings(models_dir=args.models_dir)
    setup_logging("WARNING", settings.log_format)
    if not args.path.exists():
        raise ConfigurationError(f"no such file or folder: {args.path}")
    tasks = load_tasks(settings)
    engine = InferenceEngine.from_directory(settings.models_dir, settings.providers)
    scan = scan_folder(args.path)
    entries = analyze_folder(scan, settings, engine, tasks)
    _write(json.dumps(entries, indent=2) if args.json else format_table(entries, tasks))
    _note(format_skipped(scan), args.json)
    return 0 if entries else 1


def _write(text: str) -> None:
    sys.stdout.write(text + "\n")


def _note(text: str, json_out: bool) -> None:
    """Diagnostics after the output: on stdout under a table, on stderr beside JSON."""
    if text:
        (sys.stderr if json_out else sys.stdout).write(("" if json_out else "\n") + text + "\n")


def _route_explain(args: argparse.Namespace) -> int:
    from cardiogate.pipeline.explain import (
        as_json,
        explain_folder,
        format_explanations,
        model_tasks,
    )
    from cardiogate.pipeline.offline import format_skipped, scan_folder
    from cardiogate.tasks import load_tasks

    _use_config(args.config)
    settings = load_settings(
        models_dir=args.models_dir, data_dir=args.data_dir, database_url=args.database_url
    )
    setup_logging("WARNING", settings.log_format)
    tasks = load_tasks(settings)
    loaded = model_tasks(settings.models_dir, tuple(tasks))
    target = Path(args.target)
    notes = []
    if not loaded:
        notes.append(
            f"no model in {settings.models_dir} ({_env('models_dir')}): nothing can be routed"
        )
    if target.exists():
        scan = scan_folder(target)
        items, stored = explain_folder(scan, tasks, loaded), False
        notes.append(format_skipped(scan))
    elif UID.fullmatch(args.target):
        items, stored = _explain_stored(args.target, settings, tasks, loaded), True
    else:
        raise ConfigurationError(f"no such file or folder, and not a StudyInstanceUID: {target}")
    _write(
        json.dumps(as_json(items, stored), indent=2)
        if args.json
        else format_explanations(items, stored)
    )
    _note("\n".join(n for n in notes if n), args.json)
    return 0 if items else 1


def _explain_stored(
    uid: str, settings: Settings, tasks: Tasks, loaded: set[str]
) -> list[Explained]:
    from cardiogate.pipeline.explain import explain_study
    from cardiogate.store import Store

    if not settings.database_url and not (settings.data_dir / "cardiogate.db").is_file():
        raise ConfigurationError(f"no database in {settings.data_dir} ({_env('data_dir')})")
    store = Store(settings.effective_database_url)
    try:
        items = explain_study(store, uid, tasks, loaded)
    finally:
        store.dispose()
    if not items:
        raise ConfigurationError(f"the database has no study {uid}")
    return items


def _review_export(args: argparse.Namespace) -> int:
    from cardiogate.dicom.spool import Spool
    from cardiogate.review_export import export_dataset, export_reviews
    from cardiogate.store import Store
    from cardiogate.tasks import default_tasks

    settings = load_settings(data_dir=args.data_dir, database_url=args.database_url)
    setup_logging("WARNING", settings.log_format)
    if not settings.database_url and not (settings.data_dir / "cardiogate.db").is_file():
        raise ConfigurationError(f"no database in {settings.data_dir}")
    store = Store(settings.effective_database_url)
    try:
        store.create_schema()  # a database from before the review queue gains its table
        count = export_reviews(store, args.out)
        dataset = (
            None
            if args.dataset is None
            else export_dataset(
                store, Spool(settings.spool_dir), default_tasks(settings), args.dataset
            )
        )
    finally:
        store.dispose()
    sys.stdout.write(f"exported {count} verdict(s) to {args.out}\n")
    if dataset is not None:
        sys.stdout.write(
            f"exported {dataset.cases} settled result(s) and {dataset.files} series file(s) "
            f"to {args.dataset}"
            + (f"; {dataset.missing} file(s) no longer in the spool" if dataset.missing else "")
            + "\n"
        )
    return 0


def _synth(args: argparse.Namespace) -> int:
    try:
        from cardiogate_phantoms import make_ct_series, make_xa_cine, write_series
    except ModuleNotFoundError as e:
        phantoms_missing(e)

    if args.kind == "ct":
        series = make_ct_series(
            args.seed,
            n_slices=args.slices,
            rows=args.rows,
            columns=args.columns,
            contrast=args.contrast,
        )
    else:
        try:
            series = make_xa_cine(
                args.seed,
                frames=args.frames,
                rows=args.rows,
                columns=args.columns,
                stenoses=[] if args.normal else args.stenosis,
                artery=args.artery,
            )
        except ValueError as e:  # a stenosis on a vessel the tree lacks, a bad size
            raise ConfigurationError(str(e)) from e
    paths = write_series(series, args.out)
    sys.stdout.write(f"wrote {len(paths)} file(s) and truth.json to {args.out}\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "analyze":
            return _analyze(args)
        if args.command == "route":
            return _route_explain(args)
        if args.command == "review":
            return _review_export(args)
        if args.command == "models":
            return run_models(args)
        if args.command == "demo":
            from cardiogate.demo import run_demo

            return run_demo(args.keep, args.json)
        return _synth(args)
    except ConfigurationError as e:
        return _fail(args, str(e), 2)
    except CardiogateError as e:
        return _fail(args, str(e), 1)


def _fail(args: argparse.Namespace, message: str, code: int) -> int:
    """The error on stderr; with ``--json`` also as ``{"error": ...}`` on stdout for scripts."""
    sys.stderr.write(f"cardiogate: {message}\n")
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps({"error": message}) + "\n")
    return code
