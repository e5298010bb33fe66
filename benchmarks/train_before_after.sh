#!/bin/bash
# Alternate the default `tfdgm train NAME` of several trees, round-robin.
# usage (from the repository root):
#   git archive COMMIT | tar -x -C DIR          (a tree to compare against, e.g. 3576007)
#   BEFORE=DIR benchmarks/train_before_after.sh NAME ROUNDS        (DIR, then this tree)
#   TREES="issue=DIR1 start=DIR2 now=$PWD" benchmarks/train_before_after.sh NAME ROUNDS
# Prints wall and CPU (user + system) seconds of each whole command, with the load
# average before and after it, and the run's test figures; OUT (default /tmp/tfdgm_ab)
# keeps each run folder and log.
name=$1; rounds=${2:-2}; out_root=${OUT:-/tmp/tfdgm_ab}; mkdir -p $out_root
trees=${TREES:-"before=${BEFORE:-/tmp/tfdgm_before} after=$(pwd)"}
for r in $(seq 1 $rounds); do
  for tree in $trees; do
    which=${tree%%=*}; pp=${tree#*=}
    out=$out_root/$name-$which-$r; rm -rf $out
    l0=$(cut -d' ' -f1-3 /proc/loadavg)
    t0=$(date +%s.%N)
    (PYTHONPATH=$pp TF_CPP_MIN_LOG_LEVEL=3 /usr/bin/time -f "cpu %U %S" -o $out.time nice -n 10 python -m tfdgm.cli train $name --out $out > $out.log 2>&1)
    rc=$?
    t1=$(date +%s.%N)
    l1=$(cut -d' ' -f1-3 /proc/loadavg)
    python3 - "$which" "$r" "$out" "$t0" "$t1" "$l0" "$l1" "$rc" <<'PY'
import json, sys
which, r, out, t0, t1, l0, l1, rc = sys.argv[1:]
try:
    user, system = open(out + ".time").read().split()[-2:]
    cpu = f"{float(user) + float(system):.1f}"
except Exception:
    cpu = "n/a"
try:
    m = json.load(open(out + "/metrics.json"))
except Exception as e:
    m = {}
skip = ("history", "train", "wall_time_s", "examples_per_s", "model", "dataset")
figures = {k: v for k, v in m.items() if k not in skip}
print(f"{which:6} round {r}: wall {float(t1)-float(t0):7.1f} s  cpu {cpu} s  train {m.get('wall_time_s')} s  "
      f"load {l0} -> {l1}  rc {rc}\n        figures {json.dumps(figures, sort_keys=True)}", flush=True)
PY
  done
done
