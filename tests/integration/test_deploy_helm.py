"""The Helm chart ``helm/cardiogate``: its values against its schema and cardiogate's
settings, without helm; with a ``helm`` on PATH (``.ci/run`` puts one there) also
``helm lint`` and the rendered manifests."""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from cardiogate.config import Settings
from cardiogate.dicom.tls import server_context
from cardiogate.tasks import load_tasks, task_classes
from pki import CertificateAuthority

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "cardiogate"
VALUES: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
SCHEMA = json.loads((CHART / "values.schema.json").read_text())
# settings that the chart sets itself (volume, listen addresses, Secrets), not from values
CHART_SETTINGS = {"data_dir", "dicom_host", "http_host", "api_token", "database_url", "replica_id"}
POSTGRES_URL = "postgresql+psycopg://cardiogate:secret@postgres.db.svc:5432/cardiogate"


def with_values(**changes: Any) -> dict[str, Any]:
    """values.yaml with ``a__b=value`` set at ``a.b``."""
    values = copy.deepcopy(VALUES)
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = values
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return values


def schema_errors(values: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(SCHEMA)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(values)
    ]


def settings_env(settings: dict[str, Any]) -> dict[str, str]:
    """What templates/configmap.yaml renders: strings as they are, the rest as JSON."""
    return {
        f"CARDIOGATE_{name.upper()}": value if isinstance(value, str) else json.dumps(value)
        for name, value in settings.items()
        if value is not None
    }


def load_settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in [n for n in os.environ if n.startswith("CARDIOGATE_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


def test_schema_is_valid_draft7_and_values_yaml_passes_it() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    assert schema_errors(VALUES) == []


@pytest.mark.parametrize(
    ("changes", "refused_at"),
    [
        ({"replicaCount": 2}, "database"),
        ({"replicaCount": 3, "database__url": "sqlite:////data/cardiogate.db"}, "database"),
        ({"service__dicom__type": "ExternalName"}, "service/dicom/type"),
        ({"service__dicom__nodePort": 31112}, "service/dicom/nodePort"),
        ({"settings__dicom_port": 70000}, "settings/dicom_port"),
        ({"settings__http_port": "8080"}, "settings/http_port"),
        ({"settings__ae_title": "A\\B"}, "settings/ae_title"),
        ({"settings__no_such_setting": 1}, "settings"),
        ({"settings__destinations": [{"ae_title": "PACS", "host": "pacs"}]}, "destinations"),
        ({"apiToken__value": "short"}, "apiToken/value"),
        ({"networkPolicy__enabled": True}, "networkPolicy"),
        ({"networkPolicy__enabled": True, "networkPolicy__dicomFrom": ["pacs"]}, "dicomFrom"),
        ({"securityContext__readOnlyRootFilesystem": False}, "readOnlyRootFilesystem"),
        ({"podSecurityContext__runAsNonRoot": False}, "runAsNonRoot"),
        ({"persistence__size": "lots"}, "persistence/size"),
        ({"replicaCont": 2}, "replicaCont"),  # a misspelt key is not silently ignored
    ],
)
def test_schema_refuses_values_that_cannot_work(changes: dict[str, Any], refused_at: str) -> None:
    errors = schema_errors(with_values(**changes))
    assert any(refused_at in e for e in errors), errors


@pytest.mark.parametrize(
    "changes",
    [
        {"replicaCount": 2, "database__url": POSTGRES_URL},
        {"replicaCount": 2, "database__existingSecret": "cardiogate-db"},
        {"service__dicom__type": "NodePort", "service__dicom__nodePort": 31112},
        {
            "service__dicom__type": "LoadBalancer",
            "service__dicom__loadBalancerSourceRanges": ["10.1.0.0/16"],
        },
        {"networkPolicy__enabled": True, "networkPolicy__dicomFrom": ["10.1.0.0/16", "fd00::/8"]},
        {"gpu__enabled": True, "gpu__count": 2},
        {"apiToken__value": "x" * 40},
    ],
)
def test_schema_accepts_the_documented_variants(changes: dict[str, Any]) -> None:
    assert schema_errors(with_values(**changes)) == []


def test_schema_describes_every_top_level_value() -> None:
    assert set(SCHEMA["properties"]) == set(VALUES) | {"global"}


def value_paths_in_templates() -> set[str]:
    paths = set()
    for template in (CHART / "templates").iterdir():
        for match in re.finditer(r"\$?\.Values((?:\.[A-Za-z_]\w*)+)", template.read_text()):
            paths.add(match[1].lstrip("."))
    return paths


def test_every_values_path_a_template_reads_is_in_values_yaml() -> None:
    paths = value_paths_in_templates()
    assert {"replicaCount", "settings.dicom_port", "gpu.nodeSelector"} <= paths  # regex works
    for path in sorted(paths):
        node: Any = VALUES
        for key in path.split("."):
            assert isinstance(node, dict), path
            assert key in node, f".Values.{path} is not in values.yaml"
            node = node[key]


def _task_settings() -> set[str]:
    """cardiogate's own tasks' settings, as the chart names them (``calcium_threshold_hu``
    becomes ``CARDIOGATE_CALCIUM_THRESHOLD_HU``, the task's own environment name)."""
    return {
        f"{cls.name}_{field}"
        for cls in task_classes()
        if cls.__module__.startswith("cardiogate.tasks.")
        for field in cls.settings_model.model_fields
    }


def test_schema_names_exactly_the_settings_the_chart_does_not_set_itself() -> None:
    in_schema = set(SCHEMA["properties"]["settings"]["properties"])
    assert in_schema == (set(Settings.model_fields) - CHART_SETTINGS) | _task_settings()


def test_configmap_and_pod_env_keys_are_settings_fields() -> None:
    configmap = (CHART / "templates" / "configmap.yaml").read_text()
    statefulset = (CHART / "templates" / "statefulset.yaml").read_text()
    fixed = set(re.findall(r"\b(CARDIOGATE_[A-Z_]+):", configmap))
    fixed |= set(re.findall(r"name: (CARDIOGATE_[A-Z_]+)", statefulset))
    assert fixed == {f"CARDIOGATE_{n.upper()}" for n in CHART_SETTINGS}
    assert "CARDIOGATE_{{ upper $name }}" in configmap  # one key per entry of .Values.settings
    for name in VALUES["settings"]:
        assert name in Settings.model_fields or name in _task_settings(), name


def test_default_settings_make_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    env = settings_env(VALUES["settings"]) | {"CARDIOGATE_DATA_DIR": "/data"}
    settings = load_settings_from(env, monkeypatch)
    assert settings.dicom_port == VALUES["settings"]["dicom_port"]
    assert settings.http_port == VALUES["settings"]["http_port"]
    load_tasks(settings)  # and the tasks' own settings from the chart's environment


def test_pods_run_as_the_images_user_on_a_read_only_root() -> None:
    dockerfile = (REPO / "deploy" / "Dockerfile").read_text()
    user = re.findall(r"^USER (\d+):(\d+)$", dockerfile, re.MULTILINE)[-1]
    pod = VALUES["podSecurityContext"]
    assert (str(pod["runAsUser"]), str(pod["runAsGroup"])) == user
    assert str(pod["fsGroup"]) == user[1]  # the spool volume is writable by that group
    assert pod["runAsNonRoot"] is True
    container = VALUES["securityContext"]
    assert container["readOnlyRootFilesystem"] is True
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"]["drop"] == ["ALL"]


def test_chart_alert_rules_are_the_same_as_deploy_prometheus_alerts() -> None:
    """Helm reads only files in the chart: `make chart-alerts` refreshes the copy."""
    original = yaml.safe_load((REPO / "deploy" / "prometheus" / "alerts.yml").read_text())
    copy_ = yaml.safe_load((CHART / "files" / "alerts.yml").read_text())
    assert copy_["groups"] == original["groups"], "run `make chart-alerts`"
    template = (CHART / "templates" / "prometheusrule.yaml").read_text()
    assert '.Files.Get "files/alerts.yml"' in template


# -- with helm ---------------------------------------------------------------------------------

FULL_VALUES = {
    "replicaCount": 2,
    "database": {"url": POSTGRES_URL},
    "settings": {
        "maximum_pdu_size": 1048576,
        "quiet_seconds": 2.5,
        "destinations": [
            {
                "ae_title": "PACS",
                "host": "pacs.hospital.local",
                "port": 104,
                "tls": True,
                "tls_ca_file": "/etc/cardiogate/tls/ca.crt",
            }
        ],
    },
    "dicomTls": {
        "files": {"ca.crt": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"}
    },
    "gpu": {"enabled": True},
    "metrics": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}},
    "networkPolicy": {"enabled": True, "dicomFrom": ["10.1.0.0/16"]},
    "service": {"dicom": {"type": "LoadBalancer", "loadBalancerSourceRanges": ["10.1.0.0/16"]}},
}


def helm() -> str:
    exe = shutil.which("helm")
    if exe is None:
        pytest.skip("no helm on PATH (python3 .ci/helm.py puts one in .ci/bin)")
    return exe


def run_helm(
    *args: str, values: dict[str, Any] | None = None, tmp: Path | None = None
) -> subprocess.CompletedProcess[str]:
    command = [helm(), *args]
    if values is not None:
        assert tmp is not None
        (tmp / "values.yaml").write_text(yaml.safe_dump(values))
        command += ["-f", str(tmp / "values.yaml")]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def render(values: dict[str, Any], tmp: Path) -> dict[str, dict[str, Any]]:
    """``helm template``: each manifest by ``Kind/name``."""
    proc = run_helm("template", "cg", str(CHART), "--namespace", "imaging", values=values, tmp=tmp)
    assert proc.returncode == 0, proc.stderr
    manifests = {}
    for doc in yaml.safe_load_all(proc.stdout):
        if doc:
            assert {"apiVersion", "kind", "metadata"} <= set(doc), doc
            manifests[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return manifests


def test_helm_lint_passes_strict() -> None:
    proc = run_helm("lint", "--strict", str(CHART))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_helm_refuses_two_replicas_without_postgres(tmp_path: Path) -> None:
    proc = run_helm("template", "cg", str(CHART), values={"replicaCount": 2}, tmp=tmp_path)
    assert proc.returncode != 0
    assert "database" in proc.stderr


def test_default_manifests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manifests = render({}, tmp_path)
    assert set(manifests) == {
        "ConfigMap/cg-cardiogate",
        "Secret/cg-cardiogate",
        "ServiceAccount/cg-cardiogate",
        "Service/cg-cardiogate-dicom",
        "Service/cg-cardiogate-http",
        "Service/cg-cardiogate-headless",
        "StatefulSet/cg-cardiogate",
        "PodDisruptionBudget/cg-cardiogate",
    }
    assert manifests["Service/cg-cardiogate-dicom"]["spec"]["type"] == "ClusterIP"
    statefulset = manifests["StatefulSet/cg-cardiogate"]
    pod = statefulset["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/data", "/tmp"}
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert "nvidia.com/gpu" not in container["resources"].get("limits", {})
    token = manifests["Secret/cg-cardiogate"]["data"]["api-token"]
    assert len(base64.b64decode(token)) == 40
    env = manifests["ConfigMap/cg-cardiogate"]["data"] | {"CARDIOGATE_API_TOKEN": "x" * 40}
    settings = load_settings_from(env, monkeypatch)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"dicom": settings.dicom_port, "http": settings.http_port}


def test_scaled_gpu_manifests_with_monitoring_and_network_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifests = render(FULL_VALUES, tmp_path)
    statefulset = manifests["StatefulSet/cg-cardiogate"]
    assert statefulset["spec"]["replicas"] == 2
    pod = statefulset["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert pod["nodeSelector"] == VALUES["gpu"]["nodeSelector"]
    assert pod["tolerations"] == VALUES["gpu"]["tolerations"]
    env = {
        e["name"]: e["valueFrom"]["secretKeyRef"]["key"]
        for e in container["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert env == {"CARDIOGATE_API_TOKEN": "api-token", "CARDIOGATE_DATABASE_URL": "database-url"}
    # each replica's id is its pod name, which stays with its spool volume
    (replica,) = [e for e in container["env"] if e["name"] == "CARDIOGATE_REPLICA_ID"]
    assert replica["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    # the ConfigMap, with the Secret's values, is a valid configuration
    secret = manifests["Secret/cg-cardiogate"]["data"]
    assert set(secret) == {"api-token", "database-url"}
    tls_files = manifests["Secret/cg-cardiogate-tls"]["stringData"]
    config = manifests["ConfigMap/cg-cardiogate"]["data"]
    assert config["CARDIOGATE_MAXIMUM_PDU_SIZE"] == "1048576"
    ca = tmp_path / "ca.crt"
    ca.write_text(tls_files["ca.crt"])
    config["CARDIOGATE_DESTINATIONS"] = config["CARDIOGATE_DESTINATIONS"].replace(
        "/etc/cardiogate/tls/ca.crt", str(ca)
    )
    settings = load_settings_from(config | {"CARDIOGATE_DATABASE_URL": POSTGRES_URL}, monkeypatch)
    assert settings.destinations[0].tls
    assert settings.quiet_seconds == 2.5
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert "/etc/cardiogate/tls" in mounts
    dicom = manifests["Service/cg-cardiogate-dicom"]["spec"]
    assert dicom["type"] == "LoadBalancer"
    assert dicom["externalTrafficPolicy"] == "Local"
    policy = manifests["NetworkPolicy/cg-cardiogate"]["spec"]
    dicom_rule = next(r for r in policy["ingress"] if r["ports"][0]["port"] == "dicom")
    assert dicom_rule["from"] == [{"ipBlock": {"cidr": "10.1.0.0/16"}}]
    rules = manifests["PrometheusRule/cg-cardiogate"]["spec"]["groups"]
    alerts = yaml.safe_load((REPO / "deploy" / "prometheus" / "alerts.yml").read_text())
    assert rules == alerts["groups"]
    (endpoint,) = manifests["ServiceMonitor/cg-cardiogate"]["spec"]["endpoints"]
    assert {"action": "replace", "targetLabel": "job", "replacement": "cardiogate"} in endpoint[
        "relabelings"
    ]
    assert endpoint["port"] == "http"


# -- TLS: the dicomTls Secret named in the TLS settings ----------------------------------------


def test_tls_settings_from_the_mounted_secret_make_a_working_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pair = CertificateAuthority(tmp_path / "pki").issue("cardiogate", server=True)
    mounted = "/etc/cardiogate/tls/"
    tls_settings = {
        "dicom_tls_cert_file": mounted + "tls.crt",
        "dicom_tls_key_file": mounted + "tls.key",
        "http_tls_cert_file": mounted + "tls.crt",
        "http_tls_key_file": mounted + "tls.key",
    }
    values = {
        "settings": tls_settings,
        "dicomTls": {"files": {"tls.crt": pair.cert.read_text(), "tls.key": pair.key.read_text()}},
        "metrics": {"serviceMonitor": {"enabled": True, "tlsConfig": {"serverName": "cg"}}},
    }
    assert (
        schema_errors(with_values(**{f"settings__{k}": v for k, v in tls_settings.items()})) == []
    )
    manifests = render(values, tmp_path)
    (container,) = manifests["StatefulSet/cg-cardiogate"]["spec"]["template"]["spec"]["containers"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["scheme"] == "HTTPS"
    assert "/etc/cardiogate/tls" in {m["mountPath"] for m in container["volumeMounts"]}
    (endpoint,) = manifests["ServiceMonitor/cg-cardiogate"]["spec"]["endpoints"]
    assert endpoint["scheme"] == "https"
    assert endpoint["tlsConfig"] == {"serverName": "cg"}
    # the Secret's files, where the pod mounts them, load as the settings name them
    folder = tmp_path / "mounted"
    folder.mkdir()
    for name, pem in manifests["Secret/cg-cardiogate-tls"]["stringData"].items():
        (folder / name).write_text(pem)
    config = {
        name: value.replace(mounted, f"{folder}/")
        for name, value in manifests["ConfigMap/cg-cardiogate"]["data"].items()
    }
    settings = load_settings_from(config | {"CARDIOGATE_API_TOKEN": "x" * 40}, monkeypatch)
    assert settings.http_tls
    assert settings.dicom_tls_cert_file is not None
    assert settings.dicom_tls_key_file is not None
    server_context(settings.dicom_tls_cert_file, settings.dicom_tls_key_file, None)
    plain = render({}, tmp_path)["StatefulSet/cg-cardiogate"]["spec"]["template"]["spec"]
    assert plain["containers"][0]["readinessProbe"]["httpGet"]["scheme"] == "HTTP"
