/* store/sigv4.h against the examples printed in AWS's documentation:
 *   - "Examples: Signature Calculations in AWS Signature Version 4" (Amazon
 *     S3 API reference, sig-v4-header-based-auth): GET Object with a Range,
 *     PUT Object, GET Bucket Lifecycle, GET Bucket (List Objects);
 *   - the IAM ListUsers example of the general SigV4 guide;
 *   - the presigned GET of "Authenticating Requests: Using Query Parameters"
 *     (sigv4-query-string-auth): STORE-V4.
 * Each checks the signature against the one printed there (STORE-V1), and that
 * nothing is truncated (STORE-V2) or leaks the secret (STORE-V3). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "store/sigv4.h"
#include "util/error.h"

#include <string.h>

static const sigv4_creds s3_creds = {"AKIAIOSFODNN7EXAMPLE",
                                     "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "us-east-1", "s3"};
#define EMPTY_SHA "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static void test_s3_get_object(void **state)
{
    (void)state;
    const sigv4_pair h[] = {{"Host", "examplebucket.s3.amazonaws.com"},
                            {"Range", "bytes=0-9"},
                            {"x-amz-content-sha256", EMPTY_SHA},
                            {"x-amz-date", "20130524T000000Z"}};
    sigv4_request req = {"GET", "/test.txt", "", h, 4, EMPTY_SHA};
    char canon[1024], auth[SIGV4_AUTH_MAX], sig[65];
    assert_int_equal(sigv4_canonical_request(&req, canon, sizeof canon), 0);
    assert_string_equal(canon, "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\n"
                               "range:bytes=0-9\nx-amz-content-sha256:" EMPTY_SHA "\n"
                               "x-amz-date:20130524T000000Z\n\n"
                               "host;range;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA);
    assert_int_equal(sigv4_signature(&req, &s3_creds, "20130524T000000Z", sig), 0);
    assert_string_equal(sig, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    assert_int_equal(sigv4_authorization(&req, &s3_creds, "20130524T000000Z", auth, sizeof auth),
                     0);
    assert_string_equal(
        auth, "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
              "aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
              "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    assert_null(strstr(auth, s3_creds.secret_key)); /* STORE-V3 */
    /* STORE-V2: a buffer one byte short fails instead of truncating */
    assert_int_equal(sigv4_authorization(&req, &s3_creds, "20130524T000000Z", auth, strlen(auth)),
                     DM_E_TOO_BIG);
}

static void test_s3_put_object(void **state)
{
    (void)state;
    const char *body = "Welcome to Amazon S3.";
    char hash[65], path[64], sig[65];
    sigv4_sha256_hex(body, strlen(body), hash);
    assert_string_equal(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    assert_int_equal(sigv4_uri_encode("/test$file.text", 1, path, sizeof path), 0);
    assert_string_equal(path, "/test%24file.text");
    const sigv4_pair h[] = {{"Host", "examplebucket.s3.amazonaws.com"},
                            {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                            {"x-amz-date", "20130524T000000Z"},
                            {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
                            {"x-amz-content-sha256", hash}};
    sigv4_request req = {"PUT", path, "", h, 5, hash};
    assert_int_equal(sigv4_signature(&req, &s3_creds, "20130524T000000Z", sig), 0);
    assert_string_equal(sig, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

static void test_s3_get_lifecycle(void **state)
{
    (void)state;
    const sigv4_pair q[] = {{"lifecycle", NULL}};
    char query[64], sig[65];
    assert_int_equal(sigv4_canonical_query(q, 1, query, sizeof query), 0);
    assert_string_equal(query, "lifecycle=");
    const sigv4_pair h[] = {{"Host", "examplebucket.s3.amazonaws.com"},
                            {"x-amz-date", "20130524T000000Z"},
                            {"x-amz-content-sha256", EMPTY_SHA}};
    sigv4_request req = {"GET", "/", query, h, 3, EMPTY_SHA};
    assert_int_equal(sigv4_signature(&req, &s3_creds, "20130524T000000Z", sig), 0);
    assert_string_equal(sig, "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

static void test_s3_list_objects(void **state)
{
    (void)state;
    const sigv4_pair q[] = {{"prefix", "J"}, {"max-keys", "2"}}; /* sorted by the signer */
    char query[64], sig[65];
    assert_int_equal(sigv4_canonical_query(q, 2, query, sizeof query), 0);
    assert_string_equal(query, "max-keys=2&prefix=J");
    const sigv4_pair h[] = {{"Host", "examplebucket.s3.amazonaws.com"},
                            {"x-amz-date", "20130524T000000Z"},
                            {"x-amz-content-sha256", EMPTY_SHA}};
    sigv4_request req = {"GET", "/", query, h, 3, EMPTY_SHA};
    assert_int_equal(sigv4_signature(&req, &s3_creds, "20130524T000000Z", sig), 0);
    assert_string_equal(sig, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

static void test_iam_list_users(void **state)
{
    (void)state;
    const sigv4_creds cr = {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "us-east-1",
                            "iam"};
    const sigv4_pair h[] = {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"},
                            {"Host", "iam.amazonaws.com"},
                            {"X-Amz-Date", "20150830T123600Z"}};
    sigv4_request req = {"GET", "/", "Action=ListUsers&Version=2010-05-08", h, 3, EMPTY_SHA};
    char canon[1024], hash[65], sig[65];
    assert_int_equal(sigv4_canonical_request(&req, canon, sizeof canon), 0);
    sigv4_sha256_hex(canon, strlen(canon), hash);
    assert_string_equal(hash, "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59");
    assert_int_equal(sigv4_signature(&req, &cr, "20150830T123600Z", sig), 0);
    assert_string_equal(sig, "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
}

/* STORE-V4: AWS's query-string example: GET /test.txt of examplebucket at
 * 20130524T000000Z for 86400 s, host the only signed header. */
static void test_s3_presign(void **state)
{
    (void)state;
    sigv4_presign_req r = {.method = "GET",
                           .scheme = "https",
                           .host = "examplebucket.s3.amazonaws.com",
                           .path = "/test.txt",
                           .expires_s = 86400};
    char url[1024];
    assert_int_equal(sigv4_presign(&r, &s3_creds, "20130524T000000Z", url, sizeof url), 0);
    assert_string_equal(
        url, "https://examplebucket.s3.amazonaws.com/test.txt"
             "?X-Amz-Algorithm=AWS4-HMAC-SHA256"
             "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
             "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
             "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
    assert_null(strstr(url, s3_creds.secret_key)); /* STORE-V3 */
    /* STORE-V2: one byte short fails */
    assert_int_equal(sigv4_presign(&r, &s3_creds, "20130524T000000Z", url, strlen(url)),
                     DM_E_TOO_BIG);
    /* a session token is signed too (another signature), and sorted in */
    char with_tok[1200];
    r.session_token = "tok/en+1";
    assert_int_equal(sigv4_presign(&r, &s3_creds, "20130524T000000Z", with_tok, sizeof with_tok),
                     0);
    assert_non_null(strstr(with_tok, "&X-Amz-Security-Token=tok%2Fen%2B1&X-Amz-SignedHeaders="));
    assert_null(
        strstr(with_tok, "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"));
    /* bounds: lifetime 1 s .. 7 days, a host with no path or user part */
    r.session_token = NULL;
    r.expires_s = 604801;
    assert_int_equal(sigv4_presign(&r, &s3_creds, "20130524T000000Z", url, sizeof url),
                     DM_E_INVALID);
    r.expires_s = 0;
    assert_int_equal(sigv4_presign(&r, &s3_creds, "20130524T000000Z", url, sizeof url),
                     DM_E_INVALID);
    r.expires_s = 60;
    r.host = "evil@examplebucket.s3.amazonaws.com";
    assert_int_equal(sigv4_presign(&r, &s3_creds, "20130524T000000Z", url, sizeof url),
                     DM_E_INVALID);
}

static void test_refuses(void **state)
{
    (void)state;
    char out[8], sig[65], big[17];
    assert_int_equal(sigv4_uri_encode("a b", 0, out, sizeof out), 0);
    assert_string_equal(out, "a%20b");
    assert_int_equal(sigv4_uri_encode("a/b~", 0, out, sizeof out), 0);
    assert_string_equal(out, "a%2Fb~");
    assert_int_equal(sigv4_uri_encode("aaaaaaaaaa", 0, out, sizeof out), DM_E_TOO_BIG);
    const sigv4_pair h[] = {{"Host", "x"}, {"x-amz-date", "20130524T000000Z\nx-evil:1"}};
    sigv4_request req = {"GET", "/", "", h, 2, EMPTY_SHA};
    assert_int_equal(sigv4_signature(&req, &s3_creds, "20130524T000000Z", sig), DM_E_INVALID);
    const sigv4_pair ok[] = {{"Host", "x"}};
    req.headers = ok;
    req.nheaders = 1;
    assert_int_equal(sigv4_signature(&req, &s3_creds, "2013-05-24", sig), DM_E_INVALID);
    sigv4_amz_date(0, big);
    assert_string_equal(big, "19700101T000000Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_s3_get_object),    cmocka_unit_test(test_s3_put_object),
        cmocka_unit_test(test_s3_get_lifecycle), cmocka_unit_test(test_s3_list_objects),
        cmocka_unit_test(test_iam_list_users),   cmocka_unit_test(test_refuses),
        cmocka_unit_test(test_s3_presign),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
