/* The s3:// store: objects in an S3-compatible bucket (AWS S3, Backblaze
 * B2, Cloudflare R2, MinIO, s3rver), spoken to with libcurl, every request
 * signed by our own SigV4 signer (sigv4.c). docs/store.md has the why.
 *
 * Settings (read once, at open; the store API takes a URL only, so this
 * back end reads its own variables, as the file:// one needs none):
 *   DUMONT_S3_ENDPOINT   http(s)://host[:port]       https://s3.REGION.amazonaws.com
 *   DUMONT_S3_REGION     signing region              us-east-1 (B2: from B2_ENDPOINT)
 *   DUMONT_S3_ADDRESSING path|virtual                path with an endpoint, else virtual
 *   DUMONT_S3_CA_FILE    extra CA bundle (PEM)       system store
 *   DUMONT_S3_PART_SIZE  multipart part bytes        16 MiB (>= 5 MiB)
 *   DUMONT_S3_MULTIPART_THRESHOLD  bigger objects go multipart   32 MiB
 *   DUMONT_S3_CONCURRENCY parallel parts/ranges      8
 *   DUMONT_S3_TRIES      tries per request           6
 *   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
 *   B2_ENDPOINT, B2_KEY_ID, B2_APPLICATION_KEY (used when the AWS ones are unset)
 *
 * S3-1: every request is signed (SigV4, x-amz-content-sha256 = SHA-256 of
 *       the body); the secret key and session token never reach a log line,
 *       an error message or the display URL (store.c STORE-S2).
 * S3-2 (STORE-ST1): a reader sees a whole object or none: S3 makes an object
 *       visible only when its PUT (or CompleteMultipartUpload) succeeds; a
 *       multipart upload that fails is aborted (AbortMultipartUpload).
 * S3-3 (STORE-ST2): put first asks HEAD; an existing object of the same length
 *       and x-amz-meta-sha256 is left as it is. One that differs is damaged
 *       (keys are content addressed or written once: a server that died
 *       mid-write, like s3rver, can leave a torn object) and is written
 *       again. Two racing writers of one key both write the same bytes.
 * S3-4 (STORE-ST4): a put is durable when S3 answers 200, so sync() has nothing
 *       to wait for.
 * S3-5: every put stores x-amz-meta-sha256 (SHA-256 of the whole object);
 *       get and get_range_verified check it: a damaged object fails with
 *       DM_E_PROTOCOL, never reaches the caller (and the mirror takes over).
 * S3-6: get_range reads through a small cache of whole objects (CACHE_SLOTS
 *       of at most CACHE_OBJ_MAX bytes), not checked whole: the snapshot
 *       layer checks each chunk's hash, and on a mismatch asks again with
 *       get_range_verified (STORE-ST6), which fetches the object anew, checks it
 *       whole and puts the good copy in the cache. Checking every pack twice
 *       cost a third of a restore's hashing. A bigger object is read by
 *       plain ranged GETs. Objects are immutable (STORE-ST2), so a cached copy
 *       never goes stale.
 * S3-10 (STORE-ST5): prefetch queues the key (at most PF_QUEUE waiting; more are
 *       dropped) for PF_THREADS background threads, started on first use,
 *       which load it into a cache slot as get_range would. A prefetched
 *       slot is pinned until get_range first reads it, so read-ahead never
 *       evicts what it fetched before it is used; at most PF_PINNED slots
 *       are pinned (loading or unread), leaving CACHE_SLOTS - PF_PINNED to
 *       the readers. A prefetch that fails leaves the slot empty: the read
 *       then fetches the object itself and reports the error. Why: a
 *       restore reads packs in order, one after the other per worker, and
 *       each pack's first byte costs a round trip and its transfer one
 *       connection; reading ahead keeps PF_THREADS more transfers in
 *       flight while the workers decompress, verify and write.
 * S3-7: retries: connection failures, timeouts, resets, 5xx, 429 and
 *       RequestTimeout are retried up to `tries` times with exponential
 *       backoff (250 ms doubling, capped at 8 s) and jitter, each logged
 *       (`store.s3.retry`) with its reason; everything else fails at once
 *       with one line naming the cause.
 * S3-11: a CompleteMultipartUpload is never retried blind: after a try
 *       that got no answer, a retryable one or NoSuchUpload, HEAD says
 *       whether the upload completed (the object is there with its length,
 *       its x-amz-meta-sha256 and, where the server makes one, the multipart
 *       ETag of these parts); if so the put succeeded. A completion whose
 *       answer was lost is not reported as a failed put.
 * S3-12: the storage's name (store_storage_name) is the seed's: backblaze_b2
 *       when the endpoint came from B2_ENDPOINT or lies under backblazeb2.com,
 *       cloudflare_r2 under r2.cloudflarestorage.com, else s3.
 * S3-8: every response is untrusted: bodies go into fixed or capped buffers
 *       (a GET never writes past the bytes asked for, XML answers are capped
 *       at S3_XML_MAX, error bodies at S3_ERRBODY_MAX), header values are length
 *       checked, numbers parsed with range checks, XML read by bounded
 *       substring search (no entities but the five predefined and &#N;).
 * S3-9: memory is bounded: a put never copies the caller's buffer; a get
 *       holds the object plus one first part; at most `concurrency`
 *       transfers run per call.
 * Threads: the store may be called from many threads at once. Requests
 * (s3_http.c) take curl easy handles from a pool (one per transfer, reused
 * for keep-alive); the cache has its own lock. */
#define _GNU_SOURCE
#include "store/store_backend.h"

#include "store/s3_http.h"
#include "store/sigv4.h"
#include "util/bigbuf.h"
#include "util/error.h"
#include "util/log.h"
#include "util/parse.h"

#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <time.h>
#include <unistd.h>

#define MIB           (1024u * 1024u)
#define CACHE_SLOTS   6
#define PF_THREADS    3
#define PF_PINNED     3
#define PF_QUEUE      8
#define CACHE_OBJ_MAX (32u * MIB)
#define DL_FIRST      (17u * MIB) /* first GET: a whole pack (16 MiB + header) */
#define DL_PART       (8u * MIB)  /* then parallel ranged GETs of this size */
#define MAX_PARTS     10000

typedef struct {
    char key[STORE_KEY_MAX];
    uint8_t *data; /* bigbuf of cap bytes */
    size_t len, cap;
    int state; /* C_EMPTY, C_LOADING, C_READY, C_BIG */
    unsigned refs;
    int pinned; /* S3-10: prefetched, not read yet */
    uint64_t used;
} cache_slot;
enum { C_EMPTY, C_LOADING, C_READY, C_BIG };

typedef struct {
    s3_conn c; /* endpoint, bucket, credentials, handle pool (s3_http.h) */
    const char *storage; /* S3-12: its name, from the endpoint and where it was set */
    size_t part_size, threshold;
    int concurrency;

    pthread_mutex_t cmu; /* cache */
    pthread_cond_t ccv;  /* a load ended; a slot may be free (slot_waiters) */
    pthread_cond_t pfcv; /* S3-10: work for the prefetch threads */
    int slot_waiters;
    cache_slot cache[CACHE_SLOTS];
    uint64_t tick;

    /* S3-10, under cmu */
    char pf_queue[PF_QUEUE][STORE_KEY_MAX];
    int pf_head, pf_len, pf_pinned, pf_started, pf_stop;
    pthread_t pf_threads[PF_THREADS];
} s3store;

/* ---- put --------------------------------------------------------------------- */

/* HEAD: *ret_exists; when it exists and sha/len are given, 1 only if the
 * object has that length and no other x-amz-meta-sha256 (S3-3). */
static int head_object(s3store *s, const char *key, const char *sha, size_t len, int *ret_exists,
                       char *err, size_t errlen)
{
    s3_req r = {.method = "HEAD", .key = key};
    int rc = s3_do(&s->c, &r, "head", err, errlen);
    if (rc == 0) {
        if (r.status == 200)
            *ret_exists =
                !sha || (r.have_clen && r.clen == len && (!r.rsha[0] || !strcmp(r.rsha, sha)));
        else if (r.status == 404)
            *ret_exists = 0;
        else
            rc = s3_fail(&s->c, &r, 1, "head", key, err, errlen);
    }
    s3_req_done(&r);
    return rc;
}

typedef struct {
    s3store *s;
    const char *key, *upload_id;
    const uint8_t *data;
    size_t len, part;
    char (*etags)[128];
} mp_ctx;

static int mp_part(void *ctx, size_t i, char *err, size_t errlen)
{
    mp_ctx *m = ctx;
    size_t off = i * m->part, n = m->len - off < m->part ? m->len - off : m->part;
    char num[16], query[1200], hash[65];
    snprintf(num, sizeof num, "%zu", i + 1);
    sigv4_pair q[] = {{"partNumber", num}, {"uploadId", m->upload_id}};
    if (sigv4_canonical_query(q, 2, query, sizeof query) != 0)
        return dm_fail(err, errlen, DM_E_TOO_BIG, "s3: upload id too long");
    sigv4_sha256_hex(m->data + off, n, hash);
    s3_req r = {.method = "PUT",
                .key = m->key,
                .query = query,
                .body = m->data + off,
                .body_len = n,
                .payload_hash = hash,
                .content_type = "application/octet-stream"};
    int rc = s3_do(&m->s->c, &r, "upload part", err, errlen);
    if (rc == 0 && (r.status != 200 || !r.etag[0]))
        rc = r.status == 200
                 ? dm_fail(err, errlen, DM_E_PROTOCOL, "s3: part %zu of %s: no ETag", i + 1, m->key)
                 : s3_fail(&m->s->c, &r, 1, "upload part", m->key, err, errlen);
    if (rc == 0)
        memcpy(m->etags[i], r.etag, sizeof r.etag);
    s3_req_done(&r);
    return rc;
}

static int mp_abort(s3store *s, const char *key, const char *upload_id)
{
    char query[1200], e[256];
    sigv4_pair q[] = {{"uploadId", upload_id}};
    if (sigv4_canonical_query(q, 1, query, sizeof query) != 0)
        return DM_E_TOO_BIG;
    s3_req r = {.method = "DELETE", .key = key, .query = query};
    int rc = s3_do(&s->c, &r, "abort upload", e, sizeof e);
    if (rc || (r.status != 204 && r.status != 200 && r.status != 404))
        log_warn("store.s3.abort_failed", "status=%ld", r.status);
    s3_req_done(&r);
    return rc;
}

/* S3-11: whether the upload of key whose completion got no answer (or a
 * retryable one) completed after all: HEAD finds the object with the upload's
 * length, its x-amz-meta-sha256 (set when the upload started), and the
 * multipart ETag S3 documents (the MD5 of the parts' MD5s, "-", their count)
 * where the server makes one. */
static int mp_completed(s3store *s, const char *key, size_t len, const char *sha,
                        char (*etags)[128], size_t nparts)
{
    s3_req r = {.method = "HEAD", .key = key};
    char e[256];
    int ok = s3_do(&s->c, &r, "head", e, sizeof e) == 0 && r.status == 200 && r.have_clen &&
             r.clen == len && (!r.rsha[0] || strcmp(r.rsha, sha) == 0) &&
             s3_multipart_etag_matches(r.etag, etags, nparts);
    s3_req_done(&r);
    return ok;
}

/* CompleteMultipartUpload, tried here rather than in s3_do: before each
 * retry, and when the upload is gone (NoSuchUpload: a completion that
 * succeeded but whose answer was lost), HEAD says whether it completed
 * (S3-11), since a completed upload cannot be completed again. */
static int mp_complete(s3store *s, const char *key, const char *upload_id, char (*etags)[128],
                       size_t nparts, size_t objlen, const char *sha, char *err, size_t errlen)
{
    char query[1200];
    sigv4_pair q[] = {{"uploadId", upload_id}};
    if (sigv4_canonical_query(q, 1, query, sizeof query) != 0)
        return dm_fail(err, errlen, DM_E_TOO_BIG, "s3: upload id too long");
    size_t cap = 64 + nparts * 200, len = 0;
    char *xml = malloc(cap);
    if (!xml)
        return dm_fail(err, errlen, -ENOMEM, "s3: out of memory");
    len += (size_t)snprintf(xml, cap, "<CompleteMultipartUpload>");
    for (size_t i = 0; i < nparts; i++)
        len += (size_t)snprintf(xml + len, cap - len,
                                "<Part><PartNumber>%zu</PartNumber><ETag>%s</ETag></Part>", i + 1,
                                etags[i]);
    len += (size_t)snprintf(xml + len, cap - len, "</CompleteMultipartUpload>");
    int rc;
    for (int t = 0;; t++) {
        s3_req r = {.method = "POST",
                    .key = key,
                    .query = query,
                    .body = xml,
                    .body_len = len,
                    .content_type = "application/xml",
                    .tries = 1};
        char reason[128] = "", code[64] = "";
        rc = s3_do(&s->c, &r, "complete upload", err, errlen);
        /* S3 may answer 200 and put the error in the body */
        if (rc == 0 && r.status == 200 && r.dyn && strstr(r.dyn, "<Error>")) {
            size_t n = r.dyn_len < S3_ERRBODY_MAX - 1 ? r.dyn_len : S3_ERRBODY_MAX - 1;
            memcpy(r.errbody, r.dyn, n);
            r.errbody[n] = '\0';
            r.errbody_len = n;
            r.status = 500;
        }
        if (rc == 0 && r.status == 200) {
            s3_req_done(&r);
            break;
        }
        int again = s3_retryable(&r, reason, sizeof reason);
        s3_xml_text(r.errbody, r.errbody + r.errbody_len, "Code", code, sizeof code, NULL);
        int gone = r.status == 404 && strcmp(code, "NoSuchUpload") == 0;
        if (rc == 0)
            rc = s3_fail(&s->c, &r, t + 1, "complete upload", key, err, errlen);
        s3_req_done(&r);
        if (!again && !gone)
            break;
        s3_note_retry("complete upload", key, t + 2, reason); /* HEAD first, then POST again */
        if (mp_completed(s, key, objlen, sha, etags, nparts)) {
            log_warn("store.s3.complete_confirmed", "key=%s try=%d reason=%s", key, t + 1,
                     log_quote(code, sizeof code, reason));
            rc = 0;
            break;
        }
        if (gone || t + 1 >= s->c.tries)
            break;
        s3_backoff_sleep(t);
    }
    free(xml);
    return rc;
}

static int put_multipart(s3store *s, const char *key, const uint8_t *data, size_t len,
                         const char *sha, char *err, size_t errlen)
{
    size_t nparts = (len + s->part_size - 1) / s->part_size;
    if (nparts > MAX_PARTS)
        return dm_fail(err, errlen, DM_E_TOO_BIG,
                       "s3: put %s: %zu bytes need more than %d parts of %zu bytes", key, len,
                       MAX_PARTS, s->part_size);
    char upload_id[1024];
    s3_req r = {.method = "POST",
                .key = key,
                .query = "uploads=",
                .meta_sha = sha,
                .content_type = "application/octet-stream"};
    int rc = s3_do(&s->c, &r, "start upload", err, errlen);
    if (rc == 0 && r.status != 200)
        rc = s3_fail(&s->c, &r, 1, "start upload", key, err, errlen);
    if (rc == 0 && (!r.dyn ||
                    s3_xml_text(r.dyn, r.dyn + r.dyn_len, "UploadId", upload_id, sizeof upload_id,
                                NULL) != 0 ||
                    !upload_id[0]))
        rc = dm_fail(err, errlen, DM_E_PROTOCOL, "s3: start upload %s: no UploadId in the answer",
                     key);
    s3_req_done(&r);
    if (rc)
        return rc;
    mp_ctx m = {s, key, upload_id, data, len, s->part_size, calloc(nparts, sizeof *m.etags)};
    if (!m.etags)
        rc = dm_fail(err, errlen, -ENOMEM, "s3: out of memory");
    if (rc == 0)
        rc = s3_par_run(mp_part, &m, nparts, s->concurrency, err, errlen);
    if (rc == 0)
        rc = mp_complete(s, key, upload_id, m.etags, nparts, len, sha, err, errlen);
    if (rc) /* S3-2: nothing half-written stays behind */
        mp_abort(s, key, upload_id);
    free(m.etags);
    return rc;
}

static int s3_put(void *st, const char *key, const void *data, size_t len, int flags, char *err,
                  size_t errlen)
{
    s3store *s = st;
    int exists = 0;
    char sha[65];
    (void)flags;                                  /* S3-4: every put is durable on return */
    sigv4_sha256_hex(data ? data : "", len, sha); /* payload hash and S3-5 */
    int rc = head_object(s, key, sha, len, &exists, err, errlen);
    if (rc || exists) /* S3-3 */
        return rc;
    if (len > s->threshold)
        return put_multipart(s, key, data, len, sha, err, errlen);
    s3_req r = {.method = "PUT",
                .key = key,
                .body = data,
                .body_len = len,
                .payload_hash = sha,
                .meta_sha = sha,
                .content_type = "application/octet-stream"};
    rc = s3_do(&s->c, &r, "put", err, errlen);
    if (rc == 0 && r.status != 200)
        rc = s3_fail(&s->c, &r, 1, "put", key, err, errlen);
    s3_req_done(&r);
    return rc;
}

static int s3_sync(void *st, char *err, size_t errlen)
{
    (void)st, (void)err, (void)errlen;
    return 0; /* S3-4 */
}

/* ---- get -------------------------------------------------------------------- */

typedef struct {
    s3store *s;
    const char *key;
    uint8_t *buf;
    size_t first, total;
} dl_ctx;

static int dl_part(void *ctx, size_t i, char *err, size_t errlen)
{
    dl_ctx *d = ctx;
    size_t off = d->first + i * DL_PART;
    size_t n = d->total - off < DL_PART ? d->total - off : DL_PART;
    char range[64];
    snprintf(range, sizeof range, "bytes=%zu-%zu", off, off + n - 1);
    s3_req r = {
        .method = "GET", .key = d->key, .range = range, .sink = d->buf + off, .sink_cap = n};
    int rc = s3_do(&d->s->c, &r, "get", err, errlen);
    if (rc == 0 && (r.status != 206 || r.got != n))
        rc = r.status == 206
                 ? dm_fail(err, errlen, DM_E_PROTOCOL, "s3: get %s: short range (%zu of %zu bytes)",
                           d->key, r.got, n)
                 : s3_fail(&d->s->c, &r, 1, "get", d->key, err, errlen);
    s3_req_done(&r);
    return rc;
}

/* Object buffers: malloc'd for get (the caller free()s them), huge pages
 * for the cache (util/bigbuf.h: a 17 MiB pack is 9 faults, not 4,352). */
typedef struct {
    int huge;
    size_t cap; /* of the buffer returned */
} obuf;

static uint8_t *obuf_alloc(obuf *o, size_t n)
{
    o->cap = n ? n : 1;
    return o->huge ? bigbuf_alloc(o->cap) : malloc(o->cap);
}

static void obuf_free(const obuf *o, uint8_t *p)
{
    if (o->huge)
        bigbuf_free(p, o->cap);
    else
        free(p);
}

/* The whole object, at most max_len bytes, fetched as one ranged GET and
 * then parallel ranged GETs for the rest, checked against its
 * x-amz-meta-sha256 (S3-5). The buffer comes from ob (obuf_free). */
static int fetch_whole(s3store *s, const char *key, size_t max_len, int verify, obuf *ob,
                       uint8_t **ret, size_t *ret_len, char *err, size_t errlen)
{
    size_t fcap = max_len < DL_FIRST ? max_len : DL_FIRST;
    uint8_t *buf = obuf_alloc(ob, fcap);
    if (!buf)
        return dm_fail(err, errlen, -ENOMEM, "s3: out of memory");
    char range[64], sha[65];
    snprintf(range, sizeof range, "bytes=0-%zu", fcap ? fcap - 1 : 0);
    s3_req r = {.method = "GET", .key = key, .range = range, .sink = buf, .sink_cap = fcap};
    size_t total = 0;
    int rc = s3_do(&s->c, &r, "get", err, errlen);
    if (rc)
        goto out;
    if (r.status == 416) { /* an empty object has no byte 0 */
        total = 0;
    } else if (r.status == 206 && r.have_total) {
        total = r.total > SIZE_MAX ? SIZE_MAX : (size_t)r.total;
    } else if (r.status == 200 && r.have_clen) { /* range ignored: whole object */
        total = r.clen > SIZE_MAX ? SIZE_MAX : (size_t)r.clen;
    } else {
        rc = r.status / 100 == 2
                 ? dm_fail(err, errlen, DM_E_PROTOCOL, "s3: get %s: answer without its size", key)
                 : s3_fail(&s->c, &r, 1, "get", key, err, errlen);
        goto out;
    }
    if (total > max_len) { /* STORE-ST3 */
        rc = dm_fail(err, errlen, DM_E_TOO_BIG, "s3: get %s: %zu bytes, cap %zu", key, total,
                     max_len);
        goto out;
    }
    snprintf(sha, sizeof sha, "%s", r.rsha);
    if (total > r.got) {
        if (r.status != 206) { /* a 200 larger than the first part: not a range server */
            rc = dm_fail(err, errlen, DM_E_PROTOCOL, "s3: get %s: range not honoured", key);
            goto out;
        }
        obuf big = {.huge = ob->huge};
        uint8_t *all = obuf_alloc(&big, total);
        if (!all) {
            rc = dm_fail(err, errlen, -ENOMEM, "s3: out of memory");
            goto out;
        }
        memcpy(all, buf, r.got);
        obuf_free(ob, buf);
        *ob = big;
        buf = all;
        dl_ctx d = {s, key, buf, r.got, total};
        size_t nparts = (total - r.got + DL_PART - 1) / DL_PART;
        if ((rc = s3_par_run(dl_part, &d, nparts, s->concurrency, err, errlen)) != 0)
            goto out;
    } else if (r.got != total) {
        rc = dm_fail(err, errlen, DM_E_PROTOCOL, "s3: get %s: %zu of %zu bytes came", key, r.got,
                     total);
        goto out;
    }
    if (verify && sha[0]) {
        char got[65];
        sigv4_sha256_hex(buf, total, got);
        if (strcmp(got, sha) != 0) {
            rc = dm_fail(err, errlen, DM_E_PROTOCOL,
                         "s3: get %s: damaged object: content does not match its "
                         "x-amz-meta-sha256",
                         key);
            goto out;
        }
    }
    *ret = buf;
    *ret_len = total;
    buf = NULL;
out:
    s3_req_done(&r);
    if (buf)
        obuf_free(ob, buf);
    return rc;
}

static int s3_get(void *st, const char *key, size_t max_len, void **ret_data, size_t *ret_len,
                  char *err, size_t errlen)
{
    uint8_t *buf;
    size_t len;
    obuf ob = {.huge = 0};
    int rc = fetch_whole(st, key, max_len, 1, &ob, &buf, &len, err, errlen);
    if (rc == 0) {
        *ret_data = buf;
        *ret_len = len;
    }
    return rc;
}

static int range_direct(s3store *s, const char *key, uint64_t off, size_t len, void *buf, char *err,
                        size_t errlen)
{
    if (len == 0)
        return 0;
    char range[64];
    snprintf(range, sizeof range, "bytes=%llu-%llu", (unsigned long long)off,
             (unsigned long long)(off + len - 1));
    s3_req r = {.method = "GET", .key = key, .range = range, .sink = buf, .sink_cap = len};
    int rc = s3_do(&s->c, &r, "get", err, errlen);
    if (rc == 0 && r.status == 416)
        rc = dm_fail(err, errlen, DM_E_PROTOCOL,
                     "s3: get %s: object too short for %zu bytes at "
                     "offset %llu",
                     key, len, (unsigned long long)off);
    else if (rc == 0 && (r.status != 206 || r.got != len))
        rc = r.status / 100 == 2 ? dm_fail(err, errlen, DM_E_PROTOCOL,
                                           "s3: get %s: %zu of %zu bytes at offset %llu", key,
                                           r.got, len, (unsigned long long)off)
                                 : s3_fail(&s->c, &r, 1, "get", key, err, errlen);
    s3_req_done(&r);
    return rc;
}

/* Finds key's slot or claims one for it (LRU among the idle); NULL when
 * every slot is busy (loading, or being copied from). Cache lock held. */
static cache_slot *cache_slot_for(s3store *s, const char *key, int *ret_new)
{
    cache_slot *victim = NULL;
    *ret_new = 0;
    for (int i = 0; i < CACHE_SLOTS; i++) {
        cache_slot *c = &s->cache[i];
        if (c->state != C_EMPTY && strcmp(c->key, key) == 0)
            return c;
        if (c->state == C_LOADING || c->refs || c->pinned)
            continue;
        if (!victim || c->state == C_EMPTY || (victim->state != C_EMPTY && c->used < victim->used))
            victim = c;
    }
    if (victim) {
        if (victim->data)
            bigbuf_free(victim->data, victim->cap);
        *victim = (cache_slot){.state = C_LOADING};
        snprintf(victim->key, sizeof victim->key, "%s", key);
        *ret_new = 1;
    }
    return victim;
}

/* Fills slot c, claimed (C_LOADING) for key: cmu held on entry and exit,
 * released while fetching. Wakes the waiters. */
static int slot_load(s3store *s, cache_slot *c, const char *key, char *err, size_t errlen)
{
    pthread_mutex_unlock(&s->cmu);
    uint8_t *data = NULL;
    size_t dlen = 0;
    obuf ob = {.huge = 1};
    int rc = fetch_whole(s, key, CACHE_OBJ_MAX, 0, &ob, &data, &dlen, err, errlen); /* S3-6 */
    pthread_mutex_lock(&s->cmu);
    c->data = data;
    c->cap = ob.cap;
    c->len = dlen;
    c->used = ++s->tick;
    c->state = rc == 0 ? C_READY : rc == DM_E_TOO_BIG ? C_BIG : C_EMPTY;
    pthread_cond_broadcast(&s->ccv);
    return rc;
}

static int s3_get_range(void *st, const char *key, uint64_t off, size_t len, void *buf, char *err,
                        size_t errlen)
{
    s3store *s = st;
    int rc = 0, fresh;
    pthread_mutex_lock(&s->cmu);
    for (;;) {
        cache_slot *c = cache_slot_for(s, key, &fresh);
        if (!c) { /* every slot busy: one frees soon (loads end, copies are short) */
            s->slot_waiters++;
            pthread_cond_wait(&s->ccv, &s->cmu);
            s->slot_waiters--;
            continue;
        }
        if (c->state == C_BIG) { /* S3-6: not cached */
            pthread_mutex_unlock(&s->cmu);
            return range_direct(s, key, off, len, buf, err, errlen);
        }
        if (c->state == C_LOADING && !fresh) {
            pthread_cond_wait(&s->ccv, &s->cmu);
            continue;
        }
        if (c->state == C_READY) {
            c->refs++;
            c->used = ++s->tick;
            if (c->pinned) { /* S3-10: read at last, evictable again */
                c->pinned = 0;
                s->pf_pinned--;
                pthread_cond_signal(&s->pfcv);
            }
            pthread_mutex_unlock(&s->cmu);
            if (off > c->len || len > c->len - off)
                rc = dm_fail(err, errlen, DM_E_PROTOCOL,
                             "s3: get %s: object too short for %zu bytes at offset %llu", key, len,
                             (unsigned long long)off);
            else if (len)
                memcpy(buf, c->data + off, len);
            pthread_mutex_lock(&s->cmu);
            if (--c->refs == 0 && s->slot_waiters) /* only they wait for this */
                pthread_cond_broadcast(&s->ccv);
            pthread_mutex_unlock(&s->cmu);
            return rc;
        }
        rc = slot_load(s, c, key, err, errlen); /* fresh: we load it */
        if (rc && rc != DM_E_TOO_BIG) {
            pthread_mutex_unlock(&s->cmu);
            return rc;
        }
        rc = 0;
    }
}

/* STORE-ST6, S3-6: the object fetched anew and checked whole; the good copy
 * replaces a cached one nobody is reading. */
static int s3_get_range_verified(void *st, const char *key, uint64_t off, size_t len, void *buf,
                                 char *err, size_t errlen)
{
    s3store *s = st;
    uint8_t *data = NULL;
    size_t dlen = 0;
    obuf ob = {.huge = 1};
    int rc = fetch_whole(s, key, CACHE_OBJ_MAX, 1, &ob, &data, &dlen, err, errlen);
    if (rc == DM_E_TOO_BIG) /* not cached either: plain ranged GETs (S3-6) */
        return range_direct(s, key, off, len, buf, err, errlen);
    if (rc)
        return rc;
    if (off > dlen || len > dlen - off) {
        obuf_free(&ob, data);
        return dm_fail(err, errlen, DM_E_PROTOCOL,
                       "s3: get %s: object too short for %zu bytes at offset %llu", key, len,
                       (unsigned long long)off);
    }
    memcpy(buf, data + off, len);
    pthread_mutex_lock(&s->cmu);
    for (int i = 0; i < CACHE_SLOTS && data; i++) {
        cache_slot *c = &s->cache[i];
        if (c->state == C_READY && !c->refs && strcmp(c->key, key) == 0) {
            uint8_t *old = c->data;
            size_t old_cap = c->cap;
            c->data = data;
            c->cap = ob.cap;
            c->len = dlen;
            data = old;
            ob.cap = old_cap;
        }
    }
    pthread_mutex_unlock(&s->cmu);
    if (data)
        obuf_free(&ob, data);
    return 0;
}

/* ---- prefetch (S3-10) -------------------------------------------------------- */

static int pf_known(const s3store *s, const char *key) /* cmu held */
{
    for (int i = 0; i < CACHE_SLOTS; i++)
        if (s->cache[i].state != C_EMPTY && strcmp(s->cache[i].key, key) == 0)
            return 1;
    for (int i = 0; i < s->pf_len; i++)
        if (strcmp(s->pf_queue[(s->pf_head + i) % PF_QUEUE], key) == 0)
            return 1;
    return 0;
}

static void *pf_main(void *arg)
{
    s3store *s = arg;
    char key[STORE_KEY_MAX], err[256];
    pthread_mutex_lock(&s->cmu);
    for (;;) {
        while (!s->pf_stop && (s->pf_len == 0 || s->pf_pinned >= PF_PINNED))
            pthread_cond_wait(&s->pfcv, &s->cmu);
        if (s->pf_stop)
            break;
        snprintf(key, sizeof key, "%s", s->pf_queue[s->pf_head]);
        s->pf_head = (s->pf_head + 1) % PF_QUEUE;
        s->pf_len--;
        int fresh = 0;
        cache_slot *c = cache_slot_for(s, key, &fresh);
        if (!c || !fresh)
            continue; /* cached or being read already, or no room: the reader fetches it */
        c->pinned = 1;
        s->pf_pinned++;
        int rc = slot_load(s, c, key, err, sizeof err);
        if (c->state != C_READY) {
            c->pinned = 0;
            s->pf_pinned--;
            pthread_cond_signal(&s->pfcv);
        }
        if (rc && rc != DM_E_TOO_BIG)
            log_debug("store.s3.prefetch", "key=%s error=\"%s\"", key, err);
    }
    pthread_mutex_unlock(&s->cmu);
    return NULL;
}

/* STORE-ST7, sigv4.h STORE-V4. */
static int s3_presign_op(void *st, const char *method, const char *key, long expires_s, char *out,
                         size_t outlen, char *err, size_t errlen)
{
    s3store *s = st;
    int rc = s3_presign(&s->c, method, key, expires_s, out, outlen);
    return rc ? dm_fail(err, errlen, rc, "s3: cannot presign %s %s: %s", method, key,
                        dm_strerror(rc))
              : 0;
}

static void s3_prefetch(void *st, const char *key)
{
    s3store *s = st;
    pthread_mutex_lock(&s->cmu);
    if (!s->pf_stop && s->pf_len < PF_QUEUE && !pf_known(s, key)) {
        snprintf(s->pf_queue[(s->pf_head + s->pf_len) % PF_QUEUE], STORE_KEY_MAX, "%s", key);
        s->pf_len++;
        while (s->pf_started < PF_THREADS &&
               pthread_create(&s->pf_threads[s->pf_started], NULL, pf_main, s) == 0)
            s->pf_started++;
        pthread_cond_signal(&s->pfcv);
    }
    pthread_mutex_unlock(&s->cmu);
}

static int s3_exists(void *st, const char *key, int *ret_exists, char *err, size_t errlen)
{
    return head_object(st, key, NULL, 0, ret_exists, err, errlen);
}

/* ---- list, delete ---------------------------------------------------------- */

/* <LastModified> of a listing ("2026-12-02T05:43:47.000Z") in wall-clock ms;
 * -1 when absent or not of that form (the server's answer is not trusted). */
static int64_t s3_time_ms(const char *t)
{
    struct tm tm = {0};
    int ms = 0, n = 0;
    if (sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &n) != 6 || tm.tm_year < 1970 || tm.tm_year > 9999 ||
        tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60)
        return -1;
    if (t[n] == '.' && sscanf(t + n + 1, "%3d", &ms) != 1)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t secs = timegm(&tm);
    return secs < 0 ? -1 : (int64_t)secs * 1000 + (ms >= 0 && ms < 1000 ? ms : 0);
}

/* Calls fn for each <Contents> of one ListObjectsV2 page; *ret_token gets
 * the continuation token ("" when the listing is complete). */
static int list_page(s3store *s, const char *xml, size_t len, store_list_info_fn fn, void *ctx,
                     char *token, size_t tokenlen, char *err, size_t errlen)
{
    const char *p = xml, *end = xml + len;
    char key[STORE_KEY_MAX + 160], size_s[32], when[40], trunc[16] = "";
    size_t plen = strlen(s->c.prefix);
    for (;;) {
        const char *a = memmem(p, (size_t)(end - p), "<Contents>", 10);
        const char *b = a ? memmem(a, (size_t)(end - a), "</Contents>", 11) : NULL;
        if (!a || !b)
            break;
        uint64_t size = 0;
        p = b + 11;
        if (s3_xml_text(a, b, "Key", key, sizeof key, NULL) != 0 ||
            s3_xml_text(a, b, "Size", size_s, sizeof size_s, NULL) != 0 ||
            s3_parse_u64n(size_s, strlen(size_s), &size) != 0)
            continue;
        const char *k = key;
        if (plen) {
            if (strncmp(key, s->c.prefix, plen) != 0 || key[plen] != '/')
                continue;
            k = key + plen + 1;
        }
        if (!store_key_valid(k))
            continue; /* not one of ours (a folder marker, a foreign name) */
        int64_t mtime = -1;
        if (s3_xml_text(a, b, "LastModified", when, sizeof when, NULL) == 0)
            mtime = s3_time_ms(when);
        int rc = fn(k, size, mtime, ctx);
        if (rc)
            return rc;
    }
    token[0] = '\0';
    s3_xml_text(xml, end, "IsTruncated", trunc, sizeof trunc, NULL);
    if (strcmp(trunc, "true") == 0 &&
        (s3_xml_text(xml, end, "NextContinuationToken", token, tokenlen, NULL) != 0 || !token[0]))
        return dm_fail(err, errlen, DM_E_PROTOCOL,
                       "s3: list: truncated answer without a usable continuation token");
    return 0;
}

static int s3_list(void *st, const char *prefix, store_list_info_fn fn, void *ctx, char *err,
                   size_t errlen)
{
    s3store *s = st;
    char full[STORE_KEY_MAX + 160], token[1024] = "", prev[1024] = "", query[4096];
    snprintf(full, sizeof full, "%s%s%s", s->c.prefix, s->c.prefix[0] ? "/" : "", prefix);
    int rc = 0;
    for (int page = 0; page < 1000000; page++) {
        sigv4_pair q[3] = {{"list-type", "2"}, {"prefix", full}, {"continuation-token", token}};
        if (sigv4_canonical_query(q, token[0] ? 3 : 2, query, sizeof query) != 0)
            return dm_fail(err, errlen, DM_E_TOO_BIG, "s3: list: continuation token too long");
        s3_req r = {.method = "GET", .query = query};
        rc = s3_do(&s->c, &r, "list", err, errlen);
        if (rc == 0 && r.status != 200)
            rc = s3_fail(&s->c, &r, 1, "list", prefix, err, errlen);
        if (rc == 0 && r.overflow)
            rc = dm_fail(err, errlen, DM_E_TOO_BIG, "s3: list: answer over %u bytes", S3_XML_MAX);
        snprintf(prev, sizeof prev, "%s", token);
        if (rc == 0)
            rc = list_page(s, r.dyn ? r.dyn : "", r.dyn_len, fn, ctx, token, sizeof token, err,
                           errlen);
        s3_req_done(&r);
        if (rc || !token[0])
            return rc;
        if (strcmp(token, prev) == 0)
            return dm_fail(err, errlen, DM_E_PROTOCOL, "s3: list: the server repeats its token");
    }
    return dm_fail(err, errlen, DM_E_TOO_BIG, "s3: list: too many pages");
}

static int s3_del(void *st, const char *key, char *err, size_t errlen)
{
    s3store *s = st;
    s3_req r = {.method = "DELETE", .key = key};
    int rc = s3_do(&s->c, &r, "delete", err, errlen);
    if (rc == 0 && r.status / 100 != 2 && r.status != 404)
        rc = s3_fail(&s->c, &r, 1, "delete", key, err, errlen);
    s3_req_done(&r);
    return rc;
}

static void s3_close(void *st)
{
    s3store *s = st;
    if (!s)
        return;
    pthread_mutex_lock(&s->cmu);
    s->pf_stop = 1; /* S3-10: a prefetch in flight finishes its request */
    pthread_cond_broadcast(&s->pfcv);
    pthread_mutex_unlock(&s->cmu);
    for (int i = 0; i < s->pf_started; i++)
        pthread_join(s->pf_threads[i], NULL);
    s3_conn_done(&s->c);
    for (int i = 0; i < CACHE_SLOTS; i++)
        if (s->cache[i].data)
            bigbuf_free(s->cache[i].data, s->cache[i].cap);
    pthread_mutex_destroy(&s->cmu);
    pthread_cond_destroy(&s->ccv);
    pthread_cond_destroy(&s->pfcv);
    OPENSSL_cleanse(s, sizeof *s); /* S3-1 */
    free(s);
}

static const char *s3_storage(void *st)
{
    return ((const s3store *)st)->storage;
}

static const store_ops s3_ops = {
    .scheme = "s3",
    .storage = s3_storage,
    .put = s3_put,
    .sync = s3_sync,
    .get = s3_get,
    .get_range = s3_get_range,
    .exists = s3_exists,
    .list = s3_list,
    .del = s3_del,
    .close = s3_close,
    .prefetch = s3_prefetch,
    .get_range_verified = s3_get_range_verified,
    .presign = s3_presign_op,
};

/* ---- settings ---------------------------------------------------------------- */

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static int copy_setting(char *dst, size_t cap, const char *v, const char *name, char *err,
                        size_t errlen)
{
    if (strlen(v) >= cap)
        return dm_fail(err, errlen, DM_E_INVALID, "%s is too long", name);
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

static int env_num(const char *name, int64_t min, int64_t max, int64_t def, int64_t *ret, char *err,
                   size_t errlen)
{
    const char *v = env(name);
    *ret = def;
    if (v && parse_i64(v, min, max, ret) != 0)
        return dm_fail(err, errlen, DM_E_INVALID, "%s must be a number from %lld to %lld", name,
                       (long long)min, (long long)max);
    return 0;
}

/* "https://host[:port][/]" -> scheme, hostport. */
static int parse_endpoint(s3store *s, const char *ep, char *err, size_t errlen)
{
    const char *h = ep;
    snprintf(s->c.scheme, sizeof s->c.scheme, "https");
    if (strncmp(ep, "https://", 8) == 0)
        h = ep + 8;
    else if (strncmp(ep, "http://", 7) == 0)
        h = ep + 7, snprintf(s->c.scheme, sizeof s->c.scheme, "http");
    else if (strstr(ep, "://"))
        return dm_fail(err, errlen, DM_E_INVALID, "s3: endpoint must be http:// or https://");
    size_t n = strcspn(h, "/");
    if (n == 0 || n >= sizeof s->c.hostport || (h[n] && strcmp(h + n, "/") != 0) ||
        strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") < n)
        return dm_fail(err, errlen, DM_E_INVALID,
                       "s3: endpoint must be http(s)://host[:port] with no path");
    memcpy(s->c.hostport, h, n);
    s->c.hostport[n] = '\0';
    return 0;
}

/* "bucket[/prefix]" (after s3://). */
static int parse_bucket(s3store *s, const char *rest, char *err, size_t errlen)
{
    size_t n = strcspn(rest, "/");
    if (n < 3 || n >= sizeof s->c.bucket ||
        strspn(rest, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") < n)
        return dm_fail(err, errlen, DM_E_INVALID,
                       "s3: bad bucket name in s3://BUCKET/PREFIX (3-63 of [a-z0-9.-])");
    memcpy(s->c.bucket, rest, n);
    s->c.bucket[n] = '\0';
    const char *p = rest + n;
    while (*p == '/')
        p++;
    size_t plen = strlen(p);
    while (plen && p[plen - 1] == '/')
        plen--;
    if (plen >= sizeof s->c.prefix)
        return dm_fail(err, errlen, DM_E_INVALID, "s3: prefix too long");
    memcpy(s->c.prefix, p, plen);
    s->c.prefix[plen] = '\0';
    if (plen && !store_key_valid(s->c.prefix))
        return dm_fail(err, errlen, DM_E_INVALID,
                       "s3: bad prefix in s3://BUCKET/PREFIX (components of [A-Za-z0-9._-])");
    return 0;
}

/* B2's endpoint names its region: s3.<region>.backblazeb2.com */
static void region_from_endpoint(const char *hostport, char *out, size_t outlen)
{
    const char *a = strncmp(hostport, "s3.", 3) == 0 ? hostport + 3 : NULL;
    const char *b = a ? strstr(a, ".backblazeb2.com") : NULL;
    if (a && b && b > a && (size_t)(b - a) < outlen) {
        memcpy(out, a, (size_t)(b - a));
        out[b - a] = '\0';
    }
}

static int load_credentials(s3store *s, char *err, size_t errlen)
{
    const char *ak = env("AWS_ACCESS_KEY_ID"), *sk = env("AWS_SECRET_ACCESS_KEY");
    if (!ak && !sk) {
        ak = env("B2_KEY_ID");
        sk = env("B2_APPLICATION_KEY");
    }
    if (!ak || !sk)
        return dm_fail(err, errlen, DM_E_UNAUTHORIZED,
                       "s3: no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                       "(or B2_KEY_ID and B2_APPLICATION_KEY)");
    const char *tok = env("AWS_SESSION_TOKEN");
    int rc =
        copy_setting(s->c.access_key, sizeof s->c.access_key, ak, "the access key id", err, errlen);
    if (rc == 0)
        rc = copy_setting(s->c.secret_key, sizeof s->c.secret_key, sk, "the secret key", err,
                          errlen);
    if (rc == 0 && tok)
        rc = copy_setting(s->c.session_token, sizeof s->c.session_token, tok, "AWS_SESSION_TOKEN",
                          err, errlen);
    if (rc == 0 && (strpbrk(s->c.access_key, "/\r\n ") || strpbrk(s->c.session_token, "\r\n")))
        rc = dm_fail(err, errlen, DM_E_INVALID, "s3: the access key id or token is malformed");
    return rc;
}

/* 1 when host (host[:port]) is domain or ends in ".domain". */
static int host_under(const char *hostport, const char *domain)
{
    size_t n = strcspn(hostport, ":"), d = strlen(domain);
    return n >= d && strncasecmp(hostport + n - d, domain, d) == 0 &&
           (n == d || hostport[n - d - 1] == '.');
}

/* S3-12: the storage's name (the seed's names): Backblaze B2 when its endpoint
 * came from the B2_* variables or lies under backblazeb2.com, Cloudflare R2
 * under r2.cloudflarestorage.com, else plain s3. */
static const char *storage_name(const char *hostport, int from_b2)
{
    if (from_b2 || host_under(hostport, "backblazeb2.com"))
        return "backblaze_b2";
    if (host_under(hostport, "r2.cloudflarestorage.com"))
        return "cloudflare_r2";
    return "s3";
}

static int load_settings(s3store *s, char *err, size_t errlen)
{
    const char *ep = env("DUMONT_S3_ENDPOINT");
    int from_b2 = !ep && env("B2_ENDPOINT");
    if (!ep)
        ep = env("B2_ENDPOINT");
    const char *reg = env("DUMONT_S3_REGION");
    int rc = 0;
    if (reg)
        rc = copy_setting(s->c.region, sizeof s->c.region, reg, "DUMONT_S3_REGION", err, errlen);
    if (rc == 0 && ep)
        rc = parse_endpoint(s, ep, err, errlen);
    if (rc == 0 && ep && !reg)
        region_from_endpoint(s->c.hostport, s->c.region, sizeof s->c.region);
    if (!s->c.region[0])
        snprintf(s->c.region, sizeof s->c.region, "us-east-1");
    if (rc == 0 &&
        strspn(s->c.region, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(s->c.region))
        rc = dm_fail(err, errlen, DM_E_INVALID, "DUMONT_S3_REGION must be like us-east-1");
    if (rc == 0 && !ep) {
        snprintf(s->c.scheme, sizeof s->c.scheme, "https");
        snprintf(s->c.hostport, sizeof s->c.hostport, "s3.%s.amazonaws.com", s->c.region);
    }
    s->storage = storage_name(s->c.hostport, from_b2);
    const char *addr = env("DUMONT_S3_ADDRESSING");
    s->c.virtual_host = !ep;
    if (rc == 0 && addr) {
        if (strcmp(addr, "path") == 0 || strcmp(addr, "virtual") == 0)
            s->c.virtual_host = addr[0] == 'v';
        else
            rc = dm_fail(err, errlen, DM_E_INVALID, "DUMONT_S3_ADDRESSING must be path or virtual");
    }
    const char *ca = env("DUMONT_S3_CA_FILE");
    if (rc == 0 && ca)
        rc = copy_setting(s->c.ca_file, sizeof s->c.ca_file, ca, "DUMONT_S3_CA_FILE", err, errlen);
    int64_t part, thr, conc, tries;
    if (rc == 0)
        rc = env_num("DUMONT_S3_PART_SIZE", 5 * (int64_t)MIB, 5120 * (int64_t)MIB, 16 * MIB, &part,
                     err, errlen);
    if (rc == 0)
        rc = env_num("DUMONT_S3_MULTIPART_THRESHOLD", 5 * (int64_t)MIB, INT64_MAX / 2, 32 * MIB,
                     &thr, err, errlen);
    if (rc == 0)
        rc = env_num("DUMONT_S3_CONCURRENCY", 1, 64, 8, &conc, err, errlen);
    if (rc == 0)
        rc = env_num("DUMONT_S3_TRIES", 1, 20, 6, &tries, err, errlen);
    if (rc)
        return rc;
    s->part_size = (size_t)part;
    s->threshold = (size_t)thr;
    s->concurrency = (int)conc;
    s->c.tries = (int)tries;
    return load_credentials(s, err, errlen);
}

int store_s3_open(const char *rest, const store_ops **ret_ops, void **ret_st, char *display,
                  size_t displaylen, char *err, size_t errlen)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) /* thread-safe since 7.84 */
        return dm_fail(err, errlen, DM_E_INTERNAL, "s3: libcurl did not initialise");
    s3store *s = calloc(1, sizeof *s);
    if (!s)
        return dm_fail(err, errlen, -ENOMEM, "s3: out of memory");
    int rc = parse_bucket(s, rest, err, errlen);
    if (rc == 0)
        rc = load_settings(s, err, errlen);
    if (rc) {
        OPENSSL_cleanse(s, sizeof *s);
        free(s);
        return rc;
    }
    s3_conn_init(&s->c);
    pthread_mutex_init(&s->cmu, NULL);
    pthread_cond_init(&s->ccv, NULL);
    pthread_cond_init(&s->pfcv, NULL);
    /* STORE-S2: bucket, prefix and endpoint only */
    snprintf(display, displaylen, "s3://%s%s%s (%s://%s)", s->c.bucket, s->c.prefix[0] ? "/" : "",
             s->c.prefix, s->c.scheme, s->c.hostport);
    *ret_ops = &s3_ops;
    *ret_st = s;
    return 0;
}
