"""What every cardiogate output object shares: its identity (deterministic UIDs, series
number and description), the source study it joins, the AI notice, the observer context and
the predecessor of a re-run.

UIDs (``shared/design.md``, Contracts): every UID is :func:`~cardiogate.dicom.uids.derived_uid`
of the source Series Instance UID, the task, the object kind and the model version. The
Series Instance UID stops there, so a re-run with the same model writes into the same series;
the SOP Instance UID also takes the ``version_index``, so a corrected report is a new
instance in that series that names the earlier one as its predecessor (PS3.3 C.17.2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import highdicom as hd
from highdicom.sr import (
    ContainerContentItem,
    ContentSequence,
    RelationshipTypeValues,
    TextContentItem,
)
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from cardiogate import __version__
from cardiogate.dicom.uids import DEVICE_OBSERVER_UID, derived_uid, require_uid
from cardiogate.errors import CardiogateError
from cardiogate.reports.codes import COMMENT, LOCAL_SCHEME_ITEM, QUALITATIVE_EVALUATIONS

MANUFACTURER = "cardiogate"
NOT_FOR_DIAGNOSTIC_USE = "AI - not for diagnostic use"


class ReportError(CardiogateError):
    """The result and its sources cannot make valid output objects; the message says why
    (UIDs, counts and attribute names only)."""


@dataclass(frozen=True)
class Predecessor:
    """An earlier SR that a new one replaces (Predecessor Documents Sequence, PS3.3
    C.17.2.3). ``SOPClassUID`` None means the class of the new SR."""

    StudyInstanceUID: str
    SeriesInstanceUID: str
    SOPInstanceUID: str
    SOPClassUID: str | None = None

    def as_dataset(self, default_sop_class_uid: str) -> Dataset:
        """The attributes highdicom's ``previous_versions`` reads."""
        ds = Dataset()
        ds.StudyInstanceUID = require_uid("StudyInstanceUID", self.StudyInstanceUID)
        ds.SeriesInstanceUID = require_uid("SeriesInstanceUID", self.SeriesInstanceUID)
        ds.SOPInstanceUID = require_uid("SOPInstanceUID", self.SOPInstanceUID)
        ds.SOPClassUID = require_uid("SOPClassUID", self.SOPClassUID or default_sop_class_uid)
        return ds


@dataclass(frozen=True)
class ModelIdentity:
    """The model that produced a result, as its card names it."""

    name: str
    version: str


@dataclass(frozen=True)
class Part:
    """One of several objects of one kind in one series (a key image per artery): its name,
    its place (1-based, the same in every version) and how many places there are."""

    name: str
    number: int
    of: int


@dataclass(frozen=True)
class ObjectIdentity:
    """Where one output object sits: its series and instance, numbered and described."""

    SeriesInstanceUID: str
    SOPInstanceUID: str
    SeriesNumber: int
    InstanceNumber: int
    SeriesDescription: str


def object_identity(
    source_series_uid: str,
    task: str,
    kind: str,
    model: ModelIdentity,
    version_index: int,
    part: Part | None = None,
    *,
    series: tuple[int, str],
) -> ObjectIdentity:
    """The deterministic identity of the ``kind`` object of ``task`` on a source series;
    with ``part``, of that part: its own instance, numbered after its place, so that the
    parts of a version sort in their order and after those of the versions before.
    ``series`` is the (SeriesNumber, SeriesDescription) of that kind of object (the task's
    ``output_series``); the description gets the AI notice."""
    if version_index < 0:
        raise ReportError(f"version_index must be 0 or more, got {version_index}")
    number, description = series
    base = (source_series_uid, task, kind, model.version)
    instance = (str(version_index),) if part is None else (str(version_index), part.name)
    if part is not None and not 1 <= part.number <= part.of:
        raise ReportError(f"part {part.name} is number {part.number} of {part.of}")
    return ObjectIdentity(
        SeriesInstanceUID=derived_uid(*base, "series"),
        SOPInstanceUID=derived_uid(*base, "instance", *instance),
        SeriesNumber=number,
        InstanceNumber=version_index + 1 if part is None else version_index * part.of + part.number,
        SeriesDescription=f"{description} - {NOT_FOR_DIAGNOSTIC_USE}",
    )


def tracking_uid(source_series_uid: str, task: str, model: ModelIdentity, key: str) -> str:
    """A Tracking UID for one finding; the same across versions of a report, so that a
    viewer can follow the finding from one version to the next."""
    return derived_uid(source_series_uid, task, "tracking", model.version, key)


def source_series(sources: Sequence[Dataset]) -> Dataset:
    """The first source, after checking that all come from one series of one study."""
    if not sources:
        raise ReportError("no source datasets given")
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID"):
        values = {str(ds.get(keyword, "")) for ds in sources}
        if len(values) != 1:
            raise ReportError(f"the sources have {len(values)} different {keyword} values")
        require_uid(keyword, values.pop())
    return sources[0]


def equipment(model: ModelIdentity) -> dict[str, Any]:
    """General Equipment attributes (keyword arguments of highdicom's constructors)."""
    return {
        "manufacturer": MANUFACTURER,
        "manufacturer_model_name": model.name[:64],
        "software_versions": [f"cardiogate {__version__}", f"{model.name} {model.version}"[:64]],
    }


def document_fields(
    identity: ObjectIdentity,
    model: ModelIdentity,
    predecessor: Predecessor | None,
    sop_class_uid: str,
) -> dict[str, Any]:
    """The keyword arguments every SR of ours gives highdicom's SR constructors: where it
    sits, that it is complete, the SR it replaces, our coding scheme and the equipment."""
    return {
        "series_instance_uid": identity.SeriesInstanceUID,
        "series_number": identity.SeriesNumber,
        "sop_instance_uid": identity.SOPInstanceUID,
        "instance_number": identity.InstanceNumber,
        "is_complete": True,
        "previous_versions": [predecessor.as_dataset(sop_class_uid)] if predecessor else None,
        "series_description": identity.SeriesDescription,
        "coding_schemes": [LOCAL_SCHEME_ITEM],
        **equipment(model),
    }


def observation_context(model: ModelIdentity) -> hd.sr.ObservationContext:
    """TID 1001 with cardiogate as the observing device (TID 1004)."""
    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=DEVICE_OBSERVER_UID,
        name="cardiogate",
        manufacturer_name=MANUFACTURER,
        model_name=f"{model.name} {model.version}"[:64],
    )
    return hd.sr.ObservationContext(
        observer_device_context=hd.sr.ObserverContext(
            observer_type=codes.DCM.Device, observer_identifying_attributes=device
        )
    )


def add_comments(report: hd.sr.MeasurementReport, texts: Sequence[str]) -> None:
    """Append TID 1500's Qualitative Evaluations container (row 12) with each text as a
    Comment (DCM 121106): the AI notice and what a coded value cannot say."""
    container = ContainerContentItem(
        name=QUALITATIVE_EVALUATIONS, relationship_type=RelationshipTypeValues.CONTAINS
    )
    container.ContentSequence = ContentSequence(
        [
            TextContentItem(
                name=COMMENT, value=text, relationship_type=RelationshipTypeValues.CONTAINS
            )
            for text in texts
        ]
    )
    report[0].ContentSequence.append(container)
