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
}

pub static STATE: Global<Option<State>> = Global::new(None);

/// What a checkpoint attempt came to.
#[derive(Clone, Copy, Debug)]
pub enum Outcome {
    /// The image is written and this is the original process.
    Written,
    /// This is a restarted process, returning from the capture point.
    Restarted,
    /// No image was written; the program keeps running.
    Failed(WriteError),
    /// Another checkpoint was in progress.
    Busy,
}

/// RSEQ_SIG on x86-64, as glibc registers it.
const RSEQ_SIG: u32 = 0x5305_3053;
/// Length glibc passes to the rseq system call.
const RSEQ_LEN: u32 = 32;

struct Job<'a> {
    state: &'a mut State,
    arena: &'a mut Arena,
    name: &'a [u8],
    error: Option<WriteError>,
}

/// Takes a checkpoint of the calling (only) thread. `name` overrides the configured name
/// for this call. Signal-safe.
pub fn take(name: Option<&[u8]>) -> Outcome {
    if IN_PROGRESS.swap(true, Ordering::Acquire) {
        return Outcome::Busy;
    }
    // SAFETY: IN_PROGRESS gives this call exclusive use of the state and the arena; both
    // were set up at library load, before the checkpoint signal handler was installed.
    let (state, arena) = unsafe { (STATE.get(), ARENA.get()) };
    let (Some(state), Some(arena)) = (state.as_mut(), arena.as_mut()) else {
        IN_PROGRESS.store(false, Ordering::Release);
        return Outcome::Failed(WriteError::Create(libc::EINVAL));
    };
    let mut name_buf = [0u8; crate::config::MAXNAME];
    let name = match name {
        Some(n) => n,
        None => {
            let n = state.config.name_bytes();
            name_buf[..n.len()].copy_from_slice(n);
            &name_buf[..n.len()]
        }
    };
    let mut job = Job {
        state,
        arena,
        name,
        error: None,
    };
    let ctx = &mut job.arena.thread.context as *mut ckpt_image::ResumeContext;
    // SAFETY: ctx points into the arena, valid for writes; `run` is called with a pointer to
    // `job`, which outlives the call.
    let r = unsafe { sys::capture_and_run(ctx, run, (&mut job as *mut Job).cast()) };
    let outcome = if r == RESUMED {
        // SAFETY: as above; this is the restarted process, still inside this call, with
        // IN_PROGRESS set as it was at the capture.
        let (state, arena) = unsafe { (STATE.get(), ARENA.get()) };
        if let (Some(state), Some(arena)) = (state.as_mut(), arena.as_mut()) {
            after_restart(state, arena);
        }
        Outcome::Restarted
    } else if r == 0 {
        Outcome::Written
    } else {
        Outcome::Failed(job.error.unwrap_or(WriteError::Write(libc::EIO)))
    };
    IN_PROGRESS.store(false, Ordering::Release);
    outcome
}

/// The body run below the capture point: everything from here on may be overwritten in
/// the image without harm, because the restarted process resumes in the capture point.
extern "C" fn run(arg: *mut c_void) -> u64 {
    // SAFETY: `take` passes a pointer to its live Job.
    let job = unsafe { &mut *(arg as *mut Job) };
    match capture_and_write(job) {
        Ok(()) => 0,
        Err(e) => {
            job.error = Some(e);
            1
        }
    }
}

fn capture_and_write(job: &mut Job) -> Result<(), WriteError> {
    let arena = &mut *job.arena;
    let state = &mut *job.state;

    // Thread state not in the kernel's signal frame.
    let fs = sys::fs_base();
    let t = &mut arena.thread;
    t.tid = sys::gettid();
    t.fs_base = fs;
    t.sigmask = sys::sigmask();
    (t.altstack_sp, t.altstack_flags, t.altstack_size) = sys::sigaltstack();
    (t.robust_list_head, t.robust_list_len) = sys::robust_list();
    if let Some(off) = state.rseq_offset {
        t.rseq_area = fs.wrapping_add(off as u64);
        t.rseq_len = RSEQ_LEN;
        t.rseq_sig = RSEQ_SIG;
    }
    if let Some(off) = state.tid_offset {
        t.clear_child_tid = fs + off;
    }
    for (i, sa) in arena.sigactions.iter_mut().enumerate() {
        *sa = SigactionRecord::default();
        let _ = sys::rt_sigaction(i as i32 + 1, None, Some(sa));
    }
    debug_assert_eq!(arena.sigactions.len(), NSIG);

    // The kernel's view of the layout, and a refusal for what we cannot restore yet.
    let n = sys::read_file(b"/proc/self/stat\0", arena.misc).map_err(WriteError::Write)?;
    let (mut mm, threads) =
        write::parse_stat(&arena.misc[..n]).ok_or(WriteError::Write(libc::EIO))?;
    if threads > 1 {
        return Err(WriteError::MultiThreaded);
    }
    mm.brk = sys::current_brk();
    let auxv_bytes = sys::words_as_bytes(arena.auxv);
    let n = sys::read_file(b"/proc/self/auxv\0", auxv_bytes).map_err(WriteError::Write)?;
    let mut auxv_words = 0;
    while auxv_words + 1 < n / 8 {
        let key = arena.auxv[auxv_words];
        auxv_words += 2;
        if key == 0 {
            break;
        }
    }

    let mut cap: Captured = capture::capture_regions(arena).map_err(WriteError::Capture)?;
    cap.auxv_words = auxv_words;
    let cfg = state.config;
    write::write_image(arena, &cap, job.name, cfg.fsync, mm, &mut state.stub)
}

/// Repairs, in a restarted process, what the kernel does not carry over: the stub's memory
/// is released, glibc's cached thread id, the robust futex list and rseq are registered for
/// the new thread. Signal-safe.
fn after_restart(state: &mut State, arena: &mut Arena) {
    sys::munmap(state.stub.base, state.stub.reserve);
    let t = &arena.thread;
    if let Some(off) = state.tid_offset {
        let at = t.fs_base + off;
        sys::store_u32(at, sys::gettid());
        sys::set_tid_address(at);
    }
    if t.robust_list_head != 0 {
        sys::set_robust_list(t.robust_list_head, t.robust_list_len);
    }
    if t.rseq_len != 0 {
        let _ = sys::rseq_register(t.rseq_area, t.rseq_len, t.rseq_sig);
    }
}

/// Prints why a checkpoint failed, in one line. Signal-safe.
pub fn report_failure(name: &[u8], err: WriteError) {
    let (what, errno) = err.describe();
    let mut buf = [0u8; 1024];
    let mut n = 0;
    let mut put = |b: &[u8]| {
        let k = b.len().min(buf.len() - n);
        buf[n..n + k].copy_from_slice(&b[..k]);
        n += k;
    };
    put(b"ckpt: checkpoint to '");
    put(&name[..name.len().min(512)]);
    put(b"' failed: ");
    put(what.as_bytes());
    if errno != 0 {
        put(b": ");
        put(errno_name(errno).as_bytes());
        put(b" (errno ");
        let mut d = [0u8; 12];
        let mut k = d.len();
        let mut v = errno as u32;
        loop {
            k -= 1;
            d[k] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        put(&d[k..]);
        put(b")");
    }
    put(b"; the program continues\n");
    sys::write_stderr(&buf[..n]);
}

fn errno_name(e: i32) -> &'static str {
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
        _ => "system error",
    }
}

/// The handler of the asynchronous checkpoint signal. Signal-safe.
pub extern "C" fn on_checkpoint_signal(_sig: i32, _info: *mut libc::siginfo_t, _ctx: *mut c_void) {
    let saved_errno = sys::get_errno();
    let outcome = take(None);
    // SAFETY: read-only look at the configuration after the checkpoint released the state;
    // the configuration changes only through the API, not concurrently with this handler.
    let state = unsafe { STATE.get() };
    if let Some(state) = state.as_ref() {
        match outcome {
            Outcome::Written if !state.config.continues => sys::exit_now(0),
            Outcome::Failed(e) => report_failure(state.config.name_bytes(), e),
            _ => {}
        }
    }
    sys::set_errno(saved_errno);
}
