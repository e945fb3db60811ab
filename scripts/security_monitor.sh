#!/bin/sh
# Continuous security monitoring: the guide's ./scripts/security_monitor.sh.
#
#   ./scripts/security_monitor.sh                    # polls $ENGINE_BASE_URL/health every 5 min
#   ALERT_THRESHOLD_BLOCKED=25 ALERT_THRESHOLD_SUSPICIOUS=10 ./scripts/security_monitor.sh
#   ./scripts/security_monitor.sh --once             # one poll, for cron: exit 1 on an alert
#
# A thin wrapper over `asgisec monitor` (docs/tools.md). The thresholds are read from the
# environment by the command itself: ALERT_THRESHOLD_BLOCKED (50/h),
# ALERT_THRESHOLD_SUSPICIOUS (25/h), ALERT_THRESHOLD_RATE_LIMITED (100/h). Every other
# option (--interval, --webhook, --format json, --state) is passed through.
set -eu
: "${ENGINE_BASE_URL:=http://localhost:8000}"
if [ -n "${PYTHON:-}" ]; then
    exec "$PYTHON" -m asgisec monitor "$ENGINE_BASE_URL" "$@"
elif command -v asgisec >/dev/null 2>&1; then
    exec asgisec monitor "$ENGINE_BASE_URL" "$@"
else
    exec python3 -m asgisec monitor "$ENGINE_BASE_URL" "$@"
fi
