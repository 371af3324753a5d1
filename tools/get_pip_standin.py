"""Local stand-in for the pip bootstrap script that ansible-test downloads.

ansible-test bootstraps pip into each virtual environment it creates by running
``~/.ansible/test/cache/get_pip_<version>.py`` with pip-install arguments (plus the
get-pip-only flags ``--no-setuptools`` and ``--no-wheel``). The real script comes from
ci-files.testing.ansible.com, which this network cannot reach. This stand-in does the same
job with what every CPython ships: ``ensurepip``, then ``pip install`` of the requested
packages from the configured package index.
"""

import subprocess
import sys

GET_PIP_ONLY = {"--no-setuptools", "--no-wheel", "--no-pip"}


def main():
    args = [a for a in sys.argv[1:] if a not in GET_PIP_ONLY]
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"])
    if args:
        subprocess.check_call([sys.executable, "-m", "pip", "install"] + args)


if __name__ == "__main__":
    main()
