//! Prints 1, 2, 3, ... one per line, forever: `counter-rs [INTERVAL_MS]` (default 100).
//!
//! Try it with ckpt: `ckpt target/release/counter-rs`, ^Z, then `./counter-rs.ckpt`.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let interval_ms = match std::env::args().nth(1).map(|arg| arg.parse::<u64>()) {
        None => 100,
        Some(Ok(ms)) => ms,
        Some(Err(_)) => {
            eprintln!("usage: counter-rs [INTERVAL_MS]");
            return ExitCode::from(2);
        }
    };
    let stdout = std::io::stdout();
    for n in 1u64.. {
        let mut out = stdout.lock();
        if writeln!(out, "{n}").and_then(|()| out.flush()).is_err() {
            // stdout closed (e.g. piped into `head`): stop quietly.
            return ExitCode::SUCCESS;
        }
        drop(out);
        std::thread::sleep(Duration::from_millis(interval_ms));
    }
    ExitCode::SUCCESS
}
