"""Catalog roots: a local directory or any fsspec URL, and safe writes under them.

Everything radgen stores lives under one root. This module is the only place that turns a
root string into a filesystem, so the rest of the code asks a :class:`Root` for paths and
never builds them itself.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from radgen.errors import CatalogError, NotFoundError

__all__ = [
    "DEFAULT_ROOT",
    "ENV_ROOT",
    "Root",
    "file_sha256",
    "resolve_root",
]

log = logging.getLogger(__name__)

ENV_ROOT = "RADGEN_CATALOG"
DEFAULT_ROOT = "radgen-catalog"
_HASH_BLOCK = 1 << 20


def resolve_root(catalog: str | os.PathLike[str] | None = None) -> Root:
    """Resolve the catalog root from an explicit value, ``$RADGEN_CATALOG`` or the default.

    Parameters
    ----------
    catalog : str or path-like, optional
        Local path or fsspec URL such as ``s3://bucket/prefix``. When None, the environment
        variable ``RADGEN_CATALOG`` is used, then ``./radgen-catalog``.

    Returns
    -------
    Root
        The resolved root; nothing is created.

    Examples
    --------
    >>> resolve_root("/tmp/cat").url
    '/tmp/cat'
    """
    raw = str(catalog) if catalog is not None else os.environ.get(ENV_ROOT) or DEFAULT_ROOT
    return Root.from_string(raw)


def _protocol(url: str) -> str:
    if "://" not in url:
        return "file"
    return url.split("://", 1)[0].lower()


def _storage_options_for(protocol: str) -> dict[str, Any]:
    """Options for fsspec; S3 endpoints come from the standard AWS variables."""
    if protocol in {"s3", "s3a"}:
        opts: dict[str, Any] = {}
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            opts["endpoint_url"] = endpoint
        return opts
    return {}


@dataclass(frozen=True)
class Root:
    """A catalog root: where every file of one catalog lives.

    Parameters
    ----------
    url : str
        Absolute local path, or fsspec URL without a trailing slash.
    fs : fsspec.AbstractFileSystem
        The filesystem the root lives on.
    path : str
        The root as a path inside `fs` (no protocol).
    storage_options : dict
        Options used to build `fs`; also handed to Zarr.
    """

    url: str
    fs: fsspec.AbstractFileSystem = field(repr=False, compare=False)
    path: str
    storage_options: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_string(cls, raw: str) -> Root:
        """Build a root from a local path or URL; ``file://`` URLs become local paths."""
        raw = raw.strip()
        if not raw:
            raise CatalogError("", "empty catalog root")
        protocol = _protocol(raw)
        if protocol == "file":
            local = raw[len("file://") :] if raw.startswith("file://") else raw
            absolute = str(Path(local).expanduser().resolve())
            return cls(url=absolute, fs=LocalFileSystem(), path=absolute)
        options = _storage_options_for(protocol)
        try:
            fs, path = fsspec.core.url_to_fs(raw.rstrip("/"), **options)
        except (ImportError, ValueError) as err:
            raise CatalogError(raw, f"cannot open this storage: {err}") from err
        return cls(url=raw.rstrip("/"), fs=fs, path=path.rstrip("/"), storage_options=options)

    @property
    def is_local(self) -> bool:
        """Whether the root is a directory on this machine."""
        return isinstance(self.fs, LocalFileSystem)

    @property
    def protocol(self) -> str:
        """The fsspec protocol, ``file`` for local roots."""
        return _protocol(self.url)

    def join(self, *parts: str) -> str:
        """Path inside the root's filesystem for the relative `parts`."""
        rel = "/".join(p.strip("/") for p in parts if p)
        return f"{self.path}/{rel}" if rel else self.path

    def uri(self, *parts: str) -> str:
        """Full location of `parts` for libraries that take URLs (Delta, Zarr, DuckDB)."""
        rel = "/".join(p.strip("/") for p in parts if p)
        return f"{self.url}/{rel}" if rel else self.url

    def local_path(self, *parts: str) -> Path:
        """Local path of `parts`; only for local roots."""
        if not self.is_local:
            raise CatalogError(self.url, "this operation needs a local catalog root")
        return Path(self.join(*parts))

    def _fresh(self, target: str) -> None:
        """Drop cached listings: other processes (workers, Zarr, Delta) write here too."""
        if not self.is_local:
            self.fs.invalidate_cache(target)

    def exists(self, *parts: str) -> bool:
        """Whether the relative path exists under the root."""
        target = self.join(*parts)
        self._fresh(target)
        return bool(self.fs.exists(target))

    def makedirs(self, *parts: str) -> None:
        """Create a directory (and parents) under the root."""
        self.fs.makedirs(self.join(*parts), exist_ok=True)

    def listdir(self, *parts: str) -> list[str]:
        """Names (not paths) of the entries of a directory; empty if it does not exist."""
        target = self.join(*parts)
        self._fresh(target)
        if not self.fs.exists(target):
            return []
        names = [str(p).rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(target, detail=False)]
        return sorted(names)

    def read_bytes(self, *parts: str) -> bytes:
        """Read a whole file under the root."""
        target = self.join(*parts)
        try:
            data: bytes = self.fs.cat_file(target)
        except FileNotFoundError as err:
            raise NotFoundError(self.uri(*parts), "no such file") from err
        return data

    def read_json(self, *parts: str) -> Any:
        """Read and parse a JSON file under the root."""
        raw = self.read_bytes(*parts)
        try:
            return json.loads(raw)
        except json.JSONDecodeError as err:
            raise CatalogError(self.uri(*parts), f"not valid JSON: {err}") from err

    def write_bytes(self, data: bytes, *parts: str, overwrite: bool = True) -> None:
        """Write a file atomically: readers see the old bytes or the new, never a mix.

        Parameters
        ----------
        data : bytes
            The content.
        *parts : str
            Relative path under the root.
        overwrite : bool, default True
            When False, refuse to replace an existing file (:class:`CatalogError`).
        """
        target = self.join(*parts)
        if not overwrite and self.fs.exists(target):
            raise CatalogError(self.uri(*parts), "already exists and is immutable")
        parent = target.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        if self.is_local:
            tmp = f"{parent}/.tmp-{uuid.uuid4().hex}"
            with Path(tmp).open("wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            Path(tmp).replace(target)
        else:  # object stores replace whole objects atomically
            self.fs.pipe_file(target, data)

    def write_json(self, obj: Any, *parts: str, overwrite: bool = True) -> None:
        """Write `obj` as indented, key-sorted JSON (atomic, see :meth:`write_bytes`)."""
        text = json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n"
        self.write_bytes(text.encode(), *parts, overwrite=overwrite)

    @contextmanager
    def open(self, *parts: str, mode: str = "rb") -> Iterator[IO[Any]]:
        """Open a file under the root with fsspec."""
        with self.fs.open(self.join(*parts), mode) as fh:
            yield fh

    def remove(self, *parts: str) -> None:
        """Delete a file or directory tree under the root if it exists."""
        target = self.join(*parts)
        self._fresh(target)
        if self.fs.exists(target):
            self.fs.rm(target, recursive=True)

    def move(self, src: tuple[str, ...], dst: tuple[str, ...]) -> None:
        """Move a file or directory tree (rename on local disks, copy + delete elsewhere)."""
        source, target = self.join(*src), self.join(*dst)
        if self.is_local:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            Path(source).replace(target)
        else:
            self.fs.mv(source, target, recursive=True)

    def sha256(self, *parts: str) -> str:
        """SHA-256 of a file under the root, streamed."""
        with self.open(*parts, mode="rb") as fh:
            return _stream_sha256(fh)

    def size(self, *parts: str) -> int:
        """Size in bytes of a file under the root."""
        return int(self.fs.size(self.join(*parts)))

    def walk_files(self, *parts: str) -> list[str]:
        """Relative paths (to `parts`) of every file below a directory, sorted."""
        base = self.join(*parts)
        self._fresh(base)
        if not self.fs.exists(base):
            return []
        found = self.fs.find(base)
        prefix = base.rstrip("/") + "/"
        return sorted(str(p)[len(prefix) :] for p in found if str(p).startswith(prefix))


def _stream_sha256(fh: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while block := fh.read(_HASH_BLOCK):
        digest.update(block)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a local or fsspec file, streamed in 1 MiB blocks.

    Parameters
    ----------
    path : str or path-like
        Local path or fsspec URL.

    Returns
    -------
    str
        Lower-case hex digest.
    """
    with fsspec.open(str(path), "rb") as fh:
        return _stream_sha256(fh)
