"""Before/after analyses of a layer's activations for `ndt compare`: neuron statistics, PCA,
clusters, linear separability and CKA; each accepts numpy arrays or torch tensors of shape
(B, D), (B, T, D) or (B, C, H, W) (reshaped by `ndt.core.spectrum.as_matrix`).

The names below are imported on first use, so that `ndt.analysis.compare_settings` (the
analyses' defaults, for `ndt compare --help`) loads without numpy, torch or scikit-learn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ndt.lazy import lazy_names

_EXPORTS = {
    "ActivationAnalyzer": "ndt.analysis.activation_analysis",
    "LayerDimensionality": "ndt.analysis.analyzer",
    "Phase2AnalyzerBase": "ndt.analysis.analyzer",
    "OCCUPANCY_MIN_SHARE": "ndt.analysis.clusters",
    "ClusterComparison": "ndt.analysis.clusters",
    "PhaseClusters": "ndt.analysis.clusters",
    "StepClusters": "ndt.analysis.clusters",
    "cluster_activations_by_phase": "ndt.analysis.clusters",
    "cluster_purity": "ndt.analysis.clusters",
    "compare_clusters": "ndt.analysis.clusters",
    "phase_occupancy": "ndt.analysis.clusters",
    "CompareRecord": "ndt.analysis.compare_record",
    "LayerRecord": "ndt.analysis.compare_record",
    "layer_record": "ndt.analysis.compare_record",
    "record_to_dict": "ndt.analysis.compare_record",
    "FeatureVisualizer": "ndt.analysis.feature_visualization",
    "CHANGE_SCORE": "ndt.analysis.layer_comparison",
    "CompareSettings": "ndt.analysis.compare_settings",
    "LayerComparison": "ndt.analysis.layer_comparison",
    "compare_activations": "ndt.analysis.layer_comparison",
    "compare_layer": "ndt.analysis.layer_comparison",
    "rank_layers": "ndt.analysis.layer_comparison",
    "Subsample": "ndt.analysis.matrices",
    "repeat_labels": "ndt.analysis.matrices",
    "subsample_rows": "ndt.analysis.matrices",
    "to_matrix": "ndt.analysis.matrices",
    "NeuronStatistics": "ndt.analysis.neurons",
    "compute_neuron_statistics": "ndt.analysis.neurons",
    "neuron_statistics": "ndt.analysis.neurons",
    "PCAComparison": "ndt.analysis.pca",
    "PhasePCA": "ndt.analysis.pca",
    "PrincipalComponents": "ndt.analysis.pca",
    "analyze_activation_phases": "ndt.analysis.pca",
    "compare_pca": "ndt.analysis.pca",
    "fit_pca": "ndt.analysis.pca",
    "principal_angles": "ndt.analysis.pca",
    "ProbeAccuracy": "ndt.analysis.separability",
    "probe_accuracy": "ndt.analysis.separability",
    "linear_cka": "ndt.analysis.similarity",
}

__all__ = [
    "ActivationAnalyzer",
    "CHANGE_SCORE",
    "ClusterComparison",
    "CompareRecord",
    "CompareSettings",
    "FeatureVisualizer",
    "LayerComparison",
    "LayerDimensionality",
    "LayerRecord",
    "NeuronStatistics",
    "OCCUPANCY_MIN_SHARE",
    "PCAComparison",
    "Phase2AnalyzerBase",
    "PhaseClusters",
    "PhasePCA",
    "PrincipalComponents",
    "ProbeAccuracy",
    "StepClusters",
    "Subsample",
    "analyze_activation_phases",
    "cluster_activations_by_phase",
    "cluster_purity",
    "compare_activations",
    "compare_clusters",
    "compare_layer",
    "compare_pca",
    "compute_neuron_statistics",
    "fit_pca",
    "layer_record",
    "linear_cka",
    "neuron_statistics",
    "phase_occupancy",
    "principal_angles",
    "probe_accuracy",
    "rank_layers",
    "record_to_dict",
    "repeat_labels",
    "subsample_rows",
    "to_matrix",
]

if TYPE_CHECKING:  # pragma: no cover
    from ndt.analysis.activation_analysis import ActivationAnalyzer
    from ndt.analysis.analyzer import LayerDimensionality, Phase2AnalyzerBase
    from ndt.analysis.clusters import (
        OCCUPANCY_MIN_SHARE,
        ClusterComparison,
        PhaseClusters,
        StepClusters,
        cluster_activations_by_phase,
        cluster_purity,
        compare_clusters,
        phase_occupancy,
    )
    from ndt.analysis.compare_record import (
        CompareRecord,
        LayerRecord,
        layer_record,
        record_to_dict,
    )
    from ndt.analysis.feature_visualization import FeatureVisualizer
    from ndt.analysis.layer_comparison import (
        CHANGE_SCORE,
        CompareSettings,
        LayerComparison,
        compare_activations,
        compare_layer,
        rank_layers,
    )
    from ndt.analysis.matrices import Subsample, repeat_labels, subsample_rows, to_matrix
    from ndt.analysis.neurons import NeuronStatistics, compute_neuron_statistics, neuron_statistics
    from ndt.analysis.pca import (
        PCAComparison,
        PhasePCA,
        PrincipalComponents,
        analyze_activation_phases,
        compare_pca,
        fit_pca,
        principal_angles,
    )
    from ndt.analysis.separability import ProbeAccuracy, probe_accuracy
    from ndt.analysis.similarity import linear_cka


__getattr__ = lazy_names(__name__, _EXPORTS)
