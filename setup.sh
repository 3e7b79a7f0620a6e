#!/usr/bin/env bash
# Gradescope image setup (runs once, as root, in /autograder/source).
# A virtual environment of its own at $ROOT/venv (Ubuntu 24.04's and Debian 12's system Python
# refuse pip installs, PEP 668), holding CPU-only torch and torchvision of the versions the
# course uses and the other requirements; then the unprivileged user the sandbox runs student
# code as. run_autograder uses that environment's Python.
#
# Variables (the defaults are Gradescope's; the project's tests override them):
#   AUTOGRADER_ROOT     the /autograder-like root (default /autograder)
#   HW4_SYSTEM_PYTHON   the Python that creates the environment, 3.10 to 3.13 (default python3)
#   HW4_TORCH           the torch requirements (default: the course's versions)
#   HW4_TORCH_INDEX     where they come from: an index URL, or empty for pip's configured
#                       sources (default: PyTorch's CPU-only index, which Gradescope reaches)
set -euxo pipefail
SOURCE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="${AUTOGRADER_ROOT:-/autograder}"
SYSTEM_PYTHON="${HW4_SYSTEM_PYTHON:-python3}"
TORCH="${HW4_TORCH:-torch==2.14.1 torchvision==0.29.1}"
TORCH_INDEX="${HW4_TORCH_INDEX-https://download.pytorch.org/whl/cpu}"
VENV="$ROOT/venv"

# Ubuntu's python3 comes without venv and ensurepip (python3-venv): install them only when missing.
if ! "$SYSTEM_PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends python3 python3-venv
fi
"$SYSTEM_PYTHON" -c 'import sys; assert (3, 10) <= sys.version_info[:2] <= (3, 13), sys.version' \
  || { echo "setup.sh: $SYSTEM_PYTHON is not Python 3.10 to 3.13" >&2; exit 1; }

"$SYSTEM_PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --no-input)
"${PIP[@]}" --upgrade pip
# shellcheck disable=SC2086  # TORCH is a list of requirements
if [ -n "$TORCH_INDEX" ]; then
  "${PIP[@]}" $TORCH --index-url "$TORCH_INDEX"
else
  "${PIP[@]}" $TORCH
fi
# The rest of requirements.txt: its torch lines are dropped, the CPU wheels above satisfy them.
REQUIREMENTS="$(mktemp)"
grep -v -E '^(torch|torchvision)([=<>!~ ;]|$)' "$SOURCE/requirements.txt" > "$REQUIREMENTS"
"${PIP[@]}" -r "$REQUIREMENTS"
rm -f "$REQUIREMENTS"
# The sandbox user reads the environment (the Python it runs under).
chmod -R o+rX "$VENV"

# The sandbox's user: no home, no login, no password. (The grader also creates it when missing.)
id -u hw4sandbox >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin hw4sandbox

# Student code runs as hw4sandbox: it must not read the reference, the tests or the hidden
# fixtures, nor write the results. The grader hides them in a private mount namespace per call;
# where the platform refuses mounts, file permissions do it: make every secret of the engine's
# tree (the same list the sandbox uses: all but autograder/, the provided code and
# fixtures/embedded) unreadable to others. Root (the grader) keeps full access.
(cd "$SOURCE" && "$VENV/bin/python" -c 'from autograder.sandbox import secrets; secrets.restrict_permissions(secrets.secret_paths())')
mkdir -p "$ROOT/results"
chmod 700 "$ROOT/results"
# The engine and the provided code stay readable: the sandbox imports them.
chmod -R o+rX "$SOURCE/autograder" "$SOURCE/student"
