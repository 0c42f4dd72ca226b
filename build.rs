//! Link settings for the statically linked binary that ships (Dockerfile): packed relocations
//! and `serve`'s code placed first. Knows nothing of cgroups or containers; a dynamically
//! linked development build is linked as cargo links it anyway.

use std::path::Path;
use std::process::Command;

/// The functions `serve` runs, hottest first, written by dist/record-text-order.sh.
const TEXT_ORDER: &str = "dist/text-order.txt";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={TEXT_ORDER}");
    let target_features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    let is_static = target_features
        .split(',')
        .any(|feature| feature == "crt-static");
    let is_linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    if !(is_static && is_linux) {
        return;
    }
    // A static PIE relocates itself at start from a table of about 13,000 relative
    // relocations, 24 bytes each: 300 KiB read once and then resident for the life of the
    // process. Packed (DT_RELR: GNU ld 2.38+ or lld, applied by glibc 2.36+'s static-PIE
    // start-up) the same table is 4 KiB. An older GNU ld warns and ignores the option.
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    // The kernel maps a binary's code in 64 KiB windows around each page it runs
    // (fault-around), and a fat-LTO link interleaves the 2.3 MiB `serve` runs with the 5 MiB
    // it never runs (`top`, `capture`, TLS, the UI), so nearly all 7 MiB ends up resident.
    // Placed first, in one run, `serve`'s code maps about 3 MiB. lld alone takes the list;
    // names it no longer finds (after a dependency or toolchain update) are skipped.
    let order =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default()).join(TEXT_ORDER);
    if links_with_rust_lld() && order.is_file() {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}

/// rustc links x86_64-unknown-linux-gnu with its own lld from 1.90 on, unless a linker or
/// linker flavour is chosen in cargo's configuration or the flags.
fn links_with_rust_lld() -> bool {
    let target = std::env::var("TARGET").unwrap_or_default();
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let chosen_linker = std::env::var_os("RUSTC_LINKER").is_some()
        || flags.contains("linker")
        || flags.contains("fuse-ld");
    target == "x86_64-unknown-linux-gnu" && !chosen_linker && rustc_minor().is_some_and(|m| m >= 90)
}

/// The minor version of the rustc cargo runs (`release: 1.95.0` in `rustc -vV`).
fn rustc_minor() -> Option<u32> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc).arg("-vV").output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let release = text
        .lines()
        .find_map(|line| line.strip_prefix("release: "))?;
    release.split('.').nth(1)?.parse().ok()
}
