/*
 * mqim_auth: authentication and topic ACL of mqim for Mosquitto 2.0 (plugin API v5).
 *
 * It mirrors broker/acl.py and broker/embedded/plugins.py (the embedded broker's plugins):
 *
 *   login     service users: password = hex(HMAC-SHA256(jwt secret, "mqtt-service:" + name));
 *             users: username = user id, password = an HS256 access JWT of that user whose
 *             session was not ended and who is not banned; client id `{user}` or `{user}:...`.
 *   topics    service users: everything. Users:
 *               {prefix}/up/{self}   publish (not retained)
 *               {prefix}/u/{self}    subscribe / receive
 *               {prefix}/t/{thread}  subscribe / receive while a member of the thread
 *               other topics         only what an extra rule grants (`%u` = the user id)
 *             Receive is checked by Mosquitto on every delivery, so a removed member stops
 *             receiving at once, without being disconnected. A refused publish is reported to
 *             the sender as an `error` event (code 1004) on {prefix}/u/{self}.
 *
 * Beyond the embedded broker: retained uplinks are refused (Mosquitto would store them and
 * replay them to the bridge), and user ids starting with a service user's name are refused (they
 * would own client ids such as "mqim-bridge-1"). Short of it: Mosquitto 2.0's plugin API shows
 * no will at login, so a will outside the user's uplink cannot refuse the CONNECT; it is checked
 * like a publish when it is due, and dropped.
 *
 * It keeps no database: memberships, ended sessions, bans and extra rules live in memory and
 * are sent by mqim's services as JSON commands on $CONTROL/mqim/v1 (answered on
 * $CONTROL/mqim/v1/response), like the dynamic-security plugin. Every check is a hash lookup.
 * After a start or a `reset`, the plugin is not ready: user logins are turned away (the
 * connection is closed without a CONNACK, which clients treat as "retry later") and user ACL
 * checks fail until a `ready` command ends the full sync that mqim sends on connecting. During
 * that sync, changes sent live win over the sync's data (see live_wins in control.c).
 *
 * Request: {"id": any, "sync"?: true, "commands": [...]}; answer: {"id": the same, "responses":
 * [{"command": name, "error"?: text, "skipped"?: true}, ...]}, one entry per command. Commands:
 *   reset | ready | status
 *   setMembers | addMembers | removeMembers  {"thread": id, "users": [ids]}
 *   dropThread {"thread": id}     endSession {"user": id, "session": id, "until": unix seconds}
 *   banUser | unbanUser {"user": id}
 *   setRules {"rules": [{"users": ["*"] or [ids], "topic": filter, "access": "read" | "write" |
 *             "readwrite"}]}
 * endSession and banUser also kick the connections concerned; removing members does not.
 *
 * Options (plugin_opt_*): jwt_secret_file (required), topic_prefix (default "im"),
 * service_users (comma or space separated, default "mqim-bridge").
 *
 * The sources, one job each (this header holds what they share):
 *   plugin.c   entry points: options, init, cleanup, callback registration
 *   auth.c     logins: the JWT secret, service passwords, access-token verification
 *   acl.c      the topic rule: built-in rules of the mqim tree, extra rules, refusal reports
 *   state.c    what the plugin holds: memberships, ended sessions, bans, clients, rules store
 *   control.c  the $CONTROL/mqim/v1 commands, and the sync's live-wins bookkeeping
 *   map.c      the keyed hash map every lookup goes through
 *   util.c     small helpers: id checks, log-safe strings, the clock
 * Build (broker/mosquitto/plugin.py does it): cc -shared -fPIC -O2 -Wall -Wextra -Werror
 *   acl.c auth.c control.c map.c plugin.c state.c util.c -o mqim_auth.so -lcjson -lcrypto
 * (Debian: mosquitto-dev libmosquitto-dev libcjson-dev libssl-dev).
 */

#ifndef MQIM_AUTH_H
#define MQIM_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

/* Shared between the sources but not exported from the library: only Mosquitto's entry points
 * are, as when everything was one file of static functions. */
#define MQIM_INTERNAL __attribute__((visibility("hidden")))

#define CONTROL_TOPIC "$CONTROL/mqim/v1"
#define RESPONSE_TOPIC "$CONTROL/mqim/v1/response"

#define MAX_ID_LEN 256          /* user, thread and session ids */
#define MAX_TOKEN_LEN 8192      /* an access JWT is ~250 bytes */
#define MAX_SECRET_LEN 4096
#define MIN_SECRET_LEN 32       /* as config/settings.py */
#define MAX_RULE_TOPIC_CHARS 256 /* as models/aclrule.py (its column) */
#define MAX_RULE_TOPIC_LEN 1024  /* bytes: 256 characters of up to 4 bytes */
#define MAX_RULES 10000
#define MAX_SERVICE_USERS 32
#define HMAC_LEN 32

#define ACC_READ 1
#define ACC_WRITE 2

/* ------------------------------------------------------------------------------------------ */
/* Chained hash map: byte-string key -> (pointer, integer). Load factor <= 1.                  */

struct node {
	struct node *next;
	uint64_t hash;
	void *value;
	int64_t num;
	size_t klen;
	char key[]; /* klen bytes + NUL */
};

struct map {
	struct node **buckets;
	size_t nbuckets; /* 0 or a power of two */
	size_t count;
};

/* ------------------------------------------------------------------------------------------ */
/* State                                                                                       */

struct membership;

struct thread {
	struct membership *head; /* this thread's memberships, doubly linked */
	size_t count;
	struct node *node;       /* in plugin.threads; key = thread id */
};

struct membership {
	struct membership *prev, *next;
	struct thread *thread;
	struct node *node;       /* in plugin.memberships; key = user "\x1f" thread */
};

struct client_rec {         /* in plugin.clients; key = client id */
	const struct mosquitto *client;
	char *username;
	char *sid;
};

struct rule {
	char *topic;             /* may contain %u, replaced by the user id */
	int access;              /* ACC_READ | ACC_WRITE */
	bool everyone;
	struct map users;        /* when !everyone */
};

struct plugin {
	mosquitto_plugin_id_t *id;
	char *secret_file;
	char secret[MAX_SECRET_LEN + 1];
	size_t secret_len;
	char *prefix;
	size_t prefix_len;
	char *service_users[MAX_SERVICE_USERS];
	char service_passwords[MAX_SERVICE_USERS][2 * HMAC_LEN + 1];
	size_t n_service;

	struct map memberships;  /* value: struct membership */
	struct map threads;      /* value: struct thread */
	struct map ended;        /* session id -> num = until (unix seconds) */
	struct map banned;       /* user id */
	struct map clients;      /* value: struct client_rec */
	struct map sessions;     /* session id -> num = its recorded connections */
	bool sessions_incomplete;
	struct rule *rules;
	size_t n_rules;
	size_t ended_prune_at;
	bool ready;
	struct map live;         /* during a sync: what live commands changed (live_wins) */
};

/* ------------------------------------------------------------------------------------------ */
/* map.c                                                                                       */

MQIM_INTERNAL bool map_seed(void);
MQIM_INTERNAL struct node *map_find(const struct map *m, const char *key, size_t klen);
MQIM_INTERNAL struct node *map_insert(struct map *m, const char *key, size_t klen, bool *created);
MQIM_INTERNAL void map_remove(struct map *m, struct node *node);
MQIM_INTERNAL void map_clear(struct map *m, void (*free_value)(void *));

/* ------------------------------------------------------------------------------------------ */
/* util.c                                                                                      */

MQIM_INTERNAL bool is_topic_safe(const char *s);
MQIM_INTERNAL bool is_valid_id(const char *s);
MQIM_INTERNAL const char *printable(const char *s);
MQIM_INTERNAL double now_real(void);
MQIM_INTERNAL bool is_service(const struct plugin *p, const char *username);
MQIM_INTERNAL char *dup_string(const char *s);

/* ------------------------------------------------------------------------------------------ */
/* state.c                                                                                     */

MQIM_INTERNAL bool is_member(const struct plugin *p, const char *user, const char *thread);
MQIM_INTERNAL bool membership_add(struct plugin *p, const char *user, const char *thread_id);
MQIM_INTERNAL void membership_remove(struct plugin *p, const char *user, const char *thread_id);
MQIM_INTERNAL void thread_drop(struct plugin *p, const char *thread_id);
MQIM_INTERNAL bool session_ended(struct plugin *p, const char *sid);
MQIM_INTERNAL void prune_ended(struct plugin *p);
MQIM_INTERNAL bool session_connected(const struct plugin *p, const char *sid);
MQIM_INTERNAL void free_client_rec(void *v);
MQIM_INTERNAL void remember_client(struct plugin *p, const struct mosquitto *client,
		const char *client_id, const char *username, const char *sid);
MQIM_INTERNAL void rule_free(struct rule *r);
MQIM_INTERNAL void rules_clear(struct plugin *p);
MQIM_INTERNAL void do_reset(struct plugin *p);
MQIM_INTERNAL int on_disconnect(int event, void *event_data, void *userdata);

/* ------------------------------------------------------------------------------------------ */
/* acl.c                                                                                       */

MQIM_INTERNAL const char *check_rule_topic(const struct plugin *p, const char *topic);
MQIM_INTERNAL int on_acl_check(int event, void *event_data, void *userdata);

/* ------------------------------------------------------------------------------------------ */
/* auth.c                                                                                      */

MQIM_INTERNAL bool load_secret(struct plugin *p);
MQIM_INTERNAL int on_basic_auth(int event, void *event_data, void *userdata);
MQIM_INTERNAL int on_reload(int event, void *event_data, void *userdata);

/* ------------------------------------------------------------------------------------------ */
/* control.c                                                                                   */

MQIM_INTERNAL int on_control(int event, void *event_data, void *userdata);

#endif
