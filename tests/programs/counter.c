/* Prints 1, 2, 3, ... one per line, every INTERVAL ms (first argument, default 10). */
#include <stdio.h>
#include <stdlib.h>

#include "common.h"

int main(int argc, char **argv)
{
    long interval = argc > 1 ? atol(argv[1]) : 10;
    for (unsigned long n = 1;; n++) {
        printf("%lu\n", n);
        fflush(stdout);
        sleep_ms(interval);
    }
}
