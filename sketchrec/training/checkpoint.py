"""Resumable training state, without pickle.

One `.npz` holds the network's weights, the best weights so far, Adam's state,
the torch and numpy random states, the scheduler and the epoch history. It is
written atomically after every epoch, so a run killed at any moment resumes
from the last finished epoch with nothing else lost. (The format is the one
`sketchrec/models/_checkpoint.py` wrote before the training loop moved here:
those files still resume.)
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import torch


def fingerprint(rows) -> str:
    """A cheap identity of training rows (a `Sessions`: its indptr, items and weights), so a
    checkpoint is only resumed on the same data. A source with its own `fingerprint()` (a
    `SessionStream`: its files) gives that."""
    if callable(getattr(rows, "fingerprint", None)):
        return rows.fingerprint()
    h = hashlib.sha256()
    for a in (rows.indptr, rows.items, rows.weights):
        if a is not None:
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def _settings_json(params: dict) -> str:
    return json.dumps(params, sort_keys=True, default=str)


def save_checkpoint(path, *, params: dict, fingerprint: str, epoch: int, net: torch.nn.Module,
                    optimiser: torch.optim.Optimizer, scheduler, rng: np.random.Generator,
                    history: list, best: float, best_state: dict | None, extra: dict | None = None) -> None:
    """Write the state after `epoch` finished epochs to `path` (atomically: write, fsync, rename)."""
    arrays = {f"net.{k}": v.detach().float().numpy() if v.dtype == torch.bfloat16 else v.detach().numpy()
              for k, v in net.state_dict().items()}
    if best_state is not None:
        arrays.update({f"best.{k}": v.numpy() for k, v in best_state.items()})
    for i, state in optimiser.state_dict()["state"].items():
        for key, value in state.items():
            arrays[f"opt.{i}.{key}"] = value.detach().numpy() if torch.is_tensor(value) else np.asarray(value)
    arrays["torch_rng"] = torch.get_rng_state().numpy()
    meta = {"params": _settings_json(params), "fingerprint": fingerprint,
            "epoch": epoch, "scheduler": scheduler.state_dict(),
            "lr": [g["lr"] for g in optimiser.param_groups], "rng": rng.bit_generator.state,
            "history": history, "best": best if np.isfinite(best) else None, "extra": extra or {}}
    arrays["meta"] = np.array(json.dumps(meta, default=float))
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)      # atomic: a kill mid-write leaves the previous checkpoint


def same_settings(saved_json: str, params: dict, defaults: dict | None = None) -> bool:
    """Whether a checkpoint's parameters (`saved_json`, as `save_checkpoint` wrote them) are
    `params`. A parameter the checkpoint does not name (one added to the class after it was
    written) matches when `params` has it at its default (`defaults`: name -> default)."""
    saved, current = json.loads(saved_json), json.loads(_settings_json(params))
    defaults = json.loads(_settings_json(defaults or {}))
    added = set(current) - set(saved)
    return (set(saved) <= set(current) and all(saved[k] == current[k] for k in saved)
            and all(k in defaults and current[k] == defaults[k] for k in added))


def load_checkpoint(path, *, params: dict, fingerprint: str, net: torch.nn.Module,
                    optimiser: torch.optim.Optimizer, scheduler, rng: np.random.Generator,
                    defaults: dict | None = None):
    """Restore what `save_checkpoint` wrote into net / optimiser / scheduler / rng (in place).

    Refuses a checkpoint written with other parameters (see `same_settings`; `defaults` are
    the class's parameter defaults) or other training rows.
    Returns (epochs done, history, best, best_state or None, extra dict).
    """
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        if not same_settings(meta["params"], params, defaults):
            raise ValueError(f"checkpoint {path} was written with other settings; delete it or "
                             f"train with the same settings")
        if meta["fingerprint"] != fingerprint:
            raise ValueError(f"checkpoint {path} was written for other training rows")
        net.load_state_dict({k[4:]: torch.from_numpy(z[k].copy()) for k in z.files if k.startswith("net.")})
        opt = optimiser.state_dict()
        for key in z.files:
            if key.startswith("opt."):
                _, i, name = key.split(".", 2)
                opt["state"].setdefault(int(i), {})[name] = torch.from_numpy(z[key].copy())
        for group, lr in zip(opt["param_groups"], meta["lr"]):
            group["lr"] = lr
        optimiser.load_state_dict(opt)
        scheduler.load_state_dict(meta["scheduler"])
        rng.bit_generator.state = meta["rng"]
        torch.set_rng_state(torch.from_numpy(z["torch_rng"].copy()))
        best_state = {k[5:]: torch.from_numpy(z[k].copy()) for k in z.files if k.startswith("best.")} or None
    best = meta["best"] if meta["best"] is not None else -np.inf
    return meta["epoch"], meta["history"], best, best_state, meta.get("extra", {})
