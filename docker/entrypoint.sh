#!/bin/sh
# Entry point of the image, shared by docker/Dockerfile and compose.yaml:
#   migrate [...]      bring DATABASE_URL to the latest migration (the one-shot service)
#   serve [...]        run the API on 0.0.0.0:8000; extra options go to `seizure-stats serve`
#   healthcheck [URL]  exit 0 when /readyz answers 200 (default http://127.0.0.1:8000/readyz)
#   anything else runs as given, e.g. `seizure-stats token create --name jobs --scope write`
set -eu

command="${1:-serve}"
[ "$#" -gt 0 ] && shift

case "$command" in
    migrate)
        exec seizure-stats db upgrade "$@"
        ;;
    serve)
        # exec: the server is PID 1 and gets SIGTERM itself, then drains requests and exits.
        exec seizure-stats serve --host 0.0.0.0 --port 8000 "$@"
        ;;
    healthcheck)
        exec python - "${1:-http://127.0.0.1:8000/readyz}" <<'PYTHON'
import sys
import urllib.request

opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    with opener.open(sys.argv[1], timeout=4) as response:
        sys.exit(0 if response.status == 200 else 1)
except Exception as exc:
    print(f"not ready: {exc}", file=sys.stderr)
    sys.exit(1)
PYTHON
        ;;
    *)
        exec "$command" "$@"
        ;;
esac
