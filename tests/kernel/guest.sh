#!/bin/sh
# Runs in the guest, as root, from the worktree (tests/kernel/init starts it): load the test TSM
# module on the lane's emulated endpoints, then run the checks with the project's .venv.
# The result goes to /out (a writable 9p share of build/kernel/run): summary, rc, log.
echo "guest: Linux $(uname -r) up $(cut -d' ' -f1 /proc/uptime) s"
finish() { echo "$1" >/out/summary; echo "$2" >/out/rc; exit 0; }
# The Debian kernel's configuration where a tool looks for it (the package ships it with the headers).
[ -n "$TDISP_KCONFIG" ] && cp "$TDISP_KCONFIG" "/boot/config-$(uname -r)"
# Every PCIe endpoint behind a root port: the lane's e1000e, two nvme and a virtio-rng.
BDFS=$(for d in /sys/bus/pci/devices/*; do
    case "$(basename "$(dirname "$(readlink -f "$d")")")" in 0000:00:*) echo "${d##*/}";; esac
done | grep -v '^0000:00:' | paste -sd, -)
[ -n "$BDFS" ] || finish "0 passed, 1 failed" 1
insmod "$TDISP_KO" "bdfs=$BDFS" || finish "0 passed, 1 failed" 1
modprobe e1000e || finish "0 passed, 1 failed" 1
export TDISP_BDFS="$BDFS" PYTHONDONTWRITEBYTECODE=1 ANSIBLE_CONFIG="$PWD/ansible.cfg" \
    ANSIBLE_LOCAL_TEMP=/tmp/ansible-local ANSIBLE_REMOTE_TEMP=/tmp/ansible-remote \
    ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 PATH="$PWD/.venv/bin:$PATH"
.venv/bin/python tests/kernel/guest_checks.py 2>&1 | tee /out/log
