/*
 * mqim_auth: the keyed hash map behind every lookup (memberships, threads, ended sessions, bans,
 * clients, rule users, the sync's live changes).
 *
 * Byte-string keys map to a pointer and an integer; chained buckets, load factor <= 1. The hash
 * is SipHash-1-3 with a random key (map_seed, once at load), since keys are partly chosen by
 * users. It frees nodes but never values: those are the caller's (map_clear takes a freer).
 */

#include <stdint.h>
#include <string.h>

#include <openssl/rand.h>

#include "mqim_auth.h"

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

struct node *map_find(const struct map *m, const char *key, size_t klen)
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
struct node *map_insert(struct map *m, const char *key, size_t klen, bool *created)
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
void map_remove(struct map *m, struct node *node)
{
	struct node **pp = &m->buckets[node->hash & (m->nbuckets - 1)];

	while(*pp && *pp != node) pp = &(*pp)->next;
	if(*pp){
		*pp = node->next;
		m->count--;
	}
	mosquitto_free(node);
}

void map_clear(struct map *m, void (*free_value)(void *))
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

/* The hash key; false if the system has no randomness to give. */
bool map_seed(void)
{
	return RAND_bytes((unsigned char *)&sip_k0, sizeof(sip_k0)) == 1
			&& RAND_bytes((unsigned char *)&sip_k1, sizeof(sip_k1)) == 1;
}
