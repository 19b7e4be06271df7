#!/bin/bash
# `orch conflicts` over a repository of FILES files and PLANS plan branches (each changing 3 files
# of its own; plans p1 and p2 both add `shared.txt`: one conflicting pair), n(n+1)/2 pairs in all.
# Prints the wall, user and system time of each run of each build named.
#
#   benches/conflicts.sh [FILES] [PLANS] [RUNS] ORCH_BINARY...
#   e.g. benches/conflicts.sh 10000 20 3 target/release/orch /tmp/orch-before
#
# Needs GNU time (/usr/bin/time). The repository is made under ${TMPDIR:-/tmp} and removed at the end. Each run's report must name
# the one conflict (p1 ↔ p2 on shared.txt), or the bench fails.
set -euo pipefail
FILES=${1:-10000}; PLANS=${2:-20}; RUNS=${3:-3}; shift 3 || true
[ $# -gt 0 ] || { echo "usage: $0 FILES PLANS RUNS ORCH_BINARY..." >&2; exit 2; }
D=$(mktemp -d "${TMPDIR:-/tmp}/orch-conflicts-bench.XXXXXX")
trap 'rm -rf "$D"' EXIT
cd "$D"
export GIT_CONFIG_NOSYSTEM=1 HOME="$D"
git init -q -b main
git config user.name bench; git config user.email bench@example.invalid
for i in $(seq 0 $((FILES - 1))); do
  d=src/d$((i % 100)); [ -d $d ] || mkdir -p $d
  printf 'file %s\n%.0s' $i 1 2 3 4 5 > $d/f$i.txt
done
mkdir -p docs/plans
printf '[defaults]\ntarget = "main"\n\n' > plans.toml
for p in $(seq 1 "$PLANS"); do
  printf '# Plan p%s\n\n## Phase 1: work\n\n- [ ] 1.1 do it\n' $p > docs/plans/p$p.md
  printf '[[plan]]\nname = "p%s"\nfile = "docs/plans/p%s.md"\n\n' $p $p >> plans.toml
done
git add -A; git commit -qm base
for p in $(seq 1 "$PLANS"); do
  git checkout -q -b plan/p$p main
  for k in 0 1 2; do i=$(( (p * 37 + k * 1000) % FILES )); echo "change by p$p" >> src/d$((i % 100))/f$i.txt; done
  if [ $p -le 2 ]; then echo "shared $p" > shared.txt; fi
  git add -A; git commit -qm "p$p work"
done
git checkout -q main
echo "orch conflicts: $FILES files, $PLANS plan branches, $(( PLANS * (PLANS + 1) / 2 )) pairs; load $(cut -d' ' -f1-3 /proc/loadavg)"
for run in $(seq 1 "$RUNS"); do
  for bin in "$@"; do
    out=$( { /usr/bin/time -q -f "%e s wall, %U s user, %S s system" "$bin" conflicts > report.txt; } 2>&1 ) || true
    grep -q 'p1 ↔ p2: `shared.txt`' report.txt || { echo "$bin: the conflict is not reported" >&2; cat report.txt >&2; exit 1; }
    echo "run $run  $bin: $out"
  done
done
