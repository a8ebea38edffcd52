"""Omics parsers against real third-party files (see /work/shared/data/omics/README.md).

Expected values come from two independent places: the counts stated in the data README
(provenance of each file) and the raw files re-read here with the standard-library ``csv``
module, never through pandas or the parser under test.
"""

from __future__ import annotations

import csv
import gzip
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from radgen.errors import InputError
from radgen.ingestion.omics import (
    gene_mutation_matrix,
    parse_clinical,
    parse_maf,
    parse_methylation,
    parse_rsem,
    parse_seg,
    patient_ids,
)

#: Nonsynonymous classes, copied from the default ``vc_nonSyn`` of maftools ``read.maf``
#: (PoisonAlien/maftools, R/read_maf.R) -- an independent list, not radgen's NONSYNONYMOUS.
MAFTOOLS_VC_NONSYN = {
    "Frame_Shift_Del",
    "Frame_Shift_Ins",
    "Splice_Site",
    "Translation_Start_Site",
    "Nonsense_Mutation",
    "Nonstop_Mutation",
    "In_Frame_Del",
    "In_Frame_Ins",
    "Missense_Mutation",
}

#: Missing-value markers of the cBioPortal file formats documentation (plus the empty cell).
CBIO_MISSING = {"", "NA", "[Not Available]", "[Not Applicable]", "[Unknown]"}

ES0 = "omics/cbioportal_study_es_0"
FIX = "omics/cbioportal_validator_fixtures"
MAFTOOLS = "omics/maftools_extdata"


# --------------------------------------------------------------------------- csv helpers


def _lines(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="") as handle:
        return handle.read().splitlines()


def read_tsv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of a tab-separated file; only whole lines starting with ``#`` skipped."""
    body = [line for line in _lines(path) if not line.startswith("#")]
    reader = csv.reader(body, delimiter="\t")
    header = next(reader)
    rows = [dict(zip(header, values, strict=True)) for values in reader]
    return header, rows


def write_tsv(path: Path, header: list[str], rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(header)
        writer.writerows([[row.get(col, "") for col in header] for row in rows])
    return path


def _count(value: str) -> int | None:
    return None if value.strip() in CBIO_MISSING else int(value)


def _vaf(ref: str, alt: str) -> float | None:
    """t_alt / (t_alt + t_ref) from the raw MAF cells; None if a count is missing or depth 0."""
    r, a = _count(ref), _count(alt)
    if r is None or a is None or r + a == 0:
        return None
    return a / (r + a)


def _nullable(values: pd.Series) -> list[float | None]:
    return [None if pd.isna(v) else float(v) for v in values]


# --------------------------------------------------------------------------- MAF


def test_maf_cbioportal_rows_and_samples(shared_data: Path) -> None:
    path = shared_data / ES0 / "data_mutations_extended.maf"
    _, rows = read_tsv(path)
    # README: "36 variants, 21 samples"; the csv re-read must agree before we trust it.
    assert len(rows) == 36
    assert len({r["Tumor_Sample_Barcode"] for r in rows}) == 21

    maf = parse_maf(str(path))

    assert len(maf) == 36
    assert maf["sample_id"].nunique() == 21
    assert list(maf["sample_id"]) == [r["Tumor_Sample_Barcode"] for r in rows]
    assert list(maf["gene"]) == [r["Hugo_Symbol"] for r in rows]
    assert list(maf["variant_classification"]) == [r["Variant_Classification"] for r in rows]
    assert list(maf["start"]) == [int(r["Start_Position"]) for r in rows]
    assert list(maf["end"]) == [int(r["End_Position"]) for r in rows]


def test_maf_cbioportal_vaf_from_raw_counts(shared_data: Path) -> None:
    path = shared_data / ES0 / "data_mutations_extended.maf"
    _, rows = read_tsv(path)

    maf = parse_maf(str(path))

    # The file leaves t_ref_count/t_alt_count empty in every row, so every vaf is NULL.
    assert _nullable(maf["vaf"]) == [_vaf(r["t_ref_count"], r["t_alt_count"]) for r in rows]
    assert maf["vaf"].isna().all()


def test_maf_vaf_with_real_read_counts(shared_data: Path, tmp_path: Path) -> None:
    # The same study stores its real tumour read counts in the Firehose-era columns
    # tumor_ref_reads / tumors_var_reads; copy them into the standard MAF count columns.
    header, rows = read_tsv(shared_data / ES0 / "data_mutations_extended.maf")
    for row in rows:
        row["t_ref_count"] = row["tumor_ref_reads"]
        row["t_alt_count"] = row["tumors_var_reads"]
    path = write_tsv(tmp_path / "counts.maf", header, rows)
    expected = [_vaf(r["t_ref_count"], r["t_alt_count"]) for r in rows]
    assert sum(v is not None for v in expected) == 10  # rows 1-10 carry counts in the file

    maf = parse_maf(str(path))

    got = _nullable(maf["vaf"])
    assert [v is None for v in got] == [v is None for v in expected]
    assert [v for v in got if v is not None] == pytest.approx(
        [v for v in expected if v is not None], rel=1e-12
    )
    assert list(maf["t_alt_count"].astype("float64").fillna(-1)) == [
        -1 if (c := _count(r["t_alt_count"])) is None else c for r in rows
    ]


def test_maf_vaf_null_when_depth_zero(tmp_path: Path) -> None:
    header = ["Hugo_Symbol", "Tumor_Sample_Barcode", "Variant_Classification"]
    header += ["Chromosome", "Start_Position", "t_ref_count", "t_alt_count"]
    base = {"Hugo_Symbol": "TP53", "Variant_Classification": "Missense_Mutation"}
    base |= {"Chromosome": "17", "Start_Position": "7578253"}
    rows = [
        base | {"Tumor_Sample_Barcode": "S1", "t_ref_count": "0", "t_alt_count": "0"},
        base | {"Tumor_Sample_Barcode": "S2", "t_ref_count": "30", "t_alt_count": "10"},
    ]
    path = write_tsv(tmp_path / "depth.maf", header, rows)

    maf = parse_maf(str(path))

    # 0 / (0 + 0) is undefined -> NULL (parse_maf docstring); 10 / 40 = 0.25 by hand.
    assert _nullable(maf["vaf"]) == [None, 0.25]


def test_gene_mutation_matrix_cbioportal_silent(shared_data: Path) -> None:
    path = shared_data / ES0 / "data_mutations_extended.maf"
    _, rows = read_tsv(path)
    silent = {
        (r["Tumor_Sample_Barcode"], r["Hugo_Symbol"])
        for r in rows
        if r["Variant_Classification"] == "Silent"
    }
    hits = Counter(
        (r["Tumor_Sample_Barcode"], r["Hugo_Symbol"])
        for r in rows
        if r["Variant_Classification"] in MAFTOOLS_VC_NONSYN
    )
    samples = {r["Tumor_Sample_Barcode"] for r in rows}
    genes = {r["Hugo_Symbol"] for r in rows}
    assert len(silent) == 2  # README: "2 Silent"

    matrix = gene_mutation_matrix(parse_maf(str(path)))

    assert len(matrix) == len(samples) * len(genes)
    assert not matrix.duplicated(["sample_id", "gene"]).any()
    by_cell = matrix.set_index(["sample_id", "gene"])
    for cell in silent:
        assert bool(by_cell.loc[cell, "mutated"]) is (cell in hits)
    mutated = {tuple(k) for k in matrix.loc[matrix["mutated"], ["sample_id", "gene"]].to_numpy()}
    assert mutated == set(hits)
    assert {k: int(v) for k, v in by_cell.loc[list(hits), "n_variants"].items()} == dict(hits)
    # A sample whose only variants are silent is still a sequenced sample with all-False rows.
    only_silent = {s for s, _ in silent} - {s for s, _ in hits}
    for sample in only_silent:
        assert not matrix.loc[matrix["sample_id"] == sample, "mutated"].any()


def test_gene_mutation_matrix_some_silent_fixture(shared_data: Path) -> None:
    path = shared_data / FIX / "data_mutations_some_silent.maf"
    _, rows = read_tsv(path)
    not_counted = {
        r["Hugo_Symbol"] for r in rows if r["Variant_Classification"] not in MAFTOOLS_VC_NONSYN
    }
    assert not_counted == {"CADM2", "KAT2A", "P2RY10"}  # 5'Flank, Silent, Silent in the file

    matrix = gene_mutation_matrix(parse_maf(str(path)))

    assert len(matrix) == len({r["Hugo_Symbol"] for r in rows})  # one sample in the file
    assert set(matrix.loc[~matrix["mutated"], "gene"]) == not_counted
    assert (
        set(matrix.loc[matrix["mutated"], "gene"]) == {r["Hugo_Symbol"] for r in rows} - not_counted
    )
    assert (matrix.loc[~matrix["mutated"], "n_variants"] == 0).all()


def test_gene_mutation_matrix_silent_next_to_missense(shared_data: Path, tmp_path: Path) -> None:
    # No shipped file has a silent and a nonsynonymous variant in the same sample/gene, so add
    # a Silent copy (another position) of the real OR11H1 missense row of the fixture.
    header, rows = read_tsv(shared_data / FIX / "data_mutations_some_silent.maf")
    missense = next(r for r in rows if r["Hugo_Symbol"] == "OR11H1")
    assert missense["Variant_Classification"] == "Missense_Mutation"
    silent = missense | {"Variant_Classification": "Silent", "Start_Position": "16449600"}
    silent["End_Position"] = "16449600"
    path = write_tsv(tmp_path / "silent_and_missense.maf", header, [*rows, silent])

    matrix = gene_mutation_matrix(parse_maf(str(path))).set_index("gene")

    assert bool(matrix.loc["OR11H1", "mutated"]) is True
    assert int(matrix.loc["OR11H1", "n_variants"]) == 1  # the silent copy does not count
    assert bool(matrix.loc["KAT2A", "mutated"]) is False  # silent only


@pytest.fixture(scope="module")
def laml(shared_data: Path) -> tuple[list[dict[str, str]], pd.DataFrame]:
    path = shared_data / MAFTOOLS / "tcga_laml.maf.gz"
    _, rows = read_tsv(path)
    return rows, parse_maf(str(path))


def test_maf_laml_counts_and_null_vaf(laml: tuple[list[dict[str, str]], pd.DataFrame]) -> None:
    rows, maf = laml
    # README: "2207 variants, 193 samples", 17 columns without read counts.
    assert len(rows) == 2207
    assert "t_alt_count" not in rows[0]
    assert "t_ref_count" not in rows[0]

    assert len(maf) == 2207
    assert maf["sample_id"].nunique() == 193
    assert maf["vaf"].isna().all()
    assert maf["t_alt_count"].isna().all()


def test_maf_laml_patient_is_first_three_barcode_fields(
    laml: tuple[list[dict[str, str]], pd.DataFrame],
) -> None:
    rows, maf = laml
    # TCGA barcode layout (GDC docs): project-TSS-participant[-sample...].
    expected = ["-".join(r["Tumor_Sample_Barcode"].split("-")[:3]) for r in rows]

    assert list(maf["patient_id"]) == expected


def test_maf_laml_end_position_from_file(laml: tuple[list[dict[str, str]], pd.DataFrame]) -> None:
    rows, maf = laml
    # The maftools file spells the column "End_position" (TCGA MAF 2.x spelling); 169 INS/DEL
    # rows end after they start (e.g. row 50, AKAP13 DEL 86262345-86262351).
    expected = [int(r["End_position"]) for r in rows]
    assert sum(int(r["Start_Position"]) != e for r, e in zip(rows, expected, strict=True)) == 169

    assert list(maf["end"]) == expected


def test_gene_mutation_matrix_laml(laml: tuple[list[dict[str, str]], pd.DataFrame]) -> None:
    rows, maf = laml
    hits = Counter(
        (r["Tumor_Sample_Barcode"], r["Hugo_Symbol"])
        for r in rows
        if r["Variant_Classification"] in MAFTOOLS_VC_NONSYN
    )
    silent = {
        (r["Tumor_Sample_Barcode"], r["Hugo_Symbol"])
        for r in rows
        if r["Variant_Classification"] == "Silent"
    }
    samples = {r["Tumor_Sample_Barcode"] for r in rows}
    genes = {r["Hugo_Symbol"] for r in rows}
    silent_only = silent - set(hits)
    assert len(silent_only) == len(silent)  # no LAML sample/gene has silent + nonsynonymous

    matrix = gene_mutation_matrix(maf)

    assert len(matrix) == len(samples) * len(genes)
    mutated = {tuple(k) for k in matrix.loc[matrix["mutated"], ["sample_id", "gene"]].to_numpy()}
    assert mutated == set(hits)
    assert not mutated & silent_only
    assert int(matrix["n_variants"].sum()) == sum(hits.values())


@pytest.mark.parametrize(
    ("sample", "patient"),
    [
        ("TCGA-A1-A0SB-01", "TCGA-A1-A0SB"),  # module docstring example
        ("TCGA-AB-2988", "TCGA-AB-2988"),  # maftools LAML barcodes are already patient-level
        ("TEST_SAMPLE_1", "TEST_SAMPLE_1"),  # no dashes: its own patient (cBioPortal es_0)
        ("ERR188297", "ERR188297"),  # GEUVADIS run accession
    ],
)
def test_patient_ids_default_pattern(sample: str, patient: str) -> None:
    assert list(patient_ids(pd.Series([sample]))) == [patient]


# --------------------------------------------------------------------------- MAF errors


def test_maf_missing_hugo_symbol(shared_data: Path, tmp_path: Path) -> None:
    header, rows = read_tsv(shared_data / FIX / "data_mutations_some_silent.maf")
    path = write_tsv(tmp_path / "no_hugo.maf", [c for c in header if c != "Hugo_Symbol"], rows)

    with pytest.raises(InputError, match=r"missing column.*Hugo_Symbol") as info:
        parse_maf(str(path))

    assert info.value.path == str(path)


def test_maf_non_numeric_count(shared_data: Path, tmp_path: Path) -> None:
    header, rows = read_tsv(shared_data / FIX / "data_mutations_some_silent.maf")
    for row in rows:
        row["t_ref_count"], row["t_alt_count"] = "20", "5"
    rows[2]["t_alt_count"] = "many"  # third data row
    path = write_tsv(tmp_path / "bad_count.maf", header, rows)

    with pytest.raises(InputError, match=r"line 4, column 't_alt_count'.*'many'") as info:
        parse_maf(str(path))

    assert info.value.path == str(path)


# --------------------------------------------------------------------------- RSEM


@pytest.fixture(scope="module")
def rsem(shared_data: Path) -> tuple[list[dict[str, str]], pd.DataFrame]:
    path = shared_data / "omics/rsem_example/ERR188297.genes.results.gz"
    _, rows = read_tsv(path)
    return rows, parse_rsem(str(path))


def test_rsem_shape_and_sample(rsem: tuple[list[dict[str, str]], pd.DataFrame]) -> None:
    rows, expr = rsem
    assert len(rows) == 58_288  # README

    assert len(expr) == 58_288
    assert set(expr["sample_id"]) == {"ERR188297"}  # file name before .genes.results.gz
    assert set(expr["patient_id"]) == {"ERR188297"}
    assert list(expr["gene_id"]) == [r["gene_id"] for r in rows]
    assert expr["gene"].isna().all()  # GENCODE ids, not TCGA SYMBOL|ENTREZ
    # radgen computes TPM itself; the counts and lengths are the file's
    assert list(expr["count"]) == [float(r["expected_count"]) for r in rows]
    assert list(expr["length"]) == [float(r["effective_length"]) for r in rows]


def test_rsem_tpm_sums_to_a_million(rsem: tuple[list[dict[str, str]], pd.DataFrame]) -> None:
    _, expr = rsem
    # README: sum(TPM) = 1e6; each value is rounded to 2 decimals (<= 0.005 error per gene).
    assert expr["tpm"].sum() == pytest.approx(1e6, abs=0.005 * len(expr))


def test_rsem_log2_tpm(rsem: tuple[list[dict[str, str]], pd.DataFrame]) -> None:
    _, expr = rsem
    np.testing.assert_allclose(
        expr["log2_tpm"].to_numpy(), np.log2(1.0 + expr["tpm"].to_numpy()), rtol=1e-15
    )


def test_rsem_tpm_fpkm_follow_the_formulas(rsem: tuple[list[dict[str, str]], pd.DataFrame]) -> None:
    rows, expr = rsem
    # TPM (Li & Dewey 2011; Wagner et al. 2012): rate = count / effective length (genes with
    # effective length 0 have no rate), TPM = rate / sum(rate) * 1e6; FPKM = c * 1e9 / (L * sum(c)).
    counts = [float(r["expected_count"]) for r in rows]
    lengths = [float(r["effective_length"]) for r in rows]
    rates = [c / e if e > 0 else 0.0 for c, e in zip(counts, lengths, strict=True)]
    total_rate, total_count = math.fsum(rates), math.fsum(counts)
    expected_tpm = [r / total_rate * 1e6 for r in rates]
    expected_fpkm = [
        c * 1e9 / (e * total_count) if e > 0 else 0.0 for c, e in zip(counts, lengths, strict=True)
    ]
    np.testing.assert_allclose(expr["tpm"], expected_tpm, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(expr["fpkm"], expected_fpkm, rtol=1e-9, atol=1e-9)


def test_rsem_own_tpm_and_fpkm_are_reproduced(
    rsem: tuple[list[dict[str, str]], pd.DataFrame],
) -> None:
    rows, expr = rsem
    checked = 0
    for row, tpm, fpkm in zip(rows, expr["tpm"], expr["fpkm"], strict=True):
        count, eff_len = float(row["expected_count"]), float(row["effective_length"])
        if count <= 0 or eff_len <= 0:
            assert tpm == 0.0
            continue
        checked += 1
        # README: RSEM rounds every column to 2 decimals and builds gene values from
        # transcripts; 0.01 + value x (0.005/count + 0.005/effective_length + 0.1%) bounds it.
        for ours, theirs in ((tpm, float(row["TPM"])), (fpkm, float(row["FPKM"]))):
            bound = 0.01 + ours * (0.005 / count + 0.005 / eff_len + 0.001)
            assert abs(ours - theirs) <= bound, row["gene_id"]
    assert checked > 20_000  # 22,375 genes with count > 0 and effective length > 0
    within_001 = np.mean(
        np.abs(expr["tpm"].to_numpy() - np.array([float(r["TPM"]) for r in rows])) <= 0.01
    )
    assert within_001 > 0.99  # "within 0.01 for almost all genes" (README)


# --------------------------------------------------------------------------- SEG


@pytest.mark.parametrize(
    ("relpath", "n_rows"),
    [
        (f"{ES0}/data_cna_hg19.seg", 9),  # README: 9 segments
        (f"{MAFTOOLS}/TCGA.AB.3009.hg19.seg.txt", 818),  # README: 818 rows
        (f"{MAFTOOLS}/LAML_CBS_segments.tsv.gz", 6470),  # README: 6470 rows
        ("omics/gdc_examples/dnacopy.tsv.gz", 6),  # README: 6 rows
        (f"{FIX}/data_seg_valid.seg", None),  # README gives no count; csv only
    ],
)
def test_seg_variants(shared_data: Path, relpath: str, n_rows: int | None) -> None:
    path = shared_data / relpath
    header, rows = read_tsv(path)
    sample_col, chrom_col, start_col, end_col, marks_col, mean_col = header
    if n_rows is not None:
        assert len(rows) == n_rows

    seg = parse_seg(str(path))

    assert len(seg) == len(rows)
    assert list(seg["sample_id"]) == [r[sample_col] for r in rows]
    # cBioPortal's numeric sex chromosomes: 23 -> X, 24 -> Y
    expected_chroms = [
        {"23": "X", "24": "Y"}.get(c, c) for c in (r[chrom_col].removeprefix("chr") for r in rows)
    ]
    assert list(seg["chrom"]) == expected_chroms
    assert list(seg["start"]) == [int(r[start_col]) for r in rows]
    assert list(seg["end"]) == [int(r[end_col]) for r in rows]
    assert list(seg["num_markers"]) == [int(r[marks_col]) for r in rows]
    assert list(seg["seg_mean"]) == [float(r[mean_col]) for r in rows]
    assert (seg["end"] >= seg["start"]).all()


def test_seg_end_before_start(shared_data: Path) -> None:
    path = shared_data / FIX / "data_seg_end_before_start.seg"
    header, rows = read_tsv(path)
    start_col, end_col = header[2], header[3]
    first_bad = next(i for i, r in enumerate(rows, 1) if int(r[end_col]) < int(r[start_col]))
    assert first_bad == 10  # chr9 segment 141213431 -> 0 (line 11 of the file)

    with pytest.raises(
        InputError, match=rf"line {first_bad + 1}: segment ends \(0\) before it starts"
    ) as info:
        parse_seg(str(path))

    assert info.value.path == str(path)


# --------------------------------------------------------------------------- methylation


def test_methylation_hm27(shared_data: Path) -> None:
    path = shared_data / ES0 / "data_methylation_hm27.txt"
    header, rows = read_tsv(path)
    # The header is Hugo_Symbol, Entrez_Gene_Id, then samples: Entrez_Gene_Id is annotation.
    assert header[:2] == ["Hugo_Symbol", "Entrez_Gene_Id"]
    samples = header[2:]
    assert (len(rows), len(samples)) == (8, 311)  # README: 8 genes x 311 samples

    meth = parse_methylation(str(path))

    assert len(meth) == 8 * 311
    assert set(meth["sample_id"]) == set(samples)
    assert set(meth["feature"]) == {r["Hugo_Symbol"] for r in rows}
    expected = {
        (r["Hugo_Symbol"], s): (None if r[s] in CBIO_MISSING else float(r[s]))
        for r in rows
        for s in samples
    }
    got = {
        (p, s): (None if pd.isna(b) else float(b))
        for p, s, b in meth[["feature", "sample_id", "beta"]].itertuples(index=False)
    }
    assert got == expected
    beta = meth["beta"].dropna()
    assert beta.between(0.0, 1.0).all()  # README: "0..1"
    # No beta reaches the [1e-6, 1 - 1e-6] clip, so M = log2(b / (1 - b)) exactly (Du et al. 2010).
    assert beta.between(1e-6, 1 - 1e-6).all()
    m_expected = [math.log2(b / (1 - b)) for b in beta]
    np.testing.assert_allclose(meth.loc[beta.index, "m_value"], m_expected, rtol=1e-12)
    assert meth.loc[meth["beta"].isna(), "m_value"].isna().all()


def test_methylation_non_numeric_beta(shared_data: Path) -> None:
    # The fixture's invalid cells are non-numeric tokens ("n.a.", "Na"), not out-of-range
    # numbers, so the parser must refuse it. The first one, read row by row, is "n.a." in
    # data row 1 (ATP2A1), column TCGA-A1-A0SD-01.
    path = shared_data / FIX / "data_methylation_invalid_values.txt"
    _, rows = read_tsv(path)
    assert rows[0]["Hugo_Symbol"] == "ATP2A1"
    assert rows[0]["TCGA-A1-A0SD-01"] == "n.a."

    with pytest.raises(InputError, match=r"'n\.a\.'") as info:
        parse_methylation(str(path))

    assert "TCGA-A1-A0SD-01" in info.value.reason  # the column holding the bad cell
    assert "line 2," in info.value.reason  # and its file line (header is line 1)


def test_methylation_out_of_range_beta_is_refused(shared_data: Path, tmp_path: Path) -> None:
    # A beta is a fraction: a numeric value outside [0, 1] is an error naming line and sample.
    header, rows = read_tsv(shared_data / FIX / "data_methylation_invalid_values.txt")
    rows = [r for r in rows if not {"n.a.", "Na"} & set(r.values())]
    rows[0]["TCGA-A1-A0SB-01"] = "1.5"
    path = write_tsv(tmp_path / "out_of_range.txt", header, rows)

    with pytest.raises(InputError, match=r"line 2, column 'TCGA-A1-A0SB-01': '1\.5' is above 1"):
        parse_methylation(str(path))


# --------------------------------------------------------------------------- clinical


def test_clinical_cbioportal_patients(shared_data: Path) -> None:
    path = shared_data / ES0 / "data_clinical_patients.txt"
    lines = _lines(path)
    meta = [line.split("\t") for line in lines[:4]]
    assert all(line.startswith("#") for line in lines[:4])  # README: 4 '#' header rows
    header, rows = read_tsv(path)
    datatypes = dict(zip(header, [t.lstrip("#") for t in meta[2]], strict=True))
    assert datatypes == {
        "PATIENT_ID": "STRING",
        "OS_STATUS": "STRING",
        "OS_MONTHS": "NUMBER",
        "DFS_STATUS": "STRING",
        "DFS_MONTHS": "NUMBER",
    }

    clin = parse_clinical(str(path))

    assert len(clin) == len(rows) == 841
    assert list(clin["patient_id"]) == [r["PATIENT_ID"] for r in rows]
    assert clin["patient_id"].is_unique
    for col, kind in datatypes.items():
        if col == "PATIENT_ID":
            continue
        name = col.lower()
        missing = [r[col].strip() in CBIO_MISSING for r in rows]
        assert list(clin[name].isna()) == missing, col
        if kind == "NUMBER":
            assert clin[name].dtype == np.float64
            assert _nullable(clin[name]) == [
                None if m else float(r[col]) for m, r in zip(missing, rows, strict=True)
            ]
        else:
            assert list(clin[name].dropna()) == [
                r[col].strip() for m, r in zip(missing, rows, strict=True) if not m
            ]


def test_clinical_maftools_annotation(shared_data: Path) -> None:
    path = shared_data / MAFTOOLS / "tcga_laml_annot.tsv"
    header, rows = read_tsv(path)
    assert header == [
        "Tumor_Sample_Barcode",
        "FAB_classification",
        "days_to_last_followup",
        "Overall_Survival_Status",
    ]  # README

    clin = parse_clinical(str(path))

    assert len(clin) == len(rows)
    assert list(clin["patient_id"]) == [r["Tumor_Sample_Barcode"] for r in rows]
    fab_missing = [r["FAB_classification"] in CBIO_MISSING for r in rows]
    assert sum(fab_missing) > 0  # the file writes "NA" for some samples
    assert list(clin["fab_classification"].isna()) == fab_missing
    assert list(clin["fab_classification"].dropna()) == [
        r["FAB_classification"] for r, m in zip(rows, fab_missing, strict=True) if not m
    ]
    for col in ("days_to_last_followup", "Overall_Survival_Status"):
        assert clin[col.lower()].dtype == np.float64
        assert _nullable(clin[col.lower()]) == [
            None if r[col] in CBIO_MISSING else float(r[col]) for r in rows
        ]


def test_clinical_hash_inside_a_value(tmp_path: Path) -> None:
    # Only whole lines starting with '#' are cBioPortal header rows; a '#' inside a cell
    # (free text such as "ECOG #2") is data and must not cut the rest of the line off.
    path = tmp_path / "clinical.txt"
    path.write_text(
        "#Patient Identifier\tNote\tAge\n"
        "#Patient identifier\tNote\tAge at diagnosis\n"
        "#STRING\tSTRING\tNUMBER\n"
        "#1\t1\t1\n"
        "PATIENT_ID\tNOTE\tAGE\n"
        "P1\tECOG #2\t40\n"
        "P2\tok\t50\n"
    )

    clin = parse_clinical(str(path))

    assert list(clin["note"]) == ["ECOG #2", "ok"]
    assert list(clin["age"]) == [40.0, 50.0]
