"""`ActivationAnalyzer`: the reference API's analyses of one activation matrix, returned as
dicts with ndtracker's keys, computed with scikit-learn and ndt's estimators.

PCA, k-means / DBSCAN and t-SNE are scikit-learn's; UMAP is used only when ``umap-learn``
is installed. The singular-value summary uses ndt's estimators with
``definitions="ndtracker"`` (uncentred, sigma-based participation ratio), as ndtracker did.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import torch
from numpy.typing import NDArray

from ndt.core import estimators
from ndt.errors import NdtError

HAS_UMAP = importlib.util.find_spec("umap") is not None
_COMPARE_MAX_DIM = 10


def _matrix(activations: torch.Tensor | np.ndarray) -> NDArray[np.float64]:
    if isinstance(activations, torch.Tensor):
        activations = activations.detach().cpu().numpy()
    array = np.asarray(activations, dtype=np.float64)
    return array.reshape(array.shape[0], -1)


def _count_to(cumulative: NDArray[np.float64], share: float) -> int:
    """Smallest k whose cumulative share reaches `share` (all of them if none does)."""
    return int(min(np.searchsorted(cumulative, share - 1e-12) + 1, cumulative.size))


class ActivationAnalyzer:
    """PCA, clustering, embeddings, spectra and neuron scores of activation matrices.

    Every method takes a matrix (n_samples, n_features) as a numpy array or torch tensor
    (higher-rank inputs are flattened per sample) and returns a dict.

    Attributes:
        results: Free storage for the caller's results (empty at first).
    """

    def __init__(self) -> None:
        self.results: dict[str, object] = {}

    def flatten_activation(self, activation: torch.Tensor | np.ndarray) -> NDArray[np.float64]:
        """(n_samples, ...) -> (n_samples, n_features) numpy array."""
        if isinstance(activation, torch.Tensor):
            activation = activation.detach().cpu().numpy()
        activation = np.asarray(activation)
        return activation.reshape(activation.shape[0], -1)

    def pca_analysis(
        self, activations: torch.Tensor | np.ndarray, n_components: int | None = None,
        return_transformed: bool = True,
    ) -> dict[str, object]:  # fmt: skip
        """Principal components (scikit-learn's PCA, centred).

        Returns:
            components (k, n_features), explained_variance_ratio (k,), cumulative_variance
            (k,), n_components_90 / n_components_95 (components reaching 90 / 95 % of the
            variance), mean (n_features,), and transformed (n_samples, k) if asked.
        """
        from sklearn.decomposition import PCA

        data = _matrix(activations)
        pca = PCA(n_components=n_components).fit(data)
        cumulative = np.cumsum(pca.explained_variance_ratio_)
        result: dict[str, object] = {
            "components": pca.components_,
            "explained_variance_ratio": pca.explained_variance_ratio_,
            "cumulative_variance": cumulative,
            "n_components_90": _count_to(cumulative, 0.90),
            "n_components_95": _count_to(cumulative, 0.95),
            "mean": pca.mean_,
        }
        if return_transformed:
            result["transformed"] = pca.transform(data)
        return result

    def cluster_analysis(
        self, activations: torch.Tensor | np.ndarray, method: str = "kmeans",
        n_clusters: int = 5, **kwargs: object,
    ) -> dict[str, object]:  # fmt: skip
        """k-means (`n_clusters`, keyword arguments to scikit-learn's KMeans) or DBSCAN
        (keyword arguments such as ``eps``, ``min_samples``).

        Returns:
            labels, n_clusters and, with two clusters or more, silhouette_score (on the
            points not labelled noise); k-means adds cluster_centers and inertia, DBSCAN
            n_noise.

        Raises:
            NdtError (a ValueError): "Unknown clustering method" for any other method.
        """
        from sklearn.cluster import DBSCAN, KMeans
        from sklearn.metrics import silhouette_score

        data = _matrix(activations)
        if method == "kmeans":
            model = KMeans(n_clusters=n_clusters, random_state=0, **kwargs).fit(data)
            labels = model.labels_
            result = {
                "labels": labels,
                "n_clusters": n_clusters,
                "cluster_centers": model.cluster_centers_,
                "inertia": float(model.inertia_),
            }
        elif method == "dbscan":
            labels = DBSCAN(**kwargs).fit(data).labels_
            result = {"labels": labels, "n_clusters": len(set(labels) - {-1}),
                      "n_noise": int((labels == -1).sum())}  # fmt: skip
        else:
            raise NdtError(f"Unknown clustering method '{method}'; choose kmeans or dbscan")
        kept = labels != -1
        if len(set(labels[kept])) >= 2:
            result["silhouette_score"] = float(silhouette_score(data[kept], labels[kept]))
        return result

    def manifold_embedding(
        self, activations: torch.Tensor | np.ndarray, method: str = "tsne",
        n_components: int = 2, **kwargs: object,
    ) -> dict[str, object]:  # fmt: skip
        """A low-dimensional embedding: t-SNE (scikit-learn; ``perplexity`` defaults to
        min(30, n_samples - 1)) or UMAP (``n_neighbors`` defaults to 15; needs umap-learn).

        Returns:
            embedding (n_samples, n_components), method, params (the perplexity or
            n_neighbors used, and n_components).

        Raises:
            ImportError: for UMAP without umap-learn.
            NdtError (a ValueError): "Unknown embedding method" for any other method.
        """
        data = _matrix(activations)
        if method == "tsne":
            from sklearn.manifold import TSNE

            perplexity = kwargs.pop("perplexity", min(30, data.shape[0] - 1))
            params = {"perplexity": perplexity, "n_components": n_components}
            model = TSNE(n_components=n_components, perplexity=perplexity, random_state=0,
                         init="pca", **kwargs)  # fmt: skip
        elif method == "umap":
            if not HAS_UMAP:
                raise ImportError("UMAP not installed; pip install umap-learn")
            import umap

            n_neighbors = kwargs.pop("n_neighbors", 15)
            params = {"n_neighbors": n_neighbors, "n_components": n_components}
            model = umap.UMAP(n_neighbors=n_neighbors, n_components=n_components,
                              random_state=0, **kwargs)  # fmt: skip
        else:
            raise NdtError(f"Unknown embedding method '{method}'; choose tsne or umap")
        return {"embedding": model.fit_transform(data), "method": method, "params": params}

    def singular_value_analysis(self, activations: torch.Tensor | np.ndarray) -> dict[str, object]:
        """The uncentred singular values and ndtracker's summaries of them.

        Returns:
            singular_values (descending), normalized_sv (s / sum s), stable_rank,
            participation_ratio ((sum s)^2 / sum s^2), spectral_entropy (of normalized_sv,
            natural log), condition_number (s_max / s_min; inf when s_min is 0).
        """
        data = _matrix(activations)
        spectrum = estimators.as_spectrum(data, definitions="ndtracker")
        sigma = np.sqrt(spectrum.eigenvalues)
        share = sigma / sigma.sum()
        positive = share[share > 0]
        return {
            "singular_values": sigma,
            "normalized_sv": share,
            "stable_rank": estimators.stable_rank(spectrum),
            "participation_ratio": estimators.participation_ratio(
                spectrum, definitions="ndtracker"
            ),
            "spectral_entropy": float(-(positive * np.log(positive)).sum()),
            "condition_number": float(sigma[0] / sigma[-1]) if sigma[-1] > 0 else float("inf"),
        }

    def compare_activations(
        self, before: torch.Tensor | np.ndarray, after: torch.Tensor | np.ndarray
    ) -> dict[str, object]:
        """How the geometry changed from `before` to `after` (same features).

        The principal subspaces compared are the top k directions of each, k the larger
        n_components_90 of the two (at most 10).

        Returns:
            principal_angles (radians, ascending), subspace_overlap (mean squared cosine,
            1 for the same subspace), dim_change (after minus before: stable_rank,
            participation_ratio, n_components_90).
        """
        from scipy.linalg import subspace_angles

        first, second = _matrix(before), _matrix(after)
        pca = [self.pca_analysis(m, return_transformed=False) for m in (first, second)]
        k = min(max(p["n_components_90"] for p in pca), _COMPARE_MAX_DIM,
                *(p["components"].shape[0] for p in pca))  # fmt: skip
        angles = np.sort(subspace_angles(pca[0]["components"][:k].T, pca[1]["components"][:k].T))
        spectra = [self.singular_value_analysis(m) for m in (first, second)]
        return {
            "principal_angles": angles,
            "subspace_overlap": float(np.mean(np.cos(angles) ** 2)),
            "dim_change": {
                "stable_rank": spectra[1]["stable_rank"] - spectra[0]["stable_rank"],
                "participation_ratio": spectra[1]["participation_ratio"]
                - spectra[0]["participation_ratio"],
                "n_components_90": int(pca[1]["n_components_90"] - pca[0]["n_components_90"]),
            },
        }

    def neuron_importance(
        self, activations: torch.Tensor | np.ndarray, method: str = "variance"
    ) -> dict[str, object]:
        """Score each unit: "variance", "mean_abs" (mean |a|) or "sparsity" (share of
        samples where it is non-zero).

        Returns:
            scores (n_features,), ranking (indices by descending score), top_10_indices,
            dead_neurons (units that are 0 on every sample), n_dead, method.

        Raises:
            NdtError (a ValueError): "Unknown importance method" for any other method.
        """
        data = _matrix(activations)
        if method == "variance":
            scores = data.var(axis=0)
        elif method == "mean_abs":
            scores = np.abs(data).mean(axis=0)
        elif method == "sparsity":
            scores = (data != 0).mean(axis=0)
        else:
            raise NdtError(f"Unknown importance method '{method}'; choose variance, mean_abs "
                           "or sparsity")  # fmt: skip
        ranking = np.argsort(-scores, kind="stable")
        dead = np.flatnonzero((data == 0).all(axis=0))
        return {"scores": scores, "ranking": ranking, "top_10_indices": ranking[:10],
                "dead_neurons": dead, "n_dead": int(dead.size), "method": method}  # fmt: skip

    def activation_statistics(self, activations: torch.Tensor | np.ndarray) -> dict[str, object]:
        """Mean, std, min, max, share of exact zeros (sparsity) and the matrix shape."""
        data = _matrix(activations)
        return {
            "mean": float(data.mean()), "std": float(data.std()), "min": float(data.min()),
            "max": float(data.max()), "sparsity": float((data == 0).mean()),
            "n_samples": int(data.shape[0]), "n_features": int(data.shape[1]),
        }  # fmt: skip
