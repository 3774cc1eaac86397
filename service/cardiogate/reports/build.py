"""One entry point per task: a result and its source datasets in, the DICOM objects a PACS
stores out (``shared/design.md``: ``reports.<task>(Result, source datasets)``).

Each object joins the source study in a series of its own, says it is AI output and not for
diagnostic use, and has deterministic UIDs (:mod:`cardiogate.reports.common`). Objects are
returned in the order they can be stored: what is referenced before what references it.

highdicom sees cleaned copies of the sources (:mod:`cardiogate.reports.source_header`), so
that an absent or non-conformant patient or study attribute costs a warning, not the report.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from cardiogate.analyses.calcium_ct import CalciumResult
from cardiogate.analyses.ct_volume import CTVolume
from cardiogate.analyses.stenosis import StenosisResult
from cardiogate.analyses.xa_cine import XACine
from cardiogate.logs import quiet_highdicom
from cardiogate.reports.calcium_seg import arteries_present, build_calcium_seg
from cardiogate.reports.calcium_sr import build_calcium_sr
from cardiogate.reports.common import (
    ModelIdentity,
    ObjectIdentity,
    Part,
    Predecessor,
    ReportError,
    object_identity,
    source_series,
)
from cardiogate.reports.key_images import calcium_key_images, stenosis_key_image
from cardiogate.reports.source_header import cleaned_sources
from cardiogate.reports.stenosis_sr import build_stenosis_sr
from cardiogate.reports.summary_page import calcium_summary_page, stenosis_summary_page


def build_calcium_objects(
    sources: Iterable[Path | Dataset],
    result: CalciumResult,
    volume: CTVolume,
    labels: np.ndarray[Any, Any],
    *,
    version_index: int = 0,
    predecessor: Predecessor | None = None,
    warnings: list[str] | None = None,
) -> list[Dataset]:
    """The SEG (when there is calcium), the SR, a key image per artery with calcium and the
    summary page of a calcium job, from ``analyze_ct_with_labels``'s outputs.

    Parameters
    ----------
    sources : iterable of Path or Dataset
        The CT slices that were scored (files are read without pixel data).
    result, volume, labels : CalciumResult, CTVolume, (slices, rows, columns) uint8 array
        As :func:`~cardiogate.analyses.calcium_ct.analyze_ct_with_labels` returns them.
    version_index : int
        0 for the first report of this series by this model, 1 for its first revision...
    predecessor : Predecessor, optional
        The SR that this one replaces.
    warnings : list of str, optional
        Gets a line for each source attribute that was repaired or written empty (attribute
        names only, never values).

    Raises
    ------
    ReportError
        When the sources, the volume and the labels do not belong together.
    """
    quiet_highdicom()
    slices = _in_volume_order(_read(sources), volume, labels)
    reference = source_series(slices)
    slices = _cleaned(slices, warnings)
    model = ModelIdentity(result.model.name, result.model.version)
    series_uid = str(reference.SeriesInstanceUID)

    def identity(kind: str, part: Part | None = None) -> ObjectIdentity:
        return object_identity(series_uid, "calcium", kind, model, version_index, part)

    objects: list[Dataset] = []
    with _refusals("calcium"):
        seg = None
        if arteries_present(labels):
            seg = build_calcium_seg(slices, labels, result, identity("seg"))
            objects.append(seg.dataset)
        objects.append(build_calcium_sr(slices, result, seg, identity("sr"), predecessor))
        objects += calcium_key_images(
            slices, volume, labels, result, lambda part: identity("key", part)
        )
        objects.append(calcium_summary_page(slices, result, identity("summary")))
    return objects


def build_stenosis_objects(
    sources: Iterable[Path | Dataset],
    result: StenosisResult,
    cine: XACine,
    *,
    version_index: int = 0,
    predecessor: Predecessor | None = None,
    warnings: list[str] | None = None,
) -> list[Dataset]:
    """The SR, the key image (when a lesion was found) and the summary page of a stenosis
    job.

    Parameters are as for :func:`build_calcium_objects`; ``cine`` is the cine that
    :func:`~cardiogate.analyses.stenosis.analyze_xa` analysed (``load_xa_cine``).
    """
    quiet_highdicom()
    datasets = _read(sources)
    reference = source_series(datasets)
    if str(reference.SeriesInstanceUID) != cine.series_instance_uid:
        raise ReportError("the cine was not loaded from these sources")
    datasets = _cleaned(datasets, warnings)
    model = ModelIdentity(result.model["name"], result.model["version"])
    series_uid = cine.series_instance_uid

    def identity(kind: str) -> ObjectIdentity:
        return object_identity(series_uid, "stenosis", kind, model, version_index)

    objects: list[Dataset] = []
    with _refusals("stenosis"):
        objects.append(build_stenosis_sr(datasets, result, cine, identity("sr"), predecessor))
        if result.most_severe is not None:
            objects.append(stenosis_key_image(datasets, result, cine, identity("key")))
        objects.append(stenosis_summary_page(datasets, result, cine, identity("summary")))
    return objects


def _cleaned(datasets: list[Dataset], warnings: list[str] | None) -> list[Dataset]:
    """The cleaned copies highdicom is given; their warnings added to ``warnings``."""
    cleaned, notes = cleaned_sources(datasets)
    if warnings is not None:
        warnings.extend(notes)
    return cleaned


@contextmanager
def _refusals(task: str) -> Iterator[None]:
    """highdicom refuses what would make an invalid object with ValueError or TypeError
    (strict when writing), and an absent attribute it reads with AttributeError: report it
    as a ReportError naming the attribute where the traceback shows it, never the message,
    since highdicom's messages may quote attribute values."""
    try:
        yield
    except (ValueError, TypeError, AttributeError) as e:
        keyword = refused_attribute(e)
        if isinstance(e, AttributeError) and keyword is None:
            raise  # not a DICOM attribute: a fault of ours, not of the sources
        if isinstance(e, AttributeError):
            what = f"the sources lack {keyword}"
        else:
            what = f"highdicom refused {keyword}" if keyword else "highdicom refused a value"
        raise ReportError(f"the {task} objects cannot be built: {what} ({type(e).__name__})") from e


def refused_attribute(error: BaseException) -> str | None:
    """The DICOM keyword of what ``error`` refused: the missing attribute of an
    AttributeError that names it, else the first keyword (``StudyTime``) or keyword-named
    parameter (``study_time``) on the innermost two lines of highdicom's code in the
    traceback (a check and its caller: ``_check_long_string(institution_name)``). Source
    lines hold code, never values."""
    name = str(getattr(error, "name", None) or "")
    if isinstance(error, AttributeError) and tag_for_keyword(name) is not None:
        return name
    package = str(Path(hd.__file__).parent)
    frames = traceback.extract_tb(error.__traceback__)
    ours = [frame for frame in reversed(frames) if frame.filename.startswith(package)]
    for frame in ours[:2]:
        words: list[str] = re.findall(r"\b[A-Za-z]\w*", frame.line or "")
        for word in words:
            if word[0].islower() and "_" not in word:
                continue  # a plain variable (``time``, ``item``), no attribute's name
            keyword = word if word[0].isupper() else word.title().replace("_", "")
            if tag_for_keyword(keyword) is not None:
                return keyword
    return None


def _read(sources: Iterable[Path | Dataset]) -> list[Dataset]:
    datasets = []
    for index, source in enumerate(sources):
        if isinstance(source, Dataset):
            datasets.append(source)
            continue
        try:
            datasets.append(pydicom.dcmread(source, stop_before_pixels=True))
        except (OSError, InvalidDicomError) as e:  # the path may name the patient
            raise ReportError(f"source {index} cannot be read as DICOM ({type(e).__name__})") from e
    return datasets


def _in_volume_order(
    datasets: list[Dataset], volume: CTVolume, labels: np.ndarray[Any, Any]
) -> list[Dataset]:
    """The slices in ``volume``'s order, checked against it and the labels."""
    by_uid = {str(ds.get("SOPInstanceUID", "")): ds for ds in datasets}
    missing = [uid for uid in volume.sop_instance_uids if uid not in by_uid]
    if missing:
        raise ReportError(f"{len(missing)} slices of the volume are not among the sources")
    if labels.shape != volume.hu.shape:
        raise ReportError(f"labels {labels.shape} do not match the volume {volume.hu.shape}")
    return [by_uid[uid] for uid in volume.sop_instance_uids]
