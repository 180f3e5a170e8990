//! The kernel's vDSO: moved to the saved addresses when it is the one the checkpoint was
//! taken under; otherwise the saved image comes back with each function forwarded to this
//! kernel's.

use super::*;

/// Whether the saved vDSO image is the one this kernel provides (a program's cached vDSO
/// function pointers then still point at the same code).
pub(crate) fn vdso_image_matches(fd: usize, tables: &Tables, cur: &VdsoFamily) -> bool {
    let Some(saved) = tables
        .regions
        .iter()
        .find(|r| r.flags & region_flags::VDSO != 0)
    else {
        return true;
    };
    let Some((cur_start, cur_len)) = cur.parts[2] else {
        return false;
    };
    if cur_len != saved.len {
        return false;
    }
    // SAFETY: single-threaded; PAGE is free again once the header was copied out.
    let page = unsafe { &mut PAGE.get().0 };
    for e in tables.extents_of(saved) {
        let mut off = 0;
        while off < e.len {
            if !pread_full(
                fd,
                page.as_mut_ptr() as usize,
                PAGE_SIZE as usize,
                e.file_offset + off,
            ) {
                fail(FormatError::Truncated);
            }
            let at = cur_start + (e.addr - saved.start) + off;
            // SAFETY: `at` lies inside the current [vdso] mapping (same size as the saved one,
            // checked above), which is readable.
            let live = unsafe { core::slice::from_raw_parts(at as *const u8, PAGE_SIZE as usize) };
            if live != &page[..] {
                return false;
            }
            off += PAGE_SIZE;
        }
    }
    true
}

/// Patches the saved vDSO image, restored at its old address, so that each of its functions
/// jumps to the function of the same name in this kernel's vDSO (`len` bytes at `new`); a
/// function this kernel lacks returns -ENOSYS. The program's cached pointers into the old
/// image then reach this kernel's code, which finds its data where this kernel put it.
pub(crate) fn forward_vdso(old: &ckpt_image::RegionRecord, new: u64, len: u64) {
    const MAX: usize = 64;
    let mut patches = [(0u64, [0u8; 12]); MAX];
    let mut count = 0;
    // SAFETY: the old image was just restored at old.start (old.len bytes, readable); this
    // kernel's [vdso] is mapped readable at new (len bytes). Both views end before the
    // patching below.
    let (old_image, new_image) = unsafe {
        (
            core::slice::from_raw_parts(old.start as *const u8, old.len as usize),
            core::slice::from_raw_parts(new as *const u8, len as usize),
        )
    };
    let parsed = vdso_functions(old_image, |name, off| {
        let mut target = None;
        let _ = vdso_functions(new_image, |n, o| {
            if n == name {
                target = Some(new + o);
            }
        });
        let code = match target {
            Some(t) => jump_to(t),
            // mov rax, -ENOSYS; ret
            None => {
                let e = (-(ENOSYS as i32)).to_le_bytes();
                [
                    0x48, 0xc7, 0xc0, e[0], e[1], e[2], e[3], 0xc3, 0xcc, 0xcc, 0xcc, 0xcc,
                ]
            }
        };
        if count < MAX && off + 12 <= old.len {
            patches[count] = (off, code);
            count += 1;
        }
    });
    // Two functions closer than a jump's length (aliases share one address) cannot both be
    // forwarded.
    let crowded = patches[..count]
        .iter()
        .any(|(a, _)| patches[..count].iter().any(|(b, _)| a < b && b - a < 12));
    if parsed.is_none() || count == MAX || crowded {
        die(
            "cannot forward the checkpointed vDSO's functions",
            Some(old.start),
            EXIT_OTHER_KERNEL,
        );
    }
    // SAFETY: changes protections of a region the stub restored and no longer references.
    if unsafe {
        syscall3(
            SYS_MPROTECT,
            old.start as usize,
            old.len as usize,
            PROT_READ | PROT_WRITE,
        )
    } < 0
    {
        die(
            "cannot protect region",
            Some(old.start),
            EXIT_RESTORE_FAILED,
        );
    }
    for (off, code) in &patches[..count] {
        // SAFETY: off + 12 <= old.len: inside the old image, writable now.
        let dst = unsafe { core::slice::from_raw_parts_mut((old.start + off) as *mut u8, 12) };
        dst.copy_from_slice(code);
    }
    // SAFETY: changes protections of a region the stub restored and no longer references.
    if unsafe {
        syscall3(
            SYS_MPROTECT,
            old.start as usize,
            old.len as usize,
            old.prot as usize,
        )
    } < 0
    {
        die(
            "cannot protect region",
            Some(old.start),
            EXIT_RESTORE_FAILED,
        );
    }
}

/// Moves the kernel's vvar/vvar_vclock/vdso to `home` (the lowest of them lands there),
/// keeping their spacing, through a parking spot in the stub's reservation so that old and
/// new never overlap; with no home, unmaps them.
pub(crate) fn move_vdso_family(cur: &VdsoFamily, home: Option<u64>, park: u64) {
    let Some((cur_lo, _)) = cur.span() else {
        return;
    };
    let Some(home) = home else {
        for (s, l) in cur.parts.iter().flatten() {
            // SAFETY: unmaps what the kernel gave the new process, outside the stub's own reservation.
            unsafe { syscall3(SYS_MUNMAP, *s as usize, *l as usize, 0) };
        }
        return;
    };
    if cur_lo == home {
        return;
    }
    for dest_lo in [park, home] {
        for (s, l) in cur.parts.iter().flatten() {
            let from = if dest_lo == park {
                *s
            } else {
                park + (s - cur_lo)
            };
            let to = dest_lo + (s - cur_lo);
            // SAFETY: moves the kernel's vDSO mappings, which nothing here references.
            let r = unsafe {
                syscall6(
                    SYS_MREMAP,
                    from as usize,
                    *l as usize,
                    *l as usize,
                    MREMAP_MAYMOVE | MREMAP_FIXED,
                    to as usize,
                    0,
                )
            };
            if r != to as isize {
                die("cannot move the vDSO", Some(to), EXIT_RESTORE_FAILED);
            }
        }
    }
}
