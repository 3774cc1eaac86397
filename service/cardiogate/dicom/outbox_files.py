"""Result objects as Part 10 files under ``<data>/outbox/<job>/<SOPInstanceUID>.dcm``.

Written as the spool writes: to a temporary file, fsynced, renamed into place and the
directory fsynced, so a file at its final path is always whole. Files are written before
their rows are committed; a crash in between leaves files without rows, which the re-run of
the job (still ``running``, so re-queued) overwrites with the same bytes. As in the spool, replicas
sharing the directory keep their temporary files apart (``.tmp/<replica id>``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from io import BytesIO
from pathlib import Path

from pydicom.dataset import Dataset

from cardiogate.dicom.spool import fsync_dir
from cardiogate.dicom.uids import require_uid
from cardiogate.errors import SpoolError
from cardiogate.store.outbox import StagedObject

SUFFIX = ".dcm"
TMP_DIR = ".tmp"


class OutboxFiles:
    """The outbox directory."""

    def __init__(self, root: Path, tmp_subdir: str | None = None) -> None:
        self.root = root.resolve()
        self.tmp = self.root / TMP_DIR / (tmp_subdir or "")

    def prepare(self) -> None:
        """Create the directory and remove temporary files left by an interrupted write."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        for leftover in self.tmp.iterdir():
            if leftover.is_file():
                leftover.unlink(missing_ok=True)

    def absolute(self, relative: str) -> Path:
        """The file of an outbox path; refuses anything but ``<job>/<uid>.dcm``."""
        parts = relative.split("/")
        if (
            len(parts) != 2
            or not parts[0].isdigit()
            or not parts[1].endswith(SUFFIX)
            or not parts[1].removesuffix(SUFFIX).replace(".", "").isdigit()
        ):
            raise SpoolError("an outbox path escaped the outbox directory")
        return self.root / relative

    def exists(self, relative: str) -> bool:
        return self.absolute(relative).is_file()

    def write(self, job_id: int, objects: Sequence[Dataset]) -> list[StagedObject]:
        """Write each object durably; remove files of the job's earlier objects that are not
        among these (a re-run that found no lesion has no key image).

        Raises
        ------
        SpoolError
            On any I/O error (disk full included).
        """
        directory = self.root / str(job_id)
        staged = []
        try:
            new_dir = not directory.exists()
            directory.mkdir(parents=True, exist_ok=True)
            if new_dir:
                fsync_dir(self.root)
            for ds in objects:
                sop_instance_uid = require_uid("SOPInstanceUID", ds.SOPInstanceUID)
                relative = f"{job_id}/{sop_instance_uid}{SUFFIX}"
                self._write(self.root / relative, _part10(ds))
                staged.append(StagedObject(str(ds.SOPClassUID), sop_instance_uid, relative))
            keep = {Path(s.path).name for s in staged}
            for old in directory.iterdir():
                if old.name not in keep:
                    old.unlink(missing_ok=True)
        except OSError as e:
            raise SpoolError(f"cannot write to the outbox: {e.strerror or type(e).__name__}") from e
        return staged

    def _write(self, final: Path, data: bytes) -> None:
        tmp = self.tmp / f"{uuid.uuid4().hex}.part"
        try:
            with tmp.open("xb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
            fsync_dir(final.parent)
        finally:
            tmp.unlink(missing_ok=True)


def _part10(ds: Dataset) -> bytes:
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
