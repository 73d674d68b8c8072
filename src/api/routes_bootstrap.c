/* The bootstrap of an instance on a cloud (docs/deploy.md): one line on a
 * fresh machine fetches a script from the controller, which fetches the
 * portable agent build (scripts/portable-agent.sh) and starts it.
 *
 *   GET /api/instances/{id}/agent/bootstrap   text/x-shellscript
 *   GET /api/instances/{id}/agent/bundle      application/gzip
 *
 * Both are the agent's routes (API_ACC_AGENT): the instance's own credential
 * (or admin) is needed, and a credential of another instance is refused by
 * the gate (GATE-G4).
 *
 * API-B1: the script names the controller by its public address
 *      (DUMONT_PUBLIC_URL, default the address it serves: docs/deploy.md) and
 *      the instance id of the path; it holds no secret: the credential comes
 *      from the machine's own environment (DUMONT_AGENT_TOKEN, or the file
 *      DUMONT_AGENT_TOKEN_FILE names), is written to a 0600 file and passed to
 *      the agent as --token-file, never on a command line (provider.h
 *      PROV-PV6). It fetches with curl, else wget, else python3, else bash's
 *      /dev/tcp (plain http only), and leaves PORT and OLLAMA_HOST as it
 *      finds them; the workspace is DUMONT_WORKSPACE (default /workspace).
 * API-B2: the bundle is the file the server was given (DUMONT_AGENT_BUNDLE),
 *      read whole (at most API_BUNDLE_MAX bytes) per request; without one the
 *      answer is 404 naming how to build it. */
#define _GNU_SOURCE /* asprintf */
#include "api/routes_instances.h"

#include "api/gate.h"
#include "util/error.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define API_BUNDLE_MAX (256L * 1024 * 1024)

/* The script. %1$s: the controller's URL, %2$s: the instance id, %3$s: the
 * store URL ("" when none). Single quotes never occur in the values
 * (checked by the caller), so they are safe inside '...'. */
static const char script_fmt[] =
    "#!/bin/sh\n"
    "# Dumont agent bootstrap for instance %2$s (docs/deploy.md).\n"
    "set -eu\n"
    "url='%1$s'\n"
    "id='%2$s'\n"
    "store='%3$s'\n"
    "dir=${DUMONT_AGENT_DIR:-/opt/dumont}\n"
    "ws=${DUMONT_WORKSPACE:-/workspace}\n"
    "say() { printf 'dumont-bootstrap: %%s\\n' \"$*\" >&2; }\n"
    "umask 077\n"
    "mkdir -p \"$dir\" \"$ws\"\n"
    "if [ -n \"${DUMONT_AGENT_TOKEN_FILE:-}\" ]; then cp \"$DUMONT_AGENT_TOKEN_FILE\" "
    "\"$dir/agent.token\";\n"
    "elif [ -n \"${DUMONT_AGENT_TOKEN:-}\" ]; then printf '%%s\\n' \"$DUMONT_AGENT_TOKEN\" "
    ">\"$dir/agent.token\";\n"
    "else say 'set DUMONT_AGENT_TOKEN (or DUMONT_AGENT_TOKEN_FILE) to the instance credential'; "
    "exit 1; fi\n"
    "unset DUMONT_AGENT_TOKEN\n"
    "chmod 600 \"$dir/agent.token\"\n"
    "# fetch PATH OUT: GET $url/PATH with the credential, into OUT\n"
    "fetch() {\n"
    "  tok=$(cat \"$dir/agent.token\")\n"
    "  if command -v curl >/dev/null 2>&1; then\n"
    "    printf 'header = \"Authorization: Bearer %%s\"\\n' \"$tok\" |\n"
    "      curl -fsS --retry 3 ${DUMONT_CA_FILE:+--cacert \"$DUMONT_CA_FILE\"} -K - -o \"$2\" "
    "\"$url/$1\"\n"
    "  elif command -v wget >/dev/null 2>&1; then\n"
    "    printf 'header = Authorization: Bearer %%s\\n' \"$tok\" >\"$dir/wgetrc\"\n"
    "    WGETRC=\"$dir/wgetrc\" wget -q ${DUMONT_CA_FILE:+--ca-certificate=\"$DUMONT_CA_FILE\"} "
    "-O \"$2\" \"$url/$1\"; rc=$?; rm -f \"$dir/wgetrc\"; return $rc\n"
    "  elif command -v python3 >/dev/null 2>&1; then\n"
    "    DUMONT_T=\"$tok\" python3 -c 'import os,sys,ssl,urllib.request as u\n"
    "c=ssl.create_default_context(cafile=os.environ.get(\"DUMONT_CA_FILE\") or None)\n"
    "r=u.urlopen(u.Request(sys.argv[1],headers={\"Authorization\":\"Bearer \"+"
    "os.environ[\"DUMONT_T\"]}),context=c)\n"
    "open(sys.argv[2],\"wb\").write(r.read())' \"$url/$1\" \"$2\"\n"
    "  else\n"
    "    DUMONT_T=\"$tok\" bash -c 'u=${1#http://}; [ \"$u\" != \"$1\" ] || { echo \"no curl, "
    "wget or python3: https needs one\" >&2; exit 1; }\n"
    "h=${u%%%%/*}; p=/${u#*/}; port=80; case $h in *:*) port=${h##*:}; h=${h%%:*};; esac\n"
    "exec 3<>/dev/tcp/$h/$port\n"
    "printf \"GET %%s HTTP/1.0\\r\\nHost: %%s\\r\\nAuthorization: Bearer %%s\\r\\n\\r\\n\" "
    "\"$p\" \"$h\" \"$DUMONT_T\" >&3\n"
    "IFS= read -r st <&3; case $st in \"HTTP/1.\"?\" 200\"*) ;; *) echo \"GET $p: $st\" >&2; "
    "exit 1;; esac\n"
    "while IFS= read -r l <&3; do [ \"$l\" = $(printf \"\\r\") ] && break; done\n"
    "cat <&3 >\"$2\"' sh \"$url/$1\" \"$2\"\n"
    "  fi\n"
    "}\n"
    "say \"fetching the agent from $url\"\n"
    "fetch \"api/instances/$id/agent/bundle\" \"$dir/agent.tar.gz\"\n"
    "rm -rf \"$dir/dumont-agent\"\n"
    "tar -C \"$dir\" -xzf \"$dir/agent.tar.gz\"\n"
    "rm -f \"$dir/agent.tar.gz\"\n"
    "set -- agent --server \"$url\" --instance \"$id\" --token-file \"$dir/agent.token\"\n"
    "if [ -n \"${DUMONT_STORE_ENV_FILE:-}\" ] && [ -n \"$store\" ]; then\n"
    "  set -- \"$@\" --workspace \"$ws\" --store \"$store\" --store-env-file "
    "\"$DUMONT_STORE_ENV_FILE\"\n"
    "else\n"
    "  say 'no DUMONT_STORE_ENV_FILE: the agent takes no snapshots (docs/security.md)'\n"
    "fi\n"
    "[ -z \"${DUMONT_WORKLOAD:-}\" ] || set -- \"$@\" --workload \"$DUMONT_WORKLOAD\"\n"
    "[ -z \"${DUMONT_PROBE:-}\" ] || set -- \"$@\" --probe \"$DUMONT_PROBE\"\n"
    "export DUMONT_WORKSPACE=\"$ws\" DUMONT_HOME=\"$dir/home\"\n"
    "cd \"$ws\"\n"
    "nohup \"$dir/dumont-agent/bin/dumont\" \"$@\" >>\"$dir/agent.log\" 2>&1 </dev/null &\n"
    "echo $! >\"$dir/agent.pid\"\n"
    "say \"agent started (pid $!, log $dir/agent.log)\"\n";

static int quote_safe(const char *s)
{
    return s && !strpbrk(s, "'\\\n\r");
}

int api_h_agent_bootstrap(const api_ctx *ctx, const api_request *req, api_response *resp)
{
    int64_t id = req->nsegs > 2 ? gate_parse_id(req->segs[2]) : -1; /* GATE-G3 checked it too */
    if (id < 1)
        return api_error(resp, 400, "bad_request", "bad instance id");
    char ids[24];
    snprintf(ids, sizeof ids, "%" PRId64, id);
    const char *url = ctx->public_url, *store = ctx->store_url ? ctx->store_url : "";
    if (!url || !quote_safe(url) || !quote_safe(store))
        return api_error(resp, 503, "unavailable",
                         "the server has no usable public address: set DUMONT_PUBLIC_URL "
                         "(docs/deploy.md)");
    char *text = NULL;
    int n = asprintf(&text, script_fmt, url, ids, store);
    if (n < 0)
        return api_error(resp, 500, "internal", "out of memory");
    return api_text(resp, 200, text, (size_t)n, "text/x-shellscript; charset=utf-8");
}

int api_h_agent_bundle(const api_ctx *ctx, const api_request *req, api_response *resp)
{
    (void)req;
    if (!ctx->agent_bundle)
        return api_error(resp, 404, "not_found",
                         "no portable agent build: make one with scripts/portable-agent.sh "
                         "and start the server with DUMONT_AGENT_BUNDLE=FILE");
    int fd = open(ctx->agent_bundle, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > API_BUNDLE_MAX) {
        int e = fd < 0 ? errno : EFBIG;
        if (fd >= 0)
            close(fd);
        return api_error(resp, 404, "not_found", "the agent build %s: %s", ctx->agent_bundle,
                         e == EFBIG ? "not a regular file of at most 256 MiB" : strerror(e));
    }
    char *buf = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
    size_t got = 0;
    while (buf && got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (!buf || got != (size_t)st.st_size) {
        free(buf);
        return api_error(resp, 500, "internal", "cannot read the agent build %s",
                         ctx->agent_bundle);
    }
    return api_text(resp, 200, buf, got, "application/gzip");
}
