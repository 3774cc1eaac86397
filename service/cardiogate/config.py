"""Settings: one pydantic-settings class, environment prefix ``CARDIOGATE_``.

Precedence, highest first: CLI flags (passed as keyword arguments), environment variables,
the YAML file named by ``CARDIOGATE_CONFIG``, the embedded defaults. The environment names
listed in design.md are a contract with operators: add settings freely, rename none.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    YamlConfigSettingsSource,
)

from cardiogate.errors import ConfigurationError

ENV_PREFIX = "CARDIOGATE_"
# PS3.5 6.2: AE titles are at most 16 characters, no backslash, no control characters.
_AE_TITLE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")
# a replica id names a directory when the data directory is shared: a host name fits
_REPLICA_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
STUDY_PLACEHOLDER = "{StudyInstanceUID}"


def _check_ae_title(value: str) -> str:
    stripped = value.strip()
    if not stripped or not _AE_TITLE.match(value):
        raise ValueError("an AE title is 1-16 printable characters without a backslash")
    return stripped


def check_viewer_url_template(value: str) -> str:
    """``value`` if it is an http(s) URL with ``{StudyInstanceUID}`` in it and no other
    braces (it goes into links on the status page and in the API)."""
    if STUDY_PLACEHOLDER not in value:
        raise ValueError(f"a viewer URL template must contain {STUDY_PLACEHOLDER}")
    if "{" in value.replace(STUDY_PLACEHOLDER, "") or "}" in value.replace(STUDY_PLACEHOLDER, ""):
        raise ValueError(f"a viewer URL template has no braces but {STUDY_PLACEHOLDER}")
    url = urlsplit(value.replace(STUDY_PLACEHOLDER, "1.2.3"))
    if url.scheme not in ("http", "https") or not url.netloc:
        raise ValueError("a viewer URL template is an http:// or https:// URL with a host")
    if any(c.isspace() or ord(c) < 0x20 for c in value):
        raise ValueError("a viewer URL template has no spaces or control characters")
    return value


def viewer_url(template: str | None, study_instance_uid: str) -> str | None:
    """The study in the viewer: ``template`` with its Study Instance UID; None unset."""
    if template is None:
        return None
    return template.replace(STUDY_PLACEHOLDER, quote(study_instance_uid, safe=""))


def check_replica_id(value: str) -> str:
    """``value`` if it can be a replica id (it names a directory in a shared spool)."""
    if not _REPLICA_ID.match(value):
        raise ValueError("a replica id is 1-64 letters, digits, '.', '_' or '-'")
    return value


class Destination(BaseModel):
    """A DICOM peer that receives our results (C-STORE SCP), optionally over TLS.

    With ``tls`` the peer's certificate must chain to ``tls_ca_file`` (else the system's
    trust store) and name ``host``; ``tls_cert_file`` and ``tls_key_file`` give our client
    certificate when the peer asks for one (mutual TLS)."""

    ae_title: str = Field(description="The peer's AE title (the Called AE Title we ask for)")
    host: str = Field(description="The peer's host name or IP address")
    port: int = Field(ge=1, le=65535, description="The peer's DICOM port")
    tls: bool = Field(default=False, description="Reach the peer over DICOM TLS (1.2 or later)")
    tls_ca_file: Path | None = Field(
        default=None,
        description="PEM CA certificate(s) the peer's certificate must chain to "
        "(unset: the system's trust store)",
    )
    tls_cert_file: Path | None = Field(
        default=None, description="PEM client certificate, when the peer asks for one"
    )
    tls_key_file: Path | None = Field(default=None, description="PEM key of the client certificate")

    _ae = field_validator("ae_title")(_check_ae_title)

    @model_validator(mode="after")
    def _check_tls(self) -> Destination:
        files = (self.tls_ca_file, self.tls_cert_file, self.tls_key_file)
        if not self.tls and any(files):
            raise ValueError("tls_* files are given but tls is false")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        for path in files:
            if path is not None and not path.is_file():
                raise ValueError(f"TLS file {path} does not exist")
        return self

    @property
    def name(self) -> str:
        """``AE@host:port``: how outbox rows, logs and metric labels name the peer."""
        return f"{self.ae_title}@{self.host}:{self.port}"


class ReviewStrategy(BaseModel):
    """Which results go to reviewers (:mod:`cardiogate.learning.selection`): by the criteria
    switched on here, in this order, within ``daily_budget`` results a day (UTC)."""

    model_config = {"extra": "forbid"}

    uncertainty: bool = Field(
        default=True, description="A result the analysis flags as uncertain goes to review"
    )
    ood: bool = Field(
        default=True,
        description="A result whose input is unlike the model's training data goes to review",
    )
    shadow_disagreement: bool = Field(
        default=True,
        description="A result the candidate model (shadow mode) disagrees with goes to review",
    )
    audit_fraction: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="This share of the other results, drawn by their series UID, goes to "
        "review as a random audit",
    )
    daily_budget: int | None = Field(
        default=None,
        ge=0,
        description="At most this many results selected per UTC day; unset: no limit",
    )


class Settings(BaseSettings):
    """Every setting of the service (docs/reference/settings.md is generated from them)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", validate_default=True, frozen=True
    )

    # DICOM edge
    ae_title: str = Field(
        default="CARDIOGATE",
        description="Our AE title: the Called AE Title a PACS must use (PS3.8 7.1.1.6)",
    )
    dicom_host: str = Field(
        default="0.0.0.0",  # nosec B104  # a PACS must reach it; allowlist and NetworkPolicy
        description="The address the DICOM listener (Storage SCP) binds",
    )
    dicom_port: int = Field(
        default=11112, ge=0, le=65535, description="The DICOM listener's port (0: a free one)"
    )
    allowed_calling_aets: list[str] = Field(
        default_factory=list,
        description=(
            "Calling AE titles allowed to associate, as a JSON list; empty: anyone. Others are "
            "rejected-permanent, calling-AE-title-not-recognized (PS3.8 9.3.4)"
        ),
    )
    require_called_ae_title: bool = Field(
        default=True,
        description=(
            "Refuse an association whose Called AE Title is not ae_title (rejected-permanent, "
            "called-AE-title-not-recognized, PS3.8 9.3.4); false accepts any Called AE Title"
        ),
    )
    max_associations: int = Field(
        default=32,
        ge=1,
        le=1024,
        description=(
            "Concurrent associations, all listener processes together; more are "
            "rejected-transient, local-limit-exceeded"
        ),
    )
    listener_processes: int = Field(
        default_factory=lambda: max(1, min(4, os.cpu_count() or 1)),
        ge=1,
        le=64,
        description="Processes accepting associations on the one DICOM port (default: the "
        "CPU count, at most 4)",
    )
    maximum_pdu_size: int = Field(
        default=0, ge=0, description="The largest PDU we accept, in bytes (0: unlimited)"
    )
    network_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        description=(
            "DICOM network timeout; it also bounds each socket read and write and each whole "
            "PDU read, so a peer that stops mid-PDU is dropped"
        ),
    )
    dimse_timeout_seconds: float = Field(
        default=60.0, gt=0, description="How long to wait for a DIMSE message"
    )
    acse_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How long association negotiation (and a TLS handshake) may take",
    )
    min_free_disk_mb: int = Field(
        default=1024,
        ge=0,
        description=(
            "Refuse new associations (rejected-transient, temporary congestion) while the data "
            "directory has less free disk than this"
        ),
    )
    shutdown_grace_seconds: float = Field(
        default=30.0,
        ge=0,
        description="On SIGTERM, how long open associations may finish their C-STOREs",
    )
    dicom_tls_cert_file: Path | None = Field(
        default=None,
        description="PEM certificate: DICOM over TLS on dicom_port (with dicom_tls_key_file)",
    )
    dicom_tls_key_file: Path | None = Field(
        default=None, description="PEM key of dicom_tls_cert_file"
    )
    dicom_tls_ca_file: Path | None = Field(
        default=None,
        description=(
            "PEM CA certificate(s): a DICOM client must present a certificate that chains to "
            "them (mutual TLS)"
        ),
    )

    # HTTP
    http_host: str = Field(
        default="0.0.0.0",  # nosec B104  # probes and Prometheus must reach it; auth is on
        description="The address the HTTP API, status page and /metrics bind",
    )
    http_port: int = Field(
        default=8080, ge=0, le=65535, description="The HTTP port (0: a free one)"
    )
    api_token: str | None = Field(
        default=None,
        description=(
            "The bearer token (16 characters or more) for /api/v1 and the status page; unset, "
            "the first start makes one in <data_dir>/api-token"
        ),
    )
    auth_enabled: bool = Field(
        default=True,
        description=(
            "Guard /api/v1 and the status page with the bearer token; false turns auth off "
            "(a warning at start-up), refused together with api_token or metrics_auth"
        ),
    )
    metrics_auth: bool = Field(
        default=False,
        description="Guard /metrics with the bearer token too (Prometheus then sends it)",
    )
    http_tls_cert_file: Path | None = Field(
        default=None,
        description="PEM certificate: HTTPS on http_port, plain HTTP refused (with the key)",
    )
    http_tls_key_file: Path | None = Field(
        default=None, description="PEM key of http_tls_cert_file"
    )

    # Storage
    data_dir: Path = Field(
        default=Path("./data"),
        description="The spool, the outbox, the SQLite database and the API token file",
    )
    database_url: str | None = Field(
        default=None,
        description=(
            "SQLite or PostgreSQL (postgresql+psycopg://user:password@host/db); unset: "
            "sqlite:///<data_dir>/cardiogate.db"
        ),
    )
    replica_id: str | None = Field(
        default=None,
        description=(
            "This replica's id among those sharing one database: stable across restarts, "
            "unique; unset, kept in <data_dir>/replica-id (the host name at first start)"
        ),
    )
    spool_shared: bool = Field(
        default=False,
        description="Every replica mounts the same data directory (spool and outbox)",
    )
    job_lease_seconds: float = Field(
        default=60.0,
        ge=1,
        description=(
            "How long a running job's claim lasts without its heartbeat before another "
            "replica may take it over"
        ),
    )

    # Pipeline
    quiet_seconds: float = Field(
        default=10.0, gt=0, description="A series is complete after this long with no new instance"
    )
    worker_threads: int = Field(
        default=1, ge=1, le=64, description="Jobs analysed at the same time"
    )
    routing: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Each task's routing rules as a JSON object of '<task>_<rule>' keys "
            "(cardiogate.tasks.registry); a key no installed task takes stops start-up"
        ),
    )
    tasks: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description=(
            "Each task's settings as a JSON object by task name, e.g. "
            '{"calcium": {"threshold_hu": 130}}; CARDIOGATE_<TASK>_<SETTING> works too'
        ),
    )
    assembler_poll_seconds: float = Field(
        default=1.0, gt=0, description="How often the assembler looks for quiet series"
    )

    # Models and results
    models_dir: Path = Field(
        default=Path("./models"),
        description="Model folders (model.onnx + card.json), all loaded at start-up",
    )
    # Several reviewers per result (cardiogate.store.reviews, cardiogate.learning.cases)
    review_required: int = Field(
        default=1,
        ge=1,
        le=20,
        description="Reviews that settle a flagged result when their fused labels and "
        "verdicts leave nothing unresolved (a tie waits for an adjudicator); 1: one verdict "
        "settles it",
    )
    review_adjudicators: list[str] = Field(
        default_factory=list,
        description="Reviewer ids (the X-Cardiogate-Reviewer header) allowed to review with "
        'role "adjudicator", whose review settles a result alone, as a JSON list',
    )
    # Shadow mode, promotion and review selection (cardiogate.learning)
    candidates_dir: Path | None = Field(
        default=None,
        description=(
            "Candidate model folders, one per task (<task>/card.json), run beside the "
            "serving model on every job, stored and compared, never sent; unset: "
            "<models_dir>/candidates"
        ),
    )
    models_archive_dir: Path | None = Field(
        default=None,
        description=(
            "Where `cardiogate models promote` keeps the models it replaces "
            "(<task>/<version>/), for `cardiogate models rollback`; unset: <models_dir>/archive"
        ),
    )
    review_strategy: ReviewStrategy = Field(
        default_factory=ReviewStrategy,
        description=(
            "Which results go to reviewers, as a JSON object: uncertainty, ood, "
            "shadow_disagreement (booleans), audit_fraction (0-1), daily_budget (integer)"
        ),
    )
    providers: list[str] = Field(
        default_factory=lambda: [
            "TensorrtExecutionProvider",
            "CUDAExecutionProvider",
            "CPUExecutionProvider",
        ],
        description=(
            "ONNX Runtime execution providers in order of preference; the first that loads is "
            "used (GPU ones only where an NVIDIA device exists)"
        ),
    )
    destinations: list[Destination] = Field(
        default_factory=list,
        description=(
            "The DICOM peers that receive results, as a JSON list of objects (keys below); "
            "empty: jobs stay reported"
        ),
    )
    viewer_url_template: str | None = Field(
        default=None,
        description=(
            "A link to a study in the reader's viewer, with {StudyInstanceUID} where the "
            "study goes, e.g. OHIF's https://pacs.example/ohif/viewer?StudyInstanceUIDs="
            "{StudyInstanceUID}; the status page and the API link each finished job to it"
        ),
    )
    status_page_show_patient: bool = Field(
        default=False,
        description=(
            "Show each job's PatientName and PatientID, read from its first instance in the "
            "spool, on the status page; they never reach the API, logs or metrics"
        ),
    )

    # Delivery (the outbox): retry after initial * 2**(attempt - 1) seconds, capped at the
    # maximum and jittered; after max_attempts failures an object is a dead letter
    delivery_initial_delay_seconds: float = Field(
        default=5.0,
        gt=0,
        description="The first retry delay after a failed delivery; it doubles per attempt",
    )
    delivery_max_delay_seconds: float = Field(
        default=600.0, gt=0, description="The longest retry delay (delays are jittered)"
    )
    delivery_max_attempts: int = Field(
        default=20,
        ge=1,
        description="Failed attempts after which a result object is a dead letter",
    )
    delivery_batch_size: int = Field(
        default=100, ge=1, le=10000, description="Result objects sent over one association"
    )
    delivery_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        description="How often the sender looks for due objects (a reported job wakes it)",
    )

    # Operations
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="The log level"
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="json: one JSON object per line, library loggers and Python warnings included",
    )

    _ae = field_validator("ae_title")(_check_ae_title)

    @field_validator("allowed_calling_aets")
    @classmethod
    def _check_allowed(cls, value: list[str]) -> list[str]:
        return [_check_ae_title(v) for v in value]

    @field_validator("replica_id")
    @classmethod
    def _check_replica(cls, value: str | None) -> str | None:
        return None if value is None else check_replica_id(value)

    @field_validator("api_token")
    @classmethod
    def _check_token(cls, value: str | None) -> str | None:
        if value is not None and len(value) < 16:
            raise ValueError("an API token must be at least 16 characters (or unset)")
        return value

    @field_validator("viewer_url_template")
    @classmethod
    def _check_viewer_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return check_viewer_url_template(value.strip())

    @model_validator(mode="after")
    def _check_ports(self) -> Settings:
        if self.dicom_port and self.dicom_port == self.http_port:
            raise ValueError("dicom_port and http_port must differ")
        if not self.auth_enabled and (self.api_token is not None or self.metrics_auth):
            raise ValueError(
                "auth_enabled is false but api_token or metrics_auth asks for auth: "
                "unset one or the other"
            )
        if self.delivery_initial_delay_seconds > self.delivery_max_delay_seconds:
            raise ValueError("delivery_initial_delay_seconds exceeds delivery_max_delay_seconds")
        return self

    @field_validator(
        "dicom_tls_cert_file",
        "dicom_tls_key_file",
        "dicom_tls_ca_file",
        "http_tls_cert_file",
        "http_tls_key_file",
    )
    @classmethod
    def _check_tls_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @model_validator(mode="after")
    def _check_tls_pairs(self) -> Settings:
        if (self.dicom_tls_cert_file is None) != (self.dicom_tls_key_file is None):
            raise ValueError(
                f"{ENV_PREFIX}DICOM_TLS_CERT_FILE and {ENV_PREFIX}DICOM_TLS_KEY_FILE go together"
            )
        if self.dicom_tls_ca_file is not None and self.dicom_tls_cert_file is None:
            raise ValueError(
                f"{ENV_PREFIX}DICOM_TLS_CA_FILE needs {ENV_PREFIX}DICOM_TLS_CERT_FILE and "
                f"{ENV_PREFIX}DICOM_TLS_KEY_FILE"
            )
        if (self.http_tls_cert_file is None) != (self.http_tls_key_file is None):
            raise ValueError(
                f"{ENV_PREFIX}HTTP_TLS_CERT_FILE and {ENV_PREFIX}HTTP_TLS_KEY_FILE go together"
            )
        return self

    @property
    def dicom_tls(self) -> bool:
        return self.dicom_tls_cert_file is not None

    @property
    def http_tls(self) -> bool:
        return self.http_tls_cert_file is not None

    @property
    def min_free_disk_bytes(self) -> int:
        return self.min_free_disk_mb * 1024 * 1024

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def tmp_subdir(self) -> str | None:
        """Where this replica's temporary files go in a shared spool and outbox."""
        return self.replica_id if self.spool_shared else None

    @property
    def candidates_path(self) -> Path:
        """The candidate models' folder: ``candidates_dir``, else ``<models_dir>/candidates``."""
        return self.candidates_dir or self.models_dir / "candidates"

    @property
    def archive_path(self) -> Path:
        """Replaced models' folder: ``models_archive_dir``, else ``<models_dir>/archive``."""
        return self.models_archive_dir or self.models_dir / "archive"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'cardiogate.db').resolve()}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get(f"{ENV_PREFIX}CONFIG")
        if config_file:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)


def load_settings(**overrides: Any) -> Settings:
    """Build :class:`Settings`, turning validation errors into one readable message.

    Raises
    ------
    ConfigurationError
        Naming each bad setting by its environment variable.
    """
    config_file = os.environ.get(f"{ENV_PREFIX}CONFIG")
    if config_file and not Path(config_file).is_file():
        raise ConfigurationError(f"{ENV_PREFIX}CONFIG: no such file: {config_file}")
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except SettingsError as e:  # a value that is not valid JSON for a list or object setting
        match = re.search(r'field "(\w+)"', str(e))
        name = f"{ENV_PREFIX}{match.group(1).upper()}" if match else "settings"
        raise ConfigurationError(f"invalid settings: {name}: not valid JSON") from e
    except yaml.YAMLError as e:
        raise ConfigurationError(f"{ENV_PREFIX}CONFIG: not valid YAML ({type(e).__name__})") from e
    except ValidationError as e:
        problems = []
        for err in e.errors():
            field = str(err["loc"][0]) if err["loc"] else "settings"
            name = f"{ENV_PREFIX}{field.upper()}" if field != "settings" else field
            problems.append(f"{name}: {err['msg']}")
        raise ConfigurationError("invalid settings: " + "; ".join(problems)) from e
