/*
 * mqim_auth: the topic rule of broker/acl.py, checked by Mosquitto on every subscribe,
 * publish and delivery (MOSQ_EVT_ACL_CHECK).
 *
 * The built-in rules of the mqim tree (own uplink, own personal topic, threads while a
 * member), then the extra rules with `%u` expanded, which never grant inside the tree. Also
 * the validation of an extra rule's topic (setRules), and the `error` event that tells a user
 * their publish was refused. It keeps no state of its own (state.c has it).
 */

#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "mqim_auth.h"

/* Does one level of a rule, with every "%u" replaced by user, equal the level s? */
static bool level_equals(const char *r, size_t rn, const char *s, size_t sn, const char *user, size_t ulen)
{
	size_t i = 0, j = 0;

	while(i < rn){
		if(i + 1 < rn && r[i] == '%' && r[i + 1] == 'u'){
			if(sn - j < ulen || memcmp(s + j, user, ulen)) return false;
			j += ulen;
			i += 2;
		}else{
			if(j >= sn || s[j] != r[i]) return false;
			i++;
			j++;
		}
	}
	return j == sn;
}

/* As broker/acl.py filter_covers(rule.replace("%u", user), topic): every topic matched by
 * `topic` (a topic, or a subscription filter) is matched by the filter `rule`. */
static bool filter_covers(const char *rule, const char *topic, const char *user)
{
	const char *r = rule, *s = topic;
	size_t ulen = strlen(user);
	bool first = true;

	for(;;){
		size_t rn = strcspn(r, "/"), sn;

		if(rn == 1 && r[0] == '#') return !(topic[0] == '$' && first);
		if(!s) return false; /* the rule has more levels than the topic */
		sn = strcspn(s, "/");
		if(rn == 1 && r[0] == '+'){
			if(sn == 1 && s[0] == '#') return false;
		}else if(!level_equals(r, rn, s, sn, user, ulen)){
			return false;
		}
		first = false;
		s = s[sn] ? s + sn + 1 : NULL;
		if(!r[rn]) return s == NULL;
		r += rn + 1;
	}
}

/* As broker/acl.py touches_tree: could the topic or filter match {prefix} itself or a topic
 * under it? ("#", "+/#", "+/t/x" and "{prefix}/x" all could.) */
static bool touches_tree(const struct plugin *p, const char *topic)
{
	const char *w = p->prefix, *s = topic;

	for(;;){
		size_t wn = strcspn(w, "/"), sn = strcspn(s, "/");

		if(sn == 1 && s[0] == '#') return true;
		if(!(sn == 1 && s[0] == '+') && (sn != wn || memcmp(s, w, wn))) return false;
		if(!w[wn]) return true;  /* every level of the prefix matched: the prefix or under it */
		if(!s[sn]) return false; /* the topic ends above the prefix */
		w += wn + 1;
		s += sn + 1;
	}
}

static bool rules_allow(const struct plugin *p, const char *user, const char *topic, int need)
{
	/* As broker/acl.py ExtraRule.grants: judged on what is asked, after "%u" is expanded, since
	 * which ids register is unknown when a rule is set (`%u/#` must not give a user "im" all of
	 * im/#). A rule covering the topic covers all it matches, so this voids exactly the part of
	 * an expanded rule inside the tree. */
	if(touches_tree(p, topic)) return false;
	for(size_t i = 0; i < p->n_rules; i++){
		const struct rule *r = &p->rules[i];
		if(!(r->access & need)) continue;
		if(!r->everyone && !map_find(&r->users, user, strlen(user))) continue;
		if(filter_covers(r->topic, topic, user)) return true;
	}
	return false;
}

/* As models/aclrule.py check_rule_topic: a valid filter outside the mqim tree and $ topics. */
const char *check_rule_topic(const struct plugin *p, const char *topic)
{
	const char *level = topic;
	size_t len = strnlen(topic, MAX_RULE_TOPIC_LEN + 1), chars = 0;

	/* Characters, as Python's len() counts them: the bytes that do not continue a UTF-8 one. */
	for(size_t i = 0; i < len; i++) chars += ((unsigned char)topic[i] & 0xC0) != 0x80;
	if(len == 0 || len > MAX_RULE_TOPIC_LEN || chars > MAX_RULE_TOPIC_CHARS || topic[0] == '$'){
		return "topic must be a non-empty MQTT filter of at most 256 characters, not a $ topic";
	}
	for(;;){
		size_t n = strcspn(level, "/");
		bool last = level[n] == '\0';
		for(size_t i = 0; i < n; i++){
			if(level[i] == '#' && (n != 1 || !last)) return "topic is not a valid MQTT filter";
			if(level[i] == '+' && n != 1) return "topic is not a valid MQTT filter";
		}
		if(last) break;
		level += n + 1;
	}
	/* "%u" is taken literally here; what it expands to is checked on each access. */
	if(touches_tree(p, topic)) return "rules may not cover the mqim topic tree";
	return NULL;
}

/* The built-in rules of broker/acl.py for a topic of the mqim tree; -1 if not of the tree. */
static int builtin_access(const struct plugin *p, const char *username, const char *topic, int access,
		bool retain)
{
	const char *rest, *ident;
	char kind;

	if(strncmp(topic, p->prefix, p->prefix_len) || topic[p->prefix_len] != '/') return -1;
	rest = topic + p->prefix_len + 1;
	if(!strncmp(rest, "up/", 3)){
		kind = 'p';
		ident = rest + 3;
	}else if(!strncmp(rest, "t/", 2)){
		kind = 't';
		ident = rest + 2;
	}else if(!strncmp(rest, "u/", 2)){
		kind = 'u';
		ident = rest + 2;
	}else{
		return -1;
	}
	if(!is_topic_safe(ident)) return -1;
	if(access == MOSQ_ACL_WRITE){
		/* Retained uplinks would be replayed to the bridge on each of its subscribes. */
		return kind == 'p' && !retain && !strcmp(ident, username);
	}
	if(kind == 'u') return !strcmp(ident, username);
	if(kind == 't') return is_member(p, username, ident);
	return 0;
}

/* As broker/embedded/plugins.py: a refused publish is reported to the sender as an `error` event on
 * its personal topic, since MQTT 3.1.1 acknowledges it anyway and would drop it silently. */
static void report_denied_publish(const struct plugin *p, const struct mosquitto *client,
		const char *username, const char *topic)
{
	size_t tlen = strnlen(topic, 1024), ulen = strlen(username);
	size_t cap = p->prefix_len + ulen + tlen + 96;
	char *personal = mosquitto_malloc(p->prefix_len + ulen + 4), *msg = mosquitto_malloc(cap);
	char *text = NULL;
	cJSON *event = cJSON_CreateObject();

	/* Mosquitto also asks with a stand-in client when it checks a retained message's source. */
	if(mosquitto_client_protocol_version(client) == 0 || !personal || !msg || !event) goto done;
	snprintf(personal, p->prefix_len + ulen + 4, "%s/u/%s", p->prefix, username);
	snprintf(msg, cap, "you may not publish on %.*s; publish commands on %s/up/%s",
			(int)tlen, topic, p->prefix, username);
	cJSON_AddStringToObject(event, "type", "error");
	cJSON_AddNullToObject(event, "req");
	cJSON_AddNumberToObject(event, "code", 1004);
	cJSON_AddStringToObject(event, "error", "forbidden");
	cJSON_AddStringToObject(event, "msg", msg);
	text = cJSON_PrintUnformatted(event);
	if(text) mosquitto_broker_publish_copy(NULL, personal, (int)strlen(text), text, 1, false, NULL);
	mosquitto_log_printf(MOSQ_LOG_INFO, "mqim: refused publish of '%s' on '%s'", printable(username),
			printable(topic));
done:
	cJSON_free(text);
	cJSON_Delete(event);
	mosquitto_free(personal);
	mosquitto_free(msg);
}

static int acl_result(const struct plugin *p, const struct mosquitto_evt_acl_check *ed,
		const char *username, bool allowed)
{
	if(allowed) return MOSQ_ERR_SUCCESS;
	if(ed->access == MOSQ_ACL_WRITE) report_denied_publish(p, ed->client, username, ed->topic);
	return MOSQ_ERR_ACL_DENIED;
}

int on_acl_check(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *ed = event_data;
	struct plugin *p = userdata;
	const char *username = mosquitto_client_username(ed->client);
	int builtin;

	(void)event;
	if(!username || !ed->topic) return MOSQ_ERR_ACL_DENIED;
	if(is_service(p, username)) return MOSQ_ERR_SUCCESS;
	if(ed->access == MOSQ_ACL_UNSUBSCRIBE) return MOSQ_ERR_SUCCESS;
	if(!p->ready) return MOSQ_ERR_ACL_DENIED;
	if(ed->access != MOSQ_ACL_READ && ed->access != MOSQ_ACL_SUBSCRIBE && ed->access != MOSQ_ACL_WRITE){
		return MOSQ_ERR_ACL_DENIED;
	}
	builtin = builtin_access(p, username, ed->topic, ed->access, ed->retain);
	if(builtin >= 0) return acl_result(p, ed, username, builtin == 1);
	return acl_result(p, ed, username,
			rules_allow(p, username, ed->topic, ed->access == MOSQ_ACL_WRITE ? ACC_WRITE : ACC_READ));
}
