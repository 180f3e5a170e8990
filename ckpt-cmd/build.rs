//! Builds libckpt.so for the `ckpt` command to carry, so that `cargo install --path ckpt-cmd`
//! (which installs binaries only) still gives a command that can preload its library: when
//! none is found beside the command, it writes this copy to a private cache directory
//! (launch/embedded.rs).
//!
//! Stable cargo cannot depend on another crate's cdylib (artifact dependencies are
//! nightly-only), so the library is built by a nested cargo, in a target directory of its
//! own (the outer build holds the lock of its own) and without debug information (the copy
//! is carried in every `ckpt` binary). Outside the workspace (a packaged ckpt-cmd, without
//! ../libckpt) or with `CKPT_EMBED_LIBRARY=0`, nothing is carried and the command looks for
//! the library only where an installation puts it.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(ckpt_embedded)");
    println!("cargo:rerun-if-env-changed=CKPT_EMBED_LIBRARY");
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.parent().unwrap().to_path_buf();
    let library_manifest = root.join("libckpt/Cargo.toml");
    if env::var_os("CKPT_EMBED_LIBRARY").is_some_and(|value| value == "0")
        || !library_manifest.is_file()
    {
        return;
    }
    for source in [
        "libckpt",
        "ckpt-core",
        "ckpt-image",
        "restart-stub",
        "Cargo.lock",
        "Cargo.toml",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(source).display());
    }

    let target_dir = embed_target_dir();
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--quiet", "-p", "libckpt"])
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        // The outer build's wrappers (clippy's, for one) are not meant for this build.
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env("CARGO_PROFILE_RELEASE_DEBUG", "0")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo")
        .status()
        .unwrap_or_else(|error| panic!("cannot run cargo to build libckpt.so: {error}"));
    assert!(
        status.success(),
        "building libckpt.so to embed failed: {status}"
    );

    let library = target_dir.join("release/libckpt.so");
    let bytes = std::fs::read(&library)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", library.display()));
    println!("cargo:rustc-cfg=ckpt_embedded");
    println!(
        "cargo:rustc-env=CKPT_EMBEDDED_LIBRARY={}",
        library.display()
    );
    println!("cargo:rustc-env=CKPT_EMBEDDED_HASH={:016x}", fnv1a(&bytes));
}

/// `embedded-libckpt` beside the profile directories of the outer build (OUT_DIR is
/// `<target>/<profile>/build/ckpt-cmd-<hash>/out`), so that it is reused from one build to
/// the next and removed by `cargo clean`.
fn embed_target_dir() -> PathBuf {
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    let target = out.ancestors().nth(4).unwrap_or(Path::new(&out));
    target.join("embedded-libckpt")
}

/// FNV-1a, 64 bits: names the cached copy after its contents, so that ckpt binaries of
/// different versions keep their own copies. (The copy is checked byte for byte before use;
/// the hash only names it.)
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}
