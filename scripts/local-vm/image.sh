#!/usr/bin/env bash
# Builds (once per machine) a Debian 12 disk image that stands in for Chameleon's CC-Ubuntu24.04 and prints the
# directory holding it: root.qcow2, vmlinuz, initrd.img. Usage: scripts/local-vm/image.sh [--print-dir]
#
# The image is cached OUTSIDE the clone, under $PERSIST_VM_CACHE (default /var/cache/chameleon-persist/vm), in a
# directory named by the hash of this recipe (this file): editing the recipe builds a new image, an unchanged
# recipe reuses the cached one (a second run does not debootstrap again). Concurrent callers are serialised with
# flock; a build is made in a temporary directory and renamed into place only when complete.
#
# What is in it, and why (docs/local-vm.md lists how it differs from CC-Ubuntu24.04):
#   debootstrap bookworm from Debian's archive; kernel (linux-image-cloud-amd64), systemd, cloud-init,
#   openssh-server, sudo; ifupdown + isc-dhcp-client for the one NIC (cloud-init's network config is off);
#   rclone and fuse3 preinstalled, as on CC images; apparmor and needrestart, which CC-Ubuntu24.04 ships;
#   busybox-static (the VM test builds a Docker image from a local rootfs with it: no registry);
#   the .debs that the node's setup script installs (docker.io, nodejs, with their Recommends), downloaded into
#   apt's cache so that cloud-init's installs run for real (dpkg, triggers, services) without fetching them.
#   cloud-init's default user is `cc` with passwordless sudo, as on Chameleon; datasources NoCloud (the VM test)
#   and ConfigDrive/OpenStack (the local cloud's Nova).
# Needs root, debootstrap, qemu-utils, e2fsprogs and network access to deb.debian.org.
set -euo pipefail

CACHE=${PERSIST_VM_CACHE:-/var/cache/chameleon-persist/vm}
MIRROR=${PERSIST_VM_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
DISK_SIZE=12G
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The recipe is this file without its comments: rewording a comment does not rebuild the image.
RECIPE_HASH=$(grep -v '^[[:space:]]*#' "$HERE/image.sh" | sha256sum | cut -c1-16)
OUT="$CACHE/$RECIPE_HASH"

log() { echo "local-vm image: $*" >&2; }

if [ -f "$OUT/complete" ]; then
  log "cached image $OUT (recipe $RECIPE_HASH)"
  echo "$OUT"
  exit 0
fi
[ "$(id -u)" -eq 0 ] || { log "building the image needs root (debootstrap, chroot)"; exit 1; }
for cmd in debootstrap qemu-img mkfs.ext4; do
  command -v "$cmd" >/dev/null || { log "$cmd is missing: apt-get install -y --no-install-recommends debootstrap qemu-utils e2fsprogs"; exit 1; }
done

mkdir -p "$CACHE"
exec 9>"$CACHE/.build.lock"
flock 9
if [ -f "$OUT/complete" ]; then echo "$OUT"; exit 0; fi

BUILD=$(mktemp -d "$CACHE/.build-$RECIPE_HASH.XXXXXX")
ROOT="$BUILD/root"
cleanup() {
  for m in dev/pts dev proc sys; do mountpoint -q "$ROOT/$m" 2>/dev/null && umount -l "$ROOT/$m"; done
  rm -rf "$BUILD"
}
trap cleanup EXIT
start=$(date +%s)

log "debootstrap $SUITE from $MIRROR into $ROOT"
debootstrap --variant=minbase --include=systemd-sysv,dbus,ca-certificates,apt-utils "$SUITE" "$ROOT" "$MIRROR" >"$BUILD/debootstrap.log" 2>&1 \
  || { tail -n 30 "$BUILD/debootstrap.log" >&2; exit 1; }
t_debootstrap=$(($(date +%s) - start))

cat > "$ROOT/etc/apt/sources.list" <<SOURCES
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb http://security.debian.org/debian-security $SUITE-security main
SOURCES
# No daemon starts inside the chroot.
printf '#!/bin/sh\nexit 101\n' > "$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"
mount -t proc proc "$ROOT/proc"
mount -t sysfs sys "$ROOT/sys"
mount --bind /dev "$ROOT/dev"
mount --bind /dev/pts "$ROOT/dev/pts"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"

# The caller's temp dir is not the chroot's: a test run's TMPDIR (/tmp/chameleon-persist-tests-…) does not exist in
# it, and maintainer scripts that call mktemp (apparmor's, openssh-server's) then fail to configure.
in_root() { chroot "$ROOT" env -u TMPDIR -u TMP -u TEMP DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 "$@"; }
log "installing the image's packages"
in_root apt-get update -q >"$BUILD/apt.log" 2>&1
install_packages() {
  in_root apt-get install -y -q --no-install-recommends \
    linux-image-cloud-amd64 initramfs-tools systemd-timesyncd udev kmod \
    cloud-init cloud-guest-utils openssh-server sudo locales netbase ifupdown isc-dhcp-client iproute2 procps less \
    e2fsprogs rclone fuse3 apparmor needrestart busybox-static util-linux >>"$BUILD/apt.log" 2>&1
}
# What dpkg said when a package failed to configure (the tail of the log shows only the later packages).
dpkg_errors() { grep -n -B6 -A4 -E 'dpkg: error|returned error exit status|Errors were encountered' "$BUILD/apt.log" | head -n 80 >&2; }
if ! install_packages; then
  # Say what dpkg said (the log's tail shows only the packages after the failed one), configure what is left, and
  # try once more before giving up.
  log "apt-get install failed; dpkg said:"
  dpkg_errors
  log "configuring what is left (dpkg --configure -a) and trying once more"
  in_root dpkg --configure -a >>"$BUILD/apt.log" 2>&1 || true
  if ! install_packages; then
    cp "$BUILD/apt.log" "$CACHE/last-failed-build.log"
    log "the image's packages did not install; the whole apt log is in $CACHE/last-failed-build.log"
    dpkg_errors
    exit 1
  fi
fi
# The setup script's installs (with and without Recommends: the before/after measurement of issue 14 uses both),
# downloaded only. apt uses a cached .deb when its version and hash match the index it fetches at boot.
in_root apt-get install -y -q --download-only docker.io nodejs >>"$BUILD/apt.log" 2>&1 \
  || { tail -n 30 "$BUILD/apt.log" >&2; exit 1; }
# en_US.UTF-8 generated and set, as on CC images: cloud-init's locale module then has nothing to do (generating
# it at first boot costs time under TCG, and without the locales package the module warns).
sed -i 's/^# *\(en_US.UTF-8 UTF-8\)/\1/' "$ROOT/etc/locale.gen"
in_root locale-gen >>"$BUILD/apt.log" 2>&1
echo 'LANG=en_US.UTF-8' > "$ROOT/etc/default/locale"
t_packages=$(($(date +%s) - start - t_debootstrap))

# Boot: one virtio disk, the classic NIC name, a DHCP stanza (cloud-init's network config is turned off below).
echo '/dev/vda / ext4 defaults,errors=remount-ro 0 1' > "$ROOT/etc/fstab"
cat > "$ROOT/etc/network/interfaces" <<'NET'
source /etc/network/interfaces.d/*
auto lo
iface lo inet loopback
allow-hotplug eth0
iface eth0 inet dhcp
NET
cat > "$ROOT/etc/cloud/cloud.cfg.d/90-chameleon-persist-vm.cfg" <<'CFG'
# chameleon-persist's local VM: a NoCloud seed disk (the VM test) or Nova's config drive / metadata service
# (the local cloud, docs/local-cloud.md); Chameleon's login user.
datasource_list: [NoCloud, ConfigDrive, OpenStack, None]
manage_etc_hosts: true
network:
  config: disabled
system_info:
  default_user:
    name: cc
    gecos: Chameleon Cloud User
    groups: [adm, sudo, systemd-journal]
    sudo: ["ALL=(ALL) NOPASSWD:ALL"]
    shell: /bin/bash
    lock_passwd: true
CFG
echo 'localhost' > "$ROOT/etc/hostname"
# First-boot identity is made at boot, per instance: machine id, ssh host keys.
: > "$ROOT/etc/machine-id"
rm -f "$ROOT/var/lib/dbus/machine-id" "$ROOT"/etc/ssh/ssh_host_*
rm -f "$ROOT/usr/sbin/policy-rc.d" "$ROOT/etc/resolv.conf"
# Keep the downloaded .debs (apt's own cleaning is off in a debootstrap'd tree, but be explicit).
echo 'Binary::apt::APT::Keep-Downloaded-Packages "true"; APT::Keep-Downloaded-Packages "true";' > "$ROOT/etc/apt/apt.conf.d/10keep-debs"
rclone_version=$(in_root rclone version | awk 'NR == 1')
cached_debs=$(ls "$ROOT/var/cache/apt/archives/"*.deb | wc -l)
for m in dev/pts dev proc sys; do umount -l "$ROOT/$m"; done

kernel=$(ls "$ROOT"/boot/vmlinuz-* | sort -V | tail -n 1)
cp "$kernel" "$BUILD/vmlinuz"
cp "$ROOT/boot/initrd.img-${kernel##*/vmlinuz-}" "$BUILD/initrd.img"
log "making the disk ($DISK_SIZE, ext4)"
mkfs.ext4 -q -L root -d "$ROOT" "$BUILD/root.raw" "$DISK_SIZE"
qemu-img convert -O qcow2 "$BUILD/root.raw" "$BUILD/root.qcow2"
rm -f "$BUILD/root.raw"
rm -rf "$ROOT"
t_total=$(($(date +%s) - start))
cat > "$BUILD/recipe.json" <<JSON
{"recipe": "$RECIPE_HASH", "suite": "$SUITE", "rclone": "$rclone_version", "cached_debs": $cached_debs,
 "built_at": "$(date -u +%Y-%m-%dT%H:%M:%SZ)", "seconds": {"debootstrap": $t_debootstrap, "packages": $t_packages, "total": $t_total}}
JSON
touch "$BUILD/complete"
mv "$BUILD" "$OUT"
trap - EXIT
log "built $OUT in ${t_total}s (debootstrap ${t_debootstrap}s, packages ${t_packages}s)"
echo "$OUT"
