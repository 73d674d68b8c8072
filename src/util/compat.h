/* Older systems the portable agent build supports (docs/deploy.md "The
 * portable agent"): it is built on Debian 11 (glibc 2.31, libcurl 7.74), so
 * that it runs on every Ubuntu 20.04+ / Debian 11+ machine. What those lack
 * is written once here, with the newer call used where it exists.
 *
 * COMPAT-C1: compat_http_only() limits a curl handle to http and https, as
 *      CURLOPT_PROTOCOLS_STR does on libcurl 7.85+ (the bitmask form before).
 * COMPAT-C2: compat_close_from(fd) closes every descriptor >= fd; it is
 *      async-signal-safe (it runs between fork and execve): the close_range
 *      system call, or, on a kernel without it (before 5.9), close() of each
 *      descriptor below the soft limit. */
#ifndef DUMONT_UTIL_COMPAT_H
#define DUMONT_UTIL_COMPAT_H

#include <curl/curl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

static inline CURLcode compat_http_only(CURL *c)
{
#if LIBCURL_VERSION_NUM >= 0x075500
    return curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    return curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
}

static inline void compat_close_from(int fd)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, (unsigned)fd, ~0U, 0U) == 0)
        return;
#endif
    struct rlimit rl;
    long max =
        getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? (long)rl.rlim_cur : 65536;
    for (long i = fd; i < max; i++)
        close((int)i);
}

#endif
