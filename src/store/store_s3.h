/* The s3:// store back end (store_s3.c). Only store.c calls it. */
#ifndef DUMONT_STORE_STORE_S3_H
#define DUMONT_STORE_STORE_S3_H

#include "store/store.h"

#include <stddef.h>

/* Opens "bucket[/prefix]" (the URL after "s3://") with the settings of the
 * environment (store_s3.c, "Settings"). On success *ret_ops and *ret_st are
 * the vtable and its state (freed by ops->close), and display holds the
 * URL for messages, without secrets (S2). Nothing is sent to the server. */
int store_s3_open(const char *rest, const store_ops **ret_ops, void **ret_st, char *display,
                  size_t displaylen, char *err, size_t errlen);

#endif
