/* The `dumont` program's commands. Each takes the arguments after its own
 * name (argv[0] is the command name) and returns the process exit status:
 * 0 success, 1 failure (one-line reason on stderr), 2 usage error. */
#ifndef DUMONT_CLI_COMMANDS_H
#define DUMONT_CLI_COMMANDS_H

#include "util/config.h"

int cmd_server(dm_config *cfg, int argc, char **argv);   /* dumont server */
int cmd_failover(dm_config *cfg, int argc, char **argv); /* dumont failover ... */
int cmd_agent(dm_config *cfg, int argc, char **argv);    /* dumont agent */
int cmd_snapshot(dm_config *cfg, int argc, char **argv); /* dumont snapshot ... */

/* dumont instances [list | show ID | launch ... | destroy ID] */
int cmd_instances(dm_config *cfg, int argc, char **argv);
/* dumont chaos preempt ID [notice=D] */
int cmd_chaos(dm_config *cfg, int argc, char **argv);
/* dumont tokens [create role=R name=N [instance=ID] | list | revoke NAME] */
int cmd_tokens(dm_config *cfg, int argc, char **argv);
/* dumont alerts [add kind=K url=U ... | list | test NAME | remove NAME | deliveries NAME] */
int cmd_alerts(dm_config *cfg, int argc, char **argv);

#endif
