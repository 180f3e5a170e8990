//! Unit tests of `info`.

use super::*;

#[test]
fn dates() {
    assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
    assert_eq!(format_utc(86_399), "1970-01-01 23:59:59 UTC");
    assert_eq!(format_utc(951_782_400), "2000-02-29 00:00:00 UTC");
    assert_eq!(format_utc(951_868_800), "2000-03-01 00:00:00 UTC");
    assert_eq!(format_utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
    assert_eq!(format_utc(4_107_542_399), "2100-02-28 23:59:59 UTC");
    assert_eq!(format_utc(4_107_542_400), "2100-03-01 00:00:00 UTC");
    assert_eq!(format_utc(253_402_300_799), "9999-12-31 23:59:59 UTC");
    // Every day for 600 years: the day after each date is the next date.
    let mut previous = civil_from_days(-1);
    assert_eq!(previous, (1969, 12, 31));
    for days in 0..(600 * 366) {
        let date = civil_from_days(days);
        let (y, m, d) = previous;
        let next_in_month = (y, m, d + 1);
        let next_month = if m == 12 {
            (y + 1, 1, 1)
        } else {
            (y, m + 1, 1)
        };
        assert!(
            date == next_in_month || date == next_month,
            "{previous:?} -> {date:?}"
        );
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let month_len = [
            31,
            if leap { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ];
        if date == next_month {
            assert_eq!(d, month_len[m as usize - 1], "{previous:?} -> {date:?}");
        }
        previous = date;
    }
}

#[test]
fn json_escaping() {
    assert_eq!(to_json(&"plain"), "\"plain\"");
    assert_eq!(to_json(&"a\"b\\c"), "\"a\\\"b\\\\c\"");
    assert_eq!(to_json(&"l1\nl2\t\r"), "\"l1\\nl2\\t\\r\"");
    assert_eq!(to_json(&"\u{1}\u{1f}\u{7f}"), "\"\\u0001\\u001f\\u007f\"");
    assert_eq!(to_json(&"é ✓"), "\"é ✓\"");
    // The separators JavaScript once took for line ends, and a string of nothing else.
    assert_eq!(to_json(&"a\u{2028}b\u{2029}"), "\"a\\u2028b\\u2029\"");
    assert_eq!(to_json(&"\u{7f}"), "\"\\u007f\"");
}

#[test]
fn args_and_quoting() {
    assert_eq!(
        split_args(b"./prog\0a b\0\0c\0"),
        vec!["./prog", "a b", "", "c"]
    );
    assert_eq!(split_args(b""), Vec::<String>::new());
    assert_eq!(shell_quote("./counter"), "./counter");
    assert_eq!(shell_quote("a b"), "'a b'");
    assert_eq!(shell_quote(""), "''");
    assert_eq!(shell_quote("it's"), "'it'\\''s'");
}

#[test]
fn sizes_and_prot() {
    assert_eq!(human_size(100), "100 B");
    assert_eq!(human_size(4096), "4 KiB");
    assert_eq!(human_size(1536), "1.5 KiB");
    assert_eq!(human_size(3 << 30), "3 GiB");
    let r = RegionRecord {
        prot: prot::READ | prot::EXEC,
        flags: rf::FILE,
        ..Default::default()
    };
    assert_eq!(prot_string(&r), "r-xp");
    assert_eq!(Backing::of(&r), Backing::File);
    let r = RegionRecord {
        prot: prot::READ | prot::WRITE,
        flags: rf::SHARED | rf::FILE | rf::DELETED | rf::MEMFD,
        ..Default::default()
    };
    assert_eq!(prot_string(&r), "rw-s");
    assert_eq!(Backing::of(&r), Backing::Memfd);
    assert_eq!(Backing::of(&RegionRecord::default()), Backing::Anonymous);
    let r = RegionRecord {
        flags: rf::STACK,
        ..Default::default()
    };
    assert_eq!(prot_string(&r), "---p");
    assert_eq!(Backing::of(&r), Backing::Stack);
}

#[test]
fn vm_flag_names() {
    assert_eq!(vm_flag_words(rf::STACK | rf::HUGE), Vec::<&str>::new());
    assert_eq!(
        vm_flag_words(rf::LOCKED | rf::NORESERVE | rf::DONTFORK | rf::HEAP),
        ["noreserve", "dontfork", "locked"]
    );
}

#[test]
fn cpu_lists() {
    let mut mask = [0u64; 16];
    assert_eq!(cpu_list(&mask), None);
    mask[0] = 0b1;
    assert_eq!(cpu_list(&mask).as_deref(), Some("0"));
    mask[0] = 0b1011_0111;
    assert_eq!(cpu_list(&mask).as_deref(), Some("0-2,4-5,7"));
    // Runs across words and up to the last CPU.
    mask[0] = 1 << 63;
    mask[1] = 0b11;
    mask[15] = 1 << 63;
    assert_eq!(cpu_list(&mask).as_deref(), Some("63-65,1023"));
}

#[test]
fn signal_words() {
    assert_eq!(signal_word(28), "SIGWINCH");
    assert_eq!(signal_word(6), "SIGABRT");
    assert_eq!(signal_word(32), "signal 32");
    assert_eq!(signal_word(34), "SIGRTMIN+0");
    assert_eq!(signal_word(64), "SIGRTMIN+30");
}

fn region(start: u64, end: u64, backing: Backing, name: &str, file_offset: u64) -> RegionInfo {
    RegionInfo {
        start,
        end,
        prot: "r-xp".to_owned(),
        backing,
        name: name.to_owned(),
        stored: 0,
        extents: 0,
        compressed: false,
        in_file: Some(0),
        huge: false,
        guard: 0,
        flags: Vec::new(),
        file_offset,
    }
}

#[test]
fn locations() {
    let regions = [
        region(0x1000, 0x3000, Backing::File, "/lib/libc.so.6", 0x26000),
        region(0x3000, 0x4000, Backing::Anonymous, "", 0),
        region(0x8000, 0x9000, Backing::Vdso, "[vdso]", 0),
        region(0x9000, 0xa000, Backing::Heap, "[heap]", 0),
    ];
    let at = |addr| Location::of(&regions, addr).text();
    assert_eq!(at(0x1000), "libc.so.6+0x26000");
    assert_eq!(at(0x2ffe), "libc.so.6+0x27ffe");
    assert_eq!(at(0x3010), "[anon]+0x10");
    assert_eq!(at(0x8a00), "[vdso]+0xa00");
    assert_eq!(at(0x9008), "[heap]+0x8");
    assert_eq!(at(0x4000), "[unmapped]+0x4000");
    assert_eq!(at(0xa000), "[unmapped]+0xa000");
    assert_eq!(
        Location::of(&regions, 0x1004).path.as_deref(),
        Some("/lib/libc.so.6")
    );
}

#[test]
fn descriptors_say_what_a_restart_does() {
    use ckpt_image::{FD_ACTION_CLOSED, FD_ACTION_REOPEN, FD_ACTION_STDIO};
    use ckpt_image::{FD_KIND_DEVICE, FD_KIND_DIRECTORY, FD_KIND_PIPE, FD_KIND_REGULAR};
    let rec = |fd, kind, action, group, flags, pos| FdRecord {
        fd,
        kind,
        action,
        group,
        flags,
        pos,
        ..Default::default()
    };
    let all = [
        rec(0, FD_KIND_REGULAR, FD_ACTION_STDIO, 0, 0, 7),
        rec(1, FD_KIND_PIPE, FD_ACTION_STDIO, 1, 1, 0),
        rec(3, FD_KIND_REGULAR, FD_ACTION_REOPEN, 2, 0o2001, 12),
        rec(4, FD_KIND_REGULAR, FD_ACTION_REOPEN, 2, 0o2001, 12),
        rec(5, FD_KIND_DIRECTORY, FD_ACTION_REOPEN, 4, 0o200000, 3),
        rec(6, FD_KIND_DEVICE, FD_ACTION_REOPEN, 5, 2, 0),
        rec(7, FD_KIND_PIPE, FD_ACTION_CLOSED, 6, 0, 0),
    ];
    let info: Vec<FdInfo> = all
        .iter()
        .map(|f| FdInfo::gather(f, &all, b"/x", &[]))
        .collect();
    let said: Vec<(&str, &str)> = info
        .iter()
        .map(|f| (f.action, f.restart.as_str()))
        .collect();
    assert_eq!(
        said,
        [
            (
                "stdio",
                "the restart's own (the same file goes on at offset 7; reopened if closed)"
            ),
            ("stdio", "the restart's own"),
            ("reopen", "reopen at offset 12"),
            ("dup", "dup of 3 (shares its offset)"),
            ("reopen", "reopen at position 3"),
            ("reopen", "reopen"),
            ("closed", "left closed (not saved)"),
        ]
    );
    assert_eq!(
        (info[2].access, info[2].flags.as_slice()),
        ("w", &["append"][..])
    );
    assert_eq!(info[3].shares_with, Some(3));
    assert_eq!(info[2].shares_with, None);
    assert_eq!((info[5].access, info[1].kind), ("rw", "pipe"));
}
