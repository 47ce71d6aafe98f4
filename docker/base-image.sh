#!/usr/bin/env bash
# Make a local Debian bookworm base image with Python 3.11 (for hosts that cannot pull from a registry):
# debootstrap from Debian's package mirror, trimmed, then `podman import`.
#   docker/base-image.sh [IMAGE]     (default localhost/carmask-base:bookworm; needs root, debootstrap, podman)
set -euo pipefail
image=${1:-localhost/carmask-base:bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
if podman image exists "$image"; then
    echo "base image $image exists"
    exit 0
fi
root=$(mktemp -d /var/tmp/carmask-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv bookworm "$root" "$mirror"
# Trim what a service container never reads: package caches, docs, man pages, locales.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/* "$root"/usr/share/info/*
tar -C "$root" -c . | podman import --change 'CMD ["/bin/bash"]' - "$image"
podman image ls "$image"
