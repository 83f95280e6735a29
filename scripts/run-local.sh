#!/usr/bin/env bash
# `make run`'s last step: start the local stream service and the app under gunicorn on the
# embedded default (SQLite under instance/), register with the stream, print where to look.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
PORT="${PORT:-8000}"
STREAM_PORT="${STREAM_PORT:-5001}"
STREAM_INTERVAL="${STREAM_INTERVAL:-5}"
export FLASK_APP=app

# A first analyst account, so the dashboard can be signed in to on a fresh machine.
if [ ! -f instance/demo-analyst.txt ]; then
  mkdir -p instance
  password="${ANALYST_PASSWORD:-$("$BIN/python" -c 'import secrets; print(secrets.token_urlsafe(12))')}"
  ANALYST_PASSWORD="$password" "$BIN/flask" create-analyst analyst
  umask 077
  printf 'name: analyst\npassword: %s\n' "$password" > instance/demo-analyst.txt
fi

"$BIN/python" stream.py --data data/stream_events.json --port "$STREAM_PORT" \
  --interval "$STREAM_INTERVAL" > instance/stream.log 2>&1 &
stream_pid=$!
trap 'kill "$stream_pid" 2>/dev/null || true' EXIT

# One event to try the API with (the first of test_script_examples.json).
"$BIN/python" -c "import json; print(json.dumps(json.load(open('test_script_examples.json'))[0]))" \
  > instance/one_event.json

cat <<MSG

  Dashboard:  http://127.0.0.1:${PORT}/        (sign-in details in instance/demo-analyst.txt)
  Scoring:    curl -X POST -H 'Content-Type: application/json' -d @instance/one_event.json http://127.0.0.1:${PORT}/score
  API docs:   http://127.0.0.1:${PORT}/openapi.json  and README.md
  Stream:     http://127.0.0.1:${STREAM_PORT}/status  pushes one event every ${STREAM_INTERVAL}s (log: instance/stream.log)
  Stop:       Ctrl-C

MSG
STREAM_REGISTER_URL="http://127.0.0.1:${STREAM_PORT}/register" PUBLIC_IP=127.0.0.1 PUBLIC_PORT="$PORT" \
  BIND="127.0.0.1:${PORT}" "$BIN/gunicorn" -c deploy/gunicorn.conf.py 'app:create_app()' &
app_pid=$!
# The app runs in the background so that this script hears Ctrl-C and SIGTERM at once (bash
# runs no trap while a foreground child runs) and hands them on: gunicorn stops gracefully and
# the stream with it. A non-interactive shell starts background jobs deaf to Ctrl-C, hence the
# explicit SIGTERM to both.
trap 'kill -TERM "$app_pid" "$stream_pid" 2>/dev/null || true' INT TERM
status=0
wait "$app_pid" || status=$?
if kill -0 "$app_pid" 2>/dev/null; then  # a signal cut the first wait short: let gunicorn finish
  status=0
  wait "$app_pid" || status=$?
fi
exit "$status"
