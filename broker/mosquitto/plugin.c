/*
 * mqim_auth: Mosquitto's entry points. Reads the plugin_opt_* options, seeds the hash, loads
 * the secret, registers the callbacks of auth.c, acl.c, control.c and state.c, and frees
 * everything at cleanup. What the plugin does is described in mqim_auth.h.
 */

#include <string.h>

#include <openssl/crypto.h>

#include "mqim_auth.h"

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
	if(!map_seed()){
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
