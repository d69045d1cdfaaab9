#!/usr/bin/env bash
# Make a local stand-in for the base image that BentoML's generated Dockerfile names (`FROM python:3.11-slim`),
# for machines that cannot pull from a registry: Debian bookworm (its python3 is 3.11) made with debootstrap from
# this machine's apt mirror, imported into podman's storage under the name the Dockerfile asks for.
#
#   deploy/base_image.sh [IMAGE_NAME]        (default docker.io/library/python:3.11-slim)
#
# Like the official python images it has python3, pip and venv, no PEP 668 marker (the Dockerfile runs
# `pip install uv`), and SSL_CERT_FILE set so that uv trusts the CA bundle (mounted from the host by
# deploy/containers.conf during the build). Needs root, debootstrap and podman; deploy/image.py calls it.
set -euo pipefail

NAME="${1:-docker.io/library/python:3.11-slim}"
case "$NAME" in
  *python:3.11-slim) SUITE=bookworm ;;
  *) echo "base_image.sh: no stand-in recipe for '$NAME' (only python:3.11-slim)" >&2; exit 2 ;;
esac

# The Debian mirror this machine's apt uses (deb822 .sources first, then the one-line format).
mirror=""
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] || continue
  mirror=$(awk '/^URIs:/ {print $2; exit}' "$f" | grep -v -- '-security' || true)
  [ -n "$mirror" ] && break
done
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
  mirror=$(awk '$1 == "deb" && $2 !~ /security/ {print ($2 ~ /^\[/ ? $3 : $2); exit}' /etc/apt/sources.list)
fi
mirror="${mirror:-http://deb.debian.org/debian}"

rootfs=$(mktemp -d /var/tmp/wine-base-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT

echo "base_image.sh: debootstrap $SUITE from $mirror" >&2
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
  "$SUITE" "$rootfs" "$mirror" >/dev/null

# What the official python image does not carry: the PEP 668 marker, apt's package cache, docs.
rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* \
  "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/var/log/*
# `python` as in the official image (Debian only has python3)
ln -sf /usr/bin/python3 "$rootfs"/usr/local/bin/python

tar --numeric-owner -C "$rootfs" -cf - . | podman import \
  --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'LABEL org.opencontainers.image.base.name="local stand-in for python:3.11-slim: debootstrap debian bookworm"' \
  --change 'CMD ["python3"]' \
  - "$NAME" >/dev/null
echo "base_image.sh: made $NAME ($(podman image inspect --format '{{.Size}}' "$NAME") bytes)" >&2
