#!/usr/bin/env bash
# Gradescope image setup (runs once, as root, in /autograder/source).
# CPU-only torch and torchvision of the versions the course uses, the other requirements, and the
# unprivileged user the sandbox runs student code as.
set -euxo pipefail
SOURCE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="${AUTOGRADER_ROOT:-/autograder}"

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends python3 python3-pip python3-venv

python3 -m pip install --upgrade pip
python3 -m pip install torch==2.14.1 torchvision==0.29.1 --index-url https://download.pytorch.org/whl/cpu
# The rest of requirements.txt (torch lines dropped: the CPU wheels above satisfy them).
grep -v -E '^(torch|torchvision)==' "$SOURCE/requirements.txt" > /tmp/hw4-requirements.txt
python3 -m pip install -r /tmp/hw4-requirements.txt

# The sandbox's user: no home, no login, no password.
id -u hw4sandbox >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin hw4sandbox

# Student code runs as hw4sandbox: it must not read the reference, the tests or the hidden
# fixtures, nor write the results. The grader hides them in a private mount namespace per call;
# where the platform refuses mounts, file permissions do it: make every secret of the engine's
# tree (the same list the sandbox uses: all but autograder/, the provided code and
# fixtures/embedded) unreadable to others. Root (the grader) keeps full access.
(cd "$SOURCE" && python3 -c 'from autograder.sandbox import secrets; secrets.restrict_permissions(secrets.secret_paths())')
mkdir -p "$ROOT/results"
chmod 700 "$ROOT/results"
# The engine and the provided code stay readable: the sandbox imports them.
chmod -R o+rX "$SOURCE/autograder" "$SOURCE/student"
