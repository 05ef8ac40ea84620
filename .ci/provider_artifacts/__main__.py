"""python -m provider_artifacts TRAFFIC_DIR [TRAFFIC_DIR...]: checks every recorded exchange,
prints each violation once (with how often it was seen and the first test that saw it) and
exits 1 if there is any, 2 if there was nothing to check."""

import os
import sys

from . import traffic
from .drive import Drive
from .dropbox_stone import Dropbox
from .graph import Graph


def main(directories):
    missing = [d for d in directories if not os.path.isdir(d)]
    if missing:
        print(f"provider-artifacts: no traffic folder {', '.join(missing)}: run the tests with "
              "HUB_TESTKIT_TRAFFIC_DIR set (scripts/test does)")
        return 2
    checkers = [Drive(), Dropbox(), Graph()]
    report = traffic.Report()
    exchanges = [e for d in directories for e in traffic.read(d)]
    skipped = 0
    for exchange in exchanges:
        checker = next((c for c in checkers if c.handles(exchange)), None)
        if checker is None:
            skipped += 1
            continue
        checker.check(exchange, report)
    checked = sum(report.checked.values())
    per_provider = ", ".join(f"{p} {n}" for p, n in sorted(report.checked.items()))
    print(
        f"provider-artifacts: {len(exchanges)} exchanges recorded, {checked} checked "
        f"({per_provider or 'none'}), {skipped} without a published description (OAuth, userinfo); "
        f"{report.refused} request problem(s) in calls the stand-ins rightly refused"
    )
    if checked == 0:
        print("provider-artifacts: nothing was checked: was HUB_TESTKIT_TRAFFIC_DIR set for the tests?")
        return 2
    report.print(sys.stdout)
    if report.seen:
        print(f"provider-artifacts: FAILED, {len(report.seen)} distinct violation(s)")
        return 1
    print("provider-artifacts: every checked exchange matches the providers' artifacts")
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1:]))
