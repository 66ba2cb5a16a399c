/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json-util.h"
#include "macro.h"
#include "sigjson.h"

/* The values containers/image checks: extensionSignatureSchemaVersion and
 * extensionSignatureTypeAtomic (docker/docker_client.go). */
#define SCHEMA_VERSION 2
#define TYPE_ATOMIC "atomic"

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_value(char c) {
        const char *p = c ? strchr(b64_alphabet, c) : NULL;
        return p ? (int) (p - b64_alphabet) : -1;
}

long sigjson_base64_decode(const char *in, size_t len, uint8_t *out, size_t max) {
        size_t o = 0;

        if (len % 4 != 0)
                return -EBADMSG;
        for (size_t i = 0; i < len; i += 4) {
                bool last = i + 4 == len;
                int v[4];
                size_t pad = 0, nbytes;
                uint32_t w;

                for (size_t k = 0; k < 4; k++) {
                        if (last && k >= 2 && in[i + k] == '=' && (k == 3 || in[i + 3] == '=')) {
                                v[k] = 0;
                                pad++;
                                continue;
                        }
                        v[k] = b64_value(in[i + k]);
                        if (v[k] < 0)
                                return -EBADMSG;
                }
                /* Canonical only: the bits padding leaves over must be zero. */
                if ((pad == 2 && (v[1] & 0xf)) || (pad == 1 && (v[2] & 0x3)))
                        return -EBADMSG;

                w = (uint32_t) v[0] << 18 | (uint32_t) v[1] << 12 | (uint32_t) v[2] << 6 | (uint32_t) v[3];
                nbytes = 3 - pad;
                if (o + nbytes > max)
                        return -EFBIG;
                out[o++] = (uint8_t) (w >> 16);
                if (nbytes > 1)
                        out[o++] = (uint8_t) (w >> 8);
                if (nbytes > 2)
                        out[o++] = (uint8_t) w;
        }
        return (long) o;
}

size_t sigjson_base64_encode(const uint8_t *in, size_t len, char *out) {
        size_t o = 0;

        for (size_t i = 0; i < len; i += 3) {
                uint32_t w = (uint32_t) in[i] << 16;
                size_t n = len - i < 3 ? len - i : 3;

                if (n > 1)
                        w |= (uint32_t) in[i + 1] << 8;
                if (n > 2)
                        w |= in[i + 2];
                out[o++] = b64_alphabet[(w >> 18) & 63];
                out[o++] = b64_alphabet[(w >> 12) & 63];
                out[o++] = n > 1 ? b64_alphabet[(w >> 6) & 63] : '=';
                out[o++] = n > 2 ? b64_alphabet[w & 63] : '=';
        }
        out[o] = '\0';
        return o;
}

void sig_entries_free(SigEntry *e, size_t n) {
        if (!e)
                return;
        for (size_t i = 0; i < n; i++)
                free(e[i].content);
        free(e);
}

static void json_object_putp(json_object **o) {
        if (*o)
                (void) json_object_put(*o);
}

#define FAIL(r, why)                                                                              \
        do {                                                                                      \
                if (ret_why)                                                                      \
                        *ret_why = (why);                                                         \
                return (r);                                                                       \
        } while (0)

int sigjson_parse_put(const char *body, size_t len, const char *digest, size_t digest_len,
                      SigEntry *ret, const char **ret_why) {
        _cleanup_(json_tokener_freep) json_tokener *tok = NULL;
        _cleanup_(json_object_putp) json_object *o = NULL;
        _cleanup_free_ uint8_t *content = NULL;
        json_object *version, *name, *type, *b64;
        const char *s;
        size_t n, keys = 0;
        long decoded;

        if (len > SIGSTORE_MAX_BODY)
                FAIL(-EFBIG, "the body is too large");
        /* Depth 2: the object and its scalar values; nothing deeper is valid. */
        tok = json_tokener_new_ex(2);
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        o = json_tokener_parse_ex(tok, body, (int) len);
        if (!o || json_tokener_get_error(tok) != json_tokener_success)
                FAIL(-EBADMSG, "the body is not one complete JSON value");
        for (size_t i = json_tokener_get_parse_end(tok); i < len; i++)
                if (!strchr(" \t\r\n", body[i]) || !body[i])
                        FAIL(-EBADMSG, "the body has bytes after the JSON object");
        if (!json_object_is_type(o, json_type_object))
                FAIL(-EBADMSG, "the body is not a JSON object");

        json_object_object_foreach(o, key, val) {
                (void) key;
                (void) val;
                keys++;
        }
        if (!json_object_object_get_ex(o, "schemaVersion", &version) ||
            !json_object_object_get_ex(o, "name", &name) || !json_object_object_get_ex(o, "type", &type) ||
            !json_object_object_get_ex(o, "content", &b64) || keys != 4)
                FAIL(-EBADMSG, "the object must have exactly schemaVersion, name, type and content");

        if (!json_object_is_type(version, json_type_int) || json_object_get_int64(version) != SCHEMA_VERSION)
                FAIL(-EBADMSG, "schemaVersion must be 2");
        if (!json_object_is_type(type, json_type_string) || !streq(json_object_get_string(type), TYPE_ATOMIC) ||
            json_object_get_string_len(type) != strlen(TYPE_ATOMIC))
                FAIL(-EBADMSG, "type must be \"atomic\"");

        if (!json_object_is_type(name, json_type_string))
                FAIL(-EBADMSG, "name must be a string");
        s = json_object_get_string(name);
        n = (size_t) json_object_get_string_len(name);
        if (n <= digest_len + 1 || memcmp(s, digest, digest_len) != 0 || s[digest_len] != '@')
                FAIL(-EBADMSG, "name must be the digest of the path, \"@\" and a unique part");
        if (!sigcheck_suffix(s + digest_len + 1, n - digest_len - 1))
                FAIL(-EBADMSG, "the unique part of name must be 1-128 of [A-Za-z0-9_.-], not starting with \".\"");

        if (!json_object_is_type(b64, json_type_string) || json_object_get_string_len(b64) == 0)
                FAIL(-EBADMSG, "content must be a non-empty base64 string");
        content = malloc(SIGSTORE_MAX_SIGNATURE);
        if (!content)
                return -ENOMEM;
        decoded = sigjson_base64_decode(json_object_get_string(b64), (size_t) json_object_get_string_len(b64),
                                        content, SIGSTORE_MAX_SIGNATURE);
        if (decoded == -EFBIG)
                FAIL(-EFBIG, "the signature is larger than 64 KiB");
        if (decoded <= 0)
                FAIL(-EBADMSG, "content is not padded standard base64");

        memcpy(ret->suffix, s + digest_len + 1, n - digest_len - 1);
        ret->suffix[n - digest_len - 1] = '\0';
        ret->content = TAKE_PTR(content);
        ret->content_len = (size_t) decoded;
        return 0;
}

/* Appends a JSON string (quoted, escaped by json-c) to a printbuf. */
static int append_json_string(struct printbuf *pb, const char *s, size_t n) {
        _cleanup_(json_object_putp) json_object *js = json_object_new_string_len(s, (int) n);
        const char *text;

        if (!js)
                return -ENOMEM;
        text = json_object_to_json_string_ext(js, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!text || printbuf_memappend(pb, text, (int) strlen(text)) < 0)
                return -ENOMEM;
        return 0;
}

static void printbuf_freep(struct printbuf **pb) {
        if (*pb)
                printbuf_free(*pb);
}

/* Takes the printbuf's text as a malloc'd string. */
static int printbuf_take(struct printbuf *pb, char **ret_json, size_t *ret_len) {
        char *copy = malloc((size_t) pb->bpos + 1);

        if (!copy)
                return -ENOMEM;
        memcpy(copy, pb->buf, (size_t) pb->bpos);
        copy[pb->bpos] = '\0';
        *ret_json = copy;
        if (ret_len)
                *ret_len = (size_t) pb->bpos;
        return 0;
}

int sigjson_list(const SigEntry *entries, size_t n, const char *digest, size_t digest_len,
                 char **ret_json, size_t *ret_len) {
        _cleanup_(printbuf_freep) struct printbuf *pb = printbuf_new();
        _cleanup_free_ char *b64 = NULL;
        size_t b64_size = 4 * ((SIGSTORE_MAX_SIGNATURE + 2) / 3) + 1;
        char name[SIGSTORE_DIGEST_LEN + 1 + SIGSTORE_SUFFIX_MAX + 1];

        if (!pb)
                return -ENOMEM;
        b64 = malloc(b64_size);
        if (!b64)
                return -ENOMEM;
        if (sprintbuf(pb, "{\"signatures\":[") < 0)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                size_t name_len;

                assert(entries[i].content_len <= SIGSTORE_MAX_SIGNATURE && digest_len <= SIGSTORE_DIGEST_LEN);
                name_len = (size_t) snprintf(name, sizeof(name), "%.*s@%s", (int) digest_len, digest,
                                             entries[i].suffix);
                (void) sigjson_base64_encode(entries[i].content, entries[i].content_len, b64);
                if (sprintbuf(pb, "%s{\"schemaVersion\":%d,\"name\":", i ? "," : "", SCHEMA_VERSION) < 0 ||
                    append_json_string(pb, name, name_len) < 0 ||
                    sprintbuf(pb, ",\"type\":\"" TYPE_ATOMIC "\",\"content\":\"%s\"}", b64) < 0)
                        return -ENOMEM;
        }
        if (sprintbuf(pb, "]}") < 0)
                return -ENOMEM;
        return printbuf_take(pb, ret_json, ret_len);
}

int sigjson_error(const char *code, const char *message, char **ret_json, size_t *ret_len) {
        _cleanup_(printbuf_freep) struct printbuf *pb = printbuf_new();

        if (!pb)
                return -ENOMEM;
        if (sprintbuf(pb, "{\"errors\":[{\"code\":") < 0 || append_json_string(pb, code, strlen(code)) < 0 ||
            sprintbuf(pb, ",\"message\":") < 0 || append_json_string(pb, message, strlen(message)) < 0 ||
            sprintbuf(pb, "}]}") < 0)
                return -ENOMEM;
        return printbuf_take(pb, ret_json, ret_len);
}
