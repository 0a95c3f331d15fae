#!/usr/bin/env python3
"""A webhook receiver for RuQi's alert tests (tests/tests/followups.rs), on 127.0.0.1.

    python3 alert_receiver.py OUT_FILE [--fail N] [--dingtalk-secret S] [--feishu-secret S]

Prints the port it listens on (one line, flushed), then serves until killed. Each POST is
appended to OUT_FILE as one JSON line, written whole under a lock, the failing ones included:

    {"n": 1, "time": <epoch seconds>, "path": "/hook", "status": 200, "body": <the JSON sent,
     or null>, "raw": "<the body as text>", "key": <Idempotency-Key or null>,
     "content_type": "application/json"}

The first N POSTs are answered HTTP 500 (a JSON error body), the rest HTTP 200 with a JSON body
(`{"ok": true, "n": ...}`), which RuQi's http-post plugin judges a delivered request.

It also poses as the chat robots' APIs, as their documentation describes them (the record then
has `"robot"` and the API's answer): DingTalk (`/robot/send?access_token=…`, signed robots'
`timestamp` in ms and `sign` = base64(HmacSHA256(secret, "timestamp\nsecret")) checked when
--dingtalk-secret is given; answers `{"errcode": 0}` or 310000), Feishu / Lark
(`/open-apis/bot/v2/hook/ID`, `timestamp` in s and `sign` = base64(HmacSHA256(key
"timestamp\nsecret", empty message)) in the body, checked with --feishu-secret; `{"code": 0}` or
19021) and WeCom (`/cgi-bin/webhook/send?key=…`; `{"errcode": 0}`). Each wants a text message:
`{"msgtype": "text", "text": {"content": …}}`, Feishu `{"msg_type": "text", "content": {"text": …}}`.
"""

import argparse
import base64
import hashlib
import hmac
import http.server
import json
import threading
import time
import urllib.parse


def sign(key, message):
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()


def robot_answer(path, body, args):
    """The robot API's answer to a POST of `body` at `path`, or None when `path` is no robot's."""
    url = urllib.parse.urlsplit(path)
    query = dict(urllib.parse.parse_qsl(url.query))
    body = body if isinstance(body, dict) else {}
    if url.path == "/robot/send":
        if not query.get("access_token"):
            return "dingtalk", {"errcode": 300001, "errmsg": "token is not exist"}
        if args.dingtalk_secret:
            ts = query.get("timestamp", "")
            want = sign(args.dingtalk_secret.encode(), f"{ts}\n{args.dingtalk_secret}".encode())
            fresh = ts.isdigit() and abs(time.time() * 1000 - int(ts)) < 3_600_000
            if not fresh or query.get("sign") != want:
                return "dingtalk", {"errcode": 310000, "errmsg": "sign not match"}
        content = (body.get("text") or {}).get("content")
        if body.get("msgtype") != "text" or not content:
            return "dingtalk", {"errcode": 40035, "errmsg": "missing text content"}
        return "dingtalk", {"errcode": 0, "errmsg": "ok"}
    if url.path.startswith("/open-apis/bot/v2/hook/"):
        if args.feishu_secret:
            ts = str(body.get("timestamp", ""))
            want = sign(f"{ts}\n{args.feishu_secret}".encode(), b"")
            fresh = ts.isdigit() and abs(time.time() - int(ts)) < 3600
            if not fresh or body.get("sign") != want:
                return "feishu", {"code": 19021, "msg": "sign match fail"}
        content = (body.get("content") or {}).get("text")
        if body.get("msg_type") != "text" or not content:
            return "feishu", {"code": 9499, "msg": "bad request"}
        return "feishu", {"code": 0, "msg": "success"}
    if url.path == "/cgi-bin/webhook/send":
        if not query.get("key"):
            return "wecom", {"errcode": 93000, "errmsg": "invalid webhook url"}
        content = (body.get("text") or {}).get("content")
        if body.get("msgtype") != "text" or not content:
            return "wecom", {"errcode": 40008, "errmsg": "invalid message type"}
        return "wecom", {"errcode": 0, "errmsg": "ok"}
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="file the requests are appended to, one JSON line each")
    parser.add_argument("--fail", type=int, default=0, help="answer the first N POSTs with HTTP 500")
    parser.add_argument("--dingtalk-secret", default="", help="check DingTalk signatures with this secret")
    parser.add_argument("--feishu-secret", default="", help="check Feishu signatures with this secret")
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
                robot = robot_answer(self.path, body, args) if status == 200 else None
                record = {
                    "n": n,
                    "time": time.time(),
                    "path": self.path,
                    "status": status,
                    "body": body,
                    "raw": raw.decode("utf-8", "replace"),
                    "key": self.headers.get("Idempotency-Key"),
                    "content_type": self.headers.get("Content-Type"),
                    "robot": robot[0] if robot else None,
                    "answer": robot[1] if robot else None,
                }
                with open(args.out, "a", encoding="utf-8") as f:
                    f.write(json.dumps(record) + "\n")
                    f.flush()
            if robot:
                answer = robot[1]
            elif status == 200:
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
