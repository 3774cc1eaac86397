"""The calcium task's objects: a result and its CT slices in, the SEG, SR, key images and
summary page a PACS stores out, in the order they can be stored
(:mod:`cardiogate.reports.build`)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from cardiogate.analyses.ct_volume import CTVolume
from cardiogate.logs import quiet_highdicom
from cardiogate.reports.build import cleaned, read_sources, refusals
from cardiogate.reports.common import (
    ModelIdentity,
    ObjectIdentity,
    Part,
    Predecessor,
    ReportError,
    object_identity,
    source_series,
)
from cardiogate.tasks.calcium.analysis import CalciumResult
from cardiogate.tasks.calcium.key_images import calcium_key_images
from cardiogate.tasks.calcium.seg import build_calcium_seg, segments_present
from cardiogate.tasks.calcium.series import OUTPUT_SERIES
from cardiogate.tasks.calcium.sr import build_calcium_sr
from cardiogate.tasks.calcium.summary_page import calcium_summary_page


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
        As :func:`~cardiogate.tasks.calcium.analysis.analyze_ct_with_labels` returns them.
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
    slices = _in_volume_order(read_sources(sources), volume, labels)
    reference = source_series(slices)
    slices = cleaned(slices, warnings)
    model = ModelIdentity(result.model.name, result.model.version)
    series_uid = str(reference.SeriesInstanceUID)

    def identity(kind: str, part: Part | None = None) -> ObjectIdentity:
        series = OUTPUT_SERIES[kind]
        return object_identity(
            series_uid,
            "calcium",
            kind,
            model,
            version_index,
            part,
            series=(series.number, series.description),
        )

    objects: list[Dataset] = []
    with refusals("the calcium objects"):
        seg = None
        if segments_present(labels):
            seg = build_calcium_seg(slices, labels, result, identity("seg"))
            objects.append(seg.dataset)
        objects.append(build_calcium_sr(slices, result, seg, identity("sr"), predecessor))
        objects += calcium_key_images(
            slices, volume, labels, result, lambda part: identity("key", part)
        )
        objects.append(calcium_summary_page(slices, result, identity("summary")))
    return objects


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
