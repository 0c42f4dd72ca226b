#!/bin/bash
# Real cgroup v2 run: boots Debian's 6.1 cloud kernel (cgroup v2 only) in qemu/TCG with a busybox
# initramfs whose /init (tests/vm/init) starts workloads and runs a static `cgscope snapshot`.
# Usage: run-v2.sh OUT.json  (as root). Writes the snapshot to OUT.json and the rest of the
# guest's tar (iodisk, partitions, snapshot.stderr, console.log, ...) to OUT-guest/ beside it.
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 OUT.json" >&2
    exit 2
fi
if [ "$(id -u)" != 0 ]; then
    echo "run-v2.sh: must run as root (apt-get, mknod in the initramfs)" >&2
    exit 2
fi

VM_DIR=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$VM_DIR/../.." && pwd)
OUT_JSON=$(realpath -m "$1")
GUEST_DIR=${OUT_JSON%.json}-guest
CACHE=$REPO/target/vm-cache
TARGET=x86_64-unknown-linux-gnu
mkdir -p "$CACHE" "$(dirname "$OUT_JSON")"

# Concurrent runs (two `cargo test`s in one checkout) would fight over the cache and the two
# TCG guests would starve each other on two cores: one run at a time.
exec 9>"$CACHE/lock"
flock 9

step() { echo "== run-v2: $* ($(date +%T))"; }

# --- 1-2. host packages and the guest kernel (shared with tests/load/serve-v2-guest.sh) -------
# shellcheck source=tests/vm/guest-kernel.sh
. "$VM_DIR/guest-kernel.sh"

# --- 3. static binaries -------------------------------------------------------------------------
step "building static cgscope"
# A separate target dir: this script runs inside `cargo test`, which holds the lock of target/.
# Stripped and without debuginfo, so the initramfs stays small.
env -u CARGO_ENCODED_RUSTFLAGS -u CARGO_BUILD_TARGET \
    RUSTFLAGS='-C target-feature=+crt-static' \
    CARGO_TARGET_DIR="$REPO/target/vm-build" \
    CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=true \
    "${CARGO:-cargo}" build --quiet --release --target "$TARGET" --bin cgscope \
    --manifest-path "$REPO/Cargo.toml"
CGSCOPE=$REPO/target/vm-build/$TARGET/release/cgscope

MEMHOG=$CACHE/memhog
if [ ! -x "$MEMHOG" ] || [ "$VM_DIR/memhog.rs" -nt "$MEMHOG" ]; then
    step "building memhog"
    rustc --edition 2021 -O -C target-feature=+crt-static -C strip=symbols --target "$TARGET" \
        "$VM_DIR/memhog.rs" -o "$MEMHOG.tmp"
    mv "$MEMHOG.tmp" "$MEMHOG"
fi

# --- 4. initramfs and disks (per run) ----------------------------------------------------------
RUN=$(mktemp -d "$CACHE/run.XXXXXX")
trap 'rm -rf "$RUN"' EXIT
ROOT=$RUN/root
mkdir -p "$ROOT"/{bin,dev,proc,sys,tmp,lib/modules}
cp /bin/busybox "$CGSCOPE" "$MEMHOG" "$ROOT/bin/"
cp "$KDIR"/modules/*.ko "$ROOT/lib/modules/"
install -m 755 "$VM_DIR/init" "$ROOT/init"
# The kernel opens /dev/console for /init before devtmpfs is mounted.
mknod -m 600 "$ROOT/dev/console" c 5 1
(cd "$ROOT" && find . | cpio -o -H newc --quiet) >"$RUN/initramfs.cpio"

truncate -s 64M "$RUN/io.img"
truncate -s 128M "$RUN/swap.img"
truncate -s 16M "$RUN/out.img"

# --- 5. boot ------------------------------------------------------------------------------------
step "booting $(basename "$KERNEL") $KVER"
# TCG on purpose: /dev/kvm on these hosts is kvm-pvm, which cannot run a stock kernel, and
# opens fine before failing mid-boot (so no KVM-then-TCG fallback either).
start=$(date +%s%N)
qemu_rc=0
timeout --kill-after=10 "${CGV2_QEMU_TIMEOUT:-240}" qemu-system-x86_64 \
    -accel tcg -cpu max -m 512 -smp 2 \
    -display none -monitor none -serial "file:$RUN/console.log" \
    -no-reboot -nic none \
    -kernel "$KERNEL" -initrd "$RUN/initramfs.cpio" \
    -append "console=ttyS0 panic=-1 loglevel=4 cgroup_no_v1=all CGV2_SETTLE=${CGV2_SETTLE:-3}" \
    -drive "file=$RUN/io.img,format=raw,if=none,id=io,cache=none" \
    -device virtio-blk-pci,drive=io,serial=iodisk \
    -drive "file=$RUN/swap.img,format=raw,if=none,id=swap,cache=unsafe" \
    -device virtio-blk-pci,drive=swap,serial=swapdisk \
    -drive "file=$RUN/out.img,format=raw,if=none,id=out" \
    -device virtio-blk-pci,drive=out,serial=outdisk \
    </dev/null || qemu_rc=$?
end=$(date +%s%N)
echo "run-v2: qemu exit $qemu_rc, wall $(((end - start) / 1000000)) ms"
tr -d '\r' <"$RUN/console.log" | grep -a 'CGV2:' || true

# --- 6. results ---------------------------------------------------------------------------------
rm -rf "$GUEST_DIR" "$OUT_JSON"
mkdir -p "$GUEST_DIR"
tr -d '\r' <"$RUN/console.log" >"$GUEST_DIR/console.log"
fail() {
    echo "run-v2: FAIL: $*" >&2
    echo "--- last console lines ($GUEST_DIR/console.log)" >&2
    tail -n 40 "$GUEST_DIR/console.log" >&2
    exit 1
}
[ "$qemu_rc" = 0 ] || fail "qemu exited with $qemu_rc (124 = timeout)"
# The out disk is a bare tar; trailing zeros read as its end.
tar xf "$RUN/out.img" -C "$GUEST_DIR" || fail "the out disk holds no tar"
[ -s "$GUEST_DIR/snapshot.rc" ] || fail "the guest wrote no snapshot"
rc=$(cat "$GUEST_DIR/snapshot.rc")
if [ "$rc" != 0 ]; then
    cat "$GUEST_DIR/snapshot.stderr" >&2
    fail "cgscope snapshot exited with $rc in the guest"
fi
cp "$GUEST_DIR/snapshot.json" "$OUT_JSON"
echo "run-v2: snapshot at $OUT_JSON, guest files in $GUEST_DIR"
