/* Readiness probes of the agent's workload:
 *
 *   http:URL            GET URL answers 2xx (5 s timeout)
 *   exec:CMD            CMD (split into words, no shell) exits 0 within 10 s
 *   ollama:MODEL[@URL]  POST URL/api/generate {"model": MODEL, "prompt": ...,
 *                       "stream": false} answers 2xx with a non-empty
 *                       "response"; URL defaults to http://127.0.0.1:11434.
 *                       The first call may take 120 s (the model loads), the
 *                       next ones 30 s.
 *
 * AG-P1: a probe runs on its own thread; the heartbeat loop only reads the last
 *     result (prb_state), so a hung workload never delays a heartbeat.
 * AG-P2: every answer read is capped at PRB_BODY_MAX bytes; a longer one fails
 *     the probe. */
#ifndef DUMONT_AGENT_PROBE_H
#define DUMONT_AGENT_PROBE_H

#include "detect/heartbeat.h"

#include <stddef.h>
#include <stdint.h>

#define PRB_BODY_MAX (256 * 1024)

typedef struct prb_runner prb_runner;

/* Checks spec; DM_E_INVALID with err set when it is not one of the forms. */
int prb_check_spec(const char *spec, char *err, size_t errlen);
/* Starts the probe thread, probing every every_ms. */
int prb_start(const char *spec, int64_t every_ms, prb_runner **ret, char *err, size_t errlen);
hb_probe prb_state(prb_runner *p); /* HB_PR_NONE for NULL */
void prb_stop(prb_runner *p);      /* NULL is fine */
/* ollama:MODEL without @URL takes its address from ollama_host (Ollama's
 * own OLLAMA_HOST: "host", "host:port" or "http://host:port"; the caller
 * reads the environment) before the 11434 default: writes the spec to use
 * into out. Other specs are copied as they are. DM_E_INVALID / DM_E_TOO_BIG. */
int prb_spec_resolve(const char *spec, const char *ollama_host, char *out, size_t outlen);
/* One probe, synchronously (tests). first: the first call's longer timeout. */
hb_probe prb_run_once(const char *spec, int first);

#endif
