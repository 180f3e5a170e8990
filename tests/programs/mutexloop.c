/* Locks and unlocks an error-checking and a recursive mutex in a tight loop (and keeps a
 * second recursive mutex held throughout, relocking it), printing "round N" now and then.
 * A checkpoint that lands inside the locking code must not leave a mutex owned by the
 * thread id of the process that was checkpointed: then unlock fails with EPERM (printed as
 * FAIL) or a relock deadlocks (no more rounds). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fail(const char *what, int rc)
{
    printf("FAIL %s: %s\n", what, strerror(rc));
    fflush(stdout);
    exit(1);
}

int main(void)
{
    pthread_mutex_t check, rec, held;
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_init(&check, &a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&rec, &a);
    pthread_mutex_init(&held, &a);
    int rc = pthread_mutex_lock(&held);
    if (rc)
        fail("lock held", rc);
    printf("ready\n");
    fflush(stdout);
    for (unsigned long i = 1;; i++) {
        if ((rc = pthread_mutex_lock(&check)))
            fail("lock errorcheck", rc);
        if ((rc = pthread_mutex_unlock(&check)))
            fail("unlock errorcheck", rc);
        if ((rc = pthread_mutex_trylock(&check)))
            fail("trylock errorcheck", rc);
        if ((rc = pthread_mutex_unlock(&check)))
            fail("unlock errorcheck after trylock", rc);
        if ((rc = pthread_mutex_lock(&rec)) || (rc = pthread_mutex_lock(&rec)))
            fail("lock recursive", rc);
        if ((rc = pthread_mutex_unlock(&rec)) || (rc = pthread_mutex_unlock(&rec)))
            fail("unlock recursive", rc);
        if ((rc = pthread_mutex_lock(&held)))
            fail("relock held", rc);
        if ((rc = pthread_mutex_unlock(&held)))
            fail("unlock relocked held", rc);
        if (i % 100000 == 0) {
            printf("round %lu\n", i / 100000);
            fflush(stdout);
        }
    }
}
