"""Copies of the source datasets whose patient, study and equipment attributes highdicom
accepts and dciodvfy finds valid.

highdicom 0.28 builds every SR and SEG from the first source: it reads its Type 2 patient
and study attributes by name (absent: AttributeError), validates Patient's Sex, the dates,
the times and the Specific Character Set (ValueError), copies the root attributes of the
Patient, Clinical Trial Subject, General Study, Patient Study and Clinical Trial Study
modules as they are (PS3.3 C.7.1.1, C.7.1.3, C.7.2.1 to C.7.2.3), and the acquisition
equipment into the Contributing Equipment Sequence (dropped without a word when a value is
too long). Our key image copies the same modules from the slice it shows.

In the copies: valid values are kept; absent Type 2 attributes of the Patient and General
Study modules are written empty; what is unambiguous is repaired (case, ``11:20:00`` to
``112000``, ``2026-02-03`` to ``20260203``, ``female`` to ``F``); what is not is written
empty; over-long values are cut at their VR's maximum length (PS3.5 Table 6.2-1). Every
slice gets the first slice's patient and study attributes, as every object must say the
same. Each change is a warning that names the attribute and never quotes a value.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

import highdicom as hd
from highdicom._standard_utils import get_module_attribute_map  # the modules it copies
from pydicom.datadict import dictionary_VM, dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag, Tag
from pydicom.valuerep import format_number_as_ds

# highdicom's SOPClass.copy_patient_and_study_information: the root attributes of these
MODULES = (
    "patient",
    "clinical-trial-subject",
    "general-study",
    "patient-study",
    "clinical-trial-study",
)
MANDATORY_MODULES = ("patient", "general-study")  # whose Type 2 attributes must be there
# ContributingEquipment.for_image_acquisition reads these from the first source
EQUIPMENT = (
    "Manufacturer",
    "ManufacturerModelName",
    "SoftwareVersions",
    "DeviceSerialNumber",
    "InstitutionName",
    "InstitutionalDepartmentName",
    "InstitutionAddress",
    "StationName",
    "AcquisitionDateTime",
)

# PS3.5 Table 6.2-1, in characters (PN: per component group)
MAX_LENGTH = {"AS": 4, "CS": 16, "DA": 8, "DS": 16, "DT": 26, "LO": 64, "LT": 10240}
MAX_LENGTH |= {"PN": 64, "SH": 16, "ST": 1024, "TM": 14}
ASCII_VRS = frozenset({"AS", "CS", "DA", "DS", "DT", "TM"})
TEXT_WITH_CONTROLS = frozenset({"LT", "ST", "UT"})  # may hold CR, LF and FF (PS3.5 6.2)

# enumerated values of the coded attributes of these modules (PS3.3 C.7.1.1, C.7.2.2)
ENUMERATED = {
    "PatientSex": ("M", "F", "O"),
    "PatientIdentityRemoved": ("YES", "NO"),
    "QualityControlSubject": ("YES", "NO"),
    "SmokingStatus": ("YES", "NO", "UNKNOWN"),
    "PatientSexNeutered": ("ALTERED", "UNALTERED"),
    "TypeOfPatientID": ("TEXT", "RFID", "BARCODE"),
    "LongitudinalTemporalEventType": ("ENROLLMENT", "BASELINE"),
}
SEX_SPELLINGS = {"MALE": "M", "FEMALE": "F", "OTHER": "O"}
CHARSETS = frozenset(value.value for value in hd.SpecificCharacterSetValues)
UNICODE = "ISO_IR 192"
CHARSET_TAG = Tag("SpecificCharacterSet")

DATE = re.compile(r"(\d{4})([-./]?)(\d{2})\2(\d{2})")
TIME = re.compile(r"(\d{2})(?:(:?)(\d{2})(?:\2(\d{2})(?:\.(\d+))?)?)?")
AGE = re.compile(r"(\d{1,3}) ?([DWMY])")
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
DATETIME = re.compile(r"\d{4}(\d{2}(\d{2}(\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?)?)?)?([+-]\d{4})?")
CODE = re.compile(r"[A-Z0-9 _]*")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
CONTROL_IN_TEXT = re.compile(r"[\x00-\x09\x0b\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class _Attribute:
    tag: BaseTag
    keyword: str
    vr: str
    single: bool  # VM 1
    type2: bool  # written empty when absent


@cache
def patient_and_study() -> tuple[_Attribute, ...]:
    """The root attributes highdicom copies from the Patient and Study modules, but the
    Study Instance UID (Type 1, checked by :func:`~cardiogate.reports.common.source_series`)."""
    found: dict[str, _Attribute] = {}
    modules = get_module_attribute_map()
    for module in MODULES:
        for item in modules[module]:
            keyword = str(item["keyword"])
            if item["path"] or keyword in found or keyword == "StudyInstanceUID":
                continue
            tag = Tag(keyword)
            type2 = item["type"] == "2" and module in MANDATORY_MODULES
            vr, vm = dictionary_VR(tag), dictionary_VM(tag)
            found[keyword] = _Attribute(tag, keyword, vr, vm == "1", type2)
    return tuple(found.values())


@cache
def equipment() -> tuple[_Attribute, ...]:
    """The General Equipment attributes highdicom copies into Contributing Equipment."""
    tags = [Tag(keyword) for keyword in EQUIPMENT]
    return tuple(
        _Attribute(tag, keyword, dictionary_VR(tag), dictionary_VM(tag) == "1", False)
        for tag, keyword in zip(tags, EQUIPMENT, strict=True)
    )


def cleaned_sources(sources: Sequence[Dataset]) -> tuple[list[Dataset], list[str]]:
    """Copies of ``sources`` (same order, the callers' datasets untouched) that highdicom
    accepts, and a warning for each attribute that was changed (see the module's docstring).
    """
    if not sources:
        return [], []
    copies = [_copy(ds) for ds in sources]
    first = copies[0]
    warnings: list[str] = []
    changed = {a.tag for a in patient_and_study() if _clean(first, a, warnings)}
    for attribute in equipment():  # highdicom reads these from the first source only
        _clean(first, attribute, warnings)
    charset_changed = _clean_charset(first, warnings)
    if charset_changed:
        changed |= {a.tag for a in patient_and_study()}
    warnings += _make_alike(sources[0], copies, changed)
    if charset_changed:  # after the others' values were read with their own set
        for ds in copies[1:]:
            if CHARSET_TAG in first:
                ds[CHARSET_TAG] = first[CHARSET_TAG]
            elif CHARSET_TAG in ds:
                del ds[CHARSET_TAG]
    return copies, warnings


def _copy(ds: Dataset) -> Dataset:
    """A dataset of the same elements in a dict of its own (pydicom's ``Dataset.copy``
    shares the dict, so that a change to the copy changes the original)."""
    copy = Dataset(dict(ds.items()))
    file_meta = getattr(ds, "file_meta", None)
    if file_meta is not None:
        copy.file_meta = file_meta
    return copy


def _clean(ds: Dataset, attribute: _Attribute, warnings: list[str]) -> bool:
    """Clean ``attribute`` of ``ds`` in place; whether it was changed."""
    if attribute.tag not in ds:
        if not attribute.type2:
            return False
        ds[attribute.tag] = DataElement(attribute.tag, attribute.vr, "")
        warnings.append(f"{attribute.keyword} absent: written empty")
        return True
    cleaner = CLEANERS.get(attribute.vr)
    values = _texts(ds, attribute) if cleaner is not None else None
    if cleaner is None or values is None:
        return False
    notes: list[str] = []
    kept = values
    if attribute.single and len(values) > 1:
        kept = values[:1]
        notes.append(f"has {len(values)} values where one is allowed: the first is kept")
    cleaned = []
    for text in kept:
        repaired, note = cleaner(attribute.keyword, text)
        if note is not None and note not in notes:
            notes.append(note)
        cleaned.append(repaired)
    if len(cleaned) > 1:
        cleaned = [text for text in cleaned if text]
    if cleaned == values:
        return False
    value: str | list[str] = cleaned if len(cleaned) > 1 else "".join(cleaned)
    ds[attribute.tag] = DataElement(attribute.tag, attribute.vr, value)
    warnings += [f"{attribute.keyword} {note}" for note in notes]
    return True


def _texts(ds: Dataset, attribute: _Attribute) -> list[str] | None:
    """The values of an attribute as text, None when absent; ASCII VRs straight from the
    bytes, so that a value pydicom cannot convert (a DS of ``72,5``) can still be read."""
    element = ds.get_item(attribute.tag)
    if element is None:
        return None
    if isinstance(element, RawDataElement) and attribute.vr in ASCII_VRS:
        text = (element.value or b"").decode("latin-1").strip(" \x00")
        return [value.strip(" \x00") for value in text.split("\\")] if text else []
    value = ds[attribute.tag].value
    if value is None or value == "" or value == b"":
        return []
    items = list(value) if isinstance(value, MultiValue | list | tuple) else [value]
    return [item.decode("latin-1") if isinstance(item, bytes) else str(item) for item in items]


Cleaner = Callable[[str, str], tuple[str, str | None]]


def _date(keyword: str, text: str) -> tuple[str, str | None]:
    match = DATE.fullmatch(text)
    if match is not None:
        year, _, month, day = match.groups()
        try:
            datetime.date(int(year), int(month), int(day))
        except ValueError:
            pass
        else:
            joined = year + month + day
            return joined, None if joined == text else "normalised to the DICOM date form"
    return "", "not a valid date: written empty"


def _time(keyword: str, text: str) -> tuple[str, str | None]:
    match = TIME.fullmatch(text)
    if match is not None:
        hours, _, minutes, seconds, fraction = match.groups()
        if int(hours) < 24 and int(minutes or 0) < 60 and int(seconds or 0) < 61:
            joined = hours + (minutes or "") + (seconds or "")
            joined += f".{fraction[:6]}" if fraction else ""  # PS3.5: at most microseconds
            return joined, None if joined == text else "normalised to the DICOM time form"
    return "", "not a valid time: written empty"


def _datetime(keyword: str, text: str) -> tuple[str, str | None]:
    if DATETIME.fullmatch(text) is not None:
        return text, None
    return "", "not a valid date and time: written empty"


def _age(keyword: str, text: str) -> tuple[str, str | None]:
    match = AGE.fullmatch(text.upper())
    if match is None:
        return "", "not a valid age: written empty"
    number, unit = match.groups()
    joined = f"{int(number):03d}{unit}"
    return joined, None if joined == text else "normalised to the DICOM age form"


def _decimal(keyword: str, text: str) -> tuple[str, str | None]:
    note = None
    if re.fullmatch(r"[+-]?\d+,\d+", text):
        text, note = text.replace(",", "."), "decimal comma replaced by a point"
    if NUMBER.fullmatch(text) is None or not -1e300 < float(text) < 1e300:
        return "", "not a decimal number: written empty"
    if len(text) > MAX_LENGTH["DS"]:
        return format_number_as_ds(float(text)), "longer than 16 characters: rounded"
    return text, note


def _code(keyword: str, text: str) -> tuple[str, str | None]:
    code = text.upper()
    note = None if code == text else "normalised to upper case"
    if keyword == "PatientSex" and code in SEX_SPELLINGS:
        return SEX_SPELLINGS[code], "normalised to a DICOM code"
    if CODE.fullmatch(code) is None:
        return "", "has characters a code string may not hold: written empty"
    if len(code) > MAX_LENGTH["CS"]:
        code, note = code[: MAX_LENGTH["CS"]], "longer than 16 characters: truncated"
    allowed = ENUMERATED.get(keyword)
    if allowed is not None and code not in allowed:
        return "", f"not one of {', '.join(allowed)}: written empty"
    return code, "normalised to a DICOM code" if keyword == "PatientSex" and note else note


def _text(vr: str) -> Cleaner:
    """Control characters out (but CR, LF and FF of the texts), cut at the maximum length."""
    control = CONTROL_IN_TEXT if vr in TEXT_WITH_CONTROLS else CONTROL

    def clean(keyword: str, text: str) -> tuple[str, str | None]:
        note = None
        if control.search(text):
            text, note = control.sub("", text), "had control characters: removed"
        limit = MAX_LENGTH.get(vr)
        if limit is None:
            return text, note
        groups = text.split("=") if vr == "PN" else [text]
        if any(len(group) > limit for group in groups):
            text = "=".join(group[:limit] for group in groups)
            where = " in a component group" if vr == "PN" else ""
            note = f"longer than {limit} characters{where}: truncated"
        return text, note

    return clean


CLEANERS: dict[str, Cleaner] = {
    "DA": _date,
    "TM": _time,
    "DT": _datetime,
    "AS": _age,
    "DS": _decimal,
    "CS": _code,
    **{vr: _text(vr) for vr in ("LO", "SH", "PN", "ST", "LT", "UC", "UT")},
}


def _clean_charset(ds: Dataset, warnings: list[str]) -> bool:
    """A Specific Character Set highdicom accepts (PS3.3 C.12.1.1.2): a misspelt defined
    term repaired, an unknown one replaced by UTF-8, which holds whatever pydicom decoded.
    The patient and study values are decoded first, with the set they were written in."""
    values = _texts(ds, _Attribute(CHARSET_TAG, "SpecificCharacterSet", "CS", False, False))
    if values is None or (values and _defined(values)):
        return False
    if not values:  # highdicom refuses an empty one; absent means the default repertoire
        del ds[CHARSET_TAG]
        warnings.append("SpecificCharacterSet empty: left out")
        return True
    for attribute in patient_and_study():
        if attribute.tag in ds:
            ds[attribute.tag]  # converts a raw element with the set it was written in
    squashed = {_squash(term): term for term in CHARSETS}
    repaired = [squashed.get(_squash(value), "") if value else "" for value in values]
    if _defined(repaired):
        value: str | list[str] = repaired if len(repaired) > 1 else repaired[0]
        ds[CHARSET_TAG] = DataElement(CHARSET_TAG, "CS", value)
        warnings.append("SpecificCharacterSet normalised to a defined term")
    else:
        ds[CHARSET_TAG] = DataElement(CHARSET_TAG, "CS", UNICODE)
        warnings.append(f"SpecificCharacterSet not a defined term: written as {UNICODE}")
    return True


def _defined(values: list[str]) -> bool:
    """Whether these are defined terms; the first may be empty when code extensions follow."""
    first_ok = values[0] in CHARSETS or (values[0] == "" and len(values) > 1)
    return first_ok and all(value in CHARSETS for value in values[1:])


def _squash(term: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", term.upper())


def _make_alike(original: Dataset, copies: list[Dataset], changed: set[BaseTag]) -> list[str]:
    """Give every copy the first copy's patient and study attributes; a warning for each
    attribute whose value differed between the sources."""
    first, others = copies[0], copies[1:]
    reference = {a.tag: original.get_item(a.tag) for a in patient_and_study()}
    converted = _copy(original)  # the first source's values, converted away from the caller's
    differing: dict[str, int] = {}
    for ds in others:
        for attribute in patient_and_study():
            tag = attribute.tag
            element = ds.get_item(tag)
            same = _same(ds, converted, tag, element, reference[tag])
            if not same:
                differing[attribute.keyword] = differing.get(attribute.keyword, 0) + 1
            elif tag not in changed:
                continue
            if tag in first:
                ds[tag] = first[tag]
            elif element is not None:
                del ds[tag]
    return [
        f"{keyword} differs between the source instances ({count} of {len(copies)}): "
        "the first instance's is used"
        for keyword, count in differing.items()
    ]


def _same(
    ds: Dataset,
    first: Dataset,
    tag: BaseTag,
    element: DataElement | RawDataElement | None,
    reference: DataElement | RawDataElement | None,
) -> bool:
    """Whether ``element`` of ``ds`` has the value of ``reference``, ``tag`` of ``first``:
    by their bytes when both are still raw, as pydicom reads them otherwise."""
    if element is None or reference is None:
        return element is reference
    if isinstance(element, RawDataElement) and isinstance(reference, RawDataElement):
        ours, theirs = element.value or b"", reference.value or b""
        return ours.rstrip(b" \x00") == theirs.rstrip(b" \x00")
    return bool(ds[tag].value == first[tag].value)
