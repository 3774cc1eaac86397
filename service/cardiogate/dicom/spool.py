"""The spool: received instances as DICOM Part 10 files, written durably.

Layout: ``<root>/<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm``. A file is
written under ``<root>/.tmp``, fsynced, renamed into place and its directory fsynced, so a
file at its final path is always whole. Anything left in ``.tmp`` after a crash was never
acknowledged and is removed at start-up. When replicas share the spool, each writes its
temporary files under ``.tmp/<replica id>``, and removes only its own.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

from cardiogate.dicom.uids import require_uid
from cardiogate.errors import SpoolError

log = logging.getLogger(__name__)

TMP_DIR = ".tmp"
SUFFIX = ".dcm"


# A spool path component: digits and dots, not starting with a dot, optionally SUFFIX.
# One regular expression rather than a loop over characters: it runs for every instance
# written and cost ~20 us a path that way.
_UID_COMPONENT = re.compile(rf"[0-9][0-9.]*(?:{re.escape(SUFFIX)})?")


def _is_uid_component(part: str) -> bool:
    return _UID_COMPONENT.fullmatch(part) is not None


def fsync_dir(path: Path) -> None:
    """Make a rename or a new entry in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """Durable file storage for received instances."""

    def __init__(self, root: Path, tmp_subdir: str | None = None) -> None:
        self.root = root.resolve()
        self.tmp = self.root / TMP_DIR / (tmp_subdir or "")
        self._known_dirs: set[Path] = set()
        self._dirs_lock = threading.Lock()

    def prepare(self) -> int:
        """Create the spool and remove unacknowledged temporary files; return how many."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        removed = 0
        for leftover in self.tmp.iterdir():
            if leftover.is_file():
                leftover.unlink(missing_ok=True)
                removed += 1
        if removed:
            log.warning("spool: removed %d partial file(s) left by an interrupted write", removed)
        return removed

    def relative_path(
        self,
        StudyInstanceUID: str | None,
        SeriesInstanceUID: str | None,
        SOPInstanceUID: str | None,
    ) -> str:
        """The spool path of an instance; every UID is validated first."""
        study = require_uid("StudyInstanceUID", StudyInstanceUID)
        series = require_uid("SeriesInstanceUID", SeriesInstanceUID)
        sop = require_uid("SOPInstanceUID", SOPInstanceUID)
        return f"{study}/{series}/{sop}{SUFFIX}"

    def absolute(self, relative: str) -> Path:
        """The file of a spool path; refuses anything but ``<uid>/<uid>/<uid>.dcm``."""
        parts = relative.split("/")
        if len(parts) != 3 or not all(_is_uid_component(p) for p in parts):
            raise SpoolError("a spool path escaped the spool directory")
        return self.root / relative

    def _ensure_dir(self, directory: Path) -> None:
        if directory in self._known_dirs:
            return
        with self._dirs_lock:
            missing = []
            d = directory
            while not d.exists() and d != self.root:
                missing.append(d)
                d = d.parent
            directory.mkdir(parents=True, exist_ok=True)
            for created in reversed(missing):  # make each new entry durable in its parent
                fsync_dir(created.parent)
            self._known_dirs.add(directory)

    def write(self, relative: str, chunks: Sequence[bytes | memoryview]) -> None:
        """Write ``chunks`` to ``relative`` durably (write, fsync, rename, fsync dir).

        Raises
        ------
        SpoolError
            On any I/O error (disk full included); the temporary file is removed.
        """
        final = self.absolute(relative)
        tmp = self.tmp / f"{uuid.uuid4().hex}.part"
        try:
            self._ensure_dir(final.parent)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
            try:
                total = sum(len(c) for c in chunks)
                written = os.writev(fd, chunks)
                if written != total:  # a short write: finish it piece by piece
                    data = b"".join(chunks)[written:]
                    while data:
                        data = data[os.write(fd, data) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, final)
            fsync_dir(final.parent)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise SpoolError(f"cannot write to the spool: {e.strerror or type(e).__name__}") from e

    def same_data_set(self, relative: str, data_set: bytes | memoryview) -> bool:
        """True if the stored file holds exactly ``data_set`` after its file meta header."""
        path = self.absolute(relative)
        try:
            with path.open("rb") as f:
                head = f.read(144)  # preamble, prefix, (0002,0000) group length element
                if len(head) < 144 or head[128:132] != b"DICM":
                    return False
                f.seek(144 + int.from_bytes(head[140:144], "little"))
                return f.read() == data_set
        except OSError:
            return False

    def read(self, relative: str) -> bytes:
        return self.absolute(relative).read_bytes()

    def exists(self, relative: str) -> bool:
        return self.absolute(relative).is_file()

    def remove(self, relative: str) -> None:
        path = self.absolute(relative)
        path.unlink(missing_ok=True)

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.root).free

    def files(self) -> Iterator[str]:
        """Every instance file in the spool, as relative paths."""
        for dirpath, dirnames, filenames in os.walk(self.root):
            if Path(dirpath) == self.root:
                dirnames[:] = [d for d in dirnames if d != TMP_DIR]
            for name in filenames:
                if name.endswith(SUFFIX):
                    yield os.path.relpath(os.path.join(dirpath, name), self.root)
