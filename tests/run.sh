#!/usr/bin/env bash
# Installs what the test suite needs (Debian packages, the project with its test extras) and
# runs it. README's second command; .ci/run calls exactly this.
# Python packages come pinned from constraints.txt, so a fresh clone resolves the same versions
# every time (refreshed by .ci/refresh-constraints). MES_EDGE_PYTHON picks the interpreter
# (default: python3, i.e. the system's pip); .ci/refresh-constraints passes a fresh venv's.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${MES_EDGE_PYTHON:-python3}"

SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

need=()
[ -x /usr/sbin/mosquitto ] || command -v mosquitto >/dev/null 2>&1 || need+=(mosquitto)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# A CJK font, so the Simplified Chinese tablet pages render in the browser tests' screenshots.
[ -n "$(fc-list :lang=zh 2>/dev/null)" ] || need+=(fonts-wqy-microhei)
if [ "${#need[@]}" -gt 0 ]; then
    echo "tests/run.sh: installing ${need[*]} from Debian's packages"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

"$python" -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]'

# A skipped test is a failure here (tests/conftest.py): a clean run has zero skips.
export MES_EDGE_NO_SKIPS=1
set +e
"$python" -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    echo "tests/run.sh: pytest collected no tests - that is a failure here" >&2
    exit 1
fi
exit "$rc"
