"""De-identification: no identifying value of the input anywhere under the root, keyed and
stable pseudonyms, shifted dates that keep intervals, and ``--no-deid`` keeping everything."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pydicom
import pytest
from distributed import Client

from radgen.cli import main
from radgen.demo import write_ct_series, write_nifti_mask
from radgen.ingestion.deid import Deidentifier
from radgen.ingestion.ingest_dicom import ingest_dicom
from radgen.platform.catalog import Catalog

SPACING = (2.0, 0.8, 0.8)

PHI = {
    "PatientID": "MRN-77889911",
    "PatientName": "Wolfeschlegel^Hubertina",
    "PatientBirthDate": "19610203",
    "AccessionNumber": "ACC-55443322",
    "PatientAddress": "42 Quarrington Lane, Exampleton",
    "ReferringPhysicianName": "Brightwater^Ottoline",
    "OtherPatientIDs": "OTHER-99887766",
    "InstitutionName": "Saint Exampleton Infirmary",
}


def _identified_series(
    folder: Path, seed: int, patient_id: str = PHI["PatientID"]
) -> tuple[str, list[Path], np.ndarray]:
    """A CT series whose headers, description and folder name carry identifying values."""
    truth = np.random.default_rng(seed).integers(-500, 500, (4, 8, 8)).astype(float)
    uid, paths, affine = write_ct_series(
        folder, truth, spacing=SPACING, seed=seed, patient={"patient_id": patient_id}
    )
    for path in paths:
        ds = pydicom.dcmread(path)
        for keyword, value in PHI.items():
            setattr(ds, keyword, patient_id if keyword == "PatientID" else value)
        ds.SeriesDescription = "CHEST Wolfeschlegel followup"
        ds.save_as(path)
    return uid, paths, affine


def _phi_values() -> list[str]:
    values = {
        *PHI.values(),
        *PHI["PatientName"].split("^"),
        *PHI["ReferringPhysicianName"].split("^"),
    }
    return sorted(values)


def _everything_under(root: Path) -> str:
    """Every byte under the root as text, plus the decoded cells of every Parquet file."""
    texts = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        texts.append(path.relative_to(root).as_posix())
        texts.append(path.read_bytes().decode("latin-1"))
        if path.suffix == ".parquet":  # compressed pages hide strings from a byte scan
            texts.append(json.dumps(pq.read_table(path).to_pylist(), default=str))
    return "\n".join(texts)


def test_no_identifying_value_anywhere_under_the_root(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # folders and files named after the patient, as PACS exports and converters write them
    inbox = tmp_path / "inbox" / PHI["PatientID"]
    _, _, affine = _identified_series(inbox / "ct", seed=1)
    (inbox / f"{PHI['PatientID']}-report.txt").write_text("not DICOM")
    broken = tmp_path / "inbox" / PHI["PatientID"] / "broken"
    _identified_series(broken, seed=2)[1][1].unlink()  # a missing slice: folder quarantined
    root = tmp_path / "cat"
    assert main(["init", "--catalog", str(root)]) == 0
    capsys.readouterr()
    args = ["ingest", "dicom", str(tmp_path / "inbox"), "--catalog", str(root), "--json"]
    assert main(args) == 0
    stdout = capsys.readouterr().out
    report = json.loads(stdout)
    assert len(report["series"]) == 1
    assert len(report["quarantined"]) == 2
    mask = np.zeros((4, 8, 8), dtype=np.uint8)
    mask[1:3, 2:6, 2:6] = 1
    write_nifti_mask(tmp_path / "seg" / f"{PHI['PatientID']}_tumour.nii.gz", mask, affine)
    assert main(["ingest", "masks", str(tmp_path / "seg"), "--catalog", str(root), "--json"]) == 0
    masks_out = capsys.readouterr().out
    assert json.loads(masks_out)["rois"][0]["n_voxels"] == 32
    stdout += masks_out
    scanned = _everything_under(root) + stdout
    for value in _phi_values():
        assert value not in scanned, f"{value!r} found under the root"
    # the key stays in its config file: in no table, attribute or output
    key = json.loads((root / "config" / "deid.json").read_text())["key"]
    outside = "\n".join(
        p.read_bytes().decode("latin-1")
        for p in root.rglob("*")
        if p.is_file() and p.name != "deid.json"
    )
    assert key not in outside
    assert key not in stdout
    assert repr(Deidentifier(bytes.fromhex(key))) == "Deidentifier(key=<hidden>)"
    # what is kept: the pseudonym in place of the patient id, the cleaned description
    catalog = Catalog.open(str(root))
    deid = Deidentifier.for_root(catalog.root)
    row = catalog.sql("select subject_id, series_description, deidentification from series")
    assert row["subject_id"].tolist() == [deid.subject(PHI["PatientID"])]
    assert row["series_description"].tolist() == ["CHEST [redacted] followup"]
    assert "PS3.15" in row["deidentification"].iloc[0]
    paths = catalog.sql("select source_path from instances")["source_path"]
    assert all(deid.subject(PHI["PatientID"]) in p for p in paths)


def test_pseudonyms_are_keyed_and_stable_across_runs(client: Client, tmp_path: Path) -> None:
    first = Catalog.init(str(tmp_path / "a"))
    other = Catalog.init(str(tmp_path / "b"))
    a1, _, _ = _identified_series(tmp_path / "s1", seed=3)
    a2, _, _ = _identified_series(tmp_path / "s2", seed=4)  # the same patient, a later exam
    for catalog, folder in ((first, "s1"), (first, "s2"), (other, "s1")):
        with catalog.run("ingest dicom", {"paths": [folder]}) as run:
            ingest_dicom(run, [tmp_path / folder], client)
    subjects = first.sql("select distinct subject_id from series")["subject_id"].tolist()
    assert len(subjects) == 1
    assert re.fullmatch(r"sub-[0-9a-f]{16}", subjects[0])
    # another catalog has another key: the same patient is not linkable across them
    assert other.sql("select subject_id from series")["subject_id"].iloc[0] != subjects[0]
    # keyed UIDs are valid DICOM UIDs and reach the original through the catalog's key
    for uid in (a1, a2):
        stored = first.series_uid(uid)
        assert stored != uid
        assert stored.startswith("2.25.")
        assert len(stored) <= 64
        assert re.fullmatch(r"[0-9.]+", stored)


def test_a_shared_key_links_catalogs(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RADGEN_DEID_KEY", "ab" * 32)
    _identified_series(tmp_path / "s", seed=5)
    ids = []
    for name in ("x", "y"):
        catalog = Catalog.init(str(tmp_path / name))
        with catalog.run("ingest dicom", {}) as run:
            ingest_dicom(run, [tmp_path / "s"], client)
        ids.append(catalog.sql("select subject_id from series")["subject_id"].iloc[0])
    assert ids[0] == ids[1] == Deidentifier(bytes.fromhex("ab" * 32)).subject(PHI["PatientID"])


def test_dates_move_by_one_shift_per_subject(client: Client, tmp_path: Path) -> None:
    catalog = Catalog.init(str(tmp_path / "cat"))
    recorded = {}
    for seed in (6, 7):
        uid, _, _ = _identified_series(tmp_path / f"s{seed}", seed=seed)
        ds = pydicom.dcmread(next((tmp_path / f"s{seed}").glob("*.dcm")))
        when = dt.datetime.strptime(ds.SeriesDate + ds.SeriesTime, "%Y%m%d%H%M%S")
        recorded[Deidentifier.for_root(catalog.root).uid(uid)] = when.replace(tzinfo=dt.UTC)
    with catalog.run("ingest dicom", {}) as run:
        ingest_dicom(run, [tmp_path / "s6", tmp_path / "s7"], client)
    stored = catalog.sql("select series_uid, acquired_at from series")
    shifts = {
        uid: recorded[uid] - when.to_pydatetime()
        for uid, when in zip(stored["series_uid"], stored["acquired_at"], strict=True)
    }
    assert len(set(shifts.values())) == 1  # one shift: intervals between exams survive
    shift = next(iter(shifts.values()))
    assert dt.timedelta(days=1) <= shift <= dt.timedelta(days=365)
    assert shift == Deidentifier.for_root(catalog.root).date_shift(PHI["PatientID"])


def test_no_deid_keeps_the_identifiers(tmp_path: Path) -> None:
    uid, _, _ = _identified_series(tmp_path / "s", seed=8)
    root = str(tmp_path / "cat")
    assert (
        main(["ingest", "dicom", str(tmp_path / "s"), "--catalog", root, "--no-deid", "--quiet"])
        == 1
    )
    assert main(["init", "--catalog", root]) == 0
    assert (
        main(["ingest", "dicom", str(tmp_path / "s"), "--catalog", root, "--no-deid", "--quiet"])
        == 0
    )
    row = Catalog.open(root).sql("select series_uid, subject_id, deidentification from series")
    assert row.to_dict("records") == [
        {"series_uid": uid, "subject_id": PHI["PatientID"], "deidentification": None}
    ]
