/* A tiny shared library for glibc_state: code, read-only data and writable data that the
 * program uses before a checkpoint and after a restart, when this library's file may be gone. */

static const unsigned table[16] = { 3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3 };
static unsigned calls;

/* Counts its calls (in the library's writable data). */
unsigned tiny_next(void)
{
    return ++calls;
}

/* A checksum of the library's read-only table, started from `seed`. */
unsigned tiny_checksum(unsigned seed)
{
    unsigned sum = seed;
    for (unsigned i = 0; i < sizeof table / sizeof table[0]; i++)
        sum = sum * 31 + table[i];
    return sum;
}
