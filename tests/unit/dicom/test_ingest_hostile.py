"""Property tests of the C-STORE handler on hostile bytes: spoiled encodings of valid
synthetic instances go to the real handler, spool and SQLite file. Whatever arrives, the
answer is stored or 0xC000 Cannot understand, no exception escapes unnamed, nothing lands
outside the spool, and files and rows agree. A stored instance then goes to its loader."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydicom.uid import UID, ExplicitVRLittleEndian

from cardiogate.analyses.ct_volume import load_ct_series
from cardiogate.analyses.xa_cine import load_xa_cine
from cardiogate.dicom.content import compare_with_stored
from cardiogate.dicom.status import Status
from cardiogate.errors import CardiogateError
from hostile import (
    HOSTILE_ELEMENTS,
    HOSTILE_NUMBERS,
    HOSTILE_UIDS,
    SYNTAXES,
    US_VALUES,
    IngestRig,
    ct_slices,
    encode,
    mutate,
    seeds,
)

# Reproducible in CI: the same cases every run, no time limit per case on 2 shared cores.
HOSTILE = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

seed_index = st.integers(0, len(seeds()) - 1)
syntax = st.sampled_from(SYNTAXES)
edits = st.lists(
    st.tuples(st.integers(0, 4), st.integers(0, 2**31), st.integers(0, 2**32 - 1)),
    min_size=1,
    max_size=4,
)
element = st.sampled_from(HOSTILE_ELEMENTS).flatmap(
    lambda kv: st.tuples(
        st.just(kv[0]),
        st.just(kv[1]),
        st.sampled_from(US_VALUES) if kv[1] in ("US", "AT") else st.sampled_from(HOSTILE_NUMBERS),
    )
)
uid_element = st.tuples(
    st.sampled_from(["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"]),
    st.just("UI"),
    st.one_of(st.sampled_from(HOSTILE_UIDS), st.text(max_size=80)),
)


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IngestRig]:
    running = IngestRig(tmp_path_factory.mktemp("hostile-ingest"))
    yield running
    running.close()


def _stored_bytes(rig: IngestRig, sop_uid: str) -> bytes | None:
    row = rig.store.get_instance(sop_uid)
    if row is None:
        return None
    data = rig.spool.read(row.path)
    meta_length = int.from_bytes(data[140:144], "little")
    return data[144 + meta_length :]


@HOSTILE
@given(index=seed_index, ts=syntax, ops=edits)
def test_spoiled_bytes_are_stored_whole_or_refused(
    rig: IngestRig, index: int, ts: UID, ops: list[tuple[int, int, int]]
) -> None:
    data = mutate(encode(seeds()[index], ts), ops)
    status = rig.c_store(data, ts)
    rig.check(data, status)


@HOSTILE
@given(index=seed_index, encoded_as=syntax, announced_as=syntax)
def test_a_transfer_syntax_that_lies_is_refused_or_stored_whole(
    rig: IngestRig, index: int, encoded_as: UID, announced_as: UID
) -> None:
    data = encode(seeds()[index], encoded_as)
    status = rig.c_store(data, announced_as)
    rig.check(data, status)


@HOSTILE
@example(
    index=0, ts=ExplicitVRLittleEndian, values=[("SeriesNumber", "IS", "99999999999999999999")]
)
@example(index=3, ts=ExplicitVRLittleEndian, values=[("NumberOfFrames", "IS", "2147483648")])
@given(
    index=seed_index,
    ts=syntax,
    values=st.lists(st.one_of(element, uid_element), min_size=1, max_size=3),
)
def test_hostile_values_are_stored_or_refused_and_loaders_name_their_errors(
    rig: IngestRig, index: int, ts: UID, values: list[tuple[str, str, str | int]]
) -> None:
    ds = seeds()[index]
    data = encode(ds, ts, values)
    status = rig.c_store(data, ts)
    rig.check(data, status)
    if status != Status.SUCCESS:
        return
    uids = [v for k, _, v in values if k == "SOPInstanceUID"]
    sop_uid = str(uids[-1] if uids else ds.SOPInstanceUID)
    row = rig.store.get_instance(sop_uid)
    assert row is not None
    stored = rig.spool.absolute(row.path)
    if _stored_bytes(rig, sop_uid) != data:  # the bytes as received, nothing else, unless
        assert compare_with_stored(stored, data, ts).same  # an earlier case sent this content
    try:
        if index < len(ct_slices()):
            others = [s for i, s in enumerate(ct_slices()) if i != index]
            load_ct_series([stored, *others])
        else:
            load_xa_cine([stored])
    except CardiogateError:
        pass  # refused with a reason: what a job's failed(reason) is for
