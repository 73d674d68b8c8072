/* util/hex.h: encode, decode either case, refuse non-hex. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "util/error.h"
#include "util/hex.h"

#include <string.h>

static void test_round_trip(void **state)
{
    (void)state;
    const uint8_t in[4] = {0x00, 0x9f, 0xa0, 0xff};
    char hex[9];
    hex_encode(in, sizeof in, hex);
    assert_string_equal(hex, "009fa0ff");
    uint8_t out[4];
    assert_int_equal(hex_decode(hex, 4, out), 0);
    assert_memory_equal(in, out, 4);
    assert_int_equal(hex_decode("009FA0FF", 4, out), 0); /* either case */
    assert_memory_equal(in, out, 4);
}

static void test_refuses(void **state)
{
    (void)state;
    uint8_t out[2];
    assert_int_equal(hex_decode("0g00", 2, out), DM_E_INVALID);
    assert_int_equal(hex_decode("00 0", 2, out), DM_E_INVALID);
    assert_int_equal(hex_decode("00", 2, out), DM_E_INVALID); /* too short: stops at the NUL */
    assert_int_equal(hex_digit('x'), -1);
    assert_int_equal(hex_digit('F'), 15);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
