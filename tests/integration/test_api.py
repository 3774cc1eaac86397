"""The HTTP API over a store filled by real C-STOREs: health, readiness, status API, metrics."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cardiogate_phantoms import make_ct_series, make_xa_cine
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydicom.dataset import Dataset

from cardiogate.api import create_api
from cardiogate.store import Store
from peers import RunningSCP, send, start_scp

SEED = 21
N_SLICES = 6
N_FRAMES = 4
TOKEN = "a-test-token-0123456789"


class FakeHealth:
    """A HealthProbe whose checks the test chooses."""

    def __init__(self, **checks: bool) -> None:
        self.checks = {"dicom_listening": True, "store_reachable": True, **checks}

    def readiness(self) -> tuple[dict[str, bool], dict[str, str | int | float]]:
        return dict(self.checks), {"ae_title": "CARDIOGATE", "active_associations": 0}


@dataclass
class Ingested:
    scp: RunningSCP
    ct: list[Dataset]
    xa: Dataset

    @property
    def study_uid(self) -> str:
        return str(self.xa.StudyInstanceUID)


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingested]:
    scp = start_scp(tmp_path_factory.mktemp("api"))
    ct = make_ct_series(SEED, n_slices=N_SLICES, rows=64, columns=64).datasets
    xa = make_xa_cine(SEED, frames=N_FRAMES, rows=64, columns=64).datasets[0]
    try:
        assert send(scp.port, [*ct, xa]) == [0] * (N_SLICES + 1)
        yield Ingested(scp, ct, xa)
    finally:
        scp.listener.stop(5)
        scp.store.dispose()


def client(store: Store, health: FakeHealth | None = None, token: str | None = None) -> TestClient:
    return TestClient(create_api(store, health or FakeHealth(), token))


def _spool_bytes(scp: RunningSCP) -> int:
    return sum(scp.spool.absolute(p).stat().st_size for p in scp.spool.files())


def test_healthz_is_alive(ingested: Ingested) -> None:
    r = client(ingested.scp.store).get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "alive"}


def test_readyz_follows_the_checks(ingested: Ingested) -> None:
    ready = client(ingested.scp.store).get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["ready"] is True

    not_ready = client(ingested.scp.store, FakeHealth(store_reachable=False)).get("/readyz")
    assert not_ready.status_code == 503
    body = not_ready.json()
    assert body["ready"] is False
    assert body["checks"] == {"dicom_listening": True, "store_reachable": False}


def test_studies_lists_the_study_with_counts_and_sizes(ingested: Ingested) -> None:
    r = client(ingested.scp.store).get("/api/v1/studies")
    assert r.status_code == 200
    page = r.json()
    assert page["total"] == 1
    assert len(page["items"]) == 1
    study = page["items"][0]
    assert study["StudyInstanceUID"] == ingested.study_uid
    assert study["modalities"] == ["CT", "XA"]
    assert study["series_count"] == 2
    assert study["instance_count"] == N_SLICES + 1
    assert study["size_bytes"] > 0
    assert study["size_bytes"] == _spool_bytes(ingested.scp)


def test_study_detail_includes_both_series(ingested: Ingested) -> None:
    r = client(ingested.scp.store).get(f"/api/v1/studies/{ingested.study_uid}")
    assert r.status_code == 200
    study = r.json()
    assert study["StudyInstanceUID"] == ingested.study_uid
    by_uid = {s["SeriesInstanceUID"]: s for s in study["series"]}
    assert set(by_uid) == {ingested.ct[0].SeriesInstanceUID, ingested.xa.SeriesInstanceUID}
    for s in by_uid.values():
        assert s["state"] == "receiving"  # the quiet period has not run in this test
        assert s["StudyInstanceUID"] == ingested.study_uid
    assert by_uid[ingested.ct[0].SeriesInstanceUID]["instance_count"] == N_SLICES
    assert by_uid[ingested.xa.SeriesInstanceUID]["instance_count"] == 1


def test_series_reports_modality_and_counts(ingested: Ingested) -> None:
    api = client(ingested.scp.store)
    ct = api.get(f"/api/v1/series/{ingested.ct[0].SeriesInstanceUID}")
    assert ct.status_code == 200
    assert ct.json()["Modality"] == "CT"
    assert ct.json()["instance_count"] == N_SLICES
    assert ct.json()["frame_count"] == N_SLICES
    assert ct.json()["SOPClassUID"] == ingested.ct[0].SOPClassUID

    xa = api.get(f"/api/v1/series/{ingested.xa.SeriesInstanceUID}")
    assert xa.status_code == 200
    body = xa.json()
    assert body["Modality"] == "XA"
    assert body["instance_count"] == 1
    assert body["frame_count"] == N_FRAMES
    assert body["size_bytes"] > 64 * 64 * N_FRAMES


def test_unknown_and_malformed_uids(ingested: Ingested) -> None:
    api = client(ingested.scp.store)
    assert api.get("/api/v1/studies/1.2.3.4.5").status_code == 404
    assert api.get("/api/v1/series/1.2.3.4.5").status_code == 404
    assert api.get("/api/v1/studies/not-a-uid").status_code == 422
    assert api.get("/api/v1/series/1.2.abc").status_code == 422
    assert api.get("/api/v1/series/" + "1." * 40 + "1").status_code == 422  # over 64 chars


def test_responses_never_contain_patient_identifiers(ingested: Ingested) -> None:
    api = client(ingested.scp.store)
    ds = ingested.ct[0]
    urls = [
        "/api/v1/studies",
        f"/api/v1/studies/{ingested.study_uid}",
        f"/api/v1/series/{ds.SeriesInstanceUID}",
        f"/api/v1/series/{ingested.xa.SeriesInstanceUID}",
    ]
    forbidden = [str(ds.PatientName), "PHANTOM", str(ds.PatientID), str(ds.PatientBirthDate)]
    for url in urls:
        r = api.get(url)
        assert r.status_code == 200
        for value in forbidden:
            assert value not in r.text, f"{url} leaks {value!r}"


def test_bearer_token_guards_api_v1_only(ingested: Ingested) -> None:
    api = client(ingested.scp.store, token=TOKEN)
    assert api.get("/api/v1/studies").status_code == 401
    wrong = api.get("/api/v1/studies", headers={"Authorization": "Bearer " + "x" * len(TOKEN)})
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == "Bearer"
    basic = api.get("/api/v1/studies", headers={"Authorization": f"Basic {TOKEN}"})
    assert basic.status_code == 401
    series = f"/api/v1/series/{ingested.xa.SeriesInstanceUID}"
    assert api.get(series).status_code == 401

    auth = {"Authorization": f"Bearer {TOKEN}"}
    ok = api.get("/api/v1/studies", headers=auth)
    assert ok.status_code == 200
    assert ok.json()["total"] == 1
    assert api.get(series, headers=auth).status_code == 200

    assert api.get("/healthz").status_code == 200
    assert api.get("/readyz").status_code == 200


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_count_received_instances(tmp_path: Path) -> None:
    scp = start_scp(tmp_path)
    try:
        api = client(scp.store)
        stored_ct = (
            "cardiogate_instances_received_total",
            frozenset({("modality", "CT"), ("status", "stored")}),
        )
        received = ("cardiogate_received_bytes_total", frozenset())
        before = api.get("/metrics")
        assert before.status_code == 200
        ct = make_ct_series(SEED + 1, n_slices=3, rows=64, columns=64).datasets
        assert send(scp.port, ct) == [0, 0, 0]
        after = api.get("/metrics")
        assert after.status_code == 200
    finally:
        scp.listener.stop(5)
        scp.store.dispose()

    assert 'cardiogate_instances_received_total{modality="CT"' in after.text
    b, a = _samples(before.text), _samples(after.text)
    assert a[stored_ct] - b.get(stored_ct, 0.0) == 3
    assert a[received] - b[received] >= 3 * 64 * 64 * 2  # at least the pixel data
