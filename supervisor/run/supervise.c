/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <glob.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <sys/epoll.h>

#include "bus.h"
#include "log.h"
#include "macro.h"
#include "metrics.h"
#include "paths.h"
#include "probe.h"
#include "render.h"
#include "supervise.h"
#include "status.h"
#include "fileio.h"
#include "pki.h"
#include "proxy.h"
#include "reload.h"

#define USEC_PER_MSEC 1000ULL
#define PROXY_DRAIN_USEC (35ULL * 1000000ULL)
#define PROXY_RESTART_MAX_MS 30000u
#define PROXY_HEALTHY_RESET_USEC (60ULL * 1000000ULL)

#define USER_MANAGER_TIMEOUT_USEC (60ULL * 1000000ULL)
#define MAX_FAILURES 1000

typedef struct Supervisor Supervisor;
typedef void (*Action)(Supervisor *s, const char *reason);

struct Supervisor {
        const char *config_path;
        Config config;
        uid_t uid;
        gid_t gid;
        char *home;

        sd_event *event;
        sd_bus *system_bus;
        sd_bus *user_bus;
        char *unit_path;

        SupervisorState state;
        char *job;          /* the job we wait for */
        char *early_job;    /* a JobRemoved that beat its method reply */
        char *early_result;
        sd_bus_slot *job_call;

        sd_event_source *probe_timer;
        Probe *probe;
        uint64_t probing_since; /* CLOCK_MONOTONIC usec */
        uint64_t last_probe_ok;

        sd_event_source *backoff_timer;
        sd_event_source *stop_timer;
        uint64_t failures[MAX_FAILURES]; /* when each recent failure happened */
        unsigned n_failures;
        unsigned attempt;        /* consecutive failures: the backoff exponent */
        uint64_t healthy_since;
        unsigned restarts;
        bool ready_sent;
        char *last_failure;
        int exit_status;

        StatusServer *status_server;

        /* The TLS proxy: `regvisor proxy` as a child process. */
        pid_t proxy_pid;
        sd_event_source *proxy_child;
        sd_event_source *proxy_restart_timer;
        unsigned proxy_attempt;
        uint64_t proxy_started;
        unsigned proxy_restarts;
        bool proxy_listening;   /* both ports accepted a connection lately */
        int metrics_fd;         /* the proxy's counters (memfd), -1 if none */
        const ProxyMetrics *metrics; /* mapped read-only */
        Probe *port_probe[2];
        bool port_ok[2];
        struct {
                char *name;
                time_t not_after;
        } certs[64];
        size_t n_certs;
        uint64_t backoff_delay_ms; /* current delay while in backoff */
        time_t last_probe_ok_wall;

        /* Reloads (SIGHUP): see reload.h for the outcome file. */
        int report_pipe[2];          /* the proxy's reload outcomes, one line each */
        sd_event_source *report_source;
        char report_buf[2048];
        size_t report_len;
        unsigned long reload_seq;    /* reloads processed; the outcome file's SEQ */
        bool reload_pending;         /* SIGHUP sent to the proxy, its answer not yet in */
        bool reload_again;           /* another SIGHUP came meanwhile */
        Config reload_prev;          /* the configuration before the pending reload */
        sd_event_source *reload_timer;
        char *reload_refused;        /* the last reload's error, NULL when it applied */
        char *reload_refusal;        /* the pending reload's: the file was refused here */
        char probe_host[2][INET6_ADDRSTRLEN]; /* where the proxy ports are checked */
};

static const char *const state_names[_SUP_STATE_MAX] = {
        [SUP_STARTING] = "starting",   [SUP_WAITING_READY] = "waiting-ready", [SUP_RUNNING] = "running",
        [SUP_BACKOFF] = "backoff",     [SUP_GAVE_UP] = "gave-up",             [SUP_STOPPING] = "stopping",
};

static const char *const event_names[_SUP_EVENT_MAX] = {
        [SUP_EV_JOB_DONE] = "job-done",   [SUP_EV_JOB_FAILED] = "job-failed", [SUP_EV_UNIT_DOWN] = "unit-down",
        [SUP_EV_PROBE_OK] = "probe-ok",   [SUP_EV_UNHEALTHY] = "unhealthy",   [SUP_EV_TIMER] = "timer",
        [SUP_EV_TERM] = "term",           [SUP_EV_HUP] = "hup",
};

const char *supervisor_state_to_string(SupervisorState s) {
        return s < _SUP_STATE_MAX ? state_names[s] : "?";
}

const char *supervisor_event_to_string(SupervisorEvent e) {
        return e < _SUP_EVENT_MAX ? event_names[e] : "?";
}

unsigned supervisor_backoff_ms(unsigned attempt, unsigned base_ms, unsigned max_ms) {
        uint64_t d = base_ms;

        for (unsigned i = 1; i < attempt && d < max_ms; i++)
                d *= 2;
        return d > max_ms ? max_ms : (unsigned) d;
}

static uint64_t now_usec(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

/* ---- reporting ----------------------------------------------------------- */

static void status(Supervisor *s, const char *fmt, ...) _printf_(2, 3);
static void status(Supervisor *s, const char *fmt, ...) {
        _cleanup_free_ char *line = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&line, fmt, ap) < 0)
                line = NULL;
        va_end(ap);
        if (line)
                (void) sd_notifyf(false, "STATUS=%s", line);
}

/* ---- D-Bus calls on the user manager -------------------------------------- */

static void set_job(Supervisor *s, const char *job) {
        free(s->job);
        s->job = job ? strdup(job) : NULL;
}

static void dispatch(Supervisor *s, SupervisorEvent ev, const char *reason);
static void certs_load(Supervisor *s);
static void proxy_signal(Supervisor *s, int sig);
static void maybe_ready(Supervisor *s);
static void queue_stop_after_proxy(Supervisor *s);

static void job_finished(Supervisor *s, const char *result) {
        set_job(s, NULL);
        if (streq(result, "done"))
                dispatch(s, SUP_EV_JOB_DONE, NULL);
        else {
                _cleanup_free_ char *why = NULL;
                if (asprintf(&why, "job ended with result '%s'", result) < 0)
                        why = NULL;
                dispatch(s, SUP_EV_JOB_FAILED, why ? why : result);
        }
}

static int on_job_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Supervisor *s = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        const char *path;

        s->job_call = sd_bus_slot_unref(s->job_call);
        if (e) {
                dispatch(s, SUP_EV_JOB_FAILED, e->message ? e->message : e->name);
                return 0;
        }
        if (sd_bus_message_read(m, "o", &path) < 0) {
                dispatch(s, SUP_EV_JOB_FAILED, "unparsable job reply");
                return 0;
        }
        if (s->early_job && streq(s->early_job, path)) {
                _cleanup_free_ char *result = TAKE_PTR(s->early_result);
                free(TAKE_PTR(s->early_job));
                job_finished(s, result);
                return 0;
        }
        set_job(s, path);
        return 0;
}

/* StartUnit or StopUnit, asynchronously; JobRemoved tells how it ended. */
static int queue_job(Supervisor *s, const char *method) {
        int r;

        s->job_call = sd_bus_slot_unref(s->job_call);
        set_job(s, NULL);
        free(TAKE_PTR(s->early_job));
        free(TAKE_PTR(s->early_result));
        r = sd_bus_call_method_async(s->user_bus, &s->job_call, "org.freedesktop.systemd1",
                                     "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager", method,
                                     on_job_reply, s, "ss", REGISTRY_UNIT_NAME, "replace");
        if (r < 0)
                return log_error_errno(r, "%s(%s): %s", method, REGISTRY_UNIT_NAME, strerror(-r));
        return 0;
}

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Supervisor *s = userdata;
        const char *path, *unit, *result;
        uint32_t id;

        if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0 || !streq(unit, REGISTRY_UNIT_NAME))
                return 0;
        if (s->job && streq(s->job, path)) {
                job_finished(s, result);
                return 0;
        }
        if (s->job_call && !s->job) {
                /* Our call's reply is still on its way: keep the result. */
                free(s->early_job);
                free(s->early_result);
                s->early_job = strdup(path);
                s->early_result = strdup(result);
        }
        return 0;
}

static void reset_failed_unit(Supervisor *s) {
        sd_bus_error e = SD_BUS_ERROR_NULL;

        /* Clears the failed state and systemd's own start rate limit, which
         * would otherwise refuse our restarts. */
        (void) sd_bus_call_method(s->user_bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                  "org.freedesktop.systemd1.Manager", "ResetFailedUnit", &e, NULL, "s",
                                  REGISTRY_UNIT_NAME);
        sd_bus_error_free(&e);
}

static int on_unit_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Supervisor *s = userdata;
        _cleanup_free_ char *active = NULL, *sub = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_get_property_string(s->user_bus, "org.freedesktop.systemd1", s->unit_path,
                                       "org.freedesktop.systemd1.Unit", "ActiveState", &e, &active);
        if (r >= 0)
                r = sd_bus_get_property_string(s->user_bus, "org.freedesktop.systemd1", s->unit_path,
                                               "org.freedesktop.systemd1.Unit", "SubState", &e, &sub);
        sd_bus_error_free(&e);
        if (r < 0)
                return 0;
        log_debug("%s: %s (%s)", REGISTRY_UNIT_NAME, active, sub);

        /* Down: failed, inactive, or waiting for systemd's own auto-restart,
         * which we take over so that our backoff and limits apply. */
        if (streq(active, "failed") || streq(active, "inactive") || streq(sub, "auto-restart")) {
                _cleanup_free_ char *why = NULL;
                if (asprintf(&why, "unit is %s (%s)", active, sub) < 0)
                        why = NULL;
                dispatch(s, SUP_EV_UNIT_DOWN, why ? why : active);
        }
        return 0;
}

/* ---- the probe ------------------------------------------------------------ */

static void probe_schedule(Supervisor *s, uint64_t delay_usec);

/* Which request the probe sends in the current state (see on_probe_timer). */
static const char *probe_name(const Supervisor *s) {
        return s->state == SUP_RUNNING ? "OPTIONS *" : "GET /v2/";
}

static void on_probe_done(int result, unsigned code, void *userdata) {
        Supervisor *s = userdata;
        uint64_t now = now_usec(), since;

        s->probe = NULL;
        if (result == 0 && code == 200) {
                s->last_probe_ok = now;
                s->last_probe_ok_wall = time(NULL);
                dispatch(s, SUP_EV_PROBE_OK, NULL);
        } else {
                since = s->last_probe_ok > s->probing_since ? s->last_probe_ok : s->probing_since;
                if (now - since >= (uint64_t) s->config.unhealthy_after_ms * USEC_PER_MSEC) {
                        _cleanup_free_ char *why = NULL;
                        if ((result < 0 ? asprintf(&why, "%s failing for %llu ms: %s", probe_name(s),
                                                   (unsigned long long) ((now - since) / 1000), strerror(-result))
                                        : asprintf(&why, "%s failing for %llu ms: HTTP %u", probe_name(s),
                                                   (unsigned long long) ((now - since) / 1000), code)) < 0)
                                why = NULL;
                        dispatch(s, SUP_EV_UNHEALTHY, why ? why : "probe failing");
                }
        }
        if (s->state == SUP_STARTING || s->state == SUP_WAITING_READY || s->state == SUP_RUNNING)
                probe_schedule(s, (uint64_t) s->config.probe_interval_ms * USEC_PER_MSEC);
}

static void on_port_probe_done(Supervisor *s, int which, int result) {
        bool was = s->proxy_listening;

        s->port_probe[which] = NULL;
        s->port_ok[which] = result == 0;
        s->proxy_listening = s->port_ok[0] && s->port_ok[1];
        if (s->proxy_listening != was)
                log_event(s->proxy_listening ? LOG_INFO : LOG_WARNING, "proxy-listening",
                          "proxy ports %u and %u %s", s->config.pull.listen.port, s->config.push.listen.port,
                          s->proxy_listening ? "accept connections" : "stopped accepting connections");
        maybe_ready(s);
}

static void on_pull_probe_done(int result, unsigned code, void *userdata) {
        on_port_probe_done(userdata, 0, result);
}

static void on_push_probe_done(int result, unsigned code, void *userdata) {
        on_port_probe_done(userdata, 1, result);
}

/* Where to check that each proxy port accepts: the address `regvisor
 * health` checks too (probe_proxy_host()), so /readyz and health speak of
 * the same connection. Follows [pull]/[push] allow_cidrs across reloads. */
static void port_hosts_update(Supervisor *s) {
        const PortConfig *port[2] = {&s->config.pull, &s->config.push};

        for (int i = 0; i < 2; i++)
                if (probe_proxy_host(port[i], s->probe_host[i]) < 0)
                        (void) snprintf(s->probe_host[i], sizeof s->probe_host[i], "127.0.0.1");
}

static void port_probes_start(Supervisor *s) {
        static const ProbeDone done[2] = {on_pull_probe_done, on_push_probe_done};
        const ListenAddress *a[2] = {&s->config.pull.listen, &s->config.push.listen};
        uint64_t timeout = (uint64_t) s->config.probe_timeout_ms * USEC_PER_MSEC;

        for (int i = 0; i < 2; i++)
                if (!s->port_probe[i] &&
                    probe_connect_start(s->event, s->probe_host[i], a[i]->port, timeout, done[i], s,
                                        &s->port_probe[i]) < 0)
                        on_port_probe_done(s, i, -EIO);
}

static int on_probe_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        Supervisor *s = userdata;
        int r;

        port_probes_start(s);
        if (s->probe)
                return 0;
        /* GET /v2/ until ready; then a probe the registry does not log (one
         * journal line per state change, not two per probe). */
        r = (s->state == SUP_RUNNING ? probe_alive_start : probe_start)(
                s->event, &s->config.listen, (uint64_t) s->config.probe_timeout_ms * USEC_PER_MSEC, on_probe_done, s,
                &s->probe);
        if (r < 0) {
                s->probe = NULL;
                on_probe_done(r, 0, s);
        }
        return 0;
}

static void probe_schedule(Supervisor *s, uint64_t delay_usec) {
        s->probe_timer = sd_event_source_disable_unref(s->probe_timer);
        if (sd_event_add_time_relative(s->event, &s->probe_timer, CLOCK_MONOTONIC, delay_usec, 0, on_probe_timer,
                                       s) < 0)
                log_error("cannot arm the probe timer");
}

static void probe_stop(Supervisor *s) {
        s->probe_timer = sd_event_source_disable_unref(s->probe_timer);
        if (s->probe) {
                probe_cancel(s->probe);
                s->probe = NULL;
        }
        for (int i = 0; i < 2; i++)
                if (s->port_probe[i]) {
                        probe_cancel(s->port_probe[i]);
                        s->port_probe[i] = NULL;
                }
}

/* ---- actions: the cells of the table ---------------------------------------- */

static void enter(Supervisor *s, SupervisorState state) {
        if (s->state != state)
                log_debug("state %s -> %s", state_names[s->state], state_names[state]);
        s->state = state;
}

static void start_unit(Supervisor *s) {
        enter(s, SUP_STARTING);
        reset_failed_unit(s);
        s->probing_since = now_usec();
        if (queue_job(s, "StartUnit") < 0)
                dispatch(s, SUP_EV_JOB_FAILED, "StartUnit could not be sent");
        status(s, "starting %s", REGISTRY_UNIT_NAME);
}

static void a_job_done_starting(Supervisor *s, const char *reason) {
        enter(s, SUP_WAITING_READY);
        s->probing_since = now_usec();
        status(s, "%s active, waiting for GET /v2/", REGISTRY_UNIT_NAME);
        probe_schedule(s, 0);
}

static void a_ready(Supervisor *s, const char *reason) {
        enter(s, SUP_RUNNING);
        s->healthy_since = now_usec();
        log_unit_event(LOG_INFO, "ready", REGISTRY_UNIT_NAME, "registry ready: GET /v2/ answers 200 (restarts so far: %u)",
                       s->restarts);
        maybe_ready(s);
}

/* READY=1 once the registry answers and both proxy ports accept; STATUS
 * always says how things are. */
static void maybe_ready(Supervisor *s) {
        if (s->state != SUP_RUNNING)
                return;
        if (s->proxy_listening && !s->ready_sent) {
                (void) sd_notify(false, "READY=1");
                s->ready_sent = true;
        }
        status(s, "registry ready, proxy %s on %u/%u; %u registry restart%s, %u proxy restart%s%s%s",
               s->proxy_listening ? "listening" : "NOT listening", s->config.pull.listen.port,
               s->config.push.listen.port, s->restarts, s->restarts == 1 ? "" : "s", s->proxy_restarts,
               s->proxy_restarts == 1 ? "" : "s", s->reload_refused ? "; last reload refused: " : "",
               s->reload_refused ? s->reload_refused : "");
}

static void a_probe_ok_running(Supervisor *s, const char *reason) {
        /* A long healthy run forgives earlier failures. */
        if (s->attempt > 0 && now_usec() - s->healthy_since >= (uint64_t) s->config.healthy_reset_ms * USEC_PER_MSEC) {
                log_unit_event(LOG_INFO, "backoff-reset", REGISTRY_UNIT_NAME,
                               "registry healthy for %u ms: restart backoff starts over", s->config.healthy_reset_ms);
                s->attempt = 0;
        }
}

/* Counts failures inside the window; true when the limit is reached. */
static bool record_failure(Supervisor *s) {
        uint64_t now = now_usec(), window = (uint64_t) s->config.restart_window_ms * USEC_PER_MSEC;
        unsigned k = 0;

        for (unsigned i = 0; i < s->n_failures; i++)
                if (now - s->failures[i] < window)
                        s->failures[k++] = s->failures[i];
        s->n_failures = k;
        if (s->n_failures < MAX_FAILURES)
                s->failures[s->n_failures++] = now;
        return s->n_failures >= s->config.restart_limit;
}

static int on_backoff_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        Supervisor *s = userdata;

        s->backoff_timer = sd_event_source_disable_unref(s->backoff_timer);
        dispatch(s, SUP_EV_TIMER, NULL);
        return 0;
}

static void a_failure(Supervisor *s, const char *reason) {
        unsigned delay;

        probe_stop(s);
        free(s->last_failure);
        s->last_failure = strdup(reason ? reason : "unknown");
        s->attempt++;

        if (record_failure(s)) {
                enter(s, SUP_GAVE_UP);
                log_unit_event(LOG_ERR, "gave-up", REGISTRY_UNIT_NAME,
                               "registry failed %u times within %u ms (last: %s): giving up; "
                               "`systemctl reload regvisor` tries again",
                               s->n_failures, s->config.restart_window_ms, s->last_failure);
                status(s, "gave up: %u failures within %us, last: %s", s->n_failures,
                       s->config.restart_window_ms / 1000, s->last_failure);
                (void) queue_job(s, "StopUnit");
                return;
        }

        delay = supervisor_backoff_ms(s->attempt, s->config.restart_delay_ms, s->config.restart_delay_max_ms);
        s->backoff_delay_ms = delay;
        enter(s, SUP_BACKOFF);
        log_unit_event(LOG_WARNING, "restart-scheduled", REGISTRY_UNIT_NAME,
                       "registry failed (%s): restarting in %u ms (attempt %u, delay_ms=%u)", s->last_failure, delay,
                       s->attempt, delay);
        status(s, "restarting in %u ms after: %s", delay, s->last_failure);
        /* Cancel systemd's own pending auto-restart, or stop a hung
         * container, before our delayed start. */
        (void) queue_job(s, "StopUnit");
        s->backoff_timer = sd_event_source_disable_unref(s->backoff_timer);
        if (sd_event_add_time_relative(s->event, &s->backoff_timer, CLOCK_MONOTONIC,
                                       (uint64_t) delay * USEC_PER_MSEC, 0, on_backoff_timer, s) < 0)
                log_error("cannot arm the backoff timer");
}

static void a_restart(Supervisor *s, const char *reason) {
        s->restarts++;
        s->backoff_delay_ms = 0;
        log_unit_event(LOG_NOTICE, "restart", REGISTRY_UNIT_NAME, "restarting the registry (restart %u, after: %s)",
                       s->restarts, s->last_failure ? s->last_failure : "?");
        start_unit(s);
}

static int on_stop_timeout(sd_event_source *src, uint64_t usec, void *userdata) {
        Supervisor *s = userdata;

        log_unit_event(LOG_ERR, "stop-timeout", REGISTRY_UNIT_NAME, "the registry did not stop within %u ms",
                       s->config.stop_timeout_ms);
        s->exit_status = -ETIMEDOUT;
        (void) sd_event_exit(s->event, 0);
        return 0;
}

static void a_stop(Supervisor *s, const char *reason) {
        enter(s, SUP_STOPPING);
        (void) sd_notify(false, "STOPPING=1");
        status(s, "stopping");
        probe_stop(s);
        s->backoff_timer = sd_event_source_disable_unref(s->backoff_timer);
        s->proxy_restart_timer = sd_event_source_disable_unref(s->proxy_restart_timer);
        (void) sd_event_add_time_relative(s->event, &s->stop_timer, CLOCK_MONOTONIC,
                                          (uint64_t) s->config.stop_timeout_ms * USEC_PER_MSEC +
                                                  (uint64_t) PROXY_DRAIN_USEC,
                                          0, on_stop_timeout, s);
        /* The proxy drains its requests first, then the registry stops. */
        if (s->proxy_pid > 0) {
                log_event(LOG_INFO, "stopping", "stopping the proxy (it drains its connections first)");
                proxy_signal(s, SIGTERM);
                return;
        }
        queue_stop_after_proxy(s);
}

static void queue_stop_after_proxy(Supervisor *s) {
        log_unit_event(LOG_INFO, "stopping", REGISTRY_UNIT_NAME, "stopping the registry");
        if (queue_job(s, "StopUnit") < 0) {
                s->exit_status = -EIO;
                (void) sd_event_exit(s->event, 0);
        }
}

static void a_stopped(Supervisor *s, const char *reason) {
        log_unit_event(LOG_INFO, "stopped", REGISTRY_UNIT_NAME, "registry stopped%s%s", reason ? ": " : "",
                       reason ? reason : "");
        (void) sd_event_exit(s->event, 0);
}

/* ---- reload ------------------------------------------------------------------ */

/* SIGHUP re-reads the configuration without touching the registry, all or
 * nothing (reload.h says which keys need a restart instead):
 *
 *   reload_start()    parse and check the file (a FILE:LINE error or the
 *                     restart-only keys refuse it here), take it, SIGHUP the
 *                     proxy and wait for its answer on the report pipe
 *   on_proxy_report() "ok": done; "failed": back to the previous
 *                     configuration, refused
 *   timeout, or the proxy exits meanwhile: refused
 *
 * Each outcome goes to RELOAD_STATUS_PATH, where `regvisor reload`
 * (ExecReload=) waits for it, to the journal (REGVISOR_EVENT=reloaded or
 * reload-failed) and to STATUS= until the next reload that applies. The
 * reload is not a state of the table: it runs alongside whatever the
 * registry does, and a SIGHUP in SUP_GAVE_UP also retries the registry. */

static void reload_start(Supervisor *s);

static void reload_finish(Supervisor *s, bool ok, const char *message) {
        int r;

        s->reload_pending = false;
        s->reload_timer = sd_event_source_disable_unref(s->reload_timer);
        free(TAKE_PTR(s->reload_refusal));
        free(s->reload_refused);
        s->reload_refused = ok ? NULL : strdup(message);
        log_event(ok ? LOG_INFO : LOG_ERR, ok ? "reloaded" : "reload-failed", "reload %lu %s: %s", s->reload_seq,
                  ok ? "applied" : "refused", message);
        r = reload_status_write(RELOAD_STATUS_PATH, s->reload_seq, ok, message);
        if (r < 0)
                log_warning("cannot write %s: %s; `regvisor reload` will not learn this outcome",
                            RELOAD_STATUS_PATH, strerror(-r));
        (void) sd_notify(false, "READY=1");
        if (s->state == SUP_RUNNING)
                maybe_ready(s);
        else if (!ok)
                status(s, "%s; last reload refused: %s", state_names[s->state], message);
        if (s->reload_again) {
                s->reload_again = false;
                reload_start(s);
        }
}

/* The pending reload's configuration stays (commit) or goes (rollback). */
static void reload_commit(Supervisor *s) {
        config_done(&s->reload_prev);
}

static void reload_rollback(Supervisor *s) {
        config_done(&s->config);
        s->config = s->reload_prev;
        s->reload_prev = (Config) {};
        certs_load(s);
        port_hosts_update(s);
}

static int on_reload_timeout(sd_event_source *src, uint64_t usec, void *userdata) {
        Supervisor *s = userdata;

        if (!s->reload_refusal)
                reload_rollback(s);
        reload_finish(s, false, "the proxy did not answer its reload in time; keeping the running configuration");
        return 0;
}

/* Parses and checks the file: 0 with *ret_fresh, or a negative errno with
 * *ret_refusal saying why the running configuration stays. */
static int reload_check(Supervisor *s, Config *ret_fresh, char **ret_refusal) {
        return reload_check_file(s->config_path, &s->config, RELOAD_SUPERVISOR | RELOAD_PROXY,
                                 "`systemctl restart regvisor`", ret_fresh, ret_refusal);
}

static void reload_start(Supervisor *s) {
        _cleanup_free_ char *msg = NULL;
        Config fresh;

        if (s->reload_pending) {
                s->reload_again = true;
                return;
        }
        (void) sd_notify(false, "RELOADING=1");
        s->reload_seq++;
        free(TAKE_PTR(s->reload_refusal));
        if (reload_check(s, &fresh, &s->reload_refusal) < 0) {
                /* The configuration stays; the proxy still loads the
                 * certificates and the CRL again (it refuses the file by
                 * itself): a revocation does not wait for the fix. */
                if (!s->reload_refusal)
                        s->reload_refusal = strdup("the configuration does not load");
        } else {
                s->reload_prev = s->config;
                s->config = fresh;
                certs_load(s);
                port_hosts_update(s);
        }
        if (s->proxy_pid <= 0) {
                /* It reads the file when it starts again. */
                if (s->reload_refusal) {
                        if (asprintf(&msg, "%s; keeping the running configuration", s->reload_refusal) < 0)
                                msg = NULL;
                        reload_finish(s, false, msg ? msg : s->reload_refusal);
                        return;
                }
                reload_commit(s);
                reload_finish(s, true, "configuration applied; the proxy, restarting, starts with it");
                return;
        }
        s->reload_pending = true;
        if (sd_event_add_time_relative(s->event, &s->reload_timer, CLOCK_MONOTONIC,
                                       RELOAD_PROXY_TIMEOUT_SEC * 1000000ULL, 0, on_reload_timeout, s) < 0)
                log_error("cannot arm the reload timer");
        proxy_signal(s, SIGHUP);
}

/* A line from the proxy parent: "ok MESSAGE" or "failed MESSAGE". */
static void on_proxy_report(Supervisor *s, char *line) {
        _cleanup_free_ char *msg = NULL;
        bool ok = strncmp(line, "ok ", 3) == 0;
        const char *text = line + (ok ? 3 : 7);
        int k;

        if (!ok && strncmp(line, "failed ", 7) != 0) {
                log_warning("proxy: unexpected report '%s'", line);
                return;
        }
        if (!s->reload_pending) {
                /* Late, after a timeout, or from a SIGHUP sent to it directly. */
                log_notice("proxy: a reload answer nobody waits for: %s", line);
                return;
        }
        if (s->reload_refusal) {
                /* Refused here already (the proxy says the same about the
                 * file): what counts from it is whether the certificates
                 * and the CRL are in. */
                if (strstr(text, "certificates and CRL reloaded"))
                        k = asprintf(&msg, "%s; keeping the running configuration (certificates and CRL "
                                     "reloaded)", s->reload_refusal);
                else
                        k = asprintf(&msg, "%s; keeping the running configuration; proxy: %s",
                                     s->reload_refusal, text);
                ok = false;
        } else {
                k = asprintf(&msg, "%s%s", ok ? "configuration applied; proxy: " : "proxy: ", text);
                if (ok)
                        reload_commit(s);
                else
                        reload_rollback(s);
        }
        reload_finish(s, ok, k >= 0 ? msg : line);
}

static int on_report_readable(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Supervisor *s = userdata;
        ssize_t n;
        char *nl;

        n = read(fd, s->report_buf + s->report_len, sizeof s->report_buf - 1 - s->report_len);
        if (n <= 0)
                return 0;
        s->report_len += (size_t) n;
        s->report_buf[s->report_len] = 0;
        while ((nl = strchr(s->report_buf, '\n'))) {
                *nl = 0;
                on_proxy_report(s, s->report_buf);
                s->report_len -= (size_t) (nl + 1 - s->report_buf);
                memmove(s->report_buf, nl + 1, s->report_len + 1);
        }
        if (s->report_len == sizeof s->report_buf - 1)
                s->report_len = 0; /* a line longer than any report: drop it */
        return 0;
}

static void a_reload(Supervisor *s, const char *reason) {
        reload_start(s);
}

static void a_retry(Supervisor *s, const char *reason) {
        reload_start(s);
        s->n_failures = 0;
        s->attempt = 0;
        log_unit_event(LOG_NOTICE, "retry", REGISTRY_UNIT_NAME, "retrying after giving up");
        start_unit(s);
}

/* The table: what each event does in each state. NULL: ignored (for
 * example our own StopUnit making the unit inactive during backoff). */
static const Action transitions[_SUP_STATE_MAX][_SUP_EVENT_MAX] = {
        [SUP_STARTING] = {
                [SUP_EV_JOB_DONE] = a_job_done_starting,
                [SUP_EV_JOB_FAILED] = a_failure,
                [SUP_EV_UNIT_DOWN] = NULL, /* the job's result decides */
                [SUP_EV_PROBE_OK] = NULL,
                [SUP_EV_TERM] = a_stop,
                [SUP_EV_HUP] = a_reload,
        },
        [SUP_WAITING_READY] = {
                [SUP_EV_UNIT_DOWN] = a_failure,
                [SUP_EV_PROBE_OK] = a_ready,
                [SUP_EV_UNHEALTHY] = a_failure,
                [SUP_EV_TERM] = a_stop,
                [SUP_EV_HUP] = a_reload,
        },
        [SUP_RUNNING] = {
                [SUP_EV_UNIT_DOWN] = a_failure,
                [SUP_EV_PROBE_OK] = a_probe_ok_running,
                [SUP_EV_UNHEALTHY] = a_failure,
                [SUP_EV_TERM] = a_stop,
                [SUP_EV_HUP] = a_reload,
        },
        [SUP_BACKOFF] = {
                [SUP_EV_TIMER] = a_restart,
                [SUP_EV_TERM] = a_stop,
                [SUP_EV_HUP] = a_reload,
        },
        [SUP_GAVE_UP] = {
                [SUP_EV_TERM] = a_stop,
                [SUP_EV_HUP] = a_retry,
        },
        [SUP_STOPPING] = {
                [SUP_EV_JOB_DONE] = a_stopped,
                [SUP_EV_JOB_FAILED] = a_stopped,
        },
};

static void dispatch(Supervisor *s, SupervisorEvent ev, const char *reason) {
        Action a = transitions[s->state][ev];

        log_debug("event %s in state %s%s%s", event_names[ev], state_names[s->state], reason ? ": " : "",
                  reason ? reason : "");
        if (a)
                a(s, reason);
}

/* ---- the proxy child ------------------------------------------------------------ */

static int proxy_spawn(Supervisor *s);

static void proxy_signal(Supervisor *s, int sig) {
        if (s->proxy_pid > 0)
                (void) kill(s->proxy_pid, sig);
}

static int on_proxy_restart_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        Supervisor *s = userdata;

        s->proxy_restart_timer = sd_event_source_disable_unref(s->proxy_restart_timer);
        s->proxy_restarts++;
        (void) proxy_spawn(s);
        return 0;
}

static int on_proxy_exit(sd_event_source *src, const siginfo_t *si, void *userdata) {
        Supervisor *s = userdata;
        unsigned delay;

        s->proxy_child = sd_event_source_disable_unref(s->proxy_child);
        s->proxy_pid = 0;
        if (s->reload_pending) {
                /* Its successor reads the file at its start. */
                if (!s->reload_refusal)
                        reload_commit(s);
                reload_finish(s, false, "the proxy exited during its reload; it restarts and reads the file "
                                        "again");
        }
        if (s->state == SUP_STOPPING) {
                log_event(LOG_INFO, "proxy-stopped", "proxy stopped");
                queue_stop_after_proxy(s);
                return 0;
        }
        if (now_usec() - s->proxy_started >= PROXY_HEALTHY_RESET_USEC)
                s->proxy_attempt = 0;
        delay = supervisor_backoff_ms(++s->proxy_attempt, 1000, PROXY_RESTART_MAX_MS);
        log_event(LOG_ERR, "proxy-exited", "proxy %s %d: restarting it in %u ms",
                  si->si_code == CLD_EXITED ? "exited with status" : "killed by signal", si->si_status, delay);
        (void) sd_event_add_time_relative(s->event, &s->proxy_restart_timer, CLOCK_MONOTONIC,
                                          (uint64_t) delay * USEC_PER_MSEC, 0, on_proxy_restart_timer, s);
        return 0;
}

/* `regvisor proxy` as a fresh process (exec of ourselves): it inherits
 * nothing of this loop or its bus connections, binds the ports while it
 * still has CAP_NET_BIND_SERVICE, and drops to the proxy user in its
 * workers. */
static int proxy_spawn(Supervisor *s) {
        sigset_t all;
        pid_t pid;
        int r;

        pid = fork();
        if (pid < 0)
                return log_error_errno(-errno, "cannot fork the proxy: %m");
        if (pid == 0) {
                char *argv[] = {(char *) "regvisor", (char *) "proxy", (char *) "--config",
                                (char *) s->config_path, NULL};
                sigemptyset(&all);
                (void) sigprocmask(SIG_SETMASK, &all, NULL);
                /* Readiness and the watchdog are ours to report. */
                (void) unsetenv("NOTIFY_SOCKET");
                (void) unsetenv("WATCHDOG_USEC");
                (void) unsetenv("WATCHDOG_PID");
                (void) prctl(PR_SET_PDEATHSIG, SIGTERM);
                /* The counters' memfd, without O_CLOEXEC (dup() clears it). */
                if (s->metrics_fd >= 0) {
                        char n[16];
                        int fd = dup(s->metrics_fd);
                        (void) snprintf(n, sizeof n, "%d", fd);
                        if (fd >= 0)
                                (void) setenv(PROXY_METRICS_FD_ENV, n, 1);
                }
                /* The write end of the report pipe, the same way. */
                if (s->report_pipe[1] >= 0) {
                        char n[16];
                        int fd = dup(s->report_pipe[1]);
                        (void) snprintf(n, sizeof n, "%d", fd);
                        if (fd >= 0)
                                (void) setenv(PROXY_REPORT_FD_ENV, n, 1);
                }
                execv("/proc/self/exe", argv);
                _exit(127);
        }
        s->proxy_pid = pid;
        s->proxy_started = now_usec();
        r = sd_event_add_child(s->event, &s->proxy_child, pid, WEXITED, on_proxy_exit, s);
        if (r < 0)
                return log_error_errno(r, "cannot watch the proxy: %s", strerror(-r));
        log_event(LOG_INFO, "proxy-start", "proxy started (pid %d)", (int) pid);
        return 0;
}

/* ---- the status listener --------------------------------------------------- */

static void certs_clear(Supervisor *s) {
        for (size_t i = 0; i < s->n_certs; i++)
                free(s->certs[i].name);
        s->n_certs = 0;
}

static void cert_add(Supervisor *s, const char *name, const char *path) {
        _cleanup_free_ char *pem = NULL;
        X509 *x = NULL;
        size_t n;
        time_t t;

        if (s->n_certs >= ELEMENTSOF(s->certs) || read_file(path, 1 << 20, &pem, &n) < 0 ||
            pki_cert_from_pem(pem, n, &x) < 0)
                return;
        if (pki_cert_not_after(x, &t) >= 0 && (s->certs[s->n_certs].name = strdup(name)))
                s->certs[s->n_certs++].not_after = t;
        X509_free(x);
}

/* Expiry of every certificate in the tree, read at start and on SIGHUP
 * (certificates are public files: no privilege needed). */
static void certs_load(Supervisor *s) {
        _cleanup_free_ char *pattern = NULL;
        char path[4096];
        glob_t g;

        certs_clear(s);
        (void) snprintf(path, sizeof path, "%s/ca/ca.crt", s->config.tls_dir);
        cert_add(s, "server-ca", path);
        (void) snprintf(path, sizeof path, "%s/registry.crt", s->config.tls_dir);
        cert_add(s, "server", path);
        (void) snprintf(path, sizeof path, "%s/clients/ca.crt", s->config.tls_dir);
        cert_add(s, "client-ca", path);
        if (asprintf(&pattern, "%s/clients/*.crt", s->config.tls_dir) < 0)
                return;
        if (glob(pattern, 0, NULL, &g) != 0)
                return;
        for (size_t i = 0; i < g.gl_pathc; i++) {
                const char *base = strrchr(g.gl_pathv[i], '/') + 1;
                char name[300];
                if (streq(base, "ca.crt"))
                        continue;
                (void) snprintf(name, sizeof name, "client/%.*s", (int) (strlen(base) - 4), base);
                cert_add(s, name, g.gl_pathv[i]);
        }
        globfree(&g);
}

static int render_status(StatusEndpoint which, FILE *out, void *userdata) {
        Supervisor *s = userdata;

        switch (which) {
        case STATUS_LIVEZ:
                /* Answered by the loop itself: if this arrives, it runs. */
                fputs("ok\n", out);
                return 200;

        case STATUS_READYZ:
                if (s->state == SUP_RUNNING && s->proxy_listening) {
                        fputs("ok\n", out);
                        return 200;
                }
                if (s->state != SUP_RUNNING)
                        fprintf(out, "registry: %s%s%s\n", state_names[s->state], s->last_failure ? ": " : "",
                                s->last_failure ? s->last_failure : "");
                for (int i = 0; i < 2; i++)
                        if (!s->port_ok[i])
                                fprintf(out, "proxy-%s: port %u does not accept connections at %s\n",
                                        i == 0 ? "pull" : "push",
                                        i == 0 ? s->config.pull.listen.port : s->config.push.listen.port,
                                        s->probe_host[i]);
                return 503;

        case STATUS_METRICS:
                fputs("# HELP regvisor_supervisor_state The supervisor's state (1 for the current one).\n"
                      "# TYPE regvisor_supervisor_state gauge\n",
                      out);
                for (int i = 0; i < _SUP_STATE_MAX; i++)
                        fprintf(out, "regvisor_supervisor_state{state=\"%s\"} %d\n", state_names[i],
                                i == (int) s->state);
                fprintf(out,
                        "# HELP regvisor_registry_ready 1 when GET /v2/ on the registry's socket answers 200.\n"
                        "# TYPE regvisor_registry_ready gauge\n"
                        "regvisor_registry_ready %d\n"
                        "# HELP regvisor_registry_restarts_total Restarts of the registry by the supervisor.\n"
                        "# TYPE regvisor_registry_restarts_total counter\n"
                        "regvisor_registry_restarts_total %u\n"
                        "# HELP regvisor_registry_failures_in_window Failures counted towards restart_limit.\n"
                        "# TYPE regvisor_registry_failures_in_window gauge\n"
                        "regvisor_registry_failures_in_window %u\n"
                        "# HELP regvisor_registry_backoff_seconds Current restart delay (0 unless waiting).\n"
                        "# TYPE regvisor_registry_backoff_seconds gauge\n"
                        "regvisor_registry_backoff_seconds %.3f\n"
                        "# HELP regvisor_registry_last_ready_timestamp_seconds Last successful probe.\n"
                        "# TYPE regvisor_registry_last_ready_timestamp_seconds gauge\n"
                        "regvisor_registry_last_ready_timestamp_seconds %lld\n"
                        "# HELP regvisor_proxy_listening 1 when both proxy ports accept connections.\n"
                        "# TYPE regvisor_proxy_listening gauge\n"
                        "regvisor_proxy_listening %d\n"
                        "# HELP regvisor_proxy_restarts_total Restarts of the proxy by the supervisor.\n"
                        "# TYPE regvisor_proxy_restarts_total counter\n"
                        "regvisor_proxy_restarts_total %u\n",
                        s->state == SUP_RUNNING, s->restarts, s->n_failures,
                        s->state == SUP_BACKOFF ? s->backoff_delay_ms / 1000.0 : 0.0,
                        (long long) s->last_probe_ok_wall, s->proxy_listening, s->proxy_restarts);
                fputs("# HELP regvisor_certificate_expiry_timestamp_seconds notAfter of each certificate.\n"
                      "# TYPE regvisor_certificate_expiry_timestamp_seconds gauge\n",
                      out);
                for (size_t i = 0; i < s->n_certs; i++)
                        fprintf(out, "regvisor_certificate_expiry_timestamp_seconds{certificate=\"%s\"} %lld\n",
                                s->certs[i].name, (long long) s->certs[i].not_after);
                fprintf(out,
                        "# HELP regvisor_info The running version and the pinned image.\n"
                        "# TYPE regvisor_info gauge\n"
                        "regvisor_info{version=\"%s\",image_digest=\"%s\"} 1\n",
                        REGVISOR_VERSION, s->config.image_digest);
                if (s->metrics)
                        (void) proxy_metrics_render(s->metrics, out);
                return 200;
        }
        return 500;
}

/* ---- signals ---------------------------------------------------------------- */

static int on_signal(sd_event_source *src, const struct signalfd_siginfo *si, void *userdata) {
        Supervisor *s = userdata;

        dispatch(s, si->ssi_signo == SIGHUP ? SUP_EV_HUP : SUP_EV_TERM, NULL);
        return 0;
}

/* ---- start-up ----------------------------------------------------------------- */

static int ensure_user_manager(Supervisor *s) {
        _cleanup_free_ char *unit = NULL, *state = NULL, *error = NULL, *linger = NULL;
        struct stat st;
        int r;

        if (asprintf(&linger, LINGER_DIR "/%s", s->config.service_user) < 0 ||
            asprintf(&unit, "user@%u.service", (unsigned) s->uid) < 0)
                return log_error_errno(-ENOMEM, "out of memory");
        if (lstat(linger, &st) < 0)
                log_warning("linger is off for %s (%s missing): its manager stops at logout; "
                            "run `regvisor provision`", s->config.service_user, linger);

        r = bus_get_unit_active_state(s->system_bus, unit, &state, &error);
        if (r < 0)
                return log_error_errno(r, "cannot read the state of %s: %s", unit, error ? error : strerror(-r));
        if (!streq(state, "active")) {
                log_unit_event(LOG_NOTICE, "user-manager-start", unit, "%s is %s: starting it", unit, state);
                free(TAKE_PTR(error));
                r = bus_start_unit(s->system_bus, unit, USER_MANAGER_TIMEOUT_USEC, &error);
                if (r < 0)
                        return log_error_errno(r, "cannot start %s: %s", unit, error ? error : strerror(-r));
        }

        r = bus_open_user_manager(s->config.service_user, &s->user_bus);
        if (r < 0)
                return log_error_errno(r, "cannot reach the user manager of %s: %s", s->config.service_user,
                                       strerror(-r));
        return 0;
}

/* Runs `podman GLOBAL-OPTIONS args...` as the service user inside its own
 * manager, as a transient unit: the supervisor itself never execs podman,
 * so its own unit can stay sandboxed (rootless podman needs setuid
 * newuidmap and more than the supervisor's capability bounding set). */
static int podman_in_user_manager(Supervisor *s, char *const *args, int *ret_status, char **ret_error) {
        _cleanup_strv_free_ char **global = NULL, **env = NULL;
        _cleanup_free_ char **argv = NULL, *name = NULL;
        static unsigned counter;
        size_t n = 0, i = 0;
        int r;

        r = render_podman_global_args(s->uid, &global);
        if (r >= 0)
                r = render_podman_env(s->uid, &env);
        if (r < 0)
                return r;
        for (char *const *a = args; *a; a++)
                n++;
        argv = calloc(1 + 4 + n + 1, sizeof(char *));
        if (!argv || asprintf(&name, "regvisor-podman-%d-%u.service", (int) getpid(), ++counter) < 0)
                return -ENOMEM;
        argv[i++] = (char *) "/usr/bin/podman";
        for (char **g = global; *g; g++)
                argv[i++] = *g;
        for (char *const *a = args; *a; a++)
                argv[i++] = *a;
        return bus_run_transient(s->user_bus, name, argv, env, 600ULL * 1000000ULL, ret_status, ret_error);
}

/* The image must be in the service user's storage with exactly the pinned
 * digest before anything starts; it is never run by tag. */
static int ensure_image(Supervisor *s) {
        _cleanup_free_ char *error = NULL;
        char *exists[] = {(char *) "image", (char *) "exists", s->config.image, NULL};
        int status, r;

        r = podman_in_user_manager(s, exists, &status, &error);
        if (r < 0)
                return log_error_errno(r, "cannot query %s's image storage: %s", s->config.service_user,
                                       error ? error : strerror(-r));
        if (status == 0)
                return 0;
        if (status != 1)
                return log_error_errno(-EIO,
                                       "podman image exists failed with status %d (journalctl --user -M %s@ shows "
                                       "why): refusing to start",
                                       status, s->config.service_user);
        if (!s->config.image_archive)
                return log_error_errno(-ENOENT,
                                       "%s is not in %s's image storage with that digest: refusing to start "
                                       "(run `regvisor provision` to pull it, or set [registry] image_archive)",
                                       s->config.image, s->config.service_user);

        log_event(LOG_NOTICE, "image-load", "loading %s from %s", s->config.image, s->config.image_archive);
        char *load[] = {(char *) "load", (char *) "--quiet", (char *) "--input", s->config.image_archive, NULL};
        r = podman_in_user_manager(s, load, &status, &error);
        if (r >= 0 && status == 0)
                r = podman_in_user_manager(s, exists, &status, &error);
        if (r < 0 || status != 0)
                return log_error_errno(r < 0 ? r : -EBADMSG, "%s does not provide %s: refusing to start",
                                       s->config.image_archive, s->config.image);
        return 0;
}

static int setup_bus(Supervisor *s) {
        _cleanup_free_ char *error = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_attach_event(s->user_bus, s->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "cannot attach the user bus to the event loop: %s", strerror(-r));
        /* Without Subscribe() systemd sends no unit PropertiesChanged. */
        r = sd_bus_call_method(s->user_bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                               "org.freedesktop.systemd1.Manager", "Subscribe", &e, NULL, NULL);
        if (r < 0) {
                log_error_errno(r, "Subscribe: %s", e.message ? e.message : strerror(-r));
                sd_bus_error_free(&e);
                return r;
        }
        r = bus_get_unit_path(s->user_bus, REGISTRY_UNIT_NAME, &s->unit_path, &error);
        if (r < 0)
                return log_error_errno(r, "LoadUnit(%s): %s", REGISTRY_UNIT_NAME, error ? error : strerror(-r));
        r = sd_bus_match_signal(s->user_bus, NULL, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                "org.freedesktop.systemd1.Manager", "JobRemoved", on_job_removed, s);
        if (r >= 0)
                r = sd_bus_match_signal(s->user_bus, NULL, "org.freedesktop.systemd1", s->unit_path,
                                        "org.freedesktop.DBus.Properties", "PropertiesChanged",
                                        on_unit_properties_changed, s);
        if (r < 0)
                return log_error_errno(r, "cannot subscribe to %s's signals: %s", REGISTRY_UNIT_NAME, strerror(-r));
        return 0;
}

static void supervisor_free(Supervisor *s) {
        probe_stop(s);
        if (s->proxy_pid > 0) {
                /* Leaving on an error path: do not orphan the proxy. */
                (void) kill(s->proxy_pid, SIGTERM);
                (void) waitpid(s->proxy_pid, NULL, 0);
        }
        sd_event_source_disable_unref(s->proxy_child);
        sd_event_source_disable_unref(s->proxy_restart_timer);
        proxy_metrics_unmap(s->metrics);
        if (s->metrics_fd >= 0)
                (void) close(s->metrics_fd);
        status_server_free(s->status_server);
        certs_clear(s);
        sd_event_source_disable_unref(s->report_source);
        sd_event_source_disable_unref(s->reload_timer);
        for (int i = 0; i < 2; i++)
                if (s->report_pipe[i] >= 0)
                        (void) close(s->report_pipe[i]);
        config_done(&s->reload_prev);
        free(s->reload_refused);
        free(s->reload_refusal);
        sd_event_source_disable_unref(s->backoff_timer);
        sd_event_source_disable_unref(s->stop_timer);
        sd_bus_slot_unref(s->job_call);
        if (s->user_bus)
                sd_bus_flush_close_unref(s->user_bus);
        if (s->system_bus)
                sd_bus_flush_close_unref(s->system_bus);
        sd_event_unref(s->event);
        free(s->unit_path);
        free(s->job);
        free(s->early_job);
        free(s->early_result);
        free(s->last_failure);
        free(s->home);
        config_done(&s->config);
}

int supervisor_run(const char *config_path, Config *config) {
        Supervisor s = {.config_path = config_path, .state = SUP_STARTING, .metrics_fd = -1,
                        .report_pipe = {-1, -1}};
        struct passwd *pw;
        struct group *gr;
        sigset_t mask;
        int r;

        s.config = *config;
        *config = (Config) {};
        pw = getpwnam(s.config.service_user);
        if (!pw) {
                config_done(&s.config);
                return log_error_errno(-ESRCH, "service user %s does not exist: run `regvisor provision`",
                                       s.config.service_user);
        }
        s.uid = pw->pw_uid;
        s.gid = pw->pw_gid;
        s.home = strdup(pw->pw_dir);

        /* The registry's socket directory is 0750 service:proxy-group, and
         * our unit keeps no CAP_DAC_*: join the proxy's group to probe it. */
        gr = getgrnam(s.config.proxy_user);
        if (gr && setgroups(1, &gr->gr_gid) < 0)
                log_warning("cannot join group %s: %m; probing the registry's socket may fail",
                            s.config.proxy_user);

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGCHLD); /* sd_event_add_child() needs it blocked */
        (void) sigprocmask(SIG_BLOCK, &mask, NULL);

        r = sd_event_default(&s.event);
        if (r < 0) {
                log_error_errno(r, "cannot create the event loop: %s", strerror(-r));
                goto out;
        }
        if ((r = sd_event_add_signal(s.event, NULL, SIGTERM, on_signal, &s)) < 0 ||
            (r = sd_event_add_signal(s.event, NULL, SIGINT, on_signal, &s)) < 0 ||
            (r = sd_event_add_signal(s.event, NULL, SIGHUP, on_signal, &s)) < 0) {
                log_error_errno(r, "cannot watch signals: %s", strerror(-r));
                goto out;
        }
        /* WATCHDOG=1 from the loop itself, at half of WatchdogSec. */
        (void) sd_event_set_watchdog(s.event, true);

        status(&s, "checking the user manager and the image");
        r = bus_open_system(&s.system_bus);
        if (r < 0) {
                log_error_errno(r, "cannot connect to the system bus: %s", strerror(-r));
                goto out;
        }
        r = ensure_user_manager(&s);
        if (r < 0)
                goto out;
        r = ensure_image(&s);
        if (r < 0) {
                status(&s, "refusing to start: pinned image %s not present", s.config.image_digest);
                goto out;
        }
        r = setup_bus(&s);
        if (r < 0)
                goto out;
        certs_load(&s);
        r = status_server_new(s.event, &s.config.status_listen, render_status, &s, &s.status_server);
        if (r < 0) {
                log_error_errno(r, "cannot listen on [status] listen port %u: %s", s.config.status_listen.port,
                                strerror(-r));
                goto out;
        }

        /* The proxy's counters: shared with it, read here for /metrics. */
        r = proxy_metrics_memfd_new(&s.metrics_fd);
        if (r >= 0)
                r = proxy_metrics_map_fd(s.metrics_fd, false, (ProxyMetrics **) &s.metrics);
        if (r < 0)
                log_warning("cannot share the proxy's counters: %s; /metrics shows no proxy metrics",
                            strerror(-r));
        /* The proxy's reload outcomes. Non-blocking on both ends: a
         * supervisor that is gone must not hang the proxy parent. */
        if (pipe2(s.report_pipe, O_CLOEXEC | O_NONBLOCK) < 0 ||
            sd_event_add_io(s.event, &s.report_source, s.report_pipe[0], EPOLLIN, on_report_readable, &s) < 0)
                log_warning("cannot set up the proxy's report pipe: %m; reloads will time out waiting for it");
        /* Outcomes count on from the last run's: `regvisor reload` waits
         * for a SEQ other than the one it read. */
        {
                bool ok;
                if (reload_status_read(RELOAD_STATUS_PATH, &s.reload_seq, &ok, NULL) < 0)
                        s.reload_seq = 0;
        }
        port_hosts_update(&s);
        r = proxy_spawn(&s);
        if (r < 0)
                goto out;
        log_unit_event(LOG_INFO, "start", REGISTRY_UNIT_NAME, "supervising %s (%s)", REGISTRY_UNIT_NAME,
                       s.config.image);
        start_unit(&s);
        r = sd_event_loop(s.event);
        if (r < 0)
                log_error_errno(r, "event loop failed: %s", strerror(-r));
        else
                r = s.exit_status;
out:
        supervisor_free(&s);
        return r;
}
