#!/bin/bash
# Installs fraud-triage on a Debian 12 / Ubuntu 24.04 VM: Postgres, app, model, env file,
# systemd units (gunicorn on loopback; a daily backup) behind nginx; then smoke-tests it.
# User-data (edit the defaults) or run as root with parameters in the environment. Re-runs
# upgrade and keep secrets. Test mode: deploy/README.md.
set -Eeuo pipefail

# ---- Parameters (the environment wins)
: "${PREFIX:=}"  # root of every installed path ("" on a real VM)
: "${REPO_URL:=}"  # git URL to clone; empty: the tree is already in APP_DIR
: "${REPO_REF:=main}"  # branch or tag to deploy
: "${APP_DIR:=$PREFIX/opt/fraud-triage}"
: "${VENV_DIR:=$APP_DIR/.venv}"  # reused when it exists
: "${PYTHON:=python3}"  # interpreter that creates the venv (>= 3.11)
: "${APP_USER:=fraud}"
: "${ANALYST_NAME:=analyst}"
: "${ANALYST_PASSWORD:=}"  # required: the first analyst's password
: "${STREAM_REGISTER_URL:=}"  # http://host:port/register; empty: no registration
: "${PUBLIC_IP:=}"  # empty: asked from EC2's metadata service
: "${HTTP_PORT:=80}"  # nginx: dashboard
: "${SCORE_PORT:=5000}"  # nginx: /score for the stream service
: "${PUBLIC_PORT:=$SCORE_PORT}"  # the port registered with the stream service
: "${APP_PORT:=8000}"  # gunicorn on 127.0.0.1
: "${REGISTER_INTERVAL:=}"  # these four go to the app when set
: "${SCORE_API_KEY:=}"
: "${SCORE_ALLOWLIST:=}"  # e.g. the stream service's CIDR
: "${DEMO_MODE:=}"  # 1: show the test set; /score stores nothing
: "${LOAD_TEST_SET:=$DEMO_MODE}"  # 1: flask load-test-set (once)
: "${MODEL_SRC:=}"  # a local model.pkl to install instead of training
: "${MODEL_URL:=}"  # or a URL to fetch model.pkl from
: "${RETRAIN:=0}"  # 1: train again although models/model.pkl exists
: "${DATABASE_URL:=}"  # set: use this database, install no local Postgres
: "${DB_NAME:=fraud_triage}"
: "${DB_USER:=fraud}"
: "${DB_PORT:=5432}"  # the local Postgres's port
: "${SECRET_KEY:=}"  # empty: generated once, then kept
: "${SKIP_APT:=0}"  # 1: install no packages
: "${SKIP_POSTGRES:=0}"  # 1: no local Postgres (SQLite unless DATABASE_URL is set)
: "${SKIP_SYSTEMD:=0}"  # 1: only write unit and nginx files; run gunicorn to test
: "${SKIP_USER:=0}"  # 1: no system user; run all as the caller
: "${SMOKE_TEST:=1}"  # 0: skip the final curl checks
: "${SMOKE_TIMEOUT:=90}"  # seconds to wait for the app

ENV_FILE="$PREFIX/etc/fraud-triage.env"
UNIT_FILE="$PREFIX/etc/systemd/system/fraud-triage.service"
NGINX_SITE="$PREFIX/etc/nginx/conf.d/fraud-triage.conf"
RUN_DIR="$PREFIX/run/fraud-triage"
MODEL_FILE="$APP_DIR/models/model.pkl"
WRITABLE_DIRS=(instance spool models reports)
# shellcheck disable=SC2034  # in ENV_KEYS; TRUST_PROXY: nginx sets X-Forwarded-For
MODEL_PATH=$MODEL_FILE SPOOL_DIR=$APP_DIR/spool TRUST_PROXY=1
ENV_KEYS=(DATABASE_URL SECRET_KEY MODEL_PATH SPOOL_DIR TRUST_PROXY STREAM_REGISTER_URL
  PUBLIC_IP PUBLIC_PORT REGISTER_INTERVAL SCORE_API_KEY SCORE_ALLOWLIST DEMO_MODE)
SMOKE_PID=""

log() { printf '[fraud-triage] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
is_on() { [ "$1" = 1 ] || [ "$1" = true ] || [ "$1" = yes ]; }

# ---- Checks

check_parameters() {
  # Fail early, with the parameter's name, before anything is installed.
  [ "${#ANALYST_PASSWORD}" -ge 12 ] || die "ANALYST_PASSWORD (12+ characters) is required"
  [[ $ANALYST_NAME =~ ^[A-Za-z0-9_.@-]{1,64}$ ]] || die "bad ANALYST_NAME"
  [[ "$PREFIX:$APP_DIR:$VENV_DIR" =~ ^(/[A-Za-z0-9._/-]+)?(:/[A-Za-z0-9._/-]+){2}$ ]] \
    || die "PREFIX, APP_DIR, VENV_DIR: absolute plain paths"
  [[ "$APP_USER $DB_NAME $DB_USER" =~ ^([a-z_][a-z0-9_]*( |$)){3}$ ]] \
    || die "APP_USER, DB_NAME, DB_USER: lower-case letters, digits and _"
  local port
  for port in "$HTTP_PORT" "$SCORE_PORT" "$PUBLIC_PORT" "$APP_PORT" "$DB_PORT"; do
    [[ $port =~ ^[1-9][0-9]{0,4}$ && $port -le 65535 ]] || die "not a port: $port"
  done
  local key
  for key in "${ENV_KEYS[@]}"; do
    # Values become single-quoted lines of the env file.
    case ${!key} in *"'"* | *$'\n'* | *\\*) die "$key: no quotes, backslashes, newlines" ;; esac
  done
  if [ "$(id -u)" -ne 0 ] && ! is_test_mode; then
    die "run as root, or with SKIP_APT=1 SKIP_POSTGRES=1 SKIP_SYSTEMD=1 SKIP_USER=1"
  fi
}

is_test_mode() {
  # True when nothing needs root.
  is_on "$SKIP_APT" && is_on "$SKIP_SYSTEMD" && is_on "$SKIP_USER" && use_sqlite_or_given_db
}

use_sqlite_or_given_db() {
  # True when no local Postgres is set up.
  [ -n "$DATABASE_URL" ] || is_on "$SKIP_POSTGRES"
}

check_python() {
  # The pinned numpy/pandas/scikit-learn need Python 3.11+.
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "$PYTHON: need Python 3.11+ (Debian 12, Ubuntu 24.04)"
}

# ---- Packages, user, code

install_packages() {
  local packages=(python3 python3-venv git curl ca-certificates nginx)
  use_sqlite_or_given_db || packages+=(postgresql)
  log "installing packages: ${packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -q
  apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${packages[@]}"
}

create_user() {
  # A shell-less system user owns the writable dirs and runs the app.
  id -u "$APP_USER" >/dev/null 2>&1 && return 0
  log "creating system user $APP_USER"
  useradd --system --user-group --home-dir /var/lib/fraud-triage --create-home \
    --shell /usr/sbin/nologin "$APP_USER"
}

fetch_app() {
  # Clone or update REPO_URL in APP_DIR (else the tree must be there).
  if [ -n "$REPO_URL" ]; then
    if [ -d "$APP_DIR/.git" ]; then
      log "updating $APP_DIR to $REPO_REF"
      git -C "$APP_DIR" fetch -q --depth 1 origin "$REPO_REF"
      # No local edits; generated dirs stay.
      git -C "$APP_DIR" reset -q --hard FETCH_HEAD
    else
      log "cloning $REPO_URL ($REPO_REF) into $APP_DIR"
      mkdir -p "$(dirname "$APP_DIR")"
      git clone -q --depth 1 --branch "$REPO_REF" "$REPO_URL" "$APP_DIR"
    fi
  fi
  if [ ! -f "$APP_DIR/requirements.txt" ] || [ ! -f "$APP_DIR/deploy/fraud-triage.service" ]; then
    die "no app tree in $APP_DIR: set REPO_URL or copy the repository there"
  fi
}

make_writable_dirs() {
  # The app's only writable dirs (ReadWritePaths).
  local dir
  # Test mode: systemd makes none.
  is_on "$SKIP_SYSTEMD" && mkdir -p "$RUN_DIR"
  for dir in "${WRITABLE_DIRS[@]}"; do
    if is_on "$SKIP_USER"; then
      install -d -m 0750 "$APP_DIR/$dir"
    else
      install -d -m 0750 -o "$APP_USER" -g "$APP_USER" "$APP_DIR/$dir"
      chown -R "$APP_USER:$APP_USER" "$APP_DIR/$dir"
    fi
  done
}

install_python_deps() {
  # A venv beside the code.
  [ -x "$VENV_DIR/bin/python" ] || "$PYTHON" -m venv "$VENV_DIR"
  log "pip install -r requirements.txt into $VENV_DIR"
  "$VENV_DIR/bin/python" -m pip install -q --disable-pip-version-check -r "$APP_DIR/requirements.txt"
}

# ---- Secrets, database, env file

env_file_value() {
  # KEY's value in the existing env file, if any: secrets survive re-runs.
  [ -f "$ENV_FILE" ] || return 0
  sed -n "s/^$1='\(.*\)'\$/\1/p" "$ENV_FILE" | tail -n 1
}

new_secret() {
  # 64 hex characters from the OS's CSPRNG.
  "$PYTHON" -c 'import secrets; print(secrets.token_hex(32))'
}

local_db_password() {
  # The password of the existing DATABASE_URL for DB_USER, or a new one.
  local url password
  url=$(env_file_value DATABASE_URL)
  case $url in
    "postgresql://$DB_USER:"*@*) password=${url#*://*:}; printf '%s\n' "${password%%@*}" ;;
    *) new_secret ;;
  esac
}

psql_admin() {
  # psql as postgres; stops at the first error.
  runuser -u postgres -- psql -X -p "$DB_PORT" -v ON_ERROR_STOP=1 -qtA "$@"
}

setup_postgres() {
  # Role DB_USER with password $1 and its database DB_NAME; kept on re-runs.
  local password=$1 tries=0
  is_on "$SKIP_SYSTEMD" || systemctl enable --now postgresql
  until runuser -u postgres -- pg_isready -q -p "$DB_PORT"; do
    tries=$((tries + 1))
    [ "$tries" -le 30 ] || die "postgres did not start"
    sleep 1
  done
  if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$DB_USER'")" = 1 ]; then
    log "postgres role $DB_USER exists; (re)setting its password"
    psql_admin <<<"ALTER ROLE $DB_USER WITH LOGIN PASSWORD '$password';"
  else
    log "creating postgres role $DB_USER"
    psql_admin <<<"CREATE ROLE $DB_USER WITH LOGIN PASSWORD '$password';"
  fi
  if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" = 1 ]; then
    log "postgres database $DB_NAME exists"
  else
    log "creating postgres database $DB_NAME"
    runuser -u postgres -- createdb -p "$DB_PORT" -O "$DB_USER" "$DB_NAME"
  fi
}

resolve_public_ip() {
  # The address the stream service posts to; from EC2's IMDSv2 on a real VM.
  [ -n "$PUBLIC_IP" ] && return 0
  if is_on "$SKIP_SYSTEMD"; then
    PUBLIC_IP=127.0.0.1
    return 0
  fi
  local imds=http://169.254.169.254/latest token
  if token=$(curl -fsS -m 3 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' "$imds/api/token") \
    && PUBLIC_IP=$(curl -fsS -m 3 -H "X-aws-ec2-metadata-token: $token" "$imds/meta-data/public-ipv4"); then
    log "public IP from instance metadata: $PUBLIC_IP"
  elif [ -n "$STREAM_REGISTER_URL" ]; then
    die "set PUBLIC_IP: needed to register with the stream"
  fi
}

write_env_file() {
  # /etc/fraud-triage.env, mode 0600, replaced atomically.
  local tmp
  mkdir -p "$(dirname "$ENV_FILE")"
  tmp=$(mktemp "$ENV_FILE.XXXXXX")
  local key
  printf '# Written by deploy/cloud-init.sh; secrets are kept on re-runs.\n' >"$tmp"
  for key in "${ENV_KEYS[@]}"; do
    # Unset keys stay unset: the app's defaults apply.
    [ -z "${!key}" ] || printf "%s='%s'\n" "$key" "${!key}" >>"$tmp"
  done
  # Lines added by hand (USD_RATES, ...) survive a re-run.
  local l
  while IFS= read -r l || [ -n "$l" ]; do
    [[ $l =~ ^([A-Za-z_][A-Za-z0-9_]*)= && " ${ENV_KEYS[*]} " != *" ${BASH_REMATCH[1]} "* ]] || continue
    echo "$l" >>"$tmp"
  done < <(cat "$ENV_FILE" 2>/dev/null)
  chmod 0600 "$tmp"
  mv -f "$tmp" "$ENV_FILE"
  log "wrote $ENV_FILE (mode 0600)"
}

configure() {
  # Secrets, database (local Postgres unless told otherwise), env file.
  [ -n "$SECRET_KEY" ] || SECRET_KEY=$(env_file_value SECRET_KEY)
  [ -n "$SECRET_KEY" ] || SECRET_KEY=$(new_secret)
  # A re-run without DATABASE_URL keeps an external database given earlier.
  local old
  old=$(env_file_value DATABASE_URL)
  [ -n "$DATABASE_URL" ] || [[ $old == "" || $old == *@127.0.0.1:* ]] || DATABASE_URL=$old
  if use_sqlite_or_given_db; then
    [ -n "$DATABASE_URL" ] || log "no DATABASE_URL: SQLite in instance/"
  else
    local password
    password=$(local_db_password)
    setup_postgres "$password"
    DATABASE_URL="postgresql://$DB_USER:$password@127.0.0.1:$DB_PORT/$DB_NAME"
  fi
  resolve_public_ip
  write_env_file
}

# ---- App steps

app_exec() {
  # exec "$@" in APP_DIR as the app user with the env file; never registers.
  set -a
  # shellcheck source=/dev/null
  . "$ENV_FILE"
  set +a
  unset STREAM_REGISTER_URL
  export XDG_RUNTIME_DIR="$RUN_DIR"
  cd "$APP_DIR"
  is_on "$SKIP_USER" || exec runuser -u "$APP_USER" -- "$@"
  exec "$@"
}

as_app() { (app_exec "$@"); }

install_model() {
  # models/model.pkl: from MODEL_SRC or MODEL_URL, kept, or trained here.
  local json=${MODEL_SRC%.pkl}.json
  if [ -n "$MODEL_SRC" ]; then
    [ -f "$MODEL_SRC" ] || die "MODEL_SRC not found: $MODEL_SRC"
    log "installing model from $MODEL_SRC"
    cp -f "$MODEL_SRC" "$MODEL_FILE.tmp"
    mv -f "$MODEL_FILE.tmp" "$MODEL_FILE"
    [ ! -f "$json" ] || cp -f "$json" "${MODEL_FILE%.pkl}.json"
  elif [ -n "$MODEL_URL" ]; then
    log "fetching model from $MODEL_URL"
    curl -fsSL --retry 3 -o "$MODEL_FILE.tmp" "$MODEL_URL"
    mv -f "$MODEL_FILE.tmp" "$MODEL_FILE"
  elif [ -s "$MODEL_FILE" ] && ! is_on "$RETRAIN"; then
    log "keeping $MODEL_FILE (RETRAIN=1 trains again)"
    return 0
  else
    log "training the model (about a minute)"
    as_app "$VENV_DIR/bin/python" model.py --out "$MODEL_FILE"
  fi
  is_on "$SKIP_USER" || chown "$APP_USER:$APP_USER" "$APP_DIR"/models/*
}

app_flask() {
  # One of the app's CLI commands (flask --app app ...), as the app user.
  log "flask $*"
  as_app "$VENV_DIR/bin/python" -m flask --app app "$@"
}

init_app_data() {
  # Schema, the first analyst (kept if there), the test set (once).
  local out done=$APP_DIR/instance/.test-set-loaded
  app_flask init-db
  if out=$(export ANALYST_PASSWORD; app_flask create-analyst "$ANALYST_NAME" 2>&1); then
    printf '%s\n' "$out" >&2
  elif [[ $out == *"already exists"* ]]; then
    log "analyst $ANALYST_NAME exists; its password is unchanged"
  else
    die "create-analyst failed: $out"
  fi
  if is_on "$LOAD_TEST_SET" && [ ! -e "$done" ]; then
    app_flask load-test-set
    touch "$done"
  fi
}

# ---- Service, proxy

render_unit() {
  # The repository's unit with this install's paths, user and port.
  sed -e "s#/opt/fraud-triage/\.venv#$VENV_DIR#g" \
    -e "s#/opt/fraud-triage#$APP_DIR#g" \
    -e "s#/etc/fraud-triage\.env#$ENV_FILE#g" \
    -e "s#^User=fraud\$#User=$APP_USER#" \
    -e "s#^Group=fraud\$#Group=$APP_USER#" \
    -e "s#127\.0\.0\.1:8000#127.0.0.1:$APP_PORT#g" \
    "$APP_DIR/deploy/${1:-fraud-triage.service}"
}

render_nginx() {
  # The repository's nginx site with this install's ports.
  sed -e "s#127\.0\.0\.1:8000;\(.*@app_port\)#127.0.0.1:$APP_PORT;\1#" \
    -e "s#listen [0-9]*\( .*@http_port\)#listen $HTTP_PORT\1#" \
    -e "s#listen [0-9]*\(;.*@score_port\)#listen $SCORE_PORT\1#" \
    "$APP_DIR/deploy/nginx.conf"
}

install_service_files() {
  # Write the unit and nginx site; on a VM (re)start them.
  mkdir -p "$(dirname "$UNIT_FILE")" "$(dirname "$NGINX_SITE")"
  render_unit >"$UNIT_FILE"
  render_unit fraud-triage-backup.service >"${UNIT_FILE%.service}-backup.service"
  cp "$APP_DIR/deploy/fraud-triage-backup.timer" "${UNIT_FILE%.service}-backup.timer"
  render_nginx >"$NGINX_SITE"
  log "wrote $UNIT_FILE and $NGINX_SITE"
  is_on "$SKIP_SYSTEMD" && return 0
  # Debian's default site also claims port 80.
  rm -f /etc/nginx/sites-enabled/default
  nginx -t -q
  systemctl daemon-reload
  systemctl enable fraud-triage.service nginx.service fraud-triage-backup.timer
  # restart: a re-run must load new code, model and env file.
  systemctl restart fraud-triage.service fraud-triage-backup.timer
  systemctl reload-or-restart nginx.service
}

# ---- Smoke test

wait_for_url() {
  # Poll URL until 2xx (at most SMOKE_TIMEOUT s, or until PID dies).
  local url=$1 pid=${2:-} waited=0
  until curl -fs -m 5 -o /dev/null "$url"; do
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      die "gunicorn exited before answering $url"
    fi
    waited=$((waited + 1))
    [ "$waited" -le "$SMOKE_TIMEOUT" ] || die "no answer from $url after ${SMOKE_TIMEOUT}s"
    sleep 1
  done
  log "ok: $url"
}

stop_smoke_gunicorn() {
  # Stop the gunicorn this script started for the test-mode smoke test.
  [ -n "$SMOKE_PID" ] || return 0
  kill -TERM "$SMOKE_PID" 2>/dev/null || true
  wait "$SMOKE_PID" 2>/dev/null || true
  SMOKE_PID=""
}

smoke_test() {
  # /hello and /health: through nginx on a VM, from gunicorn in test mode.
  is_on "$SMOKE_TEST" || return 0
  if is_on "$SKIP_SYSTEMD"; then
    log "test mode: starting gunicorn on 127.0.0.1:$APP_PORT"
    # A background function execs gunicorn: $! is gunicorn.
    app_exec "$VENV_DIR/bin/gunicorn" -c deploy/gunicorn.conf.py --bind "127.0.0.1:$APP_PORT" \
      'app:create_app()' &
    SMOKE_PID=$!
    wait_for_url "http://127.0.0.1:$APP_PORT/hello" "$SMOKE_PID"
    wait_for_url "http://127.0.0.1:$APP_PORT/health" "$SMOKE_PID"
    stop_smoke_gunicorn
  else
    wait_for_url "http://127.0.0.1:$HTTP_PORT/hello"
    wait_for_url "http://127.0.0.1:$HTTP_PORT/health"
    wait_for_url "http://127.0.0.1:$SCORE_PORT/hello"
  fi
}

main() {
  umask 022
  trap 'log "FAILED at line $LINENO"' ERR
  trap stop_smoke_gunicorn EXIT
  check_parameters
  is_on "$SKIP_APT" || install_packages
  check_python
  is_on "$SKIP_USER" || create_user
  fetch_app
  make_writable_dirs
  install_python_deps
  configure
  install_model
  init_app_data
  install_service_files
  smoke_test
  log "done: dashboard http://${PUBLIC_IP:-<host>}:$HTTP_PORT/, scoring :$PUBLIC_PORT/score"
}

# Run unless sourced (tests source this file to call single functions).
[ "${BASH_SOURCE[0]:-$0}" != "$0" ] || main "$@"
