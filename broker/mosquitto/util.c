/*
 * mqim_auth: small helpers shared by every part: what may be an id, log-safe strings, the
 * clock, service-user lookup and string copies on Mosquitto's allocator.
 */

#include <ctype.h>
#include <string.h>
#include <time.h>

#include "mqim_auth.h"

/* A topic level that may be an id: as contract/topics.py is_topic_safe. */
bool is_topic_safe(const char *s)
{
	if(!s || !s[0] || s[0] == '$') return false;
	return strpbrk(s, "/+# \t\r\n") == NULL;
}

/* A user/thread/session id we store: topic-safe and bounded. */
bool is_valid_id(const char *s)
{
	return is_topic_safe(s) && strnlen(s, MAX_ID_LEN + 1) <= MAX_ID_LEN;
}

/* For logs: the string if it is short and printable, else a placeholder. */
const char *printable(const char *s)
{
	size_t i;

	if(!s) return "<none>";
	for(i = 0; s[i]; i++){
		if(i >= 128 || !isprint((unsigned char)s[i])) return "<unprintable>";
	}
	return s;
}

double now_real(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

bool is_service(const struct plugin *p, const char *username)
{
	for(size_t i = 0; i < p->n_service; i++){
		if(!strcmp(p->service_users[i], username)) return true;
	}
	return false;
}

char *dup_string(const char *s)
{
	return mosquitto_strdup(s);
}
