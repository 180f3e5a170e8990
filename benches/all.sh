#!/usr/bin/env bash
# Every benchmark, in one command, after `cargo build --release --workspace`:
#
#     benches/all.sh
#
# Each prints its figures beside the physical references it measures in the same run (dd with
# and without fsync, a page-cache read, the fill floors in small and huge pages). Takes about
# 15 minutes. The machine must be quiet: on 2 CPUs shared with a build, the page cache's
# speed and every figure here drift by 2-5x, so the load average is printed first and last.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[[ -x target/release/ckpt ]] || { echo "benches: build first: cargo build --release --workspace" >&2; exit 1; }

load() { echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"; }
load
for bench in \
    "bench.py 16 256 1024" \
    "writes.py 1024" \
    "restart.py 256 1024" \
    "scaling.py 16 64 256 1024 4096" \
    "threads.py" \
    "incremental.py" \
    "attach.py"; do
    script=${bench%% *}
    [[ -f benches/$script ]] || continue
    echo
    echo "##### benches/$bench"
    # shellcheck disable=SC2086  # the arguments are meant to split
    python3 benches/$bench
done
echo
load
