#!/usr/bin/env bash
# Smoke test for wsync-sandbox: starts it on a free 127.0.0.1 port, runs a
# create/read/delete per provider, OAuth rotation and a few faults with curl.
# Usage: smoke.sh [path/to/wsync-sandbox]     (exit 0 = all good, 1 = failure)
# Needs: bash, curl, base64, sed, grep.  Prints only failures.
set -u

BIN=${1:-${WSYNC_SANDBOX:-wsync-sandbox}}
command -v curl >/dev/null || { echo "smoke.sh: curl is required" >&2; exit 1; }
if ! [ -x "$BIN" ] && ! command -v "$BIN" >/dev/null; then
    echo "smoke.sh: sandbox binary '$BIN' not found" >&2
    exit 1
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/wsync-sandbox-smoke.XXXXXX")
PID=
# shellcheck disable=SC2317  # invoked through trap
cleanup() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        kill -TERM "$PID" 2>/dev/null
        wait "$PID" 2>/dev/null
    fi
    rm -rf "$T"
}
trap cleanup EXIT

"$BIN" --port 0 --port-file "$T/port" --log "$T/log" 2>"$T/stderr" &
PID=$!
for _ in $(seq 100); do
    [ -s "$T/port" ] && break
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.05
done
if ! [ -s "$T/port" ]; then
    echo "smoke.sh: sandbox did not start:" >&2
    cat "$T/stderr" >&2
    exit 1
fi
B="http://127.0.0.1:$(cat "$T/port")"

FAILED=0
fail() {
    echo "FAIL: $*" >&2
    echo "      last answer: ${CODE:-} $(head -c 400 "$T/body" 2>/dev/null)" >&2
    FAILED=1
}

# req METHOD PATH [curl args...] -> $CODE, $RC, body in $T/body, headers in $T/hdr
req() {
    local m=$1 p=$2
    shift 2
    CODE=$(curl -s -m 10 -X "$m" -o "$T/body" -D "$T/hdr" -w '%{http_code}' "$@" "$B$p")
    RC=$?
    BODY=$(cat "$T/body" 2>/dev/null)
}
expect() { # expect CODE description
    [ "$CODE" = "$1" ] || fail "$2: expected HTTP $1, got $CODE"
}
has() { # has STRING description
    case "$BODY" in *"$1"*) ;; *) fail "$2: body lacks $1" ;; esac
}
hdr() { # hdr REGEX description
    grep -qiE "$1" "$T/hdr" || fail "$2: header /$1/ missing"
}

AUTH='Authorization: Bearer smoke-token'
JSON='Content-Type: application/json'
UA='User-Agent: wsync-smoke/1.0'

req GET /_sandbox/health
expect 200 health
has '"ok":true' health

# Fixed "today" so the TrainingPeaks date window is deterministic.
req POST /_sandbox/settings -d '{"today":"2030-06-01"}'
expect 200 settings

# ------------------------------------------------------------------ Wahoo
PLAN='{"header":{"name":"Smoke plan","version":"1.0.0","workout_type_family":0,"workout_type_location":0,"ftp":250},"intervals":[{"exit_trigger_type":"time","exit_trigger_value":600,"intensity_type":"wu","targets":[{"type":"ftp","low":0.5,"high":0.6}]},{"exit_trigger_type":"repeat","exit_trigger_value":2,"intervals":[{"exit_trigger_type":"time","exit_trigger_value":300,"targets":[{"type":"watts","low":250,"high":270}]}]}]}'
FILE="data:application/json;base64,$(printf '%s' "$PLAN" | base64 | tr -d '\n')"
req POST /v1/plans -H "$AUTH" --data-urlencode "plan[file]=$FILE" \
    --data-urlencode 'plan[external_id]=smoke-1' --data-urlencode 'plan[provider_updated_at]=2030-06-01T10:00:00Z'
expect 201 "wahoo plan create"
has '"name":"Smoke plan"' "wahoo plan create"
hdr '^X-RateLimit-Remaining: ' "wahoo rate-limit headers"
PLAN_ID=$(printf '%s' "$BODY" | sed -n 's/^{"id":\([0-9]*\),.*/\1/p')
[ -n "$PLAN_ID" ] || fail "wahoo plan id missing"

req POST /v1/plans -H "$AUTH" --data-urlencode "plan[file]=$FILE" \
    --data-urlencode 'plan[external_id]=smoke-1' --data-urlencode 'plan[provider_updated_at]=2030-06-01T10:00:00Z'
expect 201 "wahoo duplicate external_id makes a second plan (Wahoo promises no dedupe)"
PLAN_ID2=$(printf '%s' "$BODY" | sed -n 's/^{"id":\([0-9]*\),.*/\1/p')
[ -n "$PLAN_ID2" ] && [ "$PLAN_ID2" != "$PLAN_ID" ] || fail "second plan should get its own id"
req GET /_sandbox/counts
has '"plans_by_external_id":{"smoke-1":2}' "counts per external_id"
has '"duplicate_plans":1' "duplicate count"
req GET "/v1/plans?external_id=smoke-1" -H "$AUTH"
has "\"id\":$PLAN_ID2" "lookup by external_id lists both plans"
req DELETE "/v1/plans/$PLAN_ID2" -H "$AUTH"
expect 200 "wahoo delete of the second plan"
req POST /v1/plans -H "$AUTH" -d 'plan[file]=data:application/json;base64,e30=&plan[external_id]=x&plan[provider_updated_at]=2030-06-01'
expect 422 "wahoo invalid plan file"
req GET /v1/plans
expect 401 "wahoo without token"
req GET "/v1/plans?external_id=smoke-1" -H "$AUTH"
expect 200 "wahoo plan list"
has "\"id\":$PLAN_ID" "wahoo plan list"
req GET "/v1/plans/$PLAN_ID" -H "$AUTH"
expect 200 "wahoo plan get"

req POST /v1/workouts -H "$AUTH" -d "workout[name]=Smoke&workout[workout_token]=tok-1&workout[workout_type_id]=12&workout[starts]=2030-06-02T06:00:00Z&workout[minutes]=25&workout[plan_id]=$PLAN_ID"
expect 201 "wahoo workout create"
has "\"plan_id\":$PLAN_ID" "wahoo workout create"
WID=$(printf '%s' "$BODY" | sed -n 's/^{"id":\([0-9]*\),.*/\1/p')
req POST /v1/workouts -H "$AUTH" -H "$JSON" -d '{"workout":{"name":"J","workout_token":"t2","workout_type_id":1,"starts":"2030-06-02T06:00:00Z","minutes":30,"plan_id":999}}'
expect 422 "wahoo workout with unknown plan_id"
req GET /_sandbox/store
has '"file_json":{"header":{"name":"Smoke plan"' "store shows the decoded plan file"
req DELETE "/v1/workouts/$WID" -H "$AUTH"
expect 200 "wahoo workout delete"
req DELETE "/v1/plans/$PLAN_ID" -H "$AUTH"
expect 200 "wahoo plan delete"
req GET "/v1/plans/$PLAN_ID" -H "$AUTH"
expect 404 "wahoo plan gone"

# ----------------------------------------------------------------- Garmin
GW='{"workoutName":"Smoke","sport":"CYCLING","workoutProvider":"wsync","workoutSourceId":"wsync","segments":[{"segmentOrder":1,"sport":"CYCLING","steps":[{"type":"WorkoutStep","stepOrder":1,"intensity":"ACTIVE","durationType":"TIME","durationValue":600,"targetType":"POWER","targetValueLow":200,"targetValueHigh":220}]}]}'
req POST /workoutportal/workout/v2 -H "$AUTH" -H "$JSON" -d "$GW"
expect 200 "garmin workout create"
GID=$(printf '%s' "$BODY" | sed -n 's/.*"workoutId":\([0-9]*\).*/\1/p')
[ -n "$GID" ] || fail "garmin workoutId missing"
has '"ownerId":' "garmin workout create"
req POST /workoutportal/workout/v2 -H "$AUTH" -H "$JSON" -d '{"workoutName":"x","sport":"CYCLING","steps":[]}'
expect 500 "garmin steps at top level"
req POST /training-api/workout/v2 -H "$AUTH" -H "$JSON" -d "$GW"
expect 500 "garmin wrong create path"
has RouteFailed "garmin wrong create path"
req POST /training-api/schedule/ -H "$AUTH" -H "$JSON" -d "{\"workoutId\":$GID,\"date\":\"2030-06-02\"}"
expect 200 "garmin schedule create"
SID=$BODY
case "$SID" in '' | *[!0-9]*) fail "garmin schedule id should be a bare number" ;; esac
req POST /_sandbox/settings -d '{"garmin_schedule_shape":"object_scheduleId"}'
req POST /training-api/schedule/ -H "$AUTH" -H "$JSON" -d "{\"workoutId\":$GID,\"date\":\"2030-06-03\"}"
has '{"scheduleId":' "garmin schedule shape setting"
req GET "/training-api/schedule/$SID" -H "$AUTH"
expect 200 "garmin schedule get"
has '"date":"2030-06-02"' "garmin schedule get"
req DELETE "/training-api/schedule/$SID" -H "$AUTH"
expect 204 "garmin schedule delete"
req DELETE "/training-api/workout/v2/$GID" -H "$AUTH"
expect 204 "garmin workout delete"
req GET "/training-api/workout/v2/$GID" -H "$AUTH"
expect 404 "garmin workout gone"

# ---------------------------------------------------------- TrainingPeaks
req GET /v1/athlete/profile -H "$AUTH" -H "$UA"
expect 200 "tp profile"
has '"Id":' "tp profile"
req GET /v1/athlete/profile -H "$AUTH" -A ''
expect 400 "tp without User-Agent"
STRUCT='[{\"Type\":\"Step\",\"IntensityClass\":\"Active\",\"Length\":{\"Unit\":\"Second\",\"Value\":1800},\"IntensityTarget\":{\"Unit\":\"PercentOfFtp\",\"Value\":75}}]'
req POST /v2/workouts/plan -H "$AUTH" -H "$UA" -H "$JSON" \
    -d "{\"AthleteId\":4242,\"WorkoutDay\":\"2030-06-03\",\"WorkoutType\":\"bike\",\"Title\":\"Smoke\",\"Structure\":\"$STRUCT\"}"
expect 200 "tp create"
TID=$(printf '%s' "$BODY" | sed -n 's/^{"Id":\([0-9]*\),.*/\1/p')
[ -n "$TID" ] || fail "tp Id missing"
req POST /v2/workouts/plan -H "$AUTH" -H "$UA" -H "$JSON" -d '{"AthleteId":4242,"WorkoutDay":"2030-05-20","WorkoutType":"bike"}'
expect 400 "tp date more than 7 days ago"
req PUT "/v2/workouts/plan/$TID" -H "$AUTH" -H "$UA" -H "$JSON" \
    -d "{\"Id\":$TID,\"AthleteId\":4242,\"WorkoutDay\":\"2030-06-04\",\"WorkoutType\":\"bike\"}"
expect 200 "tp update"
has '"Title":null' "tp update nulls missing fields"
req GET "/v2/workouts/id/$TID" -H "$AUTH" -H "$UA"
expect 200 "tp get"
has '"WorkoutDay":"2030-06-04T00:00:00"' "tp get"
req DELETE "/v2/workouts/id/$TID" -H "$AUTH" -H "$UA"
expect 204 "tp delete"
req GET "/v2/workouts/id/$TID" -H "$AUTH" -H "$UA"
expect 404 "tp gone"

# ------------------------------------------------------------------ OAuth
req POST /_sandbox/settings -d '{"accept_any_token":false}'
req POST /_sandbox/tokens -d '{"access_token":"a1","refresh_token":"r1","expires_in":3600}'
expect 200 "register token"
req GET /v1/plans -H 'Authorization: Bearer a1'
expect 200 "registered token accepted"
req GET /v1/plans -H 'Authorization: Bearer nope'
expect 401 "unknown token refused"
req POST /oauth/token -H "$JSON" -d '{"grant_type":"refresh_token","refresh_token":"r1"}'
expect 400 "token endpoint refuses JSON"
req POST /oauth/token -d 'grant_type=refresh_token&client_id=c&client_secret=s&refresh_token=r1'
expect 200 "refresh"
has '"token_type":"Bearer"' "refresh"
NEW_AT=$(printf '%s' "$BODY" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
req POST /oauth/token -d 'grant_type=refresh_token&client_id=c&client_secret=s&refresh_token=r1'
expect 400 "refresh token reuse"
has invalid_grant "refresh token reuse"
req GET /v1/plans -H "Authorization: Bearer $NEW_AT"
expect 200 "rotated token accepted"
req GET /_sandbox/stats
has '"refreshes":2' "refresh counter"
req POST /_sandbox/settings -d '{"accept_any_token":true}'

# ----------------------------------------------------------------- faults
req POST /_sandbox/faults -d '{"method":"GET","path_prefix":"/v1/plans","status":429,"headers":{"Retry-After":"120"},"count":1}'
expect 200 "queue fault"
req GET /v1/plans -H "$AUTH"
expect 429 "fault 429"
hdr '^Retry-After: 120' "fault 429 Retry-After"
req GET /v1/plans -H "$AUTH"
expect 200 "fault consumed after count"
req POST /_sandbox/faults -d '{"path_prefix":"/v1/plans","action":"reset"}'
req GET /v1/plans -H "$AUTH"
[ "$RC" != 0 ] || fail "reset fault: curl should fail (rc=$RC)"
req POST /_sandbox/faults -d '{"path_prefix":"/v1/plans","action":"malformed"}'
req GET /v1/plans -H "$AUTH"
expect 200 "malformed fault"
case "$BODY" in *'}') fail "malformed fault: body looks complete" ;; esac
req POST /_sandbox/faults -d '{"path_prefix":"/v1/plans","action":"truncate"}'
req GET /v1/plans -H "$AUTH"
[ "$RC" = 18 ] || fail "truncate fault: expected curl rc 18 (partial file), got $RC"
req POST /_sandbox/faults -d '{"path_prefix":"/v1/plans","action":"slow","delay_ms":2000}'
CODE=$(curl -s -m 0.5 -o /dev/null -w '%{http_code}' -H "$AUTH" "$B/v1/plans")
RC=$?
[ "$RC" = 28 ] || fail "slow fault: expected a client timeout (curl rc 28), got $RC"
req GET /_sandbox/requests
has '"fault":"truncate"' "request log records faults"

# ---------------------------------------------------------------- latency
req POST /_sandbox/settings -d '{"latency_ms":[300,400]}'
has '"latency_ms":[300,400]' "latency setting"
CODE=$(curl -s -m 0.2 -o /dev/null -w '%{http_code}' -H "$AUTH" "$B/v1/plans")
RC=$?
[ "$RC" = 28 ] || fail "latency: an answer within 200 ms (curl rc $RC), expected >= 300 ms"
req GET /v1/plans -H "$AUTH"
expect 200 "latency: the answer still arrives"
req POST /_sandbox/settings -d '{"latency_ms":[50,20]}'
expect 400 "latency min above max"
req POST /_sandbox/settings -d '{"latency_ms":0}'
has '"latency_ms":[0,0]' "latency off"

# ------------------------------------------------------------------ reset
req POST /_sandbox/reset
expect 200 reset
req GET /_sandbox/store
has '"plans":[]' "reset clears the store"

# ---------------------------------------------------------- clean shutdown
kill -TERM "$PID"
for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.05; done
if kill -0 "$PID" 2>/dev/null; then
    fail "sandbox did not exit on SIGTERM"
else
    wait "$PID"
    rc=$?
    [ "$rc" = 0 ] || fail "sandbox exit status $rc after SIGTERM"
fi
PID=

exit $FAILED
