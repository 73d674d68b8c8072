/* The mirror store (store_mirror.c): a primary back end and a mirror behind
 * one vtable (DUMONT_STORE_MIRROR). Only store.c calls it. */
#ifndef DUMONT_STORE_STORE_MIRROR_H
#define DUMONT_STORE_STORE_MIRROR_H

#include "store/store.h"

#include <stddef.h>

/* Wraps the two opened back ends (ownership of both passes to the mirror:
 * its close closes them). mirror_url is the mirror's display URL, for
 * messages. On failure nothing is taken: the caller still owns both. */
int store_mirror_wrap(const store_ops *p_ops, void *p_st, const store_ops *m_ops, void *m_st,
                      const char *mirror_url, const store_ops **ret_ops, void **ret_st, char *err,
                      size_t errlen);

#endif
