"""Radiogenomic analysis over catalog tables: NumPy/pandas in, plain results out.

- :mod:`~radgen.analysis.association`: feature vs genotype tests with FDR.
- :mod:`~radgen.analysis.cca`, :mod:`~radgen.analysis.pls`, :mod:`~radgen.analysis.factors`:
  multi-block association models with cross-validated correlations and permutation p-values
  (:mod:`~radgen.analysis.crossval`); :mod:`~radgen.analysis.associate_report` writes them
  as a report.
- :mod:`~radgen.analysis.bayes`: Bayes-optimal voxel threshold, two-class EM, posteriors.
- :mod:`~radgen.analysis.purity`: cancer cell fraction from VAF, purity and copy number.
- :mod:`~radgen.analysis.entropy`: discrete vs differential entropy and bin-width calibration.
- :mod:`~radgen.analysis.biopsy`: detection probability of biopsy strategies and site planning.
"""

from __future__ import annotations

from radgen.analysis.association import benjamini_hochberg, mutation_feature_association
from radgen.analysis.bayes import (
    TwoClassFit,
    fit_two_class,
    optimal_threshold,
    posterior,
    posterior_from_model,
    segment,
)
from radgen.analysis.biopsy import (
    BiopsyPlan,
    SimulationResult,
    best_split,
    detection_probability,
    hit_probability,
    p_enriched_given_negative,
    p_enriched_given_positive,
    plan,
    simulate,
)
from radgen.analysis.cca import RegularizedCCA, cca_from_covariances
from radgen.analysis.crossval import (
    HeldOut,
    PermutationTest,
    heldout_correlations,
    kfold_indices,
    permutation_pvalues,
)
from radgen.analysis.entropy import (
    bin_width_for_entropy,
    differential_entropy,
    discrete_entropy,
    vasicek_window,
)
from radgen.analysis.factors import FactorModel
from radgen.analysis.pls import PLSSVD, PLSRegression
from radgen.analysis.purity import (
    OverOneTest,
    ccf,
    ccf_over_one,
    expected_vaf,
    invalid_reason,
)

__all__ = [
    "PLSSVD",
    "BiopsyPlan",
    "FactorModel",
    "HeldOut",
    "OverOneTest",
    "PLSRegression",
    "PermutationTest",
    "RegularizedCCA",
    "SimulationResult",
    "TwoClassFit",
    "benjamini_hochberg",
    "best_split",
    "bin_width_for_entropy",
    "cca_from_covariances",
    "ccf",
    "ccf_over_one",
    "detection_probability",
    "differential_entropy",
    "discrete_entropy",
    "expected_vaf",
    "fit_two_class",
    "heldout_correlations",
    "hit_probability",
    "invalid_reason",
    "kfold_indices",
    "mutation_feature_association",
    "optimal_threshold",
    "p_enriched_given_negative",
    "p_enriched_given_positive",
    "permutation_pvalues",
    "plan",
    "posterior",
    "posterior_from_model",
    "segment",
    "simulate",
    "vasicek_window",
]
