/*
 * abi_table.c -- every struct, member and constant of plugin ABI 1.0, with
 * offsets and sizes as this compilation sees them.  Built twice (see
 * abi_table.h); ABI_TABLE names the table.  The list is ABI 1.0's and only
 * ever grows with later minors' appended members, guarded by
 * WSYNC_PLUGIN_ABI_MINOR.
 */
#include <wsync/plugin.h>

#include "abi_table.h"

#define S(type) {ABI_STRUCT, #type, 0, sizeof(type)},
#define M(type, member) \
	{ABI_MEMBER, #type "." #member, offsetof(type, member), sizeof(((type *)0)->member)},
#define C(name) {ABI_CONSTANT, #name, (size_t)(name), 0},

const abi_row ABI_TABLE[] = {
	S(wsync_plugin)
	M(wsync_plugin, magic) M(wsync_plugin, abi_major) M(wsync_plugin, abi_minor)
	M(wsync_plugin, struct_size) M(wsync_plugin, flags) M(wsync_plugin, name)
	M(wsync_plugin, version) M(wsync_plugin, description) M(wsync_plugin, config_keys)
	M(wsync_plugin, n_config_keys) M(wsync_plugin, reserved0) M(wsync_plugin, init)
	M(wsync_plugin, destroy) M(wsync_plugin, sync_workout)
	M(wsync_plugin, sync_scheduled_workout) M(wsync_plugin, delete_workout)
	M(wsync_plugin, delete_scheduled_workout)

	S(wsync_host)
	M(wsync_host, struct_size) M(wsync_host, abi_major) M(wsync_host, abi_minor)
	M(wsync_host, host_version) M(wsync_host, log) M(wsync_host, config_get_string)
	M(wsync_host, config_get_int) M(wsync_host, config_get_bool) M(wsync_host, http)
	M(wsync_host, set_error) M(wsync_host, set_provider_id) M(wsync_host, now)
	M(wsync_host, base64_encode) M(wsync_host, free_string)

	S(wsync_config_key)
	M(wsync_config_key, section) M(wsync_config_key, key) M(wsync_config_key, type)
	M(wsync_config_key, required) M(wsync_config_key, default_value)
	M(wsync_config_key, help)

	S(wsync_workout_entity)
	M(wsync_workout_entity, struct_size) M(wsync_workout_entity, reserved0)
	M(wsync_workout_entity, id) M(wsync_workout_entity, user_id)
	M(wsync_workout_entity, name) M(wsync_workout_entity, description)
	M(wsync_workout_entity, sport) M(wsync_workout_entity, workout_text)
	M(wsync_workout_entity, structure) M(wsync_workout_entity, updated_at)

	S(wsync_scheduled_entity)
	M(wsync_scheduled_entity, struct_size) M(wsync_scheduled_entity, reserved0)
	M(wsync_scheduled_entity, id) M(wsync_scheduled_entity, user_id)
	M(wsync_scheduled_entity, workout_id) M(wsync_scheduled_entity, scheduled_date)
	M(wsync_scheduled_entity, scheduled_time)

	S(wsync_request)
	M(wsync_request, struct_size) M(wsync_request, operation) M(wsync_request, queue_id)
	M(wsync_request, provider) M(wsync_request, user_id) M(wsync_request, access_token)
	M(wsync_request, workout) M(wsync_request, scheduled)
	M(wsync_request, workout_provider_id) M(wsync_request, scheduled_provider_id)
	M(wsync_request, attempt) M(wsync_request, reserved0) M(wsync_request, now)

	S(wsync_http_header)
	M(wsync_http_header, name) M(wsync_http_header, value)

	S(wsync_http_request)
	M(wsync_http_request, struct_size) M(wsync_http_request, auth)
	M(wsync_http_request, method) M(wsync_http_request, path)
	M(wsync_http_request, content_type) M(wsync_http_request, body)
	M(wsync_http_request, body_len) M(wsync_http_request, headers)
	M(wsync_http_request, n_headers) M(wsync_http_request, reserved0)

	S(wsync_http_response)
	M(wsync_http_response, struct_size) M(wsync_http_response, http_status)
	M(wsync_http_response, body) M(wsync_http_response, body_len)
	M(wsync_http_response, retry_after_s)

	S(wsync_step)
	M(wsync_step, kind) M(wsync_step, repeat_count) M(wsync_step, child_count)
	M(wsync_step, length_kind) M(wsync_step, length) M(wsync_step, target_kind)
	M(wsync_step, ramp) M(wsync_step, target_low) M(wsync_step, target_high)
	M(wsync_step, cadence_low) M(wsync_step, cadence_high) M(wsync_step, intensity)
	M(wsync_step, freeride) M(wsync_step, cue) M(wsync_step, section) M(wsync_step, line)
	M(wsync_step, reserved0)

	S(wsync_workout)
	M(wsync_workout, struct_size) M(wsync_workout, step_size) M(wsync_workout, steps)
	M(wsync_workout, n_steps) M(wsync_workout, expanded_steps)
	M(wsync_workout, total_seconds) M(wsync_workout, total_metres)

	C(WSYNC_PLUGIN_MAGIC) C(WSYNC_PLUGIN_ABI_MAJOR) C(WSYNC_PLUGIN_SERIAL)
	C(WSYNC_OK) C(WSYNC_NOT_APPLICABLE) C(WSYNC_E_NOT_FOUND) C(WSYNC_E_RATE_LIMIT)
	C(WSYNC_E_AUTH) C(WSYNC_E_PROVIDER) C(WSYNC_E_INVALID) C(WSYNC_E_UNEXPECTED)
	C(WSYNC_E_INVALID_WORKOUT)
	C(WSYNC_LOG_DEBUG) C(WSYNC_LOG_INFO) C(WSYNC_LOG_WARNING) C(WSYNC_LOG_ERROR)
	C(WSYNC_OP_CREATE) C(WSYNC_OP_UPDATE) C(WSYNC_OP_DELETE)
	C(WSYNC_CONFIG_STRING) C(WSYNC_CONFIG_INT) C(WSYNC_CONFIG_BOOL) C(WSYNC_CONFIG_SECRET)
	C(WSYNC_STEP_STEP) C(WSYNC_STEP_REPEAT)
	C(WSYNC_LENGTH_TIME) C(WSYNC_LENGTH_DISTANCE) C(WSYNC_LENGTH_OPEN)
	C(WSYNC_TARGET_NONE) C(WSYNC_TARGET_PERCENT_FTP) C(WSYNC_TARGET_WATTS)
	C(WSYNC_TARGET_POWER_ZONE) C(WSYNC_TARGET_PERCENT_MAX_HR) C(WSYNC_TARGET_PERCENT_LTHR)
	C(WSYNC_TARGET_HR_ZONE) C(WSYNC_TARGET_PERCENT_PACE) C(WSYNC_TARGET_PACE_ZONE)
	C(WSYNC_TARGET_PACE)
	C(WSYNC_INTENSITY_ACTIVE) C(WSYNC_INTENSITY_WARMUP) C(WSYNC_INTENSITY_COOLDOWN)
	C(WSYNC_INTENSITY_RECOVERY)

	{0, NULL, 0, 0},
};
