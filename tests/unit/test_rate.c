/* Units for the uplink cap (rate.h): every chunk waits for its turn under a cap, and turns go
 * round-robin between downloads (flows), not between connections. Handles are never in a multi
 * handle here: curl_easy_pause() on them does nothing, and the test reads `granted`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "upstream/rate.h"

#define CHUNK 16384

static int64_t clock_ms;
static struct timer_heap heap;
static struct rate_gate gate;

static int64_t fake_now(void)
{
    return clock_ms;
}

static int setup(void **state)
{
    (void)state;
    clock_ms = 1000;
    rate_init(&gate, &heap, fake_now);
    rate_set(&gate, 160 * 1024); /* ten chunks a second; the bucket holds one second's tenth */
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rate_stop(&gate);
    timer_heap_free(&heap);
    return 0;
}

static struct rate_wait waiter(struct rate_flow *flow)
{
    return (struct rate_wait){.easy = curl_easy_init(), .flow = flow};
}

/* `n` handles of `flow`, each paused on a chunk, in order. */
static void pause_handles(struct rate_wait *w, int n, struct rate_flow *flow)
{
    for (int i = 0; i < n; i++) {
        w[i] = waiter(flow);
        assert_false(rate_admit(&gate, &w[i], CHUNK));
    }
}

/* The handles leave: out of the queue, what they were paid and never took given back. */
static void leave(struct rate_wait *w, int n)
{
    for (int i = 0; i < n; i++) {
        rate_forget(&gate, &w[i]);
        curl_easy_cleanup(w[i].easy);
    }
}

/* A fill's four connections (one flow) and a single download's one connection all pause; as
 * the cap refills, the single download's chunk is let go second, not fifth. */
static void turns_go_round_robin_by_download(void **state)
{
    (void)state;
    struct rate_flow fill = {0}, single = {0};
    struct rate_wait f[4], s;
    pause_handles(f, 4, &fill);
    pause_handles(&s, 1, &single);
    clock_ms += 100; /* one chunk's worth: the first turn */
    timer_run(&heap, clock_ms);
    assert_true(f[0].credit > 0);
    assert_false(s.credit > 0);
    clock_ms += 100; /* the next: the single download's */
    timer_run(&heap, clock_ms);
    assert_true(s.credit > 0);
    assert_false(f[1].credit > 0);
    /* a granted chunk is taken without paying twice */
    assert_true(rate_admit(&gate, &s, CHUNK));
    leave(f, 4);
    leave(&s, 1);
}

/* A tick come late, the bucket full (four chunks): each download takes half, the fill over two
 * of its connections, the single download over its one; the next round waits for the loop's
 * next pass, where the single download, its chunks read by then, is queued again. The tick
 * ran on while the bucket held anything, a turn a handle: the fill's connections took three
 * turns to the single one's, and under ASan beside a CPU-heavy job a fill's 8 MiB came in
 * 3.4-3.7 s, a single connection's in 4.2-4.3 (4M cap: 4 s each). */
static void a_late_tick_gives_each_download_one_share(void **state)
{
    (void)state;
    struct rate_flow fill = {0}, single = {0};
    struct rate_wait f[4], s;
    pause_handles(f, 4, &fill);
    pause_handles(&s, 1, &single);
    clock_ms += 1000;
    timer_run(&heap, clock_ms);
    assert_int_equal(f[0].credit, CHUNK);
    assert_int_equal(f[1].credit, CHUNK);
    assert_int_equal(f[2].credit + f[3].credit, 0);
    assert_int_equal(s.credit, 2 * CHUNK);
    assert_int_equal(timer_run(&heap, clock_ms), 0); /* not again in this pass */
    for (int i = 0; i < 2; i++)
        assert_true(rate_admit(&gate, &s, CHUNK));
    assert_false(rate_admit(&gate, &s, CHUNK)); /* its next chunk, queued behind the fill */
    clock_ms += 1;                              /* the next pass: the fill's turn first */
    timer_run(&heap, clock_ms);
    assert_int_equal(f[2].credit, CHUNK);
    assert_int_equal(s.credit, 0);
    clock_ms += 100; /* one chunk's worth: the single download's turn */
    timer_run(&heap, clock_ms);
    assert_int_equal(s.credit, CHUNK);
    assert_int_equal(f[3].credit, 0);
    leave(f, 4);
    leave(&s, 1);
}

/* Three downloads in a late round, the bucket holding less than two turns each: each takes the
 * same share, the fill's on one of its connections. With a turn a connection at least, the fill
 * took two (32 KiB) to the others' 21 KiB. */
static void a_round_gives_every_download_the_same_bytes(void **state)
{
    (void)state;
    struct rate_flow fill = {0}, one = {0}, two = {0};
    struct rate_wait f[4], a, b;
    pause_handles(f, 4, &fill);
    pause_handles(&a, 1, &one);
    pause_handles(&b, 1, &two);
    clock_ms += 1000; /* a full bucket: 64 KiB */
    timer_run(&heap, clock_ms);
    assert_int_equal(f[0].credit, 65536 / 3);
    assert_int_equal(f[1].credit, 0);
    assert_int_equal(a.credit, 65536 / 3);
    assert_int_equal(b.credit, 65536 / 3);
    leave(f, 4);
    leave(&a, 1);
    leave(&b, 1);
}

/* A handle that leaves with bytes paid for and never taken (its download ended, a small body
 * after a late round's share) gives them back: thrown away, a round's share (up to 100 ms of the
 * cap) left every other download waiting for nothing. */
static void what_was_paid_and_not_taken_goes_back(void **state)
{
    (void)state;
    struct rate_flow flow = {0};
    struct rate_wait w;
    clock_ms += 1000; /* a full bucket: 64 KiB */
    pause_handles(&w, 1, &flow);
    timer_run(&heap, clock_ms);
    assert_int_equal(w.credit, 65536);
    assert_true(rate_admit(&gate, &w, 5000));
    assert_int_equal(tokens_held(rate_bucket(&gate), clock_ms), 0);
    leave(&w, 1);
    assert_int_equal(tokens_held(rate_bucket(&gate), clock_ms), (65536 - 5000) * 1000LL);
}

/* A cap lowered on SIGHUP holds at once: what a handle was paid at the old cap (a round's share,
 * up to 100 ms of it: 100 MiB at 1G) is void, and its next chunk waits its turn at the new one;
 * what a handle leaving was paid at the old cap never lands in the new cap's bucket. */
static void a_lowered_cap_voids_what_was_paid(void **state)
{
    (void)state;
    struct rate_flow one = {0}, two = {0};
    struct rate_wait a, b;
    clock_ms += 1000;
    pause_handles(&a, 1, &one);
    pause_handles(&b, 1, &two);
    timer_run(&heap, clock_ms);
    assert_int_equal(a.credit, 32768);
    assert_int_equal(b.credit, 32768);
    assert_true(rate_set(&gate, 1000));
    leave(&a, 1); /* before the loop's rate_poll: still the new bucket's nothing */
    assert_int_equal(tokens_held(rate_bucket(&gate), clock_ms), 0);
    rate_poll(&gate);
    assert_false(rate_admit(&gate, &b, CHUNK));
    leave(&b, 1);
    assert_int_equal(tokens_held(rate_bucket(&gate), clock_ms), 0);
}

/* With room in the bucket and nobody waiting, a chunk still waits for its turn: one taken at
 * once goes to whichever handle curl reads first, and a fill's four would take four shares. */
static void a_chunk_never_passes_without_its_turn(void **state)
{
    (void)state;
    struct rate_flow flow = {0};
    struct rate_wait w = waiter(&flow);
    clock_ms += 5000; /* a full bucket */
    assert_false(rate_admit(&gate, &w, CHUNK));
    timer_run(&heap, clock_ms);
    assert_true(w.credit > 0);
    assert_true(rate_admit(&gate, &w, CHUNK));
    curl_easy_cleanup(w.easy);
}

/* Without a cap every chunk passes; what waited when the cap was lifted is let go at once. */
static void lifting_the_cap_lets_everything_go(void **state)
{
    (void)state;
    struct rate_flow flow = {0};
    struct rate_wait a = waiter(&flow), b = waiter(&flow);
    assert_false(rate_admit(&gate, &a, CHUNK));
    assert_false(rate_admit(&gate, &b, CHUNK));
    rate_set(&gate, 0);
    clock_ms += 200; /* the tick armed under the cap comes */
    timer_run(&heap, clock_ms);
    assert_true(a.credit > 0 && b.credit > 0);
    assert_true(rate_admit(&gate, &a, CHUNK) && rate_admit(&gate, &a, CHUNK));
    curl_easy_cleanup(a.easy);
    curl_easy_cleanup(b.easy);
}

/* A cap raised to 100T after two minutes of nothing capped: the next chunk goes at once. The
 * rate times the idle time overflowed (UBSan: signed overflow) and left the bucket a debt of a
 * minute: the next download stalled. The same idle under a cap that stays 100T. */
static void a_long_idle_under_a_huge_cap_does_not_stall(void **state)
{
    (void)state;
    struct rate_flow flow = {0};
    struct rate_wait w = waiter(&flow);
    clock_ms += 115000;
    rate_set(&gate, 100LL << 40);
    clock_ms += 10;
    assert_false(rate_admit(&gate, &w, CHUNK));
    timer_run(&heap, clock_ms + 1);
    assert_true(w.credit > 0);
    assert_true(rate_admit(&gate, &w, CHUNK));
    rate_forget(&gate, &w); /* its handle leaves; the refill stands still since */
    clock_ms += 115000;
    assert_false(rate_admit(&gate, &w, CHUNK));
    timer_run(&heap, clock_ms + 1);
    assert_true(w.credit > 0);
    curl_easy_cleanup(w.easy);
}

/* A cap lifted or raised on SIGHUP: what waited for a tick set at the old rate (a 16 KiB turn at
 * 100 bytes a second is a 164 s debt) is let go at the loop's next pass, not 164 s later. */
static void a_changed_cap_wakes_the_paused_at_once(void **state)
{
    (void)state;
    struct rate_flow flow = {0};
    struct rate_wait a = waiter(&flow), b = waiter(&flow);
    const int64_t caps[] = {0, 10 << 20};
    for (int i = 0; i < 2; i++) {
        assert_true(rate_set(&gate, 100));
        assert_false(rate_admit(&gate, &a, CHUNK));
        clock_ms += 11; /* its turn: the debt of 16 KiB at 100 bytes a second */
        timer_run(&heap, clock_ms);
        assert_true(rate_admit(&gate, &a, CHUNK));
        assert_false(rate_admit(&gate, &b, CHUNK));
        assert_true(rate_set(&gate, caps[i]));
        assert_false(rate_set(&gate, caps[i])); /* the same cap: nothing to wake */
        rate_poll(&gate);
        clock_ms += 1; /* the new bucket's first thousandth */
        timer_run(&heap, clock_ms);
        assert_true(b.credit >= CHUNK);
        assert_true(rate_admit(&gate, &b, CHUNK));
    }
    curl_easy_cleanup(a.easy);
    curl_easy_cleanup(b.easy);
}

/* A tunnel takes its turn when a download's tick would: as soon as the bucket holds anything,
 * a download's least turn into debt. It waited for a whole byte before, and the download's tick,
 * due a moment earlier, took every turn (the outside review: 32 tunnels got 0.02 MB/s of 1M). */
static void a_tunnel_goes_when_a_download_would(void **state)
{
    (void)state;
    struct token_bucket *b = rate_bucket(&gate);
    int64_t wait = -1, since = TOKENS_NOT_WAITING;
    rate_set(&gate, 100);
    tokens_spend(b, 10, clock_ms); /* a debt of 0.1 s */
    assert_int_equal(tokens_take(b, 32768, clock_ms, &since, &wait), 0);
    assert_true(wait > 0);
    clock_ms += wait; /* when a download's tick comes (tokens_wait_ms) */
    assert_true(tokens_held(b, clock_ms) > 0 && tokens_held(b, clock_ms) < 1000);
    assert_int_equal(tokens_take(b, 32768, clock_ms, &since, &wait), TOKENS_TURN_MIN);
    assert_true(tokens_held(b, clock_ms) < 0); /* paid for as the download's turn is */
    /* a small read takes what it asks; a bucket holding more than a turn gives what it holds */
    clock_ms += 1000000;
    assert_int_equal(tokens_take(b, 100, clock_ms, &since, &wait), 100);
    int64_t held = tokens_held(b, clock_ms) / 1000;
    assert_true(held > TOKENS_TURN_MIN);
    assert_int_equal(tokens_take(b, 1 << 20, clock_ms, &since, &wait), held);
}

/* Downloads and a tunnel due at once: whichever waited longer goes first, whoever's wake-up
 * comes first (one tunnel beside one download took 0.65 of the cap to its 0.35, 0.26 under
 * ASan, as whichever timer came first won every tie). */
static void on_a_tie_the_one_waiting_longer_goes_first(void **state)
{
    (void)state;
    struct token_bucket *b = rate_bucket(&gate);
    struct rate_flow flow = {0};
    struct rate_wait w = waiter(&flow);
    int64_t wait = -1, since = TOKENS_NOT_WAITING;
    rate_set(&gate, 1000);                      /* a byte a ms */
    assert_false(rate_admit(&gate, &w, CHUNK)); /* the downloads wait first */
    clock_ms += 1;
    assert_int_equal(tokens_take(b, 32768, clock_ms, &since, &wait), 0); /* the tunnel yields */
    assert_int_equal(wait, 1);
    timer_run(&heap, clock_ms);
    assert_int_equal(w.credit, TOKENS_TURN_MIN);
    assert_true(rate_admit(&gate, &w, CHUNK));
    /* the tunnel waits from before the download's next chunk: it goes first, though the
     * download's tick comes first */
    assert_int_equal(tokens_take(b, 32768, clock_ms, &since, &wait), 0);
    clock_ms += 1;
    assert_false(rate_admit(&gate, &w, CHUNK));
    clock_ms += wait;
    timer_run(&heap, clock_ms);
    assert_int_equal(w.credit, 0);
    assert_int_equal(tokens_take(b, 32768, clock_ms, &since, &wait), TOKENS_TURN_MIN);
    assert_int_equal(since, TOKENS_NOT_WAITING);
    /* then the downloads, waiting longer than the tunnel's next refusal */
    assert_int_equal(tokens_take(b, 32768, clock_ms, &since, &wait), 0);
    clock_ms += wait;
    timer_run(&heap, clock_ms);
    assert_int_equal(w.credit, TOKENS_TURN_MIN);
    assert_int_equal(tokens_take(b, 32768, clock_ms, &since, &wait), 0);
    /* a tunnel that goes away while waiting is not waited for */
    tokens_leave(b, since);
    assert_true(rate_admit(&gate, &w, CHUNK));
    assert_false(rate_admit(&gate, &w, CHUNK));
    clock_ms += wait;
    timer_run(&heap, clock_ms);
    assert_int_equal(w.credit, TOKENS_TURN_MIN);
    curl_easy_cleanup(w.easy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(turns_go_round_robin_by_download, setup, teardown),
        cmocka_unit_test_setup_teardown(a_late_tick_gives_each_download_one_share, setup, teardown),
        cmocka_unit_test_setup_teardown(a_round_gives_every_download_the_same_bytes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(what_was_paid_and_not_taken_goes_back, setup, teardown),
        cmocka_unit_test_setup_teardown(a_lowered_cap_voids_what_was_paid, setup, teardown),
        cmocka_unit_test_setup_teardown(a_chunk_never_passes_without_its_turn, setup, teardown),
        cmocka_unit_test_setup_teardown(lifting_the_cap_lets_everything_go, setup, teardown),
        cmocka_unit_test_setup_teardown(a_long_idle_under_a_huge_cap_does_not_stall, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_changed_cap_wakes_the_paused_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(a_tunnel_goes_when_a_download_would, setup, teardown),
        cmocka_unit_test_setup_teardown(on_a_tie_the_one_waiting_longer_goes_first, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
