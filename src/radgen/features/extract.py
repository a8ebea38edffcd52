"""Features of one ROI in memory: ``radgen.features.extract(image, mask, spacing, settings)``.

Dispatches to the convention the settings name (:mod:`radgen.features.extract_ibsi`,
:mod:`radgen.features.extract_pyradiomics`) and turns feature keys into table columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from radgen.errors import InputError
from radgen.features.settings import CLASSES, Settings, load_settings
from radgen.schemas.features import FEATURES, PYRADIOMICS, column_name, pyradiomics_column

__all__ = [
    "expected_columns",
    "extract",
    "feature_columns",
    "image_type_prefixes",
    "roi_region",
]

#: PyRadiomics image types whose scale is ``max |x|`` over the whole image.
_WHOLE_IMAGE_TYPES = {"Square", "SquareRoot", "Logarithm", "Exponential"}


def extract(
    image: npt.ArrayLike,
    mask: npt.ArrayLike,
    spacing: Sequence[float],
    settings: Settings | Mapping[str, Any] | str | Path | None = None,
) -> dict[str, float]:
    """Compute radiomic features of one ROI.

    Parameters
    ----------
    image : array_like of shape (z, y, x)
        Intensities, any real dtype.
    mask : array_like of shape (z, y, x)
        ROI where ``mask == label`` (setting ``label``, default 1).
    spacing : sequence of 3 floats
        Voxel size (z, y, x) in mm.
    settings : Settings, mapping, path to YAML, or None
        PyRadiomics-style parameters (``setting``, ``imageType``, ``featureClass``) plus
        ``convention``: ``"ibsi"`` (default) or ``"pyradiomics"``. See
        :mod:`radgen.features.settings`.

    Returns
    -------
    dict of str to float
        ``ibsi``: keyed by IBSI tag (``stat.mean``) or ``"<tag> [<aggregation>]"`` for texture
        features (``cm.contrast [3D, averaged]``); filtered images prefix the image type
        (``wavelet-LLH_stat.mean``). ``pyradiomics``: PyRadiomics 3.0.1's own keys
        (``original_glcm_Contrast``), diagnostics excluded.

    Raises
    ------
    EmptyRoiError
        The ROI has no voxel (or none left after re-segmentation).
    InputError
        Shapes differ, the spacing is not three positive numbers, or the ROI holds NaN/inf.
    ConfigError
        Invalid settings.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.arange(8.0).reshape(2, 2, 2)
    >>> extract(img, np.ones((2, 2, 2)), (1.0, 1.0, 1.0))["stat.mean"]
    3.5
    """
    from radgen.features.preprocess import as_spacing

    cfg = load_settings(settings)
    sp = as_spacing(spacing)
    img = np.asarray(image)
    msk = np.asarray(mask)
    if img.ndim != 3:
        raise InputError("image", f"expected a 3D (z, y, x) array, got {img.ndim} dimension(s)")
    if img.shape != msk.shape:
        raise InputError("mask", f"mask shape {msk.shape} differs from image shape {img.shape}")
    if not (np.issubdtype(img.dtype, np.integer) or np.issubdtype(img.dtype, np.floating)):
        raise InputError("image", f"expected real intensities, got dtype {img.dtype}")
    if cfg.convention == "pyradiomics":
        from radgen.features.extract_pyradiomics import extract_pyradiomics

        return extract_pyradiomics(img, msk, sp, cfg)
    from radgen.features.extract_ibsi import extract_ibsi

    return extract_ibsi(img, msk, sp, cfg)


def roi_region(
    settings: Settings | Mapping[str, Any] | None,
    bbox: Sequence[int],
    shape: Sequence[int],
    spacing: Sequence[float],
) -> list[int]:
    """The box of the volume ``extract`` needs for a ROI: its bounding box plus what filters see.

    Reading this box (instead of the whole volume) and calling :func:`extract` on it gives the
    same features as calling it on the whole volume. The box is the ROI bounding box grown by
    the margin of every enabled filter and of the local-intensity sphere; it is the whole
    volume when the result depends on all of it (PyRadiomics ``normalize``, resampling, and
    the Square/SquareRoot/Logarithm/Exponential image types, whose scale is the image
    maximum), and spans a whole axis where a periodic wavelet transform wraps around it.

    Parameters
    ----------
    settings : Settings, mapping or None
        Extraction settings.
    bbox : sequence of 6 int
        ROI bounding box ``[z0, z1, y0, y1, x0, x1]`` (half-open).
    shape : sequence of 3 int
        Volume shape (z, y, x).
    spacing : sequence of 3 floats
        Voxel size (z, y, x) in mm.

    Returns
    -------
    list of 6 int
        ``[z0, z1, y0, y1, x0, x1]`` to read.
    """
    from radgen.features.preprocess import as_spacing

    cfg = load_settings(settings)
    sp = as_spacing(spacing)
    full = [0, int(shape[0]), 0, int(shape[1]), 0, int(shape[2])]
    s = cfg.setting
    if s.resampled_pixel_spacing is not None:
        return full
    wavelet_axes: set[int] = set()
    if cfg.convention == "pyradiomics":
        if s.normalize or _WHOLE_IMAGE_TYPES & set(cfg.image_types):
            return full
        from radgen.features.extract_pyradiomics import pyradiomics_kwargs
        from radgen.features.filters import pyradiomics_filter_margin

        margin = [0, 0, 0]
        for name in cfg.image_types:
            kwargs = pyradiomics_kwargs(cfg.image_type_setting(name))
            need = pyradiomics_filter_margin(name, sp, **kwargs)
            margin = [max(a, b) for a, b in zip(margin, need, strict=True)]
            if name == "Wavelet":
                wavelet_axes |= {a for a in range(3) if need[a] > 0}
    else:
        from radgen.features.extract_ibsi import ibsi_margin

        margin = list(ibsi_margin(cfg, sp))
        if "Wavelet" in cfg.image_types:
            wavelet_axes = {0, 1, 2}
    out = []
    for axis in range(3):
        lo, hi, n = int(bbox[2 * axis]), int(bbox[2 * axis + 1]), int(shape[axis])
        a, b = lo - margin[axis], hi + margin[axis]
        if axis in wavelet_axes and (a <= 0 or b >= n):
            a, b = 0, n  # the transform wraps (or mirrors) at this border: keep the whole axis
        out += [max(a, 0), min(b, n)]
    return out


def image_type_prefixes(settings: Settings) -> list[str]:
    """Key prefixes of the image types the settings enable (PyRadiomics' naming).

    Examples
    --------
    >>> image_type_prefixes(load_settings({"imageType": {"LoG": {"sigma": [1.0, 2.5]}}}))
    ['log-sigma-1-0-mm-3D', 'log-sigma-2-5-mm-3D']
    """
    out = []
    for name in settings.image_types:
        args = settings.image_type_setting(name)
        if name == "Original":
            out.append("original")
        elif name == "LoG":
            out += [f"log-sigma-{str(s).replace('.', '-')}-mm-3D" for s in args.sigma or ()]
        elif name == "Wavelet":
            for level in range(args.start_level, args.start_level + args.level):
                tag = "wavelet" if level == 0 else f"wavelet{level + 1}"
                bands = [f"{a}{b}{c}" for a in "LH" for b in "LH" for c in "LH"]
                out += [f"{tag}-{band}" for band in bands]
        else:
            out.append(name.lower())
    return out


def expected_columns(settings: Settings) -> list[str]:
    """Table columns the settings promise (what the features suite checks for)."""
    columns: list[str] = []
    prefixes = image_type_prefixes(settings)
    if settings.convention == "pyradiomics":
        for prefix in prefixes:
            for cls, wanted in settings.feature_classes.items():
                if cls == "shape2D" or (cls == "shape" and prefix != "original"):
                    continue  # shape2D exists only for some ROIs (see extract_pyradiomics)
                names = wanted or list(PYRADIOMICS[cls])
                columns += [pyradiomics_column(f"{prefix}_{cls}_{n}") for n in names]
        return columns
    for prefix in prefixes:
        for cls, wanted in settings.feature_classes.items():
            if cls in {"shape", "localintensity"} and prefix != "original":
                continue
            families = set(CLASSES[cls])
            for feature in FEATURES.values():
                if feature.family in families and (not wanted or feature.tag in wanted):
                    columns += [
                        column_name(key, binning=settings.binning, image_type=prefix)
                        for key in feature.ibsi_keys()
                    ]
    return columns


def feature_columns(features: Mapping[str, float], settings: Settings) -> dict[str, float]:
    """Rename feature keys to SQL-safe table columns.

    ``ibsi``: ``ih.entropy`` -> ``ih_entropy_fbs_w25``, ``cm.contrast [3D, averaged]`` ->
    ``cm_contrast_3d_avg_fbs_w25``; ``pyradiomics``: ``log-sigma-1-0-mm-3D_glcm_Id`` ->
    ``log_sigma_1_0_mm_3D_glcm_Id``.
    """
    if settings.convention == "pyradiomics":
        return {pyradiomics_column(k): v for k, v in features.items()}
    out = {}
    for key, value in features.items():
        prefix, sep, rest = key.partition("_")
        image_type, feature_key = (prefix, rest) if sep else ("original", key)
        out[column_name(feature_key, binning=settings.binning, image_type=image_type)] = value
    return out
