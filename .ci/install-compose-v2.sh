#!/usr/bin/env bash
# Installs Debian trixie's docker-compose (v2) and docker-buildx packages as Docker CLI plugins.
# Their binaries need only libc, so they run on bookworm; they come from the mirror apt already uses,
# checked as apt checks them: InRelease signed by a Debian archive key, Packages.xz by InRelease, each .deb by Packages.
set -euo pipefail

plugins=/usr/local/lib/docker/cli-plugins
if docker compose version >/dev/null 2>&1 && docker buildx version >/dev/null 2>&1; then
  exit 0
fi

# From the gpgv and debian-archive-keyring packages (.ci/run installs them).
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
mirror="$(grep -hm1 -E '^URIs: .*/debian/?$' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}')"
mirror="${mirror:-http://deb.debian.org/debian}"
mirror="${mirror%/}"
index=main/binary-amd64/Packages.xz
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The SHA256 that the verified Release file lists for an index file.
release_sha256() { awk -v f="$1" '/^SHA256:/ {s = 1; next} /^[^ ]/ {s = 0} s && $3 == f {print $1; exit}' "$2"; }
# A field of a package's stanza in the verified Packages index.
package_field() {
  awk -v p="$1" -v k="$2:" '$1 == "Package:" {hit = ($2 == p)} hit && $1 == k {print $2; exit}' "$3"
}
# Fails unless the file's SHA256 is the expected one, and an expected one exists.
check_sha256() { [ -n "$1" ] && echo "$1  $2" | sha256sum --quiet -c -; }

curl -fsSL -o "$work/InRelease" "$mirror/dists/trixie/InRelease"
gpgv --quiet --keyring "$keyring" --output "$work/Release" "$work/InRelease"
curl -fsSL -o "$work/Packages.xz" "$mirror/dists/trixie/$index"
check_sha256 "$(release_sha256 "$index" "$work/Release")" "$work/Packages.xz"
xz -d "$work/Packages.xz"

mkdir -p "$plugins"
for package in docker-compose docker-buildx; do
  curl -fsSL -o "$work/$package.deb" "$mirror/$(package_field "$package" Filename "$work/Packages")"
  check_sha256 "$(package_field "$package" SHA256 "$work/Packages")" "$work/$package.deb"
  dpkg-deb -x "$work/$package.deb" "$work/$package"
  install -m 0755 "$work/$package/usr/libexec/docker/cli-plugins/$package" "$plugins/$package"
done
docker compose version
docker buildx version
