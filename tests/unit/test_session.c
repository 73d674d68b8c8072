/* Unit tests for the dashboard session store (src/api/session.h, API-SE1 to API-SE4). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "api/session.h"
#include "util/error.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define HOUR (3600LL * 1000)

static session_store *store_new(size_t cap)
{
    session_store *s = NULL;
    assert_int_equal(session_store_new(cap, 12 * HOUR, &s), 0);
    return s;
}

static int is_hex64(const char *id)
{
    if (strlen(id) != SESSION_ID_LEN)
        return 0;
    for (const char *p = id; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

/* API-SE1: 256-bit hex ids, different every time; a new id is live at once. */
static void test_create_and_check(void **state)
{
    (void)state;
    session_store *s = store_new(8);
    char a[SESSION_ID_LEN + 1], b[SESSION_ID_LEN + 1];
    assert_int_equal(session_create(s, 1000, a, sizeof a), 0);
    assert_int_equal(session_create(s, 1000, b, sizeof b), 0);
    assert_true(is_hex64(a));
    assert_true(is_hex64(b));
    assert_string_not_equal(a, b);
    assert_true(session_check(s, a, 1001));
    assert_true(session_check(s, b, 1001));
    assert_int_equal(session_count(s, 1001), 2);
    session_store_free(s);
}

/* A short buffer is refused, not overrun. */
static void test_create_small_buffer(void **state)
{
    (void)state;
    session_store *s = store_new(2);
    char small[SESSION_ID_LEN];
    assert_int_equal(session_create(s, 0, small, sizeof small), DM_E_TOO_BIG);
    assert_int_equal(session_count(s, 0), 0);
    session_store_free(s);
}

/* Anything but a live, exact id is refused: near misses, case, length, NULL. */
static void test_check_refuses(void **state)
{
    (void)state;
    session_store *s = store_new(4);
    char id[SESSION_ID_LEN + 1], bad[SESSION_ID_LEN + 2];
    assert_int_equal(session_create(s, 0, id, sizeof id), 0);
    assert_false(session_check(s, NULL, 1));
    assert_false(session_check(s, "", 1));
    memcpy(bad, id, sizeof id);
    bad[SESSION_ID_LEN - 1] = bad[SESSION_ID_LEN - 1] == '0' ? '1' : '0'; /* last char */
    assert_false(session_check(s, bad, 1));
    memcpy(bad, id, sizeof id);
    bad[SESSION_ID_LEN - 1] = '\0'; /* a prefix */
    assert_false(session_check(s, bad, 1));
    memcpy(bad, id, sizeof id);
    bad[SESSION_ID_LEN] = 'a'; /* one char longer */
    bad[SESSION_ID_LEN + 1] = '\0';
    assert_false(session_check(s, bad, 1));
    memcpy(bad, id, sizeof id);
    for (char *p = bad; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    if (strcmp(bad, id) != 0)
        assert_false(session_check(s, bad, 1)); /* upper case is another id */
    /* An empty slot never matches an all-zero or empty candidate. */
    assert_false(
        session_check(s, "0000000000000000000000000000000000000000000000000000000000000000", 1));
    assert_true(session_check(s, id, 1));
    session_store_free(s);
}

/* API-SE2: sessions expire at created + ttl, not a millisecond later. */
static void test_expiry(void **state)
{
    (void)state;
    session_store *s = NULL;
    assert_int_equal(session_store_new(4, 1000, &s), 0);
    char id[SESSION_ID_LEN + 1];
    assert_int_equal(session_create(s, 5000, id, sizeof id), 0);
    assert_true(session_check(s, id, 5999));
    assert_false(session_check(s, id, 6000));
    assert_int_equal(session_count(s, 6000), 0);
    session_store_free(s);
}

/* API-SE2: the store is capped; a new session evicts the one expiring first,
 * and expired slots are reused before live ones. */
static void test_cap_evicts_oldest(void **state)
{
    (void)state;
    session_store *s = store_new(3);
    char ids[4][SESSION_ID_LEN + 1];
    for (int i = 0; i < 3; i++)
        assert_int_equal(session_create(s, 100 * (i + 1), ids[i], sizeof ids[i]), 0);
    assert_int_equal(session_count(s, 400), 3);
    assert_int_equal(session_create(s, 400, ids[3], sizeof ids[3]), 0);
    assert_int_equal(session_count(s, 400), 3);
    assert_false(session_check(s, ids[0], 400)); /* the oldest went */
    assert_true(session_check(s, ids[1], 400));
    assert_true(session_check(s, ids[2], 400));
    assert_true(session_check(s, ids[3], 400));
    session_store_free(s);
}

static void test_remove(void **state)
{
    (void)state;
    session_store *s = store_new(4);
    char a[SESSION_ID_LEN + 1], b[SESSION_ID_LEN + 1];
    assert_int_equal(session_create(s, 0, a, sizeof a), 0);
    assert_int_equal(session_create(s, 0, b, sizeof b), 0);
    assert_int_equal(session_remove(s, a), 1);
    assert_int_equal(session_remove(s, a), 0); /* twice: nothing left */
    assert_int_equal(session_remove(s, "nonsense"), 0);
    assert_int_equal(session_remove(s, NULL), 0);
    assert_false(session_check(s, a, 1));
    assert_true(session_check(s, b, 1)); /* the other one lives on */
    session_store_free(s);
}

static void test_cookie_header(void **state)
{
    (void)state;
    char buf[SESSION_HEADER_MAX];
    const char *id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    assert_int_equal(session_cookie(id, 43200, buf, sizeof buf), 0);
    assert_string_equal(buf, "dumont_session=0123456789abcdef0123456789abcdef0123456789abcdef"
                             "0123456789abcdef; Path=/; Max-Age=43200; HttpOnly; SameSite=Strict");
    assert_int_equal(session_cookie(NULL, 0, buf, sizeof buf), 0);
    assert_string_equal(buf, "dumont_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict");
    char tiny[16];
    assert_int_equal(session_cookie(id, 1, tiny, sizeof tiny), DM_E_TOO_BIG);
}

static void test_store_new_bounds(void **state)
{
    (void)state;
    session_store *s = NULL;
    assert_int_equal(session_store_new(0, 1000, &s), DM_E_INVALID);
    assert_int_equal(session_store_new(4, 0, &s), DM_E_INVALID);
    assert_null(s);
    session_store_free(NULL); /* NULL is fine */
}

/* API-SE4: many threads creating and checking at once; no session is lost. */
static void *hammer(void *arg)
{
    session_store *s = arg;
    for (int i = 0; i < 500; i++) {
        char id[SESSION_ID_LEN + 1];
        if (session_create(s, i, id, sizeof id) != 0 || !session_check(s, id, i))
            return (void *)1;
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    session_store *s = store_new(4 * 500); /* room for all: none is evicted */
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer, s), 0);
    for (int i = 0; i < 4; i++) {
        void *r = NULL;
        pthread_join(t[i], &r);
        assert_null(r);
    }
    assert_int_equal(session_count(s, 0), 4 * 500); /* no insert was lost */
    session_store_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_and_check),  cmocka_unit_test(test_create_small_buffer),
        cmocka_unit_test(test_check_refuses),     cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_cap_evicts_oldest), cmocka_unit_test(test_remove),
        cmocka_unit_test(test_cookie_header),     cmocka_unit_test(test_store_new_bounds),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
