/* SPDX-License-Identifier: MIT */
/*
 * The supervisor's state x event table and its cells: what each event does
 * in each state (supervise.h lists both). Everything that happens to the
 * registry arrives here as an event through table_dispatch(); the actions
 * talk to the unit (unit.c), the probes (readiness.c), the proxy
 * (proxy-child.c) and systemd's notify socket (notify.c).
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-event.h>

#include "log.h"
#include "macro.h"
#include "paths.h"
#include "proxy.h"
#include "stop.h"
#include "supervisor.h"

/* The proxy must be able to drain within what the stop budget gives it. */
_Static_assert(PROXY_STOP_SECONDS <= REGVISOR_PROXY_STOP_SEC, "stop.h: the proxy stops later than its stop budget");

typedef void (*Action)(Supervisor *s, const char *reason);

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

/* ---- actions: the cells of the table ---------------------------------------- */

static void enter(Supervisor *s, SupervisorState state) {
        if (s->state != state)
                log_debug("state %s -> %s", state_names[s->state], state_names[state]);
        s->state = state;
}

void table_start(Supervisor *s) {
        enter(s, SUP_STARTING);
        unit_reset_failed(s);
        s->probing_since = now_usec();
        if (unit_queue_job(s, "StartUnit") < 0)
                table_dispatch(s, SUP_EV_JOB_FAILED, "StartUnit could not be sent");
        notify_status(s, "starting %s", REGISTRY_UNIT_NAME);
}

/* A planned restart of the registry: one RestartUnit job, then the table
 * brings it back to ready as after a start; no failure is counted. */
static void restart_registry(Supervisor *s) {
        readiness_stop(s);
        enter(s, SUP_STARTING);
        s->probing_since = now_usec();
        if (unit_queue_job(s, "RestartUnit") < 0)
                table_dispatch(s, SUP_EV_JOB_FAILED, "RestartUnit could not be sent");
}

void table_restart(Supervisor *s) {
        restart_registry(s);
        notify_status(s, "restarting %s %s", REGISTRY_UNIT_NAME, s->registry_readonly ? "read-only" : "read-write");
}

void table_upgrade(Supervisor *s) {
        /* Backing off or given up: the next start runs the new unit. */
        if (s->state != SUP_STARTING && s->state != SUP_WAITING_READY && s->state != SUP_RUNNING)
                return;
        log_unit_event(LOG_NOTICE, "upgrade", REGISTRY_UNIT_NAME, "restarting the registry on %s",
                       s->config.image);
        /* One job: stop (the registry drains, http.draintimeout), start on
         * the unit provision wrote; unit-down meanwhile is the job's. */
        restart_registry(s);
        notify_status(s, "restarting %s on a new image", REGISTRY_UNIT_NAME);
}

static void a_job_done_starting(Supervisor *s, const char *reason) {
        enter(s, SUP_WAITING_READY);
        s->probing_since = now_usec();
        notify_status(s, "%s active, waiting for GET /v2/", REGISTRY_UNIT_NAME);
        readiness_schedule(s, 0);
}

static void a_ready(Supervisor *s, const char *reason) {
        enter(s, SUP_RUNNING);
        s->healthy_since = now_usec();
        log_unit_event(LOG_INFO, "ready", REGISTRY_UNIT_NAME, "registry ready: GET /v2/ answers 200 (restarts so far: %u)",
                       s->restarts);
        notify_maybe_ready(s);
}

static void a_probe_ok_running(Supervisor *s, const char *reason) {
        maintenance_sync(s, false);
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
        table_dispatch(s, SUP_EV_TIMER, NULL);
        return 0;
}

static void a_failure(Supervisor *s, const char *reason) {
        unsigned delay;

        readiness_stop(s);
        free(s->last_failure);
        s->last_failure = strdup(reason ? reason : "unknown");
        s->attempt++;

        if (record_failure(s)) {
                enter(s, SUP_GAVE_UP);
                log_unit_event(LOG_ERR, "gave-up", REGISTRY_UNIT_NAME,
                               "registry failed %u times within %u ms (last: %s): giving up; "
                               "`systemctl reload regvisor` tries again",
                               s->n_failures, s->config.restart_window_ms, s->last_failure);
                notify_status(s, "gave up: %u failures within %us, last: %s", s->n_failures,
                       s->config.restart_window_ms / 1000, s->last_failure);
                (void) unit_queue_job(s, "StopUnit");
                return;
        }

        delay = supervisor_backoff_ms(s->attempt, s->config.restart_delay_ms, s->config.restart_delay_max_ms);
        s->backoff_delay_ms = delay;
        enter(s, SUP_BACKOFF);
        log_unit_event(LOG_WARNING, "restart-scheduled", REGISTRY_UNIT_NAME,
                       "registry failed (%s): restarting in %u ms (attempt %u, delay_ms=%u)", s->last_failure, delay,
                       s->attempt, delay);
        notify_status(s, "restarting in %u ms after: %s", delay, s->last_failure);
        /* Cancel systemd's own pending auto-restart, or stop a hung
         * container, before our delayed start. */
        (void) unit_queue_job(s, "StopUnit");
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
        table_start(s);
}

static int on_stop_timeout(sd_event_source *src, uint64_t usec, void *userdata) {
        Supervisor *s = userdata;

        log_unit_event(LOG_ERR, "stop-timeout", REGISTRY_UNIT_NAME, "the registry did not stop within %u ms",
                       s->config.stop_timeout_ms);
        s->exit_status = -ETIMEDOUT;
        (void) sd_event_exit(s->event, 0);
        return 0;
}

/* The proxy outlived its share of the stop budget (stop.h): kill it, so
 * that the registry still gets its stop_timeout before systemd's
 * TimeoutStopSec. Its exit then stops the registry (on_proxy_exit). */
static int on_drain_timeout(sd_event_source *src, uint64_t usec, void *userdata) {
        Supervisor *s = userdata;

        s->stop_timer = sd_event_source_disable_unref(s->stop_timer);
        log_event(LOG_WARNING, "proxy-kill", "the proxy did not stop within %u s: killing it",
                  REGVISOR_PROXY_STOP_SEC);
        proxy_child_signal(s, SIGKILL);
        return 0;
}

static void arm_stop_timer(Supervisor *s, uint64_t usec, sd_event_time_handler_t handler) {
        s->stop_timer = sd_event_source_disable_unref(s->stop_timer);
        if (sd_event_add_time_relative(s->event, &s->stop_timer, CLOCK_MONOTONIC, usec, 0, handler, s) < 0)
                log_error("cannot arm the stop timer");
}

static void a_stop(Supervisor *s, const char *reason) {
        enter(s, SUP_STOPPING);
        notify_stopping(s);
        readiness_stop(s);
        s->backoff_timer = sd_event_source_disable_unref(s->backoff_timer);
        s->proxy.restart_timer = sd_event_source_disable_unref(s->proxy.restart_timer);
        /* The proxy drains its requests first, then the registry stops:
         * each within its share of the stop budget (stop.h). */
        if (s->proxy.pid > 0) {
                log_event(LOG_INFO, "stopping", "stopping the proxy (it drains its connections first)");
                arm_stop_timer(s, REGVISOR_PROXY_STOP_SEC * USEC_PER_SEC, on_drain_timeout);
                proxy_child_signal(s, SIGTERM);
                return;
        }
        table_proxy_stopped(s);
}

void table_proxy_stopped(Supervisor *s) {
        /* Nothing reads or writes signatures any more. */
        sigstore_child_stop(s);
        log_unit_event(LOG_INFO, "stopping", REGISTRY_UNIT_NAME, "stopping the registry");
        arm_stop_timer(s, (uint64_t) s->config.stop_timeout_ms * USEC_PER_MSEC, on_stop_timeout);
        if (unit_queue_job(s, "StopUnit") < 0) {
                s->exit_status = -EIO;
                (void) sd_event_exit(s->event, 0);
        }
}

static void a_stopped(Supervisor *s, const char *reason) {
        log_unit_event(LOG_INFO, "stopped", REGISTRY_UNIT_NAME, "registry stopped%s%s", reason ? ": " : "",
                       reason ? reason : "");
        (void) sd_event_exit(s->event, 0);
}

static void a_reload(Supervisor *s, const char *reason) {
        reconf_start(s);
}

static void a_retry(Supervisor *s, const char *reason) {
        reconf_start(s);
        s->n_failures = 0;
        s->attempt = 0;
        log_unit_event(LOG_NOTICE, "retry", REGISTRY_UNIT_NAME, "retrying after giving up");
        table_start(s);
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

void table_dispatch(Supervisor *s, SupervisorEvent ev, const char *reason) {
        Action a = transitions[s->state][ev];

        log_debug("event %s in state %s%s%s", event_names[ev], state_names[s->state], reason ? ": " : "",
                  reason ? reason : "");
        if (a)
                a(s, reason);
}
