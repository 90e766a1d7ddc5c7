/*
 * mqim_auth: the control topic $CONTROL/mqim/v1 (MOSQ_EVT_CONTROL), through which mqim's
 * services send memberships, ended sessions, bans and extra rules (broker/mosquitto/control.py
 * is the client). Only service users are heard.
 *
 * Each request is answered on $CONTROL/mqim/v1/response with one entry per command. A full
 * sync (requests marked "sync", after a reset, up to `ready`) must not undo changes sent live
 * meanwhile: live_wins keeps track of what those touched.
 */

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "mqim_auth.h"

struct summary {
	size_t commands, errors, skipped, members_added, members_removed, threads_dropped, kicked;
};

static const char *get_id(const cJSON *cmd, const char *field, const char **out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(cmd, field);

	if(!cJSON_IsString(v) || !is_valid_id(v->valuestring)) return "missing or invalid id";
	*out = v->valuestring;
	return NULL;
}

static const char *get_users(const cJSON *cmd, const cJSON **out)
{
	const cJSON *users = cJSON_GetObjectItemCaseSensitive(cmd, "users"), *u;

	if(!cJSON_IsArray(users)) return "users must be an array of user ids";
	cJSON_ArrayForEach(u, users){
		if(!cJSON_IsString(u) || !is_valid_id(u->valuestring)) return "users must be an array of user ids";
	}
	*out = users;
	return NULL;
}

/* A sync is the state read from the database after a reset; it is sent in requests marked
 * "sync" and ends with `ready`. Until then, a change sent live (committed after that read)
 * must not be undone by the sync's older data: live commands record what they touch (a thread
 * for setMembers/dropThread, a user and thread for add/removeMembers, a user's ban, the rules)
 * and sync commands skip it. A sync only adds to the empty state of the reset, so in a sync
 * request setMembers adds too. */
static bool live_key(char kind, const char *a, const char *b, char *key, size_t *klen)
{
	size_t an = strnlen(a, MAX_ID_LEN + 1), bn = b ? strnlen(b, MAX_ID_LEN + 1) : 0;

	if(an > MAX_ID_LEN || bn > MAX_ID_LEN) return false;
	key[0] = kind;
	key[1] = '\x1f';
	memcpy(key + 2, a, an);
	*klen = 2 + an;
	if(b){
		key[*klen] = '\x1f';
		memcpy(key + *klen + 1, b, bn);
		*klen += 1 + bn;
	}
	return true;
}

/* While not ready: in a sync request, whether a live command already touched (kind, a, b);
 * in a live request, record that it did. Always false when ready. */
static bool live_wins(struct plugin *p, char kind, const char *a, const char *b, bool sync)
{
	char key[2 * MAX_ID_LEN + 4];
	size_t klen;
	bool created;

	if(p->ready || !live_key(kind, a, b, key, &klen)) return false;
	if(sync) return map_find(&p->live, key, klen) != NULL;
	map_insert(&p->live, key, klen, &created); /* out of memory: the sync may win */
	return false;
}

static const char *cmd_members(struct plugin *p, const cJSON *cmd, char op, bool sync,
		bool *skipped, struct summary *s)
{
	const char *thread, *err;
	const cJSON *users, *u;

	if((err = get_id(cmd, "thread", &thread)) || (err = get_users(cmd, &users))) return err;
	if(sync){
		if(live_wins(p, 't', thread, NULL, true)){
			*skipped = true;
			return NULL;
		}
	}else if(op == 's'){
		live_wins(p, 't', thread, NULL, false);
	}
	if(op == 's' && !(sync && !p->ready)){
		thread_drop(p, thread);
	}
	cJSON_ArrayForEach(u, users){
		if(op != 's' || sync){
			if(live_wins(p, 'm', u->valuestring, thread, sync)){
				*skipped = true;
				continue;
			}
		}
		if(op == 'r'){
			membership_remove(p, u->valuestring, thread);
			s->members_removed++;
		}else{
			if(!membership_add(p, u->valuestring, thread)) return "out of memory";
			s->members_added++;
		}
	}
	return NULL;
}

static const char *cmd_end_session(struct plugin *p, const cJSON *cmd, struct summary *s)
{
	const char *user, *session, *err;
	const cJSON *until = cJSON_GetObjectItemCaseSensitive(cmd, "until");
	char **kick = NULL;
	size_t nkick = 0;
	bool created;
	struct node *n;

	if((err = get_id(cmd, "user", &user)) || (err = get_id(cmd, "session", &session))) return err;
	if(!cJSON_IsNumber(until) || !isfinite(until->valuedouble) || until->valuedouble > 1e15){
		return "until must be a unix time in seconds";
	}
	if(until->valuedouble > (double)time(NULL)){
		if(p->ended.count >= p->ended_prune_at) prune_ended(p);
		n = map_insert(&p->ended, session, strlen(session), &created);
		if(!n) return "out of memory";
		if(created || n->num < (int64_t)until->valuedouble) n->num = (int64_t)until->valuedouble;
	}
	/* Kick its connections. Collect their ids first: a kick removes records (on_disconnect). */
	for(size_t i = 0; session_connected(p, session) && i < p->clients.nbuckets; i++){
		for(n = p->clients.buckets[i]; n; n = n->next){
			struct client_rec *c = n->value;
			if(strcmp(c->sid, session) || strcmp(c->username, user)) continue;
			char **grown = mosquitto_realloc(kick, (nkick + 1) * sizeof(*kick));
			if(!grown) break;
			kick = grown;
			if(!(kick[nkick] = dup_string(n->key))) break;
			nkick++;
		}
	}
	for(size_t i = 0; i < nkick; i++){
		if(mosquitto_kick_client_by_clientid(kick[i], false) == MOSQ_ERR_SUCCESS) s->kicked++;
		mosquitto_free(kick[i]);
	}
	mosquitto_free(kick);
	return NULL;
}

static const char *cmd_ban(struct plugin *p, const cJSON *cmd, bool ban)
{
	const char *user, *err;
	bool created;
	struct node *n;

	if((err = get_id(cmd, "user", &user))) return err;
	if(ban){
		if(!map_insert(&p->banned, user, strlen(user), &created)) return "out of memory";
		mosquitto_kick_client_by_username(user, false);
	}else if((n = map_find(&p->banned, user, strlen(user)))){
		map_remove(&p->banned, n);
	}
	return NULL;
}

static const char *cmd_set_rules(struct plugin *p, const cJSON *cmd, char *err, size_t errlen)
{
	const cJSON *rules = cJSON_GetObjectItemCaseSensitive(cmd, "rules"), *r, *u;
	struct rule *out;
	size_t n = 0, count, index = 0;
	const char *problem = NULL;

	if(!cJSON_IsArray(rules)) return "rules must be an array";
	count = (size_t)cJSON_GetArraySize(rules);
	if(count > MAX_RULES) return "too many rules";
	out = mosquitto_calloc(count ? count : 1, sizeof(*out));
	if(!out) return "out of memory";
	cJSON_ArrayForEach(r, rules){
		const cJSON *topic = cJSON_GetObjectItemCaseSensitive(r, "topic");
		const cJSON *access = cJSON_GetObjectItemCaseSensitive(r, "access");
		const cJSON *users = cJSON_GetObjectItemCaseSensitive(r, "users");
		struct rule *rule = &out[n];
		bool created;

		if(!cJSON_IsObject(r) || !cJSON_IsString(topic) || !cJSON_IsString(access) || !cJSON_IsArray(users)){
			problem = "a rule needs topic, access and users";
			break;
		}
		if((problem = check_rule_topic(p, topic->valuestring))) break;
		if(!strcmp(access->valuestring, "read")) rule->access = ACC_READ;
		else if(!strcmp(access->valuestring, "write")) rule->access = ACC_WRITE;
		else if(!strcmp(access->valuestring, "readwrite")) rule->access = ACC_READ | ACC_WRITE;
		else{
			problem = "access must be read, write or readwrite";
			break;
		}
		if(!(rule->topic = dup_string(topic->valuestring))){
			problem = "out of memory";
			break;
		}
		n++; /* from here on, rule is freed with the others */
		if(cJSON_GetArraySize(users) == 0){
			problem = "users must list user ids or \"*\"";
			break;
		}
		cJSON_ArrayForEach(u, users){
			if(cJSON_IsString(u) && !strcmp(u->valuestring, "*")){
				rule->everyone = true;
			}else if(!cJSON_IsString(u) || !is_valid_id(u->valuestring)){
				problem = "users must list user ids or \"*\"";
				break;
			}else if(!map_insert(&rule->users, u->valuestring, strlen(u->valuestring), &created)){
				problem = "out of memory";
				break;
			}
		}
		if(problem) break;
		index++;
	}
	if(problem){
		snprintf(err, errlen, "rules[%zu]: %s", index, problem);
		for(size_t i = 0; i < n; i++) rule_free(&out[i]);
		mosquitto_free(out);
		return err;
	}
	rules_clear(p);
	p->rules = out;
	p->n_rules = n;
	return NULL;
}

static const char *run_command(struct plugin *p, const cJSON *cmd, const char *name, bool sync,
		bool *skipped, struct summary *s, char *err, size_t errlen)
{
	const cJSON *user = cJSON_GetObjectItemCaseSensitive(cmd, "user");

	if(!strcmp(name, "reset")){
		do_reset(p);
		return NULL;
	}
	if(!strcmp(name, "ready")){
		p->ready = true;
		map_clear(&p->live, NULL);
		return NULL;
	}
	if(!strcmp(name, "banUser") || !strcmp(name, "unbanUser")){
		if(cJSON_IsString(user) && is_valid_id(user->valuestring)
				&& live_wins(p, 'u', user->valuestring, NULL, sync)){
			*skipped = true;
			return NULL;
		}
	}else if(!strcmp(name, "setRules") && live_wins(p, 'r', "*", NULL, sync)){
		*skipped = true;
		return NULL;
	}
	if(!strcmp(name, "setMembers")) return cmd_members(p, cmd, 's', sync, skipped, s);
	if(!strcmp(name, "addMembers")) return cmd_members(p, cmd, 'a', sync, skipped, s);
	if(!strcmp(name, "removeMembers")) return cmd_members(p, cmd, 'r', sync, skipped, s);
	if(!strcmp(name, "dropThread")){
		const char *thread_id, *e;
		if((e = get_id(cmd, "thread", &thread_id))) return e;
		if(live_wins(p, 't', thread_id, NULL, sync)){
			*skipped = true;
			return NULL;
		}
		thread_drop(p, thread_id);
		s->threads_dropped++;
		return NULL;
	}
	if(!strcmp(name, "endSession")) return cmd_end_session(p, cmd, s);
	if(!strcmp(name, "banUser")) return cmd_ban(p, cmd, true);
	if(!strcmp(name, "unbanUser")) return cmd_ban(p, cmd, false);
	if(!strcmp(name, "setRules")) return cmd_set_rules(p, cmd, err, errlen);
	return "unknown command";
}

/* What the plugin holds, e.g. for a worker to see whether the broker restarted (not ready). */
static void add_status(const struct plugin *p, cJSON *entry)
{
	cJSON_AddBoolToObject(entry, "ready", p->ready);
	cJSON_AddNumberToObject(entry, "memberships", (double)p->memberships.count);
	cJSON_AddNumberToObject(entry, "threads", (double)p->threads.count);
	cJSON_AddNumberToObject(entry, "endedSessions", (double)p->ended.count);
	cJSON_AddNumberToObject(entry, "banned", (double)p->banned.count);
	cJSON_AddNumberToObject(entry, "rules", (double)p->n_rules);
	cJSON_AddNumberToObject(entry, "clients", (double)p->clients.count);
}

static void respond(cJSON *response)
{
	char *text = cJSON_PrintUnformatted(response);

	if(!text){
		mosquitto_log_printf(MOSQ_LOG_ERR, "mqim: out of memory building a control response");
		return;
	}
	if(strlen(text) > INT_MAX
			|| mosquitto_broker_publish_copy(NULL, RESPONSE_TOPIC, (int)strlen(text), text, 1, false, NULL)
			!= MOSQ_ERR_SUCCESS){
		mosquitto_log_printf(MOSQ_LOG_ERR, "mqim: could not publish a control response");
	}
	cJSON_free(text);
}

int on_control(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_control *ed = event_data;
	struct plugin *p = userdata;
	const char *username = mosquitto_client_username(ed->client);
	cJSON *request = NULL, *response = NULL, *responses, *entry;
	const cJSON *id, *commands, *cmd;
	struct summary s = {0};
	bool sync;

	(void)event;
	if(!username || !is_service(p, username)){
		/* The ACL already refuses this publish; never act on it anyway. */
		mosquitto_log_printf(MOSQ_LOG_WARNING, "mqim: ignored a control message from '%s'", printable(username));
		return MOSQ_ERR_ACL_DENIED;
	}
	response = cJSON_CreateObject();
	responses = cJSON_CreateArray();
	if(!response || !responses){
		cJSON_Delete(response);
		cJSON_Delete(responses);
		return MOSQ_ERR_NOMEM;
	}
	if(ed->payload && ed->payloadlen > 0) request = cJSON_ParseWithLength(ed->payload, ed->payloadlen);
	id = request ? cJSON_GetObjectItemCaseSensitive(request, "id") : NULL;
	cJSON_AddItemToObject(response, "id", id ? cJSON_Duplicate(id, true) : cJSON_CreateNull());
	cJSON_AddItemToObject(response, "responses", responses);
	commands = request ? cJSON_GetObjectItemCaseSensitive(request, "commands") : NULL;
	if(!cJSON_IsObject(request) || !cJSON_IsArray(commands)){
		cJSON_AddStringToObject(response, "error", "payload must be a JSON object with a commands array");
		mosquitto_log_printf(MOSQ_LOG_WARNING, "mqim: malformed control message from '%s'", printable(username));
		respond(response);
		cJSON_Delete(response);
		cJSON_Delete(request);
		return MOSQ_ERR_SUCCESS;
	}
	sync = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(request, "sync"));
	cJSON_ArrayForEach(cmd, commands){
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(cmd, "command");
		const char *error;
		char err[256];
		bool skipped = false;

		s.commands++;
		entry = cJSON_CreateObject();
		if(!entry) break;
		cJSON_AddItemToArray(responses, entry);
		if(!cJSON_IsObject(cmd) || !cJSON_IsString(name)){
			cJSON_AddNullToObject(entry, "command");
			error = "a command must be an object with a command name";
		}else{
			cJSON_AddStringToObject(entry, "command", name->valuestring);
			if(!strcmp(name->valuestring, "status")){
				add_status(p, entry);
				error = NULL;
			}else{
				error = run_command(p, cmd, name->valuestring, sync, &skipped, &s, err, sizeof(err));
			}
		}
		if(skipped){
			s.skipped++;
			cJSON_AddTrueToObject(entry, "skipped");
		}
		if(error){
			s.errors++;
			cJSON_AddStringToObject(entry, "error", error);
		}
	}
	respond(response);
	mosquitto_log_printf(MOSQ_LOG_INFO,
			"mqim: control from '%s': %zu %scommands, %zu failed, %zu skipped; +%zu/-%zu members, "
			"%zu threads dropped, %zu kicked; now %zu memberships in %zu threads, %zu ended sessions, "
			"%zu banned, %zu rules%s",
			printable(username), s.commands, sync ? "sync " : "", s.errors, s.skipped,
			s.members_added, s.members_removed,
			s.threads_dropped, s.kicked, p->memberships.count, p->threads.count, p->ended.count,
			p->banned.count, p->n_rules, p->ready ? "" : " (not ready)");
	cJSON_Delete(response);
	cJSON_Delete(request);
	return MOSQ_ERR_SUCCESS;
}
