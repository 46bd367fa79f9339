#!/usr/bin/env bash
# Fresh machine to first answer: install what is missing, build, start a demo
# Python target, and run `pyxray stacks` on it.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/deps.sh"
"$top/scripts/build.sh" "$top/build" >/dev/null
# The newest Python with DWARF pyxray supports; Debian's stripped python3 is
# the fallback (built-in layout tables for it are still to come).
py=""
for c in $(ls -d /root/.pyenv/versions/3.1[0-3]*/bin/python3.1[0-3] /root/.pyenv/versions/3.[89]*/bin/python3.[89] 2>/dev/null | sort -V -r); do
  py=$c; break
done
py=${py:-/usr/bin/python3}
truth=$(mktemp /tmp/pyxray-demo.XXXXXX.json)
"$py" "$top/fixtures/stacks_target.py" "$truth" --threads 3 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true; rm -f "$truth"' EXIT
for _ in $(seq 100); do [ -s "$truth" ] && break; sleep 0.1; done
echo "\$ pyxray stacks $pid --context 1   # demo target: $py"
"$top/build/pyxray" stacks "$pid" --context 1
