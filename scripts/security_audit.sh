#!/bin/sh
# Security audit of a running service: the guide's ./scripts/security_audit.sh.
#
#   ./scripts/security_audit.sh                              # audits $ENGINE_BASE_URL
#   ENGINE_BASE_URL=https://your-api.com ./scripts/security_audit.sh
#   ./scripts/security_audit.sh --format json --probe-rate-limit
#
# A thin wrapper over `asgisec audit` (docs/tools.md): every option is passed through, and
# the exit status is the command's (0 pass, 1 findings, 2 usage, 3 target unreachable).
set -eu
: "${ENGINE_BASE_URL:=http://localhost:8000}"
export ENGINE_BASE_URL
if [ -n "${PYTHON:-}" ]; then
    exec "$PYTHON" -m asgisec audit "$@"
elif command -v asgisec >/dev/null 2>&1; then
    exec asgisec audit "$@"
else
    exec python3 -m asgisec audit "$@"
fi
