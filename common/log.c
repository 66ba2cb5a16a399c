/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-journal.h>

#include "log.h"

static int max_level = LOG_INFO;
static int use_journal = -1;

void log_set_max_level(int level) {
        max_level = level;
}

/* Also to the journal when stderr is a terminal: a command whose outcome
 * belongs in the journal whoever runs it (regvisor gc). */
static bool tee_journal;

void log_set_tee_journal(bool on) {
        tee_journal = on;
}

/* systemd sets JOURNAL_STREAM=dev:ino for the stderr it connected to the
 * journal; only when our stderr is still that stream do we log natively. */
static int stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return 0;
        if (fstat(STDERR_FILENO, &st) < 0)
                return 0;
        return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

static int log_va(int level, int error, const char *event, const char *unit, const char *fmt, va_list ap) {
        char msg[2048];
        int saved = errno;

        if (error < 0)
                error = -error;

        if (level <= max_level) {
                errno = error;
                (void) vsnprintf(msg, sizeof msg, fmt, ap);

                if (use_journal < 0)
                        use_journal = stderr_is_journal();

                if (use_journal && unit)
                        (void) sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%i", level, "REGVISOR_EVENT=%s",
                                               event ? event : "log", "UNIT=%s", unit,
                                               "SYSLOG_IDENTIFIER=regvisor", NULL);
                else if (use_journal)
                        (void) sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%i", level, "REGVISOR_EVENT=%s",
                                               event ? event : "log", "SYSLOG_IDENTIFIER=regvisor", NULL);
                else {
                        fprintf(stderr, "regvisor: %s\n", msg);
                        if (tee_journal)
                                (void) sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%i", level,
                                                       "REGVISOR_EVENT=%s", event ? event : "log",
                                                       "SYSLOG_IDENTIFIER=regvisor", NULL);
                }
        }

        errno = saved;
        return error > 0 ? -error : -EIO;
}

int log_unit_internal(int level, int error, const char *event, const char *unit, const char *fmt, ...) {
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = log_va(level, error, event, unit, fmt, ap);
        va_end(ap);
        return r;
}

static bool plain_byte(unsigned char ch) {
        return ch > ' ' && ch < 0x7f && ch != '"' && ch != '\\';
}

const char *log_escape_value(const char *s, size_t n, char *buf, size_t size) {
        static const char hex[] = "0123456789abcdef";
        bool quote = false;
        size_t o = 0;

        assert(size > 0);
        if (!s || n == 0) {
                (void) snprintf(buf, size, "-");
                return buf;
        }
        for (size_t i = 0; i < n && !quote; i++)
                quote = !plain_byte((unsigned char) s[i]);
        if (!quote) {
                (void) snprintf(buf, size, "%.*s", (int) (n < size - 1 ? n : size - 1), s);
                return buf;
        }
        /* The shortest useful quoted value: "..." with its quotes. */
        if (size < 6) {
                (void) snprintf(buf, size, "-");
                return buf;
        }
        buf[o++] = '"';
        for (size_t i = 0; i < n; i++) {
                unsigned char ch = (unsigned char) s[i];
                char e[4];
                size_t k;

                if (plain_byte(ch) || ch == ' ') {
                        e[0] = (char) ch;
                        k = 1;
                } else if (ch == '"' || ch == '\\') {
                        e[0] = '\\';
                        e[1] = (char) ch;
                        k = 2;
                } else {
                        e[0] = '\\';
                        e[1] = 'x';
                        e[2] = hex[ch >> 4];
                        e[3] = hex[ch & 15];
                        k = 4;
                }
                /* Keep room for "...", the closing quote and the NUL. */
                if (o + k + 5 > size) {
                        memcpy(buf + o, "...", 3);
                        o += 3;
                        break;
                }
                memcpy(buf + o, e, k);
                o += k;
        }
        buf[o++] = '"';
        buf[o] = 0;
        return buf;
}

const char *log_escape(const char *s, char *buf, size_t size) {
        return log_escape_value(s, s ? strlen(s) : 0, buf, size);
}
