#!/usr/bin/env bash
# Everything the book and the tests need, on a fresh machine; quick when it is already done.
#
#   1. a virtual environment (.venv, made with python3.11) with the package installed editable,
#      with its extras (default: dev = the book tools + pytest), at the exact versions of
#      constraints.txt (those that produced the committed results);
#   2. the Jupyter kernel "python3" of that environment, which the book build and papermill use;
#   3. Fashion-MNIST, the data of the CPU analogue: Debian's package dataset-fashion-mnist when
#      running as root with apt, otherwise torchvision's download through ddgd.protocol.data.
#
# Steps 1-2 are skipped when the stamp file in the environment matches pyproject.toml,
# constraints.txt, the extras and the Python version; step 3 is skipped when the data is already there.
#
# Environment variables: PYTHON (interpreter for a new venv, default python3.11, the one the results
# were made with; 3.12 and 3.13 are supported too, and run by .github/workflows/ci.yml), VENV (default
# .venv), EXTRAS (default dev), TORCH_INDEX (an extra pip index, e.g.
# https://download.pytorch.org/whl/cpu for CPU-only torch wheels).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3.11}"
VENV="${VENV:-.venv}"
EXTRAS="${EXTRAS:-dev}"
STAMP="$VENV/.ddgd-setup-stamp"
DEBIAN_FASHION=/usr/share/datasets/fashion-mnist

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

make_venv() {
    if [ -x "$VENV/bin/python" ]; then
        return
    fi
    command -v "$PYTHON" >/dev/null 2>&1 \
        || die "$PYTHON not found: install Python 3.11 or run with PYTHON=/path/to/python3.11 (or 3.12, 3.13)"
    "$PYTHON" -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))' \
        || die "$PYTHON is not Python 3.11, 3.12 or 3.13 (requires-python in pyproject.toml): set PYTHON=..."
    say "creating $VENV with $PYTHON"
    "$PYTHON" -m venv "$VENV"
}

wanted_stamp() {
    # what the installed environment was made from: any change re-runs the install
    {
        sha256sum pyproject.toml constraints.txt
        echo "extras=$EXTRAS torch_index=${TORCH_INDEX:-}"
        "$VENV/bin/python" -c 'import sys; print(sys.version)'
    } | sha256sum | cut -d' ' -f1
}

install_package() {
    local want
    want="$(wanted_stamp)"
    if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
        say "$VENV is up to date"
        return
    fi
    local extra=()
    if [ -n "${TORCH_INDEX:-}" ]; then
        extra=(--extra-index-url "$TORCH_INDEX")
    fi
    say "installing the package with extras [$EXTRAS] into $VENV"
    # -c: the exact versions of the committed results; pyproject.toml itself only states ranges
    "$VENV/bin/python" -m pip install -q "${extra[@]}" -c constraints.txt -e ".[$EXTRAS]"
    # the kernel the notebooks name (python3), pointing at this environment's interpreter
    "$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 >/dev/null
    printf '%s\n' "$want" > "$STAMP.tmp"
    mv "$STAMP.tmp" "$STAMP"
}

fashion_present() {
    [ -f "$DEBIAN_FASHION/train-images-idx3-ubyte.gz" ] && [ -f "$DEBIAN_FASHION/t10k-labels-idx1-ubyte.gz" ]
}

fetch_data() {
    if fashion_present; then
        say "Fashion-MNIST found in $DEBIAN_FASHION"
        return
    fi
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing Debian's dataset-fashion-mnist"
        if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1; then
            DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null 2>&1 || true
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || true
        fi
        if fashion_present; then
            return
        fi
        say "the Debian package is not available here: falling back to torchvision's download"
    fi
    say "downloading Fashion-MNIST through torchvision (once; cached afterwards)"
    "$VENV/bin/python" - <<'PY' || die "could not get Fashion-MNIST: install the Debian package dataset-fashion-mnist or allow the download"
from ddgd.protocol.data import load_real

for split in ("train", "test"):
    load_real("fashion-mnist", split, resolution=32, download=True)
PY
}

make_venv
install_package
fetch_data
say "done"
