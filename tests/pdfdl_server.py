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
  /gate/KEY/NAME         the headers of /stall/NAME, then the body once
                         /open/KEY was asked for: half of it, silence
  /html/NAME             200 text/html error page
  /hits/PATH             how many requests PATH got, as text
  /slow/NAME             the file, after waiting 50 ms (bench/: a slow server)
  /r/OPTS/KEY/NAME       the file with Range support (bytes=N- and If-Range),
                         OPTS a comma list (KEY keeps the counts apart):
                           etag    send an ETag (and honour it in If-Range)
                           lm      send Last-Modified (and honour it)
                           cut1    the first request: half the body, close
                           stall1  the first request: half the body, silence
                           norange ignore Range: always 200 and the whole file
                           416     answer every Range request with 416
                           change  from the second request on, serve NAME.v2
                                   (a new ETag and Last-Modified)
  /reqs/PATH             the Range and If-Range headers PATH got, one
                         request a line ("-" for none), as text
"""
import hashlib
import http.server
import os
import re
import socket
import sys
import threading
import time
import urllib.parse

DOCROOT = os.path.abspath(sys.argv[1])
HITS = {}
REQS = {}  # path -> [(Range, If-Range)]
LOCK = threading.Lock()
STOP = threading.Event()
GATES = {}  # KEY -> threading.Event, for /gate and /open


def gate(key):
    with LOCK:
        return GATES.setdefault(key, threading.Event())


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
            REQS.setdefault(path, []).append(
                (self.headers.get("Range"), self.headers.get("If-Range")))
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
        elif route == "gate":
            body = read_doc(parts[3] if len(parts) > 3 else "") or b""
            self.send_response(200)
            self.send_header("Content-Type", "application/pdf")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.flush()
            if gate(parts[2]).wait(60):
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                STOP.wait(60)
            self.close_connection = True
        elif route == "open":
            gate(rest).set()
            self.send(200, b"open\n", "text/plain")
        elif route == "hang":
            STOP.wait(60)
            self.close_connection = True
        elif route == "html":
            self.send(200, b"<!DOCTYPE html><html><body>Sign in first</body></html>\n",
                      "text/html")
        elif route == "r":
            opts, name = parts[2], path.split("/", 4)[4]
            self.ranged(set(opts.split(",")), name, hits)
        elif route == "reqs":
            with LOCK:
                reqs = REQS.get("/" + rest, [])
            text = "".join("%s %s\n" % (r or "-", i or "-") for r, i in reqs)
            self.send(200, text.encode(), "text/plain")
        elif route == "hits":
            with LOCK:
                n = HITS.get("/" + rest, 0)
            self.send(200, b"%d\n" % n, "text/plain")
        else:
            self.error_page(404)


    def ranged(self, opts, name, hits):
        """/r/OPTS/KEY/NAME: a file with validators and Range (see above)."""
        version = 2 if "change" in opts and hits > 1 else 1
        body = read_doc(name + ".v2" if version == 2 else name)
        if body is None:
            self.error_page(404)
            return
        etag = '"%s-v%d"' % (hashlib.md5(body).hexdigest()[:16], version)
        lastmod = "%s, 0%d Jan 2024 00:00:00 GMT" % (("Mon", "Tue")[version - 1], version)
        headers = [("Accept-Ranges", "bytes")]
        valid = []
        if "etag" in opts:
            headers.append(("ETag", etag))
            valid.append(etag)
        if "lm" in opts:
            headers.append(("Last-Modified", lastmod))
            valid.append(lastmod)
        rng, if_range = self.headers.get("Range"), self.headers.get("If-Range")
        start = 0
        if rng and "norange" not in opts:
            m = re.fullmatch(r"bytes=(\d+)-", rng)
            if "416" in opts or (m and int(m.group(1)) >= len(body)):
                self.error_page(416, [("Content-Range", "bytes */%d" % len(body))])
                return
            # If-Range: the rest only if the validator still matches.
            if m and (if_range is None or if_range in valid):
                start = int(m.group(1))
        if start:
            self.send_response(206)
            headers.append(("Content-Range", "bytes %d-%d/%d" % (start, len(body) - 1,
                                                                len(body))))
        else:
            self.send_response(200)
        self.send_header("Content-Type", "application/pdf")
        self.send_header("Content-Length", str(len(body) - start))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if hits == 1 and ("cut1" in opts or "stall1" in opts):
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            if "stall1" in opts:
                STOP.wait(60)
            self.close_connection = True
            return
        self.wfile.write(body[start:])


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
