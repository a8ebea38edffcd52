"""Data-quality suites (Great Expectations) for every stage, and the commit gate."""

from __future__ import annotations

from radgen.validation.suites import STAGES, Check, checks_for

__all__ = ["STAGES", "Check", "checks_for"]
