"""What the kill -9 loop needs besides the peers: a PACS-like sender that remembers which
instances were acknowledged, read-only looks at the service's SQLite file, and Orthanc's
inventory of result objects."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE

from orthanc import OrthancPeer


@dataclass
class Pacs:
    """The sending side. An instance whose C-STORE got no success status is sent again
    later, as a PACS does; ``attempts`` counts every C-STORE offered, per SOP Instance UID."""

    studies: list[list[Dataset]] = field(default_factory=list)
    acknowledged: set[str] = field(default_factory=set)
    attempts: dict[str, int] = field(default_factory=dict)

    def unacknowledged(self) -> list[list[Dataset]]:
        """Every study's instances still waiting for a success status (studies in order)."""
        waiting = [
            [ds for ds in s if ds.SOPInstanceUID not in self.acknowledged] for s in self.studies
        ]
        return [s for s in waiting if s]

    @property
    def resends(self) -> int:
        return sum(n - 1 for n in self.attempts.values() if n > 1)


class SendRun(threading.Thread):
    """Sends studies (one association each) until done or the peer goes away; calls
    ``on_ack`` with the running count of acknowledgements of this run."""

    def __init__(
        self, pacs: Pacs, port: int, studies: list[list[Dataset]], on_ack: Callable[[int], None]
    ) -> None:
        super().__init__(daemon=True)
        self.pacs, self.port, self.studies, self.on_ack = pacs, port, studies, on_ack
        self.in_association = False
        self.finished = False
        self.acks = 0

    def run(self) -> None:
        for study in self.studies:
            if not self._send(study):
                return
        self.finished = True

    def _send(self, study: list[Dataset]) -> bool:
        ae = AE(ae_title="PACS")
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
        for ds in study:
            ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
        assoc = ae.associate("127.0.0.1", self.port, ae_title="CARDIOGATE")
        if not assoc.is_established:
            return False
        self.in_association = True
        try:
            for ds in study:
                uid = ds.SOPInstanceUID
                self.pacs.attempts[uid] = self.pacs.attempts.get(uid, 0) + 1
                status = assoc.send_c_store(ds).get("Status")
                if status != 0x0000:
                    return False
                self.pacs.acknowledged.add(uid)
                self.acks += 1
                self.on_ack(self.acks)
            assoc.release()
            return True
        finally:
            self.in_association = False
            if assoc.is_established:
                assoc.abort()


class Db:
    """The service's SQLite file, read-only, one short connection per question."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "cardiogate.db"
        self.uri = f"file:{data_dir / 'cardiogate.db'}?mode=ro"

    def rows(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        for _ in range(50):  # the service may be creating the file or holding a write lock
            try:
                db = sqlite3.connect(self.uri, uri=True, timeout=5)
                try:
                    db.row_factory = sqlite3.Row
                    return list(db.execute(sql, args))
                finally:
                    db.close()
            except sqlite3.OperationalError:
                time.sleep(0.05)
        raise AssertionError(f"database not readable: {self.uri}")

    def count(self, sql: str, *args: Any) -> int:
        return int(self.rows(sql, *args)[0][0])

    def phase(self) -> set[str]:
        """What the service is doing now, as the rows say: ``inference`` while a job runs,
        ``delivery`` while a reported job has objects pending."""
        found = set()
        if self.count("SELECT count(*) FROM jobs WHERE state = 'running'"):
            found.add("inference")
        if self.count(
            "SELECT count(*) FROM outbox JOIN jobs ON jobs.id = outbox.job_id "
            "WHERE outbox.state = 'pending' AND jobs.state = 'reported'"
        ):
            found.add("delivery")
        return found


@dataclass
class ResultObject:
    sop_instance_uid: str
    modality: str
    study_instance_uid: str
    slot: tuple[str, str] = ("", "")  # (SeriesNumber, InstanceNumber): one object's place


def orthanc_results(orthanc: OrthancPeer, sources: set[str]) -> list[ResultObject]:
    """Every instance Orthanc holds that is not one of ``sources`` (so SR, SEG and key
    images), one entry per Orthanc instance."""
    studies = {
        s["ID"]: s["MainDicomTags"]["StudyInstanceUID"] for s in orthanc.get("/studies?expand")
    }
    series = {
        s["ID"]: (
            s["MainDicomTags"].get("Modality", ""),
            studies[s["ParentStudy"]],
            s["MainDicomTags"].get("SeriesNumber", ""),
        )
        for s in orthanc.get("/series?expand")
    }
    found = []
    for instance in orthanc.get("/instances?expand"):
        modality, study, number = series[instance["ParentSeries"]]
        tags = instance["MainDicomTags"]
        uid = tags["SOPInstanceUID"]
        if uid not in sources:
            slot = (number, tags.get("InstanceNumber", ""))
            found.append(ResultObject(uid, modality, study, slot))
    return found
