"""The feature registry: every feature radgen computes, in both conventions.

One row per feature: IBSI tag and permanent id, family, unit, the texture aggregations IBSI
defines for it, the PyRadiomics 3.0.1 class and name when PyRadiomics has it, and whether the
value is unchanged by an intensity map ``I' = aI + b`` (a > 0) once the image is standardised
within the ROI (setting ``normalizeWithinROI``). Writers, suites, ``radgen features list`` and
the docs read it; no other code declares a feature name or unit. Units use ``I`` for the
image's intensity unit (HU for CT) and ``bin`` for discretised grey levels.

A PyRadiomics name next to an IBSI tag says the two measure the same thing, not that the
numbers agree: PyRadiomics' kurtosis is not excess kurtosis, its texture features average
over directions of one 3D matrix per direction, its PCA lengths divide by N, and its fixed
bin width starts at a multiple of the width.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "AGGREGATIONS",
    "FEATURES",
    "PYRADIOMICS",
    "Feature",
    "aggregation_suffix",
    "column_name",
    "feature_of_column",
    "features_of_family",
    "ibsi_key",
    "pyradiomics_column",
]


@dataclass(frozen=True)
class Feature:
    """One radiomic feature.

    Parameters
    ----------
    tag : str
        IBSI short name (``stat.mean``), or ``<class>_<Name>`` for a feature only PyRadiomics
        defines (``firstorder_TotalEnergy``).
    ibsi_id : str
        Four-character IBSI permanent identifier; empty when IBSI has none.
    name : str
        Feature name.
    family : str
        IBSI family (``stat``, ``ih``, ``ivh``, ``morph``, ``loc``, ``cm``, ``rlm``, ``szm``,
        ``dzm``, ``ngt``, ``ngl``), or the PyRadiomics class of a PyRadiomics-only feature.
    unit : str
        Unit of the value.
    discretised : bool
        Whether the value depends on grey-level discretisation (IBSI columns carry the binning
        suffix).
    may_be_nan : bool
        Whether NaN is a documented outcome (e.g. a ratio with a zero denominator).
    aggregations : tuple of str
        IBSI texture aggregations (``3D, averaged``, ...); empty for other families.
    pyradiomics : str or None
        PyRadiomics ``<class>_<Name>`` of the same quantity, if any.
    roi_zscore_invariant : bool
        Unchanged by ``I' = aI + b`` (a > 0) after ``normalizeWithinROI`` (shown by the property
        test in tests/unit/features/test_invariance.py).
    """

    tag: str
    ibsi_id: str
    name: str
    family: str
    unit: str
    discretised: bool = False
    may_be_nan: bool = False
    aggregations: tuple[str, ...] = ()
    pyradiomics: str | None = None
    roi_zscore_invariant: bool = True

    @property
    def ibsi(self) -> bool:
        """Whether IBSI defines the feature."""
        return bool(re.fullmatch(r"[a-z]+(\.[A-Za-z0-9]+)+", self.tag))

    def ibsi_keys(self) -> list[str]:
        """The keys the ``ibsi`` convention returns for this feature (one per aggregation)."""
        if not self.ibsi:
            return []
        return [ibsi_key(self.tag, a) for a in self.aggregations] or [self.tag]


_IBSI = [
    ("morph.vol", "RNU0", "Volume (mesh)"),
    ("morph.approx.vol", "YEKZ", "Volume (voxel counting)"),
    ("morph.area", "C0JK", "Surface area (mesh)"),
    ("morph.av", "2PR5", "Surface to volume ratio"),
    ("morph.comp.1", "SKGS", "Compactness 1"),
    ("morph.comp.2", "BQWJ", "Compactness 2"),
    ("morph.sph.dispr", "KRCK", "Spherical disproportion"),
    ("morph.sphericity", "QCFX", "Sphericity"),
    ("morph.asphericity", "25C7", "Asphericity"),
    ("morph.com", "KLMA", "Centre of mass shift"),
    ("morph.diam", "L0JK", "Maximum 3D diameter"),
    ("morph.pca.major", "TDIC", "Major axis length"),
    ("morph.pca.minor", "P9VJ", "Minor axis length"),
    ("morph.pca.least", "7J51", "Least axis length"),
    ("morph.pca.elongation", "Q3CK", "Elongation"),
    ("morph.pca.flatness", "N17B", "Flatness"),
    ("morph.v.dens.aabb", "PBX1", "Volume density (axis-aligned bounding box)"),
    ("morph.a.dens.aabb", "R59B", "Area density (axis-aligned bounding box)"),
    ("morph.v.dens.aee", "6BDE", "Volume density (approximate enclosing ellipsoid)"),
    ("morph.a.dens.aee", "RDD2", "Area density (approximate enclosing ellipsoid)"),
    # IBSI defines these two bounding volumes but has no consensus reference value for them
    ("morph.v.dens.ombb", "ZH1A", "Volume density (oriented minimum bounding box)"),
    ("morph.a.dens.ombb", "IQYR", "Area density (oriented minimum bounding box)"),
    ("morph.v.dens.mvee", "SWZ1", "Volume density (minimum volume enclosing ellipsoid)"),
    ("morph.a.dens.mvee", "BRI8", "Area density (minimum volume enclosing ellipsoid)"),
    ("morph.v.dens.conv.hull", "R3ER", "Volume density (convex hull)"),
    ("morph.a.dens.conv.hull", "7T7F", "Area density (convex hull)"),
    ("morph.integ.int", "99N0", "Integrated intensity"),
    ("morph.moran.i", "N365", "Moran's I index"),
    ("morph.geary.c", "NPT7", "Geary's C measure"),
    ("loc.peak.local", "VJGA", "Local intensity peak"),
    ("loc.peak.global", "0F91", "Global intensity peak"),
    ("stat.mean", "Q4LE", "Mean intensity"),
    ("stat.var", "ECT3", "Intensity variance"),
    ("stat.skew", "KE2A", "Intensity skewness"),
    ("stat.kurt", "IPH6", "(Excess) intensity kurtosis"),
    ("stat.median", "Y12H", "Median intensity"),
    ("stat.min", "1GSF", "Minimum intensity"),
    ("stat.P10", "QG58", "10th intensity percentile"),
    ("stat.P90", "8DWT", "90th intensity percentile"),
    ("stat.max", "84IY", "Maximum intensity"),
    ("stat.iqr", "SALO", "Intensity interquartile range"),
    ("stat.range", "2OJQ", "Intensity range"),
    ("stat.mad", "4FUA", "Intensity-based mean absolute deviation"),
    ("stat.rmad", "1128", "Intensity-based robust mean absolute deviation"),
    ("stat.medad", "N72L", "Intensity-based median absolute deviation"),
    ("stat.cov", "7TET", "Intensity-based coefficient of variation"),
    ("stat.qcod", "9S40", "Intensity-based quartile coefficient of dispersion"),
    ("stat.energy", "N8CA", "Intensity-based energy"),
    ("stat.rms", "5ZWQ", "Root mean square intensity"),
    ("ih.mean", "X6K6", "Mean discretised intensity"),
    ("ih.var", "CH89", "Discretised intensity variance"),
    ("ih.skew", "88K1", "Discretised intensity skewness"),
    ("ih.kurt", "C3I7", "(Excess) discretised intensity kurtosis"),
    ("ih.median", "WIFQ", "Median discretised intensity"),
    ("ih.min", "1PR8", "Minimum discretised intensity"),
    ("ih.P10", "1PR8", "10th discretised intensity percentile"),
    ("ih.P90", "GPMT", "90th discretised intensity percentile"),
    ("ih.max", "3NCY", "Maximum discretised intensity"),
    ("ih.mode", "AMMC", "Intensity histogram mode"),
    ("ih.iqr", "WR0O", "Discretised intensity interquartile range"),
    ("ih.range", "5Z3W", "Discretised intensity range"),
    ("ih.mad", "D2ZX", "Intensity histogram mean absolute deviation"),
    ("ih.rmad", "WRZB", "Intensity histogram robust mean absolute deviation"),
    ("ih.medad", "4RNL", "Intensity histogram median absolute deviation"),
    ("ih.cov", "CWYJ", "Intensity histogram coefficient of variation"),
    ("ih.qcod", "SLWD", "Intensity histogram quartile coefficient of dispersion"),
    ("ih.entropy", "TLU2", "Discretised intensity entropy"),
    ("ih.uniformity", "BJ5W", "Discretised intensity uniformity"),
    ("ih.max.grad", "12CE", "Maximum histogram gradient"),
    ("ih.max.grad.gl", "8E6O", "Maximum histogram gradient intensity"),
    ("ih.min.grad", "VQB3", "Minimum histogram gradient"),
    ("ih.min.grad.gl", "RHQZ", "Minimum histogram gradient intensity"),
    ("ivh.V10", "BC2M", "Volume at intensity fraction"),
    ("ivh.V90", "BC2M", "Volume at intensity fraction"),
    ("ivh.I10", "GBPN", "Intensity at volume fraction"),
    ("ivh.I90", "GBPN", "Intensity at volume fraction"),
    ("ivh.V10minusV90", "DDTU", "Volume fraction difference between intensity fractions"),
    ("ivh.I10minusI90", "CNV2", "Intensity fraction difference between volume fractions"),
    ("cm.joint.max", "GYBY", "Joint maximum"),
    ("cm.joint.avg", "60VM", "Joint average"),
    ("cm.joint.var", "UR99", "Joint variance"),
    ("cm.joint.entr", "TU9B", "Joint entropy"),
    ("cm.diff.avg", "TF7R", "Difference average"),
    ("cm.diff.var", "D3YU", "Difference variance"),
    ("cm.diff.entr", "NTRS", "Difference entropy"),
    ("cm.sum.avg", "ZGXS", "Sum average"),
    ("cm.sum.var", "OEEB", "Sum variance"),
    ("cm.sum.entr", "P6QZ", "Sum entropy"),
    ("cm.energy", "8ZQL", "Angular second moment"),
    ("cm.contrast", "ACUI", "Contrast"),
    ("cm.dissimilarity", "8S9J", "Dissimilarity"),
    ("cm.inv.diff", "IB1Z", "Inverse difference"),
    ("cm.inv.diff.norm", "NDRX", "Normalised inverse difference"),
    ("cm.inv.diff.mom", "WF0Z", "Inverse difference moment"),
    ("cm.inv.diff.mom.norm", "1QCO", "Normalised inverse difference moment"),
    ("cm.inv.var", "E8JP", "Inverse variance"),
    ("cm.corr", "NI2N", "Correlation"),
    ("cm.auto.corr", "QWB0", "Autocorrelation"),
    ("cm.clust.tend", "DG8W", "Cluster tendency"),
    ("cm.clust.shade", "7NFM", "Cluster shade"),
    ("cm.clust.prom", "AE86", "Cluster prominence"),
    ("cm.info.corr.1", "R8DG", "Information correlation 1"),
    ("cm.info.corr.2", "JN9H", "Information correlation 2"),
    ("rlm.sre", "22OV", "Short runs emphasis"),
    ("rlm.lre", "W4KF", "Long runs emphasis"),
    ("rlm.lgre", "V3SW", "Low grey level run emphasis"),
    ("rlm.hgre", "G3QZ", "High grey level run emphasis"),
    ("rlm.srlge", "HTZT", "Short run low grey level emphasis"),
    ("rlm.srhge", "GD3A", "Short run high grey level emphasis"),
    ("rlm.lrlge", "IVPO", "Long run low grey level emphasis"),
    ("rlm.lrhge", "3KUM", "Long run high grey level emphasis"),
    ("rlm.glnu", "R5YN", "Grey level non-uniformity"),
    ("rlm.glnu.norm", "OVBL", "Normalised grey level non-uniformity"),
    ("rlm.rlnu", "W92Y", "Run length non-uniformity"),
    ("rlm.rlnu.norm", "IC23", "Normalised run length non-uniformity"),
    ("rlm.r.perc", "9ZK5", "Run percentage"),
    ("rlm.gl.var", "8CE5", "Grey level variance"),
    ("rlm.rl.var", "SXLW", "Run length variance"),
    ("rlm.rl.entr", "HJ9O", "Run entropy"),
    ("szm.sze", "", "Small zone emphasis"),
    ("szm.lze", "48P8", "Large zone emphasis"),
    ("szm.lgze", "XMSY", "Low grey level zone emphasis"),
    ("szm.hgze", "5GN9", "High grey level zone emphasis"),
    ("szm.szlge", "5RAI", "Small zone low grey level emphasis"),
    ("szm.szhge", "HW1V", "Small zone high grey level emphasis"),
    ("szm.lzlge", "YH51", "Large zone low grey level emphasis"),
    ("szm.lzhge", "J17V", "Large zone high grey level emphasis"),
    ("szm.glnu", "JNSA", "Grey level non-uniformity"),
    ("szm.glnu.norm", "Y1RO", "Normalised grey level non-uniformity"),
    ("szm.zsnu", "4JP3", "Zone size non-uniformity"),
    ("szm.zsnu.norm", "VB3A", "Normalised zone size non-uniformity"),
    ("szm.z.perc", "P30P", "Zone percentage"),
    ("szm.gl.var", "BYLV", "Grey level variance"),
    ("szm.zs.var", "3NSA", "Zone size variance"),
    ("szm.zs.entr", "GU8N", "Zone size entropy"),
    ("dzm.sde", "0GBI", "Small distance emphasis"),
    ("dzm.lde", "MB4I", "Large distance emphasis"),
    ("dzm.lgze", "S1RA", "Low grey level zone emphasis"),
    ("dzm.hgze", "K26C", "High grey level zone emphasis"),
    ("dzm.sdlge", "RUVG", "Small distance low grey level emphasis"),
    ("dzm.sdhge", "DKNJ", "Small distance high grey level emphasis"),
    ("dzm.ldlge", "A7WM", "Large distance low grey level emphasis"),
    ("dzm.ldhge", "KLTH", "Large distance high grey level emphasis"),
    ("dzm.glnu", "VFT7", "Grey level non-uniformity"),
    ("dzm.glnu.norm", "7HP3", "Normalised grey level non-uniformity"),
    ("dzm.zdnu", "V294", "Zone distance non-uniformity"),
    ("dzm.zdnu.norm", "IATH", "Normalised zone distance non-uniformity"),
    ("dzm.z.perc", "VIWW", "Zone percentage"),
    ("dzm.gl.var", "QK93", "Grey level variance"),
    ("dzm.zd.var", "7WT1", "Zone distance variance"),
    ("dzm.zd.entr", "GBDU", "Zone distance entropy"),
    ("ngt.coarseness", "QCDE", "Coarseness"),
    ("ngt.contrast", "65HE", "Contrast"),
    ("ngt.busyness", "NQ30", "Busyness"),
    ("ngt.complexity", "HDEZ", "Complexity"),
    ("ngt.strength", "1X9X", "Strength"),
    ("ngl.lde", "SODN", "Low dependence emphasis"),
    ("ngl.hde", "IMOQ", "High dependence emphasis"),
    ("ngl.lgce", "TL9H", "Low grey level count emphasis"),
    ("ngl.hgce", "OAE7", "High grey level count emphasis"),
    ("ngl.ldlge", "EQ3F", "Low dependence low grey level emphasis"),
    ("ngl.ldhge", "JA6D", "Low dependence high grey level emphasis"),
    ("ngl.hdlge", "NBZI", "High dependence low grey level emphasis"),
    ("ngl.hdhge", "9QMG", "High dependence high grey level emphasis"),
    ("ngl.glnu", "FP8K", "Grey level non-uniformity"),
    ("ngl.glnu.norm", "5SPA", "Normalised grey level non-uniformity"),
    ("ngl.dcnu", "Z87G", "Dependence count non-uniformity"),
    ("ngl.dcnu.norm", "OKJI", "Normalised dependence count non-uniformity"),
    ("ngl.dc.perc", "6XV8", "Dependence count percentage"),
    ("ngl.gl.var", "1PFV", "Grey level variance"),
    ("ngl.dc.var", "DNX2", "Dependence count variance"),
    ("ngl.dc.entr", "FCBV", "Dependence count entropy"),
    ("ngl.dc.energy", "CAS9", "Dependence count energy"),
]

_TEXTURE_2D3D = (
    "2D, averaged",
    "2D, slice-merged",
    "2.5D, direction-merged",
    "2.5D, merged",
    "3D, averaged",
    "3D, merged",
)
_TEXTURE_ZONE = ("2D", "2.5D", "3D")

#: IBSI texture aggregations by family.
AGGREGATIONS: Mapping[str, tuple[str, ...]] = {
    "cm": _TEXTURE_2D3D,
    "rlm": _TEXTURE_2D3D,
    "szm": _TEXTURE_ZONE,
    "dzm": _TEXTURE_ZONE,
    "ngt": _TEXTURE_ZONE,
    "ngl": _TEXTURE_ZONE,
}

_DISCRETISED_FAMILIES = {"ih", "ivh", "cm", "rlm", "szm", "dzm", "ngt", "ngl"}

_UNITS = {
    "stat.var": "I^2",
    "stat.energy": "I^2",
    "stat.skew": "1",
    "stat.kurt": "1",
    "stat.cov": "1",
    "stat.qcod": "1",
    "ih.var": "bin^2",
    "ih.skew": "1",
    "ih.kurt": "1",
    "ih.cov": "1",
    "ih.qcod": "1",
    "ih.entropy": "bits",
    "ih.uniformity": "1",
    "ih.max.grad": "voxels/bin",
    "ih.min.grad": "voxels/bin",
    "ivh.V10": "1",
    "ivh.V90": "1",
    "ivh.V10minusV90": "1",
    "morph.vol": "mm^3",
    "morph.approx.vol": "mm^3",
    "morph.area": "mm^2",
    "morph.av": "mm^-1",
    "morph.com": "mm",
    "morph.diam": "mm",
    "morph.pca.major": "mm",
    "morph.pca.minor": "mm",
    "morph.pca.least": "mm",
    "morph.integ.int": "I mm^3",
}
_FAMILY_UNITS = {"stat": "I", "ih": "bin", "ivh": "bin", "loc": "I", "morph": "1"}

_MAY_BE_NAN = {
    "stat.cov",
    "stat.qcod",
    "stat.rmad",
    "ih.cov",
    "ih.qcod",
    "ih.rmad",
    "morph.pca.elongation",
    "morph.pca.flatness",
    "morph.moran.i",
    "morph.geary.c",
    "cm.corr",
    "cm.info.corr.1",
    "cm.info.corr.2",
    "ngt.coarseness",
    "ngt.busyness",
    "ngt.complexity",
    "ngt.contrast",
    "ngt.strength",
}

#: Standardisation sets the ROI mean (and intensity sum) to 0, where the coefficient of
#: variation (SD / mean) and the intensity-weighted centre of mass (sum x I / sum I) are
#: undefined: their values after ``normalizeWithinROI`` are rounding noise, not features.
_UNDEFINED_AFTER_ZSCORE = {"stat.cov", "morph.com"}

#: PyRadiomics 3.0.1 features enabled by default, by class, with the IBSI tag of the same
#: quantity (None: no IBSI counterpart).
PYRADIOMICS: Mapping[str, Mapping[str, str | None]] = {
    "firstorder": {
        "10Percentile": "stat.P10",
        "90Percentile": "stat.P90",
        "Energy": "stat.energy",
        "Entropy": "ih.entropy",
        "InterquartileRange": "stat.iqr",
        "Kurtosis": "stat.kurt",
        "Maximum": "stat.max",
        "Mean": "stat.mean",
        "MeanAbsoluteDeviation": "stat.mad",
        "Median": "stat.median",
        "Minimum": "stat.min",
        "Range": "stat.range",
        "RobustMeanAbsoluteDeviation": "stat.rmad",
        "RootMeanSquared": "stat.rms",
        "Skewness": "stat.skew",
        "TotalEnergy": None,
        "Uniformity": "ih.uniformity",
        "Variance": "stat.var",
    },
    "shape": {
        "Elongation": "morph.pca.elongation",
        "Flatness": "morph.pca.flatness",
        "LeastAxisLength": "morph.pca.least",
        "MajorAxisLength": "morph.pca.major",
        "Maximum2DDiameterColumn": None,
        "Maximum2DDiameterRow": None,
        "Maximum2DDiameterSlice": None,
        "Maximum3DDiameter": "morph.diam",
        "MeshVolume": "morph.vol",
        "MinorAxisLength": "morph.pca.minor",
        "Sphericity": "morph.sphericity",
        "SurfaceArea": "morph.area",
        "SurfaceVolumeRatio": "morph.av",
        "VoxelVolume": "morph.approx.vol",
    },
    "glcm": {
        "Autocorrelation": "cm.auto.corr",
        "ClusterProminence": "cm.clust.prom",
        "ClusterShade": "cm.clust.shade",
        "ClusterTendency": "cm.clust.tend",
        "Contrast": "cm.contrast",
        "Correlation": "cm.corr",
        "DifferenceAverage": "cm.diff.avg",
        "DifferenceEntropy": "cm.diff.entr",
        "DifferenceVariance": "cm.diff.var",
        "Id": "cm.inv.diff",
        "Idm": "cm.inv.diff.mom",
        "Idmn": "cm.inv.diff.mom.norm",
        "Idn": "cm.inv.diff.norm",
        "Imc1": "cm.info.corr.1",
        "Imc2": "cm.info.corr.2",
        "InverseVariance": "cm.inv.var",
        "JointAverage": "cm.joint.avg",
        "JointEnergy": "cm.energy",
        "JointEntropy": "cm.joint.entr",
        "MCC": None,
        "MaximumProbability": "cm.joint.max",
        "SumAverage": "cm.sum.avg",
        "SumEntropy": "cm.sum.entr",
        "SumSquares": "cm.joint.var",
    },
    "glrlm": {
        "GrayLevelNonUniformity": "rlm.glnu",
        "GrayLevelNonUniformityNormalized": "rlm.glnu.norm",
        "GrayLevelVariance": "rlm.gl.var",
        "HighGrayLevelRunEmphasis": "rlm.hgre",
        "LongRunEmphasis": "rlm.lre",
        "LongRunHighGrayLevelEmphasis": "rlm.lrhge",
        "LongRunLowGrayLevelEmphasis": "rlm.lrlge",
        "LowGrayLevelRunEmphasis": "rlm.lgre",
        "RunEntropy": "rlm.rl.entr",
        "RunLengthNonUniformity": "rlm.rlnu",
        "RunLengthNonUniformityNormalized": "rlm.rlnu.norm",
        "RunPercentage": "rlm.r.perc",
        "RunVariance": "rlm.rl.var",
        "ShortRunEmphasis": "rlm.sre",
        "ShortRunHighGrayLevelEmphasis": "rlm.srhge",
        "ShortRunLowGrayLevelEmphasis": "rlm.srlge",
    },
    "glszm": {
        "GrayLevelNonUniformity": "szm.glnu",
        "GrayLevelNonUniformityNormalized": "szm.glnu.norm",
        "GrayLevelVariance": "szm.gl.var",
        "HighGrayLevelZoneEmphasis": "szm.hgze",
        "LargeAreaEmphasis": "szm.lze",
        "LargeAreaHighGrayLevelEmphasis": "szm.lzhge",
        "LargeAreaLowGrayLevelEmphasis": "szm.lzlge",
        "LowGrayLevelZoneEmphasis": "szm.lgze",
        "SizeZoneNonUniformity": "szm.zsnu",
        "SizeZoneNonUniformityNormalized": "szm.zsnu.norm",
        "SmallAreaEmphasis": "szm.sze",
        "SmallAreaHighGrayLevelEmphasis": "szm.szhge",
        "SmallAreaLowGrayLevelEmphasis": "szm.szlge",
        "ZoneEntropy": "szm.zs.entr",
        "ZonePercentage": "szm.z.perc",
        "ZoneVariance": "szm.zs.var",
    },
    "gldm": {
        "DependenceEntropy": "ngl.dc.entr",
        "DependenceNonUniformity": "ngl.dcnu",
        "DependenceNonUniformityNormalized": "ngl.dcnu.norm",
        "DependenceVariance": "ngl.dc.var",
        "GrayLevelNonUniformity": "ngl.glnu",
        "GrayLevelVariance": "ngl.gl.var",
        "HighGrayLevelEmphasis": "ngl.hgce",
        "LargeDependenceEmphasis": "ngl.hde",
        "LargeDependenceHighGrayLevelEmphasis": "ngl.hdhge",
        "LargeDependenceLowGrayLevelEmphasis": "ngl.hdlge",
        "LowGrayLevelEmphasis": "ngl.lgce",
        "SmallDependenceEmphasis": "ngl.lde",
        "SmallDependenceHighGrayLevelEmphasis": "ngl.ldhge",
        "SmallDependenceLowGrayLevelEmphasis": "ngl.ldlge",
    },
    "shape2D": {
        "Elongation": None,
        "MajorAxisLength": None,
        "MaximumDiameter": None,
        "MeshSurface": None,
        "MinorAxisLength": None,
        "Perimeter": None,
        "PerimeterSurfaceRatio": None,
        "PixelSurface": None,
        "Sphericity": None,
    },
    "ngtdm": {
        "Busyness": "ngt.busyness",
        "Coarseness": "ngt.coarseness",
        "Complexity": "ngt.complexity",
        "Contrast": "ngt.contrast",
        "Strength": "ngt.strength",
    },
}

_PYRADIOMICS_ONLY_UNITS = {
    "firstorder_TotalEnergy": "I^2 mm^3",
    "shape_Maximum2DDiameterColumn": "mm",
    "shape_Maximum2DDiameterRow": "mm",
    "shape_Maximum2DDiameterSlice": "mm",
    "glcm_MCC": "1",
    "shape2D_Elongation": "1",
    "shape2D_MajorAxisLength": "mm",
    "shape2D_MaximumDiameter": "mm",
    "shape2D_MeshSurface": "mm^2",
    "shape2D_MinorAxisLength": "mm",
    "shape2D_Perimeter": "mm",
    "shape2D_PerimeterSurfaceRatio": "mm^-1",
    "shape2D_PixelSurface": "mm^2",
    "shape2D_Sphericity": "1",
}


def _registry() -> dict[str, Feature]:
    to_pyradiomics = {
        tag: f"{cls}_{name}"
        for cls, names in PYRADIOMICS.items()
        for name, tag in names.items()
        if tag is not None
    }
    out: dict[str, Feature] = {}
    for tag, fid, name in _IBSI:
        family = tag.split(".")[0]
        out[tag] = Feature(
            tag=tag,
            ibsi_id=fid,
            name=name,
            family=family,
            unit=_UNITS.get(tag, _FAMILY_UNITS.get(family, "1")),
            discretised=family in _DISCRETISED_FAMILIES,
            may_be_nan=tag in _MAY_BE_NAN,
            aggregations=AGGREGATIONS.get(family, ()),
            pyradiomics=to_pyradiomics.get(tag),
            roi_zscore_invariant=tag not in _UNDEFINED_AFTER_ZSCORE,
        )
    for key, unit in _PYRADIOMICS_ONLY_UNITS.items():
        cls, name = key.split("_", 1)
        out[key] = Feature(key, "", name, cls, unit, pyradiomics=key)
    return out


#: Every registered feature, keyed by IBSI tag (or ``<class>_<Name>`` for PyRadiomics-only).
FEATURES: Mapping[str, Feature] = _registry()

_AGG_SUFFIX = {
    "2D, averaged": "2d_avg",
    "2D, slice-merged": "2d_smrg",
    "2.5D, direction-merged": "2_5d_dmrg",
    "2.5D, merged": "2_5d_mrg",
    "3D, averaged": "3d_avg",
    "3D, merged": "3d_mrg",
    "2D": "2d",
    "2.5D": "2_5d",
    "3D": "3d",
}


def features_of_family(family: str) -> list[Feature]:
    """Registered features of `family`, in registry order."""
    return [f for f in FEATURES.values() if f.family == family]


def ibsi_key(tag: str, aggregation: str = "") -> str:
    """Key of a feature in the ``ibsi`` convention: ``cm.contrast [3D, averaged]``, ``stat.mean``.

    Examples
    --------
    >>> ibsi_key("cm.contrast", "3D, averaged")
    'cm.contrast [3D, averaged]'
    """
    return f"{tag} [{aggregation}]" if aggregation else tag


def aggregation_suffix(aggregation: str) -> str:
    """Column suffix of an IBSI texture aggregation (``3D, averaged`` -> ``3d_avg``)."""
    return _AGG_SUFFIX[aggregation]


def _sql(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")


def column_name(key: str, *, binning: str | None = None, image_type: str = "original") -> str:
    """SQL-safe column name of an ``ibsi`` convention key.

    Parameters
    ----------
    key : str
        ``stat.mean`` or ``cm.contrast [3D, averaged]`` (tag from :data:`FEATURES`).
    binning : str, optional
        Discretisation suffix (``fbs_w25``, ``fbn_n32``) for discretised features.
    image_type : str
        Image type prefix (``original``, ``log-sigma-1-0-mm-3D``, ``wavelet-LLH``); the
        original image carries none.

    Returns
    -------
    str

    Examples
    --------
    >>> column_name("stat.P10")
    'stat_p10'
    >>> column_name("cm.contrast [3D, averaged]", binning="fbs_w25")
    'cm_contrast_3d_avg_fbs_w25'
    >>> column_name("stat.mean", image_type="log-sigma-1-0-mm-3D")
    'log_sigma_1_0_mm_3d__stat_mean'
    """
    tag, _, agg = key.partition(" [")
    feature = FEATURES[tag]
    base = _sql(tag)
    if agg:
        base = f"{base}_{aggregation_suffix(agg.rstrip(']'))}"
    if feature.discretised and binning:
        base = f"{base}_{binning}"
    if image_type and image_type != "original":
        base = f"{_sql(image_type)}__{base}"
    return base


def pyradiomics_column(key: str) -> str:
    """SQL-safe column of a ``pyradiomics`` convention key: its own name with ``-`` as ``_``.

    Examples
    --------
    >>> pyradiomics_column("log-sigma-1-0-mm-3D_glcm_Id")
    'log_sigma_1_0_mm_3D_glcm_Id'
    """
    return re.sub(r"[^0-9A-Za-z]+", "_", key)


def _lookup() -> dict[str, Feature]:
    table: dict[str, Feature] = {}
    for feature in FEATURES.values():
        for key in feature.ibsi_keys():
            tag, _, agg = key.partition(" [")
            base = _sql(tag) + (f"_{aggregation_suffix(agg.rstrip(']'))}" if agg else "")
            table[base] = feature
        if feature.pyradiomics:
            table[feature.pyradiomics.lower()] = feature
    return table


_BY_COLUMN = _lookup()


def feature_of_column(column: str) -> Feature | None:
    """The registered feature a table column holds (image type and binning ignored), if any.

    Examples
    --------
    >>> feature_of_column("ih_entropy_fbs_w25").tag
    'ih.entropy'
    >>> feature_of_column("wavelet_LLH_glcm_Contrast").tag
    'cm.contrast'
    >>> feature_of_column("log_sigma_1_0_mm_3d__cm_contrast_3d_avg_fbs_w25").tag
    'cm.contrast'
    """
    base = re.sub(r"_fb[sn]_[a-z0-9]+$", "", column)
    base = base.rsplit("__", 1)[-1].lower()
    parts = base.split("_")
    for start in range(len(parts)):
        found = _BY_COLUMN.get("_".join(parts[start:]))
        if found is not None:
            return found
    return None
