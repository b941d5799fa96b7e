"""Stage 2, models and zoos (Woerl et al., CVPR 2023): architectures (:mod:`.architectures`), what defines a model
(:mod:`.spec`), training one model (:mod:`.training`), many LeNets at once on the CPU (:mod:`.cpu`) or stacked on a
GPU (:mod:`.gpu`), the cache of trained zoos (:mod:`.store`), and what the models output (:mod:`.outputs`)."""
from .outputs import MeanLogit, accuracy, logits, ranked_classes, zoo_logits
from .spec import Recipe, ZooSpec, model_name, seed_lists
from .store import LoadedZoo, ensure_zoo, ensure_zoos, load_zoo, read_manifest, train_zoo, train_zoos

__all__ = ["MeanLogit", "accuracy", "logits", "ranked_classes", "zoo_logits", "Recipe", "ZooSpec", "model_name",
           "seed_lists", "LoadedZoo", "ensure_zoo", "ensure_zoos", "load_zoo", "read_manifest", "train_zoo",
           "train_zoos"]
