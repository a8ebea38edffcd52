"""Counts -> TPM/FPKM: closed forms, HTSeq (GDC example), matrices, gene lengths from a GTF."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from radgen.errors import InputError
from radgen.ingestion.expression import normalize_counts, parse_count_matrix, parse_htseq
from radgen.ingestion.genome import gene_lengths


def _formula(counts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rate = np.divide(counts, lengths, out=np.zeros_like(counts), where=lengths > 0)
    tpm = rate / rate.sum() * 1e6
    fpkm = np.divide(
        counts * 1e9, lengths * counts.sum(), out=np.zeros_like(counts), where=lengths > 0
    )
    return tpm, fpkm


def test_normalize_counts_closed_form_and_zero_length() -> None:
    tpm, fpkm = normalize_counts([100, 300, 50], [1000, 1500, 0])
    # rates 0.1 and 0.2 -> TPM 1/3 and 2/3 of a million; the zero-length gene gets 0
    assert tpm.tolist() == pytest.approx([1e6 / 3, 2e6 / 3, 0.0])
    assert fpkm.tolist() == pytest.approx([100 * 1e9 / (1000 * 450), 300 * 1e9 / (1500 * 450), 0.0])


def test_htseq_gdc_example(shared_data: Path, tmp_path: Path) -> None:
    path = shared_data / "omics" / "gdc_examples" / "example.htseq.counts.gz"
    with gzip.open(path, "rt") as fh:
        rows = [line.rstrip("\n").split("\t") for line in fh]
    genes = [g for g, _ in rows if not g.startswith("__")]
    # lengths keyed by unversioned ids: versioned GENCODE ids must still find them
    lengths = pd.Series({g.split(".")[0]: 1000.0 + 10 * i for i, g in enumerate(genes)})
    out = parse_htseq(str(path), lengths)
    assert out["gene_id"].tolist() == genes
    assert set(out["sample_id"]) == {"example"}
    counts = np.array([float(c) for g, c in rows if not g.startswith("__")])
    tpm, fpkm = _formula(counts, lengths.to_numpy())
    np.testing.assert_allclose(out["tpm"], tpm, rtol=1e-12)
    np.testing.assert_allclose(out["fpkm"], fpkm, rtol=1e-12)
    assert out["tpm"].sum() == pytest.approx(1e6)


def test_gene_lengths_from_a_gtf_are_exon_unions(tmp_path: Path) -> None:
    gtf = tmp_path / "a.gtf"
    gtf.write_text(
        'chr1\tx\texon\t100\t199\t.\t+\t.\tgene_id "G1"; gene_name "AAA";\n'
        'chr1\tx\texon\t150\t249\t.\t+\t.\tgene_id "G1"; gene_name "AAA";\n'  # overlaps: union 100..249
        'chr1\tx\texon\t400\t449\t.\t+\t.\tgene_id "G1"; gene_name "AAA";\n'
        'chr2\tx\texon\t1\t10\t.\t+\t.\tgene_id "G2"; gene_name "BBB";\n'
    )
    lengths = gene_lengths(str(gtf))
    assert lengths["G1"] == 150 + 50
    assert lengths["AAA"] == 200
    assert lengths["G2"] == 10


def test_count_matrix(tmp_path: Path) -> None:
    path = tmp_path / "counts.tsv"
    path.write_text("gene_id\tS1\tS2\nG1\t10\t0\nG2\t30\t5\nG3\t0\t5\n")
    lengths = pd.Series({"G1": 1000.0, "G2": 3000.0, "G3": 500.0})
    out = parse_count_matrix(str(path), lengths).set_index(["sample_id", "gene_id"])
    for sample, counts in (("S1", [10.0, 30.0, 0.0]), ("S2", [0.0, 5.0, 5.0])):
        tpm, _ = _formula(np.array(counts), lengths.to_numpy())
        np.testing.assert_allclose(out.loc[sample, "tpm"].to_numpy(), tpm)


def test_bad_counts_and_missing_lengths(tmp_path: Path) -> None:
    path = tmp_path / "s.htseq.counts"
    path.write_text("G1\t10\nG2\t2.5\n")
    with pytest.raises(InputError, match=r"line 2, column 'count': '2\.5' is not a whole number"):
        parse_htseq(str(path), pd.Series({"G1": 1.0, "G2": 1.0}))
    path.write_text("G1\t10\nG2\t3\n")
    with pytest.raises(InputError, match=r"1 gene\(s\) have no length, e.g. 'G2'"):
        parse_htseq(str(path), pd.Series({"G1": 1.0}))
    path.write_text("G1\t10\nG1\t3\n")
    with pytest.raises(InputError, match=r"line 2: duplicate gene"):
        parse_htseq(str(path), pd.Series({"G1": 1.0}))
