"""Omics ingestion: radgen vs a plain pandas read-and-transform of the same files, one run.

Two files are generated (seeded): a gene x sample count matrix (default 20,000 x 1,000) with
a gene-length table, and a MAF (default 500,000 variants over 1,000 samples and 10,000
genes). Each side runs in its own subprocess so its peak RSS is its own:

* **pandas** (what users write today): ``read_csv``; for counts, ``melt`` to long rows, TPM,
  FPKM and log2(1+TPM) with NumPy, ``to_parquet``; for the MAF, VAF, a sample x gene
  ``crosstab`` of nonsynonymous variants, both written with ``to_parquet``. No checks.
* **radgen**: ``ingest_omics`` in a run (parsing with line-numbered checks, the quality
  suite, the Delta commit, the Zarr matrix, subjects), i.e. everything ``radgen ingest omics``
  does after interpreter start-up.

Prints seconds, peak RSS and the ratio (pandas seconds / radgen seconds: above 1 means radgen
is faster).

Usage: python benchmarks/bench_omics.py [--genes 20000] [--samples 1000] [--variants 500000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

CLASSES = ["Missense_Mutation", "Silent", "Nonsense_Mutation", "Frame_Shift_Del", "Intron"]


def write_counts(folder: Path, genes: int, samples: int) -> tuple[Path, Path]:
    """A Poisson count matrix and a gene-length table (seeded)."""
    rng = np.random.default_rng(0)
    counts = pd.DataFrame(
        rng.poisson(20, (genes, samples)).astype(np.int32),
        index=pd.Index([f"ENSG{i:011d}" for i in range(genes)], name="gene_id"),
        columns=[f"TCGA-B{i // 100:02d}-{i % 100:04d}-01" for i in range(samples)],
    )
    counts.to_csv(folder / "counts.tsv", sep="\t")
    lengths = pd.Series(rng.integers(300, 8000, genes), index=counts.index, name="length")
    lengths.to_csv(folder / "lengths.tsv", sep="\t", header=False)
    return folder / "counts.tsv", folder / "lengths.tsv"


def write_maf(folder: Path, variants: int, samples: int, genes: int) -> Path:
    """A MAF with the columns radgen and cBioPortal read (seeded)."""
    rng = np.random.default_rng(1)
    chrom = rng.integers(1, 23, variants)
    start = rng.integers(1_000_000, 40_000_000, variants)
    maf = pd.DataFrame(
        {
            "Hugo_Symbol": np.char.add("GENE", rng.integers(0, genes, variants).astype(str)),
            "Tumor_Sample_Barcode": [
                f"TCGA-B{i // 100:02d}-{i % 100:04d}-01" for i in rng.integers(0, samples, variants)
            ],
            "Variant_Classification": rng.choice(CLASSES, variants),
            "Variant_Type": "SNP",
            "Chromosome": chrom,
            "Start_Position": start,
            "End_Position": start,
            "Reference_Allele": rng.choice(list("ACGT"), variants),
            "Tumor_Seq_Allele2": rng.choice(list("ACGT"), variants),
            "t_ref_count": rng.integers(5, 200, variants),
            "t_alt_count": rng.integers(1, 100, variants),
            "NCBI_Build": "GRCh37",
        }
    )
    maf.to_csv(folder / "variants.maf", sep="\t", index=False)
    return folder / "variants.maf"


PANDAS_COUNTS = """
import numpy as np, pandas as pd
counts = pd.read_csv({counts!r}, sep="\\t", index_col=0)
lengths = pd.read_csv({lengths!r}, sep="\\t", header=None, index_col=0).iloc[:, 0]
L = lengths.reindex(counts.index).to_numpy(float)[:, None]
c = counts.to_numpy(float)
rate = c / L
tpm = rate / rate.sum(axis=0) * 1e6
fpkm = c * 1e9 / (L * c.sum(axis=0))
long = counts.reset_index().melt(id_vars="gene_id", var_name="sample_id", value_name="count")
long["length"] = np.tile(L[:, 0], c.shape[1])
long["tpm"] = tpm.T.ravel()
long["fpkm"] = fpkm.T.ravel()
long["log2_tpm"] = np.log2(1 + long["tpm"])
long.to_parquet({out!r} + "/expression.parquet")
"""

PANDAS_MAF = """
import pandas as pd
maf = pd.read_csv({maf!r}, sep="\\t", low_memory=False)
maf["vaf"] = maf["t_alt_count"] / (maf["t_alt_count"] + maf["t_ref_count"])
maf.to_parquet({out!r} + "/mutations.parquet")
hits = maf[maf["Variant_Classification"].isin(["Missense_Mutation", "Nonsense_Mutation",
                                                "Frame_Shift_Del"])]
matrix = pd.crosstab(hits["Tumor_Sample_Barcode"], hits["Hugo_Symbol"]) > 0
matrix = matrix.reindex(index=sorted(maf["Tumor_Sample_Barcode"].unique()),
                        columns=sorted(maf["Hugo_Symbol"].unique()), fill_value=False)
matrix.stack().rename("mutated").reset_index().to_parquet({out!r} + "/gene_mutation.parquet")
"""

RADGEN = """
from radgen.ingestion.omics import OmicsOptions, ingest_omics
from radgen.platform.catalog import Catalog
catalog = Catalog.init({out!r} + "/catalog")
with catalog.run("ingest-omics", {{}}) as run:
    ingest_omics(run, {path!r}, {kind!r}, OmicsOptions({options}))
"""

TIMED = """
import resource, sys, time
t0 = time.perf_counter()
exec(compile(sys.stdin.read(), "<bench>", "exec"))
seconds = time.perf_counter() - t0
print({{"seconds": seconds, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}})
"""


def _timed(code: str, imports: str) -> dict[str, float]:
    """Run `code` in a fresh interpreter; its wall time (`imports` excluded) and peak RSS."""
    result = subprocess.run(
        [sys.executable, "-c", imports + TIMED.format()],
        input=textwrap.dedent(code),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(result.stderr)
    parsed: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1].replace("'", '"'))
    return parsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--genes", type=int, default=20_000)
    parser.add_argument("--samples", type=int, default=1_000)
    parser.add_argument("--variants", type=int, default=500_000)
    parser.add_argument("--maf-genes", type=int, default=10_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        counts, lengths = write_counts(work, args.genes, args.samples)
        maf = write_maf(work, args.variants, args.samples, args.maf_genes)
        print(
            f"count matrix {args.genes:,} x {args.samples:,} "
            f"({counts.stat().st_size / 1e6:.0f} MB); "
            f"MAF {args.variants:,} variants ({maf.stat().st_size / 1e6:.0f} MB)"
        )
        cases = [
            (
                "count matrix",
                PANDAS_COUNTS.format(counts=str(counts), lengths=str(lengths), out=tmp),
                RADGEN.format(
                    out=tmp + "/r1",
                    path=str(counts),
                    kind="expression",
                    options=f"lengths={str(lengths)!r}",
                ),
            ),
            (
                "MAF",
                PANDAS_MAF.format(maf=str(maf), out=tmp),
                RADGEN.format(out=tmp + "/r2", path=str(maf), kind="mutations", options=""),
            ),
        ]
        print(f"{'file':14} {'pandas s':>9} {'MB':>6} {'radgen s':>9} {'MB':>6} {'ratio':>6}")
        for name, baseline, ours in cases:
            base = _timed(baseline, "import numpy, pandas, pyarrow.parquet\n")
            mine = _timed(ours, "import radgen.ingestion.omics, radgen.platform.catalog\n")
            print(
                f"{name:14} {base['seconds']:9.1f} {base['rss_mb']:6.0f} "
                f"{mine['seconds']:9.1f} {mine['rss_mb']:6.0f} "
                f"{base['seconds'] / mine['seconds']:5.2f}x"
            )


if __name__ == "__main__":
    main()
