"""What every task's output objects are built with: the sources read and cleaned, and
highdicom's refusals turned into a :class:`~cardiogate.reports.common.ReportError`.

Each object joins the source study in a series of its own, says it is AI output and not for
diagnostic use, and has deterministic UIDs (:mod:`cardiogate.reports.common`). A task
returns its objects in the order they can be stored: what is referenced before what
references it.

highdicom sees cleaned copies of the sources (:mod:`cardiogate.reports.source_header`), so
that an absent or non-conformant patient or study attribute costs a warning, not the report.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import highdicom as hd
import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from cardiogate.reports.common import ReportError
from cardiogate.reports.source_header import cleaned_sources


def cleaned(datasets: list[Dataset], warnings: list[str] | None) -> list[Dataset]:
    """The cleaned copies highdicom is given; their warnings added to ``warnings``."""
    copies, notes = cleaned_sources(datasets)
    if warnings is not None:
        warnings.extend(notes)
    return copies


@contextmanager
def refusals(what: str) -> Iterator[None]:
    """highdicom refuses what would make an invalid object with ValueError or TypeError
    (strict when writing), and an absent attribute it reads with AttributeError: report it
    as a ReportError naming the attribute where the traceback shows it, never the message,
    since highdicom's messages may quote attribute values. ``what`` names the objects
    (``"the calcium objects"``)."""
    try:
        yield
    except (ValueError, TypeError, AttributeError) as e:
        keyword = refused_attribute(e)
        if isinstance(e, AttributeError) and keyword is None:
            raise  # not a DICOM attribute: a fault of ours, not of the sources
        if isinstance(e, AttributeError):
            why = f"the sources lack {keyword}"
        else:
            why = f"highdicom refused {keyword}" if keyword else "highdicom refused a value"
        raise ReportError(f"{what} cannot be built: {why} ({type(e).__name__})") from e


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


def read_sources(sources: Iterable[Path | Dataset]) -> list[Dataset]:
    """The sources as datasets; files are read without their pixel data."""
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
