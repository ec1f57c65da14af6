"""Data-parallel EMDE: `sketchrec train emde-stream` under torchrun with 2 processes (gloo, CPU) gives
the weights of one process trained with the same global batch.

Equal to float tolerance, not bit for bit: DDP sums the two processes' gradients (all-reduce)
where one process sums over the whole batch, another order of float additions. The network has
no batch norm here: with it, each process normalises by the statistics of its own half of the
batch (DDP without SyncBatchNorm), which is a different function, not a rounding difference."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from sketchrec.data.sessions import Sessions
from sketchrec.data.stream import SessionStream, write_session_log
from sketchrec.models import EMDE

PARAMS = dict(inputs=["all:cleora:1", "last:cleora:0"], outputs=["cleora:1"], n_sketches=4, n_bits=4, hidden=32,
              batch_norm=False, batch_size=64, lr=3e-3, cleora_dim=16, bf16=False, threads=1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_train_the_weights_of_one_with_the_same_global_batch(tmp_path):
    rng = np.random.default_rng(0)
    starts = rng.integers(0, 30, 400)
    train = Sessions.from_lists(((starts[:, None] + np.arange(5)) % 30).tolist(), 30)
    write_session_log(train, tmp_path / "log", sessions_per_group=50)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(_free_port()), "-m", "sketchrec.cli", "train", "emde-stream",
               str(tmp_path / "log"), "--output", str(tmp_path / "ddp.npz"), "--epochs", "2",
               "--params", json.dumps(PARAMS), "--buffer-events", "600", "--n-items", "30",
               "--checkpoint", str(tmp_path / "ckpt/fit.npz"), "--checkpoint-every", "0"]
    subprocess.run(command, check=True, env=env, timeout=120, capture_output=True)
    ddp = EMDE.load(tmp_path / "ddp.npz")
    # every process wrote its own checkpoint, after every buffer, at the same moments: the same state
    with np.load(tmp_path / "ckpt/fit.npz.rank0") as a, np.load(tmp_path / "ckpt/fit.npz.rank1") as b:
        assert json.loads(str(a["meta"]))["epoch"] == 2
        for key in a.files:
            if key.startswith("net."):
                np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    command[command.index("--master_port") + 1] = str(_free_port())
    subprocess.run(command, check=True, env=env, timeout=120, capture_output=True)     # resumes: nothing left
    for name, value in EMDE.load(tmp_path / "ddp.npz").net_.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), ddp.net_.state_dict()[name].numpy(), err_msg=name)
    one = EMDE(**{**PARAMS, "epochs": 2, "progress": False}).fit(
        SessionStream(tmp_path / "log", buffer_events=600, n_items=30))
    for name, value in one.net_.state_dict().items():
        np.testing.assert_allclose(ddp.net_.state_dict()[name].numpy(), value.numpy(), rtol=1e-4, atol=2e-5,
                                   err_msg=name)
    assert not np.allclose(ddp.net_.input.weight.detach().numpy(),
                           EMDE(**{**PARAMS, "epochs": 0, "progress": False}).fit(train).net_.input.weight.detach().numpy())
    # the work was split: rank 0 trained half of every batch (400 sessions x 4 pairs, 25 batches of 64)
    history = json.loads((tmp_path / "ddp.history.json").read_text())
    assert [row["examples"] for row in one.history_] == [1600, 1600]
    assert [row["examples"] for row in history] == [800, 800]
    probe = train.take(np.arange(20))
    np.testing.assert_allclose(ddp.score(probe), one.score(probe), rtol=1e-3, atol=1e-3)
