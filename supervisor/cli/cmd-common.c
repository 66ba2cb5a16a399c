/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "verbs.h"

int verb_load_config(const char *path, Config *ret) {
        _cleanup_free_ char *error = NULL;
        int r;

        r = config_init_defaults(ret);
        if (r < 0)
                return log_error_errno(r, "out of memory");
        r = config_load(ret, path, &error);
        if (r < 0)
                r = log_error_errno(r, "%s", error ? error : strerror(-r));
        if (r >= 0) {
                r = config_validate(ret, path, &error);
                if (r < 0)
                        log_error_errno(r, "%s", error ? error : strerror(-r));
        }
        if (r < 0)
                config_done(ret);
        return r;
}

bool argv_wants_help(int argc, char **argv) {
        for (int i = 0; i < argc; i++) {
                if (streq(argv[i], "--"))
                        return false;
                if (streq(argv[i], "--help"))
                        return true;
        }
        return false;
}

/* getopt_long's value for row i: its short name, or 0x100 + i. */
static int option_val(const VerbOption *o, size_t i) {
        return o->short_name ? o->short_name : 0x100 + (int) i;
}

static bool option_has_arg(const VerbOption *o) {
        return o->kind == OPTION_STRING || (o->kind == OPTION_CALL && o->has_arg);
}

/* The row getopt_long returned c for, or NULL. */
static const VerbOption *option_find(const VerbSyntax *v, int c) {
        for (size_t i = 0; i < v->n_options; i++)
                if (option_val(&v->options[i], i) == c)
                        return &v->options[i];
        return NULL;
}

int verb_parse_argv(const VerbSyntax *v, int argc, char **argv, int *ret_optind) {
        _cleanup_free_ struct option *longopts = calloc(v->n_options + 2, sizeof *longopts);
        /* "+", then "x:" per row, then "h", then NUL. */
        _cleanup_free_ char *shortopts = calloc(2 * v->n_options + 4, 1);
        size_t k = 0;
        int c, r;

        if (!longopts || !shortopts)
                return log_error_errno(-ENOMEM, "out of memory");
        if (v->options_first)
                shortopts[k++] = '+';
        for (size_t i = 0; i < v->n_options; i++) {
                const VerbOption *o = &v->options[i];
                longopts[i] = (struct option){o->name, option_has_arg(o) ? required_argument : no_argument, NULL,
                                              option_val(o, i)};
                if (o->short_name) {
                        shortopts[k++] = o->short_name;
                        if (option_has_arg(o))
                                shortopts[k++] = ':';
                }
        }
        longopts[v->n_options] = (struct option){"help", no_argument, NULL, 'h'};
        shortopts[k] = 'h';

        optind = 0;
        while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) >= 0) {
                const VerbOption *o = option_find(v, c);

                if (c == 'h') {
                        v->help();
                        return 0;
                }
                if (!o)
                        return -EINVAL; /* getopt said which */
                switch (o->kind) {
                case OPTION_STRING:
                        *(const char **) o->target = optarg;
                        break;
                case OPTION_FLAG:
                        *(bool *) o->target = true;
                        break;
                case OPTION_CALL:
                        r = o->call(option_has_arg(o) ? optarg : NULL);
                        if (r <= 0)
                                return r;
                        break;
                }
        }
        if (v->max_args >= 0 && argc - optind > v->max_args) {
                log_error("%s: unexpected argument '%s' (%s); see 'regvisor %s --help'", v->verb,
                          argv[optind + v->max_args], v->max_args == 0 ? "it takes none" : "too many", v->verb);
                return -EINVAL;
        }
        if (ret_optind)
                *ret_optind = optind;
        return 1;
}

int verb_find_command(const char *verb, const void *table, size_t n, size_t stride, int argc, char **argv,
                      int first) {
        const VerbCommand *c = NULL;
        size_t i;
        int want;

        if (first >= argc) {
                log_error("%s: expected a COMMAND; see 'regvisor %s --help'", verb, verb);
                return -EINVAL;
        }
        for (i = 0; i < n; i++) {
                c = (const VerbCommand *) ((const char *) table + i * stride);
                if (streq(argv[first], c->name))
                        break;
        }
        if (i == n) {
                log_error("%s: unknown command '%s'; see 'regvisor %s --help'", verb, argv[first], verb);
                return -EINVAL;
        }
        want = c->arg ? 2 : 1;
        if (argc - first == want)
                return (int) i;
        if (argc - first < want)
                log_error("%s %s: expected %s; see 'regvisor %s --help'", verb, argv[first], c->arg, verb);
        else
                log_error("%s %s: unexpected argument '%s' (%s); see 'regvisor %s --help'", verb, argv[first],
                          argv[first + want], want == 2 ? "only one" : "it takes none", verb);
        return -EINVAL;
}
