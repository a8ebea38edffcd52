"""A catalog on S3 (moto_server on 127.0.0.1): the demo pipeline, SQL, pull."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import boto3
import pandas as pd
import pytest
from distributed import Client

import radgen
from radgen.testing import DaskProcesses

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BIN = Path(sys.executable).parent


def _radgen(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(BIN / "radgen"), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=600
    )
    assert done.returncode == 0, done.stderr
    return done


def test_demo_pipeline_on_s3(
    s3_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo with real scheduler and worker processes that reach the bucket themselves."""
    s3_env = {**s3_env, "RADGEN_DEID_KEY": "3c" * 32}  # both catalogs pseudonymize alike
    root = "s3://radgen/catalog"
    cluster = DaskProcesses(tmp_path, env={**s3_env, "RADGEN_CACHE": str(tmp_path / "wcache")})
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_ENDPOINT_URL"):
        monkeypatch.setenv(key, s3_env[key])
    monkeypatch.setenv("RADGEN_CACHE", str(tmp_path / "cache"))
    try:
        cluster.add_workers("w1", "w2")
        _radgen(
            s3_env, tmp_path, "demo", "--patients", "2", "--catalog", root,
            "--scheduler", cluster.address,
        )  # fmt: skip
        # Dask reads of a table version and a dataset, computed on the remote workers: tasks
        # read the bucket themselves (their cache is not this process's)
        catalog = radgen.open_catalog(root)
        with Client(cluster.address, timeout="30s") as client:
            lazy = catalog.table("features_radiomics", dask=True)
            remote = client.compute(lazy).result().sort_values("roi_id").reset_index(drop=True)
            pd.testing.assert_frame_equal(  # Dask keeps strings as pyarrow strings (NA)
                remote,
                catalog.table("features_radiomics").sort_values("roi_id").reset_index(drop=True),
                check_dtype=False,
            )
            pulled = client.compute(catalog.dataset("demo-cohort", 1, dask=True)).result()
            assert len(pulled) == 2
    finally:
        cluster.close()
    # the index is a local cache: rebuilt from the bucket alone
    removed = 0
    for cache in (Path(s3_env["RADGEN_CACHE"]), tmp_path / "cache"):
        for index_file in cache.rglob("catalog.duckdb*"):
            index_file.unlink()
            removed += 1
    assert removed
    _radgen(s3_env, tmp_path, "catalog", "rebuild", "--catalog", root)
    # the same demo on local disk with the default LocalCluster gives the same features
    _radgen(s3_env, tmp_path, "demo", "--patients", "2", "--catalog", str(tmp_path / "local"))
    for table, query in [
        ("features_radiomics", "select * exclude (run_id) from features_radiomics order by roi_id"),
        ("series", "select * exclude (run_id, ingested_at) from series order by series_uid"),
    ]:
        on_s3, local = (radgen.open_catalog(r).sql(query) for r in (root, str(tmp_path / "local")))
        pd.testing.assert_frame_equal(on_s3, local, check_exact=True, obj=table)
    client = boto3.client(
        "s3",
        endpoint_url=s3_env["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    keys = [
        o["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket="radgen")
        for o in page.get("Contents", [])
    ]
    assert "catalog/catalog.duckdb" in keys
    assert any(k.startswith("catalog/images/") and k.endswith("zarr.json") for k in keys)
    assert any(k.startswith("catalog/tables/features_radiomics/_delta_log/") for k in keys)
    assert "catalog/datasets/demo-cohort/1/manifest.json" in keys
    assert not any("/.tmp-" in k for k in keys)

    out = _radgen(
        s3_env,
        tmp_path,
        "sql",
        "select count(*) as n from features_radiomics",
        "--format",
        "json",
        "--catalog",
        root,
    )
    assert json.loads(out.stdout) == [{"n": 2}]
    pulled = _radgen(
        s3_env,
        tmp_path,
        "datasets",
        "pull",
        "demo-cohort@1",
        "--to",
        str(tmp_path / "out"),
        "--json",
        "--catalog",
        root,
    )
    assert json.loads(pulled.stdout)["verified"] is True
    assert (tmp_path / "out" / "data" / "part-00000.parquet").exists()
