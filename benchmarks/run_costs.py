"""Costs inside a default VAE run, CPU (user + system, every thread) and wall
milliseconds, median of repeats: one epoch of ``fit`` with and without its validation
pass, the backup written after each epoch (and its parts), tfdgm's ``evaluate`` against
Keras', one image grid, the export (``python benchmarks/run_costs.py``)."""

import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tfdgm import atomic, plotting, runs  # noqa: E402
from tfdgm.callbacks import training_state  # noqa: E402

run = runs.Run.resolve("vae", epochs=2, out=tempfile.mkdtemp())
model = run.build_model()
run.open_backup()
run.train(verbose=0)
val = run._pipeline("test")


def timed(label, f, n=10):
    f()
    walls, cpus = [], []
    for _ in range(n):
        t, c = time.perf_counter(), time.process_time()
        f()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    print(
        f"{label:<48} cpu {statistics.median(cpus) * 1e3:8.2f} ms   "
        f"wall {statistics.median(walls) * 1e3:8.2f} ms",
        flush=True,
    )


print("load", open("/proc/loadavg").read().split()[:3])
train = run._pipeline("train")
timed("fit, 1 epoch with validation", lambda: model.fit(train, verbose=0, validation_data=val), 5)
timed("fit, 1 epoch without validation", lambda: model.fit(train, verbose=0), 5)
timed("evaluate (tfdgm: checks the pipeline first)", lambda: model.evaluate(val, verbose=0))
timed("keras.Model.evaluate", lambda: keras.Model.evaluate(model, val, verbose=0))
backup, variables = run.backup, training_state(model)
backup._start = time.perf_counter()
timed("backup: the whole write (BackupAndResume._write)", lambda: backup._write(2), 20)
timed("backup: variables read in one tf.function call", lambda: backup._values(variables), 20)
timed(
    "backup: variables read one by one (before)",
    lambda: [np.asarray(keras.ops.convert_to_numpy(v)) for v in variables],
    20,
)
arrays = {f"v{i}": a for i, a in enumerate(backup._values(variables))}
folder = tempfile.mkdtemp()


def write():
    with atomic.replacing(os.path.join(folder, "b.npz")) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


timed("backup: np.savez, fsync and rename", write, 20)
samples = np.asarray(model.sample(64, seed=(0, 1)))


def grid():
    fig = plotting.image_grid(samples, (8, 8), title="samples", vmin=0, vmax=1)
    fig.savefig(os.path.join(folder, "grid.png"), dpi=100)
    plt.close(fig)


timed("image grid of 64, drawn and written", grid, 5)
timed("export (SavedModel)", lambda: model.export(tempfile.mkdtemp() + "/e"), 3)
print("load", open("/proc/loadavg").read().split()[:3])
