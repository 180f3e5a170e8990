//! A worker pipeline of std::thread and std::sync::mpsc channels.
//!
//! Usage: pipeline ITEMS WORKERS WORK
//!
//! A generator sends 0..ITEMS on a bounded channel (sync_channel) to a dispatcher, which deals
//! them round-robin to WORKERS workers, each on its own bounded channel. A worker replaces
//! every item i by mix(i) iterated WORK times and sends (i, value) on one unbounded channel
//! (mpsc::channel, cloned senders) to the main thread, which adds up the values and checks
//! that every item arrives exactly once. Prints "ready" once every thread runs, "progress K"
//! after each tenth of the items, and at the end "total COUNT SUM XOR" (decimal) or a line
//! starting with "BAD".
use std::io::Write;
use std::sync::mpsc;
use std::thread;

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").expect("write stdout");
    out.flush().expect("flush stdout");
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("a number"))
        .collect();
    let [items, workers, work] = args[..] else {
        eprintln!("usage: pipeline ITEMS WORKERS WORK");
        std::process::exit(2);
    };

    let (to_dispatcher, from_generator) = mpsc::sync_channel::<u64>(256);
    let (to_main, results) = mpsc::channel::<(u64, u64)>();
    let mut handles = Vec::new();
    let mut worker_inputs = Vec::new();
    for _ in 0..workers {
        let (to_worker, from_dispatcher) = mpsc::sync_channel::<u64>(64);
        worker_inputs.push(to_worker);
        let to_main = to_main.clone();
        handles.push(thread::spawn(move || {
            for i in from_dispatcher {
                let mut value = i;
                for _ in 0..work {
                    value = mix(value);
                }
                to_main.send((i, value)).expect("main is listening");
            }
        }));
    }
    drop(to_main);
    handles.push(thread::spawn(move || {
        for (n, i) in from_generator.into_iter().enumerate() {
            worker_inputs[n % worker_inputs.len()]
                .send(i)
                .expect("worker is listening");
        }
    }));
    // The generator starts only after "ready": it waits for this go-ahead.
    let (go, wait_for_go) = mpsc::channel::<()>();
    handles.push(thread::spawn(move || {
        wait_for_go.recv().expect("the go-ahead");
        for i in 0..items {
            to_dispatcher.send(i).expect("dispatcher is listening");
        }
    }));
    say("ready");
    go.send(()).expect("generator is waiting");

    let mut seen = vec![false; items as usize];
    let (mut count, mut sum, mut xor) = (0u64, 0u64, 0u64);
    let step = (items / 10).max(1);
    for (i, value) in results {
        if std::mem::replace(&mut seen[i as usize], true) {
            say(&format!("BAD item {i} arrived twice"));
        }
        count += 1;
        sum = sum.wrapping_add(value);
        xor ^= value;
        if count % step == 0 {
            say(&format!("progress {}", count / step));
        }
    }
    for handle in handles {
        handle.join().expect("a thread panicked");
    }
    say(&format!("total {count} {sum} {xor}"));
}
