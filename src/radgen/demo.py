"""A synthetic radiogenomics cohort with known truth, and the demo pipeline that uses it.

:func:`generate_cohort` writes, for each patient, a CT series as real DICOM files (pydicom,
realistic headers) from one of three simulated scanners, a NIfTI tumour mask on the same
grid, and linked omics files: a MAF, a SEG file, RSEM gene results, a methylation beta table
and a clinical table. Two effects are planted:

* **biology**: tumours of TP53-mutated patients are more heterogeneous (intensity SD
  ``sd_mutant`` instead of ``sd_wildtype`` HU), so ``stat_var`` separates the groups;
* **batch**: each scanner maps true HU through its own affine ``a * HU + b`` and noise level,
  which harmonization must remove.

:func:`run_demo` runs the whole pipeline on such a cohort.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import numpy.typing as npt
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid
from scipy import ndimage

__all__ = ["SCANNERS", "CohortTruth", "Scanner", "generate_cohort", "run_demo", "write_ct_series"]

log = logging.getLogger(__name__)

#: Root under which demo UIDs are generated (pydicom's, so they are valid UIDs).
_UID_PREFIX = "1.2.826.0.1.3680043.8.498."

GENES = ("TP53", "KRAS", "EGFR", "PIK3CA", "PTEN", "BRAF", "STK11", "KEAP1", "NF1", "RB1")


@dataclass(frozen=True)
class Scanner:
    """A simulated CT scanner: its header values and its intensity batch effect."""

    manufacturer: str
    model: str
    software: str
    kernel: str
    kvp: float
    pixel_spacing: float
    slice_thickness: float
    scale: float
    shift: float
    noise_sd: float


SCANNERS: tuple[Scanner, ...] = (
    Scanner(
        "SIEMENS",
        "SOMATOM Definition AS",
        "syngo CT VA48A",
        "B30f",
        120.0,
        0.78,
        2.5,
        1.00,
        0.0,
        8.0,
    ),
    Scanner(
        "GE MEDICAL SYSTEMS",
        "LightSpeed VCT",
        "LightSpeedverrel",
        "STANDARD",
        100.0,
        0.86,
        2.5,
        1.08,
        25.0,
        11.0,
    ),
    Scanner("Philips", "Brilliance 64", "3.2.1", "C", 140.0, 0.98, 3.0, 0.94, -20.0, 6.0),
)


@dataclass
class CohortTruth:
    """What was planted, for tests and the demo report."""

    out_dir: str
    seed: int
    sd_wildtype: float
    sd_mutant: float
    patients: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form (also written to ``truth.json``)."""
        return asdict(self)


def _uid(rng: np.random.Generator) -> str:
    return str(generate_uid(prefix=_UID_PREFIX, entropy_srcs=[str(rng.integers(0, 2**62))]))


def _phantom(
    rng: np.random.Generator,
    shape: tuple[int, int, int],
    spacing: tuple[float, float, float],
    tumour_sd: float,
    radius_mm: float,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.uint8]]:
    """True HU volume (body, lungs, tumour with smooth texture) and the tumour mask."""
    nz, ny, nx = shape
    z, y, x = np.meshgrid(
        (np.arange(nz) - nz / 2) * spacing[0],
        (np.arange(ny) - ny / 2) * spacing[1],
        (np.arange(nx) - nx / 2) * spacing[2],
        indexing="ij",
    )
    half_x, half_y = nx * spacing[2] * 0.45, ny * spacing[1] * 0.38
    body = (x / half_x) ** 2 + (y / half_y) ** 2 <= 1.0
    hu = np.full(shape, -1000.0)
    hu[body] = 40.0
    for side in (-1, 1):
        lung = ((x - side * half_x * 0.45) / (half_x * 0.33)) ** 2 + (
            y / (half_y * 0.7)
        ) ** 2 <= 1.0
        hu[lung & body] = -850.0
    cx = rng.uniform(-0.15, 0.15) * half_x + half_x * 0.45
    cy = rng.uniform(-0.2, 0.2) * half_y
    cz = rng.uniform(-0.15, 0.15) * nz * spacing[0]
    tumour = ((x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2) <= radius_mm**2
    texture = ndimage.gaussian_filter(rng.standard_normal(shape), sigma=1.2)
    texture /= texture[tumour].std() or 1.0
    hu[tumour] = 60.0 + tumour_sd * texture[tumour]
    return hu, tumour.astype(np.uint8)


def write_ct_series(
    folder: str | Path,
    values: npt.NDArray[np.floating[Any]] | npt.NDArray[np.integer[Any]],
    *,
    spacing: tuple[float, float, float],
    scanner: Scanner = SCANNERS[0],
    patient: dict[str, Any] | None = None,
    orientation: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
    origin: tuple[float, float, float] | None = None,
    slopes: npt.ArrayLike | None = None,
    intercepts: npt.ArrayLike | None = None,
    seed: int = 0,
) -> tuple[str, list[Path], npt.NDArray[np.float64]]:
    """Write a (z, y, x) volume of Hounsfield units as one CT series of real DICOM files.

    Slice ``k`` lies at ``origin + k * spacing[0] * normal`` where ``normal`` is the cross
    product of the row and column directions of `orientation`; files are named by their
    SOP Instance UID, so names carry no order. Stored values are
    ``round((value - intercept) / slope)`` as unsigned 16-bit, per slice.

    Parameters
    ----------
    folder : path-like
        Created if missing.
    values : ndarray of shape (z, y, x)
        Intensities in HU.
    spacing : tuple of float
        (slice spacing, row spacing, column spacing) in mm.
    scanner : Scanner
        Header values (manufacturer, model, kernel, kVp).
    patient : dict, optional
        ``patient_id``, ``sex``, ``age``.
    orientation : 6 floats
        ImageOrientationPatient (row direction, column direction).
    origin : 3 floats, optional
        Position of voxel (0, 0, 0), LPS mm; default centres the slice on the axis.
    slopes, intercepts : array_like, optional
        RescaleSlope / RescaleIntercept per slice (default 1 and -1024).
    seed : int
        Seed of the UIDs.

    Returns
    -------
    series_uid : str
    paths : list of Path
        Files in slice order (index k).
    affine : ndarray of shape (4, 4)
        Maps array indices (x, y, z, 1) to LPS mm.
    """
    rng = np.random.default_rng(seed)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    vol = np.asarray(values, dtype=np.float64)
    nz, ny, nx = vol.shape
    slope = np.broadcast_to(np.asarray(1.0 if slopes is None else slopes, dtype=float), (nz,))
    intercept = np.broadcast_to(
        np.asarray(-1024.0 if intercepts is None else intercepts, dtype=float), (nz,)
    )
    row_dir = np.asarray(orientation[:3], dtype=float)
    col_dir = np.asarray(orientation[3:], dtype=float)
    normal = np.cross(row_dir, col_dir)
    start = (
        np.array([-(nx / 2) * spacing[2], -(ny / 2) * spacing[1], -100.0])
        if origin is None
        else np.asarray(origin)
    )
    patient = patient or {"patient_id": "RG-TEST-0001", "sex": "O", "age": 60}
    study_uid, series_uid, frame_uid = _uid(rng), _uid(rng), _uid(rng)
    when = dt.date(2024, 1, 1) + dt.timedelta(days=int(rng.integers(0, 600)))
    paths: list[Path] = []
    for k in range(nz):
        stored = np.round((vol[k] - intercept[k]) / slope[k])
        if stored.min() < 0 or stored.max() > 65535:
            raise ValueError(f"slice {k}: values do not fit unsigned 16 bits with this rescale")
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        sop_uid = _uid(rng)
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = _UID_PREFIX + "1"
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = sop_uid
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = frame_uid
        ds.PatientID = patient["patient_id"]
        ds.PatientName = f"Demo^{str(patient['patient_id']).split('-')[-1]}"
        ds.PatientSex = patient.get("sex", "O")
        ds.PatientAge = f"{int(patient.get('age', 60)):03d}Y"
        ds.StudyDate = ds.SeriesDate = when.strftime("%Y%m%d")
        ds.StudyTime = ds.SeriesTime = "101500"
        ds.AccessionNumber = f"ACC{rng.integers(10**6, 10**7)}"
        ds.StudyID = "1"
        ds.Modality = "CT"
        ds.SeriesNumber = 2
        ds.InstanceNumber = nz - k  # reversed on purpose: never the sort key
        ds.SeriesDescription = "CHEST W/O CONTRAST"
        ds.BodyPartExamined = "CHEST"
        ds.Manufacturer = scanner.manufacturer
        ds.ManufacturerModelName = scanner.model
        ds.SoftwareVersions = scanner.software
        ds.ConvolutionKernel = scanner.kernel
        ds.KVP = scanner.kvp
        ds.XRayTubeCurrent = 200
        ds.SliceThickness = spacing[0]
        ds.PixelSpacing = [spacing[1], spacing[2]]
        position = start + k * spacing[0] * normal
        ds.ImagePositionPatient = [float(v) for v in position]
        ds.ImageOrientationPatient = [float(v) for v in orientation]
        ds.SliceLocation = float(position @ normal)
        ds.PatientPosition = "FFS"
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = ny, nx
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 0
        ds.RescaleIntercept = f"{intercept[k]:.6g}"
        ds.RescaleSlope = f"{slope[k]:.6g}"
        ds.RescaleType = "HU"
        ds.WindowCenter, ds.WindowWidth = 40, 400
        ds.PixelData = stored.astype(np.uint16).tobytes()
        path = out / f"{sop_uid.rsplit('.', 1)[-1]}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    affine = np.eye(4)
    affine[:3, :3] = np.column_stack(
        [row_dir * spacing[2], col_dir * spacing[1], normal * spacing[0]]
    )
    affine[:3, 3] = start
    return series_uid, paths, affine


def write_nifti_mask(
    path: Path, mask: npt.NDArray[np.uint8], affine_lps: npt.NDArray[np.float64]
) -> None:
    """NIfTI mask as converters write it: (x, y, z) voxels with a RAS affine."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine_lps
    img = nib.Nifti1Image(np.transpose(mask, (2, 1, 0)).astype(np.uint8), ras)
    img.set_qform(ras, code=1)
    img.set_sform(ras, code=1)
    path.write_bytes(gzip.compress(img.to_bytes(), mtime=0))  # same bytes every run


def _write_omics(out: Path, rng: np.random.Generator, patients: list[dict[str, Any]]) -> None:
    omics = out / "omics"
    (omics / "rsem").mkdir(parents=True, exist_ok=True)
    maf_cols = [
        "Hugo_Symbol",
        "Entrez_Gene_Id",
        "Center",
        "NCBI_Build",
        "Chromosome",
        "Start_Position",
        "End_Position",
        "Strand",
        "Variant_Classification",
        "Variant_Type",
        "Reference_Allele",
        "Tumor_Seq_Allele1",
        "Tumor_Seq_Allele2",
        "Tumor_Sample_Barcode",
        "Matched_Norm_Sample_Barcode",
        "t_ref_count",
        "t_alt_count",
    ]
    chrom = {
        "TP53": ("17", 7_673_700),
        "KRAS": ("12", 25_245_300),
        "EGFR": ("7", 55_191_800),
        "PIK3CA": ("3", 179_218_300),
        "PTEN": ("10", 87_933_100),
        "BRAF": ("7", 140_753_300),
        "STK11": ("19", 1_220_300),
        "KEAP1": ("19", 10_491_600),
        "NF1": ("17", 31_095_300),
        "RB1": ("13", 48_303_700),
    }
    lines = ["#version 2.4", "\t".join(maf_cols)]
    for p in patients:
        variants = []
        if p["tp53_mutated"]:
            variants.append(
                (
                    "TP53",
                    str(rng.choice(["Missense_Mutation", "Nonsense_Mutation", "Frame_Shift_Del"])),
                )
            )
        for gene in rng.choice(GENES[1:], size=int(rng.integers(0, 3)), replace=False):
            variants.append((str(gene), str(rng.choice(["Missense_Mutation", "Silent", "Intron"]))))
        if not p["tp53_mutated"] and rng.random() < 0.5:
            variants.append(("TP53", "Silent"))  # silent variants do not count as mutated
        if not variants:  # every sample is sequenced: give it at least a non-coding variant
            variants.append((str(rng.choice(GENES[1:])), "Intron"))
        for gene, klass in variants:
            c, base = chrom[gene]
            start = base + int(rng.integers(0, 5000))
            deletion = klass == "Frame_Shift_Del"
            ref, alt = ("C", "-") if deletion else ("C", "T")
            depth = int(rng.integers(60, 200))
            alt_n = int(rng.binomial(depth, float(rng.uniform(0.15, 0.5))))
            lines.append(
                "\t".join(
                    [
                        gene,
                        "0",
                        "demo",
                        "GRCh38",
                        c,
                        str(start),
                        str(start),
                        "+",
                        klass,
                        "DEL" if deletion else "SNP",
                        ref,
                        ref,
                        alt,
                        p["sample_id"],
                        p["patient_id"] + "-10",
                        str(depth - alt_n),
                        str(alt_n),
                    ]
                )
            )
    (omics / "cohort.maf").write_text("\n".join(lines) + "\n")

    seg = ["ID\tchrom\tloc.start\tloc.end\tnum.mark\tseg.mean"]
    for p in patients:
        for c in ("7", "17"):
            cut = int(rng.integers(20_000_000, 40_000_000))
            loss = -0.6 if (c == "17" and p["tp53_mutated"]) else float(rng.normal(0, 0.08))
            seg.append(
                f"{p['sample_id']}\t{c}\t1\t{cut}\t{int(rng.integers(50, 500))}\t{rng.normal(0, 0.05):.4f}"
            )
            seg.append(
                f"{p['sample_id']}\t{c}\t{cut + 1}\t80000000\t{int(rng.integers(50, 500))}\t{loss:.4f}"
            )
    (omics / "cohort.seg").write_text("\n".join(seg) + "\n")

    genes = [*GENES, *(f"GENE{i:03d}" for i in range(1, 91))]
    lengths = rng.integers(800, 6000, size=len(genes)).astype(float)
    for p in patients:
        counts = rng.gamma(2.0, 400.0, size=len(genes))
        if p["tp53_mutated"]:
            counts[0] *= 0.4  # nonsense-mediated decay lowers TP53 expression
        counts = np.round(counts, 2)
        eff = lengths - 180.0
        rate = counts / eff
        tpm = rate / rate.sum() * 1e6
        fpkm = counts / (eff / 1e3) / (counts.sum() / 1e6)
        rows = ["gene_id\ttranscript_id(s)\tlength\teffective_length\texpected_count\tTPM\tFPKM"]
        for i, gene in enumerate(genes):
            rows.append(
                f"{gene}|{1000 + i}\t{gene}.t1\t{lengths[i]:.2f}\t{eff[i]:.2f}\t"
                f"{counts[i]:.2f}\t{tpm[i]:.2f}\t{fpkm[i]:.2f}"
            )
        payload = gzip.compress(("\n".join(rows) + "\n").encode(), mtime=0)  # same bytes every run
        (omics / "rsem" / f"{p['sample_id']}.genes.results.gz").write_bytes(payload)

    probes = [f"cg{10_000_000 + i:08d}" for i in range(40)]
    meth = ["probe_id\t" + "\t".join(p["sample_id"] for p in patients)]
    for i, probe in enumerate(probes):
        centre = float(rng.uniform(0.1, 0.9))
        vals = []
        for p in patients:
            shift = 0.25 if (i < 5 and p["tp53_mutated"]) else 0.0
            vals.append(f"{float(np.clip(rng.normal(centre + shift, 0.05), 0.001, 0.999)):.4f}")
        meth.append(probe + "\t" + "\t".join(vals))
    (omics / "methylation_beta.tsv").write_text("\n".join(meth) + "\n")

    clin = ["PATIENT_ID\tAGE\tSEX\tSTAGE\tOS_MONTHS\tOS_STATUS\tSCANNER_SITE"]
    for p in patients:
        os_months = rng.exponential(20.0 if p["tp53_mutated"] else 36.0)
        status = "1:DECEASED" if rng.random() < 0.6 else "0:LIVING"
        clin.append(
            f"{p['patient_id']}\t{p['age']}\t{p['sex']}\t{p['stage']}\t{os_months:.1f}\t{status}\t{p['scanner']}"
        )
    (omics / "clinical.tsv").write_text("\n".join(clin) + "\n")


def generate_cohort(
    out_dir: str | Path,
    *,
    n_patients: int = 12,
    seed: int = 0,
    shape: tuple[int, int, int] = (32, 128, 128),
    sd_wildtype: float = 12.0,
    sd_mutant: float = 40.0,
    radius_mm: tuple[float, float] = (10.0, 14.0),
) -> CohortTruth:
    """Write a synthetic cohort (DICOM, NIfTI masks, omics) under `out_dir`.

    Parameters
    ----------
    out_dir : path-like
        Created if missing; receives ``dicom/``, ``masks/``, ``omics/`` and ``truth.json``.
    n_patients : int
        Patients; scanners are assigned round-robin and TP53 status alternates, so both
        groups exist from two patients on and genotype is not confounded with scanner.
    seed : int
        Random seed; the same seed writes the same pixel values and omics values.
    shape : tuple of int
        Volume shape (z, y, x).
    sd_wildtype, sd_mutant : float
        Tumour intensity SD (HU) of TP53 wild-type and mutated patients (the planted effect).
    radius_mm : tuple of float
        Range of the spherical tumours' radii (drawn uniformly per patient).

    Returns
    -------
    CohortTruth
    """
    if n_patients < 2:
        raise ValueError("a cohort needs at least 2 patients")
    out = Path(out_dir)
    rng = np.random.default_rng(seed)
    truth = CohortTruth(out_dir=str(out), seed=seed, sd_wildtype=sd_wildtype, sd_mutant=sd_mutant)
    patients: list[dict[str, Any]] = []
    for i in range(n_patients):
        scanner_index = i % len(SCANNERS)
        patients.append(
            {
                "patient_id": f"RG-DM-{i + 1:04d}",
                "sample_id": f"RG-DM-{i + 1:04d}-01",
                "scanner": scanner_index,
                "tp53_mutated": i % 2 == 0,  # alternates, so scanners and genotypes are crossed
                "age": int(rng.integers(45, 85)),
                "sex": str(rng.choice(["F", "M"])),
                "stage": str(rng.choice(["I", "II", "III", "IV"])),
                "radius_mm": float(rng.uniform(*radius_mm)),
            }
        )
    for p in patients:
        scanner = SCANNERS[p["scanner"]]
        spacing = (scanner.slice_thickness, scanner.pixel_spacing, scanner.pixel_spacing)
        sd = sd_mutant if p["tp53_mutated"] else sd_wildtype
        hu, mask = _phantom(rng, shape, spacing, sd, p["radius_mm"])
        measured = scanner.scale * hu + scanner.shift + rng.normal(0.0, scanner.noise_sd, hu.shape)
        measured = np.clip(np.round(measured), -1024, 3071)
        series_uid, _, affine = write_ct_series(
            out / "dicom" / p["patient_id"],
            measured,
            spacing=spacing,
            scanner=scanner,
            patient=p,
            # table height and field of view differ per scan, so every series has its own grid
            origin=(
                -(shape[2] / 2) * spacing[2] + round(float(rng.uniform(-5, 5)), 1),
                -(shape[1] / 2) * spacing[1] + round(float(rng.uniform(-5, 5)), 1),
                round(float(rng.uniform(-140, -60)), 1),
            ),
            seed=int(rng.integers(0, 2**31)),
        )
        write_nifti_mask(out / "masks" / f"{p['patient_id']}_tumour.nii.gz", mask, affine)
        p.update(series_uid=series_uid, tumour_voxels=int(mask.sum()), scanner_model=scanner.model)
    _write_omics(out, rng, patients)
    truth.patients = patients
    (out / "truth.json").write_text(json.dumps(truth.to_json(), indent=2) + "\n")
    return truth


#: Every IBSI feature class on the original image (486 features per ROI).
DEMO_SETTINGS = {
    "setting": {"binWidth": 25, "label": 1, "resegmentRange": [-1000, 3000]},
    "imageType": {"Original": {}},
}

#: TP53 status per imaging subject: the covariate harmonization keeps.
DEMO_GENOTYPE_SQL = (
    "select s.subject_id, g.mutated as tp53 from gene_mutation g "
    "join subjects s using (sample_id) where g.gene = 'TP53'"
)

DEMO_DATASET_SQL = (
    "SELECT f.*, g.mutated AS tp53_mutated, c.age, c.sex, c.stage, c.os_months, c.os_status "
    "FROM features_radiomics f "
    "JOIN subjects s ON s.subject_id = f.subject_id "
    "JOIN gene_mutation g ON g.sample_id = s.sample_id AND g.gene = 'TP53' "
    "LEFT JOIN clinical c ON c.patient_id = s.patient_id "
    "ORDER BY f.subject_id"
)


def run_demo(
    root: str,
    *,
    n_patients: int = 12,
    seed: int = 0,
    scheduler: str | None = None,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Generate a cohort next to the catalog and run the whole pipeline on it.

    Steps: init, ingest DICOM, ingest masks, ingest omics (MAF, SEG, RSEM, methylation,
    clinical), compute first-order features, harmonize them across scanners with ComBat
    (preserving TP53 status), publish ``demo-cohort``, run every quality suite again on what is
    stored, and test the planted TP53 -> heterogeneity effect.

    Parameters
    ----------
    root : str
        Catalog root (created).
    n_patients, seed : int
        Cohort size and seed.
    scheduler : str, optional
        Dask scheduler address; a LocalCluster otherwise.
    say : callable
        Receives one line per step.

    Returns
    -------
    dict
        Summary: root, cohort folder, table versions, dataset version, association result.
    """
    from radgen.analysis.association import mutation_feature_association
    from radgen.features.compute import compute_features
    from radgen.features.harmonize_table import harmonize_table
    from radgen.features.settings import load_settings
    from radgen.ingestion.ingest_dicom import ingest_dicom
    from radgen.ingestion.masks import ingest_masks
    from radgen.ingestion.omics import ingest_omics
    from radgen.platform.catalog import Catalog
    from radgen.platform.cluster import dask_client
    from radgen.platform.datasets import publish_dataset
    from radgen.validation.catalog_check import validate_catalog

    catalog = Catalog.init(root)
    cohort_dir = (
        Path(catalog.root.join("demo-input"))
        if catalog.root.is_local
        else Path("radgen-demo-input")
    )
    say(f"generating {n_patients} synthetic patients (seed {seed}) in {cohort_dir}")
    generate_cohort(cohort_dir, n_patients=n_patients, seed=seed)
    params = {"n_patients": n_patients, "seed": seed}
    with dask_client(scheduler) as client:
        with catalog.run("ingest dicom", {**params, "paths": [str(cohort_dir / "dicom")]}) as run:
            report = ingest_dicom(run, [cohort_dir / "dicom"], client)
        say(
            f"ingested {len(report.series) + len(report.unchanged)} CT series ({len(report.quarantined)} quarantined)"
        )
        masks = cohort_dir / "masks"
        with catalog.run("ingest masks", {"paths": [str(masks)]}) as run:
            mask_report = ingest_masks(run, [masks])  # each mask finds its image by its voxel grid
        say(
            f"ingested {len(mask_report.rois)} tumour ROIs ({len(mask_report.unchanged)} already present)"
        )
        omics = cohort_dir / "omics"
        inputs = [
            (omics / "cohort.maf", "mutations"),
            (omics / "cohort.seg", "cna-segments"),
            (omics / "methylation_beta.tsv", "methylation"),
            (omics / "clinical.tsv", "clinical"),
        ]
        inputs += [(f, "rsem") for f in sorted((omics / "rsem").glob("*.genes.results.gz"))]
        for path, kind in inputs:
            with catalog.run("ingest omics", {"path": str(path), "kind": kind}) as run:
                ingest_omics(run, str(path), kind)
        say(
            f"ingested {len(inputs)} omics files (MAF, SEG, methylation, clinical, {len(inputs) - 4} RSEM)"
        )
        settings = load_settings(DEMO_SETTINGS)
        with catalog.run(
            "features compute", {"settings": settings.as_params(), "name": "radiomics"}
        ) as run:
            feats = compute_features(run, client, settings, name="radiomics")
        say(
            f"computed {feats.n_features} IBSI features (first order, shape, local intensity, "
            f"IVH, 6 texture families) for {feats.n_rois} ROIs "
            f"-> features_radiomics@{feats.version}"
        )
    join = DEMO_GENOTYPE_SQL
    harmonize_params = {
        "table": "features_radiomics",
        "method": "combat",
        "covariates": ["tp53"],
        "join": join,
    }
    per_scanner = catalog.sql(
        "select count(*) as n from features_radiomics group by scanner_batch"
    )["n"]
    if per_scanner.min() < 2:
        say(
            f"skipped harmonization: ComBat needs 2 scans per scanner ({2 * len(SCANNERS)}+ patients)"
        )
    else:
        with catalog.run("harmonize", harmonize_params) as run:
            harm = harmonize_table(
                run, table="features_radiomics", covariates=["tp53"], join_sql=join
            )
        say(
            f"harmonized scanners with ComBat (TP53 preserved) -> {harm.table}@{harm.version}: variance "
            f"explained by scanner {harm.batch_eta2_before:.2f} -> {harm.batch_eta2_after:.2f} (median)"
        )
    with catalog.run("datasets publish", {"name": "demo-cohort", "sql": DEMO_DATASET_SQL}) as run:
        manifest = publish_dataset(
            run,
            "demo-cohort",
            DEMO_DATASET_SQL,
            description="Demo cohort: first-order features, TP53 status, clinical",
        )
    say(
        f"published demo-cohort@{manifest['version']} ({manifest['n_rows']} rows, "
        f"{len(manifest['files'])} file(s) listed with SHA-256 in its manifest)"
    )
    with catalog.run("validate", {"stages": "all"}) as run:
        results = validate_catalog(run)
        run.message = f"{len(results)} suites"
    statuses = [r.status for r in results]
    say(
        f"quality suites on every stage: {statuses.count('passed')} passed, "
        f"{statuses.count('warnings')} with warnings, {statuses.count('failed')} failed"
    )
    data = catalog.dataset("demo-cohort", manifest["version"])
    assoc = mutation_feature_association(
        data, group="tp53_mutated", features=["stat_var", "ih_entropy_fbs_w25", "stat_mean"]
    )
    var = assoc.set_index("feature").loc["stat_var"]
    say(
        "planted effect: TP53-mutated tumours are more heterogeneous: stat_var median "
        f"{var['median_true']:.0f} vs {var['median_false']:.0f} HU^2 (Mann-Whitney p = {var['p_value']:.2g})"
    )
    return {
        "root": catalog.root.url,
        "cohort": str(cohort_dir),
        "tables": catalog.list_tables().set_index("table")["version"].to_dict(),
        "dataset": f"demo-cohort@{manifest['version']}",
        "association": assoc.to_dict("records"),
        "suites": {f"{r.suite}:{r.target}": r.status for r in results},
    }
