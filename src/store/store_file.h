/* The file:// store back end (store_file.c). Only store.c calls it. */
#ifndef DUMONT_STORE_STORE_FILE_H
#define DUMONT_STORE_STORE_FILE_H

#include "store/store.h"

#include <stddef.h>

/* Opens (creating if missing) the store rooted at dir, an absolute or
 * relative directory path. On success *ret_ops and *ret_st are the vtable and
 * its state (freed by ops->close). */
int store_file_open(const char *dir, const store_ops **ret_ops, void **ret_st, char *err,
                    size_t errlen);

#endif
