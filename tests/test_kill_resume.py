"""kill -9 during training, then resume: nothing lost beyond the last finished epoch (issue 9).

A child process trains with a checkpoint and reports each finished epoch from the fit callback,
which runs just before that epoch's checkpoint is written; the test SIGKILLs the child while it
is in epoch 2's callback, starts the same training again, and checks that it resumes after epoch
1 (the last checkpoint: epoch 2 is redone, nothing earlier) and ends with exactly the weights of
an uninterrupted run.
"""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

SCRIPT = textwrap.dedent("""
    import sys, time
    import numpy as np
    from sketchrec.data.sessions import Sessions
    from sketchrec.models import EMDE, SRGNN

    kind, ckpt, out, slow = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    rng = np.random.default_rng(0)
    starts = rng.integers(0, 40, 300)
    train = Sessions.from_lists(((starts[:, None] + np.arange(6)) % 40).tolist(), n_items=40)
    if kind == "emde":
        model = EMDE(inputs=("all:cleora:0", "last:cleora:0"), outputs=("cleora:0",), n_sketches=4, n_bits=5,
                     hidden=64, epochs=5, batch_size=64, lr=3e-3, lr_decay=0.9, progress=False, threads=1)
    else:
        model = SRGNN(hidden=16, epochs=5, batch_size=50, lr=5e-3, progress=False, threads=1)

    def report(epoch, m, row):
        print(f"epoch {epoch}", flush=True)
        time.sleep(slow)                      # the parent kills during this pause

    model.fit(train, checkpoint=ckpt or None, callback=report)
    q = Sessions.from_lists([[1, 2, 3], [7], [30, 31]], n_items=40)
    np.save(out, model.score(q))
    print("history", [r["epoch"] for r in model.history_], flush=True)
""")


def run(args, **kw):
    return subprocess.run([sys.executable, "-c", SCRIPT, *map(str, args)], capture_output=True, text=True,
                          check=True, timeout=300, **kw)


@pytest.mark.parametrize("kind", ["emde", "srgnn"])
def test_kill_9_then_resume_equals_uninterrupted(kind, tmp_path):
    ckpt, killed_out, full_out = tmp_path / "m.ckpt.npz", tmp_path / "resumed.npy", tmp_path / "full.npy"
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, kind, ckpt, killed_out, "0.5"],
                            stdout=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stdout:
        seen.append(line.strip())
        if line.strip() == "epoch 2":
            break
    os.kill(proc.pid, signal.SIGKILL)        # in epoch 2's callback: its checkpoint is not written yet
    proc.wait()
    assert proc.returncode == -signal.SIGKILL and seen[-1] == "epoch 2", seen
    assert ckpt.exists() and not killed_out.exists()
    resumed = run([kind, ckpt, killed_out, 0])
    lines = resumed.stdout.split("\n")
    assert [line for line in lines if line.startswith("epoch")] == ["epoch 2", "epoch 3", "epoch 4", "epoch 5"], lines
    run([kind, "", full_out, 0])             # no checkpoint: one uninterrupted run
    np.testing.assert_allclose(np.load(killed_out), np.load(full_out), rtol=1e-5, atol=1e-6)
