//! Tells the build script of ckpt-core, which compiles the restart stub from this crate's
//! sources with `rustc` alone, where they are: cargo passes `root` to the build scripts of
//! direct dependents as `DEP_CKPT_IMAGE_ROOT`, in the workspace and in a packaged crate alike
//! (where no `../ckpt-image` exists).

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let root = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo::metadata=root={root}");
}
