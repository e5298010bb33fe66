#!/bin/bash
# Alternate the default `tfdgm train NAME` of several trees, round-robin.
# usage (from the repository root):
#   git archive COMMIT | tar -x -C DIR          (a tree to compare against, e.g. 3576007)
#   BEFORE=DIR benchmarks/train_before_after.sh NAME ROUNDS        (DIR, then this tree)
#   TREES="issue=DIR1 start=DIR2 now=$PWD" benchmarks/train_before_after.sh NAME ROUNDS
# Prints wall and CPU (user + system) seconds of each whole command, with the load
# average before and after it, and the run's test figures; OUT (default /tmp/tfdgm_ab)
# keeps each run folder and log. Each command runs from inside its tree: `python -m`
# puts the working directory ahead of PYTHONPATH, so run from the repository root every
# tree's command would import the repository's tfdgm (as this script did before
# 2026-12-08: its earlier before/after tables timed one tree against itself).
name=$1; rounds=${2:-2}; out_root=$(realpath -m ${OUT:-/tmp/tfdgm_ab}); mkdir -p $out_root
trees=${TREES:-"before=${BEFORE:-/tmp/tfdgm_before} after=$(pwd)"}
for r in $(seq 1 $rounds); do
  for tree in $trees; do
    which=${tree%%=*}; pp=${tree#*=}
    out=$out_root/$name-$which-$r; rm -rf $out
    l0=$(cut -d' ' -f1-3 /proc/loadavg)
    t0=$(date +%s.%N)
    (cd $pp && PYTHONPATH=$pp TF_CPP_MIN_LOG_LEVEL=3 /usr/bin/time -f "cpu %U %S" -o $out.time nice -n 10 python -c "import tfdgm.cli, sys; print('tfdgm from', tfdgm.cli.__file__); sys.exit(tfdgm.cli.main())" train $name --out $out > $out.log 2>&1)
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
source = next((l.split()[-1] for l in open(out + ".log") if l.startswith("tfdgm from")), "?")
print(f"{which:6} round {r}: wall {float(t1)-float(t0):7.1f} s  cpu {cpu} s  train {m.get('wall_time_s')} s  "
      f"load {l0} -> {l1}  rc {rc}  {source}\n        figures {json.dumps(figures, sort_keys=True)}", flush=True)
PY
  done
done
