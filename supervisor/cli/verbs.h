/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The subcommands of the regvisor binary, one file each (cmd-*.c) in the
 * systemd tool shape: static arg_*, help(), parse_argv(), run(). Each takes
 * argv with argv[0] being the verb's name and returns an exit status.
 */

#include <stdbool.h>

#include "config.h"
#include "provision.h"

int verb_provision(int argc, char **argv);
int verb_deprovision(int argc, char **argv);

/* provision's and deprovision's line per row, as it is done. */
void provision_print_result(const ProvisionResult *r, void *userdata);
int verb_run(int argc, char **argv);
int verb_reload(int argc, char **argv);
int verb_pki(int argc, char **argv);
int verb_client(int argc, char **argv);
int verb_proxy(int argc, char **argv);
int verb_sigstore(int argc, char **argv);
int verb_version(int argc, char **argv);
int verb_health(int argc, char **argv);
int verb_gc(int argc, char **argv);

/* Loads and validates the configuration, logging one clear line on error.
 * Returns 0 or a negative errno. */
int verb_load_config(const char *path, Config *ret);

/* Whether argv (the arguments after the verb) holds "--help" before any
 * "--": then the verb shows its help whatever else is there. */
bool argv_wants_help(int argc, char **argv);

/* One option of a verb: a row of its table. */
typedef enum {
        OPTION_STRING, /* *(const char **) target = the argument */
        OPTION_FLAG,   /* *(bool *) target = true */
        OPTION_CALL,   /* call(the argument, or NULL without has_arg) */
} VerbOptionKind;

typedef struct {
        const char *name; /* the long name, without "--" */
        char short_name;  /* 0: long only */
        VerbOptionKind kind;
        void *target;
        /* OPTION_CALL: <0 refused (it logged why), 0 done: exit 0 now
         * (e.g. --list), >0 go on. */
        int (*call)(const char *arg);
        bool has_arg; /* OPTION_CALL only: the others know */
} VerbOption;

/* Rows that mean the same in every verb that has them. */
#define OPTION_CONFIG(target) {"config", 'c', OPTION_STRING, (target), NULL, false}
#define OPTION_ROOT(target) {"root", 0, OPTION_STRING, (target), NULL, false}
#define OPTION_DRY_RUN(target) {"dry-run", 'n', OPTION_FLAG, (target), NULL, false}

/* A verb's command-line syntax, for verb_parse_argv(). */
typedef struct {
        const char *verb; /* for messages: "provision" */
        void (*help)(void);
        const VerbOption *options;
        size_t n_options;
        /* How many arguments may follow the options: 0 for none; -1 when
         * the verb counts them itself. */
        int max_args;
        /* Options only before the first argument (getopt's "+"). */
        bool options_first;
} VerbSyntax;

/* getopt_long over argv (argv[0] the verb) with the verb's table; -h/--help
 * is always there and prints help(). Returns <0 on a bad option or too many
 * arguments (logged: exit 2), 0 when done (help shown: exit 0), 1 to go on
 * with the arguments from argv[*ret_optind] on. */
int verb_parse_argv(const VerbSyntax *v, int argc, char **argv, int *ret_optind);

/* The head of a row of a verb's command table (pki, client): each table's
 * row type starts with these two, then its own run function. */
typedef struct {
        const char *name;
        const char *arg; /* the one argument that follows, for messages ("a client NAME"); NULL: none */
} VerbCommand;

/* Finds argv[first] (the COMMAND after the options) in a command table of
 * n rows of stride bytes, each beginning with a VerbCommand, and checks
 * that exactly its argument (VerbCommand.arg) follows, or none.
 * Returns the row's index, or -EINVAL (logged with the verb's name: exit
 * 2). */
int verb_find_command(const char *verb, const void *table, size_t n, size_t stride, int argc, char **argv,
                      int first);
