"""Copy number: gene-level values from segments (closed forms) and gene-level tables (real files)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from radgen.errors import InputError
from radgen.ingestion.copy_number import discretize_log2, parse_cna_gene, segments_to_genes
from radgen.ingestion.genome import gene_intervals

ES0 = "omics/cbioportal_study_es_0"
FIX = "omics/cbioportal_validator_fixtures"


def _segments(rows: list[tuple[str, str, int, int, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["sample_id", "chrom", "start", "end", "seg_mean"])
    return frame.assign(patient_id=frame["sample_id"].str[:4])


def test_length_weighted_mean_of_overlapping_segments(tmp_path: Path) -> None:
    bed = tmp_path / "genes.bed"
    # BED is 0-based half-open: A covers 1-based 51..150, B 150..250, C sits on chr2
    bed.write_text("chr1\t50\t150\tA\nchr1\t149\t250\tB\nchr2\t0\t10\tC\n")
    genes = gene_intervals(str(bed))
    assert genes.set_index("gene").loc["A", ["start", "end"]].tolist() == [51, 150]
    segs = _segments([("S001-01", "1", 1, 100, 1.0), ("S001-01", "1", 101, 300, -0.5)])
    out = segments_to_genes(segs, genes).set_index("gene")
    # A: 50 bp at 1.0 and 50 bp at -0.5 -> 0.25; B: all in the second segment -> -0.5
    assert out.loc["A", "log2"] == pytest.approx(0.25)
    assert out.loc["B", "log2"] == pytest.approx(-0.5)
    assert out.loc["A", "discrete"] == 0
    assert out.loc["B", "discrete"] == -1
    assert "C" not in out.index  # no segment on chr2


def test_overlapping_and_duplicated_segments_are_averaged_by_overlap(tmp_path: Path) -> None:
    gtf = tmp_path / "genes.gtf"
    gtf.write_text(
        'chr1\tsrc\tgene\t10\t40\t.\t+\t.\tgene_id "G1"; gene_name "ONE";\n'
        'chr1\tsrc\texon\t10\t20\t.\t+\t.\tgene_id "G1"; gene_name "ONE";\n'
    )
    genes = gene_intervals(str(gtf))
    segs = _segments(
        [("S001-01", "1", 1, 30, 2.0), ("S001-01", "1", 1, 30, 2.0), ("S001-01", "1", 25, 60, -1.0)]
    )
    got = segments_to_genes(segs, genes)["log2"].iloc[0]
    # gene 10..40: two copies of 10..30 at 2.0 (21 bp each) and 25..40 at -1.0 (16 bp)
    assert got == pytest.approx((2 * 21 * 2.0 + 16 * -1.0) / (2 * 21 + 16))


def test_discrete_thresholds() -> None:
    calls = discretize_log2(
        pd.Series([-1.0, -0.99, -0.3, -0.29, 0.0, 0.29, 0.3, 0.99, 1.0, np.nan])
    )
    assert calls.tolist()[:9] == [-2, -1, -1, 0, 0, 0, 1, 1, 2]
    assert pd.isna(calls.iloc[9])
    assert discretize_log2(pd.Series([0.2]), low=0.1, high=0.5).tolist() == [1]
    with pytest.raises(InputError, match="0 < low < high"):
        discretize_log2(pd.Series([0.0]), low=1.0, high=0.5)


def _cells(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(
            csv.DictReader((line for line in fh if not line.startswith("#")), delimiter="\t")
        )


def test_discrete_long_table_matches_the_file(shared_data: Path) -> None:
    path = shared_data / ES0 / "data_cna_discrete.txt"
    rows = _cells(path)
    out = parse_cna_gene(str(path))
    present = [r for r in rows if r["Value"].strip() not in {"", "NA"}]
    assert len(out) == len(present)
    expected = {
        (r["Sample_Id"], r["Hugo_Symbol"] or r["Entrez_Gene_Id"]): int(float(r["Value"]))
        for r in present
    }
    got = {
        (s, g): int(v)
        for s, g, v in zip(out["sample_id"], out["gene"], out["discrete"], strict=True)
    }
    assert got == expected
    assert out["log2"].isna().all()


def test_log2_wide_table_matches_the_file_and_gets_calls(shared_data: Path) -> None:
    path = shared_data / ES0 / "data_cna_log2.txt"
    rows = _cells(path)
    out = parse_cna_gene(str(path), values="log2").set_index(["sample_id", "gene"])
    first = rows[0]
    sample = next(k for k in first if k.startswith("TCGA-"))
    value = float(first[sample])
    assert out.loc[(sample, first["Hugo_Symbol"]), "log2"] == pytest.approx(value)
    assert (
        out.loc[(sample, first["Hugo_Symbol"]), "discrete"]
        == discretize_log2(pd.Series([value])).iloc[0]
    )


def test_wide_discrete_with_missing_symbols(shared_data: Path) -> None:
    out = parse_cna_gene(str(shared_data / FIX / "study_es_0_inc_data_cna_discrete_wide.txt"))
    assert set(out["gene"]) >= {"375790", "TP53"}  # no symbol: the Entrez id names the gene
    assert len(out) == 8 * 3


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "data_cna_genecol_presence_both.txt",
            r"line 9, column 'value', sample 'TCGA-A1-A0SH-01': '-1\.5' is not a whole number",
        ),
        (
            "data_cna_invalid_values.txt",
            r"line 6, column 'value', sample 'TCGA-A1-A0SB-01': '3' is above 2",
        ),
    ],
)
def test_validator_fixtures_are_rejected(shared_data: Path, name: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_cna_gene(str(shared_data / FIX / name))


def test_duplicate_sample_gene_pair_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "dup.txt"
    path.write_text("Hugo_Symbol\tS1\tS2\nTP53\t0\t1\nKRAS\t1\t0\nTP53\t-1\t0\n")
    with pytest.raises(
        InputError, match=r"line 4: duplicate sample/gene pair \(sample_id='S1', gene='TP53'\)"
    ):
        parse_cna_gene(str(path))
