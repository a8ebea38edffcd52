from __future__ import annotations

import json
from pathlib import Path

import pytest

from radgen.cli import main

COMMANDS = [
    ["init"], ["demo"], ["sql"], ["lineage"], ["validate"],
    ["ingest", "dicom"], ["ingest", "masks"], ["ingest", "omics"],
    ["features", "compute"], ["features", "list"],
    ["analyze", "ccf"], ["analyze", "links"], ["analyze", "maps"], ["analyze", "associate"],
    ["datasets", "publish"], ["datasets", "list"], ["datasets", "pull"],
    ["catalog", "rebuild"], ["catalog", "gc"], ["tables", "list"], ["tables", "history"],
    ["datasets", "diff"], ["tables", "vacuum"], ["harmonize"],
    ["cluster", "up"], ["cluster", "down"], ["cluster", "status"],
]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command, "--help"]) == 0
    assert "Usage" in capsys.readouterr().out


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", "--no-such-option"]) == 2
    assert "No such option" in capsys.readouterr().err


def test_missing_catalog_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tables", "list", "--catalog", str(tmp_path / "none")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("CatalogError: ")
    assert "radgen init" in err[0]


def test_init_then_json_listing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = str(tmp_path / "cat")
    assert main(["init", "--catalog", root, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["root"] == root
    assert main(["tables", "list", "--catalog", root, "--json"]) == 0
    tables = {row["table"]: row["rows"] for row in json.loads(capsys.readouterr().out)}
    assert tables["series"] == 0
    assert main(["sql", "select 42 as answer", "--catalog", root, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"answer": 42}]


@pytest.mark.parametrize(
    "statement",
    [
        "create table evil as select 1",
        "drop view runs",
        "insert into runs select * from runs",
        "copy (select 1) to 'leak.csv'",
        "attach 'other.duckdb' as other",
        "select 1; drop view runs",
    ],
)
def test_sql_is_read_only(
    statement: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(tmp_path / "cat")
    assert main(["init", "--catalog", root]) == 0
    capsys.readouterr()
    assert main(["sql", statement, "--catalog", root]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "read-only" in err[0]
    assert (
        main(["sql", "select count(*) as n from runs", "--format", "json", "--catalog", root]) == 0
    )
