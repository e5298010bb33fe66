"""Costs inside a default VAE run: tfdgm's evaluate against Keras', a fit epoch with and
without validation, the export (``python benchmarks/run_costs.py``)."""
import os, time, tempfile, statistics
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras, numpy as np, tensorflow as tf
from tfdgm import runs, inputs
run = runs.Run.resolve("vae", epochs=2, out=tempfile.mkdtemp())
model = run.build_model()
run.open_backup()
run.train(verbose=0)
val = run._pipeline("test")
def timed(f, n=10):
    f(); ts = []
    for _ in range(n):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1e3, min(ts) * 1e3
print("load", open("/proc/loadavg").read().split()[:3])
print("check_inputs(validation pipeline) ms", timed(lambda: inputs.check_inputs(model, val, what="validation_data")))
print("model.evaluate (tfdgm) ms", timed(lambda: model.evaluate(val, verbose=0)))
print("keras.Model.evaluate ms", timed(lambda: keras.Model.evaluate(model, val, verbose=0)))
print("fit 1 epoch with validation ms", timed(lambda: model.fit(run._pipeline("train"), epochs=1, verbose=0, validation_data=val), 5))
print("fit 1 epoch without validation ms", timed(lambda: model.fit(run._pipeline("train"), epochs=1, verbose=0), 5))
from keras.export import ExportArchive
from tfdgm import export as ex
t = time.perf_counter()
archive = ExportArchive(); archive.track(model)
for name, (fn, sig) in model.export_endpoints().items():
    t1 = time.perf_counter()
    archive.add_endpoint(name, tf.function(fn, autograph=False), input_signature=sig)
    print(f"  add_endpoint {name}: {time.perf_counter() - t1:.2f} s")
t1 = time.perf_counter()
archive.write_out(tempfile.mkdtemp() + "/e", verbose=False)
print(f"  write_out: {time.perf_counter() - t1:.2f} s; export total {time.perf_counter() - t:.2f} s")
t = time.perf_counter(); model.save(tempfile.mkdtemp() + "/m.keras"); print(f"model.save {time.perf_counter() - t:.2f} s")
print("load", open("/proc/loadavg").read().split()[:3])
