//! # Safety
//! The library's contact with the kernel and with raw memory: system calls through `libc`
//! (all async-signal-safe), the capture point written in assembly, views of reserved memory,
//! and process-global cells. Every other module is safe code on top of these wrappers.
//! Functions marked "signal-safe" allocate nothing, take no locks and do no stdio.

use core::arch::naked_asm;
use core::cell::UnsafeCell;
use core::ffi::{c_int, c_void};

use ckpt_image::ResumeContext;

/// Result of a raw call: the value, or the errno.
pub type SysResult<T> = Result<T, i32>;

pub fn get_errno() -> i32 {
    errno()
}

pub fn set_errno(v: i32) {
    // SAFETY: the calling thread's errno slot.
    unsafe { *libc::__errno_location() = v };
}

/// A word buffer viewed as bytes, to read a file into it.
pub fn words_as_bytes(words: &mut [u64]) -> &mut [u8] {
    // SAFETY: u64 has no invalid bit patterns and stricter alignment than u8; the view
    // borrows the words mutably for its lifetime.
    unsafe { core::slice::from_raw_parts_mut(words.as_mut_ptr().cast(), words.len() * 8) }
}

fn errno() -> i32 {
    // SAFETY: __errno_location returns the calling thread's errno slot, always valid.
    unsafe { *libc::__errno_location() }
}

fn check(r: libc::c_long) -> SysResult<usize> {
    if r < 0 {
        Err(errno())
    } else {
        Ok(r as usize)
    }
}

/// A process-global value mutated only by the checkpoint path (which excludes itself with an
/// atomic flag) or during library initialisation.
pub struct Global<T>(UnsafeCell<T>);

// SAFETY: access is serialised by the callers as described on `get`.
unsafe impl<T> Sync for Global<T> {}

impl<T> Global<T> {
    pub const fn new(v: T) -> Self {
        Global(UnsafeCell::new(v))
    }

    /// # Safety
    /// The caller must be the only one using the value for the lifetime of the reference:
    /// library initialisation (before any checkpoint can start) or the checkpoint path while
    /// it holds the in-progress flag.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn get(&self) -> &mut T {
        // SAFETY: exclusivity is the caller's obligation (see above).
        unsafe { &mut *self.0.get() }
    }
}

/// Signal-safe `open` of a NUL-terminated path.
pub fn open(path: &[u8], flags: c_int, mode: libc::mode_t) -> SysResult<c_int> {
    assert_nul(path);
    // SAFETY: the path is NUL-terminated (checked) and lives for the call.
    let fd = unsafe { libc::open(path.as_ptr().cast(), flags, mode as libc::c_uint) };
    check(fd as libc::c_long).map(|f| f as c_int)
}

fn assert_nul(path: &[u8]) {
    if path.last() != Some(&0) {
        // Never reached with our own buffers; failing loudly beats reading past the end.
        exit_now(111);
    }
}

pub fn close(fd: c_int) {
    // SAFETY: closing a descriptor this module opened.
    unsafe { libc::close(fd) };
}

/// Reads until `buf` is full or end of file; returns the number of bytes read.
pub fn read_full(fd: c_int, buf: &mut [u8]) -> SysResult<usize> {
    let mut n = 0;
    while n < buf.len() {
        // SAFETY: the destination is the unfilled tail of `buf`.
        let r = unsafe { libc::read(fd, buf[n..].as_mut_ptr().cast(), buf.len() - n) };
        match check(r as libc::c_long) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(libc::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Reads from a non-blocking descriptor until a newline, end of file, or no more data
/// (the writer may keep its end open); returns the bytes read.
pub fn read_line_nonblocking(fd: c_int, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() && !buf[..n].contains(&b'\n') {
        // SAFETY: the destination is the unfilled tail of `buf`.
        let r = unsafe { libc::read(fd, buf[n..].as_mut_ptr().cast(), buf.len() - n) };
        match check(r as libc::c_long) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(libc::EINTR) => continue,
            Err(_) => break,
        }
    }
    n
}

/// Reads a whole (small, /proc) file into `buf` with as few reads as possible.
pub fn read_file(path: &[u8], buf: &mut [u8]) -> SysResult<usize> {
    let fd = open(path, libc::O_RDONLY | libc::O_CLOEXEC, 0)?;
    let r = read_full(fd, buf);
    close(fd);
    r
}

/// `pwrite` of `len` bytes taken straight from the address `addr` of this process. Returns
/// how many bytes were written before the end or a fault (EFAULT: unreadable memory, such as
/// a file mapping beyond the end of its file); other errors are returned as such.
pub fn pwrite_from_memory(fd: c_int, addr: u64, len: u64, offset: u64) -> SysResult<u64> {
    let mut done = 0u64;
    while done < len {
        let chunk = (len - done).min(1 << 30) as usize;
        // SAFETY: the kernel reads from our own address space and reports unreadable pages
        // with EFAULT instead of faulting; nothing in Rust aliases this memory as &mut.
        let r = unsafe {
            libc::pwrite(
                fd,
                (addr + done) as *const c_void,
                chunk,
                (offset + done) as libc::off_t,
            )
        };
        match check(r as libc::c_long) {
            Ok(0) => return Err(libc::EIO),
            Ok(k) => done += k as u64,
            Err(libc::EINTR) => continue,
            Err(libc::EFAULT) => return Ok(done),
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// `pwrite` of a buffer, all of it.
pub fn pwrite_all(fd: c_int, buf: &[u8], offset: u64) -> SysResult<()> {
    match pwrite_from_memory(fd, buf.as_ptr() as u64, buf.len() as u64, offset)? {
        n if n == buf.len() as u64 => Ok(()),
        _ => Err(libc::EFAULT),
    }
}

pub fn fsync(fd: c_int) -> SysResult<()> {
    // SAFETY: plain syscall on a descriptor we own.
    check(unsafe { libc::fsync(fd) } as libc::c_long).map(drop)
}

pub fn fchmod(fd: c_int, mode: libc::mode_t) -> SysResult<()> {
    // SAFETY: plain syscall on a descriptor we own.
    check(unsafe { libc::fchmod(fd, mode) } as libc::c_long).map(drop)
}

pub fn rename(from: &[u8], to: &[u8]) -> SysResult<()> {
    assert_nul(from);
    assert_nul(to);
    // SAFETY: both paths are NUL-terminated buffers alive for the call.
    check(unsafe { libc::rename(from.as_ptr().cast(), to.as_ptr().cast()) } as libc::c_long)
        .map(drop)
}

pub fn unlink(path: &[u8]) {
    assert_nul(path);
    // SAFETY: NUL-terminated path.
    unsafe { libc::unlink(path.as_ptr().cast()) };
}

pub fn mprotect(addr: u64, len: u64, prot: u32) -> SysResult<()> {
    // SAFETY: changes protections of a mapping the caller recorded from /proc/self/maps; the
    // caller restores them before any other code can depend on the change.
    check(
        unsafe { libc::mprotect(addr as *mut c_void, len as usize, prot as c_int) } as libc::c_long,
    )
    .map(drop)
}

pub fn munmap(addr: u64, len: u64) {
    // SAFETY: used only on the stub's reservation after a restart, which nothing references.
    unsafe { libc::munmap(addr as *mut c_void, len as usize) };
}

/// Reserves `len` bytes of zero-filled, not-yet-committed memory for the checkpoint path.
/// Called at library load, never in a signal handler.
pub fn reserve(len: usize) -> &'static mut [u8] {
    // SAFETY: a fresh private anonymous mapping, owned by the returned slice for the life of
    // the process.
    unsafe {
        let p = libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            panic!("ckpt: cannot reserve {len} bytes of memory");
        }
        core::slice::from_raw_parts_mut(p.cast(), len)
    }
}

/// Views a reserved byte buffer as a table of plain records.
pub fn as_records<T: Copy>(bytes: &'static mut [u8]) -> &'static mut [T] {
    let align = core::mem::align_of::<T>();
    assert!((bytes.as_ptr() as usize).is_multiple_of(align));
    let n = bytes.len() / core::mem::size_of::<T>();
    // SAFETY: the buffer is zero-filled memory, suitably aligned (checked), used only as this
    // table from now on; T is a plain integer record for which zero is a valid value.
    unsafe { core::slice::from_raw_parts_mut(bytes.as_mut_ptr().cast(), n) }
}

/// The bytes of a plain record table, for writing.
pub fn record_bytes<T: Copy>(records: &[T]) -> &[u8] {
    // SAFETY: T is a repr(C) record of integers with explicit padding, so all bytes are
    // initialised; the view borrows the records.
    unsafe { core::slice::from_raw_parts(records.as_ptr().cast(), core::mem::size_of_val(records)) }
}

/// Raw `rt_sigaction` in the kernel's layout (query or set).
pub fn rt_sigaction(
    sig: c_int,
    new: Option<&ckpt_image::SigactionRecord>,
    old: Option<&mut ckpt_image::SigactionRecord>,
) -> SysResult<()> {
    let newp = new.map_or(core::ptr::null(), |n| n as *const _);
    let oldp = old.map_or(core::ptr::null_mut(), |o| o as *mut _);
    // SAFETY: both pointers are null or point to records in the kernel's sigaction layout.
    check(unsafe { libc::syscall(libc::SYS_rt_sigaction, sig, newp, oldp, 8) }).map(drop)
}

/// The calling thread's blocked-signal mask.
pub fn sigmask() -> u64 {
    let mut old = 0u64;
    // SAFETY: query only; `old` receives 8 bytes.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_BLOCK,
            core::ptr::null::<u64>(),
            &mut old,
            8,
        )
    };
    old
}

pub fn set_sigmask(mask: u64) {
    // SAFETY: sets the calling thread's mask from an 8-byte value.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &mask,
            core::ptr::null_mut::<u64>(),
            8,
        )
    };
}

/// The alternate signal stack: (sp, flags, size).
pub fn sigaltstack() -> (u64, u32, u64) {
    let mut ss = libc::stack_t {
        ss_sp: core::ptr::null_mut(),
        ss_flags: 0,
        ss_size: 0,
    };
    // SAFETY: query only.
    unsafe { libc::sigaltstack(core::ptr::null(), &mut ss) };
    (ss.ss_sp as u64, ss.ss_flags as u32, ss.ss_size as u64)
}

pub fn fs_base() -> u64 {
    let mut v = 0u64;
    // SAFETY: ARCH_GET_FS stores the thread pointer in `v`.
    unsafe { libc::syscall(libc::SYS_arch_prctl, 0x1003, &mut v) };
    v
}

pub fn gettid() -> u32 {
    // SAFETY: no arguments.
    unsafe { libc::syscall(libc::SYS_gettid) as u32 }
}

pub fn getpid() -> u32 {
    // SAFETY: no arguments.
    unsafe { libc::getpid() as u32 }
}

pub fn current_brk() -> u64 {
    // SAFETY: brk(0) only queries.
    unsafe { libc::syscall(libc::SYS_brk, 0) as u64 }
}

pub fn robust_list() -> (u64, u64) {
    let mut head = 0u64;
    let mut len = 0usize;
    // SAFETY: query for the calling thread into two locals.
    unsafe { libc::syscall(libc::SYS_get_robust_list, 0, &mut head, &mut len) };
    (head, len as u64)
}

pub fn set_robust_list(head: u64, len: u64) {
    // SAFETY: re-registers the list head glibc registered before the checkpoint; the memory
    // is the restored TCB.
    unsafe { libc::syscall(libc::SYS_set_robust_list, head, len) };
}

pub fn set_tid_address(addr: u64) {
    // SAFETY: the address is the tid field of the restored TCB, as glibc set it at start.
    unsafe { libc::syscall(libc::SYS_set_tid_address, addr) };
}

/// Unregisters the calling thread's rseq area.
pub fn rseq_unregister(area: u64, len: u32, sig: u32) -> SysResult<()> {
    // SAFETY: unregistering only tells the kernel to stop writing into the area.
    check(unsafe { libc::syscall(libc::SYS_rseq, area, len, 1, sig) }).map(drop)
}

/// The calling thread's id, from the kernel.
pub fn thread_id() -> u32 {
    gettid()
}

/// Registers the thread's rseq area again (glibc's, at the saved address).
pub fn rseq_register(area: u64, len: u32, sig: u32) -> SysResult<()> {
    // SAFETY: the area is glibc's rseq area in the restored TCB, len and signature as glibc
    // registered them.
    check(unsafe { libc::syscall(libc::SYS_rseq, area, len, 0, sig) }).map(drop)
}

/// Writes the new thread id into the TCB's cached tid.
pub fn store_u32(addr: u64, v: u32) {
    // SAFETY: `addr` is the tid field of the calling thread's TCB, found at library load.
    unsafe { core::ptr::write_volatile(addr as *mut u32, v) };
}

#[inline(always)]
pub fn load_u32(addr: u64) -> u32 {
    // SAFETY: reads a u32 inside the calling thread's TCB (the caller bounds the address).
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}

/// `PAGEMAP_SCAN` argument (linux/fs.h).
#[repr(C)]
#[derive(Default)]
pub struct PmScanArg {
    pub size: u64,
    pub flags: u64,
    pub start: u64,
    pub end: u64,
    pub walk_end: u64,
    pub vec: u64,
    pub vec_len: u64,
    pub max_pages: u64,
    pub category_inverted: u64,
    pub category_mask: u64,
    pub category_anyof_mask: u64,
    pub return_mask: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct PageRegion {
    pub start: u64,
    pub end: u64,
    pub categories: u64,
}

const PAGEMAP_SCAN: libc::c_ulong = 0xc060_6610;

/// Runs `PAGEMAP_SCAN` on `fd` (/proc/self/pagemap) with `arg`, filling `out`.
pub fn pagemap_scan(fd: c_int, arg: &mut PmScanArg, out: &mut [PageRegion]) -> SysResult<usize> {
    arg.size = core::mem::size_of::<PmScanArg>() as u64;
    arg.vec = out.as_mut_ptr() as u64;
    arg.vec_len = out.len() as u64;
    // SAFETY: the kernel writes at most vec_len regions into `out`.
    check(unsafe { libc::ioctl(fd, PAGEMAP_SCAN, arg as *mut PmScanArg) } as libc::c_long)
}

/// Reads pagemap entries for pages starting at `addr` (fallback when PAGEMAP_SCAN is absent).
pub fn pagemap_read(fd: c_int, addr: u64, out: &mut [u64]) -> SysResult<usize> {
    let off = (addr / 4096) * 8;
    // SAFETY: reads into `out`, whose byte length is passed.
    let r = unsafe {
        libc::pread(
            fd,
            out.as_mut_ptr().cast(),
            out.len() * 8,
            off as libc::off_t,
        )
    };
    check(r as libc::c_long).map(|n| n / 8)
}

/// `mincore` residency of `len` bytes at `addr`, one byte per page into `out`.
pub fn mincore(addr: u64, len: u64, out: &mut [u8]) -> SysResult<()> {
    assert!(out.len() as u64 >= len.div_ceil(4096));
    // SAFETY: out has room for one byte per page of the range (checked).
    check(
        unsafe { libc::mincore(addr as *mut c_void, len as usize, out.as_mut_ptr()) }
            as libc::c_long,
    )
    .map(drop)
}

/// Ends the process at once, without running exit handlers or flushing stdio: after a
/// checkpoint those buffers belong to the image and are flushed by the restarted program.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is async-signal-safe and never returns.
    unsafe { libc::_exit(code) }
}

/// Ends the process through `exit` (exit handlers and stdio flushes run): for refusing to
/// start.
pub fn exit(code: i32) -> ! {
    // SAFETY: exit never returns.
    unsafe { libc::exit(code) }
}

/// Kills the process with SIGABRT, for the panic handler.
pub fn abort() -> ! {
    // SAFETY: abort never returns.
    unsafe { libc::abort() }
}

/// The value of environment variable `name`, as bytes (at library load or from API calls:
/// the environment is not changed by another thread then).
pub fn getenv(name: &core::ffi::CStr) -> Option<&'static [u8]> {
    // SAFETY: getenv with a NUL-terminated name; the result, when not null, points to a
    // NUL-terminated string in the environment, which lives as long as the process.
    unsafe {
        let p = libc::getenv(name.as_ptr());
        (!p.is_null()).then(|| core::ffi::CStr::from_ptr(p).to_bytes())
    }
}

/// The whole of a file of unknown size (`/proc` files), read at library load.
pub fn read_whole_file(path: &[u8]) -> SysResult<alloc::vec::Vec<u8>> {
    let fd = open(path, libc::O_RDONLY | libc::O_CLOEXEC, 0)?;
    let mut out = alloc::vec::Vec::new();
    let mut chunk = [0u8; 4096];
    let r = loop {
        match read_full(fd, &mut chunk) {
            Ok(n) => {
                out.extend_from_slice(&chunk[..n]);
                if n < chunk.len() {
                    break Ok(out);
                }
            }
            Err(e) => break Err(e),
        }
    };
    close(fd);
    r
}

/// Seconds since the epoch (signal-safe).
pub fn realtime_secs() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec.max(0) as u64
}

/// The heap of the library's own allocations (configuration and API calls, never the
/// signal handler): the program's `malloc`.
pub struct Malloc;

// SAFETY: malloc returns memory aligned for any fundamental type (16 bytes here) or null;
// larger alignments go through posix_memalign; free takes what either returned.
unsafe impl core::alloc::GlobalAlloc for Malloc {
    unsafe fn alloc(&self, layout: core::alloc::Layout) -> *mut u8 {
        if layout.align() <= 16 {
            // SAFETY: see the impl.
            unsafe { libc::malloc(layout.size()).cast() }
        } else {
            let mut p = core::ptr::null_mut();
            // SAFETY: see the impl; p is written only on success.
            match unsafe { libc::posix_memalign(&mut p, layout.align(), layout.size()) } {
                0 => p.cast(),
                _ => core::ptr::null_mut(),
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: core::alloc::Layout) {
        // SAFETY: ptr came from alloc above.
        unsafe { libc::free(ptr.cast()) }
    }
}

pub fn write_stderr(msg: &[u8]) {
    // SAFETY: writes from a live buffer to fd 2; a failure to report is ignored.
    unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
}

/// Looks up a data symbol exported by an already-loaded object (at library load only).
pub fn lookup_symbol(name: &core::ffi::CStr) -> Option<u64> {
    // SAFETY: dlsym with RTLD_DEFAULT and a valid C string.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!p.is_null()).then_some(p as u64)
}

pub fn read_i64(addr: u64) -> i64 {
    // SAFETY: used on addresses returned by dlsym for objects of at least 8 bytes.
    unsafe { core::ptr::read_volatile(addr as *const i64) }
}

/// Installs `handler` (an `SA_SIGINFO` handler) for `sig` with every signal blocked while it
/// runs, through `sigaction_fn`: the address of glibc's `sigaction` (this library's own
/// `sigaction` would only record the action, see `signals`), which puts its own restorer
/// in the kernel's action as for any handler of the program.
pub fn install_handler(
    sig: c_int,
    handler: extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void),
    sigaction_fn: u64,
) -> SysResult<()> {
    // SAFETY: a zeroed sigaction is valid; the fields are filled below.
    let mut sa: libc::sigaction = unsafe { core::mem::zeroed() };
    sa.sa_sigaction = handler as usize;
    sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
    set_sigset_word(&mut sa.sa_mask, !0);
    // SAFETY: `sigaction_fn` is glibc's sigaction (the caller's contract), called with a
    // valid action; the handler's code lives as long as the process (this library is never
    // unloaded: it is preloaded or linked).
    let r = unsafe {
        let f: SigactionFn = function_at(sigaction_fn);
        f(sig, &sa, core::ptr::null_mut())
    };
    check(r as libc::c_long).map(drop)
}

/// Puts back a signal action saved earlier (in the kernel's layout).
pub fn restore_action(sig: c_int, action: &ckpt_image::SigactionRecord) {
    let _ = rt_sigaction(sig, Some(action), None);
}

/// The C prototype of `sigaction`.
pub type SigactionFn =
    unsafe extern "C" fn(c_int, *const libc::sigaction, *mut libc::sigaction) -> c_int;

/// The function at `addr`, as a function pointer of type `F`.
///
/// # Safety
/// `F` must be an `extern "C"` function pointer type whose signature is that of the
/// function at `addr` (which `next_symbol` found by its name).
pub unsafe fn function_at<F: Copy>(addr: u64) -> F {
    assert!(core::mem::size_of::<F>() == core::mem::size_of::<u64>() && addr != 0);
    // SAFETY: F is a function pointer type of the function at `addr` (the caller's
    // contract), and a function pointer is an address on x86-64.
    unsafe { core::mem::transmute_copy(&addr) }
}

/// Blocks every signal in the calling thread; returns the mask it had. Signal-safe.
pub fn block_all_signals() -> u64 {
    let all = !0u64;
    let mut old = 0u64;
    // SAFETY: sets the calling thread's mask from an 8-byte value and reads the old one
    // into a local.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &all,
            &mut old,
            8,
        )
    };
    old
}

/// Blocks (`block`) or unblocks the signals of `set` in the calling thread. Signal-safe.
pub fn change_sigmask(block: bool, set: u64) {
    let how = if block {
        libc::SIG_BLOCK
    } else {
        libc::SIG_UNBLOCK
    };
    // SAFETY: changes the calling thread's mask from an 8-byte value.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            how,
            &set,
            core::ptr::null_mut::<u64>(),
            8,
        )
    };
}

/// The first 64 signals of a C `sigset_t`: all the kernel knows on x86-64 (bit `sig - 1`).
pub fn sigset_word(set: &libc::sigset_t) -> u64 {
    // SAFETY: glibc's sigset_t is an array of unsigned longs, the first holding signals
    // 1-64; the reference makes the read valid and aligned.
    unsafe { *(set as *const libc::sigset_t).cast::<u64>() }
}

/// Sets the first 64 signals of a C `sigset_t`, leaving the rest as they are.
pub fn set_sigset_word(set: &mut libc::sigset_t, word: u64) {
    // SAFETY: as for `sigset_word`, through a mutable reference.
    unsafe { *(set as *mut libc::sigset_t).cast::<u64>() = word };
}

/// Sets the restorer field of a C `struct sigaction` to `addr` (0: none).
pub fn set_sigaction_restorer(action: &mut libc::sigaction, addr: u64) {
    // SAFETY: Option<extern "C" fn()> is a nullable function pointer: 0 is None, any other
    // value an address. The restorer is only ever handed back to the kernel, which jumps to
    // it; `addr` is glibc's restorer as the kernel reported it, or 0.
    action.sa_restorer =
        unsafe { core::mem::transmute::<usize, Option<extern "C" fn()>>(addr as usize) };
}

/// Whether thread `tid` of this process still exists. Signal-safe.
pub fn thread_alive(tid: u32) -> bool {
    // SAFETY: tgkill with signal 0 only checks that the thread exists.
    let r = unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid as c_int, 0) };
    r == 0 || errno() != libc::ESRCH
}

/// A new thread-specific data key (no destructor), or None.
pub fn thread_key_create() -> Option<u32> {
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: pthread_key_create writes the key into a local.
    (unsafe { libc::pthread_key_create(&mut key, None) } == 0).then_some(key)
}

pub fn thread_key_delete(key: u32) {
    // SAFETY: deletes a key this library created and never used.
    unsafe { libc::pthread_key_delete(key) };
}

/// The calling thread's value for `key` (0 until set; glibc clears it when a thread ends).
/// Signal-safe for the keys glibc keeps in the thread's control block (below 32): a load.
pub fn thread_value(key: u32) -> u64 {
    // SAFETY: pthread_getspecific with a key this library created; it only reads.
    unsafe { libc::pthread_getspecific(key) as u64 }
}

/// Sets the calling thread's value for `key`. Signal-safe for keys below 32: glibc then
/// stores into the thread's control block without allocating or locking.
pub fn set_thread_value(key: u32, value: u64) {
    // SAFETY: pthread_setspecific with a key this library created; the value is a number,
    // never dereferenced.
    unsafe { libc::pthread_setspecific(key, value as usize as *const c_void) };
}

/// The kernel's `struct sigevent` (64 bytes), as `timer_create` reads it.
#[repr(C)]
struct KernelSigevent {
    value: u64,
    signo: c_int,
    notify: c_int,
    tid: c_int,
    _pad: [c_int; 11],
}

const SIGEV_THREAD_ID: c_int = 4;

/// How a timer notifies: the fields of the kernel's `struct sigevent` that it keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimerEvent {
    /// `sigev_value`, all 64 bits.
    pub value: u64,
    pub signo: c_int,
    /// `SIGEV_SIGNAL`, `SIGEV_NONE`, `SIGEV_THREAD` (to the kernel: like `SIGEV_SIGNAL`), or
    /// `SIGEV_THREAD_ID | SIGEV_SIGNAL`.
    pub notify: c_int,
    /// The thread, with `SIGEV_THREAD_ID`.
    pub tid: c_int,
}

/// Raw `timer_create`: a timer on `clock` notifying as `event`. The kernel writes the new
/// timer's id into the third argument, and reads the id wanted from there while
/// `PR_TIMER_CREATE_RESTORE_IDS` is on (`preset`; ignored otherwise). Signal-safe.
pub fn timer_create(clock: c_int, event: &TimerEvent, preset: i32) -> SysResult<i32> {
    let ev = KernelSigevent {
        value: event.value,
        signo: event.signo,
        notify: event.notify,
        tid: event.tid,
        _pad: [0; 11],
    };
    let mut id: c_int = preset;
    // SAFETY: the kernel reads the sigevent and reads and writes the timer id in `id`.
    check(unsafe { libc::syscall(libc::SYS_timer_create, clock, &ev, &mut id) })?;
    Ok(id)
}

/// Creates a CLOCK_MONOTONIC POSIX timer that delivers `sig` to thread `tid`; returns the
/// kernel's timer id. Raw system call: signal-safe.
pub fn timer_create_for_thread(sig: c_int, tid: u32, value: i32) -> SysResult<i32> {
    let event = TimerEvent {
        value: value as u32 as u64,
        signo: sig,
        notify: SIGEV_THREAD_ID,
        tid: tid as c_int,
    };
    timer_create(libc::CLOCK_MONOTONIC, &event, -1)
}

/// Arms (period > 0) or disarms (0) a timer created by `timer_create_for_thread`.
pub fn timer_set_period(id: i32, period_ms: u32) -> SysResult<()> {
    let ns = period_ms as u64 * 1_000_000;
    timer_settime(id, ns, ns)
}

/// Arms a timer created by `timer_create_for_thread` to fire once, `ns` nanoseconds from now.
pub fn timer_fire_in(id: i32, ns: u64) -> SysResult<()> {
    timer_settime(id, 0, ns)
}

/// Raw `timer_settime`, relative: the timer fires in `value_ns` (0: disarmed) and then every
/// `interval_ns` (0: once). Signal-safe.
pub fn timer_settime(id: i32, interval_ns: u64, value_ns: u64) -> SysResult<()> {
    let ts = |ns: u64| libc::timespec {
        tv_sec: (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    };
    let spec = libc::itimerspec {
        it_interval: ts(interval_ns),
        it_value: ts(value_ns),
    };
    // SAFETY: the kernel reads the itimerspec; no old value is requested.
    check(unsafe {
        libc::syscall(
            libc::SYS_timer_settime,
            id,
            0,
            &spec,
            core::ptr::null_mut::<libc::itimerspec>(),
        )
    })
    .map(drop)
}

/// Raw `timer_gettime`: (interval, time left) in nanoseconds. Signal-safe.
pub fn timer_gettime(id: i32) -> SysResult<(u64, u64)> {
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let mut spec = libc::itimerspec {
        it_interval: zero,
        it_value: zero,
    };
    // SAFETY: the kernel writes one itimerspec into a local.
    check(unsafe { libc::syscall(libc::SYS_timer_gettime, id, &mut spec) })?;
    let ns = |t: libc::timespec| t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64;
    Ok((ns(spec.it_interval), ns(spec.it_value)))
}

pub fn timer_delete(id: i32) {
    // SAFETY: deletes a timer this library created.
    unsafe { libc::syscall(libc::SYS_timer_delete, id) };
}

/// `prctl(PR_TIMER_CREATE_RESTORE_IDS, …)` (Linux 6.16): `TIMER_IDS_ON` makes `timer_create`
/// take the id preset in its third argument, `TIMER_IDS_OFF` lets the kernel choose again,
/// `TIMER_IDS_GET` answers which is in force. EINVAL from older kernels. Signal-safe.
pub fn timer_restore_ids(mode: u64) -> SysResult<usize> {
    // SAFETY: prctl with integer arguments only.
    check(
        unsafe { libc::prctl(PR_TIMER_CREATE_RESTORE_IDS, mode, 0u64, 0u64, 0u64) } as libc::c_long,
    )
}

const PR_TIMER_CREATE_RESTORE_IDS: c_int = 77;
pub const TIMER_IDS_OFF: u64 = 0;
pub const TIMER_IDS_ON: u64 = 1;
pub const TIMER_IDS_GET: u64 = 2;

/// A `siginfo_t` as the kernel hands it out (128 bytes), kept to be queued again.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
pub struct SigInfo(pub [u8; 128]);

impl SigInfo {
    pub const fn zeroed() -> SigInfo {
        SigInfo([0; 128])
    }

    pub fn signo(&self) -> c_int {
        c_int::from_ne_bytes([self.0[0], self.0[1], self.0[2], self.0[3]])
    }
}

/// Takes one pending instance of a signal in `set` (bit `sig - 1`; blocked or not) with its
/// information, without waiting: `Some(info)`, or `None` when none is pending. Signal-safe.
pub fn take_pending(set: u64) -> Option<SigInfo> {
    let mut info = SigInfo::zeroed();
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: rt_sigtimedwait reads an 8-byte set and a timeout and writes at most 128 bytes
    // of siginfo into `info`.
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_sigtimedwait,
            &set,
            info.0.as_mut_ptr(),
            &zero,
            8,
        )
    };
    (r > 0).then_some(info)
}

/// Queues `info` (its signal, code, value, …, as the kernel gave them) to the calling thread.
/// The kernel takes any code a process queues to itself. Signal-safe.
pub fn queue_to_self(info: &SigInfo) -> SysResult<()> {
    // SAFETY: rt_tgsigqueueinfo reads 128 bytes of siginfo; the ids are our own.
    check(unsafe {
        libc::syscall(
            libc::SYS_rt_tgsigqueueinfo,
            libc::getpid(),
            libc::syscall(libc::SYS_gettid),
            info.signo(),
            info.0.as_ptr(),
        )
    })
    .map(drop)
}

/// `clock_gettime` as a bare system call, for `clocks` to call until it has found glibc's
/// (which uses the vDSO). Signal-safe.
///
/// # Safety
/// `tp` must be valid for writing a `struct timespec`.
pub unsafe extern "C" fn raw_clock_gettime(
    clock: libc::clockid_t,
    tp: *mut libc::timespec,
) -> c_int {
    // SAFETY: the caller's contract; the kernel writes one timespec at `tp`.
    unsafe { libc::syscall(libc::SYS_clock_gettime, clock, tp) as c_int }
}

/// `clock_getres` as a bare system call, like `raw_clock_gettime`. Signal-safe.
///
/// # Safety
/// `res` must be null or valid for writing a `struct timespec`.
pub unsafe extern "C" fn raw_clock_getres(
    clock: libc::clockid_t,
    res: *mut libc::timespec,
) -> c_int {
    // SAFETY: the caller's contract; the kernel writes one timespec at `res` unless null.
    unsafe { libc::syscall(libc::SYS_clock_getres, clock, res) as c_int }
}

/// Reads a symbolic link (NUL-terminated path) into `buf`; returns the length.
pub fn readlink(path: &[u8], buf: &mut [u8]) -> SysResult<usize> {
    assert_nul(path);
    // SAFETY: the kernel writes at most buf.len() bytes into buf.
    check(
        unsafe { libc::readlink(path.as_ptr().cast(), buf.as_mut_ptr().cast(), buf.len()) }
            as libc::c_long,
    )
}

pub fn chdir(path: &[u8]) -> SysResult<()> {
    assert_nul(path);
    // SAFETY: NUL-terminated path.
    check(unsafe { libc::chdir(path.as_ptr().cast()) } as libc::c_long).map(drop)
}

/// The process's umask, left unchanged.
pub fn get_umask() -> u32 {
    // SAFETY: umask cannot fail; the old value is put back at once.
    unsafe {
        let m = libc::umask(0o077);
        libc::umask(m);
        m as u32
    }
}

pub fn set_umask(m: u32) {
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(m as libc::mode_t) };
}

/// The three interval timers (REAL, VIRTUAL, PROF) as (interval, value) in microseconds.
pub fn get_itimers() -> [(u64, u64); 3] {
    let mut out = [(0, 0); 3];
    for (which, slot) in out.iter_mut().enumerate() {
        let mut v = libc::itimerval {
            it_interval: libc::timeval {
                tv_sec: 0,
                tv_usec: 0,
            },
            it_value: libc::timeval {
                tv_sec: 0,
                tv_usec: 0,
            },
        };
        // SAFETY: raw getitimer into a local.
        unsafe { libc::syscall(libc::SYS_getitimer, which as c_int, &mut v) };
        let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
        *slot = (us(v.it_interval), us(v.it_value));
    }
    out
}

pub fn set_itimer(which: usize, interval_us: u64, value_us: u64) {
    let tv = |us: u64| libc::timeval {
        tv_sec: (us / 1_000_000) as libc::time_t,
        tv_usec: (us % 1_000_000) as libc::suseconds_t,
    };
    let v = libc::itimerval {
        it_interval: tv(interval_us),
        it_value: tv(value_us),
    };
    // SAFETY: raw setitimer from a local; no old value requested.
    unsafe {
        libc::syscall(
            libc::SYS_setitimer,
            which as c_int,
            &v,
            core::ptr::null_mut::<libc::itimerval>(),
        )
    };
}

/// Signals pending for the calling thread or the process.
pub fn sigpending() -> u64 {
    let mut set = 0u64;
    // SAFETY: the kernel writes 8 bytes into `set`.
    unsafe { libc::syscall(libc::SYS_rt_sigpending, &mut set, 8) };
    set
}

/// Sends `sig` to the calling thread.
pub fn raise_in_thread(sig: c_int) {
    // SAFETY: plain tgkill to ourselves.
    unsafe {
        libc::syscall(
            libc::SYS_tgkill,
            libc::getpid(),
            libc::syscall(libc::SYS_gettid),
            sig,
        )
    };
}

pub fn sched_yield() {
    // SAFETY: no arguments.
    unsafe { libc::sched_yield() };
}

/// Saves the callee-saved registers, MXCSR, the x87 control word, the stack pointer and a
/// resume address into `ctx`, then calls `body(arg)` and returns its result.
///
/// When a restarted process jumps to the saved context (the stub does, with `rax = RESUMED`),
/// this function returns [`ckpt_image::RESUMED`] a second time, into the same caller frame,
/// which the image preserved because the caller was suspended in this call while the image
/// was written. Signal-safe.
///
/// # Safety
/// `ctx` must be valid for writes; `body` must be safe to call with `arg`.
#[unsafe(naked)]
pub unsafe extern "C" fn capture_and_run(
    ctx: *mut ResumeContext,
    body: extern "C" fn(*mut c_void) -> u64,
    arg: *mut c_void,
) -> u64 {
    naked_asm!(
        "mov [rdi + 0], rsp",
        "lea rax, [rip + 2f]",
        "mov [rdi + 8], rax",
        "mov [rdi + 16], rbx",
        "mov [rdi + 24], rbp",
        "mov [rdi + 32], r12",
        "mov [rdi + 40], r13",
        "mov [rdi + 48], r14",
        "mov [rdi + 56], r15",
        "stmxcsr [rdi + 64]",
        "fnstcw [rdi + 68]",
        "mov rax, rsi",
        "mov rdi, rdx",
        "sub rsp, 8",
        "call rax",
        "add rsp, 8",
        "ret",
        "2:",
        "ret",
    )
}

/// An atomic view of a 4-byte word of the program's memory (a field of a
/// `pthread_mutex_t`).
///
/// # Safety
/// `addr` must point to a live, 4-byte aligned word that is only accessed atomically or by
/// the calling thread while the reference is used.
#[inline(always)]
pub unsafe fn atomic_u32_at<'a>(addr: u64) -> &'a core::sync::atomic::AtomicU32 {
    // SAFETY: guaranteed by the caller.
    unsafe { &*(addr as *const core::sync::atomic::AtomicU32) }
}

/// glibc's `pthread_self()`: the calling thread's control block (no system call).
///
/// Read from the thread pointer itself (glibc's control block starts with a pointer to
/// itself), so that it inlines into the mutex wrappers without a call out of them.
#[inline(always)]
pub fn thread_self() -> u64 {
    let tcb: u64;
    // SAFETY: on x86-64 glibc, fs:0 holds the thread control block's own address.
    unsafe {
        core::arch::asm!("mov {}, fs:0", out(reg) tcb, options(nostack, readonly, preserves_flags))
    };
    tcb
}

/// The next definition of `name` after this library (`dlsym(RTLD_NEXT)`).
pub fn next_symbol(name: &core::ffi::CStr) -> Option<u64> {
    // SAFETY: dlsym with RTLD_NEXT and a valid C string.
    let p = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) };
    (!p.is_null()).then_some(p as u64)
}

/// Calls a `int f(pthread_mutex_t *, ...)`-shaped function found by `next_symbol`, passing
/// its arguments through.
///
/// # Safety
/// `f` must be the address of a C function taking up to three pointer-sized arguments and
/// returning int, and the arguments must be what it expects.
#[inline(always)]
pub unsafe fn call_mutex_fn(f: u64, a: *mut c_void, b: *const c_void, c: *const c_void) -> c_int {
    // SAFETY: guaranteed by the caller; extra arguments are ignored by the x86-64 C ABI.
    let f: extern "C" fn(*mut c_void, *const c_void, *const c_void) -> c_int =
        unsafe { core::mem::transmute(f as usize) };
    f(a, b, c)
}

/// A view of `len` bytes of this process's memory at `addr`.
///
/// Used by the checkpoint writer on ranges the kernel has just read successfully for the
/// image (so they are mapped and readable), while the process is frozen in the handler.
pub fn memory<'a>(addr: u64, len: u64) -> &'a [u8] {
    if len == 0 {
        return &[];
    }
    // SAFETY: the caller passes a range that was just read by write(2) without EFAULT, in a
    // single-threaded capture where nothing unmaps it meanwhile; it is only read.
    unsafe { core::slice::from_raw_parts(addr as *const u8, len as usize) }
}

/// `si_code`, `si_pid` and `si_value.sival_int` of a delivered signal's info.
///
/// # Safety
/// `info` must be null or the siginfo the kernel passed to an `SA_SIGINFO` handler.
pub unsafe fn siginfo_fields(info: *const libc::siginfo_t) -> (c_int, u32, i32) {
    if info.is_null() {
        return (0, 0, 0);
    }
    // SAFETY: the kernel passed a valid siginfo to the SA_SIGINFO handler; the pid and value
    // fields are read as the layout of queued and timer signals has them.
    unsafe {
        (
            (*info).si_code,
            (*info).si_pid() as u32,
            (*info).si_value().sival_ptr as usize as i32,
        )
    }
}

/// Removes one pending instance of `sig` without running its handler.
pub fn discard_pending(sig: c_int) {
    let set: u64 = 1 << (sig - 1);
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: rt_sigtimedwait with an 8-byte set, no info wanted and a zero timeout.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigtimedwait,
            &set,
            core::ptr::null_mut::<libc::siginfo_t>(),
            &zero,
            8,
        )
    };
}

/// Writes all of `buf` to a pipe or other stream.
pub fn pwrite_all_stream(fd: c_int, mut buf: &[u8]) -> SysResult<()> {
    while !buf.is_empty() {
        // SAFETY: writes from a live buffer.
        let r = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        match check(r as libc::c_long) {
            Ok(k) => buf = &buf[k..],
            Err(libc::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Forks a child that shares nothing but a copy-on-write image of this process, without
/// glibc's fork handlers (not async-signal-safe). Its exit is announced by `exit_signal`
/// instead of SIGCHLD, which also keeps it out of the program's own `wait` calls. Returns
/// 0 in the child and its pid in the parent.
pub fn fork_writer(exit_signal: c_int) -> SysResult<i32> {
    // SAFETY: a raw clone with no flags but the exit signal and no new stack behaves like
    // fork; the child only makes raw system calls (the signal-safe writer) and then _exits.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            exit_signal as usize,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    check(r).map(|p| p as i32)
}

/// `PR_GET_DUMPABLE`: 1 when the process may be dumped and its `/proc/self` files are its
/// user's, 0 (or 2) when they belong to root.
pub fn dumpable() -> i32 {
    // SAFETY: prctl with an integer option and no pointers.
    unsafe { libc::prctl(libc::PR_GET_DUMPABLE) }
}

/// `PR_SET_DUMPABLE` to 0 or 1.
pub fn set_dumpable(on: bool) {
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, on as libc::c_ulong) };
}

/// A pipe (read end, write end), close-on-exec.
pub fn pipe() -> SysResult<(c_int, c_int)> {
    let mut fds = [0 as c_int; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } as libc::c_long)?;
    Ok((fds[0], fds[1]))
}

/// The instruction pointer a signal interrupted, from the `ucontext_t` a SA_SIGINFO handler
/// receives (0 when there is none).
///
/// # Safety
/// `ctx` is null or the context pointer the kernel passed to the running handler.
pub unsafe fn interrupted_pc(ctx: *const c_void) -> u64 {
    if ctx.is_null() {
        return 0;
    }
    // SAFETY: per the contract, ctx points to the kernel's ucontext_t for this signal.
    unsafe { (*(ctx as *const libc::ucontext_t)).uc_mcontext.gregs[libc::REG_RIP as usize] as u64 }
}

/// Whether `fd` becomes readable (or reaches its end) within `ms` milliseconds.
pub fn wait_readable(fd: c_int, ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: poll(2) on one pollfd that lives across the call.
        match unsafe { libc::poll(&mut p, 1, ms) } {
            -1 if errno() == libc::EINTR => continue,
            r => return r > 0,
        }
    }
}

/// Sends SIGKILL to our child `pid`.
pub fn kill_child(pid: i32) {
    // SAFETY: kill(2) with a plain signal number, aimed at our own child.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

/// Writes one byte to `fd` (errors ignored: the reader then sees the end of the pipe).
pub fn write_byte(fd: c_int, b: u8) {
    // SAFETY: writes one byte from a live local.
    unsafe { libc::write(fd, (&b as *const u8).cast(), 1) };
}

/// Waits for child `pid` to exit and reaps it.
pub fn reap(pid: i32) {
    let mut status = 0;
    loop {
        // SAFETY: waits for our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        if r >= 0 || errno() != libc::EINTR {
            return;
        }
    }
}

/// Reaps child `pid` if it has exited: `Some(wait status)` when it is gone (`Some(0)` when
/// it is no child of ours any more), `None` while it runs. Signal-safe.
pub fn reap_nohang(pid: i32) -> Option<i32> {
    let mut status = 0;
    // SAFETY: waits for our own child, without blocking.
    let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG | libc::__WALL) };
    match r {
        0 => None,
        r if r == pid => Some(status),
        _ => Some(0),
    }
}

/// `pread` into `buf` until it is full, the end, or an error after some data; returns the
/// bytes read (an error before any data is returned as such). Reading `/proc/self/mem` stops
/// short at memory that cannot be read (a file mapping past the end of its file).
pub fn pread_some(fd: c_int, buf: &mut [u8], offset: u64) -> SysResult<usize> {
    let mut n = 0;
    while n < buf.len() {
        // SAFETY: the destination is the unfilled tail of `buf`.
        let r = unsafe {
            libc::pread(
                fd,
                buf[n..].as_mut_ptr().cast(),
                buf.len() - n,
                (offset + n as u64) as libc::off_t,
            )
        };
        match check(r as libc::c_long) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(libc::EINTR) => continue,
            Err(_) if n > 0 => break,
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Connects a new stream socket (close-on-exec) to the abstract unix socket `name` (without
/// its leading NUL). Signal-safe.
pub fn connect_abstract(name: &[u8]) -> SysResult<c_int> {
    // SAFETY: socket(2) with constant arguments.
    let fd = check(
        unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) }
            as libc::c_long,
    )? as c_int;
    // SAFETY: an all-zero sockaddr_un is valid; it is filled below.
    let mut addr: libc::sockaddr_un = unsafe { core::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    if name.len() + 1 > addr.sun_path.len() {
        close(fd);
        return Err(libc::ENAMETOOLONG);
    }
    // sun_path[0] stays 0: an abstract name.
    for (d, s) in addr.sun_path[1..].iter_mut().zip(name) {
        *d = *s as libc::c_char;
    }
    let len = core::mem::size_of::<libc::sa_family_t>() + 1 + name.len();
    loop {
        // SAFETY: `addr` is a valid sockaddr_un of which `len` bytes are used.
        let r = unsafe {
            libc::connect(
                fd,
                (&addr as *const libc::sockaddr_un).cast(),
                len as libc::socklen_t,
            )
        };
        match check(r as libc::c_long) {
            Ok(_) => return Ok(fd),
            Err(libc::EINTR) => continue,
            Err(e) => {
                close(fd);
                return Err(e);
            }
        }
    }
}

/// The credentials the kernel vouches for at the other end of a connected unix socket
/// (`SO_PEERCRED`: for a client, those of the process that called `listen`): (pid, uid).
/// Signal-safe.
pub fn peer_credentials(fd: c_int) -> SysResult<(u32, u32)> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = core::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `cred`.
    check(unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    } as libc::c_long)?;
    Ok((cred.pid as u32, cred.uid))
}

/// Reads from a socket until `buf` holds a newline, the peer closes, `buf` is full or `ms`
/// milliseconds pass without data; returns the bytes read. Signal-safe.
pub fn read_line_within(fd: c_int, buf: &mut [u8], ms: i32) -> usize {
    let mut n = 0;
    while n < buf.len() && !buf[..n].contains(&b'\n') {
        if !wait_readable(fd, ms) {
            break;
        }
        // SAFETY: the destination is the unfilled tail of `buf`.
        let r = unsafe {
            libc::recv(
                fd,
                buf[n..].as_mut_ptr().cast(),
                buf.len() - n,
                libc::MSG_DONTWAIT,
            )
        };
        match check(r as libc::c_long) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(libc::EINTR) | Err(libc::EAGAIN) => continue,
            Err(_) => break,
        }
    }
    n
}

/// Sends all of `buf` on a socket, never raising SIGPIPE (the peer may be gone; the
/// program must not die of it). Signal-safe.
pub fn send_all(fd: c_int, mut buf: &[u8]) -> SysResult<()> {
    while !buf.is_empty() {
        // SAFETY: sends from a live buffer.
        let r = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
        match check(r as libc::c_long) {
            Ok(k) => buf = &buf[k..],
            Err(libc::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The real user id.
pub fn getuid() -> u32 {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::getuid() }
}

/// Whether the process runs in secure-execution mode (`AT_SECURE`: set-user-ID or
/// set-group-ID, or gained capabilities, at its exec).
pub fn secure_execution() -> bool {
    // SAFETY: getauxval reads the auxiliary vector; no pointers involved.
    unsafe { libc::getauxval(libc::AT_SECURE) != 0 }
}

/// Gives the unnamed file `fd` (`O_TMPFILE`) the name `path` (NUL-terminated), replacing a
/// leftover file of that name. Signal-safe.
pub fn link_fd(fd: c_int, path: &[u8]) -> SysResult<()> {
    assert_nul(path);
    let mut proc_path = crate::line::Line::<32>::new();
    proc_path
        .push(b"/proc/self/fd/")
        .push_decimal(fd as u64)
        .push(b"\0");
    let from = proc_path.as_bytes();
    let link = || {
        // SAFETY: both paths are NUL-terminated buffers alive for the call.
        check(unsafe {
            libc::linkat(
                libc::AT_FDCWD,
                from.as_ptr().cast(),
                libc::AT_FDCWD,
                path.as_ptr().cast(),
                libc::AT_SYMLINK_FOLLOW,
            )
        } as libc::c_long)
        .map(drop)
    };
    match link() {
        Err(libc::EEXIST) => {
            // A leftover temp file of an earlier process with our pid (unlink never
            // follows a symlink).
            unlink(path);
            link()
        }
        r => r,
    }
}

/// Value [`capture_and_run`] returns when a fault cut its body short (see [`FaultGuard`]).
const FAULTED: u64 = 0x4641_554c_5445_4400; // "FAULTED\0"
static FAULT_ARMED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
static FAULT_TID: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
static FAULT_ADDR: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
static FAULT_CONTEXT: Global<ResumeContext> = Global::new(ResumeContext {
    rsp: 0,
    rip: 0,
    rbx: 0,
    rbp: 0,
    r12: 0,
    r13: 0,
    r14: 0,
    r15: 0,
    mxcsr: 0,
    fpu_cw: 0,
    _pad: 0,
});
static FAULT_PREVIOUS: Global<[ckpt_image::SigactionRecord; 2]> = Global::new(
    [ckpt_image::SigactionRecord {
        handler: 0,
        flags: 0,
        restorer: 0,
        mask: 0,
    }; 2],
);
const FAULT_SIGNALS: [c_int; 2] = [libc::SIGSEGV, libc::SIGBUS];
/// The kernel's flag for a handler that brings its own return path (`restore_rt`).
const SA_RESTORER: c_int = 0x0400_0000;

/// While it lives, a fault (SIGSEGV, SIGBUS) in a body run by [`FaultGuard::run`] on this
/// thread ends that body instead of the process: reading memory that turns out not to be
/// readable fails the checkpoint with the faulting address, and the program goes on (the
/// kernel's copies report such memory with EFAULT, but the checksum reads memory itself).
/// Dropping it puts the program's handlers and the signal mask back. Signal-safe.
pub struct FaultGuard {
    mask: u64,
}

impl FaultGuard {
    /// Takes over SIGSEGV and SIGBUS and unblocks them (the checkpoint handler runs with every
    /// signal blocked, and a blocked fault signal kills).
    pub fn install() -> SysResult<FaultGuard> {
        let action = ckpt_image::SigactionRecord {
            handler: on_fault as *const () as u64,
            flags: (libc::SA_SIGINFO | SA_RESTORER) as u64,
            restorer: restore_rt as *const () as u64,
            mask: !0,
        };
        // SAFETY: a checkpoint holds the library's state exclusively, and only it installs a
        // guard; the saved actions are read back by `drop` and `on_fault` of this guard.
        let previous = unsafe { FAULT_PREVIOUS.get() };
        for (i, &sig) in FAULT_SIGNALS.iter().enumerate() {
            rt_sigaction(sig, Some(&action), Some(&mut previous[i]))?;
        }
        let mask = sigmask();
        let bits = FAULT_SIGNALS.iter().fold(0u64, |m, &s| m | 1 << (s - 1));
        set_sigmask(mask & !bits);
        FAULT_TID.store(gettid(), core::sync::atomic::Ordering::Relaxed);
        Ok(FaultGuard { mask })
    }

    /// Runs `body(arg)`: `Ok(its result)`, or `Err(address)` when it faulted at `address`.
    ///
    /// # Safety
    /// `body` must be safe to call with `arg`, and safe to abandon at any point: no locks
    /// held, nothing to drop (a fault returns straight here, like `siglongjmp`, past its
    /// frames).
    pub unsafe fn run(
        &self,
        body: extern "C" fn(*mut c_void) -> u64,
        arg: *mut c_void,
    ) -> Result<u64, u64> {
        use core::sync::atomic::Ordering::Relaxed;
        // SAFETY: the context is this guard's (one checkpoint at a time); `body` may be called
        // with `arg` (the caller's promise); a fault resumes this call with FAULTED, in this
        // frame, which is live until the call returns.
        let r = unsafe {
            let ctx = FAULT_CONTEXT.get() as *mut ResumeContext;
            FAULT_ARMED.store(true, Relaxed);
            let r = capture_and_run(ctx, body, arg);
            FAULT_ARMED.store(false, Relaxed);
            r
        };
        if r == FAULTED {
            // The fault handler left every signal blocked; back to the guard's mask.
            let bits = FAULT_SIGNALS.iter().fold(0u64, |m, &s| m | 1 << (s - 1));
            set_sigmask(self.mask & !bits);
            return Err(FAULT_ADDR.load(Relaxed));
        }
        Ok(r)
    }
}

impl Drop for FaultGuard {
    fn drop(&mut self) {
        // SAFETY: as in `install`: this guard's saved actions.
        let previous = unsafe { FAULT_PREVIOUS.get() };
        for (i, &sig) in FAULT_SIGNALS.iter().enumerate() {
            restore_action(sig, &previous[i]);
        }
        set_sigmask(self.mask);
    }
}

/// The guard's SIGSEGV/SIGBUS handler: a fault of the guarded body on the guarded thread
/// resumes [`FaultGuard::run`] with the faulting address; any other fault gets the
/// program's own handler back and happens again (then as it would have without ckpt).
extern "C" fn on_fault(sig: c_int, info: *mut libc::siginfo_t, _ctx: *mut c_void) {
    use core::sync::atomic::Ordering::Relaxed;
    let ours = gettid() == FAULT_TID.load(Relaxed);
    if ours && FAULT_ARMED.swap(false, Relaxed) {
        // SAFETY: the kernel passed a valid siginfo for a fault signal.
        let addr = unsafe { (*info).si_addr() } as u64;
        FAULT_ADDR.store(addr, Relaxed);
        // SAFETY: the context was saved by the `capture_and_run` of the guarded body, whose
        // frame is still live (the fault happened inside it); the frames between here and
        // there hold nothing that needs dropping (the contract of `FaultGuard::run`).
        unsafe { ckpt_image::resume_context(FAULT_CONTEXT.get(), FAULTED) }
    }
    // SAFETY: reading the saved actions, which the guard does not change while installed.
    let previous = unsafe { FAULT_PREVIOUS.get() };
    let i = FAULT_SIGNALS.iter().position(|&s| s == sig).unwrap_or(0);
    restore_action(sig, &previous[i]);
}

/// Returns from a signal handler (the `sa_restorer` of handlers installed with the raw
/// system call).
#[unsafe(naked)]
extern "C" fn restore_rt() {
    naked_asm!("mov rax, 15", "syscall", "ud2")
}

/// The address and size of the function symbol that contains `addr`, from the dynamic
/// symbol table of its object (at library load).
pub fn symbol_extent(addr: u64) -> Option<(u64, u64)> {
    // SAFETY: zeroed Dl_info is valid; dladdr1 fills it and points `sym` at an ElfW(Sym) of
    // the object's symbol table, which lives as long as the object is loaded.
    unsafe {
        let mut info: libc::Dl_info = core::mem::zeroed();
        let mut sym: *mut c_void = core::ptr::null_mut();
        if libc::dladdr1(addr as *const c_void, &mut info, &mut sym, 1) == 0 || sym.is_null() {
            return None;
        }
        let sym = &*(sym as *const libc::Elf64_Sym);
        let start = info.dli_saddr as u64;
        (start != 0 && sym.st_size != 0).then_some((start, sym.st_size))
    }
}

/// `prlimit64` on this process: the (soft, hard) limit of resource `res`. Signal-safe.
pub fn get_rlimit(res: u32) -> SysResult<(u64, u64)> {
    let mut old = [0u64; 2];
    // SAFETY: the kernel writes one struct rlimit64 (two u64) into `old`.
    check(unsafe {
        libc::syscall(
            libc::SYS_prlimit64,
            0,
            res,
            core::ptr::null::<u64>(),
            old.as_mut_ptr(),
        )
    })?;
    Ok((old[0], old[1]))
}

/// `prlimit64` on this process: sets the (soft, hard) limit of resource `res`. Signal-safe.
pub fn set_rlimit(res: u32, soft: u64, hard: u64) -> SysResult<()> {
    let new = [soft, hard];
    // SAFETY: the kernel reads one struct rlimit64 (two u64) from `new`.
    check(unsafe {
        libc::syscall(
            libc::SYS_prlimit64,
            0,
            res,
            new.as_ptr(),
            core::ptr::null_mut::<u64>(),
        )
    })
    .map(drop)
}

/// `PR_GET_THP_DISABLE`: bit 0 set when transparent huge pages are disabled for the
/// process, the other bits the flags it was disabled with. Signal-safe.
pub fn thp_disable() -> SysResult<u64> {
    // SAFETY: prctl with integer arguments only.
    check(unsafe { libc::prctl(42, 0, 0, 0, 0) } as libc::c_long).map(|v| v as u64)
}

/// `PR_SET_THP_DISABLE` from a `thp_disable` value. Signal-safe.
pub fn set_thp_disable(value: u64) -> SysResult<()> {
    // SAFETY: prctl with integer arguments only.
    check(unsafe { libc::prctl(41, value & 1, value & !1, 0, 0) } as libc::c_long).map(drop)
}

/// `MEMBARRIER_CMD_GET_REGISTRATIONS`: the registration commands this process issued.
/// Signal-safe.
pub fn membarrier_registrations() -> SysResult<u64> {
    // SAFETY: membarrier with integer arguments only.
    check(unsafe { libc::syscall(libc::SYS_membarrier, 1 << 9, 0, 0) }).map(|v| v as u64)
}

/// Issues the membarrier registration command `cmd` again. Signal-safe.
pub fn membarrier_register(cmd: u64) -> SysResult<()> {
    // SAFETY: membarrier with integer arguments only.
    check(unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0, 0) }).map(drop)
}

/// Writes `bytes` to the existing file `path` (NUL-terminated; a /proc setting). Signal-safe.
pub fn write_file(path: &[u8], bytes: &[u8]) -> SysResult<()> {
    let fd = open(path, libc::O_WRONLY | libc::O_CLOEXEC, 0)?;
    let r = pwrite_all_stream(fd, bytes);
    close(fd);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    extern "C" fn read_byte(arg: *mut c_void) -> u64 {
        // SAFETY: the test passes an address that is either readable or faults cleanly.
        unsafe { core::ptr::read_volatile(arg as *const u8) as u64 }
    }

    #[test]
    fn a_fault_in_a_guarded_body_is_an_error_not_a_death() {
        // SAFETY: a fresh anonymous mapping of two pages, unmapped at the end; the second
        // becomes inaccessible, the first a guard page where the kernel has them.
        let pages = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                8192,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(pages, libc::MAP_FAILED);
        let second = pages as u64 + 4096;
        mprotect(second, 4096, 0).unwrap();
        // SAFETY: the first page of our own mapping.
        let guarded = unsafe { libc::madvise(pages, 4096, 102) } == 0;

        let before = sigmask();
        let guard = FaultGuard::install().unwrap();
        let seven = [7u8; 8];
        // SAFETY: read_byte reads one byte and holds nothing.
        unsafe {
            assert_eq!(guard.run(read_byte, second as *mut c_void), Err(second));
            if guarded {
                assert_eq!(guard.run(read_byte, pages), Err(pages as u64));
            }
            assert_eq!(guard.run(read_byte, seven.as_ptr() as *mut c_void), Ok(7));
        }
        drop(guard);
        assert_eq!(sigmask(), before, "the mask is put back");
        let mut action = ckpt_image::SigactionRecord::default();
        rt_sigaction(libc::SIGSEGV, None, Some(&mut action)).unwrap();
        assert_ne!(
            action.handler, on_fault as *const () as u64,
            "the handler is put back"
        );
        // SAFETY: unmapping the test's own mapping.
        unsafe { libc::munmap(pages, 8192) };
    }
}
