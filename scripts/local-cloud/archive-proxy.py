"""An HTTP proxy that reaches only Debian's archive: the local cloud's guests install packages through it.

usage: archive-proxy.py PORT LOG            (127.0.0.1 only; started and stopped by PID by local-cloud.sh)

The guests of the local cloud live behind a router whose outside is a harness namespace with no route anywhere
(the network rule: test traffic goes only to 127.0.0.1 or to the harness's own namespaces). Their apt, as on
Chameleon, needs Debian's archive, which is allowed. apt is pointed at this proxy (Nova's vendor data); it serves
absolute-URI GETs and HEADs for ALLOWED hosts on port 80 and answers 403, naming the host, for anything else, so
no other destination is reachable from a guest. One log line per request, to LOG.
"""
import http.client
import http.server
import sys
import time
import urllib.parse

ALLOWED = {"deb.debian.org", "security.debian.org"}
HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer", "upgrade",
       "transfer-encoding"}
port, log_path = int(sys.argv[1]), sys.argv[2]
log = open(log_path, "a", buffering=1)


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        log.write("%s %s\n" % (time.strftime("%H:%M:%S"), fmt % args))

    def refuse(self, code, why):
        body = (why + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def relay(self):
        url = urllib.parse.urlsplit(self.path)
        if url.scheme != "http" or url.hostname not in ALLOWED or (url.port or 80) != 80:
            return self.refuse(403, f"archive-proxy: only http://{{{','.join(sorted(ALLOWED))}}} is reachable, not {self.path}")
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        upstream = http.client.HTTPConnection(url.hostname, 80, timeout=60)
        try:
            upstream.request(self.command, url.path + (f"?{url.query}" if url.query else ""), headers=headers)
            r = upstream.getresponse()
        except OSError as e:
            return self.refuse(502, f"archive-proxy: {url.hostname}: {e}")
        self.send_response(r.status, r.reason)
        for k, v in r.getheaders():
            if k.lower() not in HOP:
                self.send_header(k, v)
        length = r.getheader("Content-Length")
        if length is None and self.command != "HEAD" and r.status not in (204, 304):
            self.close_connection = True  # no length: the end of the body is the end of the connection
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            while chunk := r.read(65536):
                self.wfile.write(chunk)
        upstream.close()

    do_GET = relay
    do_HEAD = relay

    def do_CONNECT(self):
        self.refuse(403, "archive-proxy: no tunnels (apt's sources are http)")


server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Proxy)
server.daemon_threads = True
print(f"archive-proxy: 127.0.0.1:{port} -> {sorted(ALLOWED)}", flush=True)
server.serve_forever()
