//! The checkpoint core, shared by the asynchronous signal and (later) `ckpt_ckpt()`: freeze
//! the calling thread's context, capture, write, and — in a restarted process — pick up
//! where the capture left off and repair what a new process does not inherit.
//!
//! Everything here runs in a signal handler: signal-safe, no allocation, no locks, no stdio.

use core::ffi::c_void;
use core::sync::atomic::{AtomicBool, Ordering};

use ckpt_image::{SigactionRecord, NSIG, RESUMED};

use crate::arena::{Arena, ARENA};
use crate::capture::{self, Captured};
use crate::config::Config;
use crate::line::Line;
use crate::process::ProcessState;
use crate::sys::{self, Global};
use crate::write::{self, StubPlace, WriteError};

/// Set while a checkpoint is being taken; a second trigger meanwhile is refused.
static IN_PROGRESS: AtomicBool = AtomicBool::new(false);

/// Process-wide state of the library. Saved with the rest of memory.
pub struct State {
    pub config: Config,
    /// Offset of glibc's cached thread id in the thread control block, found at load.
    pub tid_offset: Option<u64>,
    /// glibc's `__rseq_offset` and whether rseq is registered (`__rseq_size > 0`).
    pub rseq_offset: Option<i64>,
    /// Where the stub of the image being written sits; unmapped after a restart.
    pub stub: StubPlace,
    /// Whether ckpt's handler is installed for `config.asyncsig` (the program's own action
    /// for it is kept by `signals`).
    pub async_installed: bool,
    /// The periodic timer (kernel id).
    /// The periodic timer's id and the pid of the process that made it.
    pub periodic_timer: Option<(i32, u32)>,
    /// Whether ckpt's handler is installed for the control signal (periodic and requested
    /// checkpoints, writers finishing).
    pub control_installed: bool,
    pub hooks: Hooks,
    /// The child writing an image, while it runs: at most one at a time.
    pub writer: Option<Writer>,
    /// A checkpoint asked for while the writer ran, taken when it has finished: signals and
    /// timer ticks that arrive meanwhile coalesce into this one.
    pub pending: Option<Trigger>,
    /// Process state outside memory, captured with each checkpoint and put back after a
    /// restart.
    pub process: ProcessState,
}

/// A forked image writer.
#[derive(Clone, Copy)]
pub struct Writer {
    pub pid: i32,
    /// The socket of the `ckpt checkpoint` request it answers: kept open here too, so that
    /// the requester hears of a writer that was killed before it could answer.
    pub answer: Option<i32>,
}

/// Most functions that can be registered of each kind.
pub const MAX_HOOKS: usize = 32;

/// A registered callback and its argument, as the C API passes them.
#[derive(Clone, Copy)]
pub struct Hook {
    pub f: extern "C" fn(*mut c_void),
    pub arg: *mut c_void,
}

/// The registered pre-checkpoint, post-checkpoint and restart callbacks.
#[derive(Clone, Copy, Default)]
pub struct Hooks {
    pub pre: HookList,
    pub post: HookList,
    pub restart: HookList,
}

#[derive(Clone, Copy)]
pub struct HookList {
    list: [Option<Hook>; MAX_HOOKS],
    len: usize,
}

impl HookList {
    pub const fn new() -> Self {
        HookList {
            list: [None; MAX_HOOKS],
            len: 0,
        }
    }

    /// Adds a hook; false when the list is full.
    pub fn push(&mut self, h: Hook) -> bool {
        if self.len == MAX_HOOKS {
            return false;
        }
        self.list[self.len] = Some(h);
        self.len += 1;
        true
    }

    fn run(&self, reverse: bool) {
        let hooks = self.list[..self.len].iter().flatten();
        let call = |h: &Hook| (h.f)(h.arg);
        if reverse {
            hooks.rev().for_each(call);
        } else {
            hooks.for_each(call);
        }
    }
}

impl Default for HookList {
    fn default() -> Self {
        HookList::new()
    }
}

pub static STATE: Global<Option<State>> = Global::new(None);

/// What a checkpoint attempt came to.
#[derive(Clone, Copy, Debug)]
pub enum Outcome {
    /// The image is written and this is the original process.
    Written,
    /// The original process continues while a copy-on-write child writes the image.
    Forked,
    /// This is a restarted process, returning from the capture point.
    Restarted,
    /// No image was written; the program keeps running.
    Failed(WriteError),
    /// Another checkpoint was in progress.
    Busy,
    /// A forked writer was still writing the previous image: this checkpoint is taken once
    /// it has finished.
    Coalesced,
}

struct Job<'a> {
    state: &'a mut State,
    arena: &'a mut Arena,
    name: &'a [u8],
    /// The signal mask the restarted thread gets back (the mask of the program, not the
    /// one the checkpoint path runs with).
    sigmask: u64,
    /// Write the image from a forked child, so that the program pauses only for the fork.
    fork: bool,
    /// Where to answer a `ckpt checkpoint` request once the image is complete.
    respond: Option<i32>,
    /// Where the signal that started this checkpoint interrupted the program (0: none).
    interrupted_pc: u64,
    error: Option<WriteError>,
}

/// Exclusive use of the library's state and reserved memory: held by a checkpoint (from its
/// pre-checkpoint hooks to its post-checkpoint or restart hooks) and by the API calls that
/// change the configuration. Signal-safe: it never waits.
pub struct Exclusive {
    pub state: &'static mut State,
    pub arena: &'static mut Arena,
}

impl Exclusive {
    pub fn try_acquire() -> Option<Exclusive> {
        if IN_PROGRESS.swap(true, Ordering::Acquire) {
            return None;
        }
        // SAFETY: IN_PROGRESS gives the holder exclusive use of the state and the arena;
        // both were set up at library load, before any trigger or API call could run.
        let (state, arena) = unsafe { (STATE.get(), ARENA.get()) };
        match (state.as_mut(), arena.as_mut()) {
            (Some(state), Some(arena)) => Some(Exclusive { state, arena }),
            _ => {
                IN_PROGRESS.store(false, Ordering::Release);
                None
            }
        }
    }

    /// Waits (yielding) until no checkpoint is in progress. Not for signal handlers.
    pub fn acquire() -> Option<Exclusive> {
        for _ in 0..1_000_000 {
            if let Some(x) = Exclusive::try_acquire() {
                return Some(x);
            }
            sys::sched_yield();
        }
        None
    }
}

impl Drop for Exclusive {
    fn drop(&mut self) {
        IN_PROGRESS.store(false, Ordering::Release);
    }
}

/// How the checkpoint was triggered: what the process does after a successful one.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The asynchronous signal: continue or exit as configured.
    Signal,
    /// A periodic checkpoint: always continue.
    Periodic,
    /// A checkpoint requested by `ckpt checkpoint`: always continue, and answer.
    Request,
    /// `ckpt_ckpt()`: continue or exit as configured; `sigmask` is the caller's mask.
    Call { sigmask: u64 },
}

/// Takes a checkpoint of the calling (only) thread with the hooks around it; `name`
/// overrides the configured name for this checkpoint. Without CKPT_CONTINUE, a successful
/// non-periodic checkpoint ends the process here. Signal-safe (so are the hooks, by contract).
pub fn checkpoint(name: Option<&[u8]>, trigger: Trigger, respond: Option<i32>) -> Outcome {
    let Some(mut x) = Exclusive::try_acquire() else {
        return Outcome::Busy;
    };
    crate::signals::audit_handlers();
    if writer_running(x.state) {
        // One writer at a time: a storm of checkpoint signals must not fork a storm of
        // writers. Signals and ticks wait for it (at most one more checkpoint); a request
        // is told to ask again; `ckpt_ckpt` writes from this process, as always.
        match trigger {
            Trigger::Signal | Trigger::Periodic => {
                if x.state.pending != Some(Trigger::Signal) {
                    x.state.pending = Some(trigger);
                }
                return Outcome::Coalesced;
            }
            Trigger::Request => return Outcome::Busy,
            Trigger::Call { .. } => {}
        }
    }
    // A copy: the hooks registered when the checkpoint began are the ones that run, in this
    // process and in a restarted one.
    let hooks = x.state.hooks;
    hooks.pre.run(false);
    let continues =
        x.state.config.continues || matches!(trigger, Trigger::Periodic | Trigger::Request);
    let pending_before = sys::sigpending();
    let fork = continues && x.state.config.fork && !matches!(trigger, Trigger::Call { .. });
    let outcome = take(&mut x, name, trigger, fork, respond);
    if let Outcome::Failed(_) = outcome {
        // Writing past RLIMIT_FSIZE raised SIGXFSZ (held back while we ran), whose default
        // action would end the program the failed checkpoint was protecting: drop it.
        let xfsz = 1u64 << (libc::SIGXFSZ - 1);
        if pending_before & xfsz == 0 && sys::sigpending() & xfsz != 0 {
            sys::discard_pending(libc::SIGXFSZ);
        }
    }
    match outcome {
        Outcome::Restarted => hooks.restart.run(true),
        Outcome::Written if !continues => sys::exit_now(0),
        Outcome::Written | Outcome::Failed(_) => hooks.post.run(false),
        // The post-checkpoint hooks run when the writer has finished (on_control_signal).
        Outcome::Forked => {}
        Outcome::Busy | Outcome::Coalesced => {}
    }
    outcome
}

/// Whether the image writer child is still running; one that has finished is reaped. It is
/// a clone child (its exit is announced by the control signal, not SIGCHLD, and the
/// program's own `wait` never sees it); reaping it here as well covers an exit signal the
/// kernel could not queue. Signal-safe.
fn writer_running(state: &mut State) -> bool {
    let Some(writer) = state.writer else {
        return false;
    };
    match sys::reap_nohang(writer.pid) {
        None => true,
        Some(status) => {
            writer_gone(state, status);
            false
        }
    }
}

/// The writer has exited with wait status `status` (and was reaped): one killed before it
/// finished has no image (it was never named, see write.rs), and a requester waiting for
/// its answer is told so. Signal-safe.
fn writer_gone(state: &mut State, status: i32) {
    let Some(writer) = state.writer.take() else {
        return;
    };
    if let Some(fd) = writer.answer {
        if libc::WIFSIGNALED(status) {
            let mut why = Line::<128>::new();
            why.push(b"the image writer (process ")
                .push_decimal(writer.pid as u64)
                .push(b") was killed by signal ")
                .push_decimal(libc::WTERMSIG(status) as u64)
                .push(b"; no checkpoint was written");
            crate::request::refuse(fd, why.as_bytes());
        }
        sys::close(fd);
    }
}

/// The checkpoint itself, under the caller's hold. Signal-safe.
fn take(
    x: &mut Exclusive,
    name: Option<&[u8]>,
    trigger: Trigger,
    fork: bool,
    respond: Option<i32>,
) -> Outcome {
    let mut name_buf = [0u8; crate::config::MAXNAME];
    let name = match name {
        Some(n) => n,
        None => {
            let n = x.state.config.name_bytes();
            name_buf[..n.len()].copy_from_slice(n);
            &name_buf[..n.len()]
        }
    };
    let sigmask = match trigger {
        Trigger::Call { sigmask } => sigmask,
        _ => sys::sigmask(),
    };
    let mut job = Job {
        state: &mut *x.state,
        arena: &mut *x.arena,
        name,
        sigmask,
        fork,
        respond,
        interrupted_pc: match trigger {
            Trigger::Call { .. } => 0,
            _ => INTERRUPTED_PC.load(Ordering::Relaxed),
        },
        error: None,
    };
    // A process that is not dumpable cannot open its own /proc/self/auxv, pagemap or mem
    // (they belong to root then). It is dumpable while its checkpoint is taken, which
    // exposes nothing the checkpoint file itself does not hold.
    let undumpable = sys::dumpable() != 1;
    job.state.process.undumpable = undumpable;
    if undumpable {
        sys::set_dumpable(true);
    }
    let ctx = &mut job.arena.thread.context as *mut ckpt_image::ResumeContext;
    // SAFETY: ctx points into the arena, valid for writes; `run` is called with a pointer to
    // `job`, which outlives the call. In a restarted process the call returns RESUMED into
    // this frame, which the image preserved because it was suspended in the call.
    let r = unsafe { sys::capture_and_run(ctx, run, (&mut job as *mut Job).cast()) };
    if r == RESUMED {
        after_restart(x.state, x.arena);
        return Outcome::Restarted;
    }
    if undumpable {
        sys::set_dumpable(false);
    }
    let outcome = match r {
        0 => Outcome::Written,
        2 => Outcome::Forked,
        _ => Outcome::Failed(job.error.unwrap_or(WriteError::Write(libc::EIO))),
    };
    if let (Some(fd), Outcome::Written | Outcome::Failed(_)) = (respond, outcome) {
        let result = match outcome {
            Outcome::Failed(e) => Err(e),
            _ => Ok(()),
        };
        crate::request::answer(fd, name, result);
    }
    outcome
}

/// The body run below the capture point: everything from here on may be overwritten in
/// the image without harm, because the restarted process resumes in the capture point.
extern "C" fn run(arg: *mut c_void) -> u64 {
    // SAFETY: `take` passes a pointer to its live Job.
    let job = unsafe { &mut *(arg as *mut Job) };
    match capture_and_write(job) {
        Ok(false) => 0,
        Ok(true) => 2,
        Err(e) => {
            job.error = Some(e);
            1
        }
    }
}

/// Captures the process and writes its image; `Ok(true)` when a forked child does the
/// writing.
fn capture_and_write(job: &mut Job) -> Result<bool, WriteError> {
    let arena = &mut *job.arena;
    let state = &mut *job.state;

    // Thread state not in the kernel's signal frame.
    let fs = sys::fs_base();
    let t = &mut arena.thread;
    t.tid = sys::gettid();
    t.fs_base = fs;
    t.xcr0 = ckpt_image::xcr0();
    t.sigmask = job.sigmask;
    (t.altstack_sp, t.altstack_flags, t.altstack_size) = sys::sigaltstack();
    (t.robust_list_head, t.robust_list_len) = sys::robust_list();
    let glibc_rseq = state.rseq_offset.map(|off| fs.wrapping_add(off as u64));
    (t.rseq_area, t.rseq_len, t.rseq_sig) = crate::rseq::current(glibc_rseq).unwrap_or((0, 0, 0));
    if let Some(off) = state.tid_offset {
        t.clear_child_tid = fs + off;
    }
    let (library_timers, own_signals) = (library_timers(state), own_signals(&state.config));
    state.process.capture(arena.misc);
    crate::clocks::note_checkpoint();
    let p = &mut state.process;
    p.pending = crate::timers::capture(arena.maps, library_timers, p.pending, own_signals);
    for (i, sa) in arena.sigactions.iter_mut().enumerate() {
        *sa = SigactionRecord::default();
        let _ = sys::rt_sigaction(i as i32 + 1, None, Some(sa));
    }
    debug_assert_eq!(arena.sigactions.len(), NSIG);

    // The kernel's view of the layout, and a refusal for what we cannot restore yet.
    let n = sys::read_file(b"/proc/self/stat\0", arena.misc).map_err(WriteError::ReadProc)?;
    let (mut mm, threads) =
        write::parse_stat(&arena.misc[..n]).ok_or(WriteError::ReadProc(libc::EIO))?;
    if threads > 1 {
        return Err(WriteError::MultiThreaded);
    }
    mm.brk = sys::current_brk();
    let auxv_bytes = sys::words_as_bytes(arena.auxv);
    let n = sys::read_file(b"/proc/self/auxv\0", auxv_bytes).map_err(WriteError::ReadProc)?;
    let mut auxv_words = 0;
    while auxv_words + 1 < n / 8 {
        let key = arena.auxv[auxv_words];
        auxv_words += 2;
        if key == 0 {
            break;
        }
    }

    // The writer child inherits no memory locks: they are noted for it (or, where they
    // cannot be, this process writes the image itself).
    if job.fork && capture::note_locks(arena) {
        let forked = fork_complete_copy(arena);
        if forked != Some(0) {
            capture::forget_locks(arena);
        }
        match forked {
            Some(0) => {
                // The child: a copy-on-write snapshot of the process as it is now.
                let result = capture_regions_and_write(job, mm, auxv_words);
                if let Err(e) = result {
                    report_failure(job.name, e);
                }
                if let Some(fd) = job.respond {
                    crate::request::answer(fd, job.name, result);
                }
                sys::exit_now(if result.is_ok() { 0 } else { 1 });
            }
            Some(pid) => {
                state.writer = Some(Writer {
                    pid,
                    answer: job.respond,
                });
                return Ok(true);
            }
            // No child, or one that does not see all of the process: write from here, as
            // without CKPT_FORK.
            None => {}
        }
    }
    capture_regions_and_write(job, mm, auxv_words).map(|()| false)
}

/// Forks the writer child, if it sees all of the process's memory: `Some(0)` in the child,
/// `Some(pid)` in the parent, `None` (in the parent) when there is no such child.
///
/// Memory marked `MADV_DONTFORK` (device and DMA buffers, some allocators) is not in a child
/// at all; a child would write a checkpoint without it. So the parent sums the address space
/// it has, and the child, before anything else, sums its own and answers through a pipe
/// whether it has as much; if not it exits unheard of and the parent writes the image itself.
/// That costs the pause two reads of the maps, a few dozen microseconds. Signal-safe.
fn fork_complete_copy(arena: &mut Arena) -> Option<i32> {
    let n = sys::read_file(b"/proc/self/maps\0", arena.maps).ok()?;
    if n == arena.maps.len() {
        return None;
    }
    let ours = capture::mapped_bytes(&arena.maps[..n]);
    let (answer, tell) = sys::pipe().ok()?;
    let forked = sys::fork_writer(crate::config::CONTROL_SIGNAL);
    if let Ok(0) = forked {
        sys::close(answer);
        let complete = match sys::read_file(b"/proc/self/maps\0", arena.maps) {
            Ok(n) if n < arena.maps.len() => capture::mapped_bytes(&arena.maps[..n]) >= ours,
            _ => false,
        };
        sys::write_byte(tell, complete as u8);
        sys::close(tell);
        if !complete {
            sys::exit_now(0);
        }
        return Some(0);
    }
    sys::close(tell);
    let Ok(pid) = forked else {
        sys::close(answer);
        return None;
    };
    // The child answers within microseconds; one that does not within seconds is stuck, and
    // must not hold the program in its signal handler.
    let mut verdict = [0u8; 1];
    let answered = sys::wait_readable(answer, 5000);
    let complete =
        answered && matches!(sys::read_full(answer, &mut verdict), Ok(1)) && verdict[0] == 1;
    sys::close(answer);
    if !complete {
        if !answered {
            sys::kill_child(pid);
        }
        sys::reap(pid);
        return None;
    }
    Some(pid)
}

fn capture_regions_and_write(
    job: &mut Job,
    mm: ckpt_image::MmLayout,
    auxv_words: usize,
) -> Result<(), WriteError> {
    let (state, arena, name) = (&mut *job.state, &mut *job.arena, job.name);
    let mut cap: Captured = capture::capture_regions(arena).map_err(WriteError::Capture)?;
    cap.auxv_words = auxv_words;
    let pc = job.interrupted_pc;
    let in_vdso = arena.regions[..cap.regions].iter().any(|r| {
        r.flags & ckpt_image::region_flags::VDSO != 0 && (r.start..r.start + r.len).contains(&pc)
    });
    arena.thread.flags = if in_vdso {
        ckpt_image::THREAD_IN_VDSO
    } else {
        0
    };
    let cfg = state.config;
    let opts = write::WriteOptions {
        fsync: cfg.fsync,
        compress: cfg.compress,
    };
    write::write_image(arena, &cap, name, opts, mm, &mut state.stub)
}

/// Repairs, in a restarted process, what the kernel does not carry over: the stub's memory
/// is released, glibc's cached thread id, the robust futex list and rseq are registered for
/// the new thread. Signal-safe.
fn after_restart(state: &mut State, arena: &mut Arena) {
    sys::munmap(state.stub.base, state.stub.reserve);
    let t = &arena.thread;
    if let Some(off) = state.tid_offset {
        let at = t.fs_base + off;
        crate::mutex::remember_old_tid(t.tid);
        sys::store_u32(at, sys::gettid());
        sys::set_tid_address(at);
    }
    if t.robust_list_head != 0 {
        sys::set_robust_list(t.robust_list_head, t.robust_list_len);
    }
    if t.rseq_len != 0 {
        let _ = sys::rseq_register(t.rseq_area, t.rseq_len, t.rseq_sig);
    }
    let p = &state.process;
    p.restore(arena.misc);
    for (which, &(interval, value)) in p.itimers.iter().enumerate() {
        if value != 0 {
            sys::set_itimer(which, interval, value);
        }
    }
    // Former pids and tids name this process now (CPU-time clock ids); the program's POSIX
    // timers come back with their ids before the library makes its own (below).
    crate::clocks::note_restart();
    crate::timers::restore();
    // Signals that were pending come back pending (one instance each); not ckpt's own,
    // which would checkpoint again at once.
    for sig in 1..=64 {
        let ours = sig == state.config.asyncsig || sig == crate::config::CONTROL_SIGNAL;
        if p.pending & (1u64 << (sig - 1)) != 0 && !ours {
            sys::raise_in_thread(sig);
        }
    }
    // Kernel timers do not survive; the periodic one is created again for this process.
    state.periodic_timer = None;
    // The original process's writer child is not this process's (nor is the socket it
    // answered on: that descriptor number may be the program's own now).
    state.writer = None;
    state.pending = None;
    note_vdso(arena);
    if state.config.msperiod != 0 {
        let _ = crate::trigger::arm_periodic(state);
    }
}

/// The library's own POSIX timers in this process (-1: none): a checkpoint leaves them out,
/// and the library makes them again itself. Signal-safe.
fn library_timers(state: &State) -> [i32; 2] {
    let pid = sys::getpid();
    let periodic = match state.periodic_timer {
        Some((id, owner)) if owner == pid => id,
        _ => -1,
    };
    let retry = match RETRY_TIMER.load(Ordering::Relaxed) {
        id if id >= 0 && RETRY_TIMER_PID.load(Ordering::Relaxed) == pid => id,
        _ => -1,
    };
    [periodic, retry]
}

/// ckpt's own signals, bit `sig - 1`: the checkpoint signal and the control signal.
fn own_signals(config: &Config) -> u64 {
    let bit = |sig: i32| match sig {
        1..=64 => 1u64 << (sig - 1),
        _ => 0,
    };
    bit(config.asyncsig) | bit(crate::config::CONTROL_SIGNAL)
}

/// Prints why a checkpoint failed, in one line. Signal-safe.
pub fn report_failure(name: &[u8], err: WriteError) {
    let (what, errno) = err.describe();
    let mut line = Line::<1024>::new();
    line.push(b"ckpt: checkpoint to '")
        .push(&name[..name.len().min(512)])
        .push(b"' failed: ")
        .push(what.as_bytes());
    if let Some(addr) = err.address() {
        line.push(b" at ").push_hex(addr);
    }
    if errno != 0 {
        line.push(b": ")
            .push(errno_name(errno).as_bytes())
            .push(b" (errno ")
            .push_decimal(errno as u64)
            .push(b")");
    }
    line.push(b"; the program continues\n");
    sys::write_stderr(line.as_bytes());
}

pub fn errno_name(e: i32) -> &'static str {
    match e {
        libc::ENOSPC => "no space left on device",
        libc::EACCES => "permission denied",
        libc::EPERM => "operation not permitted",
        libc::ENOENT => "no such file or directory",
        libc::ENAMETOOLONG => "file name too long",
        libc::EROFS => "read-only file system",
        libc::EDQUOT => "disk quota exceeded",
        libc::EFBIG => "file too large",
        libc::EIO => "input/output error",
        libc::EEXIST => "file exists",
        libc::ELOOP => "too many symbolic links (a symlink at the temp name?)",
        libc::ENOTDIR => "not a directory",
        libc::EISDIR => "is a directory",
        libc::ENOMEM => "out of memory",
        libc::EINVAL => "invalid argument",
        libc::ECONNREFUSED => "connection refused",
        libc::ETIMEDOUT => "timed out",
        _ => "system error",
    }
}

/// The handler of the asynchronous checkpoint signal. Signal-safe.
pub(crate) extern "C" fn on_checkpoint_signal(
    _sig: i32,
    _info: *mut libc::siginfo_t,
    ctx: *mut c_void,
) {
    // SAFETY: ctx is what the kernel passed to this SA_SIGINFO handler.
    let pc = unsafe { sys::interrupted_pc(ctx) };
    run_outside_vdso(pc, Retry::Signal);
}

/// Takes the checkpoint `what` asks for, unless `pc` (where its signal interrupted the
/// program) is inside the vDSO: then it is put off (`defer_inside_vdso`). Signal-safe.
fn run_outside_vdso(pc: u64, what: Retry) {
    if defer_inside_vdso(pc, what) {
        return;
    }
    INTERRUPTED_PC.store(pc, Ordering::Relaxed);
    match what {
        Retry::Signal => handle(Trigger::Signal),
        Retry::Periodic => handle(Trigger::Periodic),
        Retry::Request(pid, value) => crate::request::serve(pid, value),
    }
}

/// The vDSO's address range, to tell a signal that interrupted the program inside it. Set at
/// library load and after each restart. Signal-safe.
pub fn note_vdso(arena: &mut Arena) {
    let range = match sys::read_file(b"/proc/self/maps\0", arena.maps) {
        Ok(n) if n < arena.maps.len() => capture::vdso_range(&arena.maps[..n]),
        _ => None,
    };
    let (lo, hi) = range.unwrap_or((0, 0));
    VDSO_RANGE[0].store(lo, Ordering::Relaxed);
    VDSO_RANGE[1].store(hi, Ordering::Relaxed);
    RETRY_TIMER.store(-1, Ordering::Relaxed);
}

static VDSO_RANGE: [core::sync::atomic::AtomicU64; 2] = [
    core::sync::atomic::AtomicU64::new(0),
    core::sync::atomic::AtomicU64::new(0),
];
/// The one-shot timer that tries a checkpoint again (-1: not created in this process), the
/// tries so far, and what to try: `RETRY_SIGNAL`, `RETRY_PERIODIC`, or a request (the
/// requester's pid and value, as `ckpt checkpoint` sent them).
static RETRY_TIMER: core::sync::atomic::AtomicI32 = core::sync::atomic::AtomicI32::new(-1);
static RETRY_TIMER_PID: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
static RETRIES: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
static RETRY_WHAT: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
static RETRY_REQUEST: [core::sync::atomic::AtomicU32; 2] = [
    core::sync::atomic::AtomicU32::new(0),
    core::sync::atomic::AtomicU32::new(0),
];
const RETRY_SIGNAL: u32 = 1;
const RETRY_PERIODIC: u32 = 2;
const RETRY_REQUEST_WHAT: u32 = 3;

/// What a deferred checkpoint is.
#[derive(Clone, Copy)]
enum Retry {
    Signal,
    Periodic,
    /// A `ckpt checkpoint` request: the requester's pid and the signal's value.
    Request(u32, u32),
}
/// The control signal's value when it comes from the retry timer.
const RETRY_VALUE: i32 = 0x5254_5259;
/// Tries are 20 µs apart, for at most 50 ms: a program in a tight loop of clock calls is
/// outside the vDSO a tenth of the time or more, so a try finds it there within a few
/// hundred microseconds.
const RETRY_NS: u64 = 20_000;
const MAX_RETRIES: u32 = 2500;

/// A checkpoint that would catch the program inside the vDSO is tried again a little later:
/// a thread interrupted there resumes in vDSO code reading the kernel's data directly, which
/// only works under a kernel with the same vDSO, while one interrupted anywhere else restarts
/// under any (the stub forwards the old vDSO's functions). Likewise inside the mutex
/// wrappers and glibc's locking code (`mutex::in_critical_code`). True when the try is put
/// off; after MAX_RETRIES the checkpoint is taken anyway (and marked `THREAD_IN_VDSO` when
/// it is inside the vDSO). Signal-safe.
fn defer_inside_vdso(pc: u64, what: Retry) -> bool {
    let (lo, hi) = (
        VDSO_RANGE[0].load(Ordering::Relaxed),
        VDSO_RANGE[1].load(Ordering::Relaxed),
    );
    let unsafe_pc = (lo..hi).contains(&pc) || crate::mutex::in_critical_code(pc);
    if !unsafe_pc || RETRIES.fetch_add(1, Ordering::Relaxed) >= MAX_RETRIES {
        RETRIES.store(0, Ordering::Relaxed);
        return false;
    }
    let saved_errno = sys::get_errno();
    let mut id = RETRY_TIMER.load(Ordering::Relaxed);
    // Timers are not inherited: in a child, the id is stale (and may name one of its own).
    let pid = sys::getpid();
    if id < 0 || RETRY_TIMER_PID.load(Ordering::Relaxed) != pid {
        id =
            sys::timer_create_for_thread(crate::config::CONTROL_SIGNAL, sys::gettid(), RETRY_VALUE)
                .unwrap_or(-1);
        RETRY_TIMER.store(id, Ordering::Relaxed);
        RETRY_TIMER_PID.store(pid, Ordering::Relaxed);
    }
    let armed = id >= 0 && sys::timer_fire_in(id, RETRY_NS).is_ok();
    sys::set_errno(saved_errno);
    if !armed {
        RETRIES.store(0, Ordering::Relaxed);
        return false;
    }
    let code = match what {
        Retry::Signal => RETRY_SIGNAL,
        Retry::Periodic => RETRY_PERIODIC,
        Retry::Request(pid, value) => {
            RETRY_REQUEST[0].store(pid, Ordering::Relaxed);
            RETRY_REQUEST[1].store(value, Ordering::Relaxed);
            RETRY_REQUEST_WHAT
        }
    };
    RETRY_WHAT.store(code, Ordering::Relaxed);
    true
}

/// Where the signal that started the checkpoint under way interrupted the program (0 for
/// `ckpt_ckpt()`): a checkpoint taken inside the vDSO is marked so (`THREAD_IN_VDSO`).
static INTERRUPTED_PC: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// The handler of the control signal: the periodic timer and the retry timer (`SI_TIMER`),
/// checkpoint requests from `ckpt checkpoint` (`SI_QUEUE`), and the image writer's exit.
/// Signal-safe.
pub(crate) extern "C" fn on_control_signal(
    _sig: i32,
    info: *mut libc::siginfo_t,
    ctx: *mut c_void,
) {
    // SAFETY: `info` and `ctx` are what the kernel passed to this SA_SIGINFO handler.
    let ((code, pid, value), pc) = unsafe { (sys::siginfo_fields(info), sys::interrupted_pc(ctx)) };
    match code {
        // An image writer has finished: the checkpoint is complete (or failed), so the
        // post-checkpoint hooks run now. (Only the kernel can send a positive si_code to
        // another process, so this cannot be forged.)
        libc::CLD_EXITED | libc::CLD_KILLED | libc::CLD_DUMPED => writer_finished(pid as i32, pc),
        // Anyone who may signal the program can queue a fake timer signal; it can do no more
        // than the checkpoint signal itself, and only what the library has armed.
        libc::SI_TIMER => {
            let retry = RETRY_WHAT.swap(0, Ordering::Relaxed);
            let what = match (value, retry) {
                (RETRY_VALUE, RETRY_SIGNAL) => Retry::Signal,
                (RETRY_VALUE, RETRY_PERIODIC) => Retry::Periodic,
                (RETRY_VALUE, RETRY_REQUEST_WHAT) => Retry::Request(
                    RETRY_REQUEST[0].load(Ordering::Relaxed),
                    RETRY_REQUEST[1].load(Ordering::Relaxed),
                ),
                _ if crate::trigger::PERIODIC.load(Ordering::Relaxed) => Retry::Periodic,
                _ => return,
            };
            run_outside_vdso(pc, what);
        }
        // Who asks is learnt from the kernel, not from the signal (request.rs).
        libc::SI_QUEUE => run_outside_vdso(pc, Retry::Request(pid, value as u32)),
        _ => {}
    }
}

/// The writer child `pid` has exited: reap it, run the post-checkpoint hooks, and take the
/// checkpoint that was asked for meanwhile, if any (`pc`: where the signal interrupted the
/// program). Its image is either complete under its name or gone: an unfinished one has no
/// name (write.rs). Signal-safe.
fn writer_finished(pid: i32, pc: u64) {
    let saved_errno = sys::get_errno();
    let mut next = None;
    if let Some(x) = Exclusive::try_acquire() {
        if x.state.writer.is_some_and(|w| w.pid == pid) {
            let status = sys::reap_nohang(pid).unwrap_or(0);
            writer_gone(x.state, status);
            next = x.state.pending.take();
            let hooks = x.state.hooks;
            drop(x);
            hooks.post.run(false);
        }
    }
    match next {
        Some(Trigger::Signal) => run_outside_vdso(pc, Retry::Signal),
        Some(_) => run_outside_vdso(pc, Retry::Periodic),
        None => {}
    }
    sys::set_errno(saved_errno);
}

fn handle(trigger: Trigger) {
    let saved_errno = sys::get_errno();
    if let Outcome::Failed(e) = checkpoint(None, trigger, None) {
        // SAFETY: a read-only look at the name after the checkpoint released the state; it
        // changes only through ckpt_config, which blocks signals while it holds the state.
        if let Some(state) = unsafe { STATE.get() }.as_ref() {
            report_failure(state.config.name_bytes(), e);
        }
    }
    sys::set_errno(saved_errno);
}
