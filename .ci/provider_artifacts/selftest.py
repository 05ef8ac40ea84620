"""The checker's own tests: a well-formed exchange of each provider passes, and each kind of
mistake is reported. Run by .ci/provider-artifacts before the traffic is checked, so a checker
that stopped seeing mistakes (an SDK upgrade that changed its layout, say) fails loudly."""

import copy
import sys

from .drive import Drive, parse_fields
from .dropbox_stone import Dropbox
from .graph import Graph
from .traffic import Exchange, Report

DRIVE_FIELDS = "nextPageToken,files(id,name,mimeType,size,modifiedTime,parents,md5Checksum)"
GOOD = {
    "drive": Exchange(
        provider="google", method="GET", path="/google/drive/v3/files",
        query=[["pageSize", "1000"], ["fields", DRIVE_FIELDS], ["q", "trashed = false"],
               ["supportsAllDrives", "true"], ["includeItemsFromAllDrives", "true"],
               ["corpora", "allDrives"], ["spaces", "drive"]],
        request_kind="none", request=None, status=200, response_kind="json",
        response={"nextPageToken": "t", "files": [{
            "id": "f1", "name": "a.txt", "mimeType": "text/plain", "size": "12",
            "modifiedTime": "2026-01-01T00:00:00.000Z", "parents": ["0A"],
            "md5Checksum": "0cc175b9c0f1b6a831c399e269772661"}]},
        test="selftest", where="selftest"),
    "dropbox": Exchange(
        provider="dropbox", method="POST", path="/dropbox/2/files/list_folder",
        query=[], request_kind="json",
        request={"path": "", "recursive": True, "include_deleted": False, "limit": 2000},
        status=200, response_kind="json",
        response={"entries": [{
            ".tag": "file", "name": "a.txt", "id": "id:a", "path_lower": "/a.txt",
            "path_display": "/a.txt", "client_modified": "2026-01-01T00:00:00Z",
            "server_modified": "2026-01-01T00:00:00Z", "rev": "0123456789abcdef", "size": 3,
            "is_downloadable": True, "content_hash": "e3" * 32}],
            "cursor": "c1", "has_more": False},
        test="selftest", where="selftest"),
    "graph": Exchange(
        provider="microsoft", method="GET", path="/graph/v1.0/me/drive/root/delta",
        query=[["$select", "id,name,size,file,folder,root,deleted,parentReference"]],
        request_kind="none", request=None, status=200, response_kind="json",
        response={"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(driveItem)",
                  "@odata.deltaLink": "https://graph.microsoft.com/v1.0/me/drive/root/delta?token=x",
                  "value": [{"id": "A!1", "name": "a.txt", "size": 3,
                             "lastModifiedDateTime": "2026-01-01T00:00:00Z",
                             "file": {"mimeType": "text/plain", "hashes": {"quickXorHash": "q"}},
                             "parentReference": {"id": "root", "driveId": "d", "driveType": "personal"}}]},
        test="selftest", where="selftest"),
}
CHECKERS = {"drive": Drive(), "dropbox": Dropbox(), "graph": Graph()}


def mutated(kind, change):
    exchange = copy.deepcopy(GOOD[kind])
    change(exchange)
    return exchange


def set_query(name, value):
    def change(exchange):
        exchange.query = [pair for pair in exchange.query if pair[0] != name]
        if value is not None:
            exchange.query.append([name, value])
    return change


def drive_file(key, value):
    return lambda e: e.response["files"][0].__setitem__(key, value)


def dropbox_entry(key, value):
    return lambda e: e.response["entries"][0].__setitem__(key, value)


def graph_item(key, value):
    return lambda e: e.response["value"][0].__setitem__(key, value)


# (name, provider, change, words the violation must contain)
MISTAKES = [
    ("unknown Drive parameter", "drive", set_query("includeDeleted", "true"), "no query parameter"),
    ("boolean parameter", "drive", set_query("supportsAllDrives", "yes"), "not a boolean"),
    ("integer bounds", "drive", set_query("pageSize", "5000"), "above its maximum"),
    ("corpora value", "drive", set_query("corpora", "everything"), "not among"),
    ("nested fields name", "drive", set_query("fields", "files(id,folderId)"), "'folderId'"),
    ("fields path", "drive", set_query("fields", "files/owners/bogus"), "'bogus'"),
    ("unknown File property", "drive", drive_file("folderId", "x"), "not a property of File"),
    ("int64 as a number", "drive", drive_file("size", 12), "decimal string"),
    ("date-time", "drive", drive_file("modifiedTime", "yesterday"), "RFC 3339"),
    ("unselected member", "drive", drive_file("trashed", False), "did not select"),
    ("missing required parameter", "drive",
     lambda e: (setattr(e, "path", "/google/drive/v3/changes"),
                set_query("fields", "nextPageToken")(e),
                setattr(e, "response", {"nextPageToken": "2"})),
     "required parameter 'pageToken'"),
    ("content_hash length", "dropbox", dropbox_entry("content_hash", "abc"), "content_hash"),
    ("rev length", "dropbox", dropbox_entry("rev", "015"), "rev"),
    ("unknown Dropbox member", "dropbox", dropbox_entry("parent_id", "x"), "unknown field"),
    ("unknown argument member", "dropbox", lambda e: e.request.__setitem__("folder", "/"), "argument"),
    ("unknown error tag", "dropbox",
     lambda e: (setattr(e, "status", 409),
                setattr(e, "response", {"error_summary": "gone/...", "error": {".tag": "gone"}})),
     "error refused"),
    ("path root error without the root info", "dropbox",
     lambda e: (setattr(e, "status", 422),
                setattr(e, "response", {"error_summary": "invalid_root/...",
                                        "error": {".tag": "invalid_root"}})),
     "PathRootError"),
    ("unknown driveItem property", "graph", graph_item("path", "/a.txt"), "not a property of DriveItem"),
    ("nested unknown property", "graph",
     lambda e: e.response["value"][0]["parentReference"].__setitem__("bogus", 1), "not a property of ItemReference"),
    ("Graph type", "graph", graph_item("size", "3"), "not an integer"),
    ("Graph date-time", "graph", graph_item("lastModifiedDateTime", "2026-01-01"), "date-time"),
    ("OData name", "graph", lambda e: e.response.__setitem__("@odata.bogus", 1), "not OData control"),
    ("$select name", "graph", set_query("$select", "id,path"), "'path'"),
    ("$select on drives", "graph",
     lambda e: (setattr(e, "path", "/graph/v1.0/me/drives"), set_query("$select", "id,driveType,root2")(e),
                setattr(e, "response", {"value": [{"id": "b!1", "driveType": "documentLibrary"}]})),
     "'root2', not a property of Drive"),
    ("Graph error", "graph",
     lambda e: (setattr(e, "status", 410),
                setattr(e, "response", {"error": {"code": "resyncRequired", "reason": "x"}})),
     "not a property of MainError"),
]


def violations(kind, exchange):
    report = Report()
    CHECKERS[kind].check(exchange, report)
    return [key[-1] for key in report.seen]


def main():
    passed, failed = 0, 0
    for kind in GOOD:
        found = violations(kind, GOOD[kind])
        if found:
            print(f"selftest: the good {kind} exchange was refused: {found}")
            failed += 1
        else:
            passed += 1
    for name, kind, change, words in MISTAKES:
        found = violations(kind, mutated(kind, change))
        if any(words in message for message in found):
            passed += 1
        else:
            print(f"selftest: {name}: expected a violation with {words!r}, got {found}")
            failed += 1
    if parse_fields("files(id") is not None or parse_fields("a/b(c),d")["a"] != {"b": {"c": None}}:
        print("selftest: the fields parser is wrong")
        failed += 1
    else:
        passed += 1
    print(f"provider-artifacts selftest: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
