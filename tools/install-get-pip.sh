#!/usr/bin/env bash
# Install tools/get_pip_standin.py where ansible-test looks for its cached pip bootstrap
# script, for the pip version the installed ansible-test asks for.
set -euo pipefail
py=${1:?usage: install-get-pip.sh VENV_PYTHON}
here=$(cd "$(dirname "$0")" && pwd)
ver=$("$py" - <<'PY'
from ansible_test._internal.python_requirements import get_venv_packages
class _P:  # only .version is read
    version = ""
print(get_venv_packages(_P())["pip"])
PY
)
dest="$HOME/.ansible/test/cache/get_pip_${ver//./_}.py"
mkdir -p "$(dirname "$dest")"
# Atomically (copy, then rename): an ansible-test run side by side may be reading it.
if ! cmp -s "$here/get_pip_standin.py" "$dest" 2>/dev/null; then
    cp "$here/get_pip_standin.py" "$dest.$$"
    mv -f "$dest.$$" "$dest"
fi
