#!/usr/bin/env bash
# Builds a local stand-in for the official python:*-slim image when no registry is reachable:
# a debootstrap of the same Debian release with python3 and python3-venv, trusting this machine's CA bundle
# (containers reach PyPI only through a TLS-inspecting proxy).
set -euo pipefail

tag="${1:?usage: standin-python-image.sh IMAGE_TAG}"
suite="${DEBIAN_SUITE:-bookworm}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
ca_bundle=/etc/ssl/certs/ca-certificates.crt

if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "stand-in image $tag already present"
  exit 0
fi

rootfs="$(mktemp -d)"
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates "$suite" "$rootfs" "$mirror" >/dev/null
cp "$ca_bundle" "$rootfs$ca_bundle"
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
tar -C "$rootfs" -c . | docker import \
  -c "ENV PIP_CERT=$ca_bundle SSL_CERT_FILE=$ca_bundle REQUESTS_CA_BUNDLE=$ca_bundle LANG=C.UTF-8" \
  -c 'CMD ["python3"]' - "$tag" >/dev/null
echo "built stand-in image $tag"
