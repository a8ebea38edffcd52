"""Package and code version (the code version is recorded on every run)."""

from __future__ import annotations

import functools
import subprocess
from importlib import metadata
from pathlib import Path

try:
    __version__ = metadata.version("radgen")
except metadata.PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0"


@functools.cache
def code_version() -> str:
    """Return the version string recorded in run metadata and manifests.

    The package version, plus ``+g<commit>`` when radgen runs from a git checkout, plus
    ``.dirty`` when that checkout has uncommitted changes to tracked files.

    Returns
    -------
    str
        For example ``"0.1.0+g1a2b3c4"``.
    """
    src = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "-C", str(src), "rev-parse", "--short=8", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no", "."],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    if not sha:
        return __version__
    return f"{__version__}+g{sha}{'.dirty' if dirty else ''}"
