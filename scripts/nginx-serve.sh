#!/usr/bin/env bash
# Serves a folder with nginx on a free 127.0.0.1 port, as any user, with
# every path (config, pid, logs, temp) inside a state folder of ours.
#   nginx-serve.sh start ROOT STATE   prints the port once nginx listens
#   nginx-serve.sh stop STATE         stops it and waits for it to exit
# Exits 77 when nginx is not installed (tests skip).
set -euo pipefail
nginx=$(command -v nginx || true)
[ -n "$nginx" ] || { [ -x /usr/sbin/nginx ] && nginx=/usr/sbin/nginx; } || true
cmd=${1:-}
case "$cmd" in
start)
    root=$(cd "$2" && pwd) state=$3
    [ -n "$nginx" ] || { echo "nginx-serve: no nginx (apt-get install nginx)" >&2; exit 77; }
    mkdir -p "$state"
    state=$(cd "$state" && pwd)
    # As root, nginx's workers run as this user; they must read ROOT.
    user=
    [ "$(id -u)" -ne 0 ] || user="user root;"
    for try in $(seq 1 30); do
        port=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
        cat > "$state/nginx.conf" <<CONF
$user
daemon on;
worker_processes 1;
pid $state/nginx.pid;
error_log $state/error.log;
events { worker_connections 512; }
http {
    access_log off;
    client_body_temp_path $state/client_body;
    proxy_temp_path $state/proxy;
    fastcgi_temp_path $state/fastcgi;
    uwsgi_temp_path $state/uwsgi;
    scgi_temp_path $state/scgi;
    types { application/pdf pdf; text/html html; }
    default_type application/octet-stream;
    sendfile on;
    keepalive_requests 100000;
    server {
        listen 127.0.0.1:$port;
        root $root;
    }
}
CONF
        if "$nginx" -p "$state" -e "$state/error.log" -c "$state/nginx.conf" 2>"$state/start.err"; then
            for _ in $(seq 1 100); do
                [ -s "$state/nginx.pid" ] && { echo "$port"; exit 0; }
                sleep 0.05
            done
        fi
        grep -q "Address already in use" "$state/start.err" "$state/error.log" 2>/dev/null || break
    done
    echo "nginx-serve: nginx did not start:" >&2
    cat "$state/start.err" >&2 || true
    exit 1
    ;;
stop)
    state=$2
    pid=$(cat "$state/nginx.pid" 2>/dev/null || true)
    [ -n "$pid" ] || exit 0
    kill -TERM "$pid" 2>/dev/null || exit 0
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || exit 0
        sleep 0.05
    done
    echo "nginx-serve: nginx $pid still running" >&2
    exit 1
    ;;
*)
    echo "usage: nginx-serve.sh start ROOT STATE | stop STATE" >&2
    exit 2
    ;;
esac
