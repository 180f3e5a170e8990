//! Unit tests of the signal wrappers' pure logic.

use super::*;

const TSTP: u64 = bit(libc::SIGTSTP);
const CONTROL: u64 = bit(63);
const USR1: u64 = bit(libc::SIGUSR1);
const OWNED_NOW: u64 = TSTP | CONTROL;

#[test]
fn blocking_everything_keeps_the_owned_signals_virtual() {
    let all = !0u64;
    assert_eq!(virtual_after(libc::SIG_BLOCK, all, OWNED_NOW, 0), OWNED_NOW);
    assert_eq!(
        virtual_after(libc::SIG_SETMASK, all, OWNED_NOW, 0),
        OWNED_NOW
    );
    assert_eq!(
        virtual_after(libc::SIG_SETMASK, USR1, OWNED_NOW, OWNED_NOW),
        0
    );
    assert_eq!(
        virtual_after(libc::SIG_UNBLOCK, TSTP, OWNED_NOW, OWNED_NOW),
        CONTROL
    );
    assert_eq!(
        virtual_after(libc::SIG_BLOCK, USR1, OWNED_NOW, CONTROL),
        CONTROL
    );
    // A bad `how` changes nothing (glibc fails before any change).
    assert_eq!(virtual_after(12345, all, OWNED_NOW, TSTP), TSTP);
}

#[test]
fn settling_moves_blocked_owned_signals_out_of_the_kernel_and_given_back_ones_in() {
    // Inherited across exec: SIGTSTP and SIGUSR1 blocked in the kernel.
    assert_eq!(
        settle(TSTP | USR1, 0, OWNED_NOW),
        Settled {
            block: 0,
            unblock: TSTP,
            virt: TSTP,
        }
    );
    // SIGUSR1 was owned and virtually blocked; it was given back, SIGTSTP taken.
    assert_eq!(
        settle(TSTP, USR1, OWNED_NOW),
        Settled {
            block: USR1,
            unblock: TSTP,
            virt: TSTP,
        }
    );
    assert_eq!(
        settle(USR1, CONTROL, OWNED_NOW),
        Settled {
            block: 0,
            unblock: 0,
            virt: CONTROL,
        }
    );
}

#[test]
fn recorded_actions_look_as_the_kernel_keeps_them() {
    let act = simple_action(
        0x1234,
        libc::SA_SIGINFO | libc::SA_RESETHAND | 0x400,
        bit(libc::SIGINT) | UNBLOCKABLE,
    );
    let r = kernel_action(&act, 0xabc0);
    assert_eq!(r.handler, 0x1234);
    assert_eq!(r.restorer, 0xabc0);
    // The unknown flag (SA_UNSUPPORTED) is dropped; glibc's SA_RESTORER is added.
    assert_eq!(
        r.flags,
        libc::SA_SIGINFO as u64 | libc::SA_RESETHAND as u32 as u64 | SA_RESTORER
    );
    assert_eq!(r.mask, bit(libc::SIGINT));

    let mut back = simple_action(0, 0, 0);
    sys::set_sigset_word(&mut back.sa_mask, !0);
    fill_action(&mut back, &r);
    assert_eq!(back.sa_sigaction, 0x1234);
    assert_eq!(back.sa_flags, r.flags as c_int);
    assert_eq!(sys::sigset_word(&back.sa_mask), bit(libc::SIGINT));
    assert_eq!(back.sa_restorer.map(|f| f as usize), Some(0xabc0));
}

#[test]
fn signals_are_named_as_kill_names_them() {
    let name = |sig| {
        let mut line = Line::<32>::new();
        push_signal_name(&mut line, sig);
        String::from_utf8(line.as_bytes().to_vec()).unwrap()
    };
    assert_eq!(name(libc::SIGTSTP), " (SIGTSTP)");
    assert_eq!(name(63), " (SIGRTMAX-1)");
    assert_eq!(name(35), " (SIGRTMIN+1)");
    assert_eq!(name(32), "");
}

#[test]
fn old_bsd_masks_are_the_first_32_signals() {
    assert_eq!(sys::sigset_word(&set_from_old_mask(-1)), 0xffff_ffff);
    assert_eq!(
        sys::sigset_word(&set_from_old_mask(1 << (libc::SIGTSTP - 1))),
        TSTP
    );
}

#[test]
fn stripping_leaves_the_callers_set_alone() {
    let mut set = only(libc::SIGTSTP);
    sys::set_sigset_word(&mut set, TSTP | USR1 | CONTROL);
    // SAFETY: a valid set.
    let stripped = unsafe { Stripped::new(&set, OWNED_NOW) };
    assert_eq!(stripped.0.as_ref().map(sys::sigset_word), Some(USR1));
    assert_eq!(sys::sigset_word(&set), TSTP | USR1 | CONTROL);
    // SAFETY: null is allowed.
    assert!(unsafe { Stripped::new(core::ptr::null(), OWNED_NOW) }
        .ptr()
        .is_null());
}
