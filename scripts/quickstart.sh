#!/usr/bin/env bash
# Quick start: install what is missing on a fresh Debian/Ubuntu machine, then
# run the main job: the etcd register test with partitions on local network
# namespace hosts.  Extra arguments go to `jepsy test`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-system.sh
python3 -m pip install -q -e '.[dev]'
exec jepsy test --db etcd --workload register --nemesis partition --time-limit 30 "$@"
