"""Arrow schema of every catalog table: the single source of truth.

Writers cast to these schemas, validation suites derive their expectations from them
(non-null, key uniqueness, value ranges) and the docs list them. Field metadata keys:

``description``
    What the column holds, with its unit.
``key``
    ``"true"`` on the columns that identify a row (unique together).
``min`` / ``max``
    Inclusive plausible range, checked by the suites.

Feature tables (``features_<name>``) and ``clinical`` have dynamic columns: their fixed part
is declared here and the rest is added by their writers.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa

__all__ = [
    "FEATURE_TABLE_BASE",
    "SCANNER_COLUMNS",
    "TABLES",
    "field",
    "key_columns",
    "schema_for",
]


def field(
    name: str,
    dtype: pa.DataType,
    description: str,
    *,
    nullable: bool = True,
    key: bool = False,
    min: float | None = None,
    max: float | None = None,
    severity: str = "critical",
    key_nullable: bool = False,
) -> pa.Field:
    """Declare one column with its description, key flag and range.

    `severity` applies to the range: ``critical`` for impossible values (a VAF above 1),
    ``warning`` for implausible ones. A key column is non-null unless `key_nullable`.
    """
    meta = {"description": description}
    if key:
        meta["key"] = "true"
    if min is not None:
        meta["min"] = repr(float(min))
    if max is not None:
        meta["max"] = repr(float(max))
    if severity != "critical":
        meta["severity"] = severity
    return pa.field(name, dtype, nullable=nullable and (not key or key_nullable), metadata=meta)


_S = pa.string()
_F = pa.float64()
_I = pa.int64()
_B = pa.bool_()
_TS = pa.timestamp("us", tz="UTC")
_LF = pa.list_(pa.float64())
_LI = pa.list_(pa.int64())

#: Scanner metadata carried on every series and feature row (harmonization needs them).
SCANNER_COLUMNS: tuple[pa.Field, ...] = (
    field("manufacturer", _S, "DICOM Manufacturer (0008,0070)"),
    field("manufacturer_model_name", _S, "DICOM ManufacturerModelName (0008,1090)"),
    field("software_versions", _S, "DICOM SoftwareVersions (0018,1020), joined with '\\'"),
    field("kvp", _F, "Peak kilovoltage, kV (0018,0060)", min=20, max=200),
    field("convolution_kernel", _S, "Reconstruction kernel (0018,1210), joined with '\\'"),
    field("slice_thickness", _F, "Nominal slice thickness, mm (0018,0050)", min=0, max=100),
    field("magnetic_field_strength", _F, "MR field strength, T (0018,0087)", min=0, max=20),
    field("repetition_time", _F, "MR repetition time, ms (0018,0080)", min=0),
    field("echo_time", _F, "MR echo time, ms (0018,0081)", min=0),
    field("pixel_spacing", _LF, "In-plane spacing [row, column], mm (0028,0030)"),
)

_SERIES = pa.schema(
    [
        field("series_uid", _S, "SeriesInstanceUID", key=True),
        field("study_uid", _S, "StudyInstanceUID"),
        field("subject_id", _S, "Subject (patient) identifier after de-identification"),
        field("modality", _S, "DICOM Modality", nullable=False),
        field("series_description", _S, "DICOM SeriesDescription"),
        field("body_part", _S, "DICOM BodyPartExamined"),
        field("n_instances", _I, "Number of slices in the volume", nullable=False, min=1),
        field("shape", _LI, "Array shape [z, y, x]", nullable=False),
        field("spacing", _LF, "Voxel spacing [z, y, x], mm", nullable=False),
        field("rows", _I, "DICOM Rows (y size)", nullable=False, min=1),
        field("columns", _I, "DICOM Columns (x size)", nullable=False, min=1),
        field(
            "spacing_z", _F, "Slice spacing along the slice normal, mm", nullable=False, min=1e-6
        ),
        field("spacing_y", _F, "Row spacing (PixelSpacing[0]), mm", nullable=False, min=1e-6),
        field("spacing_x", _F, "Column spacing (PixelSpacing[1]), mm", nullable=False, min=1e-6),
        field("oblique", _B, "Slice axes are not aligned with the patient axes"),
        field(
            "gantry_tilt_deg",
            _F,
            "Angle between the slice normal and the slice-to-slice step (0 without tilt), deg",
        ),
        field("origin", _LF, "Centre of voxel (0,0,0), LPS [x, y, z], mm", nullable=False),
        field("direction", _LF, "Direction cosines, row-major 3x3, columns = x, y, z axes"),
        field("units", _S, "Unit of the stored values (HU for CT)"),
        field("zarr_path", _S, "Zarr group of the volume, relative to the root", nullable=False),
        field("content_hash", _S, "SHA-256 over the sorted file hashes", nullable=False),
        field(
            "deidentification",
            _S,
            "De-identification applied (PS3.15 profile and options); NULL with --no-deid",
        ),
        *SCANNER_COLUMNS,
        field("scanner_batch", _S, "Batch id derived from scanner metadata", nullable=False),
        field(
            "acquired_at", _TS, "Acquisition time (earliest slice; DICOM dates as recorded, as UTC)"
        ),
        field("run_id", _S, "Run that ingested the series", nullable=False),
        field("ingested_at", _TS, "When the series was committed", nullable=False),
    ]
)

_INSTANCES = pa.schema(
    [
        field("sop_uid", _S, "SOPInstanceUID (a keyed replacement when de-identified)", key=True),
        field(
            "frame_number",
            _I,
            "Frame of the object (1 for single-frame files)",
            key=True,
            nullable=False,
            min=1,
        ),
        field("series_uid", _S, "SeriesInstanceUID", nullable=False),
        field("slice_index", _I, "Index along z in the stored volume", nullable=False, min=0),
        field("instance_number", _I, "DICOM InstanceNumber (not used for ordering)"),
        field("position", _LF, "ImagePositionPatient [x, y, z], mm"),
        field("rescale_slope", _F, "RescaleSlope applied to this slice"),
        field("rescale_intercept", _F, "RescaleIntercept applied to this slice"),
        field("transfer_syntax", _S, "Transfer syntax of the source file"),
        field("source_path", _S, "File the slice was read from", nullable=False),
        field("file_sha256", _S, "SHA-256 of the source file", nullable=False),
        field("run_id", _S, "Run that ingested the instance", nullable=False),
    ]
)

_SCANNER_BATCHES = pa.schema(
    [
        field("scanner_batch", _S, "Batch id", key=True),
        field("label", _S, "Readable description of the scanner protocol", nullable=False),
        field("defined_by", _S, "Comma-separated fields the batch id was derived from"),
        field("modality", _S, "DICOM Modality"),
        field("manufacturer", _S, "DICOM Manufacturer"),
        field("manufacturer_model_name", _S, "DICOM ManufacturerModelName"),
        field("convolution_kernel", _S, "Reconstruction kernel"),
        field("kvp", _F, "Peak kilovoltage, kV"),
        field("magnetic_field_strength", _F, "MR field strength, T"),
        field("run_id", _S, "Run that first saw the batch", nullable=False),
    ]
)

_QUARANTINE = pa.schema(
    [
        field("path", _S, "File or series that was not ingested", key=True),
        field("run_id", _S, "Run that quarantined it", key=True),
        field("kind", _S, "dicom, mask or omics", nullable=False),
        field("series_uid", _S, "SeriesInstanceUID when known"),
        field("reason", _S, "Why it was not ingested", nullable=False),
        field("file_sha256", _S, "SHA-256 of the file when readable"),
        field("quarantined_at", _TS, "When", nullable=False),
    ]
)

_ROIS = pa.schema(
    [
        field("roi_id", _S, "ROI id: <mask_id>:<label>", key=True),
        field("mask_id", _S, "Mask the ROI comes from", nullable=False),
        field("series_uid", _S, "Image the mask lies on", nullable=False),
        field("subject_id", _S, "Subject of the image"),
        field("label", _I, "Label value in the mask", nullable=False, min=1),
        field("name", _S, "ROI name"),
        field("n_voxels", _I, "Voxels in the ROI", nullable=False, min=1),
        field("volume_ml", _F, "Voxel-counting volume, ml (cm^3)", nullable=False, min=0),
        field("n_components", _I, "Connected components (26-connectivity)", min=1),
        field("bbox", _LI, "Bounding box [z0, z1, y0, y1, x0, x1], half-open"),
        field("mask_path", _S, "Zarr group of the mask, relative to the root", nullable=False),
        field("source_path", _S, "File the mask was read from", nullable=False),
        field("file_sha256", _S, "SHA-256 of the source mask file", nullable=False),
        field("run_id", _S, "Run that ingested the mask", nullable=False),
    ]
)

_MUTATIONS = pa.schema(
    [
        field("sample_id", _S, "Tumor_Sample_Barcode", key=True),
        field("patient_id", _S, "Patient (subject) identifier", nullable=False),
        field("gene", _S, "Hugo_Symbol", key=True),
        field("variant_classification", _S, "MAF Variant_Classification", nullable=False),
        field("variant_type", _S, "MAF Variant_Type (SNP, DNP, INS, DEL, ...)"),
        field("chrom", _S, "Chromosome", key=True),
        field("start", _I, "Start_Position (1-based)", key=True, min=0),
        field("end", _I, "End_Position (1-based, inclusive)", min=0),
        field("ref", _S, "Reference_Allele", key=True),
        field("alt", _S, "Tumor_Seq_Allele2", key=True),
        field("t_ref_count", _I, "Tumour reference read count", min=0),
        field("t_alt_count", _I, "Tumour alternate read count", min=0),
        field("vaf", _F, "t_alt/(t_alt+t_ref); NULL when counts are missing", min=0, max=1),
        field("source_file", _S, "MAF the row came from", nullable=False),
        field("file_sha256", _S, "SHA-256 of the MAF", nullable=False),
        field("run_id", _S, "Run that ingested the row", nullable=False),
    ]
)

_GENE_MUTATION = pa.schema(
    [
        field("sample_id", _S, "Tumor_Sample_Barcode", key=True),
        field("patient_id", _S, "Patient (subject) identifier", nullable=False),
        field("gene", _S, "Hugo_Symbol", key=True),
        field("mutated", _B, "Any non-synonymous variant in the gene", nullable=False),
        field("n_variants", _I, "Number of non-synonymous variants", nullable=False, min=0),
        field("run_id", _S, "Run that derived the row", nullable=False),
    ]
)

_CNA_SEGMENTS = pa.schema(
    [
        field("sample_id", _S, "Sample id", key=True),
        field("patient_id", _S, "Patient (subject) identifier", nullable=False),
        field("chrom", _S, "Chromosome", key=True),
        field("start", _I, "Segment start (1-based)", key=True, min=0),
        field("end", _I, "Segment end (inclusive)", nullable=False, min=0),
        field("num_markers", _I, "Probes or markers in the segment", min=0),
        field(
            "seg_mean",
            _F,
            "Mean log2 copy-number ratio",
            nullable=False,
            min=-20,
            max=20,
            severity="warning",
        ),
        field("source_file", _S, "File the row came from", nullable=False),
        field("file_sha256", _S, "SHA-256 of the file", nullable=False),
        field("run_id", _S, "Run that ingested the row", nullable=False),
    ]
)

_CNA_GENE = pa.schema(
    [
        field("sample_id", _S, "Sample id", key=True),
        field("patient_id", _S, "Patient (subject) identifier", nullable=False),
        field("gene", _S, "Gene symbol (Entrez id when the symbol is missing)", key=True),
        field(
            "measure",
            _S,
            "discrete (gene table), log2 (gene table) or segments (from SEG)",
            key=True,
        ),
        field("log2", _F, "Gene-level log2 copy-number ratio", min=-20, max=20, severity="warning"),
        field("discrete", _I, "Discrete copy number -2..2", min=-2, max=2),
        field("source_file", _S, "File the row came from", nullable=False),
        field("file_sha256", _S, "SHA-256 of the file", nullable=False),
        field("run_id", _S, "Run that ingested the row", nullable=False),
    ]
)

_EXPRESSION = pa.schema(
    [
        field("sample_id", _S, "Sample id", key=True),
        field("patient_id", _S, "Patient (subject) identifier", nullable=False),
        field("gene_id", _S, "Gene identifier as in the source file", key=True),
        field("gene", _S, "Gene symbol when the identifier carries one"),
        field("count", _F, "Read count (RSEM expected_count)", nullable=False, min=0),
        field(
            "length", _F, "Effective (RSEM) or exon-union gene length, bp", nullable=False, min=0
        ),
        field("tpm", _F, "Transcripts per million, computed by radgen", nullable=False, min=0),
        field(
            "fpkm",
            _F,
            "Fragments per kilobase per million, computed by radgen",
            nullable=False,
            min=0,
        ),
        field("log2_tpm", _F, "log2(1 + TPM)", nullable=False, min=0),
        field("source_file", _S, "File the row came from", nullable=False),
        field("file_sha256", _S, "SHA-256 of the file", nullable=False),
        field("run_id", _S, "Run that ingested the row", nullable=False),
    ]
)

_METHYLATION = pa.schema(
    [
        field("sample_id", _S, "Sample id", key=True),
        field("patient_id", _S, "Patient (subject) identifier", nullable=False),
        field("feature", _S, "Probe or gene of the row", key=True),
        field(
            "beta",
            _F,
            "Beta value, methylated / (methylated + unmethylated); NULL if missing",
            min=0,
            max=1,
        ),
        field(
            "m_value", _F, "M value, log2(beta / (1 - beta)) with beta clipped to [1e-6, 1 - 1e-6]"
        ),
        field("source_file", _S, "File the row came from", nullable=False),
        field("file_sha256", _S, "SHA-256 of the file", nullable=False),
        field("run_id", _S, "Run that ingested the row", nullable=False),
    ]
)

_CLINICAL = pa.schema(
    [
        field("patient_id", _S, "Patient (subject) identifier", key=True),
        field(
            "sample_id",
            _S,
            "Sample of a sample-level row; NULL for patient-level rows",
            key=True,
            key_nullable=True,
        ),
        field("source_file", _S, "File the row came from", nullable=False),
        field("file_sha256", _S, "SHA-256 of the file", nullable=False),
        field("run_id", _S, "Run that ingested the row", nullable=False),
    ]
)

_SUBJECTS = pa.schema(
    [
        field("sample_id", _S, "Sample (omics) id", key=True),
        field("patient_id", _S, "Patient id", nullable=False),
        field("subject_id", _S, "Imaging subject id (DICOM PatientID)", nullable=False),
        field("collected_at", _TS, "When the sample was collected (from a mapping file)"),
        field(
            "rule",
            _S,
            "How the link was made: the barcode pattern, or the mapping file",
            nullable=False,
        ),
        field("run_id", _S, "Run that recorded the link", nullable=False),
    ]
)

_OMICS_MATRICES = pa.schema(
    [
        field("matrix_id", _S, "Matrix id", key=True),
        field("table_name", _S, "Table holding the same values as rows", nullable=False),
        field("value", _S, "Value stored (tpm, beta)", nullable=False),
        field("path", _S, "Zarr group (features x samples), relative to the root", nullable=False),
        field("n_features", _I, "Rows (genes or probes)", nullable=False, min=1),
        field("n_samples", _I, "Columns (samples)", nullable=False, min=1),
        field("source_file", _S, "File the matrix came from", nullable=False),
        field("file_sha256", _S, "SHA-256 of the file", nullable=False),
        field("run_id", _S, "Run that wrote it", nullable=False),
    ]
)

_RUNS = pa.schema(
    [
        field("run_id", _S, "Run id", key=True),
        field("command", _S, "What ran, e.g. 'ingest dicom'", nullable=False),
        field("params_json", _S, "Parameters as canonical JSON", nullable=False),
        field("param_hash", _S, "SHA-256 of params_json", nullable=False),
        field("code_version", _S, "radgen version (+git commit)", nullable=False),
        field("status", _S, "succeeded, failed or rejected (suite failed)", nullable=False),
        field("message", _S, "Summary or error message"),
        field("outputs", _S, "Committed table versions as JSON {table: version}"),
        field("started_at", _TS, "Start time", nullable=False),
        field("finished_at", _TS, "End time", nullable=False),
    ]
)

_LINEAGE = pa.schema(
    [
        field("run_id", _S, "Run that wrote the output", nullable=False),
        field("output_table", _S, "Table written", nullable=False),
        field("output_version", _I, "Delta version written", nullable=False, min=0),
        field("input_kind", _S, "series, sop_instance, mask, file, table", nullable=False),
        field("input_id", _S, "UID, path or table@version", nullable=False),
        field("input_sha256", _S, "Content hash of the input when known"),
        field("recorded_at", _TS, "When", nullable=False),
    ]
)

_QUALITY_RESULTS = pa.schema(
    [
        field("run_id", _S, "Run that evaluated the suite", nullable=False),
        field("suite", _S, "Suite name (the stage)", nullable=False),
        field("suite_version", _S, "Hash of the suite's checks (changes with the schema)"),
        field("target", _S, "Table or object validated", nullable=False),
        field(
            "table_version",
            _I,
            "Version committed after the suite passed; NULL when rejected or re-checked",
        ),
        field("expectation", _S, "Expectation type", nullable=False),
        field("column", _S, "Column the expectation is about"),
        field("severity", _S, "critical, warning or info", nullable=False),
        field("success", _B, "Whether the expectation held", nullable=False),
        field("unexpected_count", _I, "Rows violating it", min=0),
        field("observed", _S, "Observed value as JSON"),
        field("details", _S, "Arguments, example values and example rows as JSON"),
        field("n_rows", _I, "Rows validated", min=0),
        field("evaluated_at", _TS, "When", nullable=False),
    ]
)

_DATASETS = pa.schema(
    [
        field("name", _S, "Dataset name", key=True),
        field("version", _I, "Dataset version (1, 2, ...)", key=True, min=1),
        field("description", _S, "Free text"),
        field("sql", _S, "Query that defines the dataset", nullable=False),
        field("n_rows", _I, "Rows in the dataset", nullable=False, min=0),
        field("manifest_sha256", _S, "SHA-256 of manifest.json", nullable=False),
        field("table_versions", _S, "Pinned input table versions as JSON", nullable=False),
        field("path", _S, "Dataset folder relative to the root", nullable=False),
        field("run_id", _S, "Run that published it", nullable=False),
        field("published_at", _TS, "When", nullable=False),
    ]
)

_HARMONIZATION_PARAMS = pa.schema(
    [
        field("output_table", _S, "Harmonized table the parameters belong to", key=True),
        field("output_version", _I, "Its version", key=True, min=0),
        field("feature", _S, "Feature column", key=True),
        field("batch", _S, "Batch, or '*' for per-feature parameters", key=True),
        field(
            "parameter",
            _S,
            "gamma_star, delta_star, grand_mean, var_pooled, beta[...], mu, sigma, theta",
            key=True,
        ),
        field("value", _F, "Parameter value"),
        field("method", _S, "Harmonization method", nullable=False),
        field("run_id", _S, "Run that fitted the model", nullable=False),
    ]
)

_CCF = pa.schema(
    [
        field("sample_id", _S, "Tumor_Sample_Barcode", key=True),
        field("patient_id", _S, "Patient (subject) identifier", nullable=False),
        field("subject_id", _S, "Imaging subject the sample links to (subjects table)"),
        field("gene", _S, "Hugo_Symbol", key=True),
        field("chrom", _S, "Chromosome", key=True),
        field("start", _I, "Start_Position (1-based)", key=True, min=0),
        field("ref", _S, "Reference_Allele", key=True),
        field("alt", _S, "Tumor_Seq_Allele2", key=True),
        field("t_ref_count", _I, "Tumour reference read count", min=0),
        field("t_alt_count", _I, "Tumour alternate read count", min=0),
        field("t_depth", _I, "t_alt_count + t_ref_count", min=0),
        field("vaf", _F, "Variant allele frequency t_alt/(t_alt+t_ref)", min=0, max=1),
        field("purity", _F, "Tumour purity of the sample (imaging estimate)", min=0, max=1),
        field("purity_source", _S, "Table and column the purity came from"),
        field("cn_tumor", _F, "Total copy number in tumour cells at the locus (may be fractional)"),
        field("cn_normal", _F, "Total copy number in normal cells", min=0),
        field("cn_source", _S, "cna_segments, cna_gene:log2, cna_gene:discrete or diploid"),
        field("multiplicity", _F, "Mutated copies per tumour cell", min=1),
        field(
            "ccf", _F, "Cancer cell fraction v((1-p)CN_n + p CN_t)/(p m); NULL if impossible", min=0
        ),
        field("ccf_ci_low", _F, "Lower bound of the CCF interval (Clopper-Pearson on VAF)", min=0),
        field("ccf_ci_high", _F, "Upper bound of the CCF interval (Clopper-Pearson on VAF)", min=0),
        field("clonal", _B, "CCF interval reaches 1"),
        field("over1_flag", _B, "CCF above 1 beyond binomial sampling noise"),
        field("over1_p_value", _F, "One-sided binomial p-value of CCF > 1", min=0, max=1),
        field("ccf_invalid", _S, "Why the CCF is NULL (impossible or missing input)"),
        field("run_id", _S, "Run that computed the row", nullable=False),
    ]
)

#: Fixed leading columns of every ``features_<name>`` table.
FEATURE_TABLE_BASE = pa.schema(
    [
        field("subject_id", _S, "Subject (patient) identifier"),
        field("series_uid", _S, "Image the ROI lies on", nullable=False),
        field("roi_id", _S, "ROI id", key=True),
        field("scanner_batch", _S, "Batch id derived from scanner metadata", nullable=False),
        field("acquired_at", _TS, "When the image was acquired (from the series)"),
        *SCANNER_COLUMNS,
    ]
)

#: Trailing columns of every feature table.
FEATURE_TABLE_TAIL = pa.schema(
    [
        field("feature_set_version", _S, "Code version + settings hash", nullable=False),
        field("run_id", _S, "Run that computed the row", nullable=False),
    ]
)

TABLES: Mapping[str, pa.Schema] = {
    "series": _SERIES,
    "instances": _INSTANCES,
    "scanner_batches": _SCANNER_BATCHES,
    "quarantine": _QUARANTINE,
    "rois": _ROIS,
    "mutations": _MUTATIONS,
    "gene_mutation": _GENE_MUTATION,
    "cna_segments": _CNA_SEGMENTS,
    "cna_gene": _CNA_GENE,
    "expression": _EXPRESSION,
    "methylation": _METHYLATION,
    "clinical": _CLINICAL,
    "subjects": _SUBJECTS,
    "omics_matrices": _OMICS_MATRICES,
    "runs": _RUNS,
    "lineage": _LINEAGE,
    "quality_results": _QUALITY_RESULTS,
    "datasets": _DATASETS,
    "harmonization_params": _HARMONIZATION_PARAMS,
    "ccf": _CCF,
}


def schema_for(name: str) -> pa.Schema | None:
    """Declared schema of table `name`; the fixed part for ``features_*``; None if unknown."""
    if name in TABLES:
        return TABLES[name]
    if name.startswith("features_"):
        return pa.schema(list(FEATURE_TABLE_BASE) + list(FEATURE_TABLE_TAIL))
    return None


def key_columns(schema: pa.Schema) -> list[str]:
    """Columns flagged as keys in `schema`, in schema order."""
    return [f.name for f in schema if (f.metadata or {}).get(b"key") == b"true"]
