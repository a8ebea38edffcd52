"""``ingest_omics`` into a catalog: tables, subjects linking, matrices, and bad inputs refused whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from radgen.errors import InputError
from radgen.ingestion.deid import Deidentifier
from radgen.ingestion.mutations import VARIANT_CLASSES
from radgen.ingestion.omics import OmicsOptions, ingest_omics
from radgen.platform.catalog import Catalog

ES0 = "omics/cbioportal_study_es_0"
FIX = "omics/cbioportal_validator_fixtures"


def _ingest(catalog: Catalog, path: Path | str, kind: str, **options: object) -> dict[str, int]:
    with catalog.run("ingest omics", {"kind": kind}) as run:
        return ingest_omics(run, str(path), kind, OmicsOptions(**options)).tables  # type: ignore[arg-type]


def _versions(catalog: Catalog) -> dict[str, int]:
    return {
        k: v
        for k, v in catalog.list_tables().set_index("table")["version"].items()
        if k not in {"runs", "quality_results"}
    }


def test_case_list_makes_unmutated_samples_complete_rows(
    catalog: Catalog, shared_data: Path, tmp_path: Path
) -> None:
    maf = shared_data / ES0 / "data_mutations_extended.maf"
    cases = tmp_path / "cases.txt"
    cases.write_text("case_list_ids: TCGA-A1-A0SB-01\tTCGA-NEVER-MUTATED-01\n")
    _ingest(catalog, maf, "mutations", samples=str(cases))
    gm = catalog.sql(
        "select sample_id, bool_or(mutated) as any_mut, count(*) as n from gene_mutation group by 1 order by 1"
    )
    assert gm["sample_id"].tolist() == ["TCGA-A1-A0SB-01", "TCGA-NEVER-MUTATED-01"]
    assert gm["n"].nunique() == 1  # every sample x every gene of the MAF
    assert not gm.set_index("sample_id").loc["TCGA-NEVER-MUTATED-01", "any_mut"]


def test_subjects_link_samples_to_imaging_subjects(
    catalog: Catalog, shared_data: Path, tmp_path: Path
) -> None:
    _ingest(catalog, shared_data / ES0 / "data_mutations_extended.maf", "mutations")
    subjects = catalog.sql("select * from subjects")
    deid = Deidentifier.for_root(catalog.root)  # imaging subjects are keyed pseudonyms
    assert (subjects["subject_id"] == subjects["patient_id"].map(deid.subject)).all()
    assert (
        subjects["patient_id"] == subjects["sample_id"].str.split("-").str[:3].str.join("-")
    ).all()
    mapping = tmp_path / "map.tsv"
    mapping.write_text("sample_id\tsubject_id\nTCGA-A1-A0SB-01\tPACS-0042\n")
    _ingest(catalog, mapping, "subjects")
    again = catalog.sql("select * from subjects").set_index("sample_id")
    pseudonym = deid.subject("PACS-0042")
    assert again.loc["TCGA-A1-A0SB-01", "subject_id"] == pseudonym
    assert again.loc["TCGA-A1-A0SB-01", "rule"] == "mapping map.tsv"
    assert len(again) == len(subjects)
    # one join from an imaging subject to its genotype
    hit = catalog.sql(
        "select g.gene from subjects s join gene_mutation g using (sample_id) "
        f"where s.subject_id = '{pseudonym}' and g.mutated order by 1"
    )
    assert len(hit) > 0


def test_segments_with_genes_give_gene_level_rows(
    catalog: Catalog, shared_data: Path, tmp_path: Path
) -> None:
    bed = tmp_path / "genes.bed"
    bed.write_text("chr17\t7661778\t7687538\tTP53\nchr7\t55019016\t55211628\tEGFR\n")
    tables = _ingest(
        catalog, shared_data / ES0 / "data_cna_hg19.seg", "cna-segments", genes=str(bed)
    )
    assert tables["cna_segments"] == 9
    rows = catalog.sql("select * from cna_gene where measure = 'segments'")
    assert set(rows["gene"]) <= {"TP53", "EGFR"}
    assert rows["discrete"].between(-2, 2).all()


def test_count_matrix_is_also_a_zarr_matrix(catalog: Catalog, tmp_path: Path) -> None:
    counts = tmp_path / "counts.tsv"
    counts.write_text("gene_id\tTCGA-AA-0001-01\tTCGA-AA-0002-01\nG1\t10\t0\nG2\t30\t5\nG3\t1\t5\n")
    lengths = tmp_path / "lengths.tsv"
    lengths.write_text("gene_id\tlength\nG1\t1000\nG2\t3000\nG3\t500\n")
    _ingest(catalog, counts, "expression", lengths=str(lengths))
    table = catalog.sql("select sample_id, gene_id, tpm from expression")
    (matrix_id,) = catalog.sql("select matrix_id from omics_matrices")["matrix_id"]
    matrix = catalog.matrix(matrix_id)
    assert matrix.dims == ("feature", "sample")
    wide = table.pivot(index="gene_id", columns="sample_id", values="tpm")
    np.testing.assert_allclose(
        matrix.sel(feature=list(wide.index), sample=list(wide.columns)).values, wide.to_numpy()
    )
    assert catalog.sql("select sum(tpm) as s from expression group by sample_id")[
        "s"
    ].tolist() == pytest.approx([1e6, 1e6])


def test_clinical_patients_and_samples_share_the_table(catalog: Catalog, shared_data: Path) -> None:
    _ingest(catalog, shared_data / ES0 / "data_clinical_patients.txt", "clinical")
    _ingest(catalog, shared_data / ES0 / "data_clinical_samples.txt", "clinical")
    clin = catalog.sql("select patient_id, sample_id from clinical")
    assert clin["sample_id"].isna().any()
    assert clin["sample_id"].notna().any()
    samples = catalog.sql("select * from clinical where sample_id is not null")
    lines = [
        line.split("\t")
        for line in (shared_data / ES0 / "data_clinical_samples.txt").read_text().splitlines()
    ]
    rows = [line for line in lines if not line[0].startswith("#")]
    head = rows[0]
    expected = {r[head.index("SAMPLE_ID")]: r[head.index("PATIENT_ID")] for r in rows[1:]}
    assert dict(zip(samples["sample_id"], samples["patient_id"], strict=True)) == expected


def _first_bad_class_line(path: Path) -> tuple[int, str]:
    lines = path.read_text().splitlines()
    header_at = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    col = lines[header_at].split("\t").index("Variant_Classification")
    for i, line in enumerate(lines[header_at + 1 :], start=header_at + 2):
        value = line.split("\t")[col].strip()
        if value not in VARIANT_CLASSES:
            return i, value
    raise AssertionError("fixture has no invalid class")


@pytest.mark.parametrize(
    ("name", "kind", "message"),
    [
        ("data_mutations_invalid_variant_classification.maf", "mutations", None),
        (
            "data_seg_end_before_start.seg",
            "cna-segments",
            r"line 11: segment ends \(0\) before it starts",
        ),
        (
            "data_seg_out_of_bounds.seg",
            "cna-segments",
            r"line 36, column 'loc.start': '-1' is below 0",
        ),
        (
            "data_cna_genecol_presence_both.txt",
            "cna-gene",
            r"line 9, .*'-1\.5' is not a whole number",
        ),
        ("data_cna_invalid_values.txt", "cna-gene", r"line 6, .*'3' is above 2"),
        (
            "data_methylation_invalid_values.txt",
            "methylation",
            r"line 2, column 'TCGA-A1-A0SD-01': 'n\.a\.'",
        ),
    ],
)
def test_validator_fixtures_are_refused_and_nothing_changes(
    catalog: Catalog, shared_data: Path, name: str, kind: str, message: str | None
) -> None:
    path = shared_data / FIX / name
    if message is None:
        line, value = _first_bad_class_line(path)
        message = rf"line {line}: unknown Variant_Classification '{value}'"
    _ingest(catalog, shared_data / ES0 / "data_mutations_extended.maf", "mutations")
    before = _versions(catalog)
    with pytest.raises(InputError, match=message) as info:
        _ingest(catalog, path, kind)
    assert info.value.path == str(path)
    assert _versions(catalog) == before


def test_out_of_bounds_end_uses_the_genome_build(tmp_path: Path, catalog: Catalog) -> None:
    seg = tmp_path / "s.seg"
    # chr1 is 249,250,621 bp in hg19 and 248,956,422 bp in hg38
    seg.write_text(
        "ID\tchrom\tloc.start\tloc.end\tnum.mark\tseg.mean\nS1\t1\t1\t249000000\t10\t0.1\n"
    )
    with pytest.raises(
        InputError,
        match=r"line 2: segment end 249000000 lies beyond chromosome 1 \(248,956,422 bp\)",
    ):
        _ingest(catalog, seg, "cna-segments", genome="hg38")
    assert _ingest(catalog, seg, "cna-segments", genome="hg19")["cna_segments"] == 1


def test_maf_positions_follow_each_rows_build(tmp_path: Path) -> None:
    from radgen.ingestion.mutations import parse_maf

    columns = [
        "Hugo_Symbol",
        "Tumor_Sample_Barcode",
        "Variant_Classification",
        "Chromosome",
        "Start_Position",
    ]
    header = "\t".join([*columns, "End_Position", "NCBI_Build"])
    maf = tmp_path / "m.maf"
    maf.write_text(f"{header}\nA\tS-1-1\tSilent\t1\t249000000\t249000000\tGRCh37\n")
    assert len(parse_maf(str(maf))) == 1
    maf.write_text(f"{header}\nA\tS-1-1\tSilent\t1\t249000000\t249000000\tGRCh38\n")
    with pytest.raises(InputError, match="line 2: position 249000000 lies beyond chromosome 1"):
        parse_maf(str(maf))


def test_count_matrix_streams_in_chunks_into_one_version(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More samples than a chunk: one version, every value equal to the TPM/FPKM formulas."""
    from radgen.ingestion import expression

    rng = np.random.default_rng(3)
    counts = rng.poisson(30, (40, 23)).astype(float)
    counts[5] = 0  # a gene never seen
    lengths = rng.integers(200, 4000, 40).astype(float)
    genes = [f"G{i}" for i in range(40)]
    samples = [f"TCGA-AB-{j:04d}-01" for j in range(23)]
    (tmp_path / "m.tsv").write_text(
        "gene_id\t" + "\t".join(samples) + "\n"
        + "".join(g + "\t" + "\t".join(f"{v:g}" for v in row) + "\n" for g, row in zip(genes, counts, strict=True))
    )  # fmt: skip
    (tmp_path / "len.tsv").write_text(
        "".join(f"{g}\t{L:g}\n" for g, L in zip(genes, lengths, strict=True))
    )
    original = expression.CountMatrix.chunks

    def small_chunks(self, extra, *, samples_per_chunk=50, skip=()):  # type: ignore[no-untyped-def]
        return original(self, extra, samples_per_chunk=4, skip=skip)

    monkeypatch.setattr(expression.CountMatrix, "chunks", small_chunks)
    start = _versions(catalog).get("expression", -1)
    _ingest(catalog, tmp_path / "m.tsv", "expression", lengths=str(tmp_path / "len.tsv"))
    assert catalog.sql("select count(*) as n from expression")["n"][0] == 40 * 23
    assert _versions(catalog)["expression"] == start + 1  # six chunks, one commit
    got = catalog.sql("select sample_id, gene_id, count, tpm, fpkm, log2_tpm from expression")
    for j, sample in enumerate(samples):
        rows = got[got["sample_id"] == sample].set_index("gene_id").loc[genes]
        rate = counts[:, j] / lengths
        np.testing.assert_allclose(rows["count"], counts[:, j])
        np.testing.assert_allclose(rows["tpm"], rate / rate.sum() * 1e6, rtol=1e-12)
        np.testing.assert_allclose(
            rows["fpkm"], counts[:, j] * 1e9 / (lengths * counts[:, j].sum()), rtol=1e-12
        )
        np.testing.assert_allclose(rows["log2_tpm"], np.log2(1 + rows["tpm"]), rtol=1e-12)
    before = _versions(catalog)
    _ingest(catalog, tmp_path / "m.tsv", "expression", lengths=str(tmp_path / "len.tsv"))
    assert _versions(catalog) == before  # the same file again: nothing new


def test_featurecounts_table_brings_its_own_lengths(catalog: Catalog, tmp_path: Path) -> None:
    """featureCounts output: a '#' command line, Chr..Length annotation columns, then samples."""
    path = tmp_path / "counts.txt"
    path.write_text(
        '# Program:featureCounts v2.0.1; Command:"featureCounts" "-a" "genes.gtf"\n'
        "Geneid\tChr\tStart\tEnd\tStrand\tLength\tTCGA-AA-0001-01\tTCGA-AA-0002-01\n"
        "G1\tchr1;chr1\t10;50\t40;90\t+;+\t1000\t10\t0\n"
        "G2\tchr2\t100\t3099\t-\t3000\t30\t5\n"
        "G3\tchr3\t1\t500\t+\t500\t1\t5\n"
    )
    _ingest(catalog, path, "expression")
    got = catalog.sql("select sample_id, gene_id, length, tpm from expression order by 1, 2")
    assert sorted(set(got["sample_id"])) == ["TCGA-AA-0001-01", "TCGA-AA-0002-01"]
    assert got["length"].tolist() == [1000, 3000, 500] * 2
    rate = np.array([10 / 1000, 30 / 3000, 1 / 500])
    np.testing.assert_allclose(got["tpm"][:3], rate / rate.sum() * 1e6, rtol=1e-12)
    no_lengths = tmp_path / "plain.tsv"
    no_lengths.write_text("gene_id\tS1\nG1\t3\n")
    with pytest.raises(InputError, match="needs gene lengths"):
        _ingest(catalog, no_lengths, "expression")


def test_entrez_and_symbol_columns_are_not_samples(catalog: Catalog, tmp_path: Path) -> None:
    path = tmp_path / "counts.tsv"
    path.write_text(
        "gene_id\tEntrez_Gene_Id\tHugo_Symbol\tTCGA-AA-0001-01\n"
        "G1\t7157\tTP53\t10\nG2\t672\tBRCA1\t30\n"
    )
    lengths = tmp_path / "lengths.tsv"
    lengths.write_text("G1\t1000\nG2\t3000\n")
    _ingest(catalog, path, "expression", lengths=str(lengths))
    assert catalog.sql("select distinct sample_id from expression")["sample_id"].tolist() == [
        "TCGA-AA-0001-01"
    ]


def test_large_gene_mutation_grid_streams_in_sample_chunks(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above the large-table size the grid is committed in sample chunks: same rows, one version."""
    from radgen.ingestion import omics

    rng = np.random.default_rng(4)
    classes = ["Missense_Mutation", "Silent", "Nonsense_Mutation", "Intron"]
    samples = [f"TCGA-AB-{i:04d}-01" for i in range(30)]
    rows = [
        (
            f"G{rng.integers(0, 12)}",
            samples[rng.integers(0, 30)],
            classes[rng.integers(0, 4)],
            1000 + i,
        )
        for i in range(200)
    ]
    maf = tmp_path / "big.maf"
    maf.write_text(
        "Hugo_Symbol\tTumor_Sample_Barcode\tVariant_Classification\tChromosome\tStart_Position\n"
        + "".join(f"{g}\t{s}\t{c}\t1\t{p}\n" for g, s, c, p in rows)
    )
    monkeypatch.setattr(omics, "LARGE_TABLE_ROWS", 50)
    original = omics._grid_chunks
    monkeypatch.setattr(
        omics,
        "_grid_chunks",
        lambda grid, run_id, *, skip: original(grid, run_id, skip=skip, samples_per_chunk=7),
    )
    before = _versions(catalog).get("gene_mutation", -1)
    _ingest(catalog, maf, "mutations")
    assert _versions(catalog)["gene_mutation"] == before + 1  # five chunks, one commit
    got = catalog.sql("select sample_id, gene, mutated, n_variants from gene_mutation")
    present = sorted({s for _, s, _, _ in rows})
    genes = sorted({g for g, _, _, _ in rows})
    assert len(got) == len(present) * len(genes)  # complete grid
    counted = pd.Series(
        [(s, g) for g, s, c, _ in rows if c in {"Missense_Mutation", "Nonsense_Mutation"}]
    ).value_counts()
    for row in got.itertuples():
        expected = int(counted.get((row.sample_id, row.gene), 0))
        assert row.n_variants == expected
        assert row.mutated == (expected > 0)
    again = _versions(catalog)
    _ingest(catalog, maf, "mutations")
    assert _versions(catalog) == again  # the same file again: nothing new
