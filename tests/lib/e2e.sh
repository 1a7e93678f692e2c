# Helpers for the end-to-end shell tests; source it after setting RUN (the run directory whose
# *.log files `fail` prints).

# fail MESSAGE: prints it and the tail of every log, exits 1.
fail() {
  echo "FAIL: $*"
  for f in "$RUN"/*.log; do echo "--- $f"; tail -30 "$f"; done
  exit 1
}

# until_ok SECONDS CMD...: retries CMD every 0.1 s; 1 if it never succeeded.
until_ok() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -ge $deadline ] && return 1
    sleep 0.1
  done
}
