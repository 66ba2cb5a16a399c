/* SPDX-License-Identifier: MIT */
/*
 * The supervisor's state x event table (supervisor/run/table.c), cell by
 * cell, through table_dispatch() on a real Supervisor: a real sd-event loop
 * (timers are looked at, not run), a real notify socket this test reads
 * (NOTIFY_SOCKET), a configuration file on disk for the reloads and the
 * real reload outcome file in a temporary directory.
 *
 * There is no user manager in a unit test: the Supervisor has no bus, so
 * StartUnit and StopUnit cannot be sent, which the table handles as it
 * does on a host (a StartUnit that cannot be sent is a failed job; a
 * StopUnit that cannot be sent while stopping ends the loop with -EIO).
 * The cells that send them are checked with that in mind. What the bus
 * itself does is tested by tests/integration/70-run.sh.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "fileio.h"
#include "reload.h"
#include "stop.h"
#include "supervise.h"
#include "supervisor.h"
#include "tmpdir.h"

#define CONF "[tls]\nserver_names = registry.test\n[supervise]\nrestart_delay = 1s\nrestart_delay_max = 30s\n" \
             "restart_limit = 3\nhealthy_reset = 60s\n"

static void test_backoff_doubles_to_the_ceiling(void **state) {
        assert_int_equal(supervisor_backoff_ms(1, 1000, 30000), 1000);
        assert_int_equal(supervisor_backoff_ms(2, 1000, 30000), 2000);
        assert_int_equal(supervisor_backoff_ms(3, 1000, 30000), 4000);
        assert_int_equal(supervisor_backoff_ms(5, 1000, 30000), 16000);
        assert_int_equal(supervisor_backoff_ms(6, 1000, 30000), 30000);
        assert_int_equal(supervisor_backoff_ms(60, 1000, 30000), 30000);
        /* No overflow however many attempts. */
        assert_int_equal(supervisor_backoff_ms(4000000000u, 1000, 3600000), 3600000);
        assert_int_equal(supervisor_backoff_ms(1, 200, 100), 100);
}

static void test_names(void **state) {
        for (int s = 0; s < _SUP_STATE_MAX; s++)
                assert_string_not_equal(supervisor_state_to_string(s), "?");
        for (int e = 0; e < _SUP_EVENT_MAX; e++)
                assert_string_not_equal(supervisor_event_to_string(e), "?");
        assert_string_equal(supervisor_state_to_string(_SUP_STATE_MAX), "?");
}

/* ---- a Supervisor without a bus ------------------------------------------------ */

typedef struct Fixture {
        char dir[TMPDIR_PATH_MAX];
        char conf_path[TMPDIR_PATH_MAX + 32];
        char status_path[TMPDIR_PATH_MAX + 32];
        int notify_fd; /* our end of NOTIFY_SOCKET */
        char notified[8192]; /* what the supervisor sent since the last take */
        Supervisor s;
} Fixture;

static int fixture_setup(void **state) {
        Fixture *f = calloc(1, sizeof *f);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        char *err = NULL;

        assert_non_null(f);
        assert_int_equal(tmpdir_make(f->dir, sizeof f->dir, "regvisor-test-supervise"), 0);
        (void) snprintf(f->conf_path, sizeof f->conf_path, "%s/regvisor.conf", f->dir);
        (void) snprintf(f->status_path, sizeof f->status_path, "%s/reload-status", f->dir);
        assert_int_equal(write_file_atomic(f->conf_path, CONF, strlen(CONF), 0644, (uid_t) -1, (gid_t) -1), 0);

        /* A socket path has 108 bytes: a $TMPDIR too long for it fails here, by name. */
        assert_true((size_t) snprintf(sa.sun_path, sizeof sa.sun_path, "%s/notify", f->dir) < sizeof sa.sun_path);
        f->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        assert_true(f->notify_fd >= 0);
        assert_int_equal(bind(f->notify_fd, (struct sockaddr *) &sa, sizeof sa), 0);
        assert_int_equal(setenv("NOTIFY_SOCKET", sa.sun_path, 1), 0);

        f->s = (Supervisor) {
                .config_path = f->conf_path,
                .reload_status_path = f->status_path,
                .state = SUP_STARTING,
                .metrics_fd = -1,
                .report_pipe = {-1, -1},
        };
        assert_int_equal(config_init_defaults(&f->s.config), 0);
        if (config_load_string(&f->s.config, CONF, f->conf_path, &err) < 0)
                fail_msg("%s", err);
        assert_int_equal(sd_event_new(&f->s.event), 0);
        *state = f;
        return 0;
}

static int fixture_teardown(void **state) {
        Fixture *f = *state;

        supervisor_done(&f->s);
        (void) close(f->notify_fd);
        (void) unsetenv("NOTIFY_SOCKET");
        assert_int_equal(tmpdir_remove(f->dir), 0);
        free(f);
        return 0;
}

/* Everything sent to NOTIFY_SOCKET since the last call, one message a line. */
static const char *notified(Fixture *f) {
        char buf[1024];
        ssize_t n;

        f->notified[0] = 0;
        while ((n = recv(f->notify_fd, buf, sizeof buf - 1, 0)) > 0) {
                buf[n] = 0;
                (void) strncat(f->notified, buf, sizeof f->notified - strlen(f->notified) - 2);
                (void) strcat(f->notified, "\n");
        }
        return f->notified;
}

#define assert_contains(hay, needle)                                                              \
        do {                                                                                      \
                if (!strstr((hay), (needle)))                                                     \
                        fail_msg("missing '%s' in '%s'", (needle), (hay));                         \
        } while (0)

#define assert_lacks(hay, needle)                                                                 \
        do {                                                                                      \
                if (strstr((hay), (needle)))                                                      \
                        fail_msg("unexpected '%s' in '%s'", (needle), (hay));                      \
        } while (0)

/* In how many microseconds a timer fires (0: due already); fails when it
 * is not armed. */
static uint64_t armed_in(sd_event_source *src) {
        uint64_t at, now = now_usec();

        assert_non_null(src);
        assert_int_equal(sd_event_source_get_time(src, &at), 0);
        return at > now ? at - now : 0;
}

static void assert_near_usec(uint64_t got, uint64_t want) {
        /* A slow sanitizer build on a busy machine: a second either way. */
        if (got + USEC_PER_SEC < want || got > want + USEC_PER_SEC)
                fail_msg("timer in %llu us, expected about %llu us", (unsigned long long) got,
                         (unsigned long long) want);
}

static bool exit_requested(Fixture *f, int *ret_code) {
        int code;
        bool r = sd_event_get_exit_code(f->s.event, &code) >= 0;

        if (r && ret_code)
                *ret_code = code;
        return r;
}

static void dispatch_in(Fixture *f, SupervisorState state, SupervisorEvent ev, const char *reason) {
        f->s.state = state;
        (void) notified(f);
        table_dispatch(&f->s, ev, reason);
}

/* ---- the ignored cells ------------------------------------------------------------- */

/* The cells ARCHITECTURE.md's table leaves empty: nothing happens. */
static const bool ignored[_SUP_STATE_MAX][_SUP_EVENT_MAX] = {
        [SUP_STARTING] = {[SUP_EV_UNIT_DOWN] = true, [SUP_EV_PROBE_OK] = true, [SUP_EV_UNHEALTHY] = true,
                          [SUP_EV_TIMER] = true},
        [SUP_WAITING_READY] = {[SUP_EV_JOB_DONE] = true, [SUP_EV_JOB_FAILED] = true, [SUP_EV_TIMER] = true},
        [SUP_RUNNING] = {[SUP_EV_JOB_DONE] = true, [SUP_EV_JOB_FAILED] = true, [SUP_EV_TIMER] = true},
        /* Our own StopUnit makes the unit inactive and its job done. */
        [SUP_BACKOFF] = {[SUP_EV_JOB_DONE] = true, [SUP_EV_JOB_FAILED] = true, [SUP_EV_UNIT_DOWN] = true,
                         [SUP_EV_PROBE_OK] = true, [SUP_EV_UNHEALTHY] = true},
        [SUP_GAVE_UP] = {[SUP_EV_JOB_DONE] = true, [SUP_EV_JOB_FAILED] = true, [SUP_EV_UNIT_DOWN] = true,
                         [SUP_EV_PROBE_OK] = true, [SUP_EV_UNHEALTHY] = true, [SUP_EV_TIMER] = true},
        [SUP_STOPPING] = {[SUP_EV_UNIT_DOWN] = true, [SUP_EV_PROBE_OK] = true, [SUP_EV_UNHEALTHY] = true,
                          [SUP_EV_TIMER] = true, [SUP_EV_TERM] = true, [SUP_EV_HUP] = true},
};

static void test_ignored_cells(void **state) {
        Fixture *f = *state;
        unsigned n = 0;

        for (int st = 0; st < _SUP_STATE_MAX; st++)
                for (int ev = 0; ev < _SUP_EVENT_MAX; ev++) {
                        if (!ignored[st][ev])
                                continue;
                        f->s.attempt = 2;
                        dispatch_in(f, st, ev, "test");
                        if (f->s.state != (SupervisorState) st)
                                fail_msg("%s x %s: moved to %s", supervisor_state_to_string(st),
                                         supervisor_event_to_string(ev), supervisor_state_to_string(f->s.state));
                        if (*notified(f))
                                fail_msg("%s x %s: notified '%s'", supervisor_state_to_string(st),
                                         supervisor_event_to_string(ev), f->notified);
                        assert_null(f->s.backoff_timer);
                        assert_null(f->s.probe_timer);
                        assert_null(f->s.stop_timer);
                        assert_int_equal(f->s.attempt, 2);
                        assert_int_equal(f->s.n_failures, 0);
                        assert_false(exit_requested(f, NULL));
                        n++;
                }
        assert_int_equal(n, 27);
}

/* ---- starting ----------------------------------------------------------------------- */

static void test_starting_job_done_waits_for_ready(void **state) {
        Fixture *f = *state;

        dispatch_in(f, SUP_STARTING, SUP_EV_JOB_DONE, NULL);
        assert_int_equal(f->s.state, SUP_WAITING_READY);
        assert_contains(notified(f), "STATUS=regvisor-registry.service active, waiting for GET /v2/");
        /* The first probe at once. */
        assert_near_usec(armed_in(f->s.probe_timer), 0);
        assert_lacks(f->notified, "READY=1");
}

/* job-failed while starting, unit-down or unhealthy later: a failure,
 * then StartUnit again after restart_delay * 2^(n-1). */
static void check_failure(Fixture *f, SupervisorState from, SupervisorEvent ev) {
        dispatch_in(f, from, ev, "the reason");
        if (f->s.state != SUP_BACKOFF)
                fail_msg("%s x %s: %s, expected backoff", supervisor_state_to_string(from),
                         supervisor_event_to_string(ev), supervisor_state_to_string(f->s.state));
        assert_string_equal(f->s.last_failure, "the reason");
        assert_contains(notified(f), "STATUS=restarting in ");
        assert_contains(f->notified, "the reason");
        assert_null(f->s.probe_timer);
        assert_null(f->s.probe);
}

static void test_failures_back_off(void **state) {
        static const struct {
                SupervisorState state;
                SupervisorEvent ev;
        } cells[] = {
                {SUP_STARTING, SUP_EV_JOB_FAILED},    {SUP_WAITING_READY, SUP_EV_UNIT_DOWN},
                {SUP_WAITING_READY, SUP_EV_UNHEALTHY}, {SUP_RUNNING, SUP_EV_UNIT_DOWN},
                {SUP_RUNNING, SUP_EV_UNHEALTHY},
        };
        Fixture *f = *state;

        for (size_t i = 0; i < sizeof cells / sizeof cells[0]; i++) {
                /* A fresh count each time, below restart_limit (3). */
                f->s.n_failures = 0;
                f->s.attempt = 1;
                check_failure(f, cells[i].state, cells[i].ev);
                /* The second consecutive failure: 1 s doubled. */
                assert_int_equal(f->s.attempt, 2);
                assert_int_equal(f->s.backoff_delay_ms, 2000);
                assert_near_usec(armed_in(f->s.backoff_timer), 2000 * USEC_PER_MSEC);
                assert_int_equal(f->s.n_failures, 1);
        }
}

/* The restart_limit-th failure within restart_window: gave up, no timer. */
static void test_failure_at_the_limit_gives_up(void **state) {
        Fixture *f = *state;

        dispatch_in(f, SUP_RUNNING, SUP_EV_UNHEALTHY, "one");
        dispatch_in(f, SUP_WAITING_READY, SUP_EV_UNIT_DOWN, "two");
        assert_int_equal(f->s.state, SUP_BACKOFF);
        f->s.backoff_timer = sd_event_source_disable_unref(f->s.backoff_timer);
        dispatch_in(f, SUP_STARTING, SUP_EV_JOB_FAILED, "three");
        assert_int_equal(f->s.state, SUP_GAVE_UP);
        assert_int_equal(f->s.n_failures, 3);
        assert_null(f->s.backoff_timer);
        assert_contains(notified(f), "STATUS=gave up: 3 failures within 60s, last: three");
}

/* ---- waiting-ready, running -------------------------------------------------------- */

static void test_waiting_probe_ok_is_ready(void **state) {
        Fixture *f = *state;

        /* Registry ready, proxy ports not yet: running, but no READY=1. */
        dispatch_in(f, SUP_WAITING_READY, SUP_EV_PROBE_OK, NULL);
        assert_int_equal(f->s.state, SUP_RUNNING);
        assert_true(f->s.healthy_since > 0);
        assert_lacks(notified(f), "READY=1");
        assert_contains(f->notified, "STATUS=registry ready, proxy NOT listening");

        /* Both ports accepting: READY=1, once. */
        f->s.proxy_listening = true;
        dispatch_in(f, SUP_WAITING_READY, SUP_EV_PROBE_OK, NULL);
        assert_contains(notified(f), "READY=1");
        assert_contains(f->notified, "STATUS=registry ready, proxy listening");
        dispatch_in(f, SUP_WAITING_READY, SUP_EV_PROBE_OK, NULL);
        assert_lacks(notified(f), "READY=1");
}

static void test_running_probe_ok_forgives_after_healthy_reset(void **state) {
        Fixture *f = *state;

        /* Healthy for less than healthy_reset (60 s): the exponent stays. */
        f->s.attempt = 3;
        f->s.healthy_since = now_usec();
        dispatch_in(f, SUP_RUNNING, SUP_EV_PROBE_OK, NULL);
        assert_int_equal(f->s.state, SUP_RUNNING);
        assert_int_equal(f->s.attempt, 3);

        /* Longer: the backoff starts over. */
        f->s.healthy_since = now_usec() - 61 * USEC_PER_SEC;
        dispatch_in(f, SUP_RUNNING, SUP_EV_PROBE_OK, NULL);
        assert_int_equal(f->s.state, SUP_RUNNING);
        assert_int_equal(f->s.attempt, 0);
}

/* ---- backoff, gave-up --------------------------------------------------------------- */

/* The backoff timer: a restart, counted, and StartUnit. Without a bus it
 * cannot be sent, which is the next failure (the exponent goes up). */
static void test_backoff_timer_restarts(void **state) {
        Fixture *f = *state;

        f->s.attempt = 1;
        f->s.last_failure = strdup("before");
        dispatch_in(f, SUP_BACKOFF, SUP_EV_TIMER, NULL);
        assert_int_equal(f->s.restarts, 1);
        assert_true(f->s.probing_since > 0);
        assert_string_equal(f->s.last_failure, "StartUnit could not be sent");
        assert_int_equal(f->s.state, SUP_BACKOFF);
        assert_int_equal(f->s.attempt, 2);
        assert_contains(notified(f), "STATUS=starting regvisor-registry.service");
}

/* SIGHUP after giving up: the reload, then a fresh count and StartUnit. */
static void test_gave_up_hup_retries(void **state) {
        Fixture *f = *state;
        unsigned long seq;
        bool ok;

        f->s.n_failures = 3;
        f->s.attempt = 7;
        dispatch_in(f, SUP_GAVE_UP, SUP_EV_HUP, NULL);
        assert_int_equal(reload_status_read(f->status_path, &seq, &ok, NULL), 0);
        assert_int_equal(seq, 1);
        assert_true(ok);
        /* Counted from zero again: the unsendable StartUnit is failure 1. */
        assert_int_equal(f->s.n_failures, 1);
        assert_int_equal(f->s.attempt, 1);
        assert_int_equal(f->s.state, SUP_BACKOFF);
        assert_int_equal(f->s.backoff_delay_ms, 1000);
}

/* ---- SIGHUP: a reload beside whatever the registry does ---------------------------- */

static void test_hup_reloads_in_place(void **state) {
        static const SupervisorState states[] = {SUP_STARTING, SUP_WAITING_READY, SUP_RUNNING, SUP_BACKOFF};
        Fixture *f = *state;
        _cleanup_free_ char *message = NULL;
        unsigned long seq;
        bool ok;

        for (size_t i = 0; i < sizeof states / sizeof states[0]; i++) {
                dispatch_in(f, states[i], SUP_EV_HUP, NULL);
                assert_int_equal(f->s.state, states[i]);
                assert_contains(notified(f), "RELOADING=1");
                assert_contains(f->notified, "READY=1");
                assert_int_equal(reload_status_read(f->status_path, &seq, &ok, NULL), 0);
                assert_int_equal(seq, i + 1);
                assert_true(ok);
        }

        /* A restart-only key changed: refused, and the file says why. */
        static const char changed[] = CONF "[host]\nservice_user = someone-else\n";
        assert_int_equal(write_file_atomic(f->conf_path, changed, strlen(changed), 0644, (uid_t) -1, (gid_t) -1), 0);
        dispatch_in(f, SUP_RUNNING, SUP_EV_HUP, NULL);
        assert_int_equal(f->s.state, SUP_RUNNING);
        assert_int_equal(reload_status_read(f->status_path, &seq, &ok, &message), 0);
        assert_int_equal(seq, 5);
        assert_false(ok);
        assert_contains(message, "[host] service_user");
        assert_string_equal(f->s.config.service_user, "ci-svc");
}

/* ---- SIGTERM, stopping ---------------------------------------------------------------- */

/* Without a proxy: STOPPING=1 and the registry's StopUnit at once, bounded
 * by stop_timeout; unsendable here, so the loop ends with -EIO. */
static void test_term_stops(void **state) {
        static const SupervisorState states[] = {SUP_STARTING, SUP_WAITING_READY, SUP_RUNNING, SUP_BACKOFF,
                                                 SUP_GAVE_UP};
        Fixture *f = *state;

        for (size_t i = 0; i < sizeof states / sizeof states[0]; i++) {
                assert_int_equal(sd_event_add_time_relative(f->s.event, &f->s.backoff_timer, CLOCK_MONOTONIC,
                                                            USEC_PER_SEC, 0, NULL, NULL),
                                 0);
                f->s.exit_status = 0;
                dispatch_in(f, states[i], SUP_EV_TERM, NULL);
                assert_int_equal(f->s.state, SUP_STOPPING);
                assert_contains(notified(f), "STOPPING=1");
                assert_null(f->s.backoff_timer);
                assert_null(f->s.probe_timer);
                assert_near_usec(armed_in(f->s.stop_timer), (uint64_t) f->s.config.stop_timeout_ms * USEC_PER_MSEC);
                assert_int_equal(f->s.exit_status, -EIO);
                assert_true(exit_requested(f, NULL));
        }
}

/* With a proxy: it gets SIGTERM to drain first, within its share of the
 * stop budget (stop.h); the registry's StopUnit waits for its exit. */
static void test_term_drains_the_proxy_first(void **state) {
        Fixture *f = *state;
        int status;
        pid_t pid;

        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                (void) pause();
                _exit(0);
        }
        f->s.proxy.pid = pid;
        dispatch_in(f, SUP_RUNNING, SUP_EV_TERM, NULL);
        assert_int_equal(f->s.state, SUP_STOPPING);
        assert_contains(notified(f), "STOPPING=1");
        assert_near_usec(armed_in(f->s.stop_timer), REGVISOR_PROXY_STOP_SEC * USEC_PER_SEC);
        /* No StopUnit yet: it would have failed (no bus) and ended the loop. */
        assert_false(exit_requested(f, NULL));
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGTERM);
        f->s.proxy.pid = 0;

        /* Its exit: now the registry, within stop_timeout. */
        table_proxy_stopped(&f->s);
        assert_near_usec(armed_in(f->s.stop_timer), (uint64_t) f->s.config.stop_timeout_ms * USEC_PER_MSEC);
}

static void test_stopping_job_end_exits(void **state) {
        static const SupervisorEvent events[] = {SUP_EV_JOB_DONE, SUP_EV_JOB_FAILED};
        Fixture *f = *state;
        int code = -1;

        for (size_t i = 0; i < 2; i++) {
                dispatch_in(f, SUP_STOPPING, events[i], "done");
                assert_int_equal(f->s.state, SUP_STOPPING);
                assert_true(exit_requested(f, &code));
                assert_int_equal(code, 0);
                assert_int_equal(f->s.exit_status, 0);
        }
}

/* supervisor_run() on a service user that does not exist: refused before
 * anything starts, naming the user (it once printed "(null)": the
 * configuration was freed before the message). */
static void test_run_refuses_a_missing_service_user(void **state) {
        static const char conf[] = "[tls]\nserver_names = registry.test\n[host]\nservice_user = no-such-user-rv\n";
        char path[TMPDIR_PATH_MAX], text[4096] = "";
        Config c;
        char *err = NULL;
        int fd, saved, r;
        ssize_t n;

        assert_int_equal(config_init_defaults(&c), 0);
        if (config_load_string(&c, conf, "test.conf", &err) < 0)
                fail_msg("%s", err);
        assert_int_equal(tmpdir_template(path, sizeof path, "regvisor-test-supervise-stderr"), 0);
        fd = mkstemp(path);
        assert_true(fd >= 0);
        fflush(stderr);
        saved = dup(STDERR_FILENO);
        assert_true(dup2(fd, STDERR_FILENO) >= 0);
        r = supervisor_run("test.conf", &c);
        fflush(stderr);
        assert_true(dup2(saved, STDERR_FILENO) >= 0);
        (void) close(saved);
        n = pread(fd, text, sizeof text - 1, 0);
        (void) close(fd);
        (void) unlink(path);

        assert_int_equal(r, -ESRCH);
        assert_true(n > 0);
        assert_contains(text, "service user no-such-user-rv does not exist");
        /* Taken over and freed. */
        assert_null(c.service_user);
}

/* ---- /metrics ------------------------------------------------------------------------ */

/* The supervisor's /metrics through common/prom.c: one sample a family,
 * the state as a label set, certificate names escaped as label values (a
 * client name with a quote once broke the whole page for a scraper). */
static void test_metrics_page(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *text = NULL;
        size_t size = 0;
        FILE *out;

        f->s.state = SUP_BACKOFF;
        f->s.backoff_delay_ms = 1500;
        f->s.restarts = 3;
        f->s.last_probe_ok_wall = 1796000000;
        f->s.certs[0].name = strdup("client/a\"b\\c");
        f->s.certs[0].not_after = 1800000000;
        f->s.n_certs = 1;
        out = open_memstream(&text, &size);
        assert_non_null(out);
        assert_int_equal(pages_render(STATUS_METRICS, out, &f->s), 200);
        assert_int_equal(fclose(out), 0);

        assert_contains(text,
                        "regvisor_certificate_expiry_timestamp_seconds{certificate=\"client/a\\\"b\\\\c\"} 1800000000\n");
        assert_contains(text, "# TYPE regvisor_supervisor_state gauge\n");
        assert_contains(text, "regvisor_supervisor_state{state=\"backoff\"} 1\n");
        assert_contains(text, "regvisor_supervisor_state{state=\"running\"} 0\n");
        assert_contains(text, "# TYPE regvisor_registry_restarts_total counter\n");
        assert_contains(text, "\nregvisor_registry_restarts_total 3\n");
        assert_contains(text, "\nregvisor_registry_backoff_seconds 1.5\n");
        assert_contains(text, "\nregvisor_registry_last_ready_timestamp_seconds 1796000000\n");
        assert_contains(text, "\nregvisor_registry_ready 0\n");
        assert_contains(text, "regvisor_info{version=\"" REGVISOR_VERSION "\",image_digest=\"");
}

#define fixture_test(t) cmocka_unit_test_setup_teardown(t, fixture_setup, fixture_teardown)

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_backoff_doubles_to_the_ceiling),
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_run_refuses_a_missing_service_user),
                fixture_test(test_ignored_cells),
                fixture_test(test_starting_job_done_waits_for_ready),
                fixture_test(test_failures_back_off),
                fixture_test(test_failure_at_the_limit_gives_up),
                fixture_test(test_waiting_probe_ok_is_ready),
                fixture_test(test_running_probe_ok_forgives_after_healthy_reset),
                fixture_test(test_backoff_timer_restarts),
                fixture_test(test_gave_up_hup_retries),
                fixture_test(test_hup_reloads_in_place),
                fixture_test(test_term_stops),
                fixture_test(test_term_drains_the_proxy_first),
                fixture_test(test_stopping_job_end_exits),
                fixture_test(test_metrics_page),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
