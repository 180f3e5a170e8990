//! The variables the stub reads from a restart's environment (`b"CKPT_…"` in main.rs) are
//! exactly ckpt-image's list of them, which the tests clear and the documentation names.

#[test]
fn reads_the_listed_variables() {
    let source = include_str!("../src/main.rs");
    let mut read: Vec<&str> = source
        .split("b\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|name| {
            name.starts_with("CKPT_") && name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
        })
        .collect();
    read.sort();
    read.dedup();
    let mut listed = ckpt_image::settings::RESTART_VARIABLES.to_vec();
    listed.sort();
    assert_eq!(read, listed);
}
