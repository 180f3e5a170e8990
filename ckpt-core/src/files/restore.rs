//! Opening the descriptors again at a restart, in phases: every record's plan is decided
//! and checked before anything changes (paths opened and closed again, their locks tested,
//! the kinds' `check`), then every record is put in place in increasing order, epoll sets
//! last, then the locks are taken again; what could not be is said in one line each.
//!
//! Everything here is signal-safe (it runs in a signal handler or the restart): no
//! allocation, no locks, no stdio.

use core::sync::atomic::Ordering;

use ckpt_image::{FdRecord, FD_ACTION_CLOSED, FD_ACTION_REBUILD, FD_ACTION_REOPEN};
use ckpt_image::{FD_ACTION_STDIO, FD_KIND_DEVICE, FD_KIND_DIRECTORY, FD_KIND_REGULAR};

use super::capture::{note_standard_descriptors, release_data, Captured, DATA_USED};
use super::locks::{locks_left, take_locks};
use super::say::{report_changed, report_failure, report_restore_error, say_descriptors};
use super::{kinds, Restoring, EXIT_FILE_CHANGED, EXIT_FILE_MISSING};
use crate::arena::Arena;
use crate::line::Line;
use crate::sys;

// What the restart does to each record, decided before anything changes (`Arena::fd_plans`).
/// Nothing (a standard descriptor that is another file; a record left closed).
const KEEP: u8 = 0;
/// Opened again by its path.
const OPENED: u8 = 1;
/// A copy of the record `Arena::fd_dup_of` names, which is in place by then.
const DUP: u8 = 2;
/// The restart's own standard descriptor, the same file: moved to the saved offset.
const SEEK: u8 = 3;
/// A standard descriptor closed in the restart that cannot be reopened: left closed.
const CLOSED: u8 = 4;
/// Made again by its kind's code (`kinds::rebuild`).
const REBUILD: u8 = 5;
/// Put in place already, by the rebuild of another record (the other end of a pipe).
pub(super) const PLACED: u8 = 6;
/// Made again by its kind's code after all others (an epoll set).
pub(super) const LATE: u8 = 7;
/// A copy of a `LATE` record, made after it.
pub(super) const LATE_DUP: u8 = 8;

/// How a restart treats the descriptors.
#[derive(Clone, Copy, Default, Debug)]
pub struct RestoreOptions {
    /// A file replaced or truncated since the checkpoint ends the restart
    /// (`CKPT_STRICT_FILES`) instead of a warning.
    pub strict: bool,
    /// Standard input, output and error are the saved ones, not the restart's, where they
    /// can be opened again (`CKPT_RESTORE_STDIO`).
    pub stdio: bool,
}

/// Opens every recorded descriptor again, as [`capture`](super::capture()) recorded it, in
/// a restarted process (the other threads wait). First every path is opened, checked and
/// closed again: one that cannot be opened ends the process with [`EXIT_FILE_MISSING`],
/// changed ones with [`EXIT_FILE_CHANGED`] when strict, before any descriptor has changed.
/// Then everything beyond 2 is closed (nothing but what the restarting shell leaked is
/// open there) and each record is opened into its number; that this fails so soon after
/// it worked (the file removed in between) ends the process with `RestoreFailed`.
/// Signal-safe.
pub fn restore(arena: &mut Arena, cap: Captured, options: RestoreOptions) {
    // The restart's standard descriptors are the restarted program's given ones.
    note_standard_descriptors();
    plan_and_check(arena, cap, options);
    put_in_place(arena, cap);
    rebuild_late(arena, cap);
    finish(arena, cap);
    // (In a restarted process the bytes came back with the memory, beyond the mark.)
    DATA_USED.store(cap.data, Ordering::Relaxed);
    release_data(arena);
    say_not_restored(&arena.fds[..cap.fds], &arena.fd_names[..cap.names]);
}

/// Decides what the restart does to each record (`Arena::fd_plans`) and checks that it
/// can, before anything changes: each path is opened, its locks tested and closed again,
/// each kind made from saved state checked by its code. One that cannot be ends the
/// process with [`EXIT_FILE_MISSING`]; a changed file is one line, and ends it with
/// [`EXIT_FILE_CHANGED`] when strict.
fn plan_and_check(arena: &mut Arena, cap: Captured, options: RestoreOptions) {
    let strict = options.strict;
    let fds = &arena.fds[..cap.fds];
    let names = &arena.fd_names[..cap.names];
    let data = &arena.fd_data[..cap.data];
    let plans = &mut arena.fd_plans[..cap.fds];
    let mut changed = 0;
    // The program's own limit is back by now, unless this restart may not raise it so far.
    let limit = sys::get_rlimit(libc::RLIMIT_NOFILE).map_or(u64::MAX, |(soft, _)| soft);
    for (i, f) in fds.iter().enumerate() {
        plans[i] = KEEP;
        match f.action {
            FD_ACTION_REOPEN if f.fd as u64 >= limit => {
                report_restore_error(
                    f,
                    f.name(names),
                    b"') cannot be opened again: ",
                    libc::EMFILE,
                    b"; nothing was restored\n",
                );
                sys::exit_now(EXIT_FILE_MISSING);
            }
            FD_ACTION_REOPEN => {}
            FD_ACTION_REBUILD => {
                // One that shared its description with a standard descriptor (`exec 3>&1`
                // onto a pipe or a terminal) is a copy of the restart's own, as that one is
                // (when the restart has it open).
                let group = f.group as usize;
                if fds[group].action == FD_ACTION_STDIO
                    && sys::fd_flags(fds[group].fd as i32).is_ok()
                {
                    plans[i] = DUP;
                    arena.fd_dup_of[i] = group as u32;
                    continue;
                }
                // A copy of an earlier record of its description is made from it.
                let first = (f.group as usize..i)
                    .find(|&j| fds[j].group == f.group && matches!(plans[j], REBUILD | LATE));
                if let Some(j) = first {
                    plans[i] = if plans[j] == LATE { LATE_DUP } else { DUP };
                    arena.fd_dup_of[i] = j as u32;
                    continue;
                }
                let r = Restoring {
                    fds,
                    names,
                    data,
                    plans: &mut plans[..],
                    scratch: &mut arena.fd_scratch[..],
                };
                if let Err(e) = kinds::check(&r, i) {
                    report_failure(f, f.name(names), e, b"; nothing was restored\n");
                    sys::exit_now(EXIT_FILE_MISSING);
                }
                plans[i] = if kinds::late(f.kind) { LATE } else { REBUILD };
                continue;
            }
            // CKPT_RESTORE_STDIO: the saved one, not the restart's.
            FD_ACTION_STDIO if options.stdio && ckpt_image::kind_reopens(f.kind) => {}
            FD_ACTION_STDIO => match sys::fstat(f.fd as i32) {
                Ok(st) => {
                    let same = f.kind == FD_KIND_REGULAR
                        && st.st_mode & libc::S_IFMT == libc::S_IFREG
                        && (st.st_dev, st.st_ino) == (f.dev, f.ino);
                    // The same file goes on where it was; one that no longer reaches that
                    // far was rewritten (`./prog.ckpt > log` truncates it), and is used as
                    // given. Output is never moved back over what is there since: a shell
                    // that ran the program and then its restart into one file (`{ prog;
                    // echo; ./prog.ckpt; } > log`) gives it an offset past the saved one.
                    let writes = sys::status_flags(f.fd as i32)
                        .is_ok_and(|flags| flags & libc::O_ACCMODE != libc::O_RDONLY);
                    let behind =
                        !writes || sys::offset_of(f.fd as i32).is_ok_and(|offset| offset < f.pos);
                    if same && st.st_size as u64 >= f.pos && behind {
                        plans[i] = SEEK;
                    }
                    continue;
                }
                Err(_) if !ckpt_image::kind_reopens(f.kind) => {
                    plans[i] = CLOSED;
                    continue;
                }
                // Closed in the restart: the saved one is opened again.
                Err(_) => {}
            },
            _ => continue,
        }
        // The first reopened member of its group is opened; the others copy it.
        let leader = (f.group as usize..i).find(|&j| fds[j].group == f.group && plans[j] == OPENED);
        if let Some(j) = leader {
            plans[i] = DUP;
            arena.fd_dup_of[i] = j as u32;
            continue;
        }
        let mut moved_buf = [0u8; crate::arena::PATH_MAX];
        let moved = relocated(f.name(names), &mut moved_buf);
        let fd = match open_record(f, f.name(names), true) {
            Ok(fd) => fd,
            Err(e) => {
                let what: &[u8] = if moved.is_some() {
                    b"', relocated) cannot be opened again: "
                } else {
                    b"') cannot be opened again: "
                };
                report_restore_error(
                    f,
                    moved.unwrap_or(f.name(names)),
                    what,
                    e,
                    b"; nothing was restored\n",
                );
                sys::exit_now(EXIT_FILE_MISSING);
            }
        };
        plans[i] = OPENED;
        // Its locks, which someone else may hold by now.
        take_locks(
            fd,
            f,
            f.name(names),
            f.aux(names),
            true,
            b"; nothing was restored\n",
        );
        let st = sys::fstat(fd);
        sys::close(fd);
        // A device, or a file of the kernel's /proc, which every process sees anew.
        if f.kind == FD_KIND_DEVICE || f.name(names).starts_with(b"/proc/") {
            continue;
        }
        if let Ok(st) = st {
            // A relocated file is another copy: only whether it still reaches the offset.
            let replaced = moved.is_none() && (st.st_dev, st.st_ino) != (f.dev, f.ino);
            let truncated = f.kind == FD_KIND_REGULAR && (st.st_size as u64) < f.pos;
            if replaced || truncated {
                changed += 1;
                report_changed(f, f.name(names), replaced, strict);
            }
        }
    }
    if strict && changed > 0 {
        let mut line = Line::<256>::new();
        line.push(b"ckpt restart: CKPT_STRICT_FILES is set and ")
            .push_decimal(changed)
            .push(b" file(s) changed since the checkpoint; nothing was restored\n");
        sys::write_stderr(line.as_bytes());
        sys::exit_now(EXIT_FILE_CHANGED);
    }
}

/// Past every check: what the restarting shell leaked beyond 2 goes, and every record is
/// put in place, in increasing order (so a reopened file never lands on a number a record
/// placed before it holds), but those made after all others.
fn put_in_place(arena: &mut Arena, cap: Captured) {
    let fds = &arena.fds[..cap.fds];
    let names = &arena.fd_names[..cap.names];
    let data = &arena.fd_data[..cap.data];
    sys::close_range(3, u32::MAX);
    for (i, f) in fds.iter().enumerate() {
        let plan = arena.fd_plans[i];
        if plan == REBUILD {
            let mut r = Restoring {
                fds,
                names,
                data,
                plans: &mut arena.fd_plans[..cap.fds],
                scratch: &mut arena.fd_scratch[..],
            };
            if let Err(e) = kinds::rebuild(&mut r, i) {
                report_failure(f, f.name(names), e, b"\n");
                sys::exit_now(ckpt_image::ExitStatus::RestoreFailed.code());
            }
            continue;
        }
        let result = match plan {
            OPENED => open_record(f, f.name(names), f.cloexec()).and_then(|t| {
                if matches!(f.kind, FD_KIND_REGULAR | FD_KIND_DIRECTORY) && f.pos != 0 {
                    let _ = sys::seek_to(t, f.pos);
                }
                if t == f.fd as i32 {
                    return Ok(());
                }
                let r = sys::dup_to(t, f.fd as i32, f.cloexec());
                sys::close(t);
                r
            }),
            DUP => {
                let j = arena.fd_dup_of[i] as usize;
                sys::dup_to(fds[j].fd as i32, f.fd as i32, f.cloexec())
            }
            SEEK => sys::seek_to(f.fd as i32, f.pos).map(drop),
            _ => Ok(()),
        };
        if let Err(e) = result {
            report_restore_error(f, f.name(names), b"') cannot be put back: ", e, b"\n");
            sys::exit_now(ckpt_image::ExitStatus::RestoreFailed.code());
        }
    }
}

/// Epoll sets last: their watches name the descriptors put in place before.
fn rebuild_late(arena: &mut Arena, cap: Captured) {
    let fds = &arena.fds[..cap.fds];
    let names = &arena.fd_names[..cap.names];
    let data = &arena.fd_data[..cap.data];
    for (i, f) in fds.iter().enumerate() {
        let result = match arena.fd_plans[i] {
            LATE => {
                let mut r = Restoring {
                    fds,
                    names,
                    data,
                    plans: &mut arena.fd_plans[..cap.fds],
                    scratch: &mut arena.fd_scratch[..],
                };
                kinds::rebuild(&mut r, i)
            }
            LATE_DUP => {
                let j = arena.fd_dup_of[i] as usize;
                sys::dup_to(fds[j].fd as i32, f.fd as i32, f.cloexec())
                    .map_err(|e| kinds::Failure::new(b"cannot be put back", e))
            }
            _ => Ok(()),
        };
        if let Err(e) = result {
            report_failure(f, f.name(names), e, b"\n");
            sys::exit_now(ckpt_image::ExitStatus::RestoreFailed.code());
        }
    }
}

/// Once every descriptor is in place: the locks taken again, then each kind's last step.
fn finish(arena: &mut Arena, cap: Captured) {
    let fds = &arena.fds[..cap.fds];
    let names = &arena.fd_names[..cap.names];
    let data = &arena.fd_data[..cap.data];
    // The locks, once every descriptor is in place (closing another descriptor of a file
    // would give back the process's POSIX locks on it). Descriptors of one open file
    // description show the same locks, and taking one again through another is no change.
    for f in fds {
        if matches!(f.action, FD_ACTION_REOPEN | FD_ACTION_REBUILD) {
            take_locks(f.fd as i32, f, f.name(names), f.aux(names), false, b"\n");
        }
    }
    kinds::finish(&Restoring {
        fds,
        names,
        data,
        plans: &mut arena.fd_plans[..cap.fds],
        scratch: &mut arena.fd_scratch[..],
    });
}

/// One line each for what was not restored as it was: descriptors left closed,
/// signal-driven I/O not set up again, file locks not taken again.
fn say_not_restored(fds: &[FdRecord], names: &[u8]) {
    let name = |f: &FdRecord| f.name(names);
    // (A standard descriptor the restart closed stays closed, as it was given.)
    say_descriptors(
        b"ckpt restart: left closed, as CKPT_FD_POLICY=close had the checkpoint record them",
        fds.iter().filter(|f| f.action == FD_ACTION_CLOSED),
        name,
        (b" (", b")"),
    );
    // Signal-driven I/O to the process itself is set up again for the restarted one (a
    // descriptor opened again has only the flags `open` takes); any other, or one that
    // cannot be, is said.
    say_descriptors(
        b"ckpt restart: signal-driven I/O (O_ASYNC) was not set up again (it went to \
          another process, a thread or with another signal)",
        fds.iter().filter(|f| {
            matches!(f.action, FD_ACTION_REOPEN | FD_ACTION_REBUILD)
                && f.signals_io()
                && (f.fd_flags & ckpt_image::FD_ASYNC_OWN == 0
                    || sys::signal_io_to_self(f.fd as i32).is_err())
        }),
        name,
        (b" ('", b"')"),
    );
    // Locks not taken again (leases, locks on pipes): say so rather than let the program
    // think it holds them.
    say_descriptors(
        b"ckpt restart: the file locks (leases, or locks on this kind of descriptor) the \
          program held were not taken again",
        fds.iter().filter(|f| locks_left(f, f.aux(names))),
        name,
        (b" ('", b"')"),
    );
}

/// `path` moved by the restart's `CKPT_RELOCATE` (written into `out`), or `None` when no
/// pair of it applies. For every kind that opens a saved path again. Signal-safe.
pub(super) fn relocated<'a>(path: &[u8], out: &'a mut [u8]) -> Option<&'a [u8]> {
    if crate::restore::RESTART_RELOCATE[0].load(Ordering::Relaxed) == 0 {
        return None;
    }
    let mut value = [0u8; ckpt_image::relocate::RELOCATE_MAX];
    let value = crate::restore::relocation(&mut value);
    if value.is_empty() {
        return None;
    }
    ckpt_image::relocate::relocate(value, path, out)
}

/// Opens the path of `f` (relocated by `CKPT_RELOCATE`) with its flags (not those that
/// create or truncate, nor `O_NOCTTY`), close-on-exec when `cloexec`. Signal-safe.
fn open_record(f: &FdRecord, name: &[u8], cloexec: bool) -> sys::SysResult<i32> {
    let mut moved = [0u8; crate::arena::PATH_MAX];
    let name = relocated(name, &mut moved).unwrap_or(name);
    let mut path = [0u8; crate::arena::PATH_MAX + 1];
    let n = name.len().min(crate::arena::PATH_MAX);
    path[..n].copy_from_slice(&name[..n]);
    let mut flags =
        f.flags as i32 & !(libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC | libc::O_NOCTTY);
    if cloexec {
        flags |= libc::O_CLOEXEC;
    }
    sys::open(&path[..n + 1], flags, 0)
}
