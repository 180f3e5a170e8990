/* A program that makes itself not dumpable (as ssh-agent and gpg-agent do, to keep their keys
 * from other processes of the same user): /proc/self/auxv, pagemap and mem then belong to
 * root. Prints "ready", then per round "ok N dumpable D" (D from PR_GET_DUMPABLE), or
 * "BAD …" if it cannot make itself undumpable. */
#include <stdio.h>
#include <sys/prctl.h>

#include "common.h"

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (prctl(PR_SET_DUMPABLE, 0) != 0) {
        printf("BAD prctl\n");
        return 1;
    }
    printf("ready\n");
    for (unsigned long round = 1;; round++) {
        printf("ok %lu dumpable %d\n", round, prctl(PR_GET_DUMPABLE));
        sleep_ms(5);
    }
}
