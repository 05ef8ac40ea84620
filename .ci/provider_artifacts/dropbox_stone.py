"""Dropbox API v2, against the Stone validators of the official `dropbox` SDK.

Checked: the RPC route exists (`/2/<namespace>/<route>`, a `Route` object of `dropbox.<namespace>`;
content calls as well, their argument and result read from their headers);
its JSON argument decodes strictly with the route's `arg_type` (a route without one takes no
body or `null`); a 200 answer decodes strictly with its `result_type`; a 409 answer is
`{"error_summary": str, "error": ...}` whose `error` decodes strictly with its `error_type`; a
401 answer's `error` is an `auth.AuthError`, a 429's an `auth.RateLimitError`, a 422's (a refused
`Dropbox-API-Path-Root` header) a `common.PathRootError`. Strict decoding
refuses unknown members and union tags, and checks every type, length, pattern and timestamp
(`content_hash` is 64 hex digits, `rev` at least 9, `id` `id:`...).
"""

import importlib
import re

from dropbox import auth as dropbox_auth
from dropbox import common as dropbox_common
from dropbox import stone_serializers
from dropbox.stone_base import Route
from stone.backends.python_rsrc import stone_validators

PREFIX = "/dropbox/2/"
# The content host (`content.dropboxapi.com`: `files/export`, downloads, uploads): its calls
# carry their argument in `Dropbox-API-Arg` and their result in `Dropbox-API-Result`, which
# the recorder keeps as the exchange's request and response, so they are checked alike.
CONTENT_PREFIX = "/dropbox/content/2/"
# The OAuth endpoints under /dropbox/ are not Stone routes.
NOT_RPC = ("/dropbox/oauth2/",)


class Dropbox:
    def __init__(self):
        self.namespaces = {}

    def handles(self, exchange):
        return exchange.provider == "dropbox" and not exchange.path.startswith(NOT_RPC)

    def route(self, namespace, name):
        """The Route object for `namespace` / `name` (`name_v2` for version 2), or None."""
        if namespace not in self.namespaces:
            try:
                module = importlib.import_module(f"dropbox.{namespace}")
            except ImportError:
                module = None
            routes = {}
            for value in vars(module).values() if module else ():
                if isinstance(value, Route):
                    key = value.name if value.version == 1 else f"{value.name}_v{value.version}"
                    routes[key] = value
            self.namespaces[namespace] = routes
        return self.namespaces[namespace].get(name)

    def check(self, exchange, report):
        prefix = next((p for p in (PREFIX, CONTENT_PREFIX) if exchange.path.startswith(p)), None)
        if prefix is None or exchange.method != "POST":
            report.add(exchange, "request", f"not a Dropbox RPC call: {exchange.method} {exchange.path}")
            return
        namespace, _, name = exchange.path[len(prefix):].partition("/")
        route = self.route(namespace, name)
        if route is None:
            report.add(exchange, "request", f"the dropbox SDK has no route {namespace}/{name}")
            return
        report.count("dropbox")
        takes_argument = not isinstance(route.arg_type, stone_validators.Void)
        if exchange.request_kind == "json":
            problem = decode(route.arg_type, exchange.request)
            if problem:
                report.add(exchange, "request", f"argument refused by {type_name(route.arg_type)}: {problem}")
        elif takes_argument and exchange.ok():
            report.add(exchange, "response", f"answered 2xx without the {type_name(route.arg_type)} argument")
        if exchange.status == 200:
            if exchange.response_kind == "json" or exchange.response_kind == "none":
                body = exchange.response
                problem = decode(route.result_type, body)
                if problem:
                    report.add(exchange, "response", f"answer refused by {type_name(route.result_type)}: {problem}")
            else:
                report.add(exchange, "response", f"a 200 answer must be JSON, was {exchange.response_kind}")
        elif exchange.status in (401, 409, 422, 429):
            validator = {
                401: dropbox_auth.AuthError_validator,
                409: route.error_type,
                422: dropbox_common.PathRootError_validator,
                429: dropbox_auth.RateLimitError_validator,
            }[exchange.status]
            for problem in error_problems(exchange.response, validator):
                report.add(exchange, "response", problem)


def error_problems(body, validator):
    """An endpoint error: `error_summary` (a string) and `error` of the route's error type."""
    if not isinstance(body, dict):
        yield f"an error answer must be a JSON object, was {body!r}"
        return
    extra = sorted(set(body) - {"error", "error_summary", "user_message"})
    if extra:
        yield f"error answer has {extra} beside error_summary, error and user_message"
    if not isinstance(body.get("error_summary"), str):
        yield "error answer has no error_summary string"
    problem = decode(validator, body.get("error"))
    if problem:
        yield f"error refused by {type_name(validator)}: {problem}"
    summary = body.get("error_summary", "")
    tags = tag_path(body.get("error"))
    if isinstance(summary, str) and tags and not summary.startswith("/".join(tags)):
        yield f"error_summary {summary!r} does not start with the error's tags {'/'.join(tags)}"


def tag_path(value):
    """`{".tag": "path", "path": {".tag": "not_found"}}` is ["path", "not_found"]. Below the
    top, a `.tag` among members other than its own marks a struct's subtype (`invalid_root`'s
    RootInfo is `team` or `user`), not a union member: the summary names unions only."""
    tags = []
    while isinstance(value, dict) and ".tag" in value:
        if tags and not set(value) <= {".tag", value[".tag"]}:
            break
        tag = value[".tag"]
        tags.append(tag)
        value = value.get(tag)
    return tags


def decode(validator, value):
    """None if VALUE decodes strictly with VALIDATOR, else the SDK's message."""
    try:
        stone_serializers.json_compat_obj_decode(validator, value, strict=True)
    except stone_validators.ValidationError as e:
        return re.sub(r"\s+", " ", str(e))
    except Exception as e:  # the SDK's decoder raises plain errors on wrong shapes too
        return f"{type(e).__name__}: {e}"
    return None


def type_name(validator):
    if isinstance(validator, stone_validators.Void):
        return "Void"
    definition = getattr(validator, "definition", None)
    if definition is not None:
        return f"{definition.__module__.removeprefix('dropbox.')}.{definition.__name__}"
    return type(validator).__name__
