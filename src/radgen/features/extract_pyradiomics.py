"""The ``pyradiomics`` convention: PyRadiomics 3.0.1's keys and values, computed by radgen.

Follows ``RadiomicsFeatureExtractor.execute``: pre-processing (label, normalisation,
resampling, re-segmentation, ROI checks) in :func:`radgen.features.preprocess.pyradiomics_prepare`;
shape features once on the original ROI (``original_shape_*``, whatever the image types);
then for every image type the filtered image cropped to the ROI box
(:func:`radgen.features.filters.filtered_images_detailed`, which filters a crop with the margin
each filter needs instead of the whole image), PyRadiomics' discretisation, and each enabled
class. ``shape2D`` (only with ``force2D``) is not offered.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from radgen.errors import ConfigError, InputError
from radgen.features.settings import Settings, _Setting
from radgen.schemas.features import PYRADIOMICS

__all__ = ["extract_pyradiomics", "pyradiomics_kwargs"]

#: Settings PyRadiomics' pre-processing and filters read (radgen field -> PyRadiomics name).
_PASSED = (
    "label",
    "resegment_range",
    "resegment_mode",
    "resegment_shape",
    "minimum_roi_dimensions",
    "minimum_roi_size",
    "resampled_pixel_spacing",
    "interpolator",
    "pad_distance",
    "pre_crop",
    "normalize",
    "normalize_scale",
    "remove_outliers",
    "force2d",
    "force2d_dimension",
    "sigma",
    "start_level",
    "level",
    "wavelet",
    "gradient_use_spacing",
)


def pyradiomics_kwargs(setting: _Setting) -> dict[str, Any]:
    """PyRadiomics keyword settings of the pre-processing and filters, by PyRadiomics name."""
    out: dict[str, Any] = {}
    for name in _PASSED:
        value = getattr(setting, name)
        if value is None:
            continue
        alias = _Setting.model_fields[name].alias or name
        if isinstance(value, tuple):
            value = [v for v in value if v is not None]
        out[alias] = value
    return out


def _class_function(
    cls: str, setting: _Setting, spacing: tuple[float, float, float]
) -> Callable[[npt.NDArray[np.intp]], dict[str, float]]:
    f2d, f2d_axis = setting.force2d, setting.force2d_dimension
    if cls == "glcm":
        from radgen.features.texture_glcm import pyradiomics_glcm

        return lambda levels: pyradiomics_glcm(
            levels,
            distances=setting.distances,
            symmetricalGLCM=setting.symmetrical_glcm,
            weightingNorm=setting.weighting_norm,
            spacing=spacing,
            force2D=f2d,
            force2Ddimension=f2d_axis,
        )
    if cls == "glrlm":
        from radgen.features.texture_glrlm import pyradiomics_glrlm

        return lambda levels: pyradiomics_glrlm(
            levels,
            weightingNorm=setting.weighting_norm,
            spacing=spacing,
            force2D=f2d,
            force2Ddimension=f2d_axis,
        )
    if cls == "glszm":
        from radgen.features.texture_glszm import pyradiomics_glszm

        return lambda levels: pyradiomics_glszm(levels, force2D=f2d, force2Ddimension=f2d_axis)
    if cls == "gldm":
        from radgen.features.texture_ngldm import pyradiomics_gldm

        return lambda levels: pyradiomics_gldm(
            levels,
            distances=setting.distances,
            gldm_a=setting.gldm_a,
            force2D=f2d,
            force2Ddimension=f2d_axis,
        )
    if cls == "ngtdm":
        from radgen.features.texture_ngtdm import pyradiomics_ngtdm

        return lambda levels: pyradiomics_ngtdm(
            levels, distances=setting.distances, force2D=f2d, force2Ddimension=f2d_axis
        )
    raise ConfigError(f"featureClass.{cls}", "not a PyRadiomics texture class")


def _select(values: Mapping[str, float], cls: str, wanted: list[str] | None) -> dict[str, float]:
    if not wanted:
        return {k: v for k, v in values.items() if k in PYRADIOMICS[cls]}
    unknown = sorted(set(wanted) - set(values))
    if unknown:
        raise ConfigError(
            f"featureClass.{cls}",
            f"unknown feature(s) {', '.join(unknown)} (PyRadiomics names, e.g. "
            f"{next(iter(PYRADIOMICS[cls]))})",
        )
    return {k: values[k] for k in wanted}


def extract_pyradiomics(
    image: npt.NDArray[Any],
    mask: npt.NDArray[Any],
    spacing: tuple[float, float, float],
    settings: Settings,
) -> dict[str, float]:
    """PyRadiomics' features of the ROI (see :func:`radgen.features.extract`).

    Parameters
    ----------
    image, mask : ndarray (z, y, x)
        Same shape.
    spacing : tuple of 3 floats
        Voxel size (z, y, x) in mm.
    settings : Settings
        Validated settings with ``convention == "pyradiomics"``.

    Returns
    -------
    dict of str to float
        ``<image type>_<class>_<Feature>`` as PyRadiomics names them.
    """
    from radgen.features.filters import filtered_images_detailed
    from radgen.features.firstorder_pyradiomics import pyradiomics_bin, pyradiomics_firstorder
    from radgen.features.preprocess import pyradiomics_prepare

    s = settings.setting
    classes = settings.feature_classes
    if s.normalize_within_roi:
        from radgen.features.preprocess import select_label, zscore_within_roi

        image = zscore_within_roi(image, select_label(mask, s.label))
    kwargs = pyradiomics_kwargs(s)
    prepared = pyradiomics_prepare(image, mask, spacing, **kwargs)
    out: dict[str, float] = {}
    if "shape" in classes:
        from radgen.features.morphology import pyradiomics_shape

        shape = pyradiomics_shape(prepared.shape_mask_crop(), prepared.spacing)
        out.update(
            {f"original_shape_{k}": v for k, v in _select(shape, "shape", classes["shape"]).items()}
        )
    if "shape2D" in classes:
        out.update(_shape2d(prepared, s, classes["shape2D"]))
    texture = [c for c in classes if c not in {"shape", "shape2D", "firstorder"}]
    for item in filtered_images_detailed(prepared, None, None, settings.image_types, **kwargs):
        # the image type's own settings: `setting` updated by its imageType arguments
        local = _Setting.model_validate({**s.model_dump(by_alias=True), **item.settings})
        width = float(local.bin_width or 25)
        if "firstorder" in classes:
            fo = pyradiomics_firstorder(
                item.image,
                item.mask,
                item.spacing,
                voxelArrayShift=local.voxel_array_shift,
                binWidth=width,
                binCount=local.bin_count,
            )
            out.update(
                {
                    f"{item.name}_firstorder_{k}": v
                    for k, v in _select(fo, "firstorder", classes["firstorder"]).items()
                }
            )
        if texture:
            levels, _ = pyradiomics_bin(
                item.image, item.mask, binWidth=width, binCount=local.bin_count
            )
            levels = np.where(item.mask, levels, 0)
            for cls in texture:
                values = _class_function(cls, local, item.spacing)(levels)
                out.update(
                    {
                        f"{item.name}_{cls}_{k}": v
                        for k, v in _select(values, cls, classes[cls]).items()
                    }
                )
    return out


def _shape2d(prepared: Any, setting: _Setting, wanted: list[str] | None) -> dict[str, float]:
    """``original_shape2D_*`` exactly when PyRadiomics 3.0.1 computes them.

    PyRadiomics computes shape2D only with ``force2D`` and when the ROI's bounding box, in
    SimpleITK's (x, y, z) order, is more than one voxel wide at index ``force2Ddimension``;
    its shape2D class then needs the mask to be one voxel thick along NumPy axis
    ``force2Ddimension`` and raises otherwise (the two indices disagree except for a ROI in
    one axial slice with ``force2Ddimension`` 0, the common 2D case).
    """
    if not setting.force2d:
        return {}
    axis = setting.force2d_dimension
    size_zyx = [b.stop - b.start for b in prepared.bbox]
    if not size_zyx[::-1][axis] > 1:
        return {}
    if size_zyx[axis] > 1:
        raise InputError(
            "mask",
            f"shape2D needs a ROI one voxel thick along force2Ddimension {axis} (PyRadiomics "
            "3.0.1 refuses this mask); disable the class with featureClass without shape2D",
        )
    from radgen.features.morphology import pyradiomics_shape2d

    mask2d = np.squeeze(prepared.shape_mask_crop(), axis=axis)
    spacing2d = [s for a, s in enumerate(prepared.spacing) if a != axis]
    values = pyradiomics_shape2d(mask2d, spacing2d)
    return {f"original_shape2D_{k}": v for k, v in _select(values, "shape2D", wanted).items()}
