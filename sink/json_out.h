/* SPDX-License-Identifier: MIT */
/* Text encodings shared by the printers and exporters (sink/print.c,
 * export_har.c, export_mitm.c): UTF-8 validation, JSON string escaping and
 * base64. */
#ifndef RC_SINK_JSON_OUT_H
#define RC_SINK_JSON_OUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/rc_err.h"

/* Length of the well-formed UTF-8 sequence at p[0..n), 0 if there is none
 * (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF). n > 0. */
size_t json_utf8_len(const unsigned char *p, size_t n) NONNULL(1);

/* The inside of a JSON string for s[0..n): well-formed UTF-8 as is, '"'
 * and '\\' escaped, \n \r \t, and every other control byte, DEL and byte
 * that is not part of valid UTF-8 as \u00XX (lossy for the latter: the
 * byte 0xE9 and U+00E9 print alike; FLOWLOG.md says so). */
void json_escape(FILE *out, const void *s, size_t n) NONNULL(1);

/* Standard base64 (RFC 4648, with padding) of p[0..n), no quotes. */
void json_base64(FILE *out, const uint8_t *p, size_t n) NONNULL(1);

#endif
