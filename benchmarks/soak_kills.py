"""Kill soak: SIGKILL training runs at random instants, rerun them, check nothing is lost.

Each trial is one run folder. A training process (``tfdgm.runs.Run.execute``, forked
from a server that imported TensorFlow once) reports what it is doing over a pipe:
batches, the backup written after each epoch, the final save. The soak picks a phase
(training batches, the backup write, the final save) in turn, waits for it, sleeps a
random fraction of that phase's measured length and sends SIGKILL; then it starts the
same run again, until the run is killed ``--kills`` times and one session finishes.
Every session must resume from the last finished epoch (at most the epoch in progress
is lost), and the finished run must hold a complete, strict-JSON metrics.json with the
whole history, a model.keras that loads and scores like the trained model, no backup
and no temporary file. Prints the counts::

    python benchmarks/soak_kills.py [--trials 10] [--kills 8] [--epochs 6] [--model vae]
                                    [--light] [--eager] [--seed 0]

``--light`` skips the pictures and replaces the SavedModel export by a stand-in folder
(what the test suite's fault test uses, ``tests/test_faults.py``); ``--eager`` runs the
train step eagerly (no tracing: faster on tiny models).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import signal
import sys
import tempfile
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

#: The phases a kill aims at, in turn.
PHASES = ("batch", "backup", "save")


def _instrument(send, light: bool, eager: bool):
    """Patch (in the training process only) what reports the phases over the pipe."""
    from tfdgm import callbacks, runs

    def wrap(owner, name, before, after=None, report=None):
        original = getattr(owner, name)

        def wrapped(self, *args, **kwargs):
            if before:
                send(before, *[a for a in args[:1] if isinstance(a, int)])
            result = original(self, *args, **kwargs)
            if after:
                send(after, report(result) if report else None)
            return result

        setattr(owner, name, wrapped)

    backup = callbacks.BackupAndResume
    wrap(backup, "on_train_batch_end", "batch")
    wrap(backup, "_write", "backup", "backup_end")  # its argument: the epochs done
    wrap(runs.Run, "open_backup", None, "start", report=lambda b: b.epoch)
    wrap(runs.Run, "save", "save", "save_end")
    build = runs.Run.build

    def built(self):
        model = build(self)
        if light:
            model.figures = lambda dataset: {}
            model.export = lambda path: os.makedirs(path) or open(f"{path}/stand-in", "w").close()
        if eager:
            model.run_eagerly = True
        return model

    runs.Run.build = built


def train(spec: dict, conn) -> None:
    """One training session of the run ``spec`` (the target of each forked process)."""

    def send(name, arg=None):  # (time, phase, its argument, CPU seconds so far)
        conn.send((time.perf_counter(), name, arg, time.process_time()))

    # Ctrl-C as in a terminal's foreground process: a process started in the background of
    # a non-interactive shell (``pytest &``) inherits SIGINT ignored, and so would this one
    signal.signal(signal.SIGINT, signal.default_int_handler)

    _instrument(send, spec.get("light", False), spec.get("eager", False))
    import keras

    from tfdgm import data, runs

    dataset = data.load(spec["dataset"]).subset(spec["num_train"], spec["num_test"])
    if not spec.get("verify_only"):
        run = runs.Run.resolve(
            spec["model"],
            dataset,
            epochs=spec["epochs"],
            batch_size=spec["batch_size"],
            hparams=spec["hparams"],
            out=spec["out"],
        )
        run.steps_per_execution = 1  # one step per call: kills aim at every batch's end
        run.execute(verbose=0)
        if run.interrupted:
            send("interrupted", run.epochs_done)
    # the saved model scores the test split as metrics.json says
    with open(os.path.join(spec["out"], "metrics.json")) as f:
        expected = json.load(f)["test_nll_nats"]
    loaded = keras.saving.load_model(os.path.join(spec["out"], "model.keras"))
    got = -float(np.mean(runs.held_out_log_prob(loaded, dataset.x_test)))
    send("done", bool(np.isclose(got, expected, rtol=1e-5, atol=1e-5)))
    conn.close()


def _context(preload=("tfdgm", "matplotlib.pyplot")):
    """A forkserver context whose server imported TensorFlow and tfdgm once."""
    here = os.path.dirname(os.path.abspath(__file__))
    if here not in sys.path:
        sys.path.insert(0, here)
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([*preload, "soak_kills"])
    return context


def _session(context, spec, target, rng, lengths, timeout=300.0):
    """Start one session; signal it in the ``nth`` event of ``phase``, a random fraction
    of the phase's typical length later (``target`` is ``(phase, nth, signal)``; None:
    let it finish).

    Returns ``(events, hit)``: the ``(time, name, argument, cpu)`` events the session
    sent and the phase a SIGKILL fell in ("batch", "backup", "save", "other"),
    "interrupt" for a SIGINT it survived, or None if it finished."""
    receive, child_end = context.Pipe(duplex=False)
    process = context.Process(target=train, args=(spec, child_end))
    process.start()
    child_end.close()
    events, seen, signal_at = [], 0, None
    deadline = time.monotonic() + timeout
    while True:
        if signal_at is not None and time.perf_counter() >= signal_at:
            os.kill(process.pid, target[2])
            if target[2] == signal.SIGKILL:
                break
            signal_at = math.inf
        if time.monotonic() > deadline:
            os.kill(process.pid, signal.SIGKILL)
            raise TimeoutError(f"a session of {spec['out']} ran over {timeout} s")
        wait = 0.05 if signal_at is None else min(0.05, max(0.0, signal_at - time.perf_counter()))
        if receive.poll(wait):
            try:
                events.append(receive.recv())
            except EOFError:
                break
            if target is not None and signal_at is None and events[-1][1] == target[0]:
                seen += 1
                if seen == target[1]:
                    signal_at = events[-1][0] + rng.uniform(0, lengths.get(target[0], 0.01))
        elif not process.is_alive():
            break
    process.join()
    while receive.poll():  # what the process sent before it died
        try:
            events.append(receive.recv())
        except EOFError:
            break
    receive.close()
    _measure(events, lengths)
    if process.exitcode == -signal.SIGKILL:
        return events, _phase_at_kill(events)
    if process.exitcode != 0:
        raise RuntimeError(f"a session of {spec['out']} failed (exit {process.exitcode})")
    return events, "interrupt" if any(e[1] == "interrupted" for e in events) else None


def _phase_at_kill(events) -> str:
    """The phase the last event opened: the kill fell in it (or just after it)."""
    last = events[-1][1] if events else "other"
    return {"batch": "batch", "backup": "backup", "save": "save"}.get(last, "other")


def _measure(events, lengths):
    """Keep the typical length of each phase (median gap to the next event)."""
    gaps = {}
    for (t0, name, *_), (t1, *_) in zip(events, events[1:]):
        if name in PHASES:
            gaps.setdefault(name, []).append(t1 - t0)
    for name, values in gaps.items():
        lengths[name] = float(np.median(values))


def trial(context, spec: dict, kills: int, rng, lengths, interrupts: int = 1) -> dict:
    """Kill one run ``kills`` times (two thirds aimed at random batches and backups, the
    rest at the final save) and interrupt it (SIGINT, Ctrl-C) ``interrupts`` times at
    random batches, then let it finish; check every resume and the finished folder.
    Returns the counts of signals by the phase they fell in."""
    counts = {phase: 0 for phase in (*PHASES, "other", "interrupt")}
    batches = -(-spec["num_train"] // spec["batch_size"])
    backed_up, sessions, cpu = 0, 0, 0.0
    backup = os.path.join(spec["out"], "backup.npz")
    aims = [PHASES[i % 2] for i in range(kills - kills // 3)]
    aims[1:1] = ["interrupt"] * interrupts
    for aim in [*aims, *["save"] * (kills // 3), None]:
        remaining = spec["epochs"] - backed_up
        if aim == "interrupt" and remaining * batches < 2:
            continue
        if aim in ("batch", "backup") and remaining < 1:
            aim = "save"
        nth = {"batch": remaining * batches, "backup": remaining, "save": 1}.get(aim, 1)
        if aim == "interrupt":
            target = ("batch", int(rng.integers(1, remaining * batches)), signal.SIGINT)
        else:
            target = None if aim is None else (aim, int(rng.integers(1, nth + 1)), signal.SIGKILL)
        events, hit = _session(context, spec, target, rng, lengths)
        sessions += 1
        cpu += events[-1][3] if events else 0.0
        resumed = [e[2] for e in events if e[1] == "start"]
        if resumed:
            # at most the epoch in progress is lost: the session starts where the last
            # finished backup ends (or one later, a kill just after the rename)
            if not backed_up <= resumed[0] <= backed_up + 1:
                raise AssertionError(f"resumed at epoch {resumed[0]}, backed up {backed_up}")
            backed_up = resumed[0]
        pairs = zip(events, events[1:])
        written = [a[2] for a, b in pairs if a[1] == "backup" and b[1] == "backup_end"]
        backed_up = max([backed_up, *written])
        if hit == "interrupt":
            backed_up = _check_interrupted(spec, backed_up)
        if hit is None:
            break
        counts[hit] += 1
        saved = any(e[1] == "save_end" for e in events)
        if hit != "interrupt" and saved and not os.path.exists(backup):
            # killed after the run was complete: only the check of its model is left
            events, _ = _session(context, {**spec, "verify_only": True}, None, rng, lengths)
            break
    done = [e for e in events if e[1] == "done"]
    if not done or not done[0][2]:
        raise AssertionError(f"{spec['out']}: model.keras does not score as metrics.json says")
    _check_folder(spec)
    kills = sum(v for k, v in counts.items() if k != "interrupt")
    return {"sessions": sessions, "kills": kills, **counts, "cpu_s": round(cpu, 1)}


def _strict(text: str):
    def refuse(constant):
        raise ValueError(f"metrics.json holds {constant}")

    return json.loads(text, parse_constant=refuse)


def _metrics(spec: dict, epochs: int, or_one_more: bool = False) -> dict:
    """The run's metrics.json, strict JSON, with ``epochs`` epochs of whole history (or
    one more: a Ctrl-C raised just after an epoch's backup, before it was reported)."""
    with open(os.path.join(spec["out"], "metrics.json")) as f:
        metrics = _strict(f.read())
    assert metrics["epochs"] in (epochs, epochs + or_one_more), (metrics["epochs"], epochs)
    epochs = metrics["epochs"]
    for key in ("loss", "val_loss"):
        values = metrics["history"].get(key, [])  # none before the first epoch ends
        assert len(values) == epochs and all(v is not None for v in values), (key, values)
    return metrics


def _check_interrupted(spec: dict, epochs: int) -> int:
    """Check the folder a Ctrl-C left; returns the epochs it kept."""
    metrics = _metrics(spec, epochs, or_one_more=True)
    assert metrics["interrupted"] and not metrics["complete"], metrics
    assert os.path.exists(os.path.join(spec["out"], "backup.npz")) or metrics["epochs"] == 0
    return metrics["epochs"]


def _check_folder(spec: dict) -> None:
    out = spec["out"]
    metrics = _metrics(spec, spec["epochs"])
    assert metrics["complete"] and not metrics["interrupted"] and not metrics["diverged"]
    leftovers = [n for n in os.listdir(out) if ".tmp-" in n or ".old-" in n or n == "backup.npz"]
    assert not leftovers, leftovers
    for name in ("config.json", "model.keras", "training_curve.png", "export"):
        assert os.path.exists(os.path.join(out, name)), name


def spec_for(out: str, model: str = "vae", epochs: int = 3, light=True, eager=True, num_train=96):
    """A tiny run of ``model`` (its registry tiny hyperparameters) on digits, batch 32."""
    from tfdgm import registry

    hparams = dict(registry.get(model).tiny)
    if model == "vae":
        hparams["log_prob_samples"] = 8
    return dict(
        model=model,
        dataset="digits",
        num_train=num_train,
        num_test=32,
        batch_size=32,
        epochs=epochs,
        hparams=hparams,
        out=out,
        light=light,
        eager=eager,
    )


def trials(make_spec, kills: int, min_kills: int = 0, max_trials: int = 10, seed: int = 0):
    """Run :func:`trial` on ``make_spec(i)`` for i = 0, 1, ... until ``max_trials`` are
    done, or ``min_kills`` kills (if given) have landed; returns the summed counts."""
    context, rng, lengths = _context(), np.random.default_rng(seed), {}
    totals = {"trials": 0, "runs_finished_whole": 0}
    start = time.perf_counter()
    while totals["trials"] < max_trials and not (min_kills and totals.get("kills", 0) >= min_kills):
        counts = trial(context, make_spec(totals["trials"]), kills, rng, lengths)
        print(f"trial {totals['trials']}: {counts}", flush=True)
        for key, value in counts.items():
            totals[key] = round(totals.get(key, 0) + value, 1)
        totals["trials"] += 1
        totals["runs_finished_whole"] += 1  # trial() raises otherwise
    totals["seconds"] = round(time.perf_counter() - start, 1)
    return totals


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--kills", type=int, default=8, help="kills per trial")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--model", default="vae")
    parser.add_argument("--num-train", type=int, default=256)
    parser.add_argument("--light", action="store_true")
    parser.add_argument("--eager", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as root:

        def make_spec(i):
            out = os.path.join(root, f"run{i}")
            return spec_for(out, args.model, args.epochs, args.light, args.eager, args.num_train)

        totals = trials(make_spec, args.kills, max_trials=args.trials, seed=args.seed)
    print(json.dumps(totals))
    return 0


if __name__ == "__main__":
    sys.exit(main())
