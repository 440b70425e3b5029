#!/usr/bin/env python3
"""A fault-injecting HTTP server for the pdf_downloader tests (loopback only).

Usage: pdfdl_server.py DOCROOT
Binds 127.0.0.1 port 0 and prints "PORT REFUSED_PORT" on one line:
REFUSED_PORT is a bound socket that never listens, so connecting to it is
refused for as long as the server lives (no other program can take it).

Routes (NAME is a path under DOCROOT; queries are ignored):
  /files/NAME            the file, 200 (404 if missing)
  /any/ANYTHING          DOCROOT/f1040.pdf, whatever the name asked for
  /noext/STEM            DOCROOT/STEM.pdf (a URL without an extension)
  /dir/                  DOCROOT/f1040.pdf at a URL ending in /
  /status/CODE/NAME      status CODE with an HTML body (429, 503: Retry-After: 0)
  /flaky/KEY/NAME        503 the first two times for KEY, then the file
  /redirect/302/NAME     302 to /files/NAME
  /redirect/301-404/NAME 301 to /status/404/NAME
  /go?f=NAME             302 to /files/NAME (the first URL has no extension)
  /cut/NAME              Content-Length of the whole file, half the body, close
  /hang/NAME             reads the request and never answers
  /stall/NAME            Content-Length of the whole file, half the body, silence
  /html/NAME             200 text/html error page
  /hits/PATH             how many requests PATH got, as text
  /slow/NAME             the file, after waiting 50 ms (bench/: a slow server)
"""
import http.server
import os
import socket
import sys
import threading
import time
import urllib.parse

DOCROOT = os.path.abspath(sys.argv[1])
HITS = {}
LOCK = threading.Lock()
STOP = threading.Event()


def read_doc(name):
    path = os.path.normpath(os.path.join(DOCROOT, name))
    if not path.startswith(DOCROOT + os.sep) or not os.path.isfile(path):
        return None
    with open(path, "rb") as f:
        return f.read()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def send(self, code, body, ctype="application/pdf", headers=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def error_page(self, code, headers=()):
        body = ("<!DOCTYPE html><html><body><h1>%d %s</h1></body></html>\n" % (
            code, self.responses.get(code, ("?",))[0])).encode()
        self.send(code, body, "text/html", headers)

    def file(self, name):
        body = read_doc(name)
        if body is None:
            self.error_page(404)
        else:
            self.send(200, body)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        with LOCK:
            HITS[path] = HITS.get(path, 0) + 1
            hits = HITS[path]
        parts = path.split("/", 3)
        route = parts[1] if len(parts) > 1 else ""
        rest = urllib.parse.unquote(path.split("/", 2)[2]) if path.count("/") >= 2 else ""
        if route == "files":
            self.file(rest)
        elif route == "slow":
            time.sleep(0.05)
            self.file(rest)
        elif route == "any":
            self.file("f1040.pdf")
        elif route == "noext":
            self.file(rest + ".pdf")
        elif route == "dir":
            self.file("f1040.pdf")
        elif route == "status":
            code = int(parts[2])
            retry = [("Retry-After", "0")] if code in (429, 503) else []
            self.error_page(code, retry)
        elif route == "flaky":
            name = parts[3] if len(parts) > 3 else ""
            if hits <= 2:
                self.error_page(503, [("Retry-After", "0")])
            else:
                self.file(name)
        elif route == "redirect":
            kind, name = parts[2], parts[3]
            where = "/files/" + name if kind == "302" else "/status/404/" + name
            self.send(302 if kind == "302" else 301, b"moved\n", "text/plain",
                      [("Location", where)])
        elif route == "go":
            name = urllib.parse.parse_qs(url.query).get("f", [""])[0]
            self.send(302, b"moved\n", "text/plain", [("Location", "/files/" + name)])
        elif route == "cut":
            body = read_doc(rest) or b""
            self.send_response(200)
            self.send_header("Content-Type", "application/pdf")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
        elif route == "stall":
            body = read_doc(rest) or b""
            self.send_response(200)
            self.send_header("Content-Type", "application/pdf")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            STOP.wait(60)
            self.close_connection = True
        elif route == "hang":
            STOP.wait(60)
            self.close_connection = True
        elif route == "html":
            self.send(200, b"<!DOCTYPE html><html><body>Sign in first</body></html>\n",
                      "text/html")
        elif route == "hits":
            with LOCK:
                n = HITS.get("/" + rest, 0)
            self.send(200, b"%d\n" % n, "text/plain")
        else:
            self.error_page(404)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = False


def main():
    srv = Server(("127.0.0.1", 0), Handler)
    refused = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    refused.bind(("127.0.0.1", 0))  # bound, never listening: connections refused
    print(srv.server_address[1], refused.getsockname()[1], flush=True)
    try:
        srv.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        STOP.set()
        refused.close()


if __name__ == "__main__":
    main()
