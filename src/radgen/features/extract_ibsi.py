"""The ``ibsi`` convention: IBSI-1 feature definitions over one ROI held in memory.

Order of operations (IBSI-1 chapter 2): crop to the ROI with the margin the filters and the
local-intensity sphere need, optional resampling, optional standardisation within the ROI
(``normalizeWithinROI``), range re-segmentation into the intensity mask (the morphological
mask stays the ROI), filtering per image type, discretisation, then each family. Morphology
and local intensity are computed on the original image only, as IBSI and PyRadiomics do.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import numpy.typing as npt

from radgen.errors import ConfigError, EmptyRoiError, InputError
from radgen.features.discretize import fixed_bin_number, fixed_bin_size
from radgen.features.preprocess import expand_region, roi_bbox
from radgen.features.settings import Settings

__all__ = ["extract_ibsi", "ibsi_margin"]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

_TEXTURE = ("glcm", "glrlm", "glszm", "gldzm", "ngtdm", "gldm")


def ibsi_margin(settings: Settings, spacing: tuple[float, float, float]) -> tuple[int, int, int]:
    """Voxels to keep around the ROI box so that filters and the peak sphere see real data.

    One more than the reach of each filter (LoG kernel radius ``int(4 sigma / spacing + 0.5)``,
    wavelet support ``ceil(len(filter) / 2) (2^level - 1)``), so that the filters of
    :mod:`radgen.features.filters` transform the same region of the crop as of the whole image.

    Parameters
    ----------
    settings : Settings
        Extraction settings (image types, feature classes).
    spacing : tuple of 3 floats
        Voxel size (z, y, x) in mm.

    Returns
    -------
    tuple of 3 int
        Margin per axis (z, y, x).
    """
    margin = [0, 0, 0]
    if "localintensity" in settings.feature_classes:
        from radgen.features.local_intensity import local_intensity_margin

        margin = list(local_intensity_margin(spacing))
    for name in settings.image_types:
        args = settings.image_type_setting(name)
        need = [0, 0, 0]
        if name == "LoG":
            sigma = max(float(s) for s in args.sigma or (0.0,))
            need = [int(4.0 * sigma / s + 0.5) + 1 for s in spacing]
        elif name == "Wavelet":
            import pywt

            half = math.ceil(pywt.Wavelet(args.wavelet).dec_len / 2)
            top = args.start_level + args.level
            need = [half * (2**top - 1) + 1] * 3
        margin = [max(a, b) for a, b in zip(margin, need, strict=True)]
    return (margin[0], margin[1], margin[2])


def _absolute_range(
    bounds: tuple[float, float | None], mode: str, values: FloatArray
) -> tuple[float, float | None]:
    """Re-segmentation bounds in intensity units.

    ``absolute``: as given; ``sigma``: mean + k SD of the ROI (IBSI outlier filtering is
    ``[-3, 3]``); ``relative``: fractions of the ROI maximum (PyRadiomics' modes).
    """
    low, high = bounds
    if mode == "sigma":
        mean, sd = float(values.mean()), float(values.std())
        return mean + low * sd, None if high is None else mean + high * sd
    if mode == "relative":
        top = float(values.max())
        return low * top, None if high is None else high * top
    return low, high


def _discretise(
    values: FloatArray, settings: Settings, *, original: bool = True
) -> tuple[npt.NDArray[np.int64], int]:
    """Grey levels and their number.

    Fixed bin size starts at the re-segmentation minimum for the original image and at the
    ROI minimum for a filter response (IBSI 2).
    """
    s = settings.setting
    if s.bin_count is not None:
        return fixed_bin_number(values, s.bin_count), int(s.bin_count)
    assert s.bin_width is not None
    low = s.resegment_range[0] if s.resegment_range and original else None
    levels = fixed_bin_size(values, s.bin_width, min_bound=low)
    return levels, int(levels.max())


def _image_types(
    settings: Settings, image: FloatArray, roi: BoolArray, spacing: tuple[float, float, float]
) -> Iterator[tuple[str, FloatArray]]:
    """(key prefix, response on the ROI bounding box) of every image type."""
    from radgen.features.filters import ibsi_log, ibsi_wavelet

    box = roi_bbox(roi)
    for name in settings.image_types:
        args = settings.image_type_setting(name)
        if name == "Original":
            yield "original", image[box]
        elif name == "LoG":
            if not args.sigma:
                raise ConfigError("imageType.LoG", "give sigma (mm), e.g. sigma: [1.0, 2.0]")
            for sigma in args.sigma:
                prefix = f"log-sigma-{str(sigma).replace('.', '-')}-mm-3D"
                yield prefix, ibsi_log(image, roi, spacing, float(sigma))
        elif name == "Wavelet":
            for level in range(args.start_level + 1, args.start_level + args.level + 1):
                tag = "wavelet" if level == 1 else f"wavelet{level}"
                bands = ibsi_wavelet(image, roi, wavelet=args.wavelet, level=level)
                for band, response in bands.items():
                    yield f"{tag}-{band}", response
        else:  # refused by the settings model; kept for a clear error if that changes
            raise ConfigError(f"imageType.{name}", "exists in the pyradiomics convention only")


def _select(out: dict[str, float], settings: Settings, cls: str) -> dict[str, float]:
    wanted = settings.feature_classes.get(cls)
    if not wanted:
        return out
    tags = {key.partition(" [")[0] for key in out}
    unknown = sorted(set(wanted) - tags)
    if unknown:
        raise ConfigError(
            f"featureClass.{cls}", f"unknown feature(s) {', '.join(unknown)}; use IBSI tags"
        )
    return {k: v for k, v in out.items() if k.partition(" [")[0] in wanted}


def _ivh(
    values: FloatArray, levels: npt.NDArray[np.int64], settings: Settings, *, original: bool
) -> dict[str, float]:
    """IVH as IBSI 4.1 computes it.

    On grey levels for a fixed bin number; on intensities for a fixed bin size (discrete with
    step 1 for an integer image at width 1, else bins of the width), over the re-segmentation
    range when one is set.
    """
    from radgen.features.ivh import ivh

    s = settings.setting
    if s.bin_count is not None:
        return ivh(levels, n_bins=s.bin_count)
    assert s.bin_width is not None
    value_range = None
    if s.resegment_range is not None and original:
        low, high = s.resegment_range
        value_range = (low, float(values.max()) if high is None else high)
    integer = bool(np.all(values == np.round(values)))
    if integer and s.bin_width == 1:
        return ivh(values, bin_width=1.0, value_range=value_range)
    return ivh(values, bin_width=s.bin_width, value_range=value_range, discretised=False)


def _texture_function(cls: str) -> Callable[[npt.NDArray[np.int64], int], dict[str, float]]:
    if cls == "glcm":
        from radgen.features.texture_glcm import ibsi_glcm

        return ibsi_glcm
    if cls == "glrlm":
        from radgen.features.texture_glrlm import ibsi_glrlm

        return ibsi_glrlm
    if cls == "glszm":
        from radgen.features.texture_glszm import ibsi_glszm

        return ibsi_glszm
    if cls == "gldzm":
        from radgen.features.texture_gldzm import ibsi_gldzm

        return ibsi_gldzm
    if cls == "ngtdm":
        from radgen.features.texture_ngtdm import ibsi_ngtdm

        return ibsi_ngtdm
    from radgen.features.texture_ngldm import ibsi_ngldm

    return ibsi_ngldm


def _intensity_families(
    image: FloatArray,
    intensity_mask: BoolArray,
    settings: Settings,
    *,
    original: bool = True,
) -> dict[str, float]:
    """First-order, IVH and texture features of one (filtered) image."""
    from radgen.features.firstorder import intensity_histogram, intensity_statistics

    classes = settings.feature_classes
    values = image[intensity_mask]
    if not np.all(np.isfinite(values)):
        raise InputError("image", "non-finite intensities inside the ROI")
    out: dict[str, float] = {}
    levels, ng = _discretise(values, settings, original=original)
    if "firstorder" in classes:
        fo = intensity_statistics(values)
        fo.update(intensity_histogram(levels))
        out.update(_select(fo, settings, "firstorder"))
    if "ivh" in classes:
        out.update(_select(_ivh(values, levels, settings, original=original), settings, "ivh"))
    wanted_textures = [c for c in _TEXTURE if c in classes]
    if wanted_textures:
        box = roi_bbox(intensity_mask)
        grid = np.zeros(intensity_mask.shape, dtype=np.int64)
        grid[intensity_mask] = levels
        grid = grid[box]
        for cls in wanted_textures:
            out.update(_select(_texture_function(cls)(grid, ng), settings, cls))
    return out


def extract_ibsi(
    image: npt.NDArray[np.generic],
    mask: npt.NDArray[np.generic],
    spacing: tuple[float, float, float],
    settings: Settings,
) -> dict[str, float]:
    """IBSI features of the ROI ``mask == label`` (see :func:`radgen.features.extract`).

    Parameters
    ----------
    image, mask : ndarray (z, y, x)
        Same shape; any real dtype.
    spacing : tuple of 3 floats
        Voxel size (z, y, x) in mm.
    settings : Settings
        Validated settings with ``convention == "ibsi"``.

    Returns
    -------
    dict of str to float
        IBSI tag (``stat.mean``) or ``tag [aggregation]`` keys; filtered images prefix their
        keys with the image type (``log-sigma-1-0-mm-3D_stat.mean``).
    """
    s = settings.setting
    roi_full: BoolArray = np.asarray(mask if mask.dtype == np.bool_ else mask == s.label)
    if not roi_full.any():
        present = np.unique(mask[mask != 0])[:5]
        hint = (
            f" (the mask holds {', '.join(str(v) for v in present)}: set setting.label)"
            if present.size
            else " (the mask is empty)"
        )
        raise EmptyRoiError("mask", f"no voxel has label {s.label}{hint}")
    if s.resampled_pixel_spacing is not None:
        # IBSI aligns the new grid on the whole image: resample the whole grid's ROI region
        from radgen.features.preprocess import ibsi_resample

        new = tuple(
            float(n) if n > 0 else float(old)
            for n, old in zip(s.resampled_pixel_spacing[::-1], spacing, strict=True)
        )
        new_spacing = (new[0], new[1], new[2])
        need = ibsi_margin(settings, new_spacing)
        resampled = ibsi_resample(
            image,
            roi_full,
            spacing,
            new_spacing,
            order=s.interpolation_order,
            roi_margin=max(need) + 1,
        )
        img: FloatArray = resampled.image
        roi = resampled.mask
        spacing = new_spacing
        if not roi.any():
            raise EmptyRoiError("mask", "the ROI vanished after resampling")
    else:
        crop = expand_region(roi_bbox(roi_full), ibsi_margin(settings, spacing), image.shape)
        img = np.asarray(image[crop], dtype=np.float64)
        roi = np.asarray(roi_full[crop])
    if s.normalize_within_roi:
        from radgen.features.preprocess import zscore_within_roi

        img = zscore_within_roi(img, roi)
    roi_values = img[roi]
    if not np.all(np.isfinite(roi_values)):
        raise InputError("image", "non-finite intensities inside the ROI")
    intensity_mask = roi.copy()
    if s.resegment_range is not None:
        low, high = _absolute_range(s.resegment_range, s.resegment_mode, roi_values)
        intensity_mask &= img >= low
        if high is not None:
            intensity_mask &= img <= high
        if not intensity_mask.any():
            raise EmptyRoiError(
                "mask",
                f"no voxel has label {s.label} inside resegmentRange {list(s.resegment_range)}"
                + (
                    f" ({s.resegment_mode}: [{low:g}, {high}])"
                    if s.resegment_mode != "absolute"
                    else ""
                ),
            )
        if s.resegment_mode != "absolute":  # downstream (bin minimum, IVH range) reads absolutes
            absolute = s.model_copy(
                update={"resegment_range": (low, high), "resegment_mode": "absolute"}
            )
            settings = settings.model_copy(update={"setting": absolute})
    out: dict[str, float] = {}
    classes = settings.feature_classes
    if "shape" in classes:
        from radgen.features.morphology import ibsi_morphology

        roi_box = roi_bbox(roi)
        morph = ibsi_morphology(
            roi[roi_box], img[roi_box], spacing, intensity_mask=intensity_mask[roi_box]
        )
        out.update(_select(morph, settings, "shape"))
    if "localintensity" in classes:
        from radgen.features.local_intensity import local_intensity

        out.update(
            _select(local_intensity(img, intensity_mask, spacing), settings, "localintensity")
        )
    box = roi_bbox(roi)
    in_box = intensity_mask[box]
    for prefix, filtered in _image_types(settings, img, roi, spacing):
        feats = _intensity_families(filtered, in_box, settings, original=prefix == "original")
        if prefix == "original":
            out.update(feats)
        else:
            out.update({f"{prefix}_{k}": v for k, v in feats.items()})
    return out
