#!/usr/bin/env bash
# One image, every role: `web`, `worker`, `beat`, `migrate`, or `manage <args>`.
# Anything else runs as given (e.g. `bash` for a shell in the container).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

manage() {
	exec python manage.py "$@"
}

web() {
	if [[ "${MIGRATE_ON_START:-false}" == "true" ]]; then
		# Fine for one web container; with several, run the `migrate` role once instead,
		# so two containers never race to apply the same migration.
		python manage.py migrate --noinput
	fi
	# Scale by adding containers rather than gunicornc, so no control socket.
	exec gunicorn config.wsgi \
		--bind "0.0.0.0:${PORT:-8000}" \
		--workers "${WEB_CONCURRENCY:-2}" \
		--access-logfile - \
		--error-logfile - \
		--logger-class subscriptions.log_redaction.RedactingGunicornLogger \
		--no-control-socket
}

worker() {
	local queues="${CELERY_QUEUES:-transactional,bulk}"
	exec celery -A config worker \
		-Q "$queues" \
		--concurrency "${CELERY_CONCURRENCY:-2}" \
		--hostname "${queues//,/+}@%h" \
		--loglevel "${LOG_LEVEL:-info}"
}

beat() {
	local var_dir="${VAR_DIR:-var}"
	mkdir -p "$var_dir"
	exec celery -A config beat \
		--schedule "$var_dir/celerybeat-schedule" \
		--loglevel "${LOG_LEVEL:-info}"
}

migrate() {
	python manage.py migrate --noinput
	python manage.py load_presets
}

role="${1:-web}"
if [[ $# -gt 0 ]]; then shift; fi

case "$role" in
	web) web ;;
	worker) worker ;;
	beat) beat ;;
	migrate) migrate ;;
	manage) manage "$@" ;;
	*) exec "$role" "$@" ;;
esac
