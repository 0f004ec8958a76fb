/*
 * halves.h — one piece of work run on two halves at once: the second on a thread of its own,
 * the first on the caller's; after the first when no thread can start. Returns once both are
 * done. The start's loads (store_load.c, persist/index_rows.c, persist/index_image.c) split
 * their rows this way on 2 cores.
 */
#ifndef ARCA_HALVES_H
#define ARCA_HALVES_H

#include <pthread.h>
#include <stdbool.h>

static inline void run_halves(void *(*work)(void *), void *first, void *second)
{
    pthread_t helper;
    bool threaded = pthread_create(&helper, NULL, work, second) == 0;
    work(first);
    if (threaded)
        pthread_join(helper, NULL);
    else
        work(second);
}

#endif
