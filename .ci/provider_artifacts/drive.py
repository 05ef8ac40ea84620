"""Google Drive v3, against the discovery document google-api-python-client ships
(`googleapiclient/discovery_cache/documents/drive.v3.json`).

Checked: the method (path and HTTP method) exists; every query parameter is one of the method's
or the API's global ones, with a value of its type (boolean, integer within its bounds, enum
member, and for `corpora` / `spaces` the values the description lists); required parameters are
present; every name of `fields`, nested ones included, is a property of the response schema at
that level; a JSON request body has only properties of the method's request schema, of their
types. A 2xx JSON answer has only properties of the response schema, each of its type (int64 as
a decimal string, date-times as RFC 3339) and, when `fields` was given, only what it selects.
"""

import datetime
import json
import os
import re

import googleapiclient

DOCUMENT = os.path.join(
    os.path.dirname(googleapiclient.__file__), "discovery_cache", "documents", "drive.v3.json"
)
# The stand-in serves Drive under /google/ + the document's servicePath.
PREFIX = "/google/"
# Only the userinfo endpoint and the export links live under /google/ beside Drive.
NOT_DRIVE = ("/google/oauth2/", "/google/token", "/google/revoke", "/google/o/oauth2/",
             # A file's `exportLinks` (docs.google.com at Google): not a Drive v3 method.
             "/google/feeds/")


class Drive:
    def __init__(self):
        with open(DOCUMENT, encoding="utf-8") as f:
            self.doc = json.load(f)
        self.schemas = self.doc["schemas"]
        self.service = PREFIX + self.doc["servicePath"]
        self.methods = []
        # Methods taking media (`files.create`, `files.update`) also answer at their simple
        # upload path (`mediaUpload.protocols.simple.path`, `/upload/drive/v3/files`), which
        # lies outside the servicePath.
        self.uploads = []
        self._collect(self.doc.get("resources", {}))

    def _collect(self, resources):
        for resource in resources.values():
            for method in resource.get("methods", {}).values():
                pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(method["path"]))
                self.methods.append((method["httpMethod"], re.compile(pattern + "$"), method))
                upload = method.get("mediaUpload", {}).get("protocols", {}).get("simple", {})
                if "path" in upload:
                    upload_pattern = re.sub(
                        r"\\\{[^}]+\\\}", "[^/]+", re.escape(upload["path"].lstrip("/"))
                    )
                    self.uploads.append(
                        (method["httpMethod"], re.compile(upload_pattern + "$"), method)
                    )
            self._collect(resource.get("resources", {}))

    def handles(self, exchange):
        return exchange.provider == "google" and not exchange.path.startswith(NOT_DRIVE)

    def check(self, exchange, report):
        if exchange.path.startswith(PREFIX + "upload/"):
            relative = exchange.path[len(PREFIX):]
            candidates = self.uploads
        elif exchange.path.startswith(self.service):
            relative = exchange.path[len(self.service):]
            candidates = self.methods
        else:
            report.add(exchange, "request", f"no Drive v3 path: {exchange.path}")
            return
        method = next(
            (m for verb, pattern, m in candidates
             if verb == exchange.method and pattern.match(relative)),
            None,
        )
        if method is None:
            report.add(exchange, "request", f"Drive v3 has no method {exchange.method} {relative}")
            return
        report.count("google")
        self._check_query(exchange, method, report)
        response_schema = method.get("response")
        fields = exchange.params().get("fields")
        selection = None
        if fields and response_schema:
            selection = parse_fields(fields[0])
            if selection is None:
                report.add(exchange, "request", f"malformed fields selector {fields[0]!r}")
            else:
                for problem in self.check_selection(selection, response_schema, "fields"):
                    report.add(exchange, "request", problem)
        if exchange.request_kind == "json":
            request_schema = method.get("request")
            if request_schema is None:
                report.add(exchange, "request", f"{method['id']} takes no request body")
            else:
                for problem in self.check_value(exchange.request, request_schema, "body", True):
                    report.add(exchange, "request", problem)
        if exchange.ok() and exchange.response_kind == "json":
            if response_schema is None:
                report.add(exchange, "response", f"{method['id']} answers no body")
            else:
                for problem in self.check_value(exchange.response, response_schema, "answer", False):
                    report.add(exchange, "response", problem)
                if selection is not None:
                    for problem in unselected(exchange.response, selection, "answer"):
                        report.add(exchange, "response", problem)
        elif exchange.ok() and exchange.params().get("alt") == ["media"]:
            # `alt=media` (a global parameter) answers the file's bytes instead of the
            # method's JSON: https://developers.google.com/drive/api/guides/manage-downloads
            if not method.get("supportsMediaDownload"):
                report.add(exchange, "request", f"{method['id']} downloads no media")
        elif exchange.ok() and response_schema is not None and exchange.response_kind != "json":
            report.add(exchange, "response", f"{method['id']} must answer a JSON {response_schema['$ref']}")

    def _check_query(self, exchange, method, report):
        known = dict(self.doc.get("parameters", {}))
        known.update(method.get("parameters", {}))
        params = exchange.params()
        for name, values in params.items():
            spec = known.get(name)
            if spec is None or spec.get("location") != "query":
                report.add(exchange, "request", f"{method['id']} has no query parameter {name!r}")
                continue
            if len(values) > 1 and not spec.get("repeated"):
                report.add(exchange, "request", f"query parameter {name!r} given {len(values)} times")
            for value in values:
                problem = parameter_problem(name, spec, value)
                if problem:
                    report.add(exchange, "request", problem)
        # A request Drive would refuse must not be answered 2xx by the stand-in.
        if exchange.ok():
            for name, spec in method.get("parameters", {}).items():
                if spec.get("required") and spec.get("location") == "query" and name not in params:
                    report.add(exchange, "response", f"answered 2xx without the required parameter {name!r}")

    def resolve(self, schema):
        while "$ref" in schema:
            schema = self.schemas[schema["$ref"]]
        return schema

    def check_selection(self, selection, schema, where):
        """Every selected name must be a property where it is selected."""
        schema = self.resolve(schema)
        while schema.get("type") == "array":
            schema = self.resolve(schema["items"])
        properties = schema.get("properties")
        if properties is None:
            yield f"{where} selects inside {schema.get('type', 'a value')} that has no properties"
            return
        for name, nested in selection.items():
            if name == "*":
                continue
            if name not in properties:
                yield f"{where} selects {name!r}, not a property of {schema.get('id', 'the object')}"
            elif nested is not None:
                yield from self.check_selection(nested, properties[name], f"{where} {name}(...)")

    def check_value(self, value, schema, where, request):
        """Problems of VALUE against SCHEMA. Requests may send int64 as a JSON number (the
        JSON mapping accepts both); answers send it as a string, as Google's APIs do."""
        schema = self.resolve(schema)
        kind = schema.get("type")
        if value is None:
            yield f"{where} is null; Google's APIs leave unset fields out"
            return
        if kind == "object" or "properties" in schema:
            if not isinstance(value, dict):
                yield f"{where} is {type(value).__name__}, not an object"
                return
            properties = schema.get("properties", {})
            extra = schema.get("additionalProperties")
            for key, item in value.items():
                if key in properties:
                    yield from self.check_value(item, properties[key], f"{where}.{key}", request)
                elif extra is not None:
                    yield from self.check_value(item, extra, f"{where}.{key}", request)
                else:
                    yield f"{where} has {key!r}, not a property of {schema.get('id', 'the object')}"
        elif kind == "array":
            if not isinstance(value, list):
                yield f"{where} is {type(value).__name__}, not an array"
                return
            for item in value:
                yield from self.check_value(item, schema["items"], f"{where}[]", request)
        elif kind == "string":
            yield from string_problems(value, schema, where, request)
        elif kind == "boolean":
            if not isinstance(value, bool):
                yield f"{where} is {value!r}, not a boolean"
        elif kind == "integer":
            if isinstance(value, bool) or not isinstance(value, int):
                yield f"{where} is {value!r}, not an integer"
        elif kind == "number":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                yield f"{where} is {value!r}, not a number"


def string_problems(value, schema, where, request):
    form = schema.get("format")
    if form in ("int64", "uint64"):
        if request and isinstance(value, int) and not isinstance(value, bool):
            return
        if not isinstance(value, str) or not re.fullmatch(r"-?\d+", value):
            yield f"{where} is {value!r}: {form} travels as a decimal string"
        return
    if not isinstance(value, str):
        yield f"{where} is {value!r}, not a string"
        return
    if form == "date-time" and not is_rfc3339(value):
        yield f"{where} is {value!r}, not an RFC 3339 date-time"
    if "enum" in schema and value not in schema["enum"]:
        yield f"{where} is {value!r}, not one of {schema['enum']}"


def is_rfc3339(value):
    pattern = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)"
    if not re.fullmatch(pattern, value):
        return False
    try:
        datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def documented_values(spec):
    """The values a free-text parameter's description lists as supported (`corpora`, `spaces`):
    the backquoted words after "Supported values are" / "Supported items include"."""
    text = spec.get("description", "")
    found = re.search(r"Supported (?:values are|items include)(.*?)(?:\. [A-Z]|$)", text, re.S)
    if not found:
        return None
    return set(re.findall(r"`([A-Za-z]+)`", found.group(1))) or None


def parameter_problem(name, spec, value):
    kind = spec.get("type")
    if kind == "boolean" and value not in ("true", "false"):
        return f"query parameter {name}={value!r} is not a boolean (true or false)"
    if kind == "integer":
        if not re.fullmatch(r"-?\d+", value):
            return f"query parameter {name}={value!r} is not an integer"
        number = int(value)
        if "minimum" in spec and number < int(spec["minimum"]):
            return f"query parameter {name}={value} is below its minimum {spec['minimum']}"
        if "maximum" in spec and number > int(spec["maximum"]):
            return f"query parameter {name}={value} is above its maximum {spec['maximum']}"
    if "enum" in spec and value not in spec["enum"]:
        return f"query parameter {name}={value!r} is not one of {spec['enum']}"
    supported = documented_values(spec)
    if supported is not None:
        for item in value.split(","):
            if item.strip() not in supported:
                return f"query parameter {name}={value!r}: {item.strip()!r} is not among {sorted(supported)}"
    return None


def parse_fields(text):
    """Drive's `fields` syntax as nested dicts (`None`: the whole value): `a,b(c,d/e)`.
    Returns None when malformed."""
    position = 0

    def parse_list():
        nonlocal position
        out = {}
        while True:
            start = position
            while position < len(text) and text[position] not in ",()":
                position += 1
            name = text[start:position].strip()
            nested = None
            if position < len(text) and text[position] == "(":
                position += 1
                nested = parse_list()
                if nested is None or position >= len(text) or text[position] != ")":
                    return None
                position += 1
            parts = name.split("/")
            if not all(parts):
                return None
            for parent in reversed(parts[1:]):
                nested = {parent: nested}
            merge(out, parts[0], nested)
            if position < len(text) and text[position] == ",":
                position += 1
                continue
            return out

    selection = parse_list()
    if selection is None or position != len(text):
        return None
    return selection


def merge(into, name, nested):
    if name in into:
        if into[name] is None or nested is None:
            into[name] = None
        else:
            for key, value in nested.items():
                merge(into[name], key, value)
    else:
        into[name] = nested


def unselected(value, selection, where):
    """Members of the answer that `fields` did not ask for (Drive answers only those)."""
    if selection is None or "*" in selection:
        return
    if isinstance(value, list):
        for item in value:
            yield from unselected(item, selection, f"{where}[]")
    elif isinstance(value, dict):
        for key, item in value.items():
            if key not in selection:
                yield f"{where} has {key!r}, which fields did not select"
            else:
                yield from unselected(item, selection[key], f"{where}.{key}")
