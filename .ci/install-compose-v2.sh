#!/usr/bin/env bash
# Installs Debian trixie's docker-compose (v2) and docker-buildx packages as Docker CLI plugins.
# Their binaries need only libc, so they run on bookworm; they come from the mirror apt already uses.
set -euo pipefail

plugins=/usr/local/lib/docker/cli-plugins
if docker compose version >/dev/null 2>&1 && docker buildx version >/dev/null 2>&1; then
  exit 0
fi

mirror="$(grep -hm1 -E '^URIs: .*/debian/?$' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}')"
mirror="${mirror:-http://deb.debian.org/debian}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

curl -fsSL "$mirror/dists/trixie/main/binary-amd64/Packages.xz" | xz -d >"$work/Packages"
mkdir -p "$plugins"
for package in docker-compose docker-buildx; do
  filename="$(awk -v p="$package" '$1 == "Package:" {hit = ($2 == p)} hit && $1 == "Filename:" {print $2; exit}' "$work/Packages")"
  curl -fsSL -o "$work/$package.deb" "$mirror/$filename"
  dpkg-deb -x "$work/$package.deb" "$work/$package"
  install -m 0755 "$work/$package/usr/libexec/docker/cli-plugins/$package" "$plugins/$package"
done
docker compose version
docker buildx version
