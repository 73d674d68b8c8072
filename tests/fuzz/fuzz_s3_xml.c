#define _GNU_SOURCE /* memmem */
/* libFuzzer target: the s3:// store's reading of untrusted answers
 * (store_s3.c S3-8): s3_xml_text over every tag the back end reads, walking
 * <Contents> elements as ListObjectsV2 does, and s3_parse_u64n.
 * Checked: no crash, no sanitizer report, every output NUL-terminated within
 * its buffer, and a tag's text never longer than the input. */
#include "store/s3_http.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *xml = malloc(size + 1);
    if (!xml)
        return 0;
    memcpy(xml, data, size);
    xml[size] = '\0';
    const char *end = xml + size;
    static const char *const tags[] = {
        "Code", "Message", "UploadId", "Key", "Size", "IsTruncated", "NextContinuationToken"};
    char out[300];
    for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++) {
        const char *after = NULL;
        if (s3_xml_text(xml, end, tags[i], out, sizeof out, &after) == 0) {
            if (strlen(out) >= sizeof out || strlen(out) > size || after > end)
                abort();
        }
    }
    const char *p = xml; /* the <Contents> walk of list_page */
    for (int n = 0; n < 10000; n++) {
        const char *a = memmem(p, (size_t)(end - p), "<Contents>", 10);
        const char *b = a ? memmem(a, (size_t)(end - a), "</Contents>", 11) : NULL;
        if (!a || !b)
            break;
        uint64_t v;
        if (s3_xml_text(a, b, "Size", out, sizeof out, NULL) == 0)
            (void)s3_parse_u64n(out, strlen(out), &v);
        p = b + 11;
    }
    uint64_t v;
    (void)s3_parse_u64n(xml, size, &v);
    free(xml);
    return 0;
}
