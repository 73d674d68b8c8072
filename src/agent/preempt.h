/* Preemption notices: the agent polls the cloud's metadata service and, once
 * the cloud announces that it will take the machine back, flags every
 * following heartbeat `preempting` (HB_F_PREEMPTING), so the controller can
 * start a failover before the machine dies.
 *
 *   aws  IMDSv2: PUT  BASE/latest/api/token (X-aws-ec2-metadata-token-ttl-seconds)
 *                GET  BASE/latest/meta-data/spot/instance-action
 *                     (X-aws-ec2-metadata-token): 404 none; 200 with
 *                     {"action": "terminate"|"stop"|"hibernate", "time": ...} a notice
 *   gcp  GET  BASE/computeMetadata/v1/instance/preempted (Metadata-Flavor: Google):
 *                     "TRUE" a notice, "FALSE" none
 *   local     BASE is file:///DIR (the local provider's instance directory):
 *             the file DIR/computeMetadata/v1/instance/preempted holds GCP's
 *             answer, "TRUE" or "FALSE" (a chaos preemption writes TRUE)
 *
 * BASE defaults to http://169.254.169.254 (both clouds); --metadata-url
 * points tests at a local server playing the documented answers.
 *
 * AG-E1: a notice is sticky: once seen, the agent reports preempting until it
 *     exits (the cloud does not take a notice back).
 * AG-E2: polling runs on its own thread with short timeouts (2 s); an
 *     unreachable or odd metadata service is never a notice, and never
 *     delays a heartbeat. Answers are capped at 4 KiB.
 * AG-E3: the IMDSv2 token is fetched once and again after a 401 (expired). */
#ifndef DUMONT_AGENT_PREEMPT_H
#define DUMONT_AGENT_PREEMPT_H

#include <stddef.h>
#include <stdint.h>

#define PRE_DEFAULT_URL "http://169.254.169.254"

typedef enum { PRE_NONE = 0, PRE_AWS, PRE_GCP, PRE_LOCAL } pre_cloud;

int pre_cloud_parse(const char *s, pre_cloud *ret); /* "aws" | "gcp" | "local" | "none" */
const char *pre_cloud_name(pre_cloud c);

typedef struct pre_watch pre_watch;

int pre_start(pre_cloud cloud, const char *base_url, int64_t every_ms, pre_watch **ret, char *err,
              size_t errlen);
int pre_noticed(pre_watch *w); /* AG-E1; 0 for NULL */
void pre_stop(pre_watch *w);   /* NULL is fine */

#endif
