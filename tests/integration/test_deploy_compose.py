"""deploy/docker-compose.yml and the files it mounts, checked without Docker (CI has none):
they parse, agree with cardiogate's settings and with each other, and Orthanc's routing
script runs in a real Orthanc (the Debian package) against two stub cardiogate replicas."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, StoragePresentationContexts, evt

from cardiogate.config import Settings
from delivery_peers import calcium_ct, serve_delivering, wait_for_job
from orthanc import OrthancPeer, orthanc_peer
from peers import free_port, send, stop_serve

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
ORTHANC_JSON = json.loads((DEPLOY / "compose" / "orthanc.json").read_text())
LUA = DEPLOY / "compose" / "route-to-cardiogate.lua"
VARIABLE = re.compile(r"\$\{(\w+)(?::?[-?]([^}]*))?\}")
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"


def env_example() -> dict[str, str]:
    """deploy/.env.example, commented-out lines included (they are the scale profile's)."""
    values = {}
    for line in (DEPLOY / ".env.example").read_text().splitlines():
        match = re.fullmatch(r"#?\s*(\w+)=(.*)", line.strip())
        if match:
            values[match[1]] = match[2]
    return values


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}, with ``$$`` for a dollar."""
    parts = value.split("$$")
    return "$".join(VARIABLE.sub(lambda m: env.get(m[1], m[2] or ""), p) for p in parts)


def cardiogate_services() -> dict[str, dict[str, Any]]:
    return {
        name: s
        for name, s in SERVICES.items()
        if s.get("build", {}).get("dockerfile") == "deploy/Dockerfile"
    }


def settings_of(service: dict[str, Any], env: dict[str, str]) -> Settings:
    values = {k: interpolate(v, env) for k, v in service["environment"].items()}
    for name in values:
        assert name.startswith("CARDIOGATE_"), name
        assert name.removeprefix("CARDIOGATE_").lower() in Settings.model_fields, name
    mp = pytest.MonkeyPatch()
    try:
        for name in [n for n in os.environ if n.startswith("CARDIOGATE_")]:
            mp.delenv(name)
        for name, value in values.items():
            mp.setenv(name, value)
        return Settings()
    finally:
        mp.undo()


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Volume source -> path in the container."""
    return dict(v.rsplit(":", 2)[:2] for v in service["volumes"])


def container_ports(service: dict[str, Any]) -> set[int]:
    return {int(str(p).rsplit(":", 1)[-1].split("/")[0]) for p in service.get("ports", [])}


def test_every_variable_the_compose_file_reads_is_in_env_example() -> None:
    def strings(node: Any) -> list[str]:
        if isinstance(node, dict):
            return [s for k, v in node.items() for s in strings(k) + strings(v)]
        if isinstance(node, list):
            return [s for v in node for s in strings(v)]
        return [node] if isinstance(node, str) else []

    used = {m[1] for text in strings(COMPOSE) for m in VARIABLE.finditer(text.replace("$$", ""))}
    assert used - set(env_example()) == set()


@pytest.mark.parametrize("scaled", [False, True], ids=["single", "scale-profile"])
def test_cardiogate_services_have_valid_settings_and_publish_their_ports(scaled: bool) -> None:
    env = env_example()
    if not scaled:
        env.pop("CARDIOGATE_DATABASE_URL")
    services = cardiogate_services()
    assert set(services) == {"cardiogate", "cardiogate-2"}
    for service in services.values():
        settings = settings_of(service, env)
        assert container_ports(service) == {settings.dicom_port, settings.http_port}
        assert str(settings.data_dir) == "/data"
        assert list(mounts(service).values()) == ["/data"]
        if scaled:
            assert settings.effective_database_url.startswith("postgresql+psycopg://")
        else:
            assert settings.effective_database_url.startswith("sqlite:////data/")
    assert services["cardiogate"]["volumes"] != services["cardiogate-2"]["volumes"]


def test_scale_profile_has_postgres_and_a_second_replica_that_uses_it() -> None:
    assert SERVICES["cardiogate-2"]["profiles"] == ["scale"]
    assert SERVICES["postgres"]["profiles"] == ["scale"]
    assert "profiles" not in SERVICES["cardiogate"]
    env = env_example()
    url = re.fullmatch(
        r"postgresql\+psycopg://(\w+):([^@]+)@(\w+):(\d+)/(\w+)", env["CARDIOGATE_DATABASE_URL"]
    )
    assert url is not None
    pg = SERVICES["postgres"]["environment"]
    assert (url[1], url[5]) == (pg["POSTGRES_USER"], pg["POSTGRES_DB"])
    assert url[2] == env["POSTGRES_PASSWORD"]
    assert url[3] == "postgres"
    assert int(url[4]) == 5432
    for name in cardiogate_services():
        depends = SERVICES[name]["depends_on"]["postgres"]
        assert depends == {"condition": "service_healthy", "required": False}


def lua_targets() -> list[str]:
    match = re.search(r"local TARGETS = \{([^}]*)\}", LUA.read_text())
    assert match is not None
    return re.findall(r"'([\w-]+)'", match[1])


def test_orthanc_routes_to_cardiogate_and_cardiogate_delivers_to_orthanc() -> None:
    services = cardiogate_services()
    settings = {name: settings_of(s, env_example()) for name, s in services.items()}
    modalities = ORTHANC_JSON["DicomModalities"]
    assert lua_targets() == list(modalities) == list(services)
    for name, (ae_title, host, port) in modalities.items():
        assert (ae_title, host, port) == (
            settings[name].ae_title,
            name,
            settings[name].dicom_port,
        )
    for s in settings.values():
        assert [(d.ae_title, d.host, d.port) for d in s.destinations] == [
            (ORTHANC_JSON["DicomAet"], "orthanc", ORTHANC_JSON["DicomPort"])
        ]
        assert s.allowed_calling_aets == [ORTHANC_JSON["DicomAet"]]
    orthanc = SERVICES["orthanc"]
    assert container_ports(orthanc) == {ORTHANC_JSON["DicomPort"], ORTHANC_JSON["HttpPort"]}
    mounted = mounts(orthanc)
    assert mounted["./compose/route-to-cardiogate.lua"] in ORTHANC_JSON["LuaScripts"]
    assert mounted["./compose/orthanc.json"] == "/etc/orthanc/orthanc.json"
    assert ORTHANC_JSON["StorageDirectory"] in mounted.values()


def test_prometheus_scrapes_every_cardiogate_replica_and_loads_the_alert_rules() -> None:
    config = yaml.safe_load((DEPLOY / "compose" / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "cardiogate"  # what alerts.yml matches
    assert job["metrics_path"] == "/metrics"
    (sd,) = job["dns_sd_configs"]
    services = cardiogate_services()
    assert sd["names"] == list(services)
    for service in services.values():
        assert sd["port"] == settings_of(service, env_example()).http_port
    mounted = mounts(SERVICES["prometheus"])
    config_path = Path(mounted["./compose/prometheus.yml"])
    assert f"--config.file={config_path}" in SERVICES["prometheus"]["command"]
    for rule_file in config["rule_files"]:
        assert mounted["./prometheus/alerts.yml"] == str(config_path.parent / rule_file)


def test_prometheus_config_passes_promtool(tmp_path: Path) -> None:
    """As mounted: the compose config with alerts.yml beside it."""
    exe = shutil.which("promtool")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is not installed: .ci/run installs Debian's prometheus package")
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    shutil.copy(DEPLOY / "compose" / "prometheus.yml", tmp_path / "prometheus.yml")
    shutil.copy(DEPLOY / "prometheus" / "alerts.yml", tmp_path / "alerts.yml")
    proc = subprocess.run(
        [exe, "check", "config", "prometheus.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout + proc.stderr


def test_grafana_provisions_the_prometheus_data_source_and_the_dashboard() -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert "9090" in " ".join(map(str, SERVICES["prometheus"]["ports"]))
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "cardiogate.yml").read_text())[
        "providers"
    ]
    grafana_mounts = mounts(SERVICES["grafana"])
    assert grafana_mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    assert grafana_mounts["grafana-dashboards"] == provider["options"]["path"]
    # the one-shot step: its sed, applied here, gives a dashboard on the provisioned source
    step = SERVICES["grafana-dashboards"]
    step_mounts = mounts(step)
    assert step_mounts["./grafana/cardiogate.json"] == "/src/cardiogate.json"
    script = interpolate(step["command"][-1], {})
    match = re.fullmatch(r"sed 's/(.+)/(.+)/g' (\S+) > (\S+)", script)
    assert match is not None, script
    pattern, replacement, src, dst = match.groups()
    assert src == "/src/cardiogate.json"
    assert Path(dst).parent == Path(step_mounts["grafana-dashboards"])
    assert replacement == source["uid"]
    dashboard = (DEPLOY / "grafana" / "cardiogate.json").read_text().replace(pattern, replacement)
    uids = set(re.findall(r'"uid": "([^"]*)"', dashboard)) - {json.loads(dashboard)["uid"]}
    assert uids == {source["uid"]}


# -- Orthanc's routing script in a real Orthanc ------------------------------------------------


def instance(modality: str, study: str, series: str) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = CT_IMAGE_STORAGE if modality == "CT" else BASIC_TEXT_SR
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.Modality = modality
    ds.PatientID, ds.PatientName = "SYNTHETIC", "SYNTHETIC^ROUTING"
    if modality == "CT":
        ds.Rows = ds.Columns = 4
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.PixelData = bytes(32)
    ds.file_meta = Dataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


class StubReplica:
    """A Storage SCP named like cardiogate that records what it received."""

    def __init__(self, ae_title: str) -> None:
        self.received: list[tuple[str, str]] = []  # (Modality, calling AE)
        self.port = free_port()
        ae = AE(ae_title=ae_title)
        ae.supported_contexts = StoragePresentationContexts
        self.server: Any = ae.start_server(
            ("127.0.0.1", self.port),
            block=False,
            evt_handlers=[(evt.EVT_C_STORE, self._store)],
        )

    def _store(self, event: Any) -> int:
        self.received.append((str(event.dataset.Modality), event.assoc.requestor.ae_title))
        return 0x0000

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server = None


def first_replica(study_uid: str, replicas: int) -> int:
    """The script's choice, for checking it: byte sum of the StudyInstanceUID."""
    return sum(study_uid.encode()) % replicas


def wait_for(condition: Any, timeout: float, orthanc: OrthancPeer) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out; Orthanc's log:\n{orthanc.log()[-3000:]}")
        time.sleep(0.2)


@pytest.fixture
def routing_orthanc(tmp_path: Path) -> Any:
    ae_title = settings_of(SERVICES["cardiogate"], env_example()).ae_title
    replicas = [StubReplica(ae_title) for _ in lua_targets()]
    modalities = {
        name: [ae_title, "127.0.0.1", r.port]
        for name, r in zip(lua_targets(), replicas, strict=True)
    }
    peer = orthanc_peer(tmp_path / "orthanc", modalities)
    # the compose configuration, on loopback ports, with a short StableAge
    peer.extra_config = ORTHANC_JSON | {
        "DicomPort": peer.dicom_port,
        "HttpPort": peer.http_port,
        "StorageDirectory": str(peer.folder / "storage"),
        "IndexDirectory": str(peer.folder / "index"),
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomModalities": modalities,
        "LuaScripts": [str(LUA)],
        "StableAge": 1,
    }
    peer.start()
    yield peer, replicas
    peer.stop()
    for r in replicas:
        r.stop()


@pytest.mark.orthanc
def test_orthanc_forwards_a_stable_ct_series_to_one_replica_and_never_our_results(
    routing_orthanc: tuple[OrthancPeer, list[StubReplica]],
) -> None:
    orthanc, replicas = routing_orthanc
    study = generate_uid()
    ct = generate_uid()
    orthanc.upload([instance("CT", study, ct) for _ in range(3)])
    chosen = replicas[first_replica(study, len(replicas))]
    wait_for(lambda: len(chosen.received) == 3, 30, orthanc)
    assert chosen.received == [("CT", ORTHANC_JSON["DicomAet"])] * 3
    # a result series (SR) in the same study stays in Orthanc
    orthanc.upload([instance("SR", study, generate_uid())])
    time.sleep(4)  # StableAge 1 s, and Orthanc checks for stable series every second
    assert sum(len(r.received) for r in replicas) == 3
    assert "sent to" in orthanc.log()


@pytest.mark.orthanc
def test_orthanc_sends_to_the_next_replica_when_the_chosen_one_is_down(
    routing_orthanc: tuple[OrthancPeer, list[StubReplica]],
) -> None:
    orthanc, replicas = routing_orthanc
    study = generate_uid()
    down = first_replica(study, len(replicas))
    replicas[down].stop()
    orthanc.upload([instance("CT", study, generate_uid()) for _ in range(2)])
    other = replicas[(down + 1) % len(replicas)]
    wait_for(lambda: len(other.received) == 2, 30, orthanc)
    assert replicas[down].received == []


@pytest.mark.orthanc
@pytest.mark.slow
def test_a_study_pushed_to_orthanc_comes_back_with_cardiogates_sr(tmp_path: Path) -> None:
    """The README's walk-through without Docker: a CT pushed to Orthanc (compose config and
    routing script) reaches ``cardiogate serve`` (compose environment), whose SR lands in the
    same study in Orthanc."""
    compose_env = {
        k: interpolate(v, env_example()) for k, v in SERVICES["cardiogate"]["environment"].items()
    }
    peer = orthanc_peer(tmp_path / "orthanc", {})
    destination = json.loads(compose_env["CARDIOGATE_DESTINATIONS"])[0]
    destination |= {"host": "127.0.0.1", "port": peer.dicom_port}
    kept = {  # what is about this host (paths, ports, database) or checked elsewhere (token)
        k: v
        for k, v in compose_env.items()
        if k in {"CARDIOGATE_AE_TITLE", "CARDIOGATE_ALLOWED_CALLING_AETS", "CARDIOGATE_LOG_FORMAT"}
    }
    server = serve_delivering(
        tmp_path,
        destination["ae_title"],
        peer.dicom_port,
        **kept,
        CARDIOGATE_DESTINATIONS=json.dumps([destination]),
    )
    try:
        modalities = {
            name: [ae, "127.0.0.1", free_port()]
            for name, (ae, _, _) in ORTHANC_JSON["DicomModalities"].items()
        }
        modalities["cardiogate"][2] = server.dicom_port  # cardiogate-2 is not running
        peer.extra_config = ORTHANC_JSON | {
            "DicomPort": peer.dicom_port,
            "HttpPort": peer.http_port,
            "StorageDirectory": str(peer.folder / "storage"),
            "IndexDirectory": str(peer.folder / "index"),
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomModalities": modalities,
            "LuaScripts": [str(LUA)],
            "StableAge": 1,
        }
        peer.start()
        ct = calcium_ct()
        assert set(send(peer.dicom_port, ct, calling_ae="STORESCU")) == {0x0000}
        job = wait_for_job(server, ct[0].SeriesInstanceUID, ("delivered", "failed"), timeout=90)
        assert job["state"] == "delivered", job
        study = peer.study_of(str(ct[0].StudyInstanceUID))
        assert study is not None
        assert len(peer.instances_by_modality(study)["SR"]) == 1
    finally:
        peer.stop()
        stop_serve(server)
