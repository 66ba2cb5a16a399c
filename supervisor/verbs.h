/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The subcommands of the regvisor binary, one file each (cmd-*.c) in the
 * systemd tool shape: static arg_*, help(), parse_argv(), run(). Each takes
 * argv with argv[0] being the verb's name and returns an exit status.
 */

#include "config.h"

int verb_provision(int argc, char **argv);
int verb_run(int argc, char **argv);
int verb_reload(int argc, char **argv);
int verb_pki(int argc, char **argv);
int verb_proxy(int argc, char **argv);
int verb_version(int argc, char **argv);
int verb_health(int argc, char **argv);

/* Loads and validates the configuration, logging one clear line on error.
 * Returns 0 or a negative errno. */
int verb_load_config(const char *path, Config *ret);
