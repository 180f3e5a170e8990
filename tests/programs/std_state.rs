//! Rust standard library state across restarts.
//!
//! `std_state state ARGS…` builds a HashMap, a BTreeMap and a Vec, prints "ready", then
//! "tick N" every 10 ms, checking each time that `Instant` has not gone backwards. Whenever
//! its process id changes (it was restarted) it prints "restarted C", then "ok ITEM" or
//! "BAD ITEM: details" for each item, then "checked C", and ticks on. Items:
//!   maps     every entry of the three collections, and new insertions and lookups
//!   format   float and integer formatting and parsing
//!   instant  `Instant::now()` is not before the last instant seen before the checkpoint
//!   command  `Command::new("true").status()` succeeds
//!   args     `std::env::args()` is what it was at startup
//!   env      `CKPT_TEST_MARK` is what it was at startup
//!   thread   a new thread runs and can be joined
//! `std_state check` runs the checks once in the same process ("checked 0") and exits.
use std::collections::{BTreeMap, HashMap};
use std::process::Command;
use std::time::{Duration, Instant};

const MAP_ENTRIES: u64 = 100_000;
const TREE_ENTRIES: u64 = 50_000;
const VEC_ENTRIES: u64 = 300_000;

struct State {
    map: HashMap<u64, String>,
    tree: BTreeMap<String, u64>,
    vec: Vec<u64>,
    args: Vec<String>,
    mark: Option<String>,
    start: Instant,
    last: Instant,
}

fn check_maps(state: &State) -> Result<(), String> {
    if state.map.len() as u64 != MAP_ENTRIES {
        return Err(format!("the HashMap has {} entries", state.map.len()));
    }
    for i in 0..MAP_ENTRIES {
        match state.map.get(&i) {
            Some(value) if *value == format!("value {}", i * 3) => {}
            other => return Err(format!("HashMap[{i}] is {other:?}")),
        }
    }
    if state.tree.len() as u64 != TREE_ENTRIES {
        return Err(format!("the BTreeMap has {} entries", state.tree.len()));
    }
    for (i, (key, value)) in state.tree.iter().enumerate() {
        let i = i as u64;
        if *key != format!("key{i:06}") || *value != i * i {
            return Err(format!("BTreeMap entry {i} is {key:?} => {value}"));
        }
    }
    if state.vec.len() as u64 != VEC_ENTRIES {
        return Err(format!("the Vec has {} elements", state.vec.len()));
    }
    if let Some((i, v)) = (0..).zip(&state.vec).find(|&(i, v)| *v != i ^ 0x5555) {
        return Err(format!("Vec[{i}] is {v}"));
    }
    // New allocations and hashing with the saved random keys.
    let mut fresh: HashMap<String, usize> = HashMap::new();
    for i in 0..10_000usize {
        fresh.insert(format!("fresh {i}"), i);
    }
    if (0..10_000usize).any(|i| fresh.get(&format!("fresh {i}")) != Some(&i)) {
        return Err("a new HashMap lost entries".into());
    }
    Ok(())
}

fn check_format() -> Result<(), String> {
    let text = format!(
        "{:>8.3}|{:#x}|{:?}|{:e}|{}",
        std::f64::consts::PI,
        255u32,
        vec![1, 2],
        1234.5f64,
        0.1f64 + 0.2
    );
    let expected = "   3.142|0xff|[1, 2]|1.2345e3|0.30000000000000004";
    if text != expected {
        return Err(format!("formatted {text:?}, expected {expected:?}"));
    }
    match "2.5e-3".parse::<f64>() {
        Ok(value) if value == 0.0025 => Ok(()),
        other => Err(format!("\"2.5e-3\".parse::<f64>() gave {other:?}")),
    }
}

fn check_instant(state: &State) -> Result<(), String> {
    let now = Instant::now();
    if now < state.last {
        return Err(format!(
            "Instant::now() is {:?} before the last instant seen",
            state.last - now
        ));
    }
    let elapsed = state.start.elapsed();
    if elapsed < state.last - state.start {
        return Err(format!("elapsed() went back to {elapsed:?}"));
    }
    Ok(())
}

fn check_command() -> Result<(), String> {
    match Command::new("true").status() {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!("`true` exited with {status}")),
        Err(e) => Err(format!("cannot run `true`: {e}")),
    }
}

fn check_args(state: &State) -> Result<(), String> {
    let now: Vec<String> = std::env::args().collect();
    if now != state.args {
        return Err(format!("args are {now:?}, were {:?}", state.args));
    }
    Ok(())
}

fn check_env(state: &State) -> Result<(), String> {
    let now = std::env::var("CKPT_TEST_MARK").ok();
    if now != state.mark || now.is_none() {
        return Err(format!("CKPT_TEST_MARK is {now:?}, was {:?}", state.mark));
    }
    if let Ok(value) = std::env::var("CKPT_TEST_RESTART_ONLY") {
        return Err(format!(
            "CKPT_TEST_RESTART_ONLY={value} came from the restart's environment"
        ));
    }
    Ok(())
}

fn check_thread() -> Result<(), String> {
    match std::thread::spawn(|| 6 * 7).join() {
        Ok(42) => Ok(()),
        Ok(other) => Err(format!("the thread returned {other}")),
        Err(_) => Err("the thread panicked".into()),
    }
}

fn report(item: &str, result: Result<(), String>) {
    match result {
        Ok(()) => println!("ok {item}"),
        Err(why) => println!("BAD {item}: {why}"),
    }
}

fn check_all(state: &State, cycle: u32) {
    report("maps", check_maps(state));
    report("format", check_format());
    report("instant", check_instant(state));
    report("command", check_command());
    report("args", check_args(state));
    report("env", check_env(state));
    report("thread", check_thread());
    println!("checked {cycle}");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let start = Instant::now();
    let mut state = State {
        map: (0..MAP_ENTRIES)
            .map(|i| (i, format!("value {}", i * 3)))
            .collect(),
        tree: (0..TREE_ENTRIES)
            .map(|i| (format!("key{i:06}"), i * i))
            .collect(),
        vec: (0..VEC_ENTRIES).map(|i| i ^ 0x5555).collect(),
        mark: std::env::var("CKPT_TEST_MARK").ok(),
        args,
        start,
        last: start,
    };
    if state.args.get(1).map(String::as_str) == Some("check") {
        check_all(&state, 0);
        return;
    }

    println!("ready");
    let mut pid = std::process::id();
    let mut cycle = 0;
    for tick in 1u64.. {
        if std::process::id() != pid {
            pid = std::process::id();
            cycle += 1;
            println!("restarted {cycle}");
            check_all(&state, cycle);
        }
        let now = Instant::now();
        if now < state.last {
            println!("BAD instant: went back by {:?}", state.last - now);
        }
        state.last = now;
        println!("tick {tick}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
