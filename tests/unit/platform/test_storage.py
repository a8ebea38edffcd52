from __future__ import annotations

from pathlib import Path

import pytest

from radgen.errors import CatalogError, NotFoundError
from radgen.platform.storage import Root, resolve_root


def test_root_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RADGEN_CATALOG", raising=False)
    assert resolve_root().url == str(tmp_path / "radgen-catalog")
    monkeypatch.setenv("RADGEN_CATALOG", str(tmp_path / "env"))
    assert resolve_root().url == str(tmp_path / "env")
    assert resolve_root(str(tmp_path / "flag")).url == str(tmp_path / "flag")
    assert resolve_root(f"file://{tmp_path}/u").url == str(tmp_path / "u")


def test_memory_url_is_an_fsspec_root() -> None:
    root = Root.from_string("memory://radgen-test/cat")
    assert not root.is_local
    root.write_bytes(b"abc", "a", "b.txt")
    assert root.read_bytes("a", "b.txt") == b"abc"
    assert root.listdir("a") == ["b.txt"]


def test_atomic_write_replaces_and_immutable_write_refuses(tmp_path: Path) -> None:
    root = Root.from_string(str(tmp_path))
    root.write_bytes(b"one", "x", "f.bin")
    root.write_bytes(b"two", "x", "f.bin")
    assert (tmp_path / "x" / "f.bin").read_bytes() == b"two"
    assert [p.name for p in (tmp_path / "x").iterdir()] == ["f.bin"]  # no temp file left
    with pytest.raises(CatalogError, match="immutable"):
        root.write_bytes(b"three", "x", "f.bin", overwrite=False)


def test_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no such file"):
        Root.from_string(str(tmp_path)).read_bytes("nope.json")


def test_sha256_matches_hashlib(tmp_path: Path) -> None:
    import hashlib

    root = Root.from_string(str(tmp_path))
    data = bytes(range(256)) * 5000
    root.write_bytes(data, "big.bin")
    assert root.sha256("big.bin") == hashlib.sha256(data).hexdigest()
