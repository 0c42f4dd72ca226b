# Sourced by tests/vm/run-v2.sh and tests/load/serve-v2-guest.sh (root): installs the host
# packages the guest needs and unpacks Debian's cloud kernel and its virtio modules into
# $CACHE (never installing the package). Needs CACHE and step(); sets KERNEL, KDIR, KVER,
# MODULES.
# shellcheck shell=bash disable=SC2034 # KERNEL and the rest are the sourcing script's
# --- 1. host packages -------------------------------------------------------------------------
APT_UPDATED=
apt_update_once() {
    if [ -z "$APT_UPDATED" ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -q
        APT_UPDATED=1
    fi
}
missing=()
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
command -v cpio >/dev/null || missing+=(cpio)
command -v lz4 >/dev/null || missing+=(lz4)
# The dynamic `busybox` package also installs /bin/busybox, but it cannot run in the initramfs.
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' || missing+=(busybox-static)
if [ ${#missing[@]} -gt 0 ]; then
    step "installing ${missing[*]}"
    apt_update_once
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

# --- 2. kernel: the .deb unpacked, never installed (no initramfs/bootloader hooks on the host) --
resolve_kernel() {
    apt-cache depends linux-image-cloud-amd64 2>/dev/null |
        awk '/Depends: linux-image-[0-9]/ { print $2; exit }'
}
PKG=$(resolve_kernel || true)
if [ -z "$PKG" ]; then
    apt_update_once
    PKG=$(resolve_kernel)
fi
KVER=${PKG#linux-image-}
KDIR=$CACHE/kernel-$KVER
MODULES=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk)
if [ ! -e "$KDIR/done" ]; then
    step "downloading $PKG"
    rm -rf "$KDIR" "$CACHE/kernel-tmp"
    mkdir -p "$CACHE/kernel-tmp/deb" "$KDIR/modules"
    (cd "$CACHE/kernel-tmp/deb" && apt-get download -o APT::Sandbox::User=root "$PKG")
    dpkg-deb -x "$CACHE/kernel-tmp/deb/${PKG}"_*.deb "$CACHE/kernel-tmp/root"
    cp "$CACHE/kernel-tmp/root/boot/vmlinuz-$KVER" "$KDIR/vmlinuz"
    for m in "${MODULES[@]}"; do
        ko=$(find "$CACHE/kernel-tmp/root/lib/modules/$KVER/kernel/drivers" -name "$m.ko" | head -n1)
        [ -n "$ko" ] || { echo "${0##*/}: $m.ko not in $PKG" >&2; exit 1; }
        cp "$ko" "$KDIR/modules/"
    done
    # The raw ELF inside the bzImage boots through its PVH note: no SeaBIOS and no
    # decompression under TCG, about 0.5 s per boot. The bzImage stays as the fallback.
    # The payload ends with the 4-byte uncompressed size (the kernel build's size_append),
    # which lz4 would reject as trailing garbage; it doubles as a check of the result.
    u32_at() { od -An -tu4 -j "$1" -N4 "$KDIR/vmlinuz" | tr -d ' '; }
    setup_sects=$(od -An -tu1 -j $((0x1f1)) -N1 "$KDIR/vmlinuz" | tr -d ' ')
    payload_start=$(((setup_sects + 1) * 512 + $(u32_at $((0x248)))))
    payload_len=$(u32_at $((0x24c)))
    raw_size=$(u32_at $((payload_start + payload_len - 4)))
    if dd if="$KDIR/vmlinuz" bs=4M iflag=skip_bytes,count_bytes status=none \
        skip="$payload_start" count=$((payload_len - 4)) | lz4 -dc >"$KDIR/vmlinux" &&
        [ "$(stat -c %s "$KDIR/vmlinux")" = "$raw_size" ] &&
        [ "$(head -c4 "$KDIR/vmlinux" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
        echo "${0##*/}: extracted the PVH vmlinux"
    else
        echo "${0##*/}: no PVH vmlinux, booting the bzImage"
        rm -f "$KDIR/vmlinux"
    fi
    rm -rf "$CACHE/kernel-tmp"
    touch "$KDIR/done"
fi
KERNEL=$KDIR/vmlinuz
[ -e "$KDIR/vmlinux" ] && KERNEL=$KDIR/vmlinux
