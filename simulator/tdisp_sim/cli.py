"""Command line of the simulator (placeholder until the simulator lands)."""
import sys


def main(argv=None):
    print("tdisp-sim: not built yet", file=sys.stderr)
    return 2
