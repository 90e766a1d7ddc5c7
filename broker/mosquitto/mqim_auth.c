/*
 * mqim_auth: authentication and topic ACL of mqim for Mosquitto 2.0 (plugin API v5).
 *
 * It mirrors broker/acl.py and broker/plugins.py (the embedded broker's plugins):
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
 * that sync, changes sent live win over the sync's data (see live_wins).
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
 * Build: cc -shared -fPIC -O2 -Wall -Wextra -Werror mqim_auth.c -o mqim_auth.so -lcjson -lcrypto
 * (Debian: mosquitto-dev libmosquitto-dev libcjson-dev libssl-dev).
 */

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#define CONTROL_TOPIC "$CONTROL/mqim/v1"
#define RESPONSE_TOPIC "$CONTROL/mqim/v1/response"

#define MAX_ID_LEN 256          /* user, thread and session ids */
#define MAX_TOKEN_LEN 8192      /* an access JWT is ~250 bytes */
#define MAX_SECRET_LEN 4096
#define MIN_SECRET_LEN 32       /* as config/settings.py */
#define MAX_RULE_TOPIC_LEN 1024
#define MAX_RULES 10000
#define MAX_SERVICE_USERS 32
#define HMAC_LEN 32

#define ACC_READ 1
#define ACC_WRITE 2

/* ------------------------------------------------------------------------------------------ */
/* Keyed hash (SipHash-1-3): keys are partly chosen by users (ids, client ids), so the table   */
/* must not be floodable with colliding keys.                                                  */

static uint64_t sip_k0, sip_k1;

#define ROTL64(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND \
	do { \
		v0 += v1; v1 = ROTL64(v1, 13); v1 ^= v0; v0 = ROTL64(v0, 32); \
		v2 += v3; v3 = ROTL64(v3, 16); v3 ^= v2; \
		v0 += v3; v3 = ROTL64(v3, 21); v3 ^= v0; \
		v2 += v1; v1 = ROTL64(v1, 17); v1 ^= v2; v2 = ROTL64(v2, 32); \
	} while(0)

static uint64_t hash_bytes(const char *data, size_t len)
{
	const unsigned char *in = (const unsigned char *)data;
	uint64_t v0 = 0x736f6d6570736575ULL ^ sip_k0;
	uint64_t v1 = 0x646f72616e646f6dULL ^ sip_k1;
	uint64_t v2 = 0x6c7967656e657261ULL ^ sip_k0;
	uint64_t v3 = 0x7465646279746573ULL ^ sip_k1;
	uint64_t b = ((uint64_t)len) << 56;
	size_t i, full = len - (len % 8);

	for(i = 0; i < full; i += 8){
		uint64_t m = 0;
		for(int j = 0; j < 8; j++) m |= ((uint64_t)in[i + (size_t)j]) << (8 * j);
		v3 ^= m;
		SIPROUND;
		v0 ^= m;
	}
	for(size_t j = 0; j < len % 8; j++) b |= ((uint64_t)in[full + j]) << (8 * j);
	v3 ^= b;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

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

static struct node *map_find(const struct map *m, const char *key, size_t klen)
{
	uint64_t h;
	struct node *n;

	if(m->nbuckets == 0) return NULL;
	h = hash_bytes(key, klen);
	for(n = m->buckets[h & (m->nbuckets - 1)]; n; n = n->next){
		if(n->hash == h && n->klen == klen && !memcmp(n->key, key, klen)) return n;
	}
	return NULL;
}

static bool map_grow(struct map *m)
{
	size_t nb = m->nbuckets ? m->nbuckets * 2 : 16;
	struct node **buckets = mosquitto_calloc(nb, sizeof(*buckets));

	if(!buckets) return false;
	for(size_t i = 0; i < m->nbuckets; i++){
		struct node *n = m->buckets[i], *next;
		for(; n; n = next){
			next = n->next;
			n->next = buckets[n->hash & (nb - 1)];
			buckets[n->hash & (nb - 1)] = n;
		}
	}
	mosquitto_free(m->buckets);
	m->buckets = buckets;
	m->nbuckets = nb;
	return true;
}

/* The node of `key`, created (value NULL, num 0) if missing; NULL when out of memory. */
static struct node *map_insert(struct map *m, const char *key, size_t klen, bool *created)
{
	struct node *n = map_find(m, key, klen);
	size_t idx;

	*created = false;
	if(n) return n;
	if(m->count >= m->nbuckets && !map_grow(m)) return NULL;
	n = mosquitto_malloc(sizeof(*n) + klen + 1);
	if(!n) return NULL;
	n->hash = hash_bytes(key, klen);
	n->value = NULL;
	n->num = 0;
	n->klen = klen;
	memcpy(n->key, key, klen);
	n->key[klen] = '\0';
	idx = n->hash & (m->nbuckets - 1);
	n->next = m->buckets[idx];
	m->buckets[idx] = n;
	m->count++;
	*created = true;
	return n;
}

/* Unlink and free `node` (its value is the caller's). */
static void map_remove(struct map *m, struct node *node)
{
	struct node **pp = &m->buckets[node->hash & (m->nbuckets - 1)];

	while(*pp && *pp != node) pp = &(*pp)->next;
	if(*pp){
		*pp = node->next;
		m->count--;
	}
	mosquitto_free(node);
}

static void map_clear(struct map *m, void (*free_value)(void *))
{
	for(size_t i = 0; i < m->nbuckets; i++){
		struct node *n = m->buckets[i], *next;
		for(; n; n = next){
			next = n->next;
			if(free_value && n->value) free_value(n->value);
			mosquitto_free(n);
		}
	}
	mosquitto_free(m->buckets);
	m->buckets = NULL;
	m->nbuckets = 0;
	m->count = 0;
}

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
/* Small helpers                                                                               */

/* A topic level that may be an id: as broker/topics.py is_topic_safe. */
static bool is_topic_safe(const char *s)
{
	if(!s || !s[0] || s[0] == '$') return false;
	return strpbrk(s, "/+# \t\r\n") == NULL;
}

/* A user/thread/session id we store: topic-safe and bounded. */
static bool is_valid_id(const char *s)
{
	return is_topic_safe(s) && strnlen(s, MAX_ID_LEN + 1) <= MAX_ID_LEN;
}

/* For logs: the string if it is short and printable, else a placeholder. */
static const char *printable(const char *s)
{
	size_t i;

	if(!s) return "<none>";
	for(i = 0; s[i]; i++){
		if(i >= 128 || !isprint((unsigned char)s[i])) return "<unprintable>";
	}
	return s;
}

static double now_real(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool is_service(const struct plugin *p, const char *username)
{
	for(size_t i = 0; i < p->n_service; i++){
		if(!strcmp(p->service_users[i], username)) return true;
	}
	return false;
}

static char *dup_string(const char *s)
{
	return mosquitto_strdup(s);
}

static bool hmac_sha256(const struct plugin *p, const void *data, size_t len, unsigned char out[HMAC_LEN])
{
	unsigned int outlen = 0;

	if(!HMAC(EVP_sha256(), p->secret, (int)p->secret_len, data, len, out, &outlen)) return false;
	return outlen == HMAC_LEN;
}

/* user "\x1f" thread into buf; false if an id is too long. */
static bool membership_key(const char *user, const char *thread, char *buf, size_t cap, size_t *klen)
{
	size_t ulen = strnlen(user, MAX_ID_LEN + 1), tlen = strnlen(thread, MAX_ID_LEN + 1);

	if(ulen > MAX_ID_LEN || tlen > MAX_ID_LEN || ulen + tlen + 2 > cap) return false;
	memcpy(buf, user, ulen);
	buf[ulen] = '\x1f';
	memcpy(buf + ulen + 1, thread, tlen);
	buf[ulen + 1 + tlen] = '\0';
	*klen = ulen + 1 + tlen;
	return true;
}

/* ------------------------------------------------------------------------------------------ */
/* Memberships                                                                                 */

static bool is_member(const struct plugin *p, const char *user, const char *thread)
{
	char key[2 * MAX_ID_LEN + 2];
	size_t klen;

	if(!membership_key(user, thread, key, sizeof(key), &klen)) return false;
	return map_find(&p->memberships, key, klen) != NULL;
}

static bool membership_add(struct plugin *p, const char *user, const char *thread_id)
{
	char key[2 * MAX_ID_LEN + 2];
	size_t klen;
	bool created, tcreated;
	struct node *node, *tnode;
	struct thread *t;
	struct membership *m;

	if(!membership_key(user, thread_id, key, sizeof(key), &klen)) return false;
	node = map_insert(&p->memberships, key, klen, &created);
	if(!node) return false;
	if(!created) return true;

	tnode = map_insert(&p->threads, thread_id, strlen(thread_id), &tcreated);
	if(!tnode){
		map_remove(&p->memberships, node);
		return false;
	}
	if(tcreated){
		t = mosquitto_calloc(1, sizeof(*t));
		if(!t){
			map_remove(&p->threads, tnode);
			map_remove(&p->memberships, node);
			return false;
		}
		t->node = tnode;
		tnode->value = t;
	}
	t = tnode->value;
	m = mosquitto_calloc(1, sizeof(*m));
	if(!m){
		map_remove(&p->memberships, node);
		if(t->count == 0){
			map_remove(&p->threads, tnode);
			mosquitto_free(t);
		}
		return false;
	}
	m->node = node;
	m->thread = t;
	m->next = t->head;
	if(t->head) t->head->prev = m;
	t->head = m;
	t->count++;
	node->value = m;
	return true;
}

static void membership_unlink(struct plugin *p, struct membership *m)
{
	struct thread *t = m->thread;

	if(m->prev) m->prev->next = m->next;
	else t->head = m->next;
	if(m->next) m->next->prev = m->prev;
	t->count--;
	map_remove(&p->memberships, m->node);
	mosquitto_free(m);
	if(t->count == 0){
		map_remove(&p->threads, t->node);
		mosquitto_free(t);
	}
}

static void membership_remove(struct plugin *p, const char *user, const char *thread_id)
{
	char key[2 * MAX_ID_LEN + 2];
	size_t klen;
	struct node *node;

	if(!membership_key(user, thread_id, key, sizeof(key), &klen)) return;
	node = map_find(&p->memberships, key, klen);
	if(node) membership_unlink(p, node->value);
}

static void thread_drop(struct plugin *p, const char *thread_id)
{
	struct node *tnode = map_find(&p->threads, thread_id, strlen(thread_id));
	struct thread *t;

	if(!tnode) return;
	t = tnode->value;
	/* membership_unlink frees the thread together with its last membership */
	while(t->count > 1) membership_unlink(p, t->head);
	membership_unlink(p, t->head);
}

static void free_value(void *v)
{
	mosquitto_free(v);
}

/* ------------------------------------------------------------------------------------------ */
/* Ended sessions, bans, connected clients                                                     */

static bool session_ended(struct plugin *p, const char *sid)
{
	struct node *n = map_find(&p->ended, sid, strlen(sid));

	if(!n) return false;
	if(n->num <= (int64_t)time(NULL)){
		map_remove(&p->ended, n); /* expired: its tokens have expired too */
		return false;
	}
	return true;
}

static void prune_ended(struct plugin *p)
{
	int64_t now = (int64_t)time(NULL);

	for(size_t i = 0; i < p->ended.nbuckets; i++){
		struct node *n = p->ended.buckets[i], *next;
		for(; n; n = next){
			next = n->next;
			if(n->num <= now) map_remove(&p->ended, n);
		}
	}
	p->ended_prune_at = p->ended.count * 2 > 1024 ? p->ended.count * 2 : 1024;
}

static void count_session(struct plugin *p, const char *sid, int64_t delta)
{
	bool created;
	struct node *n = delta > 0 ? map_insert(&p->sessions, sid, strlen(sid), &created)
			: map_find(&p->sessions, sid, strlen(sid));

	if(!n){
		if(delta > 0) p->sessions_incomplete = true; /* out of memory: scan from now on */
		return;
	}
	n->num += delta;
	if(n->num <= 0) map_remove(&p->sessions, n);
}

static bool session_connected(const struct plugin *p, const char *sid)
{
	return p->sessions_incomplete || map_find(&p->sessions, sid, strlen(sid)) != NULL;
}

static void free_client_rec(void *v)
{
	struct client_rec *c = v;

	mosquitto_free(c->username);
	mosquitto_free(c->sid);
	mosquitto_free(c);
}

static void remember_client(struct plugin *p, const struct mosquitto *client, const char *client_id,
		const char *username, const char *sid)
{
	bool created;
	struct node *n = map_insert(&p->clients, client_id, strlen(client_id), &created);
	struct client_rec *c;
	char *u, *s;

	if(!n) return; /* out of memory: this connection just cannot be kicked by session */
	u = dup_string(username);
	s = dup_string(sid);
	if(!u || !s){
		mosquitto_free(u);
		mosquitto_free(s);
		if(created) map_remove(&p->clients, n);
		return;
	}
	c = n->value;
	if(!c){
		c = mosquitto_calloc(1, sizeof(*c));
		if(!c){
			mosquitto_free(u);
			mosquitto_free(s);
			map_remove(&p->clients, n);
			return;
		}
		n->value = c;
	}else{
		count_session(p, c->sid, -1);
		mosquitto_free(c->username);
		mosquitto_free(c->sid);
	}
	c->client = client;
	c->username = u;
	c->sid = s;
	count_session(p, s, 1);
}

/* ------------------------------------------------------------------------------------------ */
/* Extra rules                                                                                 */

static void rule_free(struct rule *r)
{
	mosquitto_free(r->topic);
	map_clear(&r->users, NULL);
}

static void rules_clear(struct plugin *p)
{
	for(size_t i = 0; i < p->n_rules; i++) rule_free(&p->rules[i]);
	mosquitto_free(p->rules);
	p->rules = NULL;
	p->n_rules = 0;
}

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
static const char *check_rule_topic(const struct plugin *p, const char *topic)
{
	const char *level = topic;
	size_t len = strnlen(topic, MAX_RULE_TOPIC_LEN + 1);

	if(len == 0 || len > MAX_RULE_TOPIC_LEN || topic[0] == '$'){
		return "topic must be a non-empty MQTT filter of at most 1024 bytes, not a $ topic";
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

/* ------------------------------------------------------------------------------------------ */
/* Access JWT (HS256)                                                                          */

static int b64url_value(unsigned char c)
{
	if(c >= 'A' && c <= 'Z') return c - 'A';
	if(c >= 'a' && c <= 'z') return c - 'a' + 26;
	if(c >= '0' && c <= '9') return c - '0' + 52;
	if(c == '-') return 62;
	if(c == '_') return 63;
	return -1;
}

/* Unpadded base64url; false on a bad character, a bad length or an overflow of `cap`. */
static bool b64url_decode(const char *in, size_t inlen, unsigned char *out, size_t cap, size_t *outlen)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t n = 0;

	if(inlen % 4 == 1) return false;
	for(size_t i = 0; i < inlen; i++){
		int v = b64url_value((unsigned char)in[i]);
		if(v < 0) return false;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if(bits >= 8){
			bits -= 8;
			if(n >= cap) return false;
			out[n++] = (unsigned char)((acc >> bits) & 0xff);
		}
	}
	*outlen = n;
	return true;
}

static cJSON *decode_json_part(const char *in, size_t inlen)
{
	unsigned char buf[MAX_TOKEN_LEN];
	size_t n;

	if(!b64url_decode(in, inlen, buf, sizeof(buf), &n)) return NULL;
	return cJSON_ParseWithLength((const char *)buf, n);
}

/* A JSON number that Python's int() accepts as a whole number of seconds. */
static bool claim_number(const cJSON *claims, const char *name, bool required, double *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(claims, name);

	if(!v) return !required;
	if(!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) return false;
	*out = trunc(v->valuedouble);
	return true;
}

/* Verifies like models/tokens.py decode_access_token; on success copies the session id. */
static const char *verify_access_token(const struct plugin *p, const char *token, const char *username,
		char sid[MAX_ID_LEN + 1])
{
	size_t len = strnlen(token, MAX_TOKEN_LEN + 1), siglen;
	const char *dot1, *dot2;
	unsigned char mac[HMAC_LEN], sig[HMAC_LEN + 2];
	cJSON *header = NULL, *claims = NULL;
	const cJSON *v;
	const char *reason = NULL;
	double exp = 0, nbf = 0, iat = 0, now;

	if(len > MAX_TOKEN_LEN) return "password too long for a token";
	dot1 = memchr(token, '.', len);
	dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
	if(!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token))) return "not a JWT";

	if(!b64url_decode(dot2 + 1, len - (size_t)(dot2 + 1 - token), sig, sizeof(sig), &siglen)
			|| siglen != HMAC_LEN){
		return "bad signature";
	}
	if(!hmac_sha256(p, token, (size_t)(dot2 - token), mac)) return "cannot compute HMAC";
	if(CRYPTO_memcmp(mac, sig, HMAC_LEN) != 0) return "bad signature";

	header = decode_json_part(token, (size_t)(dot1 - token));
	v = header ? cJSON_GetObjectItemCaseSensitive(header, "alg") : NULL;
	if(!cJSON_IsString(v) || strcmp(v->valuestring, "HS256")){
		reason = "token algorithm is not HS256";
		goto done;
	}
	claims = decode_json_part(dot1 + 1, (size_t)(dot2 - dot1 - 1));
	if(!cJSON_IsObject(claims)){
		reason = "malformed claims";
		goto done;
	}
	now = now_real();
	if(!claim_number(claims, "exp", true, &exp)){
		reason = "missing or malformed exp";
		goto done;
	}
	if(exp <= now){
		reason = "token expired";
		goto done;
	}
	if(!claim_number(claims, "nbf", false, &nbf) || nbf > now
			|| !claim_number(claims, "iat", false, &iat) || iat > now){
		reason = "token not yet valid";
		goto done;
	}
	v = cJSON_GetObjectItemCaseSensitive(claims, "typ");
	if(!cJSON_IsString(v) || strcmp(v->valuestring, "access")){
		reason = "not an access token";
		goto done;
	}
	v = cJSON_GetObjectItemCaseSensitive(claims, "sub");
	if(!cJSON_IsString(v) || strcmp(v->valuestring, username)){
		reason = "token of another user";
		goto done;
	}
	v = cJSON_GetObjectItemCaseSensitive(claims, "sid");
	if(!cJSON_IsString(v) || !v->valuestring[0] || strlen(v->valuestring) > MAX_ID_LEN){
		reason = "token without a session";
		goto done;
	}
	strcpy(sid, v->valuestring);
done:
	cJSON_Delete(header);
	cJSON_Delete(claims);
	return reason;
}

/* ------------------------------------------------------------------------------------------ */
/* Secret and service passwords                                                                */

static bool load_secret(struct plugin *p)
{
	char buf[MAX_SECRET_LEN + 2];
	size_t n, start = 0;
	FILE *f = fopen(p->secret_file, "r");

	if(!f){
		mosquitto_log_printf(MOSQ_LOG_ERR, "mqim: cannot read jwt_secret_file %s: %s",
				p->secret_file, strerror(errno));
		return false;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	if(n > MAX_SECRET_LEN){
		mosquitto_log_printf(MOSQ_LOG_ERR, "mqim: jwt_secret_file %s is too large", p->secret_file);
		return false;
	}
	buf[n] = '\0';
	while(n > 0 && isspace((unsigned char)buf[n - 1])) buf[--n] = '\0';
	while(start < n && isspace((unsigned char)buf[start])) start++;
	if(n - start < MIN_SECRET_LEN || memchr(buf + start, '\0', n - start)){
		mosquitto_log_printf(MOSQ_LOG_ERR,
				"mqim: the secret in %s is shorter than %d characters", p->secret_file, MIN_SECRET_LEN);
		OPENSSL_cleanse(buf, sizeof(buf));
		return false;
	}
	memcpy(p->secret, buf + start, n - start);
	p->secret[n - start] = '\0';
	p->secret_len = n - start;
	OPENSSL_cleanse(buf, sizeof(buf));

	for(size_t i = 0; i < p->n_service; i++){
		static const char hex[] = "0123456789abcdef";
		char msg[MAX_ID_LEN + 32];
		unsigned char mac[HMAC_LEN];
		int mlen = snprintf(msg, sizeof(msg), "mqtt-service:%s", p->service_users[i]);

		if(mlen < 0 || (size_t)mlen >= sizeof(msg) || !hmac_sha256(p, msg, (size_t)mlen, mac)) return false;
		for(size_t j = 0; j < HMAC_LEN; j++){
			p->service_passwords[i][2 * j] = hex[mac[j] >> 4];
			p->service_passwords[i][2 * j + 1] = hex[mac[j] & 0xf];
		}
		p->service_passwords[i][2 * HMAC_LEN] = '\0';
	}
	return true;
}

/* ------------------------------------------------------------------------------------------ */
/* Callbacks: login, ACL, disconnect, reload                                                   */

static bool owns_client_id(const char *username, const char *client_id)
{
	size_t ulen = strlen(username);

	return client_id && !strncmp(client_id, username, ulen)
			&& (client_id[ulen] == '\0' || client_id[ulen] == ':');
}

static int refuse(const char *username, const char *client_id, const char *reason)
{
	mosquitto_log_printf(MOSQ_LOG_NOTICE, "mqim: refused login of '%s' (client '%s'): %s",
			printable(username), printable(client_id), reason);
	return MOSQ_ERR_AUTH;
}

static int on_basic_auth(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_basic_auth *ed = event_data;
	struct plugin *p = userdata;
	const char *username = ed->username, *password = ed->password;
	const char *client_id = mosquitto_client_id(ed->client);
	const char *reason;
	char sid[MAX_ID_LEN + 1];

	(void)event;
	if(!username) return refuse(username, client_id, "no username");
	if(!password) return refuse(username, client_id, "no password");
	for(size_t i = 0; i < p->n_service; i++){
		if(!strcmp(p->service_users[i], username)){
			if(strlen(password) == 2 * HMAC_LEN
					&& !CRYPTO_memcmp(password, p->service_passwords[i], 2 * HMAC_LEN)){
				return MOSQ_ERR_SUCCESS;
			}
			return refuse(username, client_id, "wrong service password");
		}
	}
	if(!is_valid_id(username) || strchr(username, ':')) return refuse(username, client_id, "invalid username");
	for(size_t i = 0; i < p->n_service; i++){
		/* A user's client ids start with the user id: keep them out of the ids of mqim's
		 * services (e.g. mqim-bridge-1), whose sessions a takeover would disconnect or drain. */
		if(!strncmp(username, p->service_users[i], strlen(p->service_users[i]))){
			return refuse(username, client_id, "user id in a service account's namespace");
		}
	}
	if(!owns_client_id(username, client_id)){
		/* otherwise a user could take over (disconnect) another user's connection */
		return refuse(username, client_id, "client id must be the username or start with 'username:'");
	}
	reason = verify_access_token(p, password, username, sid);
	if(reason) return refuse(username, client_id, reason);
	if(!p->ready){
		mosquitto_log_printf(MOSQ_LOG_NOTICE,
				"mqim: turned away '%s' (client '%s'): waiting for mqim's first sync",
				printable(username), printable(client_id));
		return MOSQ_ERR_UNKNOWN; /* no CONNACK: the client retries, as after a network error */
	}
	if(map_find(&p->banned, username, strlen(username))) return refuse(username, client_id, "user banned");
	if(session_ended(p, sid)) return refuse(username, client_id, "session ended");
	remember_client(p, ed->client, client_id, username, sid);
	return MOSQ_ERR_SUCCESS;
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

/* As broker/plugins.py: a refused publish is reported to the sender as an `error` event on
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

static int on_acl_check(int event, void *event_data, void *userdata)
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

static int on_disconnect(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_disconnect *ed = event_data;
	struct plugin *p = userdata;
	const char *client_id = mosquitto_client_id(ed->client);
	struct node *n;

	(void)event;
	if(!client_id) return MOSQ_ERR_SUCCESS;
	n = map_find(&p->clients, client_id, strlen(client_id));
	/* Only if it is the connection we recorded: on a takeover the old one leaves after the
	 * new one logged in with the same client id. */
	if(n && ((struct client_rec *)n->value)->client == ed->client){
		count_session(p, ((struct client_rec *)n->value)->sid, -1);
		free_client_rec(n->value);
		map_remove(&p->clients, n);
	}
	return MOSQ_ERR_SUCCESS;
}

static int on_reload(int event, void *event_data, void *userdata)
{
	struct plugin *p = userdata;

	(void)event;
	(void)event_data;
	if(load_secret(p)){
		mosquitto_log_printf(MOSQ_LOG_NOTICE, "mqim: reloaded the JWT secret from %s", p->secret_file);
	}else{
		mosquitto_log_printf(MOSQ_LOG_WARNING, "mqim: kept the previous JWT secret");
	}
	return MOSQ_ERR_SUCCESS;
}

/* ------------------------------------------------------------------------------------------ */
/* Control commands                                                                            */

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

static void do_reset(struct plugin *p)
{
	map_clear(&p->memberships, free_value); /* struct membership */
	map_clear(&p->threads, free_value);       /* struct thread */
	map_clear(&p->ended, NULL);
	map_clear(&p->banned, NULL);
	rules_clear(p);
	map_clear(&p->live, NULL);
	p->ended_prune_at = 1024;
	p->ready = false;
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

static int on_control(int event, void *event_data, void *userdata)
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

/* ------------------------------------------------------------------------------------------ */
/* Plugin entry points                                                                         */

static void plugin_free(struct plugin *p)
{
	if(!p) return;
	do_reset(p);
	map_clear(&p->clients, free_client_rec);
	map_clear(&p->sessions, NULL);
	for(size_t i = 0; i < p->n_service; i++) mosquitto_free(p->service_users[i]);
	mosquitto_free(p->secret_file);
	mosquitto_free(p->prefix);
	OPENSSL_cleanse(p->secret, sizeof(p->secret));
	OPENSSL_cleanse(p->service_passwords, sizeof(p->service_passwords));
	mosquitto_free(p);
}

static bool parse_service_users(struct plugin *p, const char *value)
{
	const char *s = value;

	while(*s){
		size_t n;
		char *name;

		s += strspn(s, ", \t");
		n = strcspn(s, ", \t");
		if(n == 0) break;
		if(p->n_service >= MAX_SERVICE_USERS) return false;
		name = mosquitto_malloc(n + 1);
		if(!name) return false;
		memcpy(name, s, n);
		name[n] = '\0';
		if(!is_valid_id(name)){
			mosquitto_free(name);
			return false;
		}
		p->service_users[p->n_service++] = name;
		s += n;
	}
	return p->n_service > 0;
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	for(int i = 0; i < supported_version_count; i++){
		if(supported_versions[i] == 5) return 5;
	}
	return -1;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
		struct mosquitto_opt *options, int option_count)
{
	struct plugin *p;
	const char *service_users = "mqim-bridge", *prefix = "im", *secret_file = NULL;
	int rc;

	for(int i = 0; i < option_count; i++){
		if(!strcmp(options[i].key, "jwt_secret_file")) secret_file = options[i].value;
		else if(!strcmp(options[i].key, "topic_prefix")) prefix = options[i].value;
		else if(!strcmp(options[i].key, "service_users")) service_users = options[i].value;
		else mosquitto_log_printf(MOSQ_LOG_WARNING, "mqim: unknown option plugin_opt_%s", options[i].key);
	}
	if(!secret_file){
		mosquitto_log_printf(MOSQ_LOG_ERR, "mqim: plugin_opt_jwt_secret_file is required");
		return MOSQ_ERR_INVAL;
	}
	if(!prefix[0] || prefix[0] == '$' || strpbrk(prefix, "+# \t") || strlen(prefix) > MAX_ID_LEN){
		mosquitto_log_printf(MOSQ_LOG_ERR, "mqim: plugin_opt_topic_prefix '%s' is not a valid prefix",
				printable(prefix));
		return MOSQ_ERR_INVAL;
	}
	if(RAND_bytes((unsigned char *)&sip_k0, sizeof(sip_k0)) != 1
			|| RAND_bytes((unsigned char *)&sip_k1, sizeof(sip_k1)) != 1){
		mosquitto_log_printf(MOSQ_LOG_ERR, "mqim: no randomness for the hash key");
		return MOSQ_ERR_UNKNOWN;
	}
	p = mosquitto_calloc(1, sizeof(*p));
	if(!p) return MOSQ_ERR_NOMEM;
	p->id = identifier;
	p->ended_prune_at = 1024;
	p->secret_file = dup_string(secret_file);
	p->prefix = dup_string(prefix);
	if(!p->secret_file || !p->prefix){
		plugin_free(p);
		return MOSQ_ERR_NOMEM;
	}
	p->prefix_len = strlen(p->prefix);
	if(!parse_service_users(p, service_users)){
		mosquitto_log_printf(MOSQ_LOG_ERR, "mqim: plugin_opt_service_users must list 1 to %d valid names",
				MAX_SERVICE_USERS);
		plugin_free(p);
		return MOSQ_ERR_INVAL;
	}
	if(!load_secret(p)){
		plugin_free(p);
		return MOSQ_ERR_INVAL;
	}
	rc = mosquitto_callback_register(identifier, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL, p);
	if(!rc) rc = mosquitto_callback_register(identifier, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL, p);
	if(!rc) rc = mosquitto_callback_register(identifier, MOSQ_EVT_CONTROL, on_control, CONTROL_TOPIC, p);
	if(!rc) rc = mosquitto_callback_register(identifier, MOSQ_EVT_DISCONNECT, on_disconnect, NULL, p);
	if(!rc) rc = mosquitto_callback_register(identifier, MOSQ_EVT_RELOAD, on_reload, NULL, p);
	if(rc){
		mosquitto_log_printf(MOSQ_LOG_ERR, "mqim: cannot register callbacks: %s", mosquitto_strerror(rc));
		plugin_free(p);
		return rc;
	}
	*userdata = p;
	mosquitto_log_printf(MOSQ_LOG_NOTICE,
			"mqim: loaded; topic prefix '%s', %zu service user(s); waiting for mqim's sync on %s",
			p->prefix, p->n_service, CONTROL_TOPIC);
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
	struct plugin *p = userdata;

	(void)options;
	(void)option_count;
	if(!p) return MOSQ_ERR_SUCCESS;
	mosquitto_callback_unregister(p->id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL);
	mosquitto_callback_unregister(p->id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL);
	mosquitto_callback_unregister(p->id, MOSQ_EVT_CONTROL, on_control, CONTROL_TOPIC);
	mosquitto_callback_unregister(p->id, MOSQ_EVT_DISCONNECT, on_disconnect, NULL);
	mosquitto_callback_unregister(p->id, MOSQ_EVT_RELOAD, on_reload, NULL);
	plugin_free(p);
	return MOSQ_ERR_SUCCESS;
}
