"""The container images under ``deploy/``, checked without a Docker daemon (CI has none).

The Dockerfiles are parsed into instructions; the constraints file is compared with
pyproject.toml and the installed packages; the healthcheck script runs against a stub."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from importlib.metadata import distribution
from pathlib import Path

import onnxruntime
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from cardiogate.config import Settings
from peers import free_port

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
CONSTRAINTS = DEPLOY / "constraints.txt"
CPU, GPU = DEPLOY / "Dockerfile", DEPLOY / "Dockerfile.gpu"
# what may differ between the two images: the runtime base and the providers
VARYING_ARGS = ("BASE", "PROVIDERS")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def parse_dockerfile(path: Path) -> list[Instruction]:
    """Instructions in order: comments dropped, continuation lines joined."""
    instructions: list[Instruction] = []
    pending = ""
    for line in path.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if pending and line.lstrip().startswith("#"):
            continue  # a comment line inside a continued instruction
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        keyword, _, args = (pending + line).strip().partition(" ")
        instructions.append(Instruction(keyword.upper(), " ".join(args.split())))
        pending = ""
    assert not pending, f"{path.name} ends inside a continued instruction"
    return instructions


def arg_defaults(instructions: list[Instruction]) -> dict[str, str]:
    found = {}
    for ins in instructions:
        if ins.keyword == "ARG" and "=" in ins.args:
            name, _, value = ins.args.partition("=")
            found[name] = value.strip("'\"")
    return found


def last(instructions: list[Instruction], keyword: str) -> Instruction:
    return [i for i in instructions if i.keyword == keyword][-1]


def env_of(instructions: list[Instruction]) -> dict[str, str]:
    """The ENV settings of the final stage, ``${ARG}`` references resolved."""
    args = arg_defaults(instructions)
    final = instructions[max(i for i, ins in enumerate(instructions) if ins.keyword == "FROM") :]
    env: dict[str, str] = {}
    for ins in final:
        if ins.keyword == "ENV":
            for name, value in re.findall(r"(\w+)=(\S+)", ins.args):
                env[name] = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m[1], m[0]), value)
    return env


def constraints() -> dict[str, str]:
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def test_every_runtime_dependency_is_pinned_in_the_constraints_file() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = constraints()
    for requirement in map(Requirement, project["dependencies"]):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not pinned: run `make lock`"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{name}=={pins[name]} does not satisfy pyproject's {requirement}: run `make lock`"
        )


def test_constraints_file_is_what_make_lock_writes_now() -> None:
    """Every package the runtime needs, transitively, at the version the tests run on."""
    written = subprocess.run(
        [sys.executable, str(DEPLOY / "lock.py")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert written == CONSTRAINTS.read_text(), "deploy/constraints.txt is stale: run `make lock`"


def test_make_and_both_images_install_with_the_same_constraints() -> None:
    makefile = (REPO / "Makefile").read_text()
    venv_recipe = makefile.split("$(STAMP):", 1)[1].split("\n\n", 1)[0]
    assert re.search(r"pip install .*-c deploy/constraints\.txt -e \"\.\[dev\]\"", venv_recipe)
    for dockerfile in (CPU, GPU):
        instructions = parse_dockerfile(dockerfile)
        copies = [i.args for i in instructions if i.keyword == "COPY"]
        assert "deploy/constraints.txt deploy/constraints.txt" in copies
        installs = [i.args for i in instructions if i.keyword == "RUN" and "pip install" in i.args]
        assert any(re.search(r"-c deploy/constraints\.txt \.( |$)", r) for r in installs)


def normalised(instructions: list[Instruction]) -> list[Instruction]:
    return [
        Instruction("ARG", ins.args.partition("=")[0])
        if ins.keyword == "ARG" and ins.args.partition("=")[0] in VARYING_ARGS
        else ins
        for ins in instructions
    ]


def test_cpu_and_gpu_images_differ_only_in_base_and_providers() -> None:
    cpu, gpu = parse_dockerfile(CPU), parse_dockerfile(GPU)
    assert normalised(cpu) == normalised(gpu)
    cpu_args, gpu_args = arg_defaults(cpu), arg_defaults(gpu)
    assert {k for k in cpu_args if cpu_args[k] != gpu_args[k]} == set(VARYING_ARGS)
    assert Instruction("FROM", "${BASE} AS runtime") in cpu


def test_cpu_image_is_slim_python_and_gpu_image_is_cuda_with_cudnn() -> None:
    cpu, gpu = arg_defaults(parse_dockerfile(CPU)), arg_defaults(parse_dockerfile(GPU))
    assert re.fullmatch(r"python:3\.11-slim-\w+", cpu["BASE"])
    # both run the python image's CPython, which the CPU base already is
    assert cpu["PYTHON_IMAGE"] == gpu["PYTHON_IMAGE"] == cpu["BASE"]
    assert re.fullmatch(r"nvidia/cuda:[\d.]+-cudnn-runtime-ubuntu[\d.]+", gpu["BASE"])


def test_gpu_base_has_the_cuda_major_that_the_pinned_onnxruntime_gpu_needs() -> None:
    pinned = constraints()["onnxruntime-gpu"]
    dist = distribution("onnxruntime-gpu")
    assert dist.version == pinned, "the installed onnxruntime-gpu is not the pinned one"
    cuda = next(Requirement(r) for r in dist.requires or [] if r.startswith("nvidia-cuda-runtime"))
    cuda_major = re.search(r"(\d+)\.", str(cuda.specifier))
    assert cuda_major is not None
    base = arg_defaults(parse_dockerfile(GPU))["BASE"]
    assert base.split(":")[1].split(".")[0] == cuda_major[1], (base, str(cuda))
    assert any(r.startswith("nvidia-cudnn-cu") and "~=9" in r for r in dist.requires or [])


def test_providers_are_onnxruntime_names_and_gpu_falls_back_to_cpu() -> None:
    known = set(onnxruntime.get_all_providers())
    cpu = json.loads(env_of(parse_dockerfile(CPU))["CARDIOGATE_PROVIDERS"])
    gpu = json.loads(env_of(parse_dockerfile(GPU))["CARDIOGATE_PROVIDERS"])
    assert cpu == ["CPUExecutionProvider"]
    assert gpu[0] == "CUDAExecutionProvider"
    assert gpu[-1] == "CPUExecutionProvider"
    assert set(cpu + gpu) <= known


@pytest.mark.parametrize("dockerfile", [CPU, GPU], ids=["cpu", "gpu"])
def test_image_environment_is_valid_settings(
    dockerfile: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {k: v for k, v in env_of(parse_dockerfile(dockerfile)).items() if "CARDIOGATE_" in k}
    assert set(env) >= {"CARDIOGATE_DATA_DIR", "CARDIOGATE_MODELS_DIR", "CARDIOGATE_PROVIDERS"}
    for name, value in env.items():
        assert name.removeprefix("CARDIOGATE_").lower() in Settings.model_fields, name
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert str(settings.data_dir) == "/data"
    exposed = {int(p) for p in last(parse_dockerfile(dockerfile), "EXPOSE").args.split()}
    assert exposed == {settings.dicom_port, settings.http_port}


@pytest.mark.parametrize("dockerfile", [CPU, GPU], ids=["cpu", "gpu"])
def test_image_runs_cardiogate_serve_as_the_non_root_user_it_creates(dockerfile: Path) -> None:
    instructions = parse_dockerfile(dockerfile)
    user = last(instructions, "USER").args
    uid, _, gid = user.partition(":")
    assert int(uid) > 0
    assert int(gid) > 0
    script = (DEPLOY / "python-runtime.sh").read_text()
    assert f"--uid {uid} --gid {gid}" in script
    assert f"install -d -o {uid} -g {gid}" in script  # the data volume it writes to
    assert json.loads(last(instructions, "ENTRYPOINT").args) == ["cardiogate"]
    assert json.loads(last(instructions, "CMD").args) == ["serve"]


def dockerignore_keeps(path: str) -> bool:
    """Whether the build context has ``path``: Docker's rule, the last matching pattern
    (on the path or one of its parent folders) wins, ``!`` re-includes."""
    keep = True
    for line in (REPO / ".dockerignore").read_text().splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(re.fullmatch(regex, p) for p in prefixes):
            keep = negate
    return keep


@pytest.mark.parametrize("dockerfile", [CPU, GPU], ids=["cpu", "gpu"])
def test_models_are_baked_in_and_every_copied_file_is_in_the_build_context(
    dockerfile: Path,
) -> None:
    instructions = parse_dockerfile(dockerfile)
    models_dir = env_of(instructions)["CARDIOGATE_MODELS_DIR"]
    copies = [i.args.split() for i in instructions if i.keyword == "COPY"]
    assert ["models/", models_dir + "/"] in copies
    for model in (REPO / "models").glob("*/card.json"):
        for name in ("card.json", "model.onnx"):
            assert dockerignore_keeps(f"models/{model.parent.name}/{name}"), model.parent
    assert not dockerignore_keeps("models/training/train_calcium.py")
    assert not dockerignore_keeps("tests/conftest.py")
    assert not dockerignore_keeps("service/phantoms/cardiogate_phantoms/phantom.py")
    assert dockerignore_keeps("service/cardiogate/app.py")
    assert not dockerignore_keeps("service/cardiogate/__pycache__/app.cpython-311.pyc")
    sources = [
        s for *from_context, _ in copies if from_context[0][:6] != "--from" for s in from_context
    ]
    for source in sources:
        assert (REPO / source).exists(), source
        tracked = subprocess.run(
            ["git", "ls-files", source], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.split()
        assert tracked, source
        left_out = ("models/training/", "service/phantoms/")  # not in the images, by design
        for file in tracked:
            if not file.startswith(left_out):
                assert dockerignore_keeps(file), file


@pytest.mark.parametrize("dockerfile", [CPU, GPU], ids=["cpu", "gpu"])
def test_healthcheck_runs_the_readyz_probe(dockerfile: Path) -> None:
    instructions = parse_dockerfile(dockerfile)
    check = last(instructions, "HEALTHCHECK").args
    command = json.loads(check.split(" CMD ", 1)[1])
    assert command == ["/opt/cardiogate/bin/python", "/opt/cardiogate/healthcheck.py"]
    copies = [i.args for i in instructions if i.keyword == "COPY"]
    assert "deploy/healthcheck.py /opt/cardiogate/healthcheck.py" in copies
    assert re.search(r"--start-period=\d+s", check)


class _Readyz(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        code = self.status if self.path == "/readyz" else 404
        self.send_response(code)
        self.end_headers()
        self.wfile.write(b'{"ready": false, "checks": {"models": false}}')

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def readyz_stub() -> Iterator[tuple[HTTPServer, type[_Readyz]]]:
    handler = type("Handler", (_Readyz,), {})
    server = HTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, handler
    server.shutdown()
    server.server_close()


def run_healthcheck(port: int) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARDIOGATE_")}
    env |= {"CARDIOGATE_HTTP_PORT": str(port), "CARDIOGATE_DICOM_PORT": "0"}
    return subprocess.run(
        [sys.executable, str(DEPLOY / "healthcheck.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_healthcheck_is_healthy_only_when_readyz_answers_200(
    readyz_stub: tuple[HTTPServer, type[_Readyz]],
) -> None:
    server, handler = readyz_stub
    port = server.server_address[1]
    assert run_healthcheck(port).returncode == 0
    handler.status = 503
    not_ready = run_healthcheck(port)
    assert not_ready.returncode == 1
    assert "503" in not_ready.stderr
    assert "models" in not_ready.stderr  # the failing check, from /readyz's body


def test_healthcheck_is_unhealthy_when_nothing_listens() -> None:
    result = run_healthcheck(free_port())
    assert result.returncode == 1
    assert "not ready" in result.stderr
