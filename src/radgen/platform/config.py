"""Catalog configuration: ``ROOT/config/radgen.yaml`` (optional, YAML mapping).

Keys radgen reads today:

``scanner_batch_fields``
    Header fields that define a scanner batch (list; see
    :func:`radgen.ingestion.dicom.scanner_batch`). ``radgen ingest dicom --batch-fields``
    overrides it for one run.

The de-identification key is kept apart, in ``ROOT/config/deid.json``
(:mod:`radgen.ingestion.deid`).
"""

from __future__ import annotations

from typing import Any

import yaml

from radgen.errors import ConfigError
from radgen.platform.storage import Root

__all__ = ["CONFIG_FILE", "KNOWN_KEYS", "load_config"]

CONFIG_FILE = ("config", "radgen.yaml")
KNOWN_KEYS = frozenset({"scanner_batch_fields"})


def load_config(root: Root) -> dict[str, Any]:
    """The catalog's configuration (empty when the file does not exist).

    Raises
    ------
    ConfigError
        The file is not a YAML mapping or holds an unknown key.
    """
    if not root.exists(*CONFIG_FILE):
        return {}
    where = root.uri(*CONFIG_FILE)
    try:
        data = yaml.safe_load(root.read_bytes(*CONFIG_FILE)) or {}
    except yaml.YAMLError as err:
        raise ConfigError(where, f"not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(where, "must be a mapping of settings")
    unknown = sorted(set(data) - KNOWN_KEYS)
    if unknown:
        raise ConfigError(
            where, f"unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(KNOWN_KEYS))}"
        )
    return data
