#!/usr/bin/env bash
# `make image`: build deploy/Containerfile without a daemon (buildah, chroot isolation,
# vfs storage: works as root inside an unprivileged container, as on the CI machines).
#
# Base image: BASE_IMAGE if set; else docker.io/library/debian:bookworm-slim if a
# container registry answers; else a Debian bookworm minbase bootstrapped from Debian's
# package archive (debootstrap) and kept as localhost/debian:bookworm-slim.
# A TLS-intercepting proxy's CA (PIP_CERT / SSL_CERT_FILE) reaches pip as a build
# secret, never as a layer.
set -euo pipefail
cd "$(dirname "$0")/../.."

VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)"
TAG="${IMAGE:-registry.local/kopru:${VERSION}}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
B=(buildah --storage-driver vfs)

need() {  # need COMMAND PACKAGE
  command -v "$1" >/dev/null && return
  echo "installing $2 (Debian)"
  if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}

need buildah buildah
base="${BASE_IMAGE:-}"
if [ -z "$base" ]; then
  base=docker.io/library/debian:bookworm-slim
  if ! "${B[@]}" pull -q "$base" >/dev/null 2>&1; then
    echo "no container registry reachable for $base: bootstrapping a Debian base"
    base=localhost/debian:bookworm-slim
    if ! "${B[@]}" images --quiet "$base" 2>/dev/null | grep -q .; then
      need debootstrap debootstrap
      rootfs="$(mktemp -d)"
      debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >/dev/null
      rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
      ctr="$("${B[@]}" from scratch)"
      mnt="$("${B[@]}" mount "$ctr")"
      cp -a "$rootfs"/. "$mnt"/
      "${B[@]}" umount "$ctr" >/dev/null
      "${B[@]}" commit -q "$ctr" "$base" >/dev/null
      "${B[@]}" rm "$ctr" >/dev/null
      rm -rf "$rootfs"
    fi
  fi
fi

secret=()
ca="${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}"
if [ -n "$ca" ] && [ -s "$ca" ]; then secret=(--secret "id=ca,src=$ca"); fi

echo "building $TAG from $base"
"${B[@]}" bud --isolation chroot --layers=false "${secret[@]}" \
  --build-arg "BASE_IMAGE=$base" -f deploy/Containerfile -t "$TAG" .
"${B[@]}" inspect --format \
  'built {{.FromImage}}: entrypoint {{.OCIv1.Config.Entrypoint}} cmd {{.OCIv1.Config.Cmd}} user {{.OCIv1.Config.User}}' \
  "$TAG"
