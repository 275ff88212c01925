#!/usr/bin/env bash
# The VM test's Debian packages (installed once, only those missing): qemu (TCG), qemu-img, cloud-localds for the
# NoCloud seed, debootstrap and mkfs.ext4 for the image; plus the stand-ins' own (scripts/system-deps.sh).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bash "$HERE/../system-deps.sh"
PACKAGES=(qemu-system-x86 qemu-utils cloud-image-utils debootstrap e2fsprogs)
missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "local-vm deps: installing ${missing[*]}"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
