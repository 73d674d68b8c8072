/* api/routes_bootstrap.c without HTTP: the bootstrap script names the public
 * address and the instance, holds no secret and is valid sh (API-B1); the
 * bundle is the configured file, byte for byte, or a 404 that says how to
 * make one (API-B2). The gate's side (who may call) is in test_gate.c; the
 * script run on a bare Debian 11 in tests/integration/test_portable_agent.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "route_fixture.h"

#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

static int setup(void **state)
{
    *state = rfx_new("bootstrap", 0);
    return 0;
}

static int teardown(void **state)
{
    rfx_free(*state);
    return 0;
}

/* One GET; the caller frees resp.text / resp.body. */
static api_response get(fixture *fx, const char *path)
{
    api_request req = {.method = "GET", .path = path, .query = fake_query, .conn = fx};
    snprintf(fx->segbuf, sizeof fx->segbuf, "%s", path);
    char *save = NULL;
    for (char *t = strtok_r(fx->segbuf, "/", &save); t; t = strtok_r(NULL, "/", &save))
        req.segs[req.nsegs++] = t;
    api_response resp = {.status = 0};
    api_route(&fx->ctx, &req, &resp);
    return resp;
}

/* `sh -n FILE`: 0 when the shell parses it. */
static int sh_parses(const char *shell, const char *path)
{
    pid_t pid;
    char *argv[] = {(char *)shell, "-n", (char *)path, NULL};
    if (posix_spawn(&pid, shell, NULL, NULL, argv, environ) != 0)
        return -1;
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_script(void **state)
{
    fixture *fx = *state;
    fx->ctx.public_url = "https://dumont.example.com:8700";
    fx->ctx.store_url = "s3://bucket/dumont";
    api_response r = get(fx, "/api/instances/42/agent/bootstrap");
    assert_int_equal(r.status, 200);
    assert_non_null(r.text);
    assert_string_equal(r.content_type, "text/x-shellscript; charset=utf-8");
    char *s = r.text;
    assert_int_equal(strlen(s), r.text_len);
    assert_non_null(strstr(s, "url='https://dumont.example.com:8700'\n"));
    assert_non_null(strstr(s, "id='42'\n"));
    assert_non_null(strstr(s, "store='s3://bucket/dumont'\n"));
    assert_non_null(strstr(s, "--token-file"));
    assert_non_null(strstr(s, "/dev/tcp/"));
    assert_null(strstr(s, "--token \"")); /* PROV-PV6: never the credential as an argument */
    char path[128];
    snprintf(path, sizeof path, "%s/bootstrap.sh", fx->dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(s, 1, r.text_len, f), r.text_len);
    fclose(f);
    assert_int_equal(sh_parses("/bin/sh", path), 0);
    if (access("/bin/bash", X_OK) == 0)
        assert_int_equal(sh_parses("/bin/bash", path), 0);
    api_response_done(&r);
    /* an address that cannot be quoted into the script, or none: 503 */
    fx->ctx.public_url = "https://x'; rm -rf /; '";
    r = get(fx, "/api/instances/42/agent/bootstrap");
    assert_int_equal(r.status, 503);
    assert_null(r.text);
    api_response_done(&r);
    fx->ctx.public_url = NULL;
    r = get(fx, "/api/instances/42/agent/bootstrap");
    assert_int_equal(r.status, 503);
    api_response_done(&r);
}

static void test_bundle(void **state)
{
    fixture *fx = *state;
    api_response r = get(fx, "/api/instances/42/agent/bundle");
    assert_int_equal(r.status, 404);
    assert_non_null(
        strstr(json_string_value(json_object_get(r.body, "detail")), "scripts/portable-agent.sh"));
    api_response_done(&r);
    char path[128];
    snprintf(path, sizeof path, "%s/agent.tar.gz", fx->dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 100000; i++)
        fputc(i * 7 & 0xff, f);
    fclose(f);
    fx->ctx.agent_bundle = path;
    r = get(fx, "/api/instances/42/agent/bundle");
    assert_int_equal(r.status, 200);
    assert_int_equal(r.text_len, 100000);
    assert_string_equal(r.content_type, "application/gzip");
    for (int i = 0; i < 100000; i++)
        if ((unsigned char)r.text[i] != (i * 7 & 0xff))
            fail_msg("byte %d differs", i);
    api_response_done(&r);
    fx->ctx.agent_bundle = fx->dir; /* a directory is no bundle */
    r = get(fx, "/api/instances/42/agent/bundle");
    assert_int_equal(r.status, 404);
    api_response_done(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_script, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bundle, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
