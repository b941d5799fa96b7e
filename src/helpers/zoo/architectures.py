"""Model registry: small CNNs for MNIST on a CPU, CIFAR-style VGG19 / ResNet18 / ResNet101 and a fast CIFAR net.

Every model is written for attribution libraries: no ``nn.Flatten`` module (``torch.flatten`` in ``forward``), and a
separate ``nn.ReLU`` module for every use, because captum's DeepLift, GuidedBackprop and LRP hook modules and a
shared ReLU breaks them. Each model names its last convolutional block in ``gradcam_layer`` (for GradCAM).
The CIFAR networks follow He et al. 2016 and Simonyan & Zisserman 2015 with a 3×3 stem and no stem max-pool.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable
import torch
from torch import nn



class LeNet(nn.Module):
    """LeNet-5 style CNN (LeCun et al. 1998): conv 5×5 → pool → conv 5×5 → pool → 3 linear layers.

    ``width`` scales the number of channels and hidden units, ``depth`` adds 3×3 conv layers after the second conv
    (an "architectural parameter" to study SNR against).
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: float = 1.0, depth: int = 0,
                 image_size: int = 28) -> None:
        super().__init__()
        c1, c2 = max(1, round(6 * width)), max(1, round(16 * width))
        h1, h2 = max(1, round(120 * width)), max(1, round(84 * width))
        self.conv1 = nn.Conv2d(in_channels, c1, 5, padding=2)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(c1, c2, 5)
        self.relu2 = nn.ReLU()
        extra: list[nn.Module] = []
        for _ in range(depth):
            extra += [nn.Conv2d(c2, c2, 3, padding=1), nn.ReLU()]
        self.extra = nn.Sequential(*extra) if depth else None  # no empty module: captum LRP needs a rule for each
        self.pool2 = nn.MaxPool2d(2)
        side = ((image_size // 2) - 4) // 2
        self.fc1 = nn.Linear(c2 * side * side, h1)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(h1, h2)
        self.relu4 = nn.ReLU()
        self.fc3 = nn.Linear(h2, num_classes)

    @property
    def gradcam_layer(self) -> nn.Module:
        return self.extra if self.extra is not None else self.relu2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.relu2(self.conv2(x))
        if self.extra is not None:
            x = self.extra(x)
        x = self.pool2(x)
        x = torch.flatten(x, 1)
        return self.fc3(self.relu4(self.fc2(self.relu3(self.fc1(x)))))


class ConvNet(nn.Module):
    """A wider and deeper MNIST CNN: two blocks of two 3×3 convs (32, 64 channels) with BatchNorm, then GAP + linear."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: float = 1.0) -> None:
        super().__init__()
        c1, c2 = round(32 * width), round(64 * width)
        layers: list[nn.Module] = []
        for cin, cout, pool in ((in_channels, c1, False), (c1, c1, True), (c1, c2, False), (c2, c2, True)):
            layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
            if pool:
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c2, num_classes)

    @property
    def gradcam_layer(self) -> nn.Module:
        return self.features[-2]  # the last ReLU before the final pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


VGG19_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")


class VGG(nn.Module):
    """VGG (Simonyan & Zisserman 2015) for 32×32 inputs: conv3×3-BN-ReLU stacks, one linear classifier."""

    def __init__(self, cfg: tuple = VGG19_CFG, in_channels: int = 3, num_classes: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        pools = 0
        self._cam_index = -2
        for v in cfg:
            if v == "M":
                pools += 1
                if pools == 4:  # GradCAM on the last ReLU of block 4 (4×4 on CIFAR; the last block is 1×1)
                    self._cam_index = len(layers) - 1
                layers.append(nn.MaxPool2d(2, ceil_mode=True))  # ceil: 28×28 inputs also reach 1×1
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1, bias=False), nn.BatchNorm2d(v), nn.ReLU()]
                c = v
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    @property
    def gradcam_layer(self) -> nn.Module:
        return self.features[self._cam_index]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _shortcut(cin, planes, stride)
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu2(out + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        cout = planes * self.expansion
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = nn.ReLU()
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.shortcut = _shortcut(cin, cout, stride)
        self.relu3 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu2(self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x))))))
        return self.relu3(self.bn3(self.conv3(out)) + self.shortcut(x))


def _shortcut(cin: int, cout: int, stride: int) -> nn.Module:
    if stride == 1 and cin == cout:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


class ResNet(nn.Module):
    """ResNet (He et al. 2016), CIFAR variant: 3×3 stem with stride 1, no max-pool, four stages, GAP, linear."""

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], layers: tuple[int, int, int, int],
                 in_channels: int = 3, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        cin = 64
        stages = []
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), layers)):
            blocks = []
            for j in range(n):
                blocks.append(block(cin, planes, stride=2 if (i > 0 and j == 0) else 1))
                cin = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(cin, num_classes)

    @property
    def gradcam_layer(self) -> nn.Module:
        """An intermediate layer, as in Woerl et al.'s GradCAM: layer3 (8×8 on 32×32 inputs; layer4 is 4×4)."""
        return self.layer3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.linear(torch.flatten(self.pool(x), 1))


class FastBlock(nn.Module):
    """conv 3×3 → max-pool 2 → BN → ReLU → conv 3×3 → BN → ReLU: one stage of the CIFAR-10 speed-run network."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.bn1(self.pool(self.conv1(x))))
        return self.relu2(self.bn2(self.conv2(x)))


class CifarFast(nn.Module):
    """A small, fast CIFAR-10 network after the speed-run networks (Page 2018, "How to train your ResNet";
    Jordan 2024, airbench94: stem, three conv-pool-BN stages of widths 64/256/256, global max-pool, linear): about
    2 M weights, 94 % on CIFAR-10 in ~10 epochs with the one-cycle recipe. ReLU instead of GELU and a 3×3 stem
    instead of the data-whitening patch layer, so every attribution method applies; ``width`` scales the channels."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10, image_size: int = 32, width: float = 1.0) -> None:
        super().__init__()
        c0, c1, c2, c3 = (max(1, round(c * width)) for c in (32, 64, 256, 256))
        self.stem = nn.Conv2d(in_channels, c0, 3, padding=1, bias=False)
        self.bn0 = nn.BatchNorm2d(c0)
        self.relu0 = nn.ReLU()
        self.block1, self.block2, self.block3 = FastBlock(c0, c1), FastBlock(c1, c2), FastBlock(c2, c3)
        self.pool = nn.MaxPool2d(max(1, image_size // 8))  # 4×4 → 1×1 on 32×32 inputs (3×3 on 28×28)
        self.linear = nn.Linear(c3, num_classes, bias=False)

    @property
    def gradcam_layer(self) -> nn.Module:
        """The output of the second stage (8×8 on 32×32 inputs), as ResNet's layer3."""
        return self.block2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block3(self.block2(self.block1(self.relu0(self.bn0(self.stem(x))))))
        return self.linear(torch.flatten(self.pool(x), 1))


class ImageNetResNet18(ResNet):
    """ResNet18 with the ImageNet stem (7×7 conv, stride 2, max-pool), weights optionally taken from torchvision's
    ImageNet checkpoint (He et al. 2016) and a new, seeded classification head: a "pretrained backbone fine-tuned per
    seed", the setting of CLEAR's Stanford Dogs experiments (Kumar et al., CVPRW 2017). Every ReLU is its own module,
    unlike torchvision's, so captum's hook-based methods work."""

    def __init__(self, in_channels: int = 3, num_classes: int = 1000, pretrained: bool = True) -> None:
        super().__init__(BasicBlock, (2, 2, 2, 2), in_channels, num_classes)
        self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        if pretrained:
            if in_channels != 3:
                raise ValueError("pretrained resnet18-imagenet needs 3 input channels: use an RGB dataset")
            state = imagenet_resnet18_state()
            self.load_state_dict({k: v for k, v in state.items() if not k.startswith("linear.")}, strict=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.linear(torch.flatten(self.pool(x), 1))


def from_torchvision_resnet(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvision ResNet parameter names -> ours (``downsample`` -> ``shortcut``, ``fc`` -> ``linear``)."""
    out = {}
    for k, v in state.items():
        k = k.replace(".downsample.", ".shortcut.")
        out["linear." + k[3:] if k.startswith("fc.") else k] = v
    return out


def imagenet_resnet18_state() -> dict[str, torch.Tensor]:
    """torchvision's ImageNet ResNet18 weights in our naming; downloaded (to torch's hub folder) only if allowed."""
    from torchvision.models import ResNet18_Weights

    from ..data import settings

    weights = ResNet18_Weights.IMAGENET1K_V1
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    if not cached.is_file() and not settings.allow_download():
        raise RuntimeError(f"ImageNet weights for resnet18-imagenet are not in {cached.parent}: set "
                           f"HELPERS_ALLOW_DOWNLOAD=1 to download them (46 MB), or pass pretrained=False")
    if cached.is_file():
        _check_hub_file(cached)
    # torchvision's get_state_dict unpickles with weights_only=False and checks no hash: load it ourselves
    state = torch.hub.load_state_dict_from_url(weights.url, progress=False, check_hash=True, weights_only=True)
    return from_torchvision_resnet(state)


def _check_hub_file(path: Path) -> None:
    """torch.hub checks a file's hash only while downloading it; check the cached file's sha256 against the prefix
    in its name (``resnet18-f37072fd.pth``) before anything reads it."""
    from ..data.files import sha256_file

    prefix = path.stem.rsplit("-", 1)[-1]
    digest = sha256_file(path)
    if not digest.startswith(prefix):
        raise RuntimeError(f"{path} does not match its checksum (sha256 {digest[:8]}…, expected {prefix}…): delete "
                           f"it and set HELPERS_ALLOW_DOWNLOAD=1 to download it again")


MODELS: dict[str, Callable[..., nn.Module]] = {
    "lenet": lambda in_channels, num_classes, image_size=28, **kw: LeNet(in_channels, num_classes,
                                                                          image_size=image_size, **kw),
    "lenet-wide": lambda in_channels, num_classes, image_size=28, **kw: LeNet(in_channels, num_classes, width=2.0,
                                                                               image_size=image_size, **kw),
    "lenet-deep": lambda in_channels, num_classes, image_size=28, **kw: LeNet(in_channels, num_classes, depth=2,
                                                                               image_size=image_size, **kw),
    "convnet": lambda in_channels, num_classes, image_size=28, **kw: ConvNet(in_channels, num_classes, **kw),
    "vgg19": lambda in_channels, num_classes, image_size=32, **kw: VGG(VGG19_CFG, in_channels, num_classes, **kw),
    "resnet18": lambda in_channels, num_classes, image_size=32, **kw: ResNet(BasicBlock, (2, 2, 2, 2), in_channels,
                                                                              num_classes, **kw),
    "resnet101": lambda in_channels, num_classes, image_size=32, **kw: ResNet(Bottleneck, (3, 4, 23, 3),
                                                                               in_channels, num_classes, **kw),
    "resnet18-imagenet": lambda in_channels, num_classes, image_size=224, **kw: ImageNetResNet18(
        in_channels, num_classes, **kw),
    "cifar-fast": lambda in_channels, num_classes, image_size=32, **kw: CifarFast(in_channels, num_classes,
                                                                               image_size=image_size, **kw),
}


PRETRAINED = {"resnet18-imagenet"}  # architectures that start from downloaded weights (``pretrained=`` argument)


@dataclass(frozen=True)
class InputSpec:
    """What a built model takes: its architecture, channels, image size (None: any) and number of classes."""

    arch: str
    channels: int
    size: int | None
    classes: int


def build_model(name: str, in_channels: int, num_classes: int, image_size: int = 28, **kwargs) -> nn.Module:
    """Build a registered architecture; keyword arguments (e.g. ``width``) go to its constructor."""
    if name not in MODELS:
        raise ValueError(f"unknown architecture {name!r}: choose one of {', '.join(MODELS)}")
    model = MODELS[name](in_channels, num_classes, image_size=image_size, **kwargs)
    # what the model takes, for one-line errors on bad inputs (helpers.attribution.registry.check_inputs): the
    # LeNets' first linear layer fixes the image size; the other networks pool adaptively and take any size
    fixed = image_size if isinstance(model, LeNet) else None
    model.input_spec = InputSpec(name, in_channels, fixed, num_classes)
    return model
