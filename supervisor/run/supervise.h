/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * `regvisor run`: keeps the registry's user unit up through systemd's D-Bus
 * API, on one sd-event loop. Supervision is an explicit state x event table
 * (table.c): unit state comes from PropertiesChanged signals and
 * JobRemoved, readiness from the GET /v2/ probe, restarts follow an
 * exponential backoff and stop after a number of failures in a window.
 */

#include "config.h"

typedef enum SupervisorState {
        SUP_STARTING,      /* StartUnit job queued, not finished */
        SUP_WAITING_READY, /* unit active, /v2/ not answering 200 yet */
        SUP_RUNNING,       /* /v2/ answers 200 */
        SUP_BACKOFF,       /* failed; restart timer armed */
        SUP_GAVE_UP,       /* too many failures in the window; SIGHUP retries */
        SUP_STOPPING,      /* SIGTERM: stopping the unit, then exit */
        _SUP_STATE_MAX,
} SupervisorState;

typedef enum SupervisorEvent {
        SUP_EV_JOB_DONE,   /* our StartUnit/StopUnit job finished: done */
        SUP_EV_JOB_FAILED, /* ... with another result, or the call failed */
        SUP_EV_UNIT_DOWN,  /* unit failed, inactive, or waiting to auto-restart */
        SUP_EV_PROBE_OK,   /* GET /v2/ answered 200 */
        SUP_EV_UNHEALTHY,  /* probes failing for unhealthy_after */
        SUP_EV_TIMER,      /* the backoff timer fired */
        SUP_EV_TERM,       /* SIGTERM or SIGINT */
        SUP_EV_HUP,        /* SIGHUP */
        _SUP_EVENT_MAX,
} SupervisorEvent;

const char *supervisor_state_to_string(SupervisorState s);
const char *supervisor_event_to_string(SupervisorEvent e);

/* The restart delay after `attempt` consecutive failures (1 = first):
 * base doubling up to max. Pure, for tests. */
unsigned supervisor_backoff_ms(unsigned attempt, unsigned base_ms, unsigned max_ms);

/* Runs the supervisor until SIGTERM on *config, which the command line
 * loaded and validated from config_path (read again on each reload). Takes
 * over *config: it is freed on every path and left empty. Returns 0 after a
 * clean stop, or a negative errno when it could not start (each logged
 * once). */
int supervisor_run(const char *config_path, Config *config);
