/* SPDX-License-Identifier: MIT */
/* regvisor gc: reclaim the registry's space in a safe window
 * (supervisor/gc/gc.h; INSTALL.md, "Day 2: reclaiming space"). */
#include <stdio.h>

#include "config.h"
#include "gc.h"
#include "log.h"
#include "macro.h"
#include "verbs.h"

static const char *arg_config = CONFIG_DEFAULT_PATH;
static bool arg_dry_run = false;

static void help(void) {
        printf("Usage: regvisor gc [OPTIONS]\n\n"
               "Reclaim the space of deleted and unreferenced blobs and of abandoned\n"
               "uploads, safely: pushes are refused (503, Retry-After) and the registry\n"
               "runs read-only while pulls go on; a dry run that would delete more than\n"
               "[gc] max_delete_share stops it; afterwards every blob every tagged\n"
               "manifest references is checked. Needs the running regvisor.service.\n\n"
               "  -c --config FILE  configuration (default " CONFIG_DEFAULT_PATH ")\n"
               "     --dry-run      only say what would be deleted (no window)\n"
               "  -h --help         this help\n");
}

static const VerbOption options[] = {
        {"config", 'c', OPTION_STRING, &arg_config},
        {"dry-run", 0, OPTION_FLAG, &arg_dry_run},
};
static const VerbSyntax syntax = {"gc", help, options, ELEMENTSOF(options), 0, false};

int verb_gc(int argc, char **argv) {
        _cleanup_(config_done) Config config = {};
        int r = verb_parse_argv(&syntax, argc, argv, NULL);

        if (r <= 0)
                return r < 0 ? 2 : 0;
        /* What was freed, and every step, belongs in the journal also when
         * an operator runs it from a terminal. */
        log_set_tee_journal(true);
        if (verb_load_config(arg_config, &config) < 0)
                return 1;
        return gc_run(&config, &(GcOptions) {.dry_run = arg_dry_run}) < 0 ? 1 : 0;
}
