"""Why EMDE recommends an item: occlusion of input modalities and gradient x input of buckets."""

from __future__ import annotations

import numpy as np
import torch

from sketchrec.data.sessions import Sessions


def explain(model, histories: Sessions, items, top_buckets: int = 5) -> list[dict]:
    """Why item `items[r]` is recommended for row r of `histories` by the fitted EMDE `model`:
    per input modality, the score drop when that modality is removed (occlusion), and the input
    buckets with the largest gradient x input on the item's score.

    Returns one dict per row: item, score, modalities {input spec: contribution}, buckets
    [(feature name, attribution), ...] (most influential first, by absolute value).
    """
    model._check_histories(histories)
    if getattr(model, "int8_", False):
        raise ValueError("an int8 model (EMDE.to_int8) has no gradients to explain with: load the float model")
    items = np.asarray(items, dtype=np.int64).reshape(-1)
    if len(items) != len(histories):
        raise ValueError(f"{len(items)} items for {len(histories)} rows")
    if len(items) and (items.min() < 0 or items.max() >= model.n_items_):
        raise ValueError(f"item ids must lie in [0, {model.n_items_})")
    if model.max_prefix and model.target == "next":
        histories = histories.tail(model.max_prefix)
    if getattr(model, "_readout", None) is None:
        model._prepare_readout()
    codes = torch.from_numpy(model._output_codes()[items].astype(np.int64))       # (B, depth)
    block = model.n_sketches * model.width
    indices, offsets, weights = model._encode(histories)
    net = model.net_
    net.eval()

    def item_scores(w):
        log_p = net(indices, offsets, w)                                             # (B, depth, width)
        picked = log_p.gather(2, codes.unsqueeze(2)).squeeze(2)                      # (B, depth)
        if model._readout_kind == "geometric":
            return picked.mean(1)
        if model._readout_kind == "min":
            return picked.min(1).values
        mass = torch.from_numpy(model._log_bucket_mass).gather(1, codes.T).T          # (B, depth)
        out = (picked - mass).sum(1)
        if model.prior:
            out = out + float(model.prior) * torch.from_numpy(model._log_item_prior[items])
        return out

    w = weights.clone().requires_grad_(True)
    scored = item_scores(w)
    scored.sum().backward()
    full = scored.detach()
    grad_x_input = (w.grad * weights).detach().numpy()
    modality_of = (indices // block).numpy()
    contributions = np.zeros((len(items), len(model.inputs)), dtype=np.float32)
    with torch.no_grad():
        for m in range(len(model.inputs)):
            occluded = torch.where(torch.from_numpy(modality_of == m), torch.zeros_like(weights), weights)
            contributions[:, m] = (full - item_scores(occluded)).numpy()
    names = model.feature_names()
    out = []
    for r in range(len(items)):
        sl = slice(int(offsets[r]), int(offsets[r + 1]))
        attr = grad_x_input[sl]
        order = np.argsort(-np.abs(attr))[:top_buckets]
        out.append({"item": int(items[r]), "score": float(full[r]),
                    "modalities": {spec: float(c) for spec, c in zip(model.inputs, contributions[r])},
                    "buckets": [(names[int(indices[sl][i])], float(attr[i])) for i in order]})
    return out
