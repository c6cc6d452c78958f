//! Link settings for the `postdesk` binary.
//!
//! Pipe mode starts one process per delivered message, so start-up time counts. Packed
//! relative relocations (`DT_RELR`) make the dynamic loader's relocation pass about
//! 0.5 ms shorter for this binary while keeping it position-independent (ASLR intact).
//! Needs glibc 2.36 or newer at run time (Debian 12, Ubuntu 22.10): set
//! `POSTDESK_NO_RELR=1` when building for an older system.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=POSTDESK_NO_RELR");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    if var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "gnu"
        && std::env::var_os("POSTDESK_NO_RELR").is_none()
    {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
