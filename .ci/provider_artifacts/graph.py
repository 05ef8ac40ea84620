"""Microsoft Graph v1.0, against the models of the Python `msgraph-sdk`.

Each model's `get_field_deserializers()` is what the SDK reads from Graph's JSON: a property
name and the ParseNode call that reads it (`get_str_value`, `get_object_value(ItemReference)`,
`get_enum_value(DriveType)`...). A stand-in ParseNode records those calls, which gives every
model's JSON names and types (inherited ones included) without reading the SDK's source.

Checked: the call is one of ROUTES (`/me`, drives, sites, items, children created,
permissions, deltas, searches, an item's `/content`, `/subscriptions`);
a 2xx JSON answer and a JSON request body have only properties of their model (at every
depth), each of its type (strings, booleans, integers, numbers, ISO 8601 date-times, UUIDs,
enum members, objects and collections); `@odata.*` control information only as OData JSON
defines it; `$select` names only properties of the answer's items (driveItem, drive); an error answer is an `ODataError`
(its `innerError` is service-defined in OData: members the SDK knows are type-checked, others let through).
"""

import datetime
import re
import uuid

from kiota_serialization_json.json_parse_node import JsonParseNode
from msgraph.generated.drives.item.items.item.delta.delta_get_response import DeltaGetResponse
from msgraph.generated.drives.item.items.item.search_with_q.search_with_q_get_response import (
    SearchWithQGetResponse,
)
from msgraph.generated.models.drive import Drive
from msgraph.generated.models.drive_collection_response import DriveCollectionResponse
from msgraph.generated.models.drive_item import DriveItem
from msgraph.generated.models.drive_item_collection_response import DriveItemCollectionResponse
from msgraph.generated.models.o_data_errors.inner_error import InnerError
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.permission_collection_response import PermissionCollectionResponse
from msgraph.generated.models.site import Site
from msgraph.generated.models.site_collection_response import SiteCollectionResponse
from msgraph.generated.models.subscription import Subscription
from msgraph.generated.models.user import User

PREFIX = "/graph/v1.0"

# OData JSON Format 4.01, section 4.5 (control information). A payload may carry these, and
# no other `@odata.` names.
ODATA_CONTROL = {
    "@odata.context", "@odata.metadataEtag", "@odata.type", "@odata.count",
    "@odata.nextLink", "@odata.deltaLink", "@odata.id", "@odata.editLink",
    "@odata.readLink", "@odata.etag", "@odata.navigationLink", "@odata.associationLink",
    "@odata.mediaEditLink", "@odata.mediaReadLink", "@odata.mediaContentType",
    "@odata.mediaEtag", "@odata.removed",
}
# Instance annotations Graph defines on a driveItem (`@microsoft.graph.*`, OData JSON 4.01
# section 18): the conflict behaviour a request asks for
# (<https://learn.microsoft.com/en-us/graph/api/driveitem-post-children>), and the links an
# answer may carry (<https://learn.microsoft.com/en-us/graph/api/resources/driveitem>,
# "Instance attributes").
GRAPH_ANNOTATIONS = {
    "@microsoft.graph.conflictBehavior", "@microsoft.graph.downloadUrl",
    "@microsoft.graph.sourceUrl",
}
# OData's system query options (section 5.1 of the URL conventions); `token` is the delta
# function's own parameter (driveItem: delta).
SYSTEM_QUERY = {"$select", "$expand", "$filter", "$orderby", "$top", "$skip", "$count",
                "$search", "$format", "$skiptoken", "$deltatoken"}

DELTA_QUERY = SYSTEM_QUERY | {"token"}
# (method, path pattern) -> (request model or None, answer model or None, query allowed).
# Besides what the stand-ins serve today, the calls a client of several drives makes (drives
# of the user, of SharePoint sites and groups, sites, items, per-drive deltas), so that they are
# checked as soon as a stand-in serves them. The first matching pattern wins.
ONE_DRIVE = r"(/me/drive|/drives/[^/]+|/sites/[^/]+/drive|/groups/[^/]+/drive)"
ROUTES = [
    ("GET", r"/me", None, User, SYSTEM_QUERY),
    ("GET", ONE_DRIVE, None, Drive, SYSTEM_QUERY),
    ("GET", r"(/me|/sites/[^/]+|/groups/[^/]+)/drives", None, DriveCollectionResponse, SYSTEM_QUERY),
    ("GET", r"/sites", None, SiteCollectionResponse, SYSTEM_QUERY | {"search"}),
    ("GET", r"/me/followedSites", None, SiteCollectionResponse, SYSTEM_QUERY),
    ("GET", r"/sites/[^/]+", None, Site, SYSTEM_QUERY),
    ("GET", ONE_DRIVE + r"/(root|items/[^/]+)", None, DriveItem, SYSTEM_QUERY),
    ("GET", ONE_DRIVE + r"/(root|items/[^/]+)/children", None, DriveItemCollectionResponse, SYSTEM_QUERY),
    ("GET", ONE_DRIVE + r"/(root|items/[^/]+)/delta", None, DeltaGetResponse, DELTA_QUERY),
    # The search function, its text an OData string literal (a quote doubled inside), as the
    # SDK's SearchWithQRequestBuilder writes it: `search(q='{q}')` (driveitem-search).
    ("GET", ONE_DRIVE + r"/(root|items/[^/]+)/search\(q='(?:[^']|'')*'\)", None,
     SearchWithQGetResponse, SYSTEM_QUERY),
    ("POST", ONE_DRIVE + r"/(root|items/[^/]+)/children", DriveItem, DriveItem, SYSTEM_QUERY),
    ("GET", ONE_DRIVE + r"/(root|items/[^/]+)/permissions", None, PermissionCollectionResponse, SYSTEM_QUERY),
    # A file's bytes: 302 to a pre-authenticated URL, no JSON (driveitem-get-content). The
    # conversion parameter is `format` in the REST reference (driveitem-get-content-format)
    # and `$format` in the SDK's URL template (ContentRequestBuilder).
    ("GET", ONE_DRIVE + r"/items/[^/]+/content", None, None, SYSTEM_QUERY | {"format"}),
    ("POST", r"/subscriptions", Subscription, Subscription, set()),
    ("PATCH", r"/subscriptions/[^/]+", Subscription, Subscription, set()),
    ("DELETE", r"/subscriptions/[^/]+", None, None, set()),
]
# Graph's identity platform lives under /microsoft/ in the stand-ins: OAuth, no Graph model.
NOT_GRAPH = ("/microsoft/",)


class Marker:
    def __init__(self, kind, argument=None):
        self.kind = kind
        self.argument = argument


class Recorder:
    """A ParseNode that answers every read with a marker of what was asked."""

    def __init__(self):
        self.last = None

    def _mark(self, kind, argument=None):
        self.last = Marker(kind, argument)
        return self.last

    def __getattr__(self, name):
        if not name.startswith("get_"):
            raise AttributeError(name)
        return lambda argument=None: self._mark(name[len("get_"):], argument)


_SCHEMAS = {}


def schema_of(model):
    """{json name: Marker} for a model class, inherited properties included."""
    if model not in _SCHEMAS:
        instance = model()
        schema = {}
        for name, read in instance.get_field_deserializers().items():
            recorder = Recorder()
            read(recorder)
            schema[name] = recorder.last
        _SCHEMAS[model] = schema
    return _SCHEMAS[model]


def model_for(model, value):
    """The subclass `@odata.type` names, as the SDK's discriminator picks it."""
    if isinstance(value, dict) and "@odata.type" in value:
        picked = model.create_from_discriminator_value(JsonParseNode(value))
        return type(picked)
    return model


def check_object(value, model, where):
    if not isinstance(value, dict):
        yield f"{where} is {type(value).__name__}, not a {model.__name__} object"
        return
    model = model_for(model, value)
    schema = schema_of(model)
    for key, item in value.items():
        if key in schema:
            yield from check_member(item, schema[key], f"{where}.{key}")
        elif key.startswith("@odata."):
            if key not in ODATA_CONTROL:
                yield f"{where} has {key!r}, not OData control information"
        elif key.startswith("@microsoft.graph."):
            if key not in GRAPH_ANNOTATIONS:
                yield f"{where} has {key!r}, not an annotation Graph defines"
        else:
            yield f"{where} has {key!r}, not a property of {model.__name__}"


def check_member(value, marker, where):
    # Graph sends null for a property without a value.
    if value is None:
        return
    kind, argument = marker.kind, marker.argument
    if kind == "object_value":
        yield from check_object(value, argument, where)
    elif kind == "collection_of_object_values":
        if not isinstance(value, list):
            yield f"{where} is {type(value).__name__}, not a collection"
            return
        for item in value:
            yield from check_object(item, argument, f"{where}[]")
    elif kind == "collection_of_primitive_values":
        if not isinstance(value, list):
            yield f"{where} is {type(value).__name__}, not a collection"
            return
        for item in value:
            yield from check_primitive(item, primitive_kind(argument), f"{where}[]")
    elif kind == "enum_value":
        yield from check_enum(value, argument, where)
    elif kind == "collection_of_enum_values":
        if not isinstance(value, list):
            yield f"{where} is {type(value).__name__}, not a collection"
            return
        for item in value:
            yield from check_enum(item, argument, f"{where}[]")
    else:
        yield from check_primitive(value, kind, where)


def primitive_kind(python_type):
    return {str: "str_value", bool: "bool_value", int: "int_value", float: "float_value",
            uuid.UUID: "uuid_value", datetime.datetime: "datetime_value"}.get(python_type, "any")


def check_enum(value, enum, where):
    members = {member.value for member in enum}
    # Flags enums travel as comma-separated members.
    if not isinstance(value, str) or not all(part.strip() in members for part in value.split(",")):
        yield f"{where} is {value!r}, not a member of {enum.__name__}"


def check_primitive(value, kind, where):
    if kind == "str_value" and not isinstance(value, str):
        yield f"{where} is {value!r}, not a string"
    elif kind == "bool_value" and not isinstance(value, bool):
        yield f"{where} is {value!r}, not a boolean"
    elif kind == "int_value" and (isinstance(value, bool) or not isinstance(value, int)):
        yield f"{where} is {value!r}, not an integer"
    elif kind == "float_value" and (isinstance(value, bool) or not isinstance(value, (int, float))):
        yield f"{where} is {value!r}, not a number"
    elif kind == "datetime_value" and not is_datetime(value):
        yield f"{where} is {value!r}, not an ISO 8601 date-time with an offset"
    elif kind == "uuid_value":
        try:
            uuid.UUID(str(value))
        except ValueError:
            yield f"{where} is {value!r}, not a UUID"
    elif kind == "bytes_value" and not isinstance(value, str):
        yield f"{where} is {value!r}, not base64 text"


def is_datetime(value):
    if not isinstance(value, str):
        return False
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)", value):
        return False
    try:
        datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


class Graph:
    def handles(self, exchange):
        return exchange.provider == "microsoft" and not exchange.path.startswith(NOT_GRAPH)

    def check(self, exchange, report):
        relative = exchange.path[len(PREFIX):] if exchange.path.startswith(PREFIX) else None
        route = next(
            (r for r in ROUTES
             if relative is not None and r[0] == exchange.method and re.fullmatch(r[1], relative)),
            None,
        )
        if route is None:
            report.add(exchange, "request", f"not a Graph v1.0 call the stand-ins know: {exchange.method} {exchange.path}")
            return
        report.count("microsoft")
        _, _, request_model, answer_model, allowed_query = route
        for name, values in exchange.params().items():
            if name not in allowed_query:
                report.add(exchange, "request", f"query parameter {name!r} is neither an OData system query option nor the function's")
            if name == "$select":
                for problem in select_problems(values[0], answer_model):
                    report.add(exchange, "request", problem)
        if exchange.request_kind == "json":
            if request_model is None:
                report.add(exchange, "request", "this call takes no body")
            else:
                for problem in check_object(exchange.request, request_model, "body"):
                    report.add(exchange, "request", problem)
        if exchange.ok():
            if answer_model is None:
                if exchange.response_kind != "none":
                    report.add(exchange, "response", "this call answers no body (204)")
            elif exchange.response_kind != "json":
                report.add(exchange, "response", f"a 2xx answer must be a JSON {answer_model.__name__}")
            else:
                for problem in check_object(exchange.response, answer_model, "answer"):
                    report.add(exchange, "response", problem)
        elif exchange.status >= 400 and exchange.response_kind == "json":
            for problem in check_error(exchange.response):
                report.add(exchange, "response", problem)


def select_problems(text, answer_model):
    """`$select` on a collection answer (one with a `value` collection) names properties of
    its items."""
    value = schema_of(answer_model).get("value")
    item_model = answer_model
    if value is not None and value.kind == "collection_of_object_values":
        item_model = value.argument
    schema = schema_of(item_model)
    for name in text.split(","):
        if name.strip() not in schema:
            yield f"$select names {name.strip()!r}, not a property of {item_model.__name__}"


def check_error(body):
    """Graph's error answer, with OData's service-defined `innerError` let through."""
    if not isinstance(body, dict):
        yield f"an error answer must be an object, was {body!r}"
        return
    inner = None
    if isinstance(body.get("error"), dict):
        body = {**body, "error": dict(body["error"])}
        inner = body["error"].pop("innerError", None)
    yield from check_object(body, ODataError, "error answer")
    if inner is None:
        return
    if not isinstance(inner, dict):
        yield f"error answer.error.innerError is {inner!r}, not an object"
        return
    schema = schema_of(InnerError)
    for key, item in inner.items():
        if key in schema:
            yield from check_member(item, schema[key], f"error answer.error.innerError.{key}")
