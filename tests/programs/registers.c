/* Keeps known values in every register a checkpoint must restore, and spins checking them.
 *
 * Held for a whole round: the vector registers (ymm0-15 with AVX, else xmm0-15), the general
 * registers rbx rsi rdi r8-r15, the carry and direction flags, MXCSR (round toward zero) and
 * the x87 control word (round down). The spin loop re-checks the carry flag every iteration
 * and everything else at the end of each round, and nearly all the time is spent in that
 * loop, so an asynchronous checkpoint almost always lands with all of it live. MXCSR and the
 * x87 control word stay non-default for the whole run and are also checked on entry, so a
 * checkpoint that lands in the C code is covered for them too.
 *
 * Prints "ready avx" or "ready sse", then "ok N" after each round. On a mismatch it prints
 * "BAD <what> ..." and exits 1. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "common.h"

/* Rounds of SPIN iterations each, per printed line: about 15 ms on current machines. */
#define ROUNDS 30000
#define SPIN "2000"

#define MXCSR_TOWARD_ZERO 0x7f80u /* all exceptions masked, RC = 11 */
#define FCW_ROUND_DOWN 0x077fu    /* all exceptions masked, extended precision, RC = 01 */

struct state {
    uint64_t pattern[16][4]; /* 0: expected vector registers (xmm: first two words) */
    uint64_t inverse[16][4]; /* 512: their complements, for the two-sided ptest check */
    uint64_t gpr[11];        /* 1024: rbx rsi rdi r8 r9 r10 r11 r12 r13 r14 r15 */
    uint32_t mxcsr;          /* 1112 */
    uint16_t fcw;            /* 1116 */
    uint16_t pad;
    uint64_t rounds;         /* 1120 */
    uint32_t seen_mxcsr;     /* 1128 */
    uint16_t seen_fcw;       /* 1132 */
    uint16_t pad2;
    uint32_t bad_index;      /* 1136 */
} __attribute__((aligned(32)));

_Static_assert(offsetof(struct state, inverse) == 512, "layout");
_Static_assert(offsetof(struct state, gpr) == 1024, "layout");
_Static_assert(offsetof(struct state, mxcsr) == 1112, "layout");
_Static_assert(offsetof(struct state, fcw) == 1116, "layout");
_Static_assert(offsetof(struct state, rounds) == 1120, "layout");
_Static_assert(offsetof(struct state, seen_mxcsr) == 1128, "layout");
_Static_assert(offsetof(struct state, seen_fcw) == 1132, "layout");
_Static_assert(offsetof(struct state, bad_index) == 1136, "layout");

/* int NAME(struct state *): 0 if all held, else 1 carry flag, 2 direction flag, 3 vector
 * register (index in bad_index), 4 general register (index), 5 MXCSR, 6 x87 control word.
 * (p)test sets CF iff all pattern bits are set in the register and ZF iff the register has no
 * bit outside the pattern: together, equality, without a scratch register. */
#define SPIN_FUNCTION(NAME, MOV, REG, TEST, LEAVE)                                            \
    __asm__(".text\n"                                                                         \
            ".globl " #NAME "\n"                                                              \
            ".type " #NAME ", @function\n" #NAME ":\n"                                        \
            "  push %rbx\n  push %rbp\n  push %r12\n  push %r13\n  push %r14\n  push %r15\n"  \
            "  mov %rdi, %rdx\n"                                                              \
            "  xor %ecx, %ecx\n"                                                              \
            "  stmxcsr 1128(%rdx)\n  mov 1128(%rdx), %eax\n  cmp 1112(%rdx), %eax\n"          \
            "  jne 84f\n"                                                                     \
            "  fnstcw 1132(%rdx)\n  movzwl 1132(%rdx), %eax\n  movzwl 1116(%rdx), %ecx\n"     \
            "  cmp %ecx, %eax\n  jne 85f\n"                                                   \
            "  .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n"                                \
            "  " MOV " (\\i*32)(%rdx), %" REG "\\i\n"                                         \
            "  .endr\n"                                                                       \
            "  mov 1024(%rdx), %rbx\n  mov 1032(%rdx), %rsi\n  mov 1040(%rdx), %rdi\n"        \
            "  mov 1048(%rdx), %r8\n   mov 1056(%rdx), %r9\n   mov 1064(%rdx), %r10\n"        \
            "  mov 1072(%rdx), %r11\n  mov 1080(%rdx), %r12\n  mov 1088(%rdx), %r13\n"        \
            "  mov 1096(%rdx), %r14\n  mov 1104(%rdx), %r15\n"                                \
            "1:\n"                                                                            \
            "  stc\n  std\n"                                                                  \
            "  mov $" SPIN ", %ecx\n"                                                         \
            "2:\n  jnc 80f\n  dec %ecx\n  jnz 2b\n"                                            \
            "  jnc 80f\n"                                                                     \
            "  pushfq\n  pop %rax\n  cld\n"                                                   \
            "  bt $10, %rax\n  jnc 81f\n"                                                     \
            "  .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n"                                \
            "  mov $\\i, %ecx\n"                                                              \
            "  " TEST " (\\i*32)(%rdx), %" REG "\\i\n  jnc 82f\n"                             \
            "  " TEST " (512+\\i*32)(%rdx), %" REG "\\i\n  jnz 82f\n"                         \
            "  .endr\n"                                                                       \
            "  mov $0, %ecx\n  cmp 1024(%rdx), %rbx\n  jne 83f\n"                             \
            "  mov $1, %ecx\n  cmp 1032(%rdx), %rsi\n  jne 83f\n"                             \
            "  mov $2, %ecx\n  cmp 1040(%rdx), %rdi\n  jne 83f\n"                             \
            "  mov $3, %ecx\n  cmp 1048(%rdx), %r8\n   jne 83f\n"                             \
            "  mov $4, %ecx\n  cmp 1056(%rdx), %r9\n   jne 83f\n"                             \
            "  mov $5, %ecx\n  cmp 1064(%rdx), %r10\n  jne 83f\n"                             \
            "  mov $6, %ecx\n  cmp 1072(%rdx), %r11\n  jne 83f\n"                             \
            "  mov $7, %ecx\n  cmp 1080(%rdx), %r12\n  jne 83f\n"                             \
            "  mov $8, %ecx\n  cmp 1088(%rdx), %r13\n  jne 83f\n"                             \
            "  mov $9, %ecx\n  cmp 1096(%rdx), %r14\n  jne 83f\n"                             \
            "  mov $10, %ecx\n cmp 1104(%rdx), %r15\n  jne 83f\n"                             \
            "  xor %ecx, %ecx\n"                                                              \
            "  stmxcsr 1128(%rdx)\n  mov 1128(%rdx), %eax\n  cmp 1112(%rdx), %eax\n"          \
            "  jne 84f\n"                                                                     \
            "  fnstcw 1132(%rdx)\n  movzwl 1132(%rdx), %eax\n  movzwl 1116(%rdx), %ecx\n"     \
            "  cmp %ecx, %eax\n  jne 85f\n"                                                   \
            "  decq 1120(%rdx)\n  jnz 1b\n"                                                   \
            "  xor %eax, %eax\n  jmp 90f\n"                                                   \
            "80:\n  mov $1, %eax\n  jmp 90f\n"                                                \
            "81:\n  mov $2, %eax\n  jmp 90f\n"                                                \
            "82:\n  mov $3, %eax\n  jmp 90f\n"                                                \
            "83:\n  mov $4, %eax\n  jmp 90f\n"                                                \
            "84:\n  mov $5, %eax\n  jmp 90f\n"                                                \
            "85:\n  mov $6, %eax\n"                                                           \
            "90:\n  cld\n"                                                                    \
            "  mov %ecx, 1136(%rdx)\n"                                                        \
            LEAVE                                                                             \
            "  pop %r15\n  pop %r14\n  pop %r13\n  pop %r12\n  pop %rbp\n  pop %rbx\n"        \
            "  ret\n"                                                                         \
            ".size " #NAME ", .-" #NAME "\n");

SPIN_FUNCTION(spin_avx, "vmovdqu", "ymm", "vptest", "  vzeroupper\n")
SPIN_FUNCTION(spin_sse, "movdqu", "xmm", "ptest", "")

int spin_avx(struct state *state);
int spin_sse(struct state *state);

static const char *const failure[] = {
    "none", "carry flag", "direction flag", "vector register", "general register", "MXCSR",
    "x87 control word",
};

static struct state state;

int main(void)
{
    int avx = __builtin_cpu_supports("avx");
    if (!avx && !__builtin_cpu_supports("sse4.1")) {
        puts("BAD this test needs SSE4.1 (ptest)");
        return 1;
    }

    /* Non-default rounding for the whole run; the spin function checks it on entry. */
    uint32_t mxcsr = MXCSR_TOWARD_ZERO;
    uint16_t fcw = FCW_ROUND_DOWN;
    __asm__ volatile("ldmxcsr %0" : : "m"(mxcsr));
    __asm__ volatile("fldcw %0" : : "m"(fcw));

    printf("ready %s\n", avx ? "avx" : "sse");
    fflush(stdout);

    for (uint64_t round = 1;; round++) {
        for (int r = 0; r < 16; r++) {
            for (int w = 0; w < 4; w++) {
                /* xmm registers hold only the first two words: keep the others zero so the
                 * complement check stays exact. */
                uint64_t value = (avx || w < 2) ? mix64(round * 1000 + r * 4 + w) : 0;
                state.pattern[r][w] = value;
                state.inverse[r][w] = (avx || w < 2) ? ~value : 0;
            }
        }
        for (int g = 0; g < 11; g++)
            state.gpr[g] = mix64(round * 1000 + 500 + g);
        state.mxcsr = MXCSR_TOWARD_ZERO;
        state.fcw = FCW_ROUND_DOWN;
        state.rounds = ROUNDS;

        int result = avx ? spin_avx(&state) : spin_sse(&state);
        if (result != 0) {
            printf("BAD %s (index %u) in round %llu; mxcsr %#x fcw %#x\n", failure[result],
                   state.bad_index, (unsigned long long)round, state.seen_mxcsr,
                   state.seen_fcw);
            fflush(stdout);
            return 1;
        }
        printf("ok %llu\n", (unsigned long long)round);
        fflush(stdout);
    }
}
