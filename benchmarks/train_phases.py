"""Timestamps of the phases of one default ``tfdgm train NAME`` (``Run.execute``, its
steps wrapped): ``python benchmarks/train_phases.py NAME OUT [EPOCHS]``."""
import os, sys, time
T0 = time.perf_counter()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
name, out = sys.argv[1], sys.argv[2]
epochs = int(sys.argv[3]) if len(sys.argv) > 3 else None
from tfdgm import runs, plotting
import tfdgm.base
print(f"{time.perf_counter() - T0:7.2f} s  imports done", flush=True)
stamps = []
def wrap(owner, attr, label):
    fn = getattr(owner, attr)
    def wrapped(*a, **k):
        t = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            stamps.append((label, time.perf_counter() - t))
            print(f"{time.perf_counter() - T0:7.2f} s  {label}: {time.perf_counter() - t:.2f} s", flush=True)
    setattr(owner, attr, wrapped)
wrap(runs.Run, "build", "build+compile")
wrap(runs.Run, "train", "train (fit with validation)")
wrap(runs, "held_out_log_prob", "  test NLL")
wrap(runs, "class_coherence", "  class coherence")
wrap(runs.Run, "metrics", "metrics (evaluate, NLL, summary)")
wrap(runs.Run, "figures", "figures (drawn)")
wrap(runs, "_save_figures", "  pictures written")
wrap(tfdgm.base.GenerativeModel, "save", "  model.keras")
wrap(tfdgm.base.GenerativeModel, "export", "  export")
wrap(tfdgm.base.GenerativeModel, "evaluate", "  evaluate")
wrap(runs.Run, "save", "save (pictures, keras, export, json)")
kw = {} if epochs is None else {"epochs": epochs}
run = runs.Run.resolve(name, out=out, **kw)
m = run.execute(verbose=0)
print(f"{time.perf_counter() - T0:7.2f} s  total; run wall_time_s {m['wall_time_s']}; test_nll {m.get('test_nll_nats')}; load {open('/proc/loadavg').read().split()[:3]}", flush=True)
