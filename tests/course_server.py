#!/usr/bin/env python3
"""A loopback HTTP server for the course samples' tests (never the internet).

Usage: course_server.py [--delay S] [--users N] [--missing ID] [--root DIR]
Binds 127.0.0.1 port 0, prints the port on one line, serves until killed.
Every answer waits --delay seconds first (a slow service shows what
fetching at once saves). Requests are served in threads.

Routes:
  /data/2.5/weather?q=CITY,CA&units=metric  {"name": CITY, "main": {"temp": T}}
                      with T from fixtures/weather.json; 404 for other cities
  /users/ID           {"id": ID, "name": "User ID", "email": "userID@example.com"}
                      for 1 <= ID <= --users, except --missing; else 404
  /pages/N            N kB of text (fetch_urls)
  /files/PATH         the file PATH under --root (thumbnail_maker)
"""
import argparse
import http.server
import json
import os
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "fixtures", "weather.json"), encoding="utf-8") as f:
    WEATHER = json.load(f)

ap = argparse.ArgumentParser()
ap.add_argument("--delay", type=float, default=0.0)
ap.add_argument("--users", type=int, default=50)
ap.add_argument("--missing", type=int, default=0)
ap.add_argument("--root", default=".")
ARGS = ap.parse_args()
ROOT = os.path.abspath(ARGS.root)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def send(self, code, body, ctype="application/json"):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        time.sleep(ARGS.delay)
        url = urllib.parse.urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        if url.path == "/data/2.5/weather":
            q = urllib.parse.parse_qs(url.query).get("q", [""])[0]
            city, _, country = q.rpartition(",")
            if country == "CA" and city in WEATHER:
                return self.send(200, json.dumps({"name": city, "main": {"temp": WEATHER[city]}}))
            return self.send(404, json.dumps({"cod": "404", "message": "city not found"}))
        if len(parts) == 2 and parts[0] == "users" and parts[1].isdigit():
            uid = int(parts[1])
            if 1 <= uid <= ARGS.users and uid != ARGS.missing:
                return self.send(200, json.dumps(
                    {"id": uid, "name": "User %d" % uid, "email": "user%d@example.com" % uid}))
            return self.send(404, json.dumps({"error": "no user %d" % uid}))
        if len(parts) == 2 and parts[0] == "pages" and parts[1].isdigit():
            line = "page %s: the quick brown fox jumps over the lazy dog\n" % parts[1]
            body = (line * (1024 * int(parts[1]) // len(line) + 1))[: 1024 * int(parts[1])]
            return self.send(200, body, "text/plain")
        if parts[0] == "files":
            path = os.path.normpath(os.path.join(ROOT, *parts[1:]))
            if path.startswith(ROOT + os.sep) and os.path.isfile(path):
                with open(path, "rb") as f:
                    return self.send(200, f.read(), "application/octet-stream")
        return self.send(404, "not found\n", "text/plain")


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 drops connections made at once


server = Server(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
try:
    server.serve_forever()
except KeyboardInterrupt:
    pass
