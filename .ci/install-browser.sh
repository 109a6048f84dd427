#!/usr/bin/env bash
# Install headless Chromium (Debian's package) for the report's browser tests. Opt-in only:
# `make install-browser`, `make test-full` (what CI runs).
#
# Idempotent: returns immediately when Chromium is already installed. Like
# install-slurm.sh it never fails by itself: without root or apt-get it prints why and
# exits 0; the browser tests are then skipped by `make test` and fail under `make test-full`
# (LOTTERY_MIA_REQUIRE_SYSTEM=1), so CI cannot pass without them.
set -u

PKGS=(chromium fonts-dejavu-core)

if command -v chromium >/dev/null 2>&1; then
    echo "install-browser: Chromium already installed; nothing to do."
    exit 0
fi

# shellcheck source=apt-install.sh
source "$(dirname "$0")/apt-install.sh"
apt_install install-browser "Chromium NOT installed; the browser tests cannot run." "${PKGS[@]}"
command -v chromium >/dev/null 2>&1 || skip "installed, but no chromium on the PATH."
echo "install-browser: $(chromium --version 2>/dev/null | tail -1)"
exit 0
