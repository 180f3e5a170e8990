//! One soname, so that a program linked with -lckpt and run under `ckpt` (or with
//! LD_PRELOAD) loads the library once, whichever path each names. (The restart stub the
//! library embeds is built by ckpt-core's build script.)

fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libckpt.so");
}
