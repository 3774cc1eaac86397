"""Command line: ``cardiogate serve | analyze | synth | demo | review export``.

Flags override environment variables, which override the YAML file named by
``--config`` / ``CARDIOGATE_CONFIG``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from cardiogate import __version__
from cardiogate.config import ENV_PREFIX, load_settings
from cardiogate.errors import CardiogateError, ConfigurationError
from cardiogate.logs import setup_logging

log = logging.getLogger("cardiogate")

# flag -> setting name; every flag is optional and only overrides when given
_SERVE_FLAGS: dict[str, tuple[str, type]] = {
    "--ae-title": ("ae_title", str),
    "--dicom-host": ("dicom_host", str),
    "--dicom-port": ("dicom_port", int),
    "--http-host": ("http_host", str),
    "--http-port": ("http_port", int),
    "--data-dir": ("data_dir", Path),
    "--database-url": ("database_url", str),
    "--models-dir": ("models_dir", Path),
    "--quiet-seconds": ("quiet_seconds", float),
    "--listener-processes": ("listener_processes", int),
    "--max-associations": ("max_associations", int),
    "--min-free-disk-mb": ("min_free_disk_mb", int),
    "--log-level": ("log_level", str),
}


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
    serve.add_argument("--config", type=Path, help=f"YAML settings file ({ENV_PREFIX}CONFIG)")
    for flag, (name, kind) in _SERVE_FLAGS.items():
        serve.add_argument(
            flag, dest=name, type=kind, default=None, help=f"{ENV_PREFIX}{name.upper()}"
        )

    analyze = sub.add_parser("analyze", help="analyse the DICOM files in a folder, offline")
    analyze.add_argument("path", type=Path, help="a folder (searched recursively) or one file")
    analyze.add_argument("--json", action="store_true", help="print JSON instead of a table")
    analyze.add_argument("--models-dir", type=Path, default=None, help=f"{ENV_PREFIX}MODELS_DIR")

    synth = sub.add_parser("synth", help="write a synthetic DICOM series and its truth.json")
    synth.add_argument("kind", choices=["ct", "xa"])
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--out", type=Path, required=True)
    synth.add_argument("--slices", type=int, default=64, help="CT: number of slices")
    synth.add_argument("--frames", type=int, default=30, help="XA: number of frames")
    synth.add_argument("--rows", type=int, default=512)
    synth.add_argument("--columns", type=int, default=512)
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
    export.add_argument("--data-dir", type=Path, default=None, help=f"{ENV_PREFIX}DATA_DIR")
    export.add_argument("--database-url", default=None, help=f"{ENV_PREFIX}DATABASE_URL")

    demo = sub.add_parser(
        "demo", help="run the service on two synthetic studies, end to end, and stop"
    )
    demo.add_argument("--keep", type=Path, metavar="DIR", help="keep the data under DIR")
    demo.add_argument("--json", action="store_true", help="print the summary as JSON")
    return parser


def _serve(args: argparse.Namespace) -> int:
    from cardiogate.app import Application
    from cardiogate.dicom.listener import freeze_startup_heap

    if args.config is not None:
        os.environ[f"{ENV_PREFIX}CONFIG"] = str(args.config)
    overrides: dict[str, Any] = {name: getattr(args, name) for name, _ in _SERVE_FLAGS.values()}
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
    from cardiogate.analyses.offline import analyze_folder, format_table
    from cardiogate.inference import InferenceEngine

    settings = load_settings(models_dir=args.models_dir)
    setup_logging("WARNING", settings.log_format)
    if not args.path.exists():
        raise ConfigurationError(f"no such file or folder: {args.path}")
    engine = InferenceEngine.from_directory(settings.models_dir, settings.providers)
    entries = analyze_folder(args.path, settings, engine)
    if args.json:
        body: object = entries[0] if len(entries) == 1 else entries
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
    else:
        sys.stdout.write(format_table(entries) + "\n")
    return 0 if entries else 1


def _review_export(args: argparse.Namespace) -> int:
    from cardiogate.review_export import export_reviews
    from cardiogate.store import Store

    settings = load_settings(data_dir=args.data_dir, database_url=args.database_url)
    setup_logging("WARNING", settings.log_format)
    if not settings.database_url and not (settings.data_dir / "cardiogate.db").is_file():
        raise ConfigurationError(f"no database in {settings.data_dir}")
    store = Store(settings.effective_database_url)
    try:
        store.create_schema()  # a database from before the review queue gains its table
        count = export_reviews(store, args.out)
    finally:
        store.dispose()
    sys.stdout.write(f"exported {count} verdict(s) to {args.out}\n")
    return 0


def _synth(args: argparse.Namespace) -> int:
    from cardiogate.synthetic import make_ct_series, make_xa_cine, write_series

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
        if args.command == "review":
            return _review_export(args)
        if args.command == "demo":
            from cardiogate.demo import run_demo

            return run_demo(args.keep, args.json)
        return _synth(args)
    except ConfigurationError as e:
        sys.stderr.write(f"cardiogate: {e}\n")
        return 2
    except CardiogateError as e:
        sys.stderr.write(f"cardiogate: {type(e).__name__}: {e}\n")
        return 1
