/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * The client side of the binary (interfaces.md §1.1, §1.2): a thin REST client
 * of a running agent. Commands are rows of a table; the common shapes (list,
 * add --json, delete ID, show a document) are generic so a domain adds a
 * command group by adding rows.
 */
#ifndef ES_CLI_H
#define ES_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

struct es_cli {
	char host[256];
	int port;
	const char *token;
	bool json; /* -o json */
	bool tls;  /* --tls / EBPFSENTINEL_TLS=1 (§12 item 25) */
	bool insecure;
	const char *ca_cert;
};

/* One HTTP exchange. */
struct es_cli_resp {
	long status;
	json_t *body; /* parsed when JSON */
	char *raw;
	size_t raw_len;
};

/*
 * Perform a request. Returns 0 when a response arrived (any status) or -1
 * after printing the transport error ("cannot connect…", "timed out").
 */
int es_cli_request(const struct es_cli *c, const char *method, const char *path, const json_t *body,
		   struct es_cli_resp *out);
void es_cli_resp_free(struct es_cli_resp *r);
/* Print "Error: ..." for a non-2xx response in the spec's forms; returns 1. */
int es_cli_fail_status(const struct es_cli_resp *r);
/* Print a document per -o: pretty JSON, or a table/key-value listing. */
void es_cli_print(const struct es_cli *c, const json_t *doc, const char *const *columns,
		  const char *noun);

/* Kinds of generic commands. */
enum es_cli_kind {
	ES_CLI_GET,    /* GET path, print the document */
	ES_CLI_LIST,   /* GET path, print an array as a table */
	ES_CLI_ADD,    /* POST path with --json J */
	ES_CLI_DELETE, /* DELETE path/{ID}, print "<msg>: <id>" */
	ES_CLI_CUSTOM, /* run() does everything */
};

struct es_cli_cmd {
	const char *group;  /* NULL for single-word commands */
	const char *action; /* command word (single) or action (grouped) */
	enum es_cli_kind kind;
	const char *path;
	const char *const *columns; /* table columns (LIST) */
	const char *msg;	    /* DELETE confirmation, noun for LIST */
	int (*run)(const struct es_cli *c, int argc, char **argv);
	const char *help;
};

/* Entry: argv[0] is the command word. Returns the process exit status. */
int es_cli_main(int argc, char **argv, const char *token, bool json_out);
/* Is word a client command (or group)? */
bool es_cli_is_command(const char *word);
void es_cli_usage(FILE *f);

/* Command tables contributed by domains (cli/commands.c collects them). */
extern const struct es_cli_cmd *const es_cli_tables[];

#endif
