"""A stand-in for JupyterHub's REST API (users and groups only), on 127.0.0.1.

It answers like the hub does where the roster depends on it: 404 for an unknown
user or group, 409 for one that exists, 400 for adding an unknown user to a
group, 403 without the right token, and lists in pages (small ones here, so that
paging is exercised). Every request is recorded as (method, path, body).
"""
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/hub/api"


class FakeHub:
    def __init__(self, token="secret", page_max=3):
        self.token, self.page_max = token, page_max
        self.users = {}  # name -> {"admin": bool}
        self.groups = {}  # name -> set of user names
        self.requests = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}{PREFIX}"

    def writes(self):
        return [r for r in self.requests if r[0] != "GET"]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def model(self, name):
        return {"name": name, "admin": self.users[name]["admin"],
                "groups": sorted(g for g, members in self.groups.items() if name in members)}

    def answer(self, method, path, query, body):
        parts = [urllib.parse.unquote(p) for p in path[len(PREFIX):].strip("/").split("/")]
        if parts == ["users"] and method == "GET":
            offset, limit = int(query.get("offset", 0)), min(int(query.get("limit", 50)), self.page_max)
            return 200, [self.model(n) for n in sorted(self.users)[offset:offset + limit]]
        if len(parts) == 2 and parts[0] == "users":
            name = parts[1]
            if method == "POST":
                if name in self.users:
                    return 409, {"message": f"User {name} already exists"}
                self.users[name] = {"admin": False}
                return 201, self.model(name)
            if method == "DELETE":
                if name not in self.users:
                    return 404, {"message": "Not found"}
                del self.users[name]
                for members in self.groups.values():
                    members.discard(name)
                return 204, None
        if len(parts) >= 2 and parts[0] == "groups":
            group = parts[1]
            if len(parts) == 2 and method == "GET":
                if group not in self.groups:
                    return 404, {"message": "No such group"}
                return 200, {"name": group, "users": sorted(self.groups[group])}
            if len(parts) == 2 and method == "POST":
                if group in self.groups:
                    return 409, {"message": f"Group {group} already exists"}
                self.groups[group] = set()
                return 201, {"name": group, "users": []}
            if len(parts) == 3 and parts[2] == "users" and method in ("POST", "DELETE"):
                if group not in self.groups:
                    return 404, {"message": "No such group"}
                unknown = [u for u in body["users"] if u not in self.users]
                if unknown:
                    return 400, {"message": f"Unknown users: {unknown}"}
                if method == "POST":
                    self.groups[group] |= set(body["users"])
                else:
                    self.groups[group] -= set(body["users"])
                return 200, {"name": group, "users": sorted(self.groups[group])}
        return 404, {"message": f"no such endpoint {method} {path}"}

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _serve(self):
                url = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                hub.requests.append((self.command, url.path, body))
                if self.headers.get("Authorization") != f"token {hub.token}":
                    code, reply = 403, {"message": "Action is not authorized with current scopes"}
                else:
                    code, reply = hub.answer(self.command, url.path,
                                             dict(urllib.parse.parse_qsl(url.query)), body)
                data = b"" if reply is None else json.dumps(reply).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = do_PATCH = _serve

        return Handler
