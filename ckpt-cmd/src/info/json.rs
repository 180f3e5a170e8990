//! The shape of `ckpt info --json`, written by serde_json.

use super::*;

#[derive(Serialize)]
pub(super) struct DescriptorsJson<'a> {
    pub(super) count: usize,
    pub(super) list: Vec<FdJson<'a>>,
}

#[derive(Serialize)]
pub(super) struct FdJson<'a> {
    pub(super) fd: u32,
    pub(super) kind: &'static str,
    pub(super) path: &'a str,
    pub(super) access: &'static str,
    pub(super) flags: &'a [&'static str],
    pub(super) pos: u64,
    pub(super) cloexec: bool,
    /// Its file had locks of the program's (not taken again by a restart).
    pub(super) locked: bool,
    /// `null` unless another descriptor shares its open file description (the first one).
    pub(super) shares_with: Option<u32>,
    pub(super) action: &'static str,
    pub(super) restart: &'a str,
    pub(super) dev: u64,
    pub(super) ino: u64,
    pub(super) size: u64,
    pub(super) mtime_ns: u64,
    pub(super) mode: u32,
}

/// `ckpt info --json`, field by field in the order it prints them.
#[derive(Serialize)]
pub(super) struct InfoJson<'a> {
    pub(super) file: &'a str,
    pub(super) program: Option<&'a str>,
    pub(super) args: Option<&'a [String]>,
    pub(super) taken_at: u64,
    pub(super) taken: String,
    pub(super) pid: u32,
    pub(super) format_version: u32,
    pub(super) stub_base: u64,
    pub(super) regions: Vec<RegionJson<'a>>,
    pub(super) threads: ThreadsJson<'a>,
    pub(super) descriptors: DescriptorsJson<'a>,
    pub(super) xcr0: u32,
    pub(super) extents: usize,
    pub(super) total_stored: u64,
    pub(super) kept_from_previous: u64,
    pub(super) file_size: u64,
}

#[derive(Serialize)]
pub(super) struct RegionJson<'a> {
    pub(super) start: u64,
    pub(super) end: u64,
    pub(super) size: u64,
    pub(super) prot: &'a str,
    pub(super) backing: &'static str,
    pub(super) name: &'a str,
    pub(super) stored: u64,
    pub(super) extents: u32,
    /// Only for file-backed regions: how much of the file's contents is stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) contents: Option<&'static str>,
    pub(super) compressed: bool,
    pub(super) in_file: Option<u64>,
    pub(super) huge_pages: bool,
    pub(super) guard_bytes: u64,
    pub(super) flags: &'a [&'static str],
}

#[derive(Serialize)]
pub(super) struct ThreadsJson<'a> {
    pub(super) count: usize,
    pub(super) tids: &'a [u32],
    pub(super) in_vdso: bool,
    pub(super) list: Vec<ThreadJson<'a>>,
}

#[derive(Serialize)]
pub(super) struct ThreadJson<'a> {
    pub(super) tid: u32,
    pub(super) name: &'a str,
    pub(super) roles: &'a [&'static str],
    pub(super) pc: u64,
    pub(super) sp: u64,
    /// `null` when the pc is not known.
    pub(super) stopped_at: Option<LocationJson<'a>>,
    pub(super) in_vdso: bool,
    pub(super) pending: &'a [String],
    /// `null` when not recorded.
    pub(super) cpus: Option<&'a str>,
}

#[derive(Serialize)]
pub(super) struct LocationJson<'a> {
    pub(super) mapping: &'a str,
    pub(super) path: Option<&'a str>,
    pub(super) offset: u64,
}

/// `value` as compact JSON that is also safe to paste into JavaScript or show on a terminal:
/// serde_json's escapes, plus DEL, U+2028 and U+2029 as `\u` escapes (names and arguments
/// come from the checkpointed program and may hold anything).
pub fn to_json(value: &impl Serialize) -> String {
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, ScriptSafe);
    value
        .serialize(&mut serializer)
        .expect("serializing to memory cannot fail");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// serde_json's compact format, with the three extra escapes of [`to_json`].
pub(super) struct ScriptSafe;

impl Formatter for ScriptSafe {
    fn write_string_fragment<W>(&mut self, writer: &mut W, fragment: &str) -> io::Result<()>
    where
        W: ?Sized + io::Write,
    {
        let mut rest = fragment;
        while let Some(at) = rest.find(['\u{7f}', '\u{2028}', '\u{2029}']) {
            let c = rest[at..].chars().next().unwrap_or_default();
            writer.write_all(&rest.as_bytes()[..at])?;
            write!(writer, "\\u{:04x}", c as u32)?;
            rest = &rest[at + c.len_utf8()..];
        }
        writer.write_all(rest.as_bytes())
    }
}

pub(super) fn contents_word_of(r: &RegionInfo) -> &'static str {
    contents_word(&RegionRecord {
        len: r.end - r.start,
        stored: r.stored,
        ..Default::default()
    })
}
