# Sourced by .ci/install-slurm.sh and .ci/install-browser.sh. Defines
#   apt_install TAG CONSEQUENCE PACKAGE...
# which installs Debian packages as root (or with passwordless sudo), running
# `apt-get update` first only when a package has no install candidate and once more if the
# install fails (a stale index gives 404s), and
#   skip REASON
# which prints REASON and CONSEQUENCE prefixed with TAG and exits the calling script with 0:
# the install scripts never fail by themselves (the tests that need the packages then fail
# under LOTTERY_MIA_REQUIRE_SYSTEM=1, what CI runs).

skip() {
    echo "${CI_TAG}: WARNING: $*" >&2
    echo "${CI_TAG}: ${CI_CONSEQUENCE}" >&2
    exit 0
}

apt_install() {
    CI_TAG=$1
    CI_CONSEQUENCE=$2
    shift 2
    local pkgs=("$@") sudo="" p cand need_update=0
    local opts=(-y -q --no-install-recommends -o Dpkg::Options::=--force-confdef
                -o Dpkg::Options::=--force-confold)
    command -v apt-get >/dev/null 2>&1 || skip "apt-get not found (not a Debian/Ubuntu system)."
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo="sudo -n"
        else
            skip "not root and no passwordless sudo."
        fi
    fi
    for p in "${pkgs[@]}"; do
        cand=$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')
        if [ -z "$cand" ] || [ "$cand" = "(none)" ]; then
            need_update=1
            break
        fi
    done
    if [ "$need_update" -eq 1 ]; then
        echo "${CI_TAG}: running apt-get update ..."
        $sudo apt-get update -q || skip "apt-get update failed."
    fi
    echo "${CI_TAG}: installing ${pkgs[*]} ..."
    if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install "${opts[@]}" "${pkgs[@]}"; then
        $sudo apt-get update -q || skip "apt-get update failed."
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install "${opts[@]}" "${pkgs[@]}" \
            || skip "apt-get install ${pkgs[*]} failed."
    fi
}
