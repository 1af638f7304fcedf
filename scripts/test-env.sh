#!/usr/bin/env bash
# Installs the Debian packages the integration tests drive and makes sure the services they talk to
# run. Idempotent: a second run installs nothing.
set -euo pipefail

# podman…busybox-static: the renderer's checks against Podman 4.3; systemd-container, gcc,
# libc6-dev: the nspawn devices of the agent's integration tests (docs/device-lab.md); chromium and
# fonts: the dashboard's browser tests; docker-registry: the local registry of the devices'
# auto-update tests; openssh-server: the SSH enrollment tests and the SSH push benchmark; strace:
# the agent's durable-write test (packages/agent/src/durable), which kills a write at each step;
# bash-completion, zsh, fish: the shells `podfleet completion` is tested in.
PACKAGES=(podman runc conmon uidmap netavark aardvark-dns catatonit debootstrap busybox-static systemd
  systemd-container gcc libc6-dev docker-registry openssh-server strace
  chromium fonts-liberation fonts-dejavu-core bash-completion zsh fish)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "podman $(podman --version | awk '{print $3}'), $(systemd-analyze --version | head -1)"
