/* SPDX-License-Identifier: MIT */
/*
 * `regvisor health`: every check of supervisor/health/health.c, as a Nagios plugin
 * (first line "REGVISOR STATE - summary|perfdata", one line per check, exit
 * 0/1/2/3), as one JSON document (--json), or in the Prometheus text format
 * (--metrics, e.g. for node_exporter's textfile collector).
 *
 * A monitoring system reads stdout and the exit status only, so every
 * failure, including an unreadable configuration, is an UNKNOWN answer on
 * stdout in the chosen format rather than a log line.
 */
#include <errno.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "health.h"
#include "log.h"
#include "macro.h"
#include "reload.h"
#include "verbs.h"

/* The longest --timeout: a monitoring system's own timeout is usually 10 to
 * 60 s, and a check that needs longer is a hung check. */
#define HEALTH_MAX_TIMEOUT_SEC 300

typedef enum { FORMAT_NAGIOS, FORMAT_JSON, FORMAT_METRICS } Format;

static const char *arg_config = CONFIG_DEFAULT_PATH;
static Format arg_format = FORMAT_NAGIOS;
static uint64_t arg_timeout_usec = HEALTH_DEFAULT_TIMEOUT_USEC;
static char *arg_only[64];
static size_t arg_n_only = 0;

static void help(void) {
        printf("Usage: regvisor health [OPTIONS]\n\n"
               "Check the registry host: linger and the user manager, the registry unit and\n"
               "container (pinned digest), /v2/ on its socket, storage space, certificate\n"
               "expiry, podman state outside $HOME, that every stored tag is signed by a\n"
               "trusted key, the proxy's ports and policy, and a shared store (its auth,\n"
               "redis, the secret files).\n"
               "Prints a Nagios plugin line (text|perfdata) and one line per check; exits\n"
               "0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.\n\n"
               "  -c --config FILE   configuration (default " CONFIG_DEFAULT_PATH ")\n"
               "     --json         print one JSON document instead\n"
               "     --metrics      print the Prometheus text format instead\n"
               "  -t --timeout SEC   answer within SEC seconds (default %u)\n"
               "     --check NAME   run only this check (repeatable): one monitoring\n"
               "                    service per check\n"
               "     --list         list the checks\n"
               "  -h --help          this help\n",
               (unsigned) (HEALTH_DEFAULT_TIMEOUT_USEC / 1000000));
}

static int set_json(const char *arg) {
        arg_format = FORMAT_JSON;
        return 1;
}

static int set_metrics(const char *arg) {
        arg_format = FORMAT_METRICS;
        return 1;
}

static int set_timeout(const char *arg) {
        char *end;
        double t;

        errno = 0;
        t = strtod(arg, &end);
        if (errno != 0 || end == arg || *end || !(t >= 0.1 && t <= HEALTH_MAX_TIMEOUT_SEC)) {
                log_error("--timeout %s: expected seconds from 0.1 to %d", arg, HEALTH_MAX_TIMEOUT_SEC);
                return -EINVAL;
        }
        arg_timeout_usec = (uint64_t) (t * 1e6);
        return 1;
}

static int add_check(const char *arg) {
        if (!health_check_find(arg)) {
                log_error("--check %s: no such check; see 'regvisor health --list'", arg);
                return -EINVAL;
        }
        if (arg_n_only >= ELEMENTSOF(arg_only)) {
                log_error("--check: too many");
                return -EINVAL;
        }
        arg_only[arg_n_only++] = (char *) arg;
        return 1;
}

static int list_checks(const char *arg) {
        for (size_t i = 0; i < health_n_checks; i++)
                printf("%-26s %s\n", health_checks[i].name, health_checks[i].description);
        return 0;
}

static const VerbOption options[] = {
        OPTION_CONFIG(&arg_config),
        {"json", 0, OPTION_CALL, NULL, set_json, false},
        {"metrics", 0, OPTION_CALL, NULL, set_metrics, false},
        {"timeout", 't', OPTION_CALL, NULL, set_timeout, true},
        {"check", 0, OPTION_CALL, NULL, add_check, true},
        {"list", 0, OPTION_CALL, NULL, list_checks, false},
};
static const VerbSyntax syntax = {"health", help, options, ELEMENTSOF(options), 0, false};

/* An answer without checks: UNKNOWN with why, in the chosen format. */
static int print_unknown(const char *why) {
        if (arg_format == FORMAT_JSON) {
                json_object *o = json_object_new_object();
                _cleanup_free_ char *summary = NULL;
                if (!o || asprintf(&summary, "REGVISOR UNKNOWN - %s", why) < 0) {
                        json_object_put(o);
                        return HEALTH_UNKNOWN;
                }
                json_object_object_add(o, "state", json_object_new_string("UNKNOWN"));
                json_object_object_add(o, "exit_status", json_object_new_int(HEALTH_UNKNOWN));
                json_object_object_add(o, "summary", json_object_new_string(summary));
                json_object_object_add(o, "checks", json_object_new_array());
                printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                                         JSON_C_TO_STRING_NOSLASHESCAPE));
                json_object_put(o);
        } else if (arg_format == FORMAT_METRICS)
                health_write_state_metric(stdout, HEALTH_UNKNOWN);
        else
                printf("REGVISOR UNKNOWN - %s\n", why);
        return HEALTH_UNKNOWN;
}

/* The configuration, or an UNKNOWN answer naming the file and line. */
static int load_config(Config *c, char **ret_error) {
        int r;

        r = reload_load_config(arg_config, c, ret_error);
        if (r < 0 && !*ret_error && asprintf(ret_error, "%s: %s", arg_config, strerror(-r)) < 0)
                *ret_error = NULL;
        return r;
}

int verb_health(int argc, char **argv) {
        _cleanup_free_ char *error = NULL, *why = NULL, *text = NULL;
        Config config;
        HealthOptions o;
        HealthResult *results = NULL;
        size_t n = 0;
        HealthState state;
        int r;

        r = verb_parse_argv(&syntax, argc, argv, NULL);
        if (r <= 0)
                return r < 0 ? HEALTH_UNKNOWN : 0;

        /* OpenSSL writes to sockets with write(2): a peer that closes early
         * must be an error to report, not a signal that kills us. */
        (void) signal(SIGPIPE, SIG_IGN);

        r = load_config(&config, &error);
        if (r < 0) {
                if (asprintf(&why, "configuration: %s", error ?: strerror(-r)) < 0)
                        return print_unknown("configuration: out of memory");
                return print_unknown(why);
        }
        if (geteuid() != 0) {
                config_done(&config);
                return print_unknown("regvisor health must run as root (it runs podman as the service user and "
                                     "asks its user manager); with sudo from a monitoring agent");
        }

        health_options_default(&o);
        o.storage_warn_pct = config.health_storage_warn_pct;
        o.storage_crit_pct = config.health_storage_crit_pct;
        o.cert_warn_days = config.health_cert_warn_days;
        o.cert_crit_days = config.health_cert_crit_days;
        o.timeout_usec = arg_timeout_usec;
        o.only = arg_only;
        o.n_only = arg_n_only;
        r = health_run(&config, &o, &results, &n);
        config_done(&config);
        if (r < 0)
                return print_unknown(strerror(-r));

        state = health_state_worst(results, n);
        r = arg_format == FORMAT_JSON      ? health_format_json(results, n, &text)
            : arg_format == FORMAT_METRICS ? health_render_metrics(results, n, &text)
                                           : health_format_nagios(results, n, &text);
        health_results_free(results, n);
        if (r < 0)
                return print_unknown(strerror(-r));
        fputs(text, stdout);
        if (arg_format == FORMAT_JSON)
                fputc('\n', stdout);
        if (fflush(stdout) != 0)
                return HEALTH_UNKNOWN;
        return (int) state;
}
