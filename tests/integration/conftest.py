"""Integration fixtures: real Dask processes and a moto S3 server on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from radgen.testing import DaskProcesses

BIN = Path(sys.executable).parent


@pytest.fixture
def dask_processes(tmp_path: Path) -> Iterator[DaskProcesses]:
    """A scheduler with two workers, ``w1`` and ``w2``."""
    procs = DaskProcesses(tmp_path)
    try:
        procs.add_workers("w1", "w2")
        yield procs
    finally:
        procs.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def s3_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A moto_server on 127.0.0.1 with bucket ``radgen``; the environment that reaches it."""
    port = _free_port()
    server = subprocess.Popen(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "RADGEN_CACHE": str(tmp_path_factory.mktemp("cache")),
        "GX_ANALYTICS_ENABLED": "False",
    }
    try:
        deadline = time.time() + 30
        while True:
            try:
                boto3.client(
                    "s3",
                    endpoint_url=env["AWS_ENDPOINT_URL"],
                    region_name="us-east-1",
                    aws_access_key_id="testing",
                    aws_secret_access_key="testing",
                ).create_bucket(Bucket="radgen")
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(0.3)
        yield env
    finally:
        server.terminate()
        server.wait(timeout=30)
