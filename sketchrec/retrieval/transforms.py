"""Image transforms for training retrieval models on small image sets (benchmarks/centroid_retrieval.py):
grey images to a standardised tensor, and a random shift-and-flip augmentation for `RetrievalTrainer`.
"""

from __future__ import annotations

import numpy as np
import torch


def image_tensor(images: np.ndarray) -> np.ndarray:
    """(n, h, w) uint8 -> (n, 1, h', w') float32, standardised; ORL's 112 x 92 halved."""
    x = images.astype(np.float32) / 255.0
    if x.shape[1] > 64:
        h, w = x.shape[1] // 2 * 2, x.shape[2] // 2 * 2
        x = x[:, :h, :w].reshape(len(x), h // 2, 2, w // 2, 2).mean((2, 4))
    x = (x - x.mean()) / x.std()
    return x[:, None]


def shift_flip(batch: torch.Tensor, pad: int = 2) -> torch.Tensor:
    """Random translation by up to `pad` pixels and horizontal flip, per image (vectorised)."""
    b, _, h, w = batch.shape
    padded = torch.nn.functional.pad(batch, (pad, pad, pad, pad), mode="replicate")
    dy = torch.randint(0, 2 * pad + 1, (b, 1, 1))
    dx = torch.randint(0, 2 * pad + 1, (b, 1, 1))
    rows = (torch.arange(h).view(1, h, 1) + dy).expand(b, h, w)
    cols = torch.arange(w).view(1, 1, w).expand(b, h, w)
    flip = torch.rand(b, 1, 1) < 0.5
    cols = torch.where(flip, w - 1 - cols, cols) + dx
    idx = torch.arange(b).view(b, 1, 1).expand(b, h, w)
    return padded[idx, :, rows, cols].permute(0, 3, 1, 2)
