"""Parametric maps: closed-form truth, noise against the delta-method variance, scipy, Dask."""

from __future__ import annotations

import warnings
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import least_squares

from radgen.analysis.maps import adc, loglinear_decay, r2star, write_map_series
from radgen.errors import ConfigError, InputError, NotFoundError
from radgen.platform import tables
from radgen.platform.catalog import Catalog
from radgen.platform.volumes import open_volume, read_region, write_volume

B = np.array([0.0, 100.0, 400.0, 800.0, 1000.0])
TE = np.array([2.0, 5.0, 10.0, 15.0, 25.0, 35.0])


def planted(x: np.ndarray, shape: tuple[int, ...], rate: tuple[float, float], seed: int) -> Any:
    rng = np.random.default_rng(seed)
    s0 = rng.uniform(800.0, 1200.0, shape)
    k = rng.uniform(*rate, shape)
    signal = s0 * np.exp(-x.reshape((-1,) + (1,) * len(shape)) * k)
    return s0, k, signal


def test_adc_noise_free_is_exact_on_a_volume() -> None:
    s0, d, signal = planted(B, (3, 5, 7), (0.3e-3, 3e-3), 0)
    fit = adc(signal, B)
    np.testing.assert_allclose(fit.value, d, rtol=1e-10)
    np.testing.assert_allclose(fit.s0, s0, rtol=1e-10)
    assert fit.n_invalid == 0
    assert fit.value.shape == (3, 5, 7)


@pytest.mark.parametrize("method", ["loglinear", "nonlinear"])
def test_r2star_noise_free_is_exact(method: str) -> None:
    s0, r, signal = planted(TE, (4, 6), (0.01, 0.1), 1)
    fit = r2star(signal, TE, method)  # type: ignore[arg-type]
    np.testing.assert_allclose(fit.value, r, rtol=1e-8)
    np.testing.assert_allclose(fit.s0, s0, rtol=1e-8)


def test_two_b_values_is_the_two_point_formula() -> None:
    s = np.array([[1000.0, 640.0], [300.0, 150.0]])  # (b, voxel)
    fit = adc(s, [0, 800])
    np.testing.assert_allclose(fit.value, np.log(s[0] / s[1]) / 800.0, rtol=1e-12)


def test_adc_noise_matches_the_delta_method_variance() -> None:
    """Standardized errors (ADC_hat - ADC) / sd have mean 0 and sd 1 under Gaussian noise.

    ``sd^2 = sum_i c_i^2 sigma^2 / S_i^2 / (sum_i c_i^2)^2`` with ``c_i = b_i - bbar`` (the
    variance of ln S_i is sigma^2 / S_i^2 at high SNR). N = 20000 voxels: the mean has
    standard error 1/sqrt(N) = 0.007 (4 SE = 0.028, plus the log bias below 0.02), the sd
    about 1/sqrt(2N) = 0.005.
    """
    n, sigma = 20_000, 4.0
    _s0, d, signal = planted(B, (n,), (0.5e-3, 2e-3), 2)
    noisy = signal + np.random.default_rng(3).normal(0.0, sigma, signal.shape)
    fit = adc(noisy, B)
    c = B - B.mean()
    sd = np.sqrt((c[:, None] ** 2 * sigma**2 / signal**2).sum(axis=0)) / (c @ c)
    z = (fit.value - d) / sd
    assert abs(z.mean()) < 4 / np.sqrt(n) + 0.02
    assert abs(z.std() - 1.0) < 0.04


def test_nonlinear_r2star_agrees_with_scipy_least_squares() -> None:
    """An independent per-voxel Levenberg-Marquardt (scipy) finds the same minimum."""
    _s0, _r, signal = planted(TE, (40,), (0.01, 0.08), 4)
    noisy = signal + np.random.default_rng(5).normal(0.0, 15.0, signal.shape)
    fit = r2star(noisy, TE, "nonlinear")
    start = r2star(noisy, TE, "loglinear")
    for i in range(noisy.shape[1]):
        y = noisy[:, i]
        ref = least_squares(
            lambda p, y=y: p[0] * np.exp(-p[1] * TE) - y,
            [start.s0[i], start.value[i]],
            method="lm",
            xtol=1e-15,
            ftol=1e-15,
            gtol=1e-15,
        )
        np.testing.assert_allclose([fit.s0[i], fit.value[i]], ref.x, rtol=1e-6)


def test_nonlinear_never_fits_worse_than_its_loglinear_start() -> None:
    _s0, _r, signal = planted(TE, (500,), (0.005, 0.2), 6)
    noisy = np.abs(signal + np.random.default_rng(7).normal(0.0, 20.0, signal.shape))
    lin = r2star(noisy, TE, "loglinear")
    non = r2star(noisy, TE, "nonlinear")

    def sse(f: Any) -> Any:
        return ((noisy - f.s0 * np.exp(-TE[:, None] * f.value)) ** 2).sum(axis=0)

    assert np.all(sse(non) <= sse(lin) * (1 + 1e-12))
    assert sse(non).sum() < sse(lin).sum()


def test_nonlinear_r2star_is_close_to_truth_with_noise() -> None:
    """Mean error within 4 standard errors (empirical sd / sqrt(N)) plus an O(sigma^2) bias."""
    n = 4000
    _s0, r, signal = planted(TE, (n,), (0.02, 0.05), 8)
    noisy = signal + np.random.default_rng(9).normal(0.0, 5.0, signal.shape)
    err = r2star(noisy, TE, "nonlinear").value - r
    assert abs(err.mean()) < 4 * err.std() / np.sqrt(n) + 2e-5
    assert err.std() < 0.002  # sd of the estimate ~ 5e-4 at this SNR


@pytest.mark.parametrize("method", ["loglinear", "nonlinear"])
def test_dask_equals_numpy_chunk_by_chunk(method: str) -> None:
    _s0, _r, signal = planted(TE, (5, 9, 8), (0.01, 0.1), 10)
    noisy = signal + np.random.default_rng(11).normal(0.0, 5.0, signal.shape)
    noisy[2, 1, 1, 1] = -3.0  # one invalid voxel, inside a chunk
    ref = r2star(noisy, TE, method)  # type: ignore[arg-type]
    lazy = r2star(da.from_array(noisy, chunks=(1, 2, 4, 3)), TE, method)  # type: ignore[arg-type]
    assert isinstance(lazy.value, da.Array)
    got = lazy.compute()
    np.testing.assert_allclose(got.value, ref.value, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(got.s0, ref.s0, rtol=1e-12, equal_nan=True)
    assert got.n_invalid == ref.n_invalid == 1


def test_dask_adc_keeps_spatial_chunks() -> None:
    _, d, signal = planted(B, (4, 6, 6), (0.5e-3, 2e-3), 12)
    lazy = adc(da.from_array(signal, chunks=(1, 2, 6, 6)), B)
    assert lazy.value.chunks == ((2, 2), (6,), (6,))
    np.testing.assert_allclose(lazy.compute().value, d, rtol=1e-10)


def test_non_positive_and_missing_signal_give_nan_and_a_count() -> None:
    _, d, signal = planted(B, (10,), (0.5e-3, 2e-3), 13)
    signal[3, 2] = 0.0
    signal[1, 5] = -1.0
    signal[4, 7] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no bare numpy warning
        fit = adc(signal, B)
    assert fit.n_invalid == 3
    assert np.isnan(fit.value[[2, 5, 7]]).all()
    assert np.isnan(fit.s0[[2, 5, 7]]).all()
    keep = np.setdiff1d(np.arange(10), [2, 5, 7])
    np.testing.assert_allclose(fit.value[keep], d[keep], rtol=1e-10)


def test_all_invalid_nonlinear_is_all_nan_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = r2star(np.zeros((3, 4)), [1.0, 2.0, 3.0], "nonlinear")
    assert np.isnan(fit.value).all()
    assert fit.n_invalid == 4


@pytest.mark.parametrize(
    ("signal", "x", "what"),
    [
        (np.ones((1, 3)), [0.0], "dwi"),
        (np.ones((3, 3)), [500.0, 500.0, 500.0], "b_values"),
        (np.ones((3, 3)), [0.0, 500.0], "b_values"),
        (np.ones((2, 3)), [-100.0, 500.0], "b_values"),
        (np.ones((2, 3)), [0.0, np.nan], "b_values"),
        (np.ones((2, 3)), [[0.0, 500.0]], "b_values"),
    ],
)
def test_adc_rejects_bad_acquisitions(signal: Any, x: Any, what: str) -> None:
    with pytest.raises(InputError) as info:
        adc(signal, x)
    assert info.value.path == what


def test_r2star_rejects_zero_echo_time_and_unknown_method() -> None:
    with pytest.raises(InputError, match="positive"):
        r2star(np.ones((2, 3)), [0.0, 5.0])
    with pytest.raises(ConfigError, match="loglinear"):
        r2star(np.ones((2, 3)), [1.0, 5.0], "cubic")  # type: ignore[arg-type]


@settings(max_examples=50, deadline=None)
@given(
    k=st.floats(1e-4, 5e-3),
    s0=st.floats(1.0, 1e4),
    x=st.lists(st.floats(0.0, 3000.0), min_size=2, max_size=8).filter(lambda v: np.ptp(v) > 1.0),
)
def test_any_b_values_recover_a_noise_free_decay(k: float, s0: float, x: list[float]) -> None:
    b = np.asarray(x)
    fit = loglinear_decay(s0 * np.exp(-b * k)[:, None], b)
    np.testing.assert_allclose(fit.value[0], k, rtol=1e-8)
    np.testing.assert_allclose(fit.s0[0], s0, rtol=1e-8)


# -- catalog: source series in, a map series out ---------------------------------------------


def series_row(
    uid: str,
    image: np.ndarray,
    *,
    subject: str = "sub-1",
    echo_time: float | None = None,
    description: str = "DWI",
) -> dict[str, Any]:
    """Write an image straight to Zarr (no DICOM needed); its ``series`` row."""
    spacing = [2.0, 1.0, 1.0]
    rel = f"images/{uid}.zarr"
    return {
        "series_uid": uid, "study_uid": "1.2.3", "subject_id": subject, "modality": "MR",
        "series_description": description, "n_instances": image.shape[0],
        "shape": list(image.shape), "spacing": spacing, "rows": image.shape[1],
        "columns": image.shape[2], "spacing_z": 2.0, "spacing_y": 1.0, "spacing_x": 1.0,
        "origin": [0.0, 0.0, 0.0], "direction": np.eye(3).ravel().tolist(), "units": "",
        "zarr_path": rel, "content_hash": f"hash-{uid}", "manufacturer": "ACME",
        "magnetic_field_strength": 3.0, "echo_time": echo_time, "scanner_batch": "b-mr",
        "run_id": "r-test", "ingested_at": pd.Timestamp.now(tz="UTC"),
        "_image": image,
    }  # fmt: skip


def add_series(cat: Catalog, rows: list[dict[str, Any]]) -> None:
    """Write the volumes and commit the rows in one run."""
    for row in rows:
        attrs = {
            "series_uid": row["series_uid"], "spacing": row["spacing"], "origin": row["origin"],
            "direction": np.eye(3).tolist(), "modality": "MR", "units": "",
        }  # fmt: skip
        image = row["_image"].astype(np.float32)
        write_volume(cat.root, row["zarr_path"], image, name="image", attrs=attrs)
    frame = pd.DataFrame([{k: v for k, v in r.items() if k != "_image"} for r in rows])
    with cat.run("test series", {}) as run:
        run.commit("series", frame, suite="dicom")


def add_mask(cat: Catalog, mask_id: str, series_uid: str, labels: np.ndarray) -> None:
    rel = f"masks/{mask_id}.zarr"
    attrs = {"series_uid": series_uid, "spacing": [2.0, 1.0, 1.0], "origin": [0.0, 0.0, 0.0],
             "direction": np.eye(3).tolist()}  # fmt: skip
    write_volume(cat.root, rel, labels.astype(np.uint8), name="mask", attrs=attrs)
    zs, ys, xs = np.nonzero(labels)
    row = {
        "roi_id": f"{mask_id}:1", "mask_id": mask_id, "series_uid": series_uid,
        "subject_id": "sub-1", "label": 1, "name": "tumour", "n_voxels": int(labels.sum()),
        "volume_ml": float(labels.sum()) * 2e-3, "n_components": 1,
        "bbox": [int(zs.min()), int(zs.max()) + 1, int(ys.min()), int(ys.max()) + 1,
                 int(xs.min()), int(xs.max()) + 1],
        "mask_path": rel, "source_path": "/in/tumour.nii.gz", "file_sha256": "ab" * 32,
        "run_id": "r-test",
    }  # fmt: skip
    with cat.run("test mask", {"mask": mask_id}) as run:
        run.commit("rois", pd.DataFrame([row]), suite="masks")


B_UNSORTED = np.array([800.0, 0.0, 400.0])
TE_SERIES = np.array([5.0, 10.0, 20.0])


@pytest.fixture(scope="module")
def mr_catalog(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One catalog for the module: a DWI set (3 b-values, unsorted), a multi-echo set, a
    series on another grid and one of another subject; a ROI on the b = 0 series."""
    cat = Catalog.init(str(tmp_path_factory.mktemp("maps") / "cat"))
    _, d, dwi = planted(B_UNSORTED, (4, 6, 5), (0.5e-3, 2.5e-3), 20)
    dwi[:, 0, 0, 0] = 0.0  # background voxel: S = 0 at every b
    _, r, gre = planted(TE_SERIES, (2, 4, 4), (0.02, 0.06), 21)  # R2* per ms
    rows = [series_row(f"1.2.840.{i}", dwi[i]) for i in range(3)]
    rows += [
        series_row(f"1.3.{i}", gre[i], echo_time=float(t), description="ME-GRE")
        for i, t in enumerate(TE_SERIES)
    ]
    rows.append(series_row("1.2.840.9", np.ones((4, 6, 6))))  # another grid
    rows.append(series_row("1.2.840.8", np.ones((4, 6, 5)), subject="sub-2"))
    add_series(cat, rows)
    labels = np.zeros((4, 6, 5), dtype=np.uint8)
    labels[1:3, 2:5, 1:4] = 1
    add_mask(cat, "m-src", "1.2.840.1", labels)
    return {"cat": cat, "adc": d, "r2star": r, "labels": labels}


def test_write_map_series_stores_a_derived_series(mr_catalog: dict[str, Any]) -> None:
    cat, d, labels = mr_catalog["cat"], mr_catalog["adc"], mr_catalog["labels"]
    uids = ["1.2.840.0", "1.2.840.1", "1.2.840.2"]
    with cat.run("analyze maps", {}) as run:
        report = write_map_series(run, "adc", uids, list(B_UNSORTED))
    assert report.values == [0.0, 400.0, 800.0]  # ordered by b
    assert report.sources == ["1.2.840.1", "1.2.840.2", "1.2.840.0"]
    assert report.n_invalid == 1
    assert not report.unchanged
    stored = cat.image(report.series_uid)
    expected = d * 1e6
    expected[0, 0, 0] = 0.0  # not fitted: stored as 0
    np.testing.assert_allclose(stored.values, expected, rtol=2e-6)  # float32
    assert stored.attrs["derived_from"] == report.sources
    assert stored.attrs["n_invalid"] == 1
    assert stored.attrs["units"] == "um2/s"
    row = cat.sql(f"select * from series where series_uid = '{report.series_uid}'").iloc[0]
    assert row["modality"] == "MR"
    assert row["subject_id"] == "sub-1"
    assert row["series_description"].startswith("ADC map")
    assert row["scanner_batch"] == "b-mr"
    assert row["units"] == "um2/s"
    lineage = cat.sql(
        "select input_id from lineage where output_table = 'series' and input_kind = 'series'"
    )
    assert set(report.sources) <= set(lineage["input_id"])
    # the ROI follows the map: a new mask with the same voxels
    [roi] = report.rois
    rois = cat.sql(f"select * from rois where series_uid = '{report.series_uid}'")
    assert list(rois["roi_id"]) == [roi]
    np.testing.assert_array_equal(
        read_region(cat.root, rois["mask_path"].iloc[0], name="mask"), labels
    )
    # a rerun finds it: no new series or rois version, same UID
    before = {t: tables.table_version(cat.root, t) for t in ("series", "rois")}
    with cat.run("analyze maps", {}) as run:
        again = write_map_series(run, "adc", uids, list(B_UNSORTED))
    assert again.unchanged
    assert again.series_uid == report.series_uid
    assert again.n_invalid == 1
    assert again.rois == report.rois
    assert {t: tables.table_version(cat.root, t) for t in before} == before


def test_r2star_series_takes_echo_times_from_the_series(mr_catalog: dict[str, Any]) -> None:
    cat, r = mr_catalog["cat"], mr_catalog["r2star"]
    with cat.run("analyze maps", {}) as run:
        report = write_map_series(run, "r2star", ["1.3.2", "1.3.0", "1.3.1"], method="nonlinear")
    assert report.values == [5.0, 10.0, 20.0]
    assert report.units == "1/s"
    assert report.rois == []
    stored = open_volume(cat.root, f"images/{report.series_uid}.zarr", name="image")
    np.testing.assert_allclose(stored.values, r * 1e3, rtol=1e-5)  # 1/ms -> 1/s
    row = cat.sql(f"select * from series where series_uid = '{report.series_uid}'").iloc[0]
    assert row["series_description"].startswith("R2* map")
    assert pd.isna(row["echo_time"])


def test_map_series_errors_are_one_clear_reason(mr_catalog: dict[str, Any]) -> None:
    cat = mr_catalog["cat"]
    before = tables.table_version(cat.root, "series")
    with cat.run("analyze maps", {}) as run:
        with pytest.raises(ConfigError, match="one value per series"):
            write_map_series(run, "adc", ["1.2.840.0", "1.2.840.1"], [0.0, 400.0, 800.0])
        with pytest.raises(ConfigError, match="required"):
            write_map_series(run, "adc", ["1.2.840.0", "1.2.840.1"])
        with pytest.raises(ConfigError, match="no echo time"):
            write_map_series(run, "r2star", ["1.2.840.0", "1.2.840.1"])
        with pytest.raises(InputError, match="shape"):
            write_map_series(run, "adc", ["1.2.840.0", "1.2.840.9"], [0.0, 800.0])
        with pytest.raises(InputError, match="another subject"):
            write_map_series(run, "adc", ["1.2.840.0", "1.2.840.8"], [0.0, 800.0])
        with pytest.raises(NotFoundError):
            write_map_series(run, "adc", ["1.2.840.0", "9.9.9"], [0.0, 800.0])
        with pytest.raises(InputError, match="twice"):
            write_map_series(run, "adc", ["1.2.840.0", "1.2.840.0"], [0.0, 800.0])
        with pytest.raises(ConfigError, match="kind"):
            write_map_series(run, "t1", ["1.2.840.0", "1.2.840.1"], [0.0, 800.0])
        with pytest.raises(ConfigError, match="at least two"):
            write_map_series(run, "adc", ["1.2.840.0"], [0.0])
        with pytest.raises(InputError, match="distinct"):
            write_map_series(run, "adc", ["1.2.840.0", "1.2.840.1"], [400.0, 400.0])
    assert tables.table_version(cat.root, "series") == before
