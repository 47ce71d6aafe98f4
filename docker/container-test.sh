#!/usr/bin/env bash
# Build the CPU image with podman, run it, wait for /ready, segment a photo through it, tear it down.
#   make container-test        (needs root, podman, debootstrap for the base image; see README "Containers")
# Prints the image size and the container's POST /segment latency beside the service run directly.
set -euo pipefail
cd "$(dirname "$0")/.."
# Prerequisites first, all named at once, with what installs them.
missing=()
for tool in podman buildah runc debootstrap curl; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
    echo "container-test needs: ${missing[*]}" >&2
    echo "on Debian/Ubuntu, as root: apt-get update && apt-get install -y podman buildah runc debootstrap curl" >&2
    exit 2
fi
base=${BASE_IMAGE:-localhost/carmask-base:bookworm}
image=${IMAGE:-localhost/carmask:cpu}
port=${PORT:-18080}
name=carmask-container-test
# Where the host cannot raise resource limits or uses hybrid cgroups (as in this project's sandboxes),
# crun fails; runc with limits at or below the host's works. Override with PODMAN_RUNTIME=crun elsewhere.
runtime=(--runtime "${PODMAN_RUNTIME:-runc}")
limits=(--ulimit nofile=8192:8192 --ulimit nproc=4096:4096)

bash docker/base-image.sh "$base"
bash docker/wheelhouse.sh  # every time: the carmask wheel and its pins must be this checkout's (pip caches)
podman "${runtime[@]}" build --format docker "${limits[@]}" --build-arg BASE_IMAGE="$base" \
    -f docker/Dockerfile -t "$image" .
podman image ls "$image"

podman rm -f "$name" >/dev/null 2>&1 || true
trap 'podman rm -f "$name" >/dev/null 2>&1 || true' EXIT
podman "${runtime[@]}" run -d --name "$name" "${limits[@]}" -p "127.0.0.1:$port:8000" --cpus 2 --memory 1g "$image"
for _ in $(seq 1 120); do
    curl -fsS "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && break
    sleep 0.5
done
echo "ready: $(curl -fsS "http://127.0.0.1:$port/ready")"
echo "user in container: $(podman "${runtime[@]}" exec "$name" id -u)"
echo "healthcheck: $(podman "${runtime[@]}" healthcheck run "$name" >/dev/null 2>&1 && echo healthy || echo unhealthy)"
.venv/bin/python docker/check_container.py "http://127.0.0.1:$port"
