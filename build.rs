//! Link settings for the `postdesk` binary.
//!
//! Pipe mode starts one process per delivered message, so start-up time counts.
//!
//! - Packed relative relocations (`DT_RELR`) make the relocation pass at start-up about
//!   0.5 ms shorter for this binary while keeping it position-independent (ASLR intact):
//!   16,000 relocation entries (390 KB to read and apply) become 5 KB of bitmaps.
//!   - Dynamic build: glibc's loader applies them; it needs glibc 2.36 or newer at run time
//!     (Debian 12, Ubuntu 22.10) and refuses to start the binary on an older one.
//!   - Static build (`scripts/build-static`, `crt-static`): the binary relocates itself with
//!     the code of the `libc.a` it was linked with, so the build machine's glibc must be
//!     2.36 or newer. An older one would not apply them and the binary would crash at
//!     start: there they stay off.
//! - The unwinder is linked in from `libgcc_eh.a` (what `gcc -static-libgcc` does), so the
//!   binary does not load `libgcc_s.so.1`, whose start-up code probes the CPU with a few
//!   dozen `cpuid` instructions: each one a trap to the hypervisor on a virtual machine.
//!   Panics still unwind (`ingest` catches them and exits 75). A static build links it in
//!   anyway.
//!
//! Set `POSTDESK_PLAIN_LINK=1` to build without either (an older glibc, another
//! toolchain).

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=POSTDESK_PLAIN_LINK");
    println!("cargo:rerun-if-env-changed=CC");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let gnu_linux = var("CARGO_CFG_TARGET_OS") == "linux" && var("CARGO_CFG_TARGET_ENV") == "gnu";
    if !gnu_linux || std::env::var_os("POSTDESK_PLAIN_LINK").is_some() {
        return;
    }
    let crt_static = var("CARGO_CFG_TARGET_FEATURE")
        .split(',')
        .any(|f| f == "crt-static");
    if crt_static {
        // Only where the `libc.a` linked in is known to apply them: a native build (the
        // build machine's glibc is the one linked) on glibc 2.36 or newer.
        if var("HOST") == var("TARGET") && host_glibc_at_least(2, 36) {
            println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
        }
        return;
    }
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    // Before std's `-lgcc_s` on the link line (an upstream library's native libraries come
    // before std's), so `--as-needed` drops libgcc_s.
    if let Some(dir) = libgcc_eh_dir() {
        println!("cargo:rustc-link-search=native={}", dir.display());
        println!("cargo:rustc-link-lib=static:+whole-archive,-bundle,+verbatim=libgcc_eh.a");
    }
}

/// Where the C compiler keeps `libgcc_eh.a`, if it has one.
fn libgcc_eh_dir() -> Option<std::path::PathBuf> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .ok()?;
    let path = std::path::PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    // Without the file the compiler prints the bare name back.
    (out.status.success() && path.is_absolute() && path.is_file())
        .then(|| path.parent().map(Into::into))
        .flatten()
}

/// Whether the build machine's glibc (`getconf GNU_LIBC_VERSION`: "glibc 2.36") is at least
/// `major.minor`; false when it cannot tell.
fn host_glibc_at_least(major: u32, minor: u32) -> bool {
    let Ok(out) = Command::new("getconf").arg("GNU_LIBC_VERSION").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text
        .trim()
        .strip_prefix("glibc ")
        .unwrap_or_default()
        .split('.')
        .map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(a), Some(b)) => out.status.success() && (a, b) >= (major, minor),
        _ => false,
    }
}
