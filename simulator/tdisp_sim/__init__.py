"""tdisp-sim: a simulator of the Linux PCI TSM/TDISP sysfs ABI (see docs/simulator.md)."""
