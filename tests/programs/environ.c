/* Prints "ready", then "N VAR OTHER" every 10 ms, where VAR and OTHER are the values of
 * CKPT_TEST_VAR and CKPT_TEST_OTHER, or "(unset)". */
#include <stdio.h>
#include <stdlib.h>

#include "common.h"

static const char *value(const char *name)
{
    const char *v = getenv(name);
    return v ? v : "(unset)";
}

int main(void)
{
    puts("ready");
    fflush(stdout);
    for (unsigned long n = 1;; n++) {
        printf("%lu %s %s\n", n, value("CKPT_TEST_VAR"), value("CKPT_TEST_OTHER"));
        fflush(stdout);
        sleep_ms(10);
    }
}
