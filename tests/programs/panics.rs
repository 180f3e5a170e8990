//! Rust panics through a checkpoint: every round panics a few frames deep (through a Drop
//! that must run) and catches it with catch_unwind; prints "ready", then "ok N" per round,
//! or "BAD …". Unwinding uses the program's own std and libgcc_s, which libckpt (no_std,
//! with no unwinder of its own) must leave alone.
use std::cell::Cell;
use std::io::Write;
use std::panic;

thread_local!(static DROPPED: Cell<u64> = const { Cell::new(0) });

struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        DROPPED.with(|d| d.set(d.get() + 1));
    }
}

fn deep(n: u32) -> u32 {
    let _g = Guard;
    if n == 0 {
        panic!("deep");
    }
    deep(n - 1) + 1
}

fn main() {
    panic::set_hook(Box::new(|_| {}));
    let mut out = std::io::stdout();
    writeln!(out, "ready").unwrap();
    for round in 1u64.. {
        let depth = (round % 7) as u32;
        let before = DROPPED.with(|d| d.get());
        let caught = panic::catch_unwind(|| deep(depth));
        let dropped = DROPPED.with(|d| d.get()) - before;
        let message = caught
            .as_ref()
            .err()
            .and_then(|p| p.downcast_ref::<&str>())
            .copied();
        if message != Some("deep") || dropped != u64::from(depth) + 1 {
            writeln!(out, "BAD round {round}: {message:?}, {dropped} drops").unwrap();
            std::process::exit(1);
        }
        writeln!(out, "ok {round}").unwrap();
        out.flush().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}
