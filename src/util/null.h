/* The project's "no value" for optional integers (durations, times, ids,
 * flags that may be unknown): DM_NULL, mapped to SQL NULL by the database
 * and to JSON null by the API. No valid value of such a field is negative,
 * so -1 cannot be mistaken for one. */
#ifndef DUMONT_UTIL_NULL_H
#define DUMONT_UTIL_NULL_H

#define DM_NULL (-1)

#endif
