"""Point-in-time datasets: each subject gets the latest scan and omics sample before `as_of`.

The cohort is built so that leaking the future changes the answer: subject P1 was scanned in
2020 and 2023 and sampled in 2019 (TP53 wild-type) and 2022 (TP53 mutated, after a
treatment); as of 2021-06-01 the right row is the 2020 scan with the wild-type sample.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pydicom
import pytest

from radgen.errors import ConfigError, ValidationFailed
from radgen.ingestion.dicom import acquisition_time
from radgen.platform.catalog import Catalog
from radgen.platform.datasets import publish_dataset

# the pattern documented in docs/guide.md (point-in-time datasets)
LATEST_BEFORE = """
with f as (
  select * from scans where acquired_at <= getvariable('as_of')
  qualify row_number() over (partition by subject_id order by acquired_at desc) = 1
), s as (
  select * from subjects where collected_at <= getvariable('as_of')
  qualify row_number() over (partition by subject_id order by collected_at desc) = 1
)
select f.subject_id, f.acquired_at, f.stat_mean, s.sample_id, s.collected_at, g.mutated
from f join s using (subject_id)
join gene_mutation g on g.sample_id = s.sample_id and g.gene = 'TP53'
order by f.subject_id
"""

ASOF_PER_SCAN = """
select f.subject_id, f.acquired_at, s.sample_id
from scans f asof join subjects s
  on f.subject_id = s.subject_id and s.collected_at <= f.acquired_at
order by f.subject_id, f.acquired_at
"""


def _utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


@pytest.fixture
def cohort(catalog: Catalog) -> Catalog:
    scans = pd.DataFrame(
        {
            "subject_id": ["P1", "P1", "P2"],
            "roi_id": ["P1-2020", "P1-2023", "P2-2021"],
            "acquired_at": [_utc("2020-03-01"), _utc("2023-02-01"), _utc("2021-01-10")],
            "stat_mean": [10.0, 30.0, 20.0],
        }
    )
    subjects = pd.DataFrame(
        {
            "sample_id": ["P1-S1", "P1-S2", "P2-S1"],
            "patient_id": ["P1", "P1", "P2"],
            "subject_id": ["P1", "P1", "P2"],
            "collected_at": [_utc("2019-11-05"), _utc("2022-07-01"), _utc("2020-12-01")],
            "rule": "mapping test",
            "run_id": "seed",
        }
    )
    mutated = pd.DataFrame(
        {
            "sample_id": ["P1-S1", "P1-S2", "P2-S1"],
            "patient_id": ["P1", "P1", "P2"],
            "gene": "TP53",
            "mutated": [False, True, True],
            "n_variants": [0, 1, 1],
            "run_id": "seed",
        }
    )
    with catalog.run("seed", {}) as run:
        run.commit("scans", scans, suite=None)
        run.commit("subjects", subjects, suite="omics", mode="overwrite")
        run.commit("gene_mutation", mutated, suite="omics")
    return catalog


def _publish(catalog: Catalog, sql: str, as_of: str | None) -> pd.DataFrame:
    with catalog.run("datasets publish", {}) as run:
        manifest = publish_dataset(run, "pit", sql, as_of=as_of)
    return catalog.dataset("pit", manifest["version"])


def test_as_of_takes_the_latest_scan_and_sample_before_the_date(cohort: Catalog) -> None:
    rows = _publish(cohort, LATEST_BEFORE, "2021-06-01").set_index("subject_id")
    assert rows.loc["P1", "stat_mean"] == 10.0  # the 2020 scan, not the 2023 one
    assert rows.loc["P1", "sample_id"] == "P1-S1"
    assert not rows.loc["P1", "mutated"]  # the 2022 mutation is in the future
    assert rows.loc["P2", "sample_id"] == "P2-S1"
    assert (rows["acquired_at"] <= _utc("2021-06-01")).all()
    assert (rows["collected_at"] <= _utc("2021-06-01")).all()
    # leakage would have changed the answer: today the latest data says P1 is mutated
    today = _publish(cohort, LATEST_BEFORE, "2030-01-01").set_index("subject_id")
    assert today.loc["P1", "mutated"]
    assert today.loc["P1", "stat_mean"] == 30.0
    # before anything was measured there is no row at all, and an empty dataset is refused
    with pytest.raises(ValidationFailed, match="RowCount"):
        _publish(cohort, LATEST_BEFORE, "2019-01-01")


def test_asof_join_gives_each_scan_the_sample_collected_before_it(cohort: Catalog) -> None:
    rows = cohort.sql(ASOF_PER_SCAN)
    assert rows["sample_id"].tolist() == ["P1-S1", "P1-S2", "P2-S1"]


def test_as_of_is_recorded_and_required(cohort: Catalog) -> None:
    with cohort.run("datasets publish", {}) as run:
        manifest = publish_dataset(run, "pit", LATEST_BEFORE, as_of="2021-06-01")
    assert manifest["as_of"] == "2021-06-01T00:00:00+00:00"
    with cohort.run("datasets publish", {}) as run:  # same query, other date: a new version
        again = publish_dataset(run, "pit", LATEST_BEFORE, as_of="2022-06-01")
    assert again["version"] == manifest["version"] + 1
    with (
        pytest.raises(ConfigError, match="give --as-of"),
        cohort.run("datasets publish", {}) as run,
    ):
        publish_dataset(run, "pit", LATEST_BEFORE)
    with pytest.raises(ConfigError, match="ISO"), cohort.run("datasets publish", {}) as run:
        publish_dataset(run, "pit", LATEST_BEFORE, as_of="last tuesday")


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({"AcquisitionDateTime": "20200301101530.25", "StudyDate": "20190101"}, "2020-03-01T10:15:30.250000"),
        ({"AcquisitionDate": "20200301", "AcquisitionTime": "0915", "SeriesDate": "20190101"}, "2020-03-01T09:15:00"),
        ({"SeriesDate": "20200302", "SeriesTime": "101500", "StudyDate": "20190101"}, "2020-03-02T10:15:00"),
        ({"StudyDate": "20200303"}, "2020-03-03T00:00:00"),
        ({"StudyDate": "2020.03.04", "StudyTime": "10:15:00"}, "2020-03-04T10:15:00"),
        ({"StudyDate": "not a date"}, None),
        ({}, None),
    ],
)  # fmt: skip
@pytest.mark.filterwarnings("ignore:Invalid value for VR")  # pydicom on the malformed cases
def test_acquisition_time_from_dicom_dates(tags: dict[str, str], expected: str | None) -> None:
    ds = pydicom.Dataset()
    for keyword, value in tags.items():
        setattr(ds, keyword, value)
    got = acquisition_time(ds)
    want = None if expected is None else dt.datetime.fromisoformat(expected).replace(tzinfo=dt.UTC)
    assert got == want
