#!/usr/bin/env bash
# Installs and starts the system parts jepsy's suites and tests use, on
# Debian/Ubuntu: etcd, Redis (+ Sentinel), ZooKeeper, sshd, iptables,
# dockerd, debootstrap, gcc.  Idempotent; safe to run again.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

PKGS=(etcd-server etcd-client redis-server redis-sentinel zookeeper openssh-server openssh-client
      iptables iproute2 procps psmisc docker.io debootstrap gcc libc6-dev python3-venv chromium)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Debian packages start their own services on some machines; jepsy runs
# its own daemons per node, so stop the system-wide ones if they are running.
for svc in redis-server redis-sentinel etcd zookeeper; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    $SUDO systemctl stop "$svc" || true
  fi
done

# dockerd: start one if none answers (a new machine has no running engine).
if command -v dockerd >/dev/null 2>&1 && ! timeout 5 docker info >/dev/null 2>&1; then
  echo "starting dockerd"
  $SUDO mkdir -p /var/log/jepsy
  $SUDO sh -c 'nohup dockerd >/var/log/jepsy/dockerd.log 2>&1 </dev/null &'
  for _ in $(seq 1 60); do
    timeout 5 docker info >/dev/null 2>&1 && break
    sleep 1
  done
  timeout 5 docker info >/dev/null 2>&1 || { echo "dockerd did not come up; see /var/log/jepsy/dockerd.log"; exit 1; }
fi
$SUDO mkdir -p -m 0755 /run/sshd
echo "system ready"
