#!/usr/bin/env bash
# Installs the Debian packages that the tests and the demo use, and only those that are missing, so a rerun
# costs a second. Needs root (or sudo). Each group says why it is needed:
#   cloud-init                      validate the node's rendered #cloud-config with cloud-init's own schema
#   keystone, swift*, uwsgi*, ...   a real OpenStack Keystone + Swift on 127.0.0.1 standing in for CHI@TACC
#   memcached                       the Swift proxies' cache, as in every deployed Swift
#   rclone, fuse3                   the load stage's uploader, and the read-only FUSE mount of the container
#   openssh-server, openssh-client  an sshd on 127.0.0.1 standing in for the KVM@TACC node
# `npm run setup` runs it (the README's and .ci/run's explicit step). With --check it installs nothing: it
# lists what is missing and exits 1 (`npm test` and `npm run test:e2e` check first, so a missing package
# fails at once with the fix instead of as a suite's odd error).
# With package names as arguments, installs those packages instead (scripts/local-cloud/deps.sh: the local KVM@TACC's).
set -euo pipefail
check_only=
if [ "${1:-}" = --check ]; then check_only=1; shift; fi

PACKAGES=(
  cloud-init
  keystone python3-keystonemiddleware uwsgi-core uwsgi-plugin-python3
  swift swift-proxy swift-account swift-container swift-object python3-swiftclient python3-openstackclient memcached
  rclone fuse3
  openssh-server openssh-client
)
[ $# -eq 0 ] || PACKAGES=("$@")

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

if [ -n "$check_only" ]; then
  echo "system-deps: missing Debian packages: ${missing[*]}; install them with: npm run setup (as root, or with sudo)" >&2
  exit 1
fi

SUDO=
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "system-deps: missing ${missing[*]}; run this script as root" >&2; exit 1; }
  SUDO=sudo
fi

# Debian's service packages try to start their daemons on install; the stand-ins run their own, on their own
# ports and state. A policy-rc.d that says 101 ("action forbidden") stops that. Only ours is removed again.
policy=/usr/sbin/policy-rc.d
ours=
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod 755 "$policy"
  ours=1
fi
trap '[ -n "$ours" ] && $SUDO rm -f "$policy"' EXIT

echo "system-deps: installing ${#missing[@]} missing packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "system-deps: done"
