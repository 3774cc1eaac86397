"""The cases of the interoperability corpus and what a user should see for each.

The phantoms in every transfer syntax dcmtk and GDCM write, and with each header defect
sites send; an XA cine in several fragments per frame, without and with a wrong Basic
Offset Table; a CT with its middle slice sent late; a delivered CT re-sent in another
transfer syntax; the series a PACS forwards with a study that are not for us; and the
sample files of pydicom, pydicom-data and pynetdicom, from several vendors.
"""

from __future__ import annotations

from pathlib import Path

from cardiogate_phantoms import make_ct_series

from cardiogate.dicom.status import Status
from interop_corpus import CT_SIZE, PHANTOMS, Case, Expected, Step, phantom
from interop_sources import (
    dose_screen,
    dose_sr,
    localizer,
    offsets_without_item_headers,
    unlabelled_cta,
)

GAP_INDEX = 8  # the slice of 16 that the gap case sends late
SECOND_ROUND = {"ct-resent-j2k"}  # sent once the first round's jobs are final


def same_as(twin: str, *, lossy: bool = False) -> Expected:
    return Expected("analysed", twin=twin, lossy=lossy)


def ignored(reason: str) -> Expected:
    return Expected("ignored", reason=reason)


def rewrite(*argv: str) -> tuple[str, ...]:
    return (*argv, "{in}", "{out}")


REWRITES: dict[str, tuple[Step, ...]] = {  # all lossless
    "implicit": (rewrite("dcmconv", "+ti"),),
    "bigendian": (rewrite("dcmconv", "+tb"),),
    "deflated": (rewrite("dcmconv", "+td"),),
    "jpeg-sv1": (rewrite("dcmcjpeg", "+e1"),),
    "jpeg-p14": (rewrite("dcmcjpeg", "+el"),),
    "jpegls": (rewrite("dcmcjpls"),),
    "rle": (rewrite("dcmcrle"),),
    "gdcm-j2k": (rewrite("gdcmconv", "--j2k"),),
    "gdcm-jpegls": (rewrite("gdcmconv", "--jpegls"),),
    "gdcm-rle": (rewrite("gdcmconv", "--rle"),),
    "gdcm-jpeg": (rewrite("gdcmconv", "--jpeg"),),
    "gdcm-raw": (rewrite("gdcmconv", "--j2k"), rewrite("gdcmconv", "--raw")),
}
_TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate")
_TYPE2 += ("StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber")
DEFECTS: dict[str, tuple[str, tuple[str, ...]]] = {  # id: (defect, dcmodify arguments)
    "no-type2": (
        "Type 2 Patient/General Study attributes absent",
        tuple(a for keyword in _TYPE2 for a in ("-ea", keyword)),
    ),
    "sex-female": ("PatientSex 'female'", ("-i", "PatientSex=female")),
    "sex-u": ("PatientSex 'U'", ("-i", "PatientSex=U")),
    "time-colons": ("StudyTime '11:20:00'", ("-i", "StudyTime=11:20:00")),
    "date-feb30": ("StudyDate '20260230'", ("-i", "StudyDate=20260230")),
    "long-lo": ("PatientID of 80 characters (LO: 64)", ("-i", "PatientID=SYN" + "0" * 77)),
}


def twin_of(
    name: str, suffix: str, *steps: Step, lossy: bool = False, defect: str = "", label: str = ""
) -> Case:
    """A rewrite of phantom ``name`` that must give the result of ``<name>-clean``."""
    expected = same_as(f"{name}-clean", lossy=lossy)
    source = PHANTOMS[name][1]
    return Case(f"{name}-{suffix}", source, expected, defect, name, steps=steps, label=label)


def _phantom_cases() -> list[Case]:
    cases = [twin_of(name, "clean") for name in PHANTOMS]
    cases += [twin_of("ct", suffix, *steps) for suffix, steps in REWRITES.items()]
    xa = ("implicit", "bigendian", "deflated", "jpeg-sv1", "jpegls", "rle", "gdcm-j2k")
    cases += [twin_of("xa", suffix, *REWRITES[suffix]) for suffix in xa]
    cases += [twin_of("ct-signed", s, *REWRITES[s]) for s in ("jpeg-sv1", "gdcm-j2k")]
    cases += [
        twin_of("ct-12bit", "jpeg-extended", rewrite("dcmcjpeg", "+ee"), lossy=True),
        twin_of("xa", "jpeg-baseline", rewrite("dcmcjpeg", "+eb"), lossy=True),
        twin_of("xa", "jpegls-near", rewrite("dcmcjpls", "+en"), lossy=True),
        twin_of(
            "xa",
            "fragments-no-bot",
            rewrite("dcmcjpls", "+fs", "1", "-ot"),
            defect="1 KiB fragments, ~25 a frame; empty Basic Offset Table",
        ),
        twin_of(
            "xa",
            "fragments-wrong-bot",
            rewrite("dcmcjpls", "+fs", "1"),
            offsets_without_item_headers,
            defect="1 KiB fragments, ~25 a frame; Basic Offset Table leaves out the item headers",
        ),
    ]
    for name in ("ct", "xa"):
        for suffix, (defect, args) in DEFECTS.items():
            edit = ("dcmodify", "-nb", "-imt", *args, "{out}")
            cases.append(twin_of(name, suffix, edit, defect=defect, label="dcmodify"))
    late = f"slice {GAP_INDEX + 1} of {CT_SIZE['n_slices']} sent after the first run"
    cases.append(Case("ct-gap", PHANTOMS["ct"][1], Expected("gap", "ct-clean", "gap"), late, "ct"))
    cases.append(
        Case(
            "ct-resent-j2k",
            PHANTOMS["ct"][1],
            Expected("resent", twin="ct-clean"),
            "ct-clean's instances again, after its report",
            "ct",
            steps=REWRITES["gdcm-j2k"],
            uids_of="ct-clean",
        )
    )
    return cases


def _cta() -> list[Case]:
    source = "phantom CT, seed 0, contrast"
    return [
        Case(
            "cta",
            source,
            ignored("contrast"),
            made=lambda: make_ct_series(0, contrast=True, keep_phantom=False, **CT_SIZE).datasets,
        ),
        Case(
            "cta-unlabelled",
            source,
            ignored("contrast"),
            "no ContrastBolusAgent; described 'Heart 3.0 Bv40 75%'",
            made=lambda: unlabelled_cta(**CT_SIZE),
        ),
    ]


def _not_for_us() -> list[Case]:
    return _cta() + [
        Case(
            "localizer",
            "phantom CT, seed 0, 2 images",
            ignored("localizer"),
            made=lambda: localizer(list(phantom("ct"))),
        ),
        Case(
            "dose-sr",
            "CT Radiation Dose SR (TID 10011)",
            ignored("dose"),
            made=lambda: dose_sr(phantom("ct")[0]),
        ),
        Case(
            "dose-screen",
            "Secondary Capture, Modality CT, 'Dose Report'",
            ignored(r"dose|secondary capture|SOP class"),
            made=lambda: dose_screen(phantom("ct")[0]),
        ),
    ]


# (shipped file, its package and what it is, the reason it is ignored for)
SHIPPED: list[tuple[str, str, str]] = [
    ("CT_small.dcm", "pydicom: CT, GE, one slice, contrast", r"slice|contrast"),
    ("693_J2KR.dcm", "pydicom-data: CT, one slice", r"slice"),
    ("bad_sequence.dcm", "pydicom-data: CT, Siemens SOMATOM Definition AS+", r"slice"),
    ("J2K_pixelrep_mismatch.dcm", "pydicom: CT, Hitachi Supria, J2K signedness", r"slice"),
    ("explicit_VR-UN.dcm", "pydicom-data: CT, elements with VR UN", r"slice"),
    ("eCT_Supplemental.dcm", "pydicom-data: Enhanced CT, 2 frames", r"SOP class|enhanced"),
    ("emri_small_jpeg_ls_lossless.dcm", "pydicom-data: Enhanced MR, 10 frames", r"\bMR\b"),
    ("emri_small_big_endian.dcm", "pydicom-data: Enhanced MR, 10 frames", r"\bMR\b"),
    ("MR_small_bigendian.dcm", "pydicom: MR, Toshiba", r"\bMR\b"),
    ("OBXXXX1A_rle_2frame.dcm", "pydicom-data: US, Philips, 2 frames", r"\bUS\b"),
    ("examples_ybr_color.dcm", "pydicom: US, SonoSite, 30 frames, YBR", r"\bUS\b"),
    ("JPEG-LL.dcm", "pydicom-data: Secondary Capture, Modality NM, GE", r"secondary|\bNM\b"),
    ("reportsi.dcm", "pydicom: Basic Text SR, OFFIS", r"\bSR\b|report"),
    ("test-SR.dcm", "pydicom: Comprehensive SR", r"\bSR\b|report"),
    ("SC_rgb_jpeg_dcmtk.dcm", "pydicom: Secondary Capture, RGB", r"secondary|\bOT\b"),
    ("SCImageStorage_Deflated.dcm", "pynetdicom: Secondary Capture", r"secondary|\bOT\b"),
    ("waveform_ecg.dcm", "pydicom: 12-lead ECG, Mortara", r"\bECG\b"),
]


def _shipped() -> list[Case]:
    cases = [
        Case(f"pub-{Path(name).stem}", source, ignored(reason), shipped=name)
        for name, source, reason in SHIPPED
    ]
    truncated = Case(
        "pub-MR_truncated",
        "pydicom: MR, Toshiba, pixel data cut short",
        Expected("refused", status=Status.CANNOT_UNDERSTAND),
        "truncated",
        shipped="MR_truncated.dcm",
        as_shipped=True,
    )
    return [*cases, truncated]


CASES: list[Case] = _phantom_cases() + _not_for_us() + _shipped()
BY_ID = {case.id: case for case in CASES}
