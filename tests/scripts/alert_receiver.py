#!/usr/bin/env python3
"""A webhook receiver for RuQi's alert tests (tests/tests/followups.rs), on 127.0.0.1.

    python3 alert_receiver.py OUT_FILE [--fail N]

Prints the port it listens on (one line, flushed), then serves until killed. Each POST is
appended to OUT_FILE as one JSON line, written whole under a lock, the failing ones included:

    {"n": 1, "time": <epoch seconds>, "path": "/hook", "status": 200, "body": <the JSON sent,
     or null>, "raw": "<the body as text>", "key": <Idempotency-Key or null>,
     "content_type": "application/json"}

The first N POSTs are answered HTTP 500 (a JSON error body), the rest HTTP 200 with a JSON body
(`{"ok": true, "n": ...}`), which RuQi's http-post plugin judges a delivered request.
"""

import argparse
import http.server
import json
import threading
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="file the requests are appended to, one JSON line each")
    parser.add_argument("--fail", type=int, default=0, help="answer the first N POSTs with HTTP 500")
    args = parser.parse_args()
    lock = threading.Lock()
    seen = {"n": 0}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length > 0 else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            with lock:
                seen["n"] += 1
                n = seen["n"]
                status = 500 if n <= args.fail else 200
                record = {
                    "n": n,
                    "time": time.time(),
                    "path": self.path,
                    "status": status,
                    "body": body,
                    "raw": raw.decode("utf-8", "replace"),
                    "key": self.headers.get("Idempotency-Key"),
                    "content_type": self.headers.get("Content-Type"),
                }
                with open(args.out, "a", encoding="utf-8") as f:
                    f.write(json.dumps(record) + "\n")
                    f.flush()
            if status == 200:
                answer = {"ok": True, "n": n}
            else:
                answer = {"ok": False, "error": "failing on purpose", "n": n}
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
