#!/bin/bash
# Alternate the default `tfdgm train NAME` of the tree before last session (3576007) and now.
# usage (from the repository root):
#   git worktree add /tmp/tfdgm_before 3576007   (or: git archive 3576007 | tar -x -C DIR)
#   BEFORE=/tmp/tfdgm_before benchmarks/train_before_after.sh NAME ROUNDS
# Prints wall and CPU (user + system) seconds of each whole command, with the load.
name=$1; rounds=${2:-2}; mkdir -p ${OUT:-/tmp/tfdgm_ab}
for r in $(seq 1 $rounds); do
  for which in before after; do
    if [ $which = before ]; then pp=${BEFORE:-/tmp/tfdgm_before}; else pp=$(pwd); fi
    out=${OUT:-/tmp/tfdgm_ab}/$name-$which-$r; rm -rf $out
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
print(f"{which:6} round {r}: wall {float(t1)-float(t0):7.1f} s  cpu {cpu} s  train {m.get('wall_time_s')} s  "
      f"test_nll {m.get('test_nll_nats')}  load {l0} -> {l1}  rc {rc}", flush=True)
PY
  done
done
