//! The checkpoint core, shared by every trigger (the checkpoint signal, the periodic timer,
//! `ckpt checkpoint`, `ckpt_ckpt()`): the library's state and its exclusive use, the hooks,
//! and one checkpoint — record the thread's state, capture the process, write the image
//! (from here or from a forked writer, `writer`), and in a restarted process come back
//! through the same capture point and hand over to `restore`.
//!
//! Everything here runs in a signal handler: signal-safe, no allocation, no locks, no stdio.

use core::ffi::c_void;
use core::sync::atomic::{AtomicBool, Ordering};

use ckpt_image::{SigactionRecord, NSIG, RESUMED};

use crate::arena::{Arena, ARENA};
use crate::capture::{self, Captured};
use crate::config::Config;
use crate::process::ProcessState;
use crate::report::report_failure;
use crate::restore::after_restart;
use crate::sys::{self, Global};
use crate::trigger::{INTERRUPTED_PC, RETRY_TIMER, RETRY_TIMER_PID};
use crate::write::{self, StubPlace, WriteError};
use crate::writer::{fork_complete_copy, writer_running, Writer};

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
    /// Which pages changed since the previous checkpoint, and what its file holds.
    pub incremental: crate::write::incremental::Incremental,
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

    pub(crate) fn run(&self, reverse: bool) {
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
    /// Store only what changed since the previous checkpoint (`write::incremental`).
    incremental: bool,
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
    // Incremental: periodic checkpoints by default, any that continues with
    // CKPT_INCREMENTAL=1; never while a writer still fills the ledger.
    let incremental = continues
        && x.state.writer.is_none()
        && x.state.config.compress != write::Compression::All
        && x.state
            .config
            .incremental
            .unwrap_or(trigger == Trigger::Periodic);
    let outcome = take(&mut x, name, trigger, fork, respond, incremental);
    match outcome {
        Outcome::Written => x.state.incremental.finished(true),
        Outcome::Failed(_) => x.state.incremental.finished(false),
        _ => {}
    }
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
        Outcome::Written if !continues => {
            if !x.state.config.quiet {
                crate::report::report_written(name.unwrap_or(x.state.config.name_bytes()));
            }
            sys::exit_now(0)
        }
        Outcome::Written | Outcome::Failed(_) => hooks.post.run(false),
        // The post-checkpoint hooks run when the writer has finished (on_control_signal).
        Outcome::Forked => {}
        Outcome::Busy | Outcome::Coalesced => return outcome,
    }
    // The program's other threads go on: after the hooks, which run while they are stopped
    // (with a forked writer, at once: it has its own copy of them).
    crate::threads::thaw();
    outcome
}

/// The checkpoint itself, under the caller's hold. Signal-safe.
fn take(
    x: &mut Exclusive,
    name: Option<&[u8]>,
    trigger: Trigger,
    fork: bool,
    respond: Option<i32>,
    incremental: bool,
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
        incremental,
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
    crate::progress::listen(respond);
    let ctx = &mut crate::threads::leader().context as *mut ckpt_image::ResumeContext;
    // SAFETY: ctx points into the arena, valid for writes; `run` is called with a pointer to
    // `job`, which outlives the call. In a restarted process the call returns RESUMED into
    // this frame, which the image preserved because it was suspended in the call.
    let r = unsafe { sys::capture_and_run(ctx, run, (&mut job as *mut Job).cast()) };
    if r == RESUMED {
        // Every thread is made again and back before the process-wide state is put back.
        crate::threads::resume::thread_resumed(0);
        crate::threads::resume::all_back(x.arena.misc);
        after_restart(x.state, x.arena);
        return Outcome::Restarted;
    }
    if undumpable {
        sys::set_dumpable(false);
    }
    // The image (or the writer child's copy) holds the descriptors' saved bytes now.
    crate::files::release_data(job.arena);
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

    // Every other thread stops, with its state in the thread table.
    let own = own_signals(&state.config);
    crate::threads::OWN_SIGNALS.store(own, core::sync::atomic::Ordering::Relaxed);
    crate::threads::stop_others(arena.misc).map_err(WriteError::Threads)?;

    // This thread's state not in the kernel's signal frame.
    let fs = sys::fs_base();
    let t = crate::threads::leader();
    t.tid = sys::gettid();
    t.fs_base = fs;
    t.gs_base = 0;
    t.xcr0 = ckpt_image::xcr0();
    t.sigmask = job.sigmask;
    crate::threads::park::fill_common(t, fs);
    (t.pc, t.sp) = (job.interrupted_pc, 0);
    let library_timers = library_timers(state);
    state.process.capture(arena.misc);
    // The open descriptors, but ckpt's own: the socket of the request being answered, a
    // previous writer's, the tracers' pipes.
    let mut own_fds = [-1i32; crate::threads::ptrace::MAX_TRACERS + 3];
    own_fds[..crate::threads::ptrace::MAX_TRACERS]
        .copy_from_slice(&crate::threads::ptrace::tracer_fds());
    own_fds[crate::threads::ptrace::MAX_TRACERS] = job.respond.unwrap_or(-1);
    own_fds[crate::threads::ptrace::MAX_TRACERS + 1] =
        state.writer.and_then(|w| w.answer).unwrap_or(-1);
    own_fds[crate::threads::ptrace::MAX_TRACERS + 2] = state.incremental.own_fd().unwrap_or(-1);
    state.process.files = crate::files::capture(
        arena,
        &own_fds,
        crate::files::SaveOptions {
            policy: state.config.fd_policy,
            max_deleted: state.config.max_deleted,
        },
    )
    .map_err(WriteError::Files)?;
    // Signals pending for the whole process are raised at it again, not at the thread that
    // happened to have them in its view.
    let shared = state.process.shared_pending;
    for s in crate::threads::image_order().filter(|&s| s != 0) {
        crate::threads::record_mut(s).pending &= !shared;
    }
    crate::threads::leader().pending = state.process.pending & !shared & !own;
    crate::clocks::note_checkpoint();
    let p = &mut state.process;
    p.pending = crate::timers::capture(arena.maps, library_timers, p.pending, own);
    for (i, sa) in arena.sigactions.iter_mut().enumerate() {
        *sa = SigactionRecord::default();
        let _ = sys::rt_sigaction(i as i32 + 1, None, Some(sa));
    }
    debug_assert_eq!(arena.sigactions.len(), NSIG);

    // The kernel's view of the layout, and a refusal for what we cannot restore yet.
    let n =
        sys::read_file(b"/proc/thread-self/stat\0", arena.misc).map_err(WriteError::ReadProc)?;
    let (mut mm, _) = write::parse_stat(&arena.misc[..n]).ok_or(WriteError::ReadProc(libc::EIO))?;
    mm.brk = sys::current_brk();
    let auxv_bytes = ckpt_image::record_bytes_mut(arena.auxv);
    let n =
        sys::read_file(b"/proc/thread-self/auxv\0", auxv_bytes).map_err(WriteError::ReadProc)?;
    let mut auxv_words = 0;
    while auxv_words + 1 < n / 8 {
        let key = arena.auxv[auxv_words];
        auxv_words += 2;
        if key == 0 {
            break;
        }
    }

    // Which pages changed since the previous checkpoint, and the start of the next
    // interval: before the fork or the writing, so that no write of the program's after
    // this point is missed.
    if job.incremental {
        let n = sys::read_file(b"/proc/thread-self/maps\0", arena.maps)
            .map_err(|e| WriteError::Capture(capture::CaptureError::ReadMaps(e)))?;
        if n == arena.maps.len() {
            return Err(WriteError::Capture(capture::CaptureError::MapsTooLarge));
        }
        state.incremental.begin(&arena.maps[..n]);
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
    // This process writes its memory itself: every parked thread must be asleep first.
    crate::threads::freeze::wait_asleep(job.arena.misc).map_err(WriteError::Threads)?;
    capture_regions_and_write(job, mm, auxv_words).map(|()| false)
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
    if in_vdso {
        crate::threads::leader().flags |= ckpt_image::THREAD_IN_VDSO;
    }
    let cfg = state.config;
    let opts = write::WriteOptions {
        fsync: cfg.fsync,
        compress: cfg.compress,
    };
    let files = state.process.files;
    let inc = Some(&mut state.incremental).filter(|i| i.in_flight());
    write::write_image(arena, &cap, files, name, opts, mm, &mut state.stub, inc)
}

/// The library's own POSIX timers in this process (-1: none): a checkpoint leaves them out,
/// and the library makes them again itself. Signal-safe.
fn library_timers(state: &State) -> [i32; 3] {
    let pid = sys::getpid();
    let periodic = match state.periodic_timer {
        Some((id, owner)) if owner == pid => id,
        _ => -1,
    };
    let retry = match RETRY_TIMER.load(Ordering::Relaxed) {
        id if id >= 0 && RETRY_TIMER_PID.load(Ordering::Relaxed) == pid => id,
        _ => -1,
    };
    [periodic, retry, crate::files::window_change_timer()]
}

/// ckpt's own signals, bit `sig - 1`: the checkpoint signal and the control signal.
fn own_signals(config: &Config) -> u64 {
    let bit = |sig: i32| match sig {
        1..=64 => 1u64 << (sig - 1),
        _ => 0,
    };
    bit(config.asyncsig) | bit(crate::config::CONTROL_SIGNAL)
}
