"""Training: the one epoch loop (validation, best epoch, patience, checkpoints, rollback) that
every model trained by gradient steps shares.

Layer: below sketchrec.models and sketchrec.retrieval, above sketchrec.data; it imports neither
models nor eval (a model's validation comes in as a `Validation` object).
"""

from sketchrec.training.checkpoint import fingerprint, load_checkpoint, save_checkpoint
from sketchrec.training.loop import (VALID_PREFIX, EpochLoop, TrainingState, Validation, check_validation,
                                     rollback_on_failure, torch_threads, valid_metric)

__all__ = ["VALID_PREFIX", "EpochLoop", "TrainingState", "Validation", "check_validation", "fingerprint",
           "load_checkpoint", "rollback_on_failure", "save_checkpoint", "torch_threads", "valid_metric"]
