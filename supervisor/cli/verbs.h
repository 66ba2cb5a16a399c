/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The subcommands of the regvisor binary, one file each (cmd-*.c) in the
 * systemd tool shape: static arg_*, help(), parse_argv(), run(). Each takes
 * argv with argv[0] being the verb's name and returns an exit status.
 */

#include <stdbool.h>

#include "config.h"

int verb_provision(int argc, char **argv);
int verb_run(int argc, char **argv);
int verb_reload(int argc, char **argv);
int verb_pki(int argc, char **argv);
int verb_proxy(int argc, char **argv);
int verb_sigstore(int argc, char **argv);
int verb_version(int argc, char **argv);
int verb_health(int argc, char **argv);

/* Loads and validates the configuration, logging one clear line on error.
 * Returns 0 or a negative errno. */
int verb_load_config(const char *path, Config *ret);

/* Whether argv (the arguments after the verb) holds "--help" before any
 * "--": then the verb shows its help whatever else is there. */
bool argv_wants_help(int argc, char **argv);

/* For verbs that take options only: after getopt, logs one clear line naming
 * the first leftover argument and returns -EINVAL; 0 when there is none. */
int verb_no_arguments(const char *verb, int argc, char **argv);
