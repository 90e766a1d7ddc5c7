/*
 * mqim_auth: logins (MOSQ_EVT_BASIC_AUTH) and the secret they are checked against.
 *
 * Service users log in with a password derived from the JWT secret; users with an HS256
 * access JWT verified as models/tokens.py decode_access_token does, from a client id of
 * their own, unless banned or their session ended. The secret is read from the secret file
 * at load and on reload (MOSQ_EVT_RELOAD), which also derives the service passwords.
 *
 * A token is read the way PyJWT reads it, down to what it refuses besides the signature and
 * the times: non-canonical base64url, data after the JSON, an `aud`, a `jti` that is not a
 * string, the header fields it does not support; and a repeated member counts once, the last.
 * tests/conformance/jwt_cases.py holds both verifiers to one table. Unlike the Python one, the
 * plugin does not know which sessions exist: only the ended ones mqim told it about.
 */

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "mqim_auth.h"

static bool hmac_sha256(const struct plugin *p, const void *data, size_t len, unsigned char out[HMAC_LEN])
{
	unsigned int outlen = 0;

	if(!HMAC(EVP_sha256(), p->secret, (int)p->secret_len, data, len, out, &outlen)) return false;
	return outlen == HMAC_LEN;
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

/* A JWT segment's base64url, read as PyJWT reads it: unpadded, or padded with at most two '='
 * to a multiple of 4 characters; and canonical (the unused low bits of the last character are
 * zero), so that a token has one spelling only. False on anything else or an overflow of `cap`. */
static bool b64url_decode(const char *in, size_t inlen, unsigned char *out, size_t cap, size_t *outlen)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t n = 0, pad = 0;

	while(pad < inlen && in[inlen - 1 - pad] == '=') pad++;
	if(pad > 2 || (pad > 0 && inlen % 4 != 0)) return false;
	inlen -= pad;
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
	if(acc & ((1u << bits) - 1)) return false;
	*outlen = n;
	return true;
}

/* A segment's JSON, with nothing but JSON whitespace after the value (Python's json.loads
 * refuses "extra data", which cJSON would ignore). */
static cJSON *decode_json_part(const char *in, size_t inlen)
{
	unsigned char buf[MAX_TOKEN_LEN];
	const char *end = NULL, *last;
	size_t n;
	cJSON *json;

	if(!b64url_decode(in, inlen, buf, sizeof(buf), &n)) return NULL;
	json = cJSON_ParseWithLengthOpts((const char *)buf, n, &end, false);
	if(!json) return NULL;
	last = (const char *)buf + n;
	while(end && end < last && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')) end++;
	if(end != last){
		cJSON_Delete(json);
		return NULL;
	}
	return json;
}

/* The member `name` of a JSON object; the last one if it occurs more than once, as Python's
 * json (and RFC 7519, section 4) reads it. cJSON's own lookup finds the first. */
static const cJSON *member(const cJSON *object, const char *name)
{
	const cJSON *item, *found = NULL;

	if(!cJSON_IsObject(object)) return NULL;
	cJSON_ArrayForEach(item, object){
		if(item->string && !strcmp(item->string, name)) found = item;
	}
	return found;
}

/* Whether a JSON value is there and true in Python: not null, false, 0, "", [] or {}. */
static bool truthy(const cJSON *v)
{
	if(!v || cJSON_IsNull(v) || cJSON_IsFalse(v)) return false;
	if(cJSON_IsNumber(v)) return v->valuedouble != 0;
	if(cJSON_IsString(v)) return v->valuestring[0] != '\0';
	if(cJSON_IsArray(v) || cJSON_IsObject(v)) return v->child != NULL;
	return true;
}

/* The header fields PyJWT checks besides alg: a `kid` is a string; `crit` lists only the
 * extension it knows ("b64"), which must then be present; and `b64: false` (an unencoded,
 * detached payload) is never an access token. */
static bool header_fields_ok(const cJSON *header)
{
	const cJSON *kid = member(header, "kid"), *crit = member(header, "crit");
	const cJSON *b64 = member(header, "b64"), *ext;

	if(kid && !cJSON_IsString(kid)) return false;
	if(cJSON_IsFalse(b64)) return false;
	if(crit){
		if(!cJSON_IsArray(crit) || !crit->child || !b64) return false;
		cJSON_ArrayForEach(ext, crit){
			if(!cJSON_IsString(ext) || strcmp(ext->valuestring, "b64")) return false;
		}
	}
	return true;
}

/* A JSON number that Python's int() accepts as a whole number of seconds. */
static bool claim_number(const cJSON *claims, const char *name, bool required, double *out)
{
	const cJSON *v = member(claims, name);

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
	v = member(header, "alg");
	if(!cJSON_IsString(v) || strcmp(v->valuestring, "HS256")){
		reason = "token algorithm is not HS256";
		goto done;
	}
	if(!header_fields_ok(header)){
		reason = "unsupported token header";
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
	/* As PyJWT: an audience is refused when none is expected, a token id is a string. */
	if(truthy(member(claims, "aud"))){
		reason = "token for another audience";
		goto done;
	}
	v = member(claims, "jti");
	if(v && !cJSON_IsString(v)){
		reason = "malformed jti";
		goto done;
	}
	v = member(claims, "typ");
	if(!cJSON_IsString(v) || strcmp(v->valuestring, "access")){
		reason = "not an access token";
		goto done;
	}
	v = member(claims, "sub");
	if(!cJSON_IsString(v) || strcmp(v->valuestring, username)){
		reason = "token of another user";
		goto done;
	}
	v = member(claims, "sid");
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

bool load_secret(struct plugin *p)
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

int on_basic_auth(int event, void *event_data, void *userdata)
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

int on_reload(int event, void *event_data, void *userdata)
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
