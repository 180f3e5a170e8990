#!/usr/bin/env bash
# The ckpt demo: run a counter under ckpt, checkpoint it with SIGTSTP after it printed 5
# lines, then run the checkpoint file and show that the count goes on where it stopped.
#
# Needs the built artifacts (cargo build --release --workspace) and a C compiler ($CC or cc).
# Exits non-zero if the restarted counter does not continue with the next number.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ckpt=${CKPT:-$root/target/release/ckpt}
cc=${CC:-cc}
wait_s=5

if [[ ! -x $ckpt || ! -f $(dirname "$ckpt")/libckpt.so ]]; then
    echo "demo: $ckpt or libckpt.so beside it is missing; build first:" \
         "cargo build --release --workspace" >&2
    exit 1
fi

# Descriptors above 2 that this shell inherited (some terminals, IDEs and CI runners leave
# pipes or sockets open) would be the counter's too: a pipe would come back at the restart
# with its other end gone (the other end is the terminal's), and a kind a checkpoint cannot
# save yet would fail it, naming it. The demo's counter needs none of them.
for fd in /proc/$$/fd/*; do
    fd=${fd##*/}
    # (255: bash reading this script, close-on-exec.)
    if ((fd > 2 && fd != 255)); then eval "exec $fd>&-" 2>/dev/null || true; fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/ckpt-demo.XXXXXX")
pid=
cleanup() {
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# Polls until FILE has at least N lines, for at most $wait_s seconds.
wait_for_lines() {
    local file=$1 n=$2
    timeout "$wait_s" bash -c \
        'while [[ $(wc -l < "$1") -lt $2 ]]; do sleep 0.05; done' _ "$file" "$n" || {
        echo "demo: timed out waiting for $n lines in $file; it has:" >&2
        cat "$file" >&2
        return 1
    }
}

echo "== compiling examples/counter.c into $work"
"$cc" -O1 -g -o "$work/counter" "$root/examples/counter.c"
cd "$work"

echo "== ckpt ./counter 100   (stdout to $work/before.txt)"
"$ckpt" ./counter 100 > before.txt &
pid=$!
wait_for_lines before.txt 5
echo "== it printed:"; cat before.txt

echo "== kill -TSTP $pid   (the checkpoint signal)"
kill -TSTP "$pid"
# `wait` has no timeout of its own: watch the process with timeout first.
timeout "$wait_s" bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 0.05; done' _ "$pid" || {
    echo "demo: the program did not exit after SIGTSTP" >&2
    exit 1
}
status=0
wait "$pid" || status=$?
pid=
echo "== it exited with status $status"
[[ $status -eq 0 ]] || { echo "demo: expected exit status 0" >&2; exit 1; }

echo "== the checkpoint file:"
ls -l counter.ckpt
if command -v file > /dev/null; then file counter.ckpt; fi

echo "== ./counter.ckpt   (for a few lines)"
status=0
timeout 1 ./counter.ckpt > after.txt || status=$?
# timeout's 124 means it had to stop the counter, which counts forever: that is the plan.
if [[ $status -ne 124 ]]; then
    echo "demo: ./counter.ckpt ended by itself with status $status; it printed:" >&2
    cat after.txt >&2
    exit 1
fi
cat after.txt

last=$(tail -n 1 before.txt)
first=$(head -n 1 after.txt)
echo "== last line before the checkpoint: $last; first line after restart: ${first:-(none)}"
if [[ $first != "$((last + 1))" ]]; then
    echo "demo: FAILED: expected $((last + 1)) after restart" >&2
    exit 1
fi
echo "== the count continued: ok"
