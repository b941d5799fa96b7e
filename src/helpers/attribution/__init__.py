"""Stage 3, attribution: the method registry (:mod:`.registry`) and one module per family of methods, plug-ins that
register themselves when imported here: gradients, captum-backed methods, chapter 7's positive and signed variants,
surrogates (LIME, KernelSHAP), perturbation methods (occlusion, RISE). Above them: maps marginalized over a zoo's
seeds (:mod:`.marginal`, Woerl et al., CVPR 2023), the map cache, CLEAR (:mod:`.clear`, Kumar et al. 2017) and deep
dream (:mod:`.dream`)."""
# The plug-ins register their methods on import, in this order (the order of METHODS, of the chapters' tables and of
# every "choose one of" message): keep it.
from . import gradients  # noqa: F401,I001
from . import captum_methods  # noqa: F401
from . import surrogate  # noqa: F401
from . import perturbation  # noqa: F401
from . import positive  # noqa: F401
from . import noise  # noqa: F401
from .marginal import MarginalMaps, Marginalized
from .registry import CORE_METHODS, METHODS, attribute, get_method, method_kwargs

__all__ = ["MarginalMaps", "Marginalized", "CORE_METHODS", "METHODS", "attribute", "get_method", "method_kwargs"]
