/* Units for the one way to wait (park.h): a park queued sleeps once and is woken once, at the
 * producer thread's park_flush and not before; one taken out of its queue is never woken;
 * park_leave stops every later wake-up; `release` runs once, at the last reference, whoever
 * holds it; and a wake-up racing park_leave on another thread never runs after park_leave has
 * returned. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "base/park.h"

struct request {
    struct park w;
    int sleeps;
    atomic_int wakes, releases;
    atomic_bool left;      /* park_leave has returned */
    atomic_int late_wakes; /* wake-ups seen after that */
};

static void on_sleep(struct park *p)
{
    PARK_OWNER(p, struct request, w)->sleeps++;
}

static void on_wake(struct park *p)
{
    struct request *r = PARK_OWNER(p, struct request, w);
    atomic_fetch_add(&r->wakes, 1);
    if (atomic_load(&r->left))
        atomic_fetch_add(&r->late_wakes, 1);
}

static void on_release(struct park *p)
{
    atomic_fetch_add(&PARK_OWNER(p, struct request, w)->releases, 1);
}

static void request_init(struct request *r)
{
    memset(r, 0, sizeof(*r));
    park_init(&r->w, on_sleep, on_wake, on_release);
}

static void a_queued_park_is_woken_once_at_the_flush(void **state)
{
    struct request a, b;
    struct park_queue q = {NULL};
    (void)state;
    request_init(&a);
    request_init(&b);
    park_enqueue(&q, &a.w);
    park_enqueue(&q, &b.w);
    assert_int_equal(a.sleeps, 1);
    assert_false(park_queue_empty(&q));
    park_defer(&q); /* under the producer's lock: nothing runs yet */
    assert_true(park_queue_empty(&q));
    assert_int_equal(atomic_load(&a.wakes), 0);
    park_flush(); /* the lock dropped */
    assert_int_equal(atomic_load(&a.wakes), 1);
    assert_int_equal(atomic_load(&b.wakes), 1);
    park_flush(); /* nothing deferred twice */
    assert_int_equal(atomic_load(&a.wakes), 1);
    assert_int_equal(atomic_load(&a.releases), 0); /* the requests still hold theirs */
    park_leave(&a.w);
    park_leave(&b.w);
    assert_int_equal(atomic_load(&a.releases), 1);
    assert_int_equal(atomic_load(&b.releases), 1);
}

static void a_removed_park_is_never_woken(void **state)
{
    struct request a, b;
    struct park_queue q = {NULL};
    (void)state;
    request_init(&a);
    request_init(&b);
    park_enqueue(&q, &a.w);
    park_enqueue(&q, &b.w);
    park_remove(&q, &a.w);
    park_remove(&q, &a.w); /* not there any more: nothing */
    park_defer(&q);
    park_flush();
    assert_int_equal(atomic_load(&a.wakes), 0);
    assert_int_equal(atomic_load(&b.wakes), 1);
    park_leave(&a.w);
    park_leave(&b.w);
    assert_int_equal(atomic_load(&a.releases), 1);
}

/* The request goes (its connection closed) with a wake-up deferred: the wake-up does not run,
 * and the deferred reference, the last, releases it. */
static void park_leave_stops_a_deferred_wake_up(void **state)
{
    struct request a;
    struct park_queue q = {NULL};
    (void)state;
    request_init(&a);
    park_enqueue(&q, &a.w);
    park_defer(&q);
    park_leave(&a.w);
    assert_int_equal(atomic_load(&a.releases), 0); /* the deferred list holds it */
    park_flush();
    assert_int_equal(atomic_load(&a.wakes), 0);
    assert_int_equal(atomic_load(&a.releases), 1);
}

static void release_runs_once_at_the_last_reference(void **state)
{
    struct request a;
    (void)state;
    request_init(&a);
    park_hold(&a.w);
    park_hold(&a.w);
    park_put(&a.w);
    park_leave(&a.w);
    assert_int_equal(atomic_load(&a.releases), 0);
    park_wake(&a.w); /* after park_leave: not run */
    assert_int_equal(atomic_load(&a.wakes), 0);
    park_put(&a.w);
    assert_int_equal(atomic_load(&a.releases), 1);
}

static void park_wake_runs_at_once(void **state)
{
    struct request a;
    (void)state;
    request_init(&a);
    park_wake(&a.w);
    assert_int_equal(atomic_load(&a.wakes), 1);
    park_leave(&a.w);
    assert_int_equal(atomic_load(&a.releases), 1);
}

/* Deferred wake-ups belong to the thread that deferred them. */
static void *flush_elsewhere(void *arg)
{
    (void)arg;
    park_flush();
    return NULL;
}

static void another_threads_flush_wakes_nothing_of_ours(void **state)
{
    struct request a;
    struct park_queue q = {NULL};
    pthread_t th;
    (void)state;
    request_init(&a);
    park_enqueue(&q, &a.w);
    park_defer(&q);
    assert_int_equal(pthread_create(&th, NULL, flush_elsewhere, NULL), 0);
    pthread_join(th, NULL);
    assert_int_equal(atomic_load(&a.wakes), 0);
    park_flush();
    assert_int_equal(atomic_load(&a.wakes), 1);
    park_leave(&a.w);
}

#define ROUNDS 20000

static struct {
    pthread_mutex_t lock; /* the producer's */
    struct park_queue q;
    pthread_barrier_t start;
    struct request *r;
} race = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The producer: wakes whatever is queued, as the store does after an append. */
static void *producer(void *arg)
{
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        pthread_barrier_wait(&race.start);
        pthread_mutex_lock(&race.lock);
        park_defer(&race.q);
        pthread_mutex_unlock(&race.lock);
        park_flush();
        pthread_barrier_wait(&race.start);
    }
    return NULL;
}

/* The request's side: queued, then gone while the producer may be waking it. */
static void a_wake_up_racing_park_leave_never_runs_after_it(void **state)
{
    static struct request reqs[ROUNDS];
    pthread_t th;
    (void)state;
    assert_int_equal(pthread_barrier_init(&race.start, NULL, 2), 0);
    assert_int_equal(pthread_create(&th, NULL, producer, NULL), 0);
    for (int i = 0; i < ROUNDS; i++) {
        struct request *r = &reqs[i];
        request_init(r);
        pthread_mutex_lock(&race.lock);
        park_enqueue(&race.q, &r->w);
        pthread_mutex_unlock(&race.lock);
        pthread_barrier_wait(&race.start);
        pthread_mutex_lock(&race.lock); /* a request that goes takes its park off the queue */
        park_remove(&race.q, &r->w);
        pthread_mutex_unlock(&race.lock);
        park_leave(&r->w);
        atomic_store(&r->left, true);
        pthread_barrier_wait(&race.start); /* the producer's round is over */
        assert_int_equal(atomic_load(&r->late_wakes), 0);
        assert_int_equal(atomic_load(&r->releases), 1);
        assert_true(atomic_load(&r->wakes) <= 1); /* either side may win the round */
    }
    pthread_join(th, NULL);
    pthread_barrier_destroy(&race.start);
    assert_true(park_queue_empty(&race.q));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_queued_park_is_woken_once_at_the_flush),
        cmocka_unit_test(a_removed_park_is_never_woken),
        cmocka_unit_test(park_leave_stops_a_deferred_wake_up),
        cmocka_unit_test(release_runs_once_at_the_last_reference),
        cmocka_unit_test(park_wake_runs_at_once),
        cmocka_unit_test(another_threads_flush_wakes_nothing_of_ours),
        cmocka_unit_test(a_wake_up_racing_park_leave_never_runs_after_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
