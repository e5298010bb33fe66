"""Where the time of one default ``tfdgm train NAME`` goes: ``Run.execute``'s steps
wrapped with wall and CPU (user + system, every thread of the process) seconds:
``python benchmarks/train_phases.py NAME OUT [EPOCHS]``. Inner phases (indented) are
part of the phase after them; the backup's writes and the validation passes are summed
over the epochs."""

import os
import sys
import time

T0, C0 = time.perf_counter(), time.process_time()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
name, out = sys.argv[1], sys.argv[2]
epochs = int(sys.argv[3]) if len(sys.argv) > 3 else None
import tfdgm.base  # noqa: E402
import tfdgm.callbacks  # noqa: E402
from tfdgm import runs  # noqa: E402

print(
    f"{time.perf_counter() - T0:7.2f} s  imports: wall {time.perf_counter() - T0:.2f} s, "
    f"cpu {time.process_time() - C0:.2f} s",
    flush=True,
)
sums = {}


def wrap(owner, attr, label, quiet=False):
    fn = getattr(owner, attr)

    def wrapped(*a, **k):
        t, c = time.perf_counter(), time.process_time()
        try:
            return fn(*a, **k)
        finally:
            wall, cpu = time.perf_counter() - t, time.process_time() - c
            n, w0, c0 = sums.get(label, (0, 0.0, 0.0))
            sums[label] = (n + 1, w0 + wall, c0 + cpu)
            if not quiet:
                print(
                    f"{time.perf_counter() - T0:7.2f} s  {label}: wall {wall:.2f} s, "
                    f"cpu {cpu:.2f} s",
                    flush=True,
                )

    setattr(owner, attr, wrapped)


wrap(runs.Run, "build", "build+compile")
wrap(runs.Run, "train", "train (fit with validation)")
wrap(tfdgm.callbacks.BackupAndResume, "_write", "  backup writes", quiet=True)
wrap(tfdgm.base.GenerativeModel, "evaluate", "  evaluate (validation passes, test)", quiet=True)
wrap(runs, "held_out_log_prob", "  test NLL")
wrap(runs, "class_coherence", "  class coherence")
wrap(runs.Run, "metrics", "metrics (evaluate, NLL, summary)")
wrap(runs.Run, "figures", "figures (drawn)")
wrap(runs, "_save_figures", "  pictures written")
wrap(tfdgm.base.GenerativeModel, "save", "  model.keras")
wrap(tfdgm.base.GenerativeModel, "export", "  export")
wrap(runs.Run, "save", "save (pictures, keras, export, json)")
kw = {} if epochs is None else {"epochs": epochs}
run = runs.Run.resolve(name, out=out, **kw)
m = run.execute(verbose=0)
for label in ("  backup writes", "  evaluate (validation passes, test)"):
    n, wall, cpu = sums.get(label, (0, 0.0, 0.0))
    print(f"{label}: {n} calls, wall {wall:.2f} s, cpu {cpu:.2f} s")
print(
    f"{time.perf_counter() - T0:7.2f} s  total: wall {time.perf_counter() - T0:.2f} s, "
    f"cpu {time.process_time() - C0:.2f} s; run wall_time_s {m['wall_time_s']}; "
    f"test_nll {m.get('test_nll_nats')}; load {open('/proc/loadavg').read().split()[:3]}",
    flush=True,
)
