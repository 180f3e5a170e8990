//! Prints 1, 2, 3, ... one per line, every INTERVAL ms (first argument, default 10).
use std::io::Write;
use std::time::Duration;

fn main() {
    let interval: u64 = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(10);
    let stdout = std::io::stdout();
    for n in 1u64.. {
        {
            let mut out = stdout.lock();
            writeln!(out, "{n}").expect("write stdout");
            out.flush().expect("flush stdout");
        }
        std::thread::sleep(Duration::from_millis(interval));
    }
}
