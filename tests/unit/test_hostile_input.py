"""Hostile input never crashes, hangs or changes committed data (issue "Reliability and security", 4).

Hypothesis feeds malformed DICOM files (truncated, a header byte changed, a wrong VR, a huge
declared length, an unsupported or garbage transfer syntax, Rows/Columns that do not match the
pixel data, no pixel data), malformed omics files of every kind (binary junk, wrong
delimiters, 1 MB cells, unicode, injection-looking sample ids, empty files, a header alone,
broken gzip) and malformed settings YAML (invalid YAML, wrong types, unknown keys, absurd
values) through ``radgen`` exactly as a user would (``radgen.cli.main``), plus most DICOM
cases through the in-process API the Dask tasks run (``read_headers`` + ``assemble_series``).

Properties, for every input:

- no Python traceback, no uncaught exception, no hang (a per-call deadline);
- exit 0 (the file was ingested, or quarantined with a reason), or exit 1 with exactly one
  error line on stderr that names the file (``ErrorName: path: reason``), at most 2000
  characters long; only a suite refusal (``ValidationFailed``) may precede it with its
  failed expectations, one indented line each, as the CLI documents;
- committed data unchanged when the command fails. One catalog serves the whole module: it
  is initialised and given one valid CT series and one valid MAF first; before and after
  each CLI input every table's Delta version and the version its SQL view shows are
  compared, and so are the ``images/`` and ``matrices/`` folders (at the end, every view's
  ``count(*)`` is checked against its Delta version, and the series committed first against
  what is stored). A refused input may add a version to three bookkeeping tables, by
  design: ``runs`` (one row per command that opened a run, status ``failed`` or
  ``rejected``; settings refused before the catalog is opened leave none),
  ``quality_results`` (the suite results behind a refusal by a suite) and ``quarantine``
  (DICOM files or series that could not be read, recorded even when the command then fails
  with "nothing ingested"). Observed in one run: of 103 refused inputs, 71 added a ``runs``
  version, 1 a ``quality_results`` version and 1 a ``quarantine`` version; ``lineage``,
  every data table, ``images/`` and ``matrices/`` never changed (counts printed at the end).
- when a hostile input is accepted (an injection-looking sample id in an otherwise valid
  file, a DICOM change that left the file valid), rows committed before are unchanged and
  the sample ids are stored verbatim and can be queried with SQL.

The number of inputs tried per category (and of refusals per bookkeeping table) is printed
in the terminal summary (a hook in tests/unit/conftest.py, so it works under xdist too), and
each test asserts a minimum: at least 50 DICOM, 100 omics and 30 settings inputs in all.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import signal
import struct
import traceback
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import pytest
import yaml
from distributed import LocalCluster
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from radgen.cli import main
from radgen.demo import write_ct_series
from radgen.errors import ConfigError
from radgen.features.settings import MAX_BIN_COUNT, load_settings
from radgen.ingestion.dicom import (
    DicomHeader,
    Quarantined,
    assemble_series,
    group_by_series,
    read_headers,
)
from radgen.platform import index, tables
from radgen.platform.catalog import Catalog

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:pydicom")

# --------------------------------------------------------------------------- bookkeeping

#: Inputs tried per category (every Hypothesis example, explicit examples included).
TRIED: Counter[str] = Counter()

#: Refused inputs (exit 1), and those that added a version to each bookkeeping table.
REFUSALS: Counter[str] = Counter()

#: Tables that record refused work by design (see the module docstring).
BOOKKEEPING = {"runs", "quality_results", "quarantine"}

#: An error line longer than this is not a clear message (a 1 MB cell quoted whole).
MAX_LINE = 2000

#: Seconds one CLI call or one in-process step may take before it counts as a hang.
DEADLINE = 90.0

SPACING = (2.0, 0.75, 0.75)


class Hang(BaseException):
    """A call overran its deadline (BaseException: no ``except Exception`` swallows it)."""


@contextlib.contextmanager
def deadline(seconds: float, what: str) -> Iterator[None]:
    def expired(signum: int, frame: FrameType | None) -> None:
        raise Hang(f"{what}: no answer within {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


def run_cli(argv: list[str]) -> Outcome:
    """``radgen ARGV`` in this process: exit code, stdout and stderr; fails on an escape."""
    out, err = io.StringIO(), io.StringIO()
    try:
        with (
            deadline(DEADLINE, " ".join(argv[:3])),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            code = main(argv)
    except Hang:
        raise
    except BaseException:
        pytest.fail(f"radgen {argv!r} raised instead of exiting:\n{traceback.format_exc()}")
    return Outcome(code, out.getvalue(), err.getvalue())


def assert_clean_failure(outcome: Outcome, *names: str) -> str:
    """Exit 1 with one error line, no traceback, naming one of `names`; returns the line.

    The one exception the CLI documents: a suite refusal (``ValidationFailed``) first lists
    its failed expectations, one indented line each.
    """
    assert outcome.code == 1, outcome
    assert "Traceback" not in outcome.err, outcome.err
    lines = [line for line in outcome.err_lines if not line.startswith("  ")]
    assert len(lines) == 1, f"expected one stderr line, got {len(lines)}:\n{outcome.err}"
    line = lines[0]
    assert outcome.err_lines[-1] == line, outcome.err
    if len(outcome.err_lines) > 1:
        assert line.startswith("ValidationFailed: "), outcome.err
    assert ": " in line, line
    assert len(line) <= MAX_LINE, f"a {len(line)}-character error line: {line[:300]}…"
    assert any(name in line for name in names), f"{line!r} names none of {names!r}"
    return line


# --------------------------------------------------------------------------- the catalog

Fingerprint = dict[str, Any]


class Env:
    """The module catalog and what the tests share (a plain class: short in Hypothesis reports)."""

    def __init__(self, root: str, scheduler: str, work: Path, series: list[Path]) -> None:
        self.root = root
        self.scheduler = scheduler
        self.work = work
        self.series = series  # the valid CT slices the DICOM cases start from
        self.last = fingerprint(root)  # after the latest command
        self.committed = _series_rows(root)  # series rows committed before any hostile input

    @property
    def catalog(self) -> Catalog:
        return Catalog.open(self.root)

    def __repr__(self) -> str:
        return f"Env({self.root})"


def fingerprint(root: str) -> Fingerprint:
    """Every table's Delta version and the version its SQL view shows (rows change only with
    a new version), and the stored volume and matrix folders."""
    where = Catalog.open(root).root
    shown = index.views(where)
    versions = {
        name: (tables.table_version(where, name), shown.get(name))
        for name in tables.list_tables(where)
    }
    folders = {
        name: sorted(p.name for p in (Path(root) / name).iterdir())
        for name in ("images", "matrices")
        if (Path(root) / name).is_dir()
    }
    return {"tables": versions, "folders": folders}


def assert_sql_agrees(root: str) -> None:
    """``select count(*)`` of every view equals the row count of its table's Delta version."""
    cat = Catalog.open(root)
    listed = cat.list_tables()
    union = " union all ".join(
        f"select '{name}' as t, count(*) as n from \"{name}\"" for name in listed["table"]
    )
    counts = dict(cat.sql(union).itertuples(index=False))
    assert counts == dict(zip(listed["table"], listed["rows"], strict=True))


def assert_unchanged(before: Fingerprint, after: Fingerprint) -> None:
    """Committed data identical, bookkeeping tables aside."""
    changed = {
        name: (before["tables"].get(name), version)
        for name, version in after["tables"].items()
        if name not in BOOKKEEPING and before["tables"].get(name) != version
    }
    assert not changed, f"committed tables changed by a refused input: {changed}"
    assert before["folders"] == after["folders"]


def assert_only_added(before: Fingerprint, after: Fingerprint) -> None:
    """An accepted input may add versions; what was committed stays (checked at the end)."""
    for name, (version, _) in before["tables"].items():
        new_version, shown = after["tables"][name]
        assert new_version >= version, name
        assert shown == new_version, f"the SQL view of {name} is stale"
    for kind, names in before["folders"].items():
        assert set(names) <= set(after["folders"][kind]), kind


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """One in-process Dask cluster for every CLI call (``--scheduler``): no start-up per call."""
    with LocalCluster(
        processes=False, n_workers=1, threads_per_worker=2, dashboard_address=":0"
    ) as local:
        yield local.scheduler_address


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, cluster: str, shared_data: Path) -> Iterator[Env]:
    work = tmp_path_factory.mktemp("hostile")
    root = str(work / "catalog")
    assert run_cli(["init", "--catalog", root]).code == 0
    truth = np.random.default_rng(7).integers(-1000, 1500, (3, 8, 8)).astype(float)
    _, paths, _ = write_ct_series(work / "valid-ct", truth, spacing=SPACING)
    done = run_cli(["ingest", "dicom", str(work / "valid-ct"), "--catalog", root, "--quiet",
                    "--scheduler", cluster])  # fmt: skip
    assert done.code == 0, done
    maf = shared_data / "omics" / "cbioportal_study_es_0" / "data_mutations_extended.maf"
    done = run_cli(["ingest", "omics", str(maf), "--kind", "mutations", "--catalog", root])
    assert done.code == 0, done
    env = Env(root, cluster, work, paths)
    assert len(env.committed) == 1
    yield env
    assert_sql_agrees(root)
    assert _series_rows(root)[: len(env.committed)] == env.committed


def _series_rows(root: str) -> list[dict[str, Any]]:
    frame = Catalog.open(root).sql(
        "select series_uid, content_hash, zarr_path, n_instances from series order by ingested_at"
    )
    return frame.to_dict("records")


@pytest.fixture(autouse=True)
def record_counts(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test's inputs and refusals, summed in the terminal summary (tests/unit/conftest.py)."""
    tried, refused = TRIED.copy(), REFUSALS.copy()
    yield
    properties = request.node.user_properties
    for category, count in (TRIED - tried).items():
        properties.append(("hostile inputs", (f"inputs tried, {category}", count)))
    for name, count in (REFUSALS - refused).items():
        what = (
            "refused CLI inputs" if name == "all" else f"refused CLI inputs adding a {name} version"
        )
        properties.append(("hostile inputs", (what, count)))


def check_cli(env: Env, argv: list[str]) -> Outcome:
    """Run `argv` on the module catalog and compare its data before and after."""
    before = env.last
    outcome = run_cli([*argv, "--catalog", env.root])
    after = env.last = fingerprint(env.root)
    assert "Traceback" not in outcome.err + outcome.out, outcome
    assert outcome.code in (0, 1), outcome
    if outcome.code == 0:
        assert_only_added(before, after)
    else:
        assert_unchanged(before, after)
        REFUSALS["all"] += 1
        for name in BOOKKEEPING:
            REFUSALS[name] += before["tables"].get(name) != after["tables"][name]
    return outcome


# --------------------------------------------------------------------------- DICOM

#: Explicit VR little endian: these VRs have 2 reserved bytes and a 4-byte length.
LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}  # fmt: skip
VRS = sorted(LONG_VRS | {b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS",
                         b"LO", b"LT", b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL",
                         b"US", b"\x00\x00", b"zz"})  # fmt: skip

TRANSFER_SYNTAXES = [
    "1.2.840.10008.1.2",  # implicit VR: the explicit bytes are then misread
    "1.2.840.10008.1.2.2",  # big endian
    "1.2.840.10008.1.2.1.99",  # deflated, but the bytes are not deflated
    "1.2.840.10008.1.2.4.50",  # JPEG baseline over raw pixels
    "1.2.840.10008.1.2.4.100",  # MPEG-2: no decoder
    "1.2.840.10008.1.2.4.201",  # HTJ2K
    "1.2.840.10008.1.2.5",  # RLE over raw pixels
    "1.2.3.4.5.6.7.8.9",
    "",
    "not a uid at all",
    "9" * 64,
]


@dataclass(frozen=True)
class Element:
    tag: tuple[int, int]
    vr: bytes
    start: int
    length_at: int
    length_size: int
    value_at: int
    length: int


def walk(data: bytes) -> list[Element]:
    """Top-level elements of an explicit VR little endian Part 10 file (meta group included)."""
    out: list[Element] = []
    pos = 132
    while pos + 8 <= len(data):
        group, elem = struct.unpack_from("<HH", data, pos)
        vr = data[pos + 4 : pos + 6]
        if vr in LONG_VRS:
            length_at, size, value_at = pos + 8, 4, pos + 12
            length = struct.unpack_from("<I", data, length_at)[0]
        else:
            length_at, size, value_at = pos + 6, 2, pos + 8
            length = struct.unpack_from("<H", data, length_at)[0]
        out.append(Element((group, elem), vr, pos, length_at, size, value_at, length))
        if length == 0xFFFFFFFF:
            break
        pos = value_at + length
    return out


def _find(elements: list[Element], tag: tuple[int, int]) -> Element:
    return next(e for e in elements if e.tag == tag)


def _replace_value(
    data: bytes, elements: list[Element], tag: tuple[int, int], value: bytes
) -> bytes:
    """The file with one short-VR element's value replaced (meta group length kept right)."""
    if len(value) % 2:
        value += b"\x00"
    el = _find(elements, tag)
    header = bytearray(data[el.start : el.value_at])
    struct.pack_into("<H", header, el.length_at - el.start, len(value))
    out = bytearray(data[: el.start] + bytes(header) + value + data[el.value_at + el.length :])
    if tag[0] == 0x0002:
        group_length = _find(elements, (0x0002, 0x0000))
        old = struct.unpack_from("<I", out, group_length.value_at)[0]
        struct.pack_into("<I", out, group_length.value_at, old + len(value) - el.length)
    return bytes(out)


@dataclass(frozen=True)
class DicomCase:
    """One way of breaking a valid file; `where`/`value`/`text` are interpreted per kind."""

    kind: str
    where: int = 0
    value: int = 0
    text: str = ""

    def apply(self, data: bytes) -> bytes:
        elements = walk(data)
        pixels = _find(elements, (0x7FE0, 0x0010))
        if self.kind == "truncate":
            return data[: self.where % len(data)]
        if self.kind == "flip":  # a header byte, pixel data excluded
            at = self.where % pixels.value_at
            changed = bytearray(data)
            changed[at] ^= (self.value % 255) + 1
            return bytes(changed)
        if self.kind == "wrong_vr":
            el = elements[self.where % len(elements)]
            changed = bytearray(data)
            changed[el.start + 4 : el.start + 6] = VRS[self.value % len(VRS)]
            return bytes(changed)
        if self.kind == "huge_length":
            el = elements[self.where % len(elements)]
            changed = bytearray(data)
            limit = 0xFFFF if el.length_size == 2 else 0xFFFFFFFF
            huge = limit - (self.value % 64)  # the largest lengths, undefined length included
            struct.pack_into("<H" if el.length_size == 2 else "<I", changed, el.length_at, huge)
            return bytes(changed)
        if self.kind == "transfer_syntax":
            uid = self.text or TRANSFER_SYNTAXES[self.value % len(TRANSFER_SYNTAXES)]
            return _replace_value(
                data, elements, (0x0002, 0x0010), uid.encode("latin-1", "replace")
            )
        if self.kind in {"rows", "columns"}:
            tag = (0x0028, 0x0010 if self.kind == "rows" else 0x0011)
            old = struct.unpack_from("<H", data, _find(elements, tag).value_at)[0]
            new = self.value % 65536
            new = new if new != old else (old + 1) % 65536
            return _replace_value(data, elements, tag, struct.pack("<H", new))
        if self.kind == "no_pixels":
            return data[: pixels.start]
        if self.kind == "short_pixels":  # a consistent element, but fewer bytes than the grid
            keep = (self.where % max(1, pixels.length // 2)) * 2
            header = bytearray(data[pixels.start : pixels.value_at])
            struct.pack_into("<I", header, pixels.length_at - pixels.start, keep)
            return (
                data[: pixels.start]
                + bytes(header)
                + data[pixels.value_at : pixels.value_at + keep]
            )
        if self.kind == "series_uid":  # the UID that names the series' volume folder
            text = self.text.encode("latin-1", "replace")[:200]
            return _replace_value(data, elements, (0x0020, 0x000E), text)
        if self.kind == "ds_value":  # a decimal string replaced (IOP, IPP, spacing, rescale)
            tags = [(0x0020, 0x0037), (0x0020, 0x0032), (0x0028, 0x0030), (0x0028, 0x1053),
                    (0x0028, 0x1052), (0x0018, 0x0050)]  # fmt: skip
            text = self.text.encode("latin-1", "replace")[:64]
            return _replace_value(data, elements, tags[self.where % len(tags)], text)
        raise AssertionError(self.kind)


DS_TEXTS = ["0\\0\\0\\0\\0\\0", "1\\0\\0\\1\\0\\0", "nan\\nan\\nan", "inf", "-inf\\1", "1e309",
            "0\\0", "-1\\-1", "0", "", "1\\2\\3\\4\\5\\6\\7", "abc", "1e-320\\1e-320"]  # fmt: skip


UID_TEXTS = ["../../escaped", "1.2/../../3", "/tmp/x", "1" * 65, "1.2.3\\4.5", "1..2", "",
             "1.2.3 ", "\x00\x00", "1.2.840.10008.1.2.3"]  # fmt: skip


def dicom_cases() -> st.SearchStrategy[DicomCase]:
    offsets = st.integers(0, 2**20)
    return st.one_of(
        st.builds(
            DicomCase,
            st.just("series_uid"),
            text=st.one_of(
                st.sampled_from(UID_TEXTS), st.text(st.characters(codec="latin-1"), max_size=80)
            ),
        ),
        st.builds(DicomCase, st.just("truncate"), offsets),
        st.builds(DicomCase, st.just("flip"), offsets, st.integers(0, 254)),
        st.builds(DicomCase, st.just("wrong_vr"), offsets, st.integers(0, len(VRS) - 1)),
        st.builds(DicomCase, st.just("huge_length"), offsets, st.integers(0, 63)),
        st.builds(
            DicomCase,
            st.just("transfer_syntax"),
            st.just(0),
            st.integers(0, len(TRANSFER_SYNTAXES) - 1),
            st.one_of(st.just(""), st.text(st.characters(codec="latin-1"), max_size=70)),
        ),
        st.builds(
            DicomCase, st.sampled_from(["rows", "columns"]), st.just(0), st.integers(0, 65535)
        ),
        st.builds(DicomCase, st.sampled_from(["no_pixels", "short_pixels"]), offsets),
        st.builds(
            DicomCase,
            st.just("ds_value"),
            st.integers(0, 5),
            st.just(0),
            st.one_of(
                st.sampled_from(DS_TEXTS), st.text(st.characters(codec="latin-1"), max_size=40)
            ),
        ),
    )


def check_headers(read: list[DicomHeader | Quarantined], hostile: str) -> None:
    for item in read:
        assert isinstance(item, DicomHeader | Quarantined), item
        if isinstance(item, Quarantined):
            assert item.path == hostile, item
            assert isinstance(item.reason, str), item
            assert item.reason.strip(), item


@given(case=dicom_cases())
@example(case=DicomCase("ds_value", where=0, text="0\\0\\0\\0\\0\\0"))  # degenerate orientation
@example(case=DicomCase("ds_value", where=1, text="nan\\nan\\nan"))  # NaN position
@example(case=DicomCase("huge_length", where=-1, value=0))  # Pixel Data length 0xFFFFFFFF
@example(case=DicomCase("rows", value=65535))
@example(case=DicomCase("transfer_syntax", value=4))
@example(case=DicomCase("no_pixels"))
@example(case=DicomCase("truncate", where=152))  # BytesLengthException in the meta group
@example(case=DicomCase("wrong_vr", where=30, value=32))  # SeriesInstanceUID read as numbers
@example(case=DicomCase("series_uid", text="../../escaped"))  # a volume folder outside images/
@example(case=DicomCase("ds_value", where=2, text="0\\-1"))  # negative PixelSpacing
@example(case=DicomCase("ds_value", where=3, text="inf"))  # infinite RescaleSlope
@example(case=DicomCase("ds_value", where=3, text="1e308"))  # rescaled values overflow
def _dicom_in_process(env: Env, case: DicomCase) -> None:
    TRIED["dicom"] += 1
    folder = env.work / "in-process"
    folder.mkdir(exist_ok=True)
    hostile = folder / "hostile.dcm"
    hostile.write_bytes(case.apply(env.series[1].read_bytes()))
    paths = [str(env.series[0]), str(hostile), str(env.series[2])]
    scratch = env.work / "scratch"  # volumes go to a scratch root, never the module catalog
    scratch.mkdir(exist_ok=True)
    with deadline(DEADLINE, f"headers of {case}"):
        read = read_headers(paths)
    check_headers(read, str(hostile))
    headers = [h for h in read if isinstance(h, DicomHeader) and not h.localizer]
    around = sorted(env.work.iterdir())
    for group in group_by_series(headers).values():
        with deadline(DEADLINE, f"assembly of {case}"):
            result = assemble_series(group, str(scratch), run_id="r-hostile")
        assert sorted(env.work.iterdir()) == around, "a volume written outside its root"
        assert result.series_row is not None or result.quarantined, result
        for q in result.quarantined:
            assert isinstance(q.reason, str), q
            assert q.reason.strip(), q
        if result.series_row is not None:  # still valid: the geometry must be finite
            assert np.all(np.isfinite(result.series_row["spacing"])), result.series_row
            assert all(s > 0 for s in result.series_row["spacing"]), result.series_row
    if TRIED["dicom"] % 10 == 0:  # the catalog is not touched (checked now and then: slow)
        assert_unchanged(env.last, fingerprint(env.root))


@given(cases=st.lists(dicom_cases(), min_size=10, max_size=14), no_deid=st.booleans())
@example(
    cases=[DicomCase("series_uid", text="../../escaped"), DicomCase("truncate", where=152)],
    no_deid=True,
)
@example(  # implausible values: the images suite refuses the batch (was two lines, no path)
    cases=[
        DicomCase("ds_value", where=3, text="1e20"),
        DicomCase("ds_value", where=3, text="1e308"),
    ],
    no_deid=False,
)
def _dicom_through_the_cli(env: Env, cases: list[DicomCase], no_deid: bool) -> None:
    TRIED["dicom"] += len(cases)
    batch = env.work / f"cli-batch-{TRIED['dicom']}"
    hostile: list[Path] = []
    truth = np.random.default_rng(len(cases)).integers(-1000, 1500, (3, 8, 8)).astype(float)
    for i, case in enumerate(cases):
        _, paths, _ = write_ct_series(
            batch / f"s{i}", truth, spacing=SPACING, seed=TRIED["dicom"] * 100 + i
        )
        paths[1].write_bytes(case.apply(paths[1].read_bytes()))
        hostile.append(paths[1])
    around = sorted(env.work.iterdir())
    argv = ["ingest", "dicom", str(batch), "--json", "--quiet", "--scheduler", env.scheduler]
    outcome = check_cli(env, [*argv, "--no-deid"] if no_deid else argv)
    assert sorted(env.work.iterdir()) == around, "files written outside the catalog"
    if outcome.code == 1:
        assert_clean_failure(outcome, str(batch))
        return
    report = json.loads(outcome.out)
    folders = {q["path"] for q in report["quarantined"]}  # series-level entries name the folder
    cat = env.catalog
    for path in hostile:
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        if str(path.parent) in folders:
            continue
        seen = cat.sql(
            f"select (select count(*) from quarantine where file_sha256 = '{sha}') "
            f"+ (select count(*) from instances where file_sha256 = '{sha}') as n"
        )["n"].iloc[0]
        assert seen >= 1, f"{path} was neither ingested nor quarantined: {report}"


# --------------------------------------------------------------------------- omics

S1, S2 = "TCGA-HX-0001-01", "TCGA-HX-0002-01"

TEMPLATES: dict[str, tuple[str, list[list[str]]]] = {
    "mutations": (
        "cohort.maf",
        [
            ["Hugo_Symbol", "Tumor_Sample_Barcode", "Variant_Classification", "Variant_Type",
             "Chromosome", "Start_Position", "End_Position", "Reference_Allele",
             "Tumor_Seq_Allele2", "t_ref_count", "t_alt_count"],
            ["TP53", S1, "Missense_Mutation", "SNP", "17", "7673700", "7673700", "C", "T", "50", "20"],
            ["KRAS", S2, "Silent", "SNP", "12", "25245300", "25245300", "G", "A", "40", "10"],
        ],
    ),
    "cna-segments": (
        "cohort.seg",
        [
            ["ID", "chrom", "loc.start", "loc.end", "num.mark", "seg.mean"],
            [S1, "7", "1", "30000000", "120", "0.05"],
            [S2, "17", "1", "40000000", "80", "-0.61"],
        ],
    ),
    "cna-gene": (
        "cna.txt",
        [["Hugo_Symbol", S1, S2], ["TP53", "-1", "0"], ["EGFR", "2", "1"]],
    ),
    "expression": (
        "counts.tsv",
        [["gene_id", "Length", S1, S2], ["G1", "1000", "10", "0"], ["G2", "3000", "30", "5"]],
    ),
    "rsem": (
        f"{S1}.genes.results",
        [
            ["gene_id", "transcript_id(s)", "length", "effective_length", "expected_count", "TPM", "FPKM"],
            ["TP53|7157", "TP53.t1", "2500.00", "2320.00", "410.00", "1.0", "1.0"],
            ["KRAS|3845", "KRAS.t1", "1200.00", "1020.00", "95.00", "1.0", "1.0"],
        ],
    ),
    "methylation": (
        "beta.tsv",
        [["probe_id", S1, S2], ["cg00000001", "0.12", "0.91"], ["cg00000002", "0.5", "NA"]],
    ),
    "clinical": (
        "clinical.tsv",
        [["PATIENT_ID", "AGE", "SEX"], ["TCGA-HX-0001", "61", "F"], ["TCGA-HX-0002", "70", "M"]],
    ),
    "subjects": (
        "map.tsv",
        [["sample_id", "subject_id"], [S1, "PACS-0001"], [S2, "PACS-0002"]],
    ),
}  # fmt: skip

#: Where each kind stores the id that an injection case replaces: (table, column).
ID_TABLE = {
    "mutations": ("mutations", "sample_id"),
    "cna-segments": ("cna_segments", "sample_id"),
    "cna-gene": ("cna_gene", "sample_id"),
    "expression": ("expression", "sample_id"),
    "rsem": ("expression", "sample_id"),
    "methylation": ("methylation", "sample_id"),
    "clinical": ("clinical", "patient_id"),
    "subjects": ("subjects", "sample_id"),
}

INJECTIONS = [
    "'; drop table mutations; --",
    "../../etc/passwd",
    "$(rm -rf /)",
    "`reboot`",
    '"; select * from runs; --',
    "1' or '1'='1",
    "Robert'); DROP TABLE subjects;--",
    "<script>alert(1)</script>",
    "%s%s%n",
    "{{7*7}}",
    "C:\\Windows\\system32",
    "TCGA-XX-0001-01 union select 1",
]
ODD_TEXT = ["\u202e", "\u200f", "\ufeff", "\U0001f9ec", "\x00", "\r", "\u2028", "e\u0301", "\ud7ff",
            "\t", "\n", "\"", "#", "NA", "-0", "1e999", "nan", "-1", "9" * 400]  # fmt: skip
DELIMITERS = [",", ";", " ", "|", ", ", ":"]
BIG = 1 << 20


@dataclass(frozen=True)
class OmicsCase:
    """One malformed omics file: `variant` says how the kind's valid template is broken."""

    kind: str
    variant: str
    row: int = 0
    col: int = 0
    text: str = ""
    junk: bytes = b""
    name: str = ""

    def file_name(self) -> str:
        base = TEMPLATES[self.kind][0]
        if self.name:
            base = f"{self.name}-{base}" if self.kind == "rsem" else f"{self.name}.tsv"
        return base + (".gz" if self.variant.startswith("gzip") else "")

    def content(self) -> bytes:
        header, *rows = [list(r) for r in TEMPLATES[self.kind][1]]
        grid = [header, *rows]

        def joined(sep: str = "\t") -> bytes:
            return ("\n".join(sep.join(r) for r in grid) + "\n").encode("utf-8", "surrogatepass")

        r = 1 + self.row % len(rows)
        c = self.col % len(header)
        if self.variant == "junk":
            return self.junk
        if self.variant == "empty":
            return b""
        if self.variant == "header_only":
            return ("\t".join(header) + "\n").encode()
        if self.variant == "delimiter":
            return joined(DELIMITERS[self.col % len(DELIMITERS)])
        if self.variant in {"enormous", "enormous_number"}:
            grid[r][c] = ("9" if self.variant == "enormous_number" else "A") * BIG
            return joined()
        if self.variant == "unicode":
            grid[r][c] = self.text
            return joined()
        if self.variant == "unicode_header":
            grid[0][c] = self.text
            return joined()
        if self.variant == "ragged":
            grid[r] = grid[r][: self.col % len(header)] or [""]
            return joined()
        if self.variant == "injection":
            if self.kind in {"cna-gene", "methylation", "expression"}:
                grid[0][-1] = self.text  # samples are columns here
            elif self.kind != "rsem":  # rsem: the id is given with --sample-id
                grid[1][_id_column(self.kind)] = self.text
            return joined()
        if self.variant == "gzip_truncated":
            whole = gzip.compress(joined(), mtime=0)
            return whole[: self.row % len(whole)]
        if self.variant == "gzip_junk":
            return self.junk
        raise AssertionError(self.variant)


def _id_column(kind: str) -> int:
    return {"mutations": 1, "cna-segments": 0, "clinical": 0, "subjects": 0}.get(kind, 0)


#: Variants that break the file's structure (refused, mostly before any suite runs).
BROKEN = ("junk", "empty", "header_only", "delimiter", "ragged", "gzip_truncated", "gzip_junk")
#: Variants that keep the structure but put odd values in it (often accepted).
ODD = ("unicode", "unicode_header", "enormous", "enormous_number", "injection")


def omics_cases(variants: tuple[str, ...]) -> st.SearchStrategy[OmicsCase]:
    kinds = st.sampled_from(sorted(TEMPLATES))
    small = st.integers(0, 50)
    odd = st.one_of(
        st.sampled_from(ODD_TEXT),
        st.text(st.characters(codec="utf-8"), min_size=1, max_size=30),
        st.lists(st.sampled_from(ODD_TEXT), min_size=1, max_size=4).map("".join),
    )
    names = st.sampled_from(["", "", "sample; drop table x", "$(rm -rf ~)", "ünïcødé 🧬", "a'b\"c"])
    junk = st.binary(max_size=3000)
    build = {
        "junk": st.builds(OmicsCase, kinds, st.just("junk"), junk=junk, name=names),
        "empty": st.builds(OmicsCase, kinds, st.just("empty"), name=names),
        "header_only": st.builds(OmicsCase, kinds, st.just("header_only"), name=names),
        "delimiter": st.builds(OmicsCase, kinds, st.just("delimiter"), small, small),
        "ragged": st.builds(OmicsCase, kinds, st.just("ragged"), small, small),
        "gzip_truncated": st.builds(
            OmicsCase, kinds, st.just("gzip_truncated"), st.integers(0, 9999)
        ),
        "gzip_junk": st.builds(
            OmicsCase, kinds, st.just("gzip_junk"), junk=st.binary(max_size=200)
        ),
        "unicode": st.builds(OmicsCase, kinds, st.just("unicode"), small, small, odd),
        "unicode_header": st.builds(OmicsCase, kinds, st.just("unicode_header"), small, small, odd),
        "enormous": st.builds(OmicsCase, kinds, st.just("enormous"), small, small),
        "enormous_number": st.builds(OmicsCase, kinds, st.just("enormous_number"), small, small),
        "injection": st.builds(
            OmicsCase, kinds, st.just("injection"), text=st.sampled_from(INJECTIONS)
        ),
    }
    return st.one_of(*(build[v] for v in variants))


@given(case=omics_cases(BROKEN))
@example(case=OmicsCase("expression", "gzip_junk", junk=b"not gzip"))
@example(case=OmicsCase("cna-segments", "ragged", row=0, col=1))  # NULL start, end, seg.mean
@example(case=OmicsCase("mutations", "ragged", row=0, col=3))  # NULL Start_Position
def _omics_broken(env: Env, case: OmicsCase) -> None:
    _omics(env, case)


@given(case=omics_cases(ODD))
@example(case=OmicsCase("mutations", "enormous_number", row=0, col=5))
@example(case=OmicsCase("expression", "unicode", row=0, col=0, text=""))  # no gene id
@example(case=OmicsCase("cna-gene", "unicode", row=0, col=2, text="\t"))  # a field too many
@example(case=OmicsCase("mutations", "unicode", row=0, col=5, text="1e308"))  # beyond int64
@example(case=OmicsCase("expression", "unicode", row=0, col=1, text="9" * 400))  # huge length
@example(case=OmicsCase("expression", "unicode", row=0, col=2, text="1e308"))  # TPM overflows
@example(case=OmicsCase("rsem", "unicode", row=0, col=4, text="1e308"))
@example(case=OmicsCase("methylation", "unicode", row=0, col=1, text="inf"))
@example(case=OmicsCase("clinical", "injection", text="'; drop table mutations; --"))
@example(case=OmicsCase("mutations", "injection", text="../../etc/passwd"))
def _omics_odd(env: Env, case: OmicsCase) -> None:
    _omics(env, case)


def _omics(env: Env, case: OmicsCase) -> None:
    TRIED["omics"] += 1
    folder = env.work / "omics" / str(TRIED["omics"])
    folder.mkdir(parents=True)
    path = folder / case.file_name()
    path.write_bytes(case.content())
    argv = ["ingest", "omics", str(path), "--kind", case.kind]
    if case.kind == "rsem" and case.variant == "injection":
        argv.append(f"--sample-id={case.text}")
    outcome = check_cli(env, argv)
    if outcome.code == 1:
        assert_clean_failure(outcome, str(path))
        return
    if case.variant == "injection":  # accepted: stored verbatim, SQL unharmed
        table, column = ID_TABLE[case.kind]
        literal = case.text.replace("'", "''")
        found = env.catalog.sql(f"select count(*) as n from {table} where {column} = '{literal}'")
        assert found["n"].iloc[0] >= 1, f"{case.text!r} not stored verbatim in {table}.{column}"


# --------------------------------------------------------------------------- settings

ABSURD: list[Any] = [0, -1, -25.5, 0.0, 1e-300, 1e308, float("inf"), float("-inf"), float("nan"),
                     10**30, 2**63, "25", "", None, [], {}, True, [-1, -1, -1], [0, 0, 0],
                     [1, "a"], {"a": 1}, "🧬"]  # fmt: skip
SETTING_KEYS = ["binWidth", "binCount", "label", "resegmentRange", "resampledPixelSpacing",
                "interpolator", "normalize", "convention", "binwidth", "bin_width", "voxelSize"]  # fmt: skip

MALFORMED_YAML = [
    "setting: [",
    "setting:\n\tbinWidth: 25",  # a tab in the indentation
    "{{{{",
    "setting: {binWidth: 25",
    "!!python/object/apply:os.system ['echo pwned']",
    "a: &x [*x]",
    "- just\n- a\n- list",
    "just a string",
    "setting: !!binary 'AAAA'",
    "? [1, 2]\n: complex key",
    "setting: [[1]]",
    "setting: 5",
    "setting: [binWidth, 25]",
    "imageType: [Original]",
    "featureClass: firstorder",
    "setting:\n  binWidth: 25\nsetting:\n  binWidth: 5",
    "[" * 3000 + "]" * 3000,  # nesting deeper than the recursion limit
    "\x00setting: 1",
    "setting: {binCount: 100000000000}",
    "setting: {binWidth: .nan}",
    "setting: {binWidth: .inf}",
    "setting: {binWidth: 1e-300}",
]


def settings_documents() -> st.SearchStrategy[bytes]:
    value = st.one_of(st.sampled_from(ABSURD), st.integers(), st.floats(), st.text(max_size=10))
    setting = st.dictionaries(st.sampled_from(SETTING_KEYS), value, max_size=3)
    document = st.fixed_dictionaries(
        {},
        optional={
            "setting": st.one_of(setting, value),
            "imageType": st.one_of(
                st.dictionaries(st.sampled_from(["Original", "LoG", "Wavelet", "x"]),
                                st.one_of(st.none(), st.just({}), value), max_size=2),
                value,
            ),
            "featureClass": st.one_of(
                st.dictionaries(st.sampled_from(["firstorder", "glcm", "shape"]),
                                st.one_of(st.none(), st.lists(st.text(max_size=8), max_size=3), value),
                                max_size=2),
                value,
            ),
            "convention": st.one_of(st.sampled_from(["ibsi", "pyradiomics", ""]), value),
            "unknownKey": value,
        },
    )  # fmt: skip
    dumped = document.map(lambda d: yaml.safe_dump(d, allow_unicode=True).encode())
    raw = st.one_of(
        st.sampled_from(MALFORMED_YAML).map(str.encode),
        st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.binary(max_size=200),
    )
    return st.one_of(dumped, raw)


@given(document=settings_documents())
@example(document=b"\xff\xfe binWidth: 25")  # not UTF-8
@example(document=("[" * 3000 + "]" * 3000).encode())
@example(document=b"setting: [[1]]")
@example(document=b"setting: 5")
@example(document=b"setting: {binCount: 100000000000}")
@example(document=b"setting: {binWidth: 0}")
@example(document=b"setting: {binWidth: -25}")
@example(document=b"setting: {resampledPixelSpacing: [-1, -1, -1]}")
@example(document=b"setting: {label: -1}")
def _settings(env: Env, document: bytes) -> None:
    TRIED["settings"] += 1
    path = env.work / "settings" / f"{TRIED['settings']}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(document)
    try:
        accepted = load_settings(path)
    except ConfigError:
        accepted = None
    outcome = check_cli(
        env, ["features", "compute", "--config", str(path), "--quiet", "--scheduler", env.scheduler]
    )
    assert outcome.code == 1, outcome  # the module catalog has no ROIs: nothing to compute
    if accepted is None:
        assert_clean_failure(outcome, str(path))
        return
    # accepted settings must be sane ones; the command then stops at the missing ROIs
    line = assert_clean_failure(outcome, "rois")
    assert line.startswith("NotFoundError: rois"), line
    cfg = accepted.setting
    assert cfg.label >= 1
    if cfg.bin_width is not None:
        assert np.isfinite(cfg.bin_width), cfg
        assert cfg.bin_width > 0, cfg
    if cfg.bin_count is not None:
        assert 1 <= cfg.bin_count <= MAX_BIN_COUNT, cfg


# --------------------------------------------------------------------------- the tests

_FAST = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True)


def test_hostile_dicom_in_process(env: Env) -> None:
    """read_headers + assemble_series (what the Dask tasks run) never raise on a broken slice.

    First every truncation of the header (each byte offset up to the pixel data: pydicom
    raised struct.error and BytesLengthException there), then Hypothesis.
    """
    valid = env.series[1].read_bytes()
    cut = env.work / "truncated.dcm"
    for end in range(_find(walk(valid), (0x7FE0, 0x0010)).value_at + 8):
        TRIED["dicom truncation sweep"] += 1
        cut.write_bytes(valid[:end])
        check_headers(read_headers([str(cut)]), str(cut))
    first = TRIED["dicom"]
    settings(_FAST, max_examples=160)(_dicom_in_process)(env)
    assert TRIED["dicom"] - first >= 120


def test_hostile_omics_broken_structure(env: Env) -> None:
    """Junk, empty, header-only, wrong delimiters, ragged rows, broken gzip: one line, no change."""
    first = TRIED["omics"]
    settings(_FAST, max_examples=56)(_omics_broken)(env)
    assert TRIED["omics"] - first >= 59


def test_hostile_dicom_through_the_cli(env: Env) -> None:
    """Folders of fresh series, each with one broken slice: one ``radgen ingest dicom`` each."""
    first = TRIED["dicom"]
    # 3 examples of at least 10 files each: the count below holds whatever Hypothesis draws
    settings(_FAST, max_examples=3)(_dicom_through_the_cli)(env)
    assert TRIED["dicom"] - first >= 30


def test_hostile_omics_odd_values(env: Env) -> None:
    """Unicode, 1 MB cells, injection-looking ids in valid files: stored verbatim or refused."""
    first = TRIED["omics"]
    # text in a clinical column an earlier file filled with numbers: was a deltalake cast
    # error (a traceback); now one line naming the file, the column and the value
    folder = env.work / "omics" / "clinical-types"
    folder.mkdir(parents=True)
    for i, (value, code) in enumerate([("1.5", 0), ("A" * BIG, 1), ("7", 0), ("x", 1)]):
        TRIED["omics"] += 1
        path = folder / f"{i}.tsv"
        path.write_text(f"PATIENT_ID\tHX_SCORE\nTCGA-HX-{50 + i:04d}\t{value}\n")
        outcome = check_cli(env, ["ingest", "omics", str(path), "--kind", "clinical"])
        assert outcome.code == code, outcome.err[:300]
        if code:
            assert "'hx_score'" in assert_clean_failure(outcome, str(path))
    settings(_FAST, max_examples=28)(_omics_odd)(env)
    assert TRIED["omics"] - first >= 41


def test_hostile_settings(env: Env) -> None:
    """``features compute --config``: bad settings are one line naming the file, no new version."""
    first = TRIED["settings"]
    settings(_FAST, max_examples=25)(_settings)(env)
    assert TRIED["settings"] - first >= 30
