/* SPDX-License-Identifier: MIT */
#include "reponame.h"

static bool is_lower_alnum(char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

size_t reponame_component_len(const char *s, size_t n) {
        size_t i = 0;

        for (;;) {
                size_t run = i;

                while (i < n && is_lower_alnum(s[i]))
                        i++;
                if (i == run)
                        return 0; /* empty run: leading, doubled or trailing separator */
                if (i == n || s[i] == '/')
                        return i;
                if (s[i] == '.')
                        i++;
                else if (s[i] == '_')
                        i += (i + 1 < n && s[i + 1] == '_') ? 2 : 1;
                else if (s[i] == '-')
                        while (i < n && s[i] == '-')
                                i++;
                else
                        return 0;
        }
}

bool reponame_valid(const char *s, size_t n) {
        size_t i = 0;

        if (n == 0 || n > REPONAME_MAX)
                return false;
        for (;;) {
                size_t c = reponame_component_len(s + i, n - i);

                if (c == 0)
                        return false;
                i += c;
                if (i == n)
                        return true;
                i++; /* the "/"; a trailing one leaves an empty component */
        }
}
