"""Reading the stand-ins' recorded traffic, and what a check reports.

The testkit writes one JSON line per exchange (testkit/src/traffic.rs): `provider`, `method`,
`path`, `query` (name and value pairs), `request_kind` / `request`, `status`,
`response_kind` / `response`, `test`. Credentials arrive as `<redacted>`.
"""

import json
import os
from dataclasses import dataclass, field


@dataclass
class Exchange:
    provider: str
    method: str
    path: str
    query: list
    request_kind: str
    request: object
    status: int
    response_kind: str
    response: object
    test: str
    where: str

    def params(self):
        """The query as a dict of lists, in order."""
        out = {}
        for name, value in self.query:
            out.setdefault(name, []).append(value)
        return out

    def ok(self):
        return 200 <= self.status < 300


def read(directory):
    """Every exchange recorded in DIRECTORY's `*.jsonl` files, in file and line order."""
    exchanges = []
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".jsonl"):
            continue
        path = os.path.join(directory, name)
        with open(path, encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                record = json.loads(line)
                exchanges.append(
                    Exchange(
                        provider=record["provider"],
                        method=record["method"],
                        path=record["path"],
                        query=record.get("query", []),
                        request_kind=record.get("request_kind", "none"),
                        request=record.get("request"),
                        status=record["status"],
                        response_kind=record.get("response_kind", "none"),
                        response=record.get("response"),
                        test=record.get("test", ""),
                        where=f"{name}:{number}",
                    )
                )
    return exchanges


@dataclass
class Report:
    """Violations, each kept once with how often and where it was first seen."""

    seen: dict = field(default_factory=dict)
    checked: dict = field(default_factory=dict)
    # Problems of requests the stand-in refused too (the stand-ins' own tests send
    # them on purpose): agreement, counted but not reported.
    refused: int = 0

    def count(self, provider):
        self.checked[provider] = self.checked.get(provider, 0) + 1

    def add(self, exchange, side, message):
        """SIDE says whose mistake it is: `request` (what the client sent, the hub in every
        test but the stand-ins' own) or `response` (what the stand-in answered). A request
        is only at fault when the stand-in accepted it (below 400): one it refused shows the
        stand-in as strict as the provider, and the client sees the refusal."""
        if side == "request" and exchange.status >= 400:
            self.refused += 1
            return
        key = (exchange.provider, exchange.method, route_of(exchange.path), side, message)
        if key in self.seen:
            self.seen[key][1] += 1
        else:
            self.seen[key] = [exchange, 1]

    def print(self, out):
        for (provider, method, route, side, message), (first, times) in sorted(
            self.seen.items(), key=lambda item: item[0]
        ):
            print(
                f"VIOLATION {provider} {method} {route} [{side}, HTTP {first.status}]: {message}\n"
                f"    seen {times} time(s); first in test {first.test or '?'} ({first.where})",
                file=out,
            )


def route_of(path):
    """The path with the ids in it blanked, so that one mistake is reported once: Graph's
    segments after `subscriptions`, `drives`, `sites` and `items`, Drive's after `drives` and
    `files`."""
    parts = path.split("/")
    collections = {"graph": ("subscriptions", "drives", "sites", "items"), "google": ("drives", "files")}
    named = collections.get(parts[1] if len(parts) > 1 else "", ())
    for i in range(1, len(parts) - 1):
        if parts[i] in named and i >= 3:
            parts[i + 1] = "{id}"
    return "/".join(parts)
