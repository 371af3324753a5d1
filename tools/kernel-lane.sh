#!/usr/bin/env bash
# make kernel-test: boot Debian's newest 7.3 kernel under QEMU (TCG) with the host's root
# filesystem shared read-only over 9p (plus a tmpfs overlay), load the test TSM module
# (tests/kernel/tdisp_test_tsm) and run tests/kernel/guest_checks.py against real sysfs.
# Everything downloaded or built is cached under build/kernel/; see docs/kernel-lane.md.
#
# Environment: KERNEL_LANE_TIMEOUT (seconds for the guest, default 1500),
#              KERNEL_LANE_SMP (guest CPUs, default 2), KERNEL_LANE_MEM (MiB, default 2048).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
K=$ROOT/build/kernel
SERIES=7.3
FLAVOUR=amd64
SUITES="experimental sid"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
T0=$(date +%s)
[ -x "$ROOT/.venv/bin/python" ] || { echo "kernel-lane: no .venv: run make env (or make kernel-test)" >&2; exit 1; }

say() { echo "kernel-lane: $*"; }
die() { echo "kernel-lane: $*" >&2; exit 1; }

# --- host tools, from the system's own apt sources ------------------------------------------
need_pkgs=()
need() {  # need COMMAND PACKAGE
    command -v "$1" >/dev/null 2>&1 || need_pkgs+=("$2")
}
need qemu-system-x86_64 qemu-system-x86
need cpio cpio
need xz xz-utils
need depmod kmod
need unshare util-linux
need chroot coreutils
need dpkg-deb dpkg
need apt-get apt
# a static busybox (the package busybox ships a dynamic one)
case "$(LC_ALL=C ldd /bin/busybox 2>&1)" in *"not a dynamic"*) ;; *) need_pkgs+=(busybox-static) ;; esac
[ -f "$KEYRING" ] || need_pkgs+=(debian-archive-keyring)
if [ ${#need_pkgs[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "needs root to install ${need_pkgs[*]}"
    say "installing ${need_pkgs[*]}"
    apt-get install -y -q "${need_pkgs[@]}" >"$K.apt-host.log" 2>&1 || {
        apt-get update -q >>"$K.apt-host.log" 2>&1 || true
        for p in "${need_pkgs[@]}"; do
            apt-get install -y -q "$p" >>"$K.apt-host.log" 2>&1 || die "cannot install package $p (see $K.apt-host.log)"
        done
    }
fi

# --- private apt configuration: Debian's own suites, Debian's keyring -----------------------
mkdir -p "$K"/apt/{etc,lists/partial,cache/archives/partial,state}
[ -f "$K/apt/state/status" ] || : >"$K/apt/state/status"
{
    for s in $SUITES; do
        echo "deb [signed-by=$KEYRING] http://deb.debian.org/debian $s main"
    done
} >"$K/apt/etc/sources.list"
APT=(-o "Dir::Etc::SourceList=$K/apt/etc/sources.list" -o Dir::Etc::SourceParts=/dev/null
     -o "Dir::State=$K/apt/state" -o "Dir::State::Lists=$K/apt/lists"
     -o "Dir::State::status=$K/apt/state/status" -o "Dir::Cache=$K/apt/cache"
     -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null
     -o Dir::Etc::Parts=/dev/null -o APT::Architecture=amd64 -o APT::Architectures=amd64
     -o Acquire::Languages=none -o APT::Install-Recommends=0 -o Debug::NoLocking=1
     -o APT::Sandbox::User=root)

# The package set: the kernel (image, modules), the headers and kbuild for the out-of-tree
# module, and a minimal sid userland with the compiler the kernel was built with (gcc-16) and
# pahole (module BTF), into which the module is built with chroot.
KPKGS=("linux-binary-$SERIES-$FLAVOUR" "linux-modules-$SERIES-$FLAVOUR")
BPKGS=("linux-headers-$SERIES-$FLAVOUR" make dwarves dash bash coreutils sed grep mawk findutils diffutils)
if [ ! -f "$K/debs.done" ]; then
    say "apt (private, $K/apt): update"
    apt-get "${APT[@]}" -q update >"$K/apt.log" 2>&1 || die "apt-get update of the private sources failed (see $K/apt.log)"
    for p in "${KPKGS[@]}" "${BPKGS[@]}"; do
        apt-cache "${APT[@]}" show "$p" >/dev/null 2>&1 || die "package $p not found in Debian $SUITES"
    done
    say "apt: downloading ${KPKGS[*]} ${BPKGS[*]} (with dependencies)"
    apt-get "${APT[@]}" -q -y install --download-only "${KPKGS[@]}" "${BPKGS[@]}" >>"$K/apt.log" 2>&1 \
        || die "apt-get download failed (see $K/apt.log)"
    touch "$K/debs.done"
fi
DEBS=$K/apt/cache/archives
newest_deb() { find "$DEBS" -maxdepth 1 -name "${1}_*.deb" | sort -V | tail -1; }

# --- the kernel: vmlinuz and modules from the packages ----------------------------------------
if [ ! -f "$K/kernel.done" ]; then
    say "extracting the kernel packages"
    rm -rf "$K/kroot"; mkdir -p "$K/kroot"
    for p in "${KPKGS[@]}"; do
        f=$(newest_deb "$p")
        [ -n "$f" ] || die "package $p missing from $DEBS"
        dpkg-deb -x "$f" "$K/kroot"
    done
    kv=$(ls "$K/kroot/usr/lib/modules")
    [ "$(echo "$kv" | wc -w)" = 1 ] || die "expected one kernel in the packages, found: $kv"
    depmod -b "$K/kroot/usr" "$kv" 2>/dev/null
    echo "$kv" >"$K/kernel.release"
    dpkg-deb -f "$(newest_deb "linux-binary-$SERIES-$FLAVOUR")" Version >"$K/kernel.version"
    touch "$K/kernel.done"
fi
KREL=$(cat "$K/kernel.release")
MODDIR=$K/kroot/usr/lib/modules/$KREL

# --- the build root: every downloaded package, unpacked (no maintainer scripts) ---------------
S=$K/sysroot
if [ ! -f "$K/sysroot.done" ]; then
    say "unpacking the build root (gcc, kbuild, headers, pahole)"
    rm -rf "$S"; mkdir -p "$S"/usr/{bin,sbin,lib,lib64} "$S/proc" "$S/tmp"
    for d in bin sbin lib lib64; do ln -s "usr/$d" "$S/$d"; done
    for f in "$DEBS"/*.deb; do
        case "${f##*/}" in linux-binary-*|linux-modules-*) continue ;; esac  # the kernel itself: kroot
        dpkg-deb -x "$f" "$S"
    done
    rm -rf "$S/usr/share/doc" "$S/usr/share/man" "$S/usr/share/locale"
    ln -sf mawk "$S/usr/bin/awk"   # an alternative that dpkg would have made
    touch "$K/sysroot.done"
fi

# --- the test TSM module, built against the headers with the kernel's own compiler -----------
SRC=$ROOT/tests/kernel/tdisp_test_tsm
KO=$K/module/tdisp_test_tsm.ko
sum=$(cat "$SRC"/Kbuild "$SRC"/*.c | sha256sum | cut -c1-16)
if [ ! -f "$KO" ] || [ "$(cat "$K/module/src.sum" 2>/dev/null)" != "$sum" ]; then
    say "building tests/kernel/tdisp_test_tsm against linux-headers-$KREL"
    rm -rf "$S/mod" "$K/module"; mkdir -p "$S/mod" "$K/module"
    cp "$SRC"/Kbuild "$SRC"/*.c "$S/mod/"
    unshare -m sh -c "mount -t proc proc '$S/proc' && chroot '$S' /usr/bin/env -i PATH=/usr/bin:/usr/sbin HOME=/tmp \
        make -s -C /usr/src/linux-headers-$KREL M=/mod modules" >"$K/module/build.log" 2>&1 \
        || { tail -20 "$K/module/build.log" >&2; die "module build failed (see $K/module/build.log)"; }
    cp "$S/mod/tdisp_test_tsm.ko" "$KO"
    echo "$sum" >"$K/module/src.sum"
fi

# --- the initramfs: static busybox, the 9p and overlay modules, tests/kernel/init ------------
INITRD=$K/initramfs.cpio.gz
isum=$(cat "$ROOT/tests/kernel/init" "$K/kernel.release" | sha256sum | cut -c1-16)
if [ ! -f "$INITRD" ] || [ "$(cat "$K/initramfs.sum" 2>/dev/null)" != "$isum" ]; then
    say "building the initramfs"
    I=$K/initramfs; rm -rf "$I"; mkdir -p "$I"/{bin,lib,proc,sys,dev,lower,rw,newroot}
    cp /bin/busybox "$I/bin/busybox"; ln -s busybox "$I/bin/sh"
    cp "$ROOT/tests/kernel/init" "$I/init"; chmod 755 "$I/init"
    for m in 9pnet_virtio 9p overlay; do
        modprobe -d "$K/kroot/usr" -S "$KREL" --show-depends "$m" | awk '$1 == "insmod" {print $2}'
    done | awk '!seen[$0]++' | while read -r ko; do
        b=$(basename "$ko" .ko.xz)
        xz -dc "$ko" >"$I/lib/$b.ko"
        echo "$b" >>"$I/lib/order"
    done
    (cd "$I" && find . | cpio -o -H newc --quiet | gzip -1) >"$INITRD"
    echo "$isum" >"$K/initramfs.sum"
fi
T1=$(date +%s)
say "prepared in $((T1 - T0)) s: kernel $KREL (Debian $(cat "$K/kernel.version")); guest root: host / over 9p, read-only, tmpfs overlay"

# --- boot -------------------------------------------------------------------------------------
OUT=$K/run
rm -rf "$OUT"; mkdir -p "$OUT"
ACCEL=tcg
TIMEOUT=${KERNEL_LANE_TIMEOUT:-1500}
set +e
timeout --foreground -k 10 "$TIMEOUT" qemu-system-x86_64 \
    -machine q35 -accel "$ACCEL" -cpu max -smp "${KERNEL_LANE_SMP:-2}" -m "${KERNEL_LANE_MEM:-2048}" \
    -nodefaults -display none -no-reboot -serial stdio \
    -kernel "$MODDIR/vmlinuz" -initrd "$INITRD" \
    -append "console=ttyS0 loglevel=4 panic=-1 tdisp.dir=$ROOT tdisp.mods=$K/kroot/usr/lib/modules tdisp.ko=$KO tdisp.kconfig=$S/usr/src/linux-headers-$KREL/.config" \
    -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
    -virtfs "local,path=$OUT,mount_tag=out,security_model=none,multidevs=remap" \
    -device pcie-root-port,id=rp1,chassis=1,slot=1,bus=pcie.0,addr=0x10 \
    -device pcie-root-port,id=rp2,chassis=2,slot=2,bus=pcie.0,addr=0x11 \
    -device pcie-root-port,id=rp3,chassis=3,slot=3,bus=pcie.0,addr=0x12 \
    -device pcie-root-port,id=rp4,chassis=4,slot=4,bus=pcie.0,addr=0x13 \
    -device e1000e,bus=rp1 \
    -device nvme,serial=tdisp0001,bus=rp2 \
    -device nvme,serial=tdisp0002,bus=rp3 \
    -device virtio-rng-pci,bus=rp4 \
    2>"$OUT/qemu.stderr" | tee "$OUT/console.log"
qrc=${PIPESTATUS[0]}
set -e
T2=$(date +%s)
[ "$qrc" = 124 ] && die "the guest did not finish within ${TIMEOUT}s (console: $OUT/console.log)"
[ "$qrc" = 0 ] || die "qemu exited with $qrc: $(head -c 300 "$OUT/qemu.stderr")"
[ -f "$OUT/rc" ] || die "the guest stopped before the checks finished (console: $OUT/console.log)"
say "prepare $((T1 - T0)) s, guest $((T2 - T1)) s, total $((T2 - T0)) s"
summary=$(tail -1 "$OUT/summary" 2>/dev/null || true)
[ -n "$summary" ] || die "the guest wrote no summary"
say "kernel $KREL (Debian $(cat "$K/kernel.version"))"
echo "$summary"
exit "$(cat "$OUT/rc")"
