//! Link settings for the `postdesk` binary.
//!
//! Pipe mode starts one process per delivered message, so start-up time counts.
//!
//! - Packed relative relocations (`DT_RELR`) make the dynamic loader's relocation pass
//!   about 0.5 ms shorter for this binary while keeping it position-independent (ASLR
//!   intact). Needs glibc 2.36 or newer at run time (Debian 12, Ubuntu 22.10).
//! - The unwinder is linked in from `libgcc_eh.a` (what `gcc -static-libgcc` does), so the
//!   binary does not load `libgcc_s.so.1`, whose start-up code probes the CPU with a few
//!   dozen `cpuid` instructions: each one a trap to the hypervisor on a virtual machine.
//!   Panics still unwind (`ingest` catches them and exits 75).
//!
//! Set `POSTDESK_PLAIN_LINK=1` to build without either (an older glibc, another
//! toolchain).

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=POSTDESK_PLAIN_LINK");
    println!("cargo:rerun-if-env-changed=CC");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let gnu_linux = var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "gnu"
        && !var("CARGO_CFG_TARGET_FEATURE").contains("crt-static");
    if !gnu_linux || std::env::var_os("POSTDESK_PLAIN_LINK").is_some() {
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
