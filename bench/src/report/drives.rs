//! Accounts of many drives, and Box: first (and Box's incremental) syncs against their fetch
//! loops.

use std::fmt::Write as _;

use super::not_run;
use crate::drives;

pub(super) fn section_drives(md: &mut String, results: Option<&drives::Results>) {
    md.push_str("## 12. Drives and Box\n\n");
    let Some(r) = results else {
        return not_run(md, "drives");
    };
    let _ = writeln!(
        md,
        "The first sync of a Google account that is a member of shared drives, of a Microsoft \
         work account following sites with document libraries (4 per site), and Box's first \
         sync and an incremental sync after renames, each run in process \
         (`hub::sync::run` until synced) on the local backend against the testkit stand-ins, \
         a fresh data directory and account per run. Each against a plain reqwest loop of the \
         same provider requests right after it (same page sizes and fields, every page read \
         and parsed for its next link, nothing stored): Google `drives.list` and each drive's \
         `files.list`; Graph's OneDrive delta, `followedSites`, each site's `drives` and each \
         library's delta; Box's walk of `/folders/{{id}}/items` from the root, and for the \
         incremental sync the `changes` events from where the first sync left and one read of \
         each item they name (the connector reads every named item's state, Box's events \
         coming repeated and out of order). Medians of {} runs. Load average before/after: \
         {} / {}.\n",
        r.runs_per_case, r.loadavg_before, r.loadavg_after
    );
    md.push_str(
        "| case | sync | files synced | sync, median (s) | fetch loop, median (s) | fetch requests | sync / fetch loop |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for c in &r.cases {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.3} | {:.3} | {} | {:.2}x |",
            c.name,
            c.kind,
            c.files_synced,
            c.sync_seconds.median,
            c.fetch_seconds.median,
            c.fetch_requests,
            c.ratio()
        );
    }
    md.push('\n');
}

#[cfg(test)]
mod tests {
    use crate::drives::Case;
    use crate::support::Summary;

    #[test]
    fn the_ratio_is_of_the_medians() {
        let case = Case {
            name: "box, first".into(),
            provider: "box".into(),
            kind: "first".into(),
            drives: 1,
            files_synced: 10,
            sync_seconds: Summary::of(&[3.0, 1.0, 2.0]),
            fetch_seconds: Summary::of(&[1.0, 0.5, 4.0]),
            fetch_requests: 5,
        };
        assert_eq!(case.ratio(), 2.0);
    }
}
