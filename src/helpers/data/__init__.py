"""Stage 1, data: named datasets as tensors (:mod:`.datasets`) and where data, caches and kits live
(:mod:`.settings`)."""
from . import settings
from .datasets import DATASETS, Dataset, Split, examples_per_class, load_dataset, subsample

__all__ = ["settings", "DATASETS", "Dataset", "Split", "examples_per_class", "load_dataset", "subsample"]
