/* A library whose constructor waits until the program lets it finish (loaderlock.c): while
 * it waits, the thread that called dlopen holds the loader's lock. */
#include "common.h"

extern volatile int loader_go, in_constructor;

__attribute__((constructor)) static void slow_init(void)
{
    in_constructor = 1;
    while (!loader_go)
        sleep_ms(1);
}
