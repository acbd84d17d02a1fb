"""`FeatureVisualizer` is not part of ndt: attribution methods belong to Captum."""

from __future__ import annotations

_MESSAGE = (
    "FeatureVisualizer (Grad-CAM, saliency, integrated gradients, layer conductance) is "
    "outside ndt's scope; use Captum (pip install captum): captum.attr.LayerGradCam, "
    "Saliency, IntegratedGradients, LayerConductance"
)


class FeatureVisualizer:
    """Placeholder of the reference API's attribution class: constructing it raises
    ImportError pointing to Captum, which implements those methods."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise ImportError(_MESSAGE)
