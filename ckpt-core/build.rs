//! Builds the restart stub (`restart-stub/src/main.rs`) as a freestanding executable and
//! hands its loadable bytes to the checkpoint writer, which puts them at the head of every
//! checkpoint.
//!
//! The stub has no dependencies beyond `ckpt-image`, so it is compiled by calling `$RUSTC`
//! directly (a nested cargo would contend for locks and inherit flags meant for the host
//! build). The sources are found through ckpt-core's dependencies on ckpt-image and
//! restart-stub, whose build scripts announce their directories (`DEP_*_ROOT`): a packaged
//! ckpt-core has no `../restart-stub`. The stub is linked twice, at two different base
//! addresses, and the loadable bytes are compared: code is position independent
//! (rip-relative), and the only words that differ must differ by exactly the distance of the
//! bases. Those are absolute pointers in data (core's panic locations); their offsets become
//! `STUB_RELOCS`, and the checkpoint writer adds the chosen base to them. Any other
//! difference fails the build.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let image_src = dependency_root("CKPT_IMAGE").join("src");
    let stub_src = dependency_root("RESTART_STUB").join("src");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("stub");
    fs::create_dir_all(&out).unwrap();
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());

    for dir in [&image_src, &stub_src] {
        println!("cargo:rerun-if-changed={}", dir.display());
    }

    let common: &[&str] = &[
        "--edition=2021",
        "--target=x86_64-unknown-linux-gnu",
        "-Copt-level=s",
        "-Cpanic=abort",
        "-Crelocation-model=pie",
        "-Cdebuginfo=0",
        "-Ccodegen-units=1",
        "-Cforce-unwind-tables=no",
    ];
    rustc_run(
        &rustc,
        common,
        &[
            "--crate-type=rlib",
            "--crate-name=ckpt_image",
            image_src.join("lib.rs").to_str().unwrap(),
            "--out-dir",
            out.to_str().unwrap(),
        ],
    );
    let image_rlib = format!("ckpt_image={}", out.join("libckpt_image.rlib").display());
    rustc_run(
        &rustc,
        common,
        &[
            "--crate-type=rlib",
            "--crate-name=restart_stub",
            stub_src.join("lib.rs").to_str().unwrap(),
            "--extern",
            &image_rlib,
            "--out-dir",
            out.to_str().unwrap(),
        ],
    );

    let lld = rust_lld(&rustc);
    let mut images = Vec::new();
    for (i, base) in [0u64, 0x4000_0000].iter().enumerate() {
        let script = out.join(format!("stub-{i}.ld"));
        fs::write(&script, linker_script(*base)).unwrap();
        let exe = out.join(format!("restart-stub-{i}"));
        let stub_rlib = format!(
            "restart_stub={}",
            out.join("librestart_stub.rlib").display()
        );
        rustc_run(
            &rustc,
            common,
            &[
                "--crate-type=bin",
                "--crate-name=restart_stub_bin",
                stub_src.join("main.rs").to_str().unwrap(),
                "--extern",
                &image_rlib,
                "--extern",
                &stub_rlib,
                "-L",
                out.to_str().unwrap(),
                &format!("-Clinker={}", lld.display()),
                "-Clinker-flavor=ld.lld",
                "-Clink-arg=--no-pie",
                "-Clink-arg=-static",
                "-Clink-arg=--no-dynamic-linker",
                "-Clink-arg=--gc-sections",
                &format!("-Clink-arg=--script={}", script.display()),
                "-o",
                exe.to_str().unwrap(),
            ],
        );
        images.push(load_segment(&exe, *base));
    }
    let (a, b) = (&images[0], &images[1]);
    if a.bytes.len() != b.bytes.len() || a.mem_size != b.mem_size || a.entry != b.entry {
        panic!(
            "the restart stub is not position independent: its layout differs between link bases"
        );
    }
    let delta = 0x4000_0000u64;
    let mut relocs = Vec::new();
    let mut i = 0;
    while i < a.bytes.len() {
        if a.bytes[i] == b.bytes[i] {
            i += 1;
            continue;
        }
        let word = i & !7;
        let w = |img: &Segment| u64::from_le_bytes(img.bytes[word..word + 8].try_into().unwrap());
        let (wa, wb) = (w(a), w(b));
        assert!(
            wb.wrapping_sub(wa) == delta && wa < a.mem_size,
            "the restart stub is not position independent: word at {word:#x} is not a base-relative pointer ({wa:#x} vs {wb:#x})"
        );
        relocs.push(word as u64);
        i = word + 8;
    }
    fs::write(out.join("restart-stub.bin"), &a.bytes).unwrap();
    fs::write(
        out.join("stub_layout.rs"),
        format!(
            "/// Bytes of the stub image in the file.\npub const STUB_FILE_SIZE: u64 = {};\n\
             /// Address space the loaded stub occupies.\npub const STUB_MEM_SIZE: u64 = {};\n\
             /// Entry point offset from the stub's base.\npub const STUB_ENTRY: u64 = {};\n\
             /// Offsets of the 8-byte words that hold stub-relative pointers: add the base.\n\
             pub const STUB_RELOCS: &[u64] = &{:?};\n",
            a.bytes.len(),
            a.mem_size,
            a.entry,
            relocs
        ),
    )
    .unwrap();
}

/// Where cargo put the sources of a dependency: the `root` its build script announces (its
/// `links` key is `name` in lower case). In the workspace that is `../ckpt-image` and
/// `../restart-stub`, the same paths as ever, so the stub (whose panic locations name its
/// source files) comes out byte for byte the same; in a packaged ckpt-core it is wherever
/// cargo unpacked those crates.
fn dependency_root(name: &str) -> PathBuf {
    let variable = format!("DEP_{name}_ROOT");
    PathBuf::from(env::var_os(&variable).unwrap_or_else(|| {
        panic!("{variable} is not set: ckpt-core must depend on the crate whose links key sets it")
    }))
}

fn rustc_run(rustc: &str, common: &[&str], args: &[&str]) {
    let status = Command::new(rustc)
        .args(common)
        .args(args)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_MAKEFLAGS")
        .status()
        .expect("cannot run rustc for the restart stub");
    assert!(
        status.success(),
        "building the restart stub failed: rustc {args:?}"
    );
}

fn rust_lld(rustc: &str) -> PathBuf {
    let out = Command::new(rustc)
        .arg("--print")
        .arg("sysroot")
        .output()
        .expect("rustc --print sysroot");
    let sysroot = String::from_utf8(out.stdout).unwrap();
    let lld = Path::new(sysroot.trim()).join("lib/rustlib/x86_64-unknown-linux-gnu/bin/rust-lld");
    assert!(
        lld.exists(),
        "rust-lld not found at {} (install the rust toolchain's llvm linker)",
        lld.display()
    );
    lld
}

/// One loadable segment holding everything, starting at `base`.
fn linker_script(base: u64) -> String {
    format!(
        r#"ENTRY(_start)
PHDRS {{ stub PT_LOAD FLAGS(7); }}
SECTIONS {{
  . = {base:#x};
  .text : {{ *(.text._start) *(.text .text.*) }} :stub
  .rodata : {{ *(.rodata .rodata.*) }} :stub
  .data : {{ *(.data .data.*) *(.got .got.*) *(.got.plt) }} :stub
  .bss : {{ *(.bss .bss.*) *(COMMON) }} :stub
  /DISCARD/ : {{ *(.eh_frame*) *(.note*) *(.comment) *(.gnu.hash) *(.hash) *(.dynsym) *(.dynstr) *(.dynamic) }}
}}
"#
    )
}

struct Segment {
    bytes: Vec<u8>,
    mem_size: u64,
    entry: u64,
}

/// Extracts the single PT_LOAD segment, relative to `base`, from a linked stub.
fn load_segment(path: &Path, base: u64) -> Segment {
    use object::elf::PT_LOAD;
    use object::read::elf::{ElfFile64, ProgramHeader};
    use object::{LittleEndian as LE, Object};

    let data = fs::read(path).unwrap();
    let elf = ElfFile64::<LE>::parse(&data[..])
        .unwrap_or_else(|e| panic!("{} is not an ELF64 file: {e}", path.display()));
    let mut loads = elf
        .elf_program_headers()
        .iter()
        .filter(|ph| ph.p_type(LE) == PT_LOAD);
    let load = loads.next().expect("restart stub has no PT_LOAD");
    assert!(
        loads.next().is_none(),
        "the restart stub must have exactly one PT_LOAD"
    );
    assert_eq!(
        load.p_vaddr(LE),
        base,
        "the stub's segment must start at its base"
    );
    let bytes = load
        .data(LE, &data[..])
        .unwrap_or_else(|()| panic!("the stub's segment lies outside {}", path.display()));
    Segment {
        bytes: bytes.to_vec(),
        mem_size: load.p_memsz(LE),
        entry: elf.entry() - base,
    }
}
