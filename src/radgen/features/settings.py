"""Feature extraction settings: PyRadiomics-style parameter files, validated.

The same three sections as PyRadiomics (``setting``, ``imageType``, ``featureClass``) with
the same meaning, plus ``convention``. Unknown keys raise :class:`ConfigError` naming the
key and the file; PyRadiomics keys radgen does not implement yet are named as such rather
than silently ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from radgen.errors import ConfigError
from radgen.features.discretize import binning_suffix

__all__ = ["FAMILIES", "MAX_BIN_COUNT", "Settings", "load_settings"]

#: PyRadiomics feature classes radgen computes, and the IBSI families each maps to.
FAMILIES: Mapping[str, tuple[str, ...]] = {"firstorder": ("stat", "ih")}

#: Largest ``binCount``: a fixed-bin-number histogram has this many bins whatever the ROI
#: (65536 levels already resolve every value of a 16-bit image).
MAX_BIN_COUNT = 1 << 16

#: PyRadiomics keys that are valid there but not implemented here yet.
_NOT_YET = {
    "resampledPixelSpacing",
    "interpolator",
    "padDistance",
    "normalize",
    "normalizeScale",
    "removeOutliers",
    "preCrop",
    "resegmentMode",
    "resegmentShape",
    "minimumROIDimensions",
    "minimumROISize",
    "geometryTolerance",
    "correctMask",
    "additionalInfo",
    "force2D",
    "force2Ddimension",
    "distances",
    "symmetricalGLCM",
    "weightingNorm",
    "gldm_a",
    "voxelArrayShift",
    "sigma",
    "start_level",
    "level",
    "wavelet",
    "gradientUseSpacing",
    "lbp2DRadius",
    "lbp2DSamples",
    "lbp2DMethod",
    "lbp3DLevels",
    "lbp3DIcosphereRadius",
    "lbp3DIcosphereSubdivision",
    "initValue",
    "enableCExtensions",
}


class _Setting(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    bin_width: float | None = Field(default=None, alias="binWidth", gt=0, allow_inf_nan=False)
    bin_count: int | None = Field(default=None, alias="binCount", ge=1, le=MAX_BIN_COUNT)
    label: int = Field(default=1, ge=1)
    resegment_range: tuple[float, float] | None = Field(default=None, alias="resegmentRange")

    @field_validator("resegment_range")
    @classmethod
    def _ordered(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and value[0] > value[1]:
            raise ValueError("resegmentRange must be [lower, upper]")
        return value


def _default_image_types() -> dict[str, dict[str, Any] | None]:
    return {"Original": {}}


def _default_feature_classes() -> dict[str, list[str] | None]:
    return {"firstorder": None}


class Settings(BaseModel):
    """Validated extraction settings.

    Attributes
    ----------
    setting : dict
        ``binWidth`` (default 25 when neither it nor ``binCount`` is given), ``binCount``,
        ``label`` (default 1), ``resegmentRange`` ``[lower, upper]``.
    image_types : dict
        ``imageType`` section; ``Original`` is supported.
    feature_classes : dict
        ``featureClass`` section; ``firstorder`` is supported. An empty list or null enables
        every feature of the class.
    convention : {"ibsi"}
        Feature definitions and names.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    setting: _Setting = Field(default_factory=_Setting)
    image_types: dict[str, dict[str, Any] | None] = Field(
        default_factory=_default_image_types, alias="imageType"
    )
    feature_classes: dict[str, list[str] | None] = Field(
        default_factory=_default_feature_classes, alias="featureClass"
    )
    convention: Literal["ibsi"] = "ibsi"

    @model_validator(mode="after")
    def _supported(self) -> Settings:
        for name in self.image_types:
            if name != "Original":
                raise ValueError(f"imageType {name!r} is not supported yet (supported: Original)")
        for name in self.feature_classes:
            if name not in FAMILIES:
                raise ValueError(
                    f"featureClass {name!r} is not supported yet (supported: {', '.join(FAMILIES)})"
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

    def as_params(self) -> dict[str, Any]:
        """Canonical dict of every setting (hashed into the feature set version)."""
        return self.model_dump(by_alias=True, mode="json")


def _reject_unknown(raw: Mapping[str, Any], source: str) -> None:
    section = raw.get("setting")
    # not a mapping: the model names the section and its type
    for key in section if isinstance(section, Mapping) else ():
        if key in _NOT_YET:
            raise ConfigError(
                f"{source}: setting.{key}", "is a PyRadiomics setting radgen does not support yet"
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
        None gives the defaults (first-order features, bin width 25).

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
    try:
        return Settings.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{source}: {where}", first["msg"]) from err
