//! Seeded mutation fuzzing on stable Rust: a small random generator, byte-level mutation
//! strategies, and a runner that replays any failing case from its seed and number.
//!
//! Shared by the fuzz tests of `ckpt-image` (`tests/fuzz.rs`) and `restart-stub`
//! (`tests/fuzz.rs`, which includes this file by path); each uses part of it.
//!
//! A target is a closure run once per case with its own [`Rng`], seeded from the target's
//! seed and the case number, so any one case can be run again alone:
//!
//! - `CKPT_FUZZ_SEED=0x…` runs every target from that seed instead of its fixed one (to look
//!   further than the normal run does);
//! - `CKPT_FUZZ_CASE=N` runs only case `N` (with the seed the failure printed);
//! - `CKPT_FUZZ_SCALE=K` runs `K` times as many cases (a longer soak: `K=100` is minutes).
//!
//! The normal run is deterministic: the same cases every time. Debug builds (`cargo test`
//! without `--release`) run a tenth of the cases, with overflow checks on, which also turns
//! silent wrapping arithmetic in the code under test into failures.
#![allow(dead_code)]

use std::io::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A case that runs this long is taken for a hang (a decoder looping forever would hang the
/// restart stub just the same); a case takes microseconds.
const HANG: Duration = Duration::from_secs(20);

/// SplitMix64: tiny, fast, and good enough to drive mutations.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// A number in `lo..=hi`.
    pub fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True once in `n` times on average.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// One of `items` (not empty).
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }

    /// A length up to `max`: mostly short, often right at a power of two or a page size
    /// give or take one (where buffers and loops change their step), sometimes anything.
    pub fn length(&mut self, max: usize) -> usize {
        let n = match self.below(4) {
            0 => self.below(17),
            1 => {
                let edge = self.pick(&[8usize, 15, 16, 32, 64, 255, 256, 4096, 65535, 65536]);
                (edge + self.below(3)).saturating_sub(1)
            }
            2 => self.below(300),
            _ => self.below(max + 1),
        };
        n.min(max)
    }

    /// A value of the kind that finds edge cases: zero, small, a boundary of some width
    /// give or take a little, a page multiple, the top of user space, or anything.
    pub fn interesting(&mut self) -> u64 {
        let near = |rng: &mut Rng, v: u64| v.wrapping_add(rng.below(5) as u64).wrapping_sub(2);
        match self.below(8) {
            0 => self.below(5) as u64,
            1 => {
                let v = self.pick(&[
                    0x7f,
                    0xff,
                    0x7fff,
                    0xffff,
                    0x7fff_ffff,
                    0xffff_ffff,
                    i64::MAX as u64,
                    u64::MAX,
                ]);
                near(self, v)
            }
            2 => 1u64 << self.below(64),
            3 => (self.below(64) as u64) << 12,
            4 => near(self, 0x0000_8000_0000_0000),
            5 => u64::MAX - self.below(16) as u64,
            6 => near(self, 0x1000),
            _ => self.next_u64(),
        }
    }
}

/// One mutation: the strategies a case combines.
#[derive(Clone, Copy, Debug)]
pub enum Mutation {
    /// Flip one bit.
    FlipBit,
    /// Set one byte to a random or a telling value (0, 0xff, 0x80, blank, newline …).
    SetByte,
    /// Overwrite a 2-, 4- or 8-byte little-endian word (often aligned, as a record's field
    /// is) with an [`Rng::interesting`] value.
    SetWord,
    /// Add or subtract a little to such a word.
    NudgeWord,
    /// Cut the input short.
    Truncate,
    /// Append random bytes or a piece of a donor.
    Extend,
    /// Copy a piece of a donor (or of the input itself) over part of the input.
    SpliceOver,
    /// Insert a piece of a donor, of the input, or random bytes.
    Insert,
    /// Remove a range.
    Delete,
}

pub const MUTATIONS: [Mutation; 9] = [
    Mutation::FlipBit,
    Mutation::SetByte,
    Mutation::SetWord,
    Mutation::NudgeWord,
    Mutation::Truncate,
    Mutation::Extend,
    Mutation::SpliceOver,
    Mutation::Insert,
    Mutation::Delete,
];

/// Mutations that keep the length (for inputs whose length is fixed by something else).
pub const IN_PLACE: [Mutation; 5] = [
    Mutation::FlipBit,
    Mutation::SetByte,
    Mutation::SetWord,
    Mutation::NudgeWord,
    Mutation::SpliceOver,
];

/// A range of `data` (possibly empty) to take a piece from.
fn piece(rng: &mut Rng, len: usize) -> (usize, usize) {
    if len == 0 {
        return (0, 0);
    }
    let start = rng.below(len);
    let n = rng.length(len - start);
    (start, start + n)
}

/// An offset for a word of `width` bytes, aligned to `width` half of the time.
fn word_at(rng: &mut Rng, len: usize, width: usize) -> Option<usize> {
    if len < width {
        return None;
    }
    let at = rng.below(len - width + 1);
    Some(if rng.one_in(2) {
        at / width * width
    } else {
        at
    })
}

/// Applies `m` to `data`; `donors` are other valid inputs to splice from.
pub fn apply(rng: &mut Rng, m: Mutation, data: &mut Vec<u8>, donors: &[&[u8]]) {
    let len = data.len();
    match m {
        Mutation::FlipBit if len > 0 => {
            let bit = rng.below(len * 8);
            data[bit / 8] ^= 1 << (bit % 8);
        }
        Mutation::SetByte if len > 0 => {
            let at = rng.below(len);
            data[at] = if rng.one_in(2) {
                rng.pick(&[0u8, 0xff, 0x7f, 0x80, 1, b' ', b'\n', b'-', b'0', b'f'])
            } else {
                rng.next_u64() as u8
            };
        }
        Mutation::SetWord | Mutation::NudgeWord => {
            let width = rng.pick(&[2usize, 4, 8]);
            let Some(at) = word_at(rng, len, width) else {
                return;
            };
            let mut word = [0u8; 8];
            word[..width].copy_from_slice(&data[at..at + width]);
            let old = u64::from_le_bytes(word);
            let new = match m {
                Mutation::SetWord => rng.interesting(),
                _ => old.wrapping_add((rng.below(33) as u64).wrapping_sub(16)),
            };
            data[at..at + width].copy_from_slice(&new.to_le_bytes()[..width]);
        }
        Mutation::Truncate if len > 0 => {
            let keep = if rng.one_in(2) {
                len - 1 - rng.below(len.min(16))
            } else {
                rng.below(len)
            };
            data.truncate(keep);
        }
        Mutation::Extend => {
            let extra = match donors.len() {
                n if n > 0 && rng.one_in(2) => {
                    let donor = donors[rng.below(n)];
                    let (s, e) = piece(rng, donor.len());
                    donor[s..e].to_vec()
                }
                _ => {
                    let n = rng.length(64);
                    rng.bytes(n)
                }
            };
            data.extend_from_slice(&extra);
        }
        Mutation::SpliceOver if len > 0 => {
            let source = source(rng, data, donors);
            let (s, e) = piece(rng, source.len());
            let at = rng.below(len);
            let n = (e - s).min(len - at);
            data[at..at + n].copy_from_slice(&source[s..s + n]);
        }
        Mutation::Insert => {
            let chunk = if rng.one_in(3) {
                let n = rng.length(32);
                rng.bytes(n)
            } else {
                let source = source(rng, data, donors);
                let (s, e) = piece(rng, source.len());
                source[s..e].to_vec()
            };
            let at = rng.below(len + 1);
            data.splice(at..at, chunk);
        }
        Mutation::Delete if len > 0 => {
            let (s, e) = piece(rng, len);
            data.drain(s..e);
        }
        _ => {}
    }
}

fn source(rng: &mut Rng, data: &[u8], donors: &[&[u8]]) -> Vec<u8> {
    if !donors.is_empty() && rng.one_in(2) {
        rng.pick(donors).to_vec()
    } else {
        data.to_vec()
    }
}

/// Applies one to four mutations drawn from `from`.
pub fn mutate(rng: &mut Rng, data: &mut Vec<u8>, from: &[Mutation], donors: &[&[u8]]) {
    for _ in 0..rng.between(1, 4) {
        let m = rng.pick(from);
        apply(rng, m, data, donors);
    }
}

fn env_number(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={text} is not a number")))
}

/// The fixed seed of a target: its name, hashed (FNV-1a), so that targets differ.
fn default_seed(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Runs `cases` cases of the target `name` (fewer in a debug build, more with
/// `CKPT_FUZZ_SCALE`); `case` returns `Err(why)` when a property does not hold. A failing
/// case, or one that panics, fails the test with its seed, its number, and the command that
/// runs it again alone. Returns how many cases ran.
pub fn run(
    name: &str,
    cases: usize,
    mut case: impl FnMut(&mut Rng) -> Result<(), String>,
) -> usize {
    let seed = env_number("CKPT_FUZZ_SEED").unwrap_or_else(|| default_seed(name));
    let scale = env_number("CKPT_FUZZ_SCALE").unwrap_or(1) as usize;
    let cases = if cfg!(debug_assertions) {
        (cases / 10).max(1)
    } else {
        cases
    } * scale;
    let only = env_number("CKPT_FUZZ_CASE").map(|c| c as usize);
    let started = Instant::now();
    let range = match only {
        Some(c) => c..c + 1,
        None => 0..cases,
    };
    let ran = range.len();
    let watchdog = Watchdog::start(name, seed);
    for n in range {
        watchdog.at(n);
        let mut rng = Rng::new(seed ^ (n as u64).wrapping_mul(0xd6e8_feb8_6659_fd93));
        let outcome = catch_unwind(AssertUnwindSafe(|| case(&mut rng)));
        let why = match outcome {
            Ok(Ok(())) => continue,
            Ok(Err(why)) => why,
            Err(panic) => {
                let text = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                format!("panicked: {text}")
            }
        };
        panic!(
            "fuzz target {name}, case {n} of seed {seed:#x}: {why}\n\
             run it alone: CKPT_FUZZ_SEED={seed:#x} CKPT_FUZZ_CASE={n} \
             cargo test --release -p {} --test fuzz {name}",
            env!("CARGO_PKG_NAME")
        );
    }
    drop(watchdog);
    println!(
        "fuzz target {name}: {ran} cases in {:.2} s (seed {seed:#x})",
        started.elapsed().as_secs_f64()
    );
    ran
}

/// Ends the test process, naming the case, when one case runs for longer than [`HANG`]:
/// a hang fails the test instead of stalling the run.
struct Watchdog {
    case: Arc<AtomicUsize>,
    done: Arc<AtomicBool>,
}

impl Watchdog {
    fn start(name: &str, seed: u64) -> Watchdog {
        let case = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let (watched, finished, name) = (case.clone(), done.clone(), name.to_owned());
        std::thread::spawn(move || {
            let (mut last, mut since) = (usize::MAX, Instant::now());
            while !finished.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                let now = watched.load(Ordering::Relaxed);
                if now != last {
                    (last, since) = (now, Instant::now());
                } else if since.elapsed() > HANG {
                    // Straight to stderr: the test harness would swallow a captured message.
                    let _ = writeln!(
                        std::io::stderr(),
                        "fuzz target {name}, case {now} of seed {seed:#x}: still running after \
                         {HANG:?}, a hang\nrun it alone: CKPT_FUZZ_SEED={seed:#x} \
                         CKPT_FUZZ_CASE={now} cargo test --release -p {} --test fuzz {name}",
                        env!("CARGO_PKG_NAME")
                    );
                    std::process::exit(101);
                }
            }
        });
        Watchdog { case, done }
    }

    fn at(&self, case: usize) {
        self.case.store(case, Ordering::Relaxed);
    }
}

impl Drop for Watchdog {
    /// Also when the target fails: the watchdog must not outlive it.
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
    }
}

/// Fails a case with a message unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($why:tt)+) => {
        if !$cond {
            return Err(format!($($why)+));
        }
    };
}
