/*
 * mqim_auth: what the plugin holds in memory, and nothing about who may do what with it.
 *
 * Thread memberships (a map of user+thread keys, plus per-thread lists so a thread drops in
 * one go), ended sessions (refused until their tokens expire, pruned lazily), bans, the
 * connected user clients (so endSession can kick by session), the extra rules' storage, and
 * the reset that empties it all. control.c changes this state; auth.c and acl.c read it.
 */

#include <string.h>
#include <time.h>

#include "mqim_auth.h"

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

bool is_member(const struct plugin *p, const char *user, const char *thread)
{
	char key[2 * MAX_ID_LEN + 2];
	size_t klen;

	if(!membership_key(user, thread, key, sizeof(key), &klen)) return false;
	return map_find(&p->memberships, key, klen) != NULL;
}

bool membership_add(struct plugin *p, const char *user, const char *thread_id)
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

void membership_remove(struct plugin *p, const char *user, const char *thread_id)
{
	char key[2 * MAX_ID_LEN + 2];
	size_t klen;
	struct node *node;

	if(!membership_key(user, thread_id, key, sizeof(key), &klen)) return;
	node = map_find(&p->memberships, key, klen);
	if(node) membership_unlink(p, node->value);
}

void thread_drop(struct plugin *p, const char *thread_id)
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

bool session_ended(struct plugin *p, const char *sid)
{
	struct node *n = map_find(&p->ended, sid, strlen(sid));

	if(!n) return false;
	if(n->num <= (int64_t)time(NULL)){
		map_remove(&p->ended, n); /* expired: its tokens have expired too */
		return false;
	}
	return true;
}

void prune_ended(struct plugin *p)
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

bool session_connected(const struct plugin *p, const char *sid)
{
	return p->sessions_incomplete || map_find(&p->sessions, sid, strlen(sid)) != NULL;
}

void free_client_rec(void *v)
{
	struct client_rec *c = v;

	mosquitto_free(c->username);
	mosquitto_free(c->sid);
	mosquitto_free(c);
}

void remember_client(struct plugin *p, const struct mosquitto *client, const char *client_id,
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

void rule_free(struct rule *r)
{
	mosquitto_free(r->topic);
	map_clear(&r->users, NULL);
}

void rules_clear(struct plugin *p)
{
	for(size_t i = 0; i < p->n_rules; i++) rule_free(&p->rules[i]);
	mosquitto_free(p->rules);
	p->rules = NULL;
	p->n_rules = 0;
}

void do_reset(struct plugin *p)
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

int on_disconnect(int event, void *event_data, void *userdata)
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
