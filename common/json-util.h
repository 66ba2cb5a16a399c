/* SPDX-License-Identifier: MIT */
#pragma once

/* The _cleanup_ helper for json-c objects, for every folder that builds or
 * reads JSON (policy.json, signature payloads). */

#include <json-c/json.h>

static inline void json_putp(json_object **o) {
        if (*o)
                json_object_put(*o);
}
#define _cleanup_json_ _cleanup_(json_putp)

static inline void json_tokener_freep(json_tokener **t) {
        if (*t)
                json_tokener_free(*t);
}
