/*
 * The entry check of every checkpoint file: the first code that runs when the file is
 * executed, placed right after the 64-byte ELF header (file offset 64), followed by the
 * program headers. The checkpoint writer copies its bytes from `elf::LOADER` (elf.rs) and
 * patches the four zero fields at the end; a test in elf.rs assembles this file with
 * `cc -c` and compares, so the two cannot drift apart.
 *
 * Nothing after the prefix (ELF header, this check, program headers: 488 bytes) runs
 * unchecked:
 *   1. The length of the file (/proc/self/exe, lseek to its end) must be at least the
 *      image's length; otherwise the stub's pages may lie past the end of the file, and
 *      touching them would raise SIGBUS. Short: "truncated", exit 69.
 *   2. The checksum of every byte from the end of the prefix through the end of the
 *      stub's pages (the rest of the first page, which is zero, and the relocated stub as
 *      the writer stored it), read from memory where the kernel mapped them, contiguous:
 *      the first page just below the stub. Mismatch: "damaged", exit 68.
 *   3. Jump to the stub's entry, with the kernel's initial stack untouched.
 * Without /proc the length is unknown (open and lseek fail, and an error is never "short"):
 * the checksum then runs anyway, and a file cut inside the stub dies of SIGBUS, as one did
 * before this check checked anything but the length. The stub itself finds its file
 * through AT_EXECFN then.
 *
 * The checksum, also in ckpt-image's stub_sum.rs: h = 0; for each little-endian 64-bit
 * word w: h = rotl((h ^ w) * M, 32) * M, with M the odd 32-bit constant below sign-extended
 * (as imul extends its immediate). Each step is a bijection in h and in w, so a change in
 * any single word always changes the result. No CRC-32C instruction: it is SSE4.2, which
 * the x86-64 baseline lacks, and a checkpoint must run on any x86-64.
 *
 * Size matters: 64 + this + 3 * 56 bytes of program headers must end at 488, the bytes
 * nothing can check. So there is no PT_GNU_STACK program header (on x86-64 its absence
 * leaves the stack non-executable: the kernel's elf_read_implies_exec is only true for
 * 32-bit programs), registers are loaded with push/pop, and the message and status of
 * both refusals share one tail.
 */
    .intel_syntax noprefix
    .text
    .set PHDRS_SIZE, 3 * 56
    .set STUB_SUM_MUL, -0x61c8864f  /* 0x9e3779b1 as a signed 32-bit immediate */

    .globl ckpt_loader
ckpt_loader:
    cld                             /* lodsq below reads forwards */
    lea rdi, [rip + path]           /* open("/proc/self/exe", O_RDONLY) */
    xor esi, esi
    push 2                          /* SYS_open */
    pop rax
    syscall
    xchg edi, eax                   /* lseek(fd, 0, SEEK_END); rsi is still 0 */
    push 2                          /* SEEK_END */
    pop rdx
    push 8                          /* SYS_lseek */
    pop rax
    syscall
    xchg rbx, rax                   /* the file's length, or -errno */
    push 3                          /* close(fd): the program's descriptors stay its own */
    pop rax
    syscall
    cmp rbx, [rip + file_len]
    jb truncated                    /* unsigned: an error is not "short" */

    lea rsi, [rip + prefix_end]
    mov ecx, [rip + word_count]
    xor edx, edx                    /* h */
1:  lodsq
    xor rax, rdx
    imul rax, rax, STUB_SUM_MUL
    rol rax, 32
    imul rdx, rax, STUB_SUM_MUL
    loop 1b
    cmp rdx, [rip + stub_sum]
    jne damaged
    .byte 0xe9                      /* jmp rel32: the stub's entry */
entry_rel32:
    .long 0

/* rsi: the message, rdx: its length (push imm8 written out as bytes: `push` of a label
 * difference defined further down would take a 4-byte immediate), then the exit status. */
truncated:
    lea rsi, [rip + truncated_msg]
    .byte 0x6a, truncated_msg_end - truncated_msg
    pop rdx
    push 69
    jmp 2f
damaged:
    lea rsi, [rip + damaged_msg]
    .byte 0x6a, damaged_msg_end - damaged_msg
    pop rdx
    push 68
2:  push 2                          /* write(2, rsi, rdx) */
    pop rdi
    push 1                          /* SYS_write */
    pop rax
    syscall
    pop rdi                         /* exit(status): the process's only thread */
    push 60                         /* SYS_exit */
    pop rax
    syscall

truncated_msg:
    .ascii "ckpt restart: checkpoint file is truncated\n"
truncated_msg_end:
damaged_msg:
    .ascii "ckpt restart: the restart stub is damaged\n"
damaged_msg_end:
path:
    .asciz "/proc/self/exe"
/* Patched by the writer (elf::write_prefix); unaligned, which x86 reads as well. */
file_len:
    .quad 0
stub_sum:
    .quad 0
word_count:
    .long 0
    .balign 8, 0
loader_end:
    .set prefix_end, loader_end + PHDRS_SIZE

