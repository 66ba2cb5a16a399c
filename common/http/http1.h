/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A strict HTTP/1.1 message parser (RFC 9110, RFC 9112) for the TLS proxy.
 *
 * In picohttpparser's shape, written here: every function is a pure function
 * over a caller's buffer. Nothing is allocated, nothing is logged, nothing is
 * copied: method, target, header names and values are (pointer, length) pairs
 * into the caller's buffer, which must outlive them. The caller owns the
 * header array and says how big it is; the head size limit is checked inside.
 *
 * The head parsers are stateless: call them again with the same buffer, grown
 * by whatever was read since, until they return something other than -2.
 * Scanning is linear and every decision depends only on the bytes before it,
 * so an error found in a prefix is the same error in any longer input, and a
 * head parsed from a prefix parses identically from any longer input (the
 * fuzzer checks both).
 *
 * Strictness is the point: the proxy sits in front of the Distribution
 * registry (Go net/http) and anything the two could read differently is a
 * request-smuggling or policy-bypass vector. So where RFC 9112 lets a server
 * choose between leniency and rejection, we reject, and the connection is
 * closed after the error response. Registry clients (docker, containerd,
 * podman, skopeo, crane: all Go or curl) never send any of what is refused.
 *
 * Refused in a request head (error code in parentheses):
 *  - more than HTTP1_MAX_HEAD bytes without a complete head (HEAD_TOO_LARGE),
 *    more header fields than the caller's array holds (TOO_MANY_HEADERS);
 *  - an empty line before the request-line (LEADING_EMPTY_LINE): RFC 9112
 *    §2.2 says a server SHOULD ignore at least one; no registry client sends
 *    one, and refusing keeps "where does this request start" unambiguous;
 *  - any line ending other than CRLF (BARE_LF, BARE_CR);
 *  - a request-line other than exactly token SP origin-form SP HTTP/1.x CRLF:
 *    empty or non-token method (METHOD), doubled or other whitespace
 *    (REQUEST_LINE), absolute-, authority- or asterisk-form targets
 *    (TARGET_FORM), target bytes outside 0x21-0x7e (TARGET_CHAR), no version,
 *    i.e. HTTP/0.9 (HTTP09), the HTTP/2 connection preface (HTTP2_PREFACE),
 *    any version but HTTP/1.0 and HTTP/1.1, case-sensitively (VERSION);
 *  - obs-fold and whitespace before the first header line (OBS_FOLD);
 *  - a field name that is empty or not a token, e.g. control or non-ASCII
 *    bytes (HEADER_NAME), whitespace before the colon (SPACE_BEFORE_COLON),
 *    a line without a colon (NO_COLON);
 *  - a field value with a control byte other than HTAB, or with obs-text
 *    (0x80-0xff) (HEADER_VALUE);
 *  - Host: missing in HTTP/1.1 (HOST_MISSING), more than one (HOST_DUPLICATE),
 *    empty or with bytes outside RFC 3986 reg-name/IP-literal/port
 *    (HOST_INVALID);
 *  - Content-Length: anything but 1*DIGIT without leading zeros, e.g. "+5",
 *    "0x5", "5, 5", "" (CONTENT_LENGTH_INVALID); a second Content-Length
 *    field even with the same value (CONTENT_LENGTH_DUPLICATE); more than
 *    HTTP1_MAX_CONTENT_LENGTH (CONTENT_LENGTH_TOO_LARGE);
 *  - Transfer-Encoding: any value but exactly "chunked" (case-insensitive),
 *    which includes lists such as "chunked, chunked" and "gzip, chunked"
 *    (TRANSFER_ENCODING); a second field (TRANSFER_ENCODING_DUPLICATE); any
 *    Transfer-Encoding in HTTP/1.0 (TRANSFER_ENCODING_HTTP10); together with
 *    Content-Length (CONTENT_LENGTH_AND_TRANSFER_ENCODING);
 *  - Connection: a list element that is not a token, or that nominates
 *    Host, Content-Length or Transfer-Encoding as hop-by-hop (CONNECTION: a
 *    proxy that removes nominated fields would otherwise drop the framing);
 *  - Expect: anything but "100-continue" (EXPECT);
 *  - Upgrade or HTTP2-Settings: we do no protocol upgrades, h2c included
 *    (UPGRADE).
 *
 * Bodies: a request's framing is decided in the same call (Http1Request.body,
 * .content_length, .keep_alive, .expect_continue). A chunked body is decoded
 * by the incremental Http1Chunked state machine below, which hands out runs of
 * data bytes without buffering the body. Forwarding a chunked body can then be
 * done either way:
 *   - as is: the bytes consumed by http1_chunked_feed() are validated wire
 *     bytes and may be written to the upstream verbatim, or
 *   - re-framed (what we recommend): write each data run as its own chunk
 *     (http1_chunk_header() + data + "\r\n") and "0\r\n\r\n" once
 *     http1_chunked_done(), so that the upstream only ever sees canonical
 *     framing: no extensions, no trailers, no leading zeros in sizes.
 *
 * Responses from the registry are parsed by the same rules (the registry is
 * trusted but not believed): what Go's net/http emits is accepted, including
 * a status line without reason phrase.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Largest request or response head (request-line/status-line, header fields
 * and the final empty line) we accept. Registry requests are ~1 KiB; docker
 * with a long bearer token stays well under 8 KiB. */
#define HTTP1_MAX_HEAD (16 * 1024)

/* A good size for the caller's header array. */
#define HTTP1_MAX_HEADERS 64

/* Largest Content-Length accepted: 2^62, so that sums never overflow. */
#define HTTP1_MAX_CONTENT_LENGTH (UINT64_C(1) << 62)

/* Chunk sizes have at most this many hex digits (leading zeros included),
 * the same limit as Go's net/http. */
#define HTTP1_CHUNK_SIZE_MAX_DIGITS 16

/* Chunk extensions (";name=value..." after a chunk size) are accepted, not
 * interpreted, and dropped when re-framing; at most this many bytes each
 * chunk-size line. */
#define HTTP1_CHUNK_EXT_MAX 256

/* The trailer section of a chunked body (every trailer field and the final
 * empty line) is at most this many bytes. */
#define HTTP1_MAX_TRAILER 4096

/* Buffer size for http1_chunk_header(): 16 hex digits, CRLF, NUL. */
#define HTTP1_CHUNK_HEADER_MAX 19

typedef enum Http1Error {
        HTTP1_OK = 0,
        HTTP1_ERR_HEAD_TOO_LARGE,
        HTTP1_ERR_TOO_MANY_HEADERS,
        HTTP1_ERR_LEADING_EMPTY_LINE,
        HTTP1_ERR_BARE_LF,
        HTTP1_ERR_BARE_CR,
        HTTP1_ERR_METHOD,
        HTTP1_ERR_REQUEST_LINE,
        HTTP1_ERR_TARGET_FORM,
        HTTP1_ERR_TARGET_CHAR,
        HTTP1_ERR_HTTP09,
        HTTP1_ERR_HTTP2_PREFACE,
        HTTP1_ERR_VERSION,
        HTTP1_ERR_OBS_FOLD,
        HTTP1_ERR_HEADER_NAME,
        HTTP1_ERR_SPACE_BEFORE_COLON,
        HTTP1_ERR_NO_COLON,
        HTTP1_ERR_HEADER_VALUE,
        HTTP1_ERR_HOST_MISSING,
        HTTP1_ERR_HOST_DUPLICATE,
        HTTP1_ERR_HOST_INVALID,
        HTTP1_ERR_CONTENT_LENGTH_INVALID,
        HTTP1_ERR_CONTENT_LENGTH_DUPLICATE,
        HTTP1_ERR_CONTENT_LENGTH_TOO_LARGE,
        HTTP1_ERR_TRANSFER_ENCODING,
        HTTP1_ERR_TRANSFER_ENCODING_DUPLICATE,
        HTTP1_ERR_TRANSFER_ENCODING_HTTP10,
        HTTP1_ERR_CONTENT_LENGTH_AND_TRANSFER_ENCODING,
        HTTP1_ERR_CONNECTION,
        HTTP1_ERR_EXPECT,
        HTTP1_ERR_UPGRADE,
        HTTP1_ERR_STATUS_LINE,
        HTTP1_ERR_STATUS_CODE,
        HTTP1_ERR_CHUNK_SIZE,
        HTTP1_ERR_CHUNK_SIZE_TOO_LARGE,
        HTTP1_ERR_CHUNK_EXTENSION,
        HTTP1_ERR_CHUNK_DATA_CRLF,
        HTTP1_ERR_TRAILER_TOO_LARGE,
        _HTTP1_ERR_MAX,
} Http1Error;

typedef enum Http1BodyKind {
        HTTP1_BODY_NONE,        /* no body at all */
        HTTP1_BODY_LENGTH,      /* exactly content_length bytes (may be 0) */
        HTTP1_BODY_CHUNKED,     /* Transfer-Encoding: chunked, see Http1Chunked */
        HTTP1_BODY_UNTIL_CLOSE, /* responses only: everything until EOF */
} Http1BodyKind;

/* One header field; both point into the parsed buffer. The value has its
 * leading and trailing whitespace removed and may be empty. */
typedef struct Http1Header {
        const char *name;
        size_t name_len;
        const char *value;
        size_t value_len;
} Http1Header;

typedef struct Http1Request {
        const char *method; /* a token, case-sensitive: "GET" */
        size_t method_len;
        const char *target; /* origin-form: "/" followed by bytes 0x21-0x7e */
        size_t target_len;
        int minor_version; /* 0 or 1 */
        size_t n_headers;  /* entries filled in the caller's header array */

        /* Semantics, decided from the header fields. */
        const char *host; /* NULL when absent (HTTP/1.0 only) */
        size_t host_len;
        Http1BodyKind body;      /* NONE, LENGTH or CHUNKED */
        uint64_t content_length; /* for HTTP1_BODY_LENGTH */
        bool keep_alive;         /* the connection may carry another request */
        bool expect_continue;    /* HTTP/1.1 and Expect: 100-continue */

        Http1Error error; /* set when a parse function returned -1 */
} Http1Request;

typedef struct Http1Response {
        int minor_version;  /* 0 or 1 */
        int status;         /* 100-599 */
        const char *reason; /* may be empty */
        size_t reason_len;
        size_t n_headers;

        Http1BodyKind body;
        uint64_t content_length; /* for HTTP1_BODY_LENGTH; as sent for HEAD/304 */
        bool keep_alive;

        Http1Error error;
} Http1Response;

/* Incremental decoder for a chunked body: a state machine the caller feeds
 * whatever it has read. Initialise with http1_chunked_init(); no resources. */
typedef struct Http1Chunked {
        unsigned state;
        unsigned count;     /* size digits or extension bytes on this line */
        uint64_t remaining; /* chunk size being read, then data bytes left */
        size_t trailer_len; /* bytes of the trailer section so far */
        uint64_t body_len;  /* data bytes decoded so far, for size limits */
        Http1Error error;
} Http1Chunked;

/* Parses a request head at the start of buf[0..len).
 *
 * headers is the caller's array of max_headers entries; it is filled as the
 * parse goes and meaningful only on success. Returns:
 *   > 0 bytes consumed: the whole head including the final CRLF CRLF; *req
 *       is filled (pointers into buf) and the head is syntactically and
 *       semantically valid. Body bytes, if any, start at buf + return value.
 *   -2  the head is incomplete and valid so far: read more and call again
 *       with the whole buffer. *req is untouched.
 *   -1  the request is invalid: only req->error is set. Answer with
 *       http1_error_status(req->error) and close the connection.
 * Only the first HTTP1_MAX_HEAD bytes are looked at; when len exceeds that
 * without a complete head, the result is -1 with HTTP1_ERR_HEAD_TOO_LARGE.
 * So the read buffer must be able to hold more than HTTP1_MAX_HEAD bytes, or
 * the caller must itself treat -2 with HTTP1_MAX_HEAD bytes buffered as too
 * large. */
int http1_parse_request(const char *buf, size_t len, Http1Request *req, Http1Header *headers,
                        size_t max_headers);

/* Parses a response head from the upstream at the start of buf[0..len), same
 * contract as http1_parse_request(). head_request tells whether the request
 * was HEAD: then, as for 1xx, 204 and 304, the body is HTTP1_BODY_NONE
 * whatever Content-Length says. 101 (we never ask for an upgrade) is an
 * error. Without Content-Length or Transfer-Encoding the body runs until the
 * upstream closes (HTTP1_BODY_UNTIL_CLOSE, keep_alive false). A 1xx response
 * (100 Continue) is followed by the final response: parse again after it. */
int http1_parse_response(const char *buf, size_t len, bool head_request, Http1Response *resp,
                         Http1Header *headers, size_t max_headers);

/* Parses only the status-line at the start of buf[0..len), by the same rules
 * as the first line of http1_parse_response(): for a client that needs the
 * status code and nothing else (the supervisor's registry probe, `regvisor
 * health`), and decides as soon as the line is there. Returns the bytes
 * consumed through its CRLF and fills resp->minor_version, ->status,
 * ->reason; -2 when more input is needed; -1 with resp->error set, as soon
 * as a prefix is wrong ("SSH-2.0", a TLS alert). The rest of *resp is left
 * as it was. */
int http1_parse_status_line(const char *buf, size_t len, Http1Response *resp);

/* Prepares a decoder for a new chunked body. */
void http1_chunked_init(Http1Chunked *s);

/* Feeds in[0..len) to the decoder. Consumes framing bytes up to and including
 * at most one run of data bytes, and stops there so the caller can forward
 * the run: in[*ret_data_off .. *ret_data_off + *ret_data_len) (length 0 when
 * this call saw no data). Call again with the rest of the input.
 *
 * Returns the number of bytes consumed (> 0 whenever len > 0 and the body is
 * not complete), or -1 on a framing error (s->error; sticky: every later call
 * fails too). Bytes after the end of the body (the next request on the
 * connection) are never consumed: once http1_chunked_done() is true, feeding
 * returns 0. ret_data_off and ret_data_len are always set on success. */
ssize_t http1_chunked_feed(Http1Chunked *s, const char *in, size_t len, size_t *ret_data_off,
                           size_t *ret_data_len);

/* True once the last chunk, the trailer section and its final CRLF have been
 * consumed. */
bool http1_chunked_done(const Http1Chunked *s);

/* Writes the chunk-size line for a chunk of len bytes ("1a2b\r\n", lower-case
 * hex, NUL-terminated) to buf, for re-framing; returns its length without the
 * NUL. len must not be 0: the last chunk is the literal "0\r\n\r\n". */
size_t http1_chunk_header(char buf[static HTTP1_CHUNK_HEADER_MAX], uint64_t len);

/* True if the header field's name is name, compared ASCII case-insensitively
 * as field names are. */
bool http1_header_is(const Http1Header *h, const char *name);

/* A short English description of an Http1Error for logs ("bare LF"); never
 * NULL, "unknown error" for values out of range. */
const char *http1_error_string(int error);

/* The status to answer a request refused with this error: 431 for the size
 * limits, 417 for an unknown expectation, 505 for an HTTP version other than
 * 1.0 and 1.1, 400 for everything else (an unknown transfer coding included:
 * RFC 9112 suggests 501, but "chunked, chunked" and friends are smuggling
 * probes, not feature requests). Errors found in an upstream response are
 * the caller's 502. */
int http1_error_status(int error);
