"""Before/after analyses of a layer's activations for `ndt compare`: neuron statistics, PCA,
clusters, linear separability and CKA; each accepts numpy arrays or torch tensors of shape
(B, D), (B, T, D) or (B, C, H, W) (reshaped by `ndt.core.spectrum.as_matrix`)."""

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
from ndt.analysis.feature_visualization import FeatureVisualizer
from ndt.analysis.layer_comparison import (
    CHANGE_SCORE,
    CompareSettings,
    LayerComparison,
    compare_activations,
    compare_layer,
    layer_to_dict,
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

__all__ = [
    "ActivationAnalyzer",
    "FeatureVisualizer",
    "CHANGE_SCORE",
    "OCCUPANCY_MIN_SHARE",
    "ClusterComparison",
    "CompareSettings",
    "LayerComparison",
    "LayerDimensionality",
    "NeuronStatistics",
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
    "layer_to_dict",
    "linear_cka",
    "neuron_statistics",
    "phase_occupancy",
    "principal_angles",
    "probe_accuracy",
    "rank_layers",
    "repeat_labels",
    "subsample_rows",
    "to_matrix",
]
