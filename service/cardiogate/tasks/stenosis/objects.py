"""The stenosis task's objects: a result and its angiogram in, the SR, key image and
summary page a PACS stores out, in the order they can be stored
(:mod:`cardiogate.reports.build`)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pydicom.dataset import Dataset

from cardiogate.analyses.xa_cine import XACine
from cardiogate.logs import quiet_highdicom
from cardiogate.reports.build import cleaned, read_sources, refusals
from cardiogate.reports.common import (
    ModelIdentity,
    ObjectIdentity,
    Predecessor,
    ReportError,
    object_identity,
    source_series,
)
from cardiogate.tasks.stenosis.analysis import StenosisResult
from cardiogate.tasks.stenosis.key_images import stenosis_key_image
from cardiogate.tasks.stenosis.series import OUTPUT_SERIES
from cardiogate.tasks.stenosis.sr import build_stenosis_sr
from cardiogate.tasks.stenosis.summary_page import stenosis_summary_page


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

    Parameters
    ----------
    sources : iterable of Path or Dataset
        The angiogram's instances (files are read without pixel data).
    result, cine : StenosisResult, XACine
        The result and the cine that :func:`~cardiogate.tasks.stenosis.analysis.analyze_xa`
        analysed (``load_xa_cine``).
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
        When the sources and the cine do not belong together.
    """
    quiet_highdicom()
    datasets = read_sources(sources)
    reference = source_series(datasets)
    if str(reference.SeriesInstanceUID) != cine.series_instance_uid:
        raise ReportError("the cine was not loaded from these sources")
    datasets = cleaned(datasets, warnings)
    model = ModelIdentity(result.model["name"], result.model["version"])
    series_uid = cine.series_instance_uid

    def identity(kind: str) -> ObjectIdentity:
        series = OUTPUT_SERIES[kind]
        return object_identity(
            series_uid,
            "stenosis",
            kind,
            model,
            version_index,
            series=(series.number, series.description),
        )

    objects: list[Dataset] = []
    with refusals("the stenosis objects"):
        objects.append(build_stenosis_sr(datasets, result, cine, identity("sr"), predecessor))
        if result.most_severe is not None:
            objects.append(stenosis_key_image(datasets, result, cine, identity("key")))
        objects.append(stenosis_summary_page(datasets, result, cine, identity("summary")))
    return objects
