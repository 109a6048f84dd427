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

skip() {
    echo "install-browser: WARNING: $*" >&2
    echo "install-browser: Chromium NOT installed; the browser tests cannot run." >&2
    exit 0
}

command -v apt-get >/dev/null 2>&1 || skip "apt-get not found (not a Debian/Ubuntu system)."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        skip "not root and no passwordless sudo."
    fi
fi

APT_OPTS=(-y -q --no-install-recommends)
cand=$(apt-cache policy chromium 2>/dev/null | awk '/Candidate:/ {print $2}')
if [ -z "$cand" ] || [ "$cand" = "(none)" ]; then
    echo "install-browser: running apt-get update ..."
    $SUDO apt-get update -q || skip "apt-get update failed."
fi
echo "install-browser: installing ${PKGS[*]} ..."
if ! $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install "${APT_OPTS[@]}" "${PKGS[@]}"; then
    $SUDO apt-get update -q || skip "apt-get update failed."
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install "${APT_OPTS[@]}" "${PKGS[@]}" \
        || skip "apt-get install ${PKGS[*]} failed."
fi
command -v chromium >/dev/null 2>&1 || skip "installed, but no chromium on the PATH."
echo "install-browser: $(chromium --version 2>/dev/null | tail -1)"
exit 0
