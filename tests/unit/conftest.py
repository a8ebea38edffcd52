"""Unit-test hooks: the hostile-input tests' counts in the terminal summary (xdist included)."""

from __future__ import annotations

from collections import Counter

import pytest

#: ``user_properties`` name under which a test records ``(category, count)`` pairs.
COUNTED = "hostile inputs"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Sum the counts every test recorded (workers send their reports' properties back)."""
    totals: Counter[str] = Counter()
    for reports in terminalreporter.stats.values():
        for report in reports:
            if getattr(report, "when", None) != "teardown":  # recorded by a fixture finalizer
                continue
            for name, value in getattr(report, "user_properties", ()):
                if name == COUNTED:
                    category, count = value
                    totals[str(category)] += int(count)
    if totals:
        terminalreporter.write_sep("-", COUNTED)
        for category, count in sorted(totals.items()):
            terminalreporter.write_line(f"{category}: {count}")
