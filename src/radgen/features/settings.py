"""Feature extraction settings: PyRadiomics-style parameter files, validated.

The same three sections as PyRadiomics (``setting``, ``imageType``, ``featureClass``) with
the same keys, defaults and meaning, plus ``convention`` (``"ibsi"``, the default, or
``"pyradiomics"``) and the radgen setting ``normalizeWithinROI``. Unknown keys raise
:class:`ConfigError` naming the key and the file; keys that only one convention defines are
refused in the other rather than silently ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from radgen.errors import ConfigError
from radgen.features.discretize import binning_suffix

__all__ = [
    "CLASSES",
    "IMAGE_TYPES",
    "MAX_BIN_COUNT",
    "PYRADIOMICS_CLASSES",
    "Settings",
    "load_settings",
]

#: Feature classes and the IBSI families each computes. PyRadiomics' seven classes keep
#: their names; ``gldzm``, ``ivh`` and ``localintensity`` are IBSI families PyRadiomics lacks.
CLASSES: Mapping[str, tuple[str, ...]] = {
    "firstorder": ("stat", "ih"),
    "shape": ("morph",),
    "glcm": ("cm",),
    "glrlm": ("rlm",),
    "glszm": ("szm",),
    "gldm": ("ngl",),
    "ngtdm": ("ngt",),
    "gldzm": ("dzm",),
    "ivh": ("ivh",),
    "localintensity": ("loc",),
}

#: The classes PyRadiomics 3.0.1 has (the ``pyradiomics`` convention computes only these);
#: ``shape2D`` needs ``force2D`` and a ROI one voxel thick (see extract_pyradiomics).
PYRADIOMICS_CLASSES = ("firstorder", "shape", "shape2D", "glcm", "glrlm", "glszm", "gldm", "ngtdm")

#: Image types (filters) and the conventions that define them.
IMAGE_TYPES: Mapping[str, tuple[str, ...]] = {
    "Original": ("ibsi", "pyradiomics"),
    "LoG": ("ibsi", "pyradiomics"),
    "Wavelet": ("ibsi", "pyradiomics"),
    "Square": ("pyradiomics",),
    "SquareRoot": ("pyradiomics",),
    "Logarithm": ("pyradiomics",),
    "Exponential": ("pyradiomics",),
    "Gradient": ("pyradiomics",),
}

#: Largest ``binCount``: a fixed-bin-number histogram has this many bins whatever the ROI
#: (65536 levels already resolve every value of a 16-bit image).
MAX_BIN_COUNT = 1 << 16

#: PyRadiomics keys that radgen does not implement (local binary patterns need spherical
#: harmonics on an icosphere and are rarely used in radiogenomics).
_NOT_SUPPORTED = {
    "lbp2DRadius",
    "lbp2DSamples",
    "lbp2DMethod",
    "lbp3DLevels",
    "lbp3DIcosphereRadius",
    "lbp3DIcosphereSubdivision",
}

#: Settings defined by PyRadiomics only: they change PyRadiomics' own arithmetic.
_PYRADIOMICS_ONLY = {
    "voxel_array_shift",
    "weighting_norm",
    "normalize",
    "normalize_scale",
    "remove_outliers",
    "pre_crop",
    "resegment_shape",
    "gradient_use_spacing",
}

_INTERPOLATORS = {
    "sitkNearestNeighbor": 0,
    "sitkLinear": 1,
    "sitkBSpline": 3,
    "linear": 1,
    "bspline": 3,
    "nearest": 0,
}


class _Setting(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    # discretisation and ROI
    bin_width: float | None = Field(default=None, alias="binWidth", gt=0, allow_inf_nan=False)
    bin_count: int | None = Field(default=None, alias="binCount", ge=1, le=MAX_BIN_COUNT)
    label: int = Field(default=1, ge=1)
    resegment_range: tuple[float, float | None] | None = Field(default=None, alias="resegmentRange")
    resegment_mode: Literal["absolute", "relative", "sigma"] = Field(
        default="absolute", alias="resegmentMode"
    )
    resegment_shape: bool = Field(default=False, alias="resegmentShape")
    minimum_roi_dimensions: int = Field(default=2, alias="minimumROIDimensions", ge=1, le=3)
    minimum_roi_size: int | None = Field(default=None, alias="minimumROISize", ge=1)
    # resampling (PyRadiomics order x, y, z; 0 keeps that axis)
    resampled_pixel_spacing: tuple[float, float, float] | None = Field(
        default=None, alias="resampledPixelSpacing"
    )
    interpolator: str | int = "sitkBSpline"
    pad_distance: int = Field(default=5, alias="padDistance", ge=0)
    pre_crop: bool = Field(default=False, alias="preCrop")
    # intensity normalisation
    normalize: bool = False
    normalize_scale: float = Field(default=1.0, alias="normalizeScale", gt=0)
    remove_outliers: float | None = Field(default=None, alias="removeOutliers", gt=0)
    normalize_within_roi: bool = Field(default=False, alias="normalizeWithinROI")
    # texture
    force2d: bool = Field(default=False, alias="force2D")
    force2d_dimension: int = Field(default=0, alias="force2Ddimension", ge=0, le=2)
    distances: tuple[int, ...] = (1,)
    symmetrical_glcm: bool = Field(default=True, alias="symmetricalGLCM")
    weighting_norm: Literal["manhattan", "euclidean", "infinity", "no_weighting"] | None = Field(
        default=None, alias="weightingNorm"
    )
    gldm_a: int = Field(default=0, ge=0)
    voxel_array_shift: float = Field(default=0.0, alias="voxelArrayShift")
    # filters (may also be given per image type)
    sigma: tuple[int | float, ...] | None = None
    start_level: int = Field(default=0, ge=0)
    level: int = Field(default=1, ge=1)
    wavelet: str = "coif1"
    gradient_use_spacing: bool = Field(default=True, alias="gradientUseSpacing")
    # accepted for compatibility; they have no effect on arrays that already share a grid
    geometry_tolerance: float | None = Field(default=None, alias="geometryTolerance")
    correct_mask: bool = Field(default=False, alias="correctMask")
    additional_info: bool = Field(default=True, alias="additionalInfo")
    enable_c_extensions: bool = Field(default=True, alias="enableCExtensions")
    init_value: float | None = Field(default=None, alias="initValue")

    @field_validator("resegment_range", mode="before")
    @classmethod
    def _one_or_two(cls, value: Any) -> Any:
        if isinstance(value, list | tuple) and len(value) == 1:
            return (value[0], None)
        return value

    @field_validator("resegment_range")
    @classmethod
    def _ordered(
        cls, value: tuple[float, float | None] | None
    ) -> tuple[float, float | None] | None:
        if value is not None and value[1] is not None and value[0] > value[1]:
            raise ValueError("resegmentRange must be [lower, upper]")
        return value

    @field_validator("distances")
    @classmethod
    def _positive(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(d < 1 for d in value):
            raise ValueError("distances must be a list of positive integers")
        return value

    @field_validator("interpolator")
    @classmethod
    def _known(cls, value: str | int) -> str | int:
        if isinstance(value, str) and value not in _INTERPOLATORS:
            raise ValueError(f"unknown interpolator {value!r} (known: {', '.join(_INTERPOLATORS)})")
        return value

    @field_validator("resampled_pixel_spacing")
    @classmethod
    def _non_negative(
        cls, value: tuple[float, float, float] | None
    ) -> tuple[float, float, float] | None:
        if value is not None and any(v < 0 for v in value):
            raise ValueError("resampledPixelSpacing must be three non-negative sizes (x, y, z)")
        return value

    @field_validator("sigma")
    @classmethod
    def _sigmas(cls, value: tuple[int | float, ...] | None) -> tuple[int | float, ...] | None:
        if value is not None and any(not s > 0 for s in value):
            raise ValueError("sigma must be positive sizes in mm")
        return value

    @property
    def interpolation_order(self) -> int:
        """Spline order of the image interpolator (0 nearest, 1 linear, 3 B-spline)."""
        if isinstance(self.interpolator, int):
            return {1: 0, 2: 1, 3: 3}.get(self.interpolator, 3)  # SimpleITK enum values
        return _INTERPOLATORS[self.interpolator]


def _default_image_types() -> dict[str, dict[str, Any] | None]:
    return {"Original": {}}


class Settings(BaseModel):
    """Validated extraction settings.

    Attributes
    ----------
    setting : dict
        PyRadiomics ``setting`` keys (``binWidth`` defaults to 25 when neither it nor
        ``binCount`` is given, ``label`` to 1, ...) plus ``normalizeWithinROI``: standardise the
        image by the mean and standard deviation of the ROI voxels before anything else, which
        makes every feature invariant to ``I' = aI + b`` (a > 0).
    image_types : dict
        ``imageType`` section: ``Original``, ``LoG`` (``sigma`` in mm), ``Wavelet``
        (``wavelet``, ``start_level``, ``level``); the pyradiomics convention also has
        ``Square``, ``SquareRoot``, ``Logarithm``, ``Exponential`` and ``Gradient``.
    feature_classes : dict
        ``featureClass`` section; null or an empty list enables every feature of the class.
        Absent: every class of the convention.
    convention : {"ibsi", "pyradiomics"}
        Feature definitions and names.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    setting: _Setting = Field(default_factory=_Setting)
    image_types: dict[str, dict[str, Any] | None] = Field(
        default_factory=_default_image_types, alias="imageType"
    )
    feature_classes: dict[str, list[str] | None] = Field(default_factory=dict, alias="featureClass")
    convention: Literal["ibsi", "pyradiomics"] = "ibsi"

    @model_validator(mode="after")
    def _supported(self) -> Settings:
        for name, args in self.image_types.items():
            if name not in IMAGE_TYPES:
                raise ValueError(
                    f"imageType {name!r} is not supported (supported: {', '.join(IMAGE_TYPES)})"
                )
            if self.convention not in IMAGE_TYPES[name]:
                raise ValueError(f"imageType {name!r} exists in the pyradiomics convention only")
            for key in args or {}:
                if key not in _Setting.model_fields and key not in {
                    f.alias for f in _Setting.model_fields.values()
                }:
                    raise ValueError(f"imageType {name!r}: unknown argument {key!r}")
            try:
                self.image_type_setting(name)
            except ValidationError as err:
                first = err.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                raise ValueError(f"imageType {name!r}: {where}: {first['msg']}") from None
        known = PYRADIOMICS_CLASSES if self.convention == "pyradiomics" else tuple(CLASSES)
        for name in self.feature_classes:
            if name not in known:
                raise ValueError(
                    f"featureClass {name!r} does not exist in the {self.convention} convention "
                    f"(classes: {', '.join(known)})"
                )
        if not self.feature_classes:
            self.feature_classes = {name: None for name in known}
        if self.convention == "ibsi":
            given = {
                name
                for name in self.setting.model_fields_set & _PYRADIOMICS_ONLY
                if getattr(self.setting, name) != _Setting.model_fields[name].default
            }
            if given:
                alias = _Setting.model_fields[sorted(given)[0]].alias
                raise ValueError(
                    f"setting {alias} is defined by PyRadiomics only; "
                    "use convention: pyradiomics to apply it"
                )
        if self.setting.bin_width is not None and self.setting.bin_count is not None:
            raise ValueError("give binWidth or binCount, not both")
        if self.setting.bin_width is None and self.setting.bin_count is None:
            self.setting.bin_width = 25.0
        return self

    @property
    def binning(self) -> str:
        """Column suffix of the discretisation (``fbs_w25``)."""
        return binning_suffix(width=self.setting.bin_width, n_bins=self.setting.bin_count)

    def image_type_setting(self, name: str) -> _Setting:
        """The settings of one image type: the ``setting`` section updated by its arguments."""
        args = self.image_types.get(name) or {}
        return _Setting.model_validate({**self.setting.model_dump(by_alias=True), **args})

    def as_params(self) -> dict[str, Any]:
        """Canonical dict of every setting (hashed into the feature set version)."""
        return self.model_dump(by_alias=True, mode="json")


def _reject_unknown(raw: Mapping[str, Any], source: str) -> None:
    section = raw.get("setting")
    # not a mapping: the model names the section and its type
    for key in section if isinstance(section, Mapping) else ():
        if key in _NOT_SUPPORTED:
            raise ConfigError(
                f"{source}: setting.{key}",
                "local binary patterns (LBP2D/LBP3D) are not supported by radgen",
            )
    for key in raw:
        if key not in {"setting", "imageType", "featureClass", "convention"}:
            raise ConfigError(
                f"{source}: {key}",
                "unknown key (expected setting, imageType, featureClass, convention)",
            )


def load_settings(settings: Settings | Mapping[str, Any] | str | Path | None) -> Settings:
    """Validate settings given as a model, a dict, or a path to a YAML file.

    Parameters
    ----------
    settings : Settings, mapping, path or None
        None gives the defaults (IBSI convention, every feature class, original image, bin
        width 25).

    Returns
    -------
    Settings

    Raises
    ------
    ConfigError
        Unknown or invalid key, naming the key and the file.
    """
    if isinstance(settings, Settings):
        return settings
    source = "settings"
    if settings is None:
        raw: Mapping[str, Any] = {}
    elif isinstance(settings, str | Path):
        source = str(settings)
        try:
            raw = yaml.safe_load(Path(settings).read_text()) or {}
        except OSError as err:
            raise ConfigError(source, f"cannot read: {err.strerror or err}") from err
        except UnicodeDecodeError as err:
            raise ConfigError(source, f"not UTF-8 text (byte {err.start})") from err
        except yaml.YAMLError as err:
            raise ConfigError(source, f"not valid YAML: {err}") from err
        except RecursionError as err:  # PyYAML composes nested collections recursively
            raise ConfigError(source, "not valid settings YAML: nested too deeply") from err
        if not isinstance(raw, Mapping):
            raise ConfigError(source, "expected a mapping with setting/imageType/featureClass")
    else:
        raw = settings
    _reject_unknown(raw, source)
    raw = dict(raw)
    if "setting" in raw and isinstance(raw["setting"], Mapping) and "convention" in raw["setting"]:
        inner = dict(raw["setting"])
        raw.setdefault("convention", inner.pop("convention"))
        raw["setting"] = inner
    if raw.get("imageType") is None and "imageType" in raw:
        raw.pop("imageType")
    if raw.get("featureClass") is None and "featureClass" in raw:
        raw.pop("featureClass")
    try:
        return Settings.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        reason = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{source}: {where}" if where else source, reason) from err
