//! Querying the index: a folder's listing at three account sizes, and what each filter reads
//! for what it returns.

use std::fmt::Write as _;

use super::not_run;
use crate::queries;

pub(super) fn section_queries(md: &mut String, results: Option<&queries::Results>) {
    md.push_str("## 10. Querying the index\n\n");
    let Some(r) = results else {
        return not_run(md, "queries");
    };
    let _ = writeln!(
        md,
        "A folder of 100 files listed with `parent_id` (`hub::queries::files`, what `GET \
         /users/{{id}}/files?parent_id=` runs) in Google accounts of growing size, the other \
         entries spread over 500 folders, all written through the store as a sync writes \
         them. Items read is the store's own count of index items the listing read (on \
         DynamoDB, what its read units are billed on: the `by-folder` index items and the \
         entries they name). Time: the median and p90 of 20 listings (5 on moto, which scans \
         the whole table for every index query: its times grow with the table, DynamoDB's do \
         not, so on moto only the items read speak for DynamoDB). On moto, read units are \
         one more listing sent through the recording proxy, which estimates what DynamoDB \
         would bill from the items each call returns (half a unit per started 4 KB on an \
         eventually consistent read, a filter expression's dropped items counted at the \
         returned ones' size); written is how long writing the account took. Target: flat in time \
         (locally) and in items read from the smallest account to the largest. Load average \
         before/after: {} / {}.\n",
        r.loadavg_before, r.loadavg_after
    );
    md.push_str(
        "| backend | account entries | returned | items read | read units | median (ms) | p90 (ms) | written (s) |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for l in &r.folder_listings {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {:.2} | {:.2} | {:.1} |",
            l.backend,
            l.account_entries,
            l.returned,
            l.items_read,
            units(l.read_units),
            l.ms.median,
            l.ms.p90,
            l.seed_seconds
        );
    }
    for backend in ["local", "dynamodb (moto)"] {
        let rows: Vec<_> = r
            .folder_listings
            .iter()
            .filter(|l| l.backend == backend)
            .collect();
        if let (Some(first), Some(last)) = (rows.first(), rows.last()) {
            let reads_flat = rows.iter().all(|l| l.items_read == first.items_read);
            let _ = writeln!(
                md,
                "\n{backend}: items read {} from {} to {} entries ({} to {}); median time {:.2} ms \
                 to {:.2} ms.",
                if reads_flat { "flat" } else { "NOT flat" },
                first.account_entries,
                last.account_entries,
                first.items_read,
                last.items_read,
                first.ms.median,
                last.ms.median
            );
            if let (Some(a), Some(b)) = (first.read_units, last.read_units) {
                let _ = writeln!(
                    md,
                    "Read units of one listing: {a:.1} to {b:.1} ({}).",
                    if a == b { "flat" } else { "NOT flat" }
                );
            }
        }
    }
    md.push_str(
        "\nEach filter in the largest local account and the smallest moto one (moto's time per \
         page grows with its table), every page read (1,000 a page): what it read \
         for what it returned. `parent_id` and `drive_id` read their folder or drive only; \
         filters no index answers read the account. Read units (moto, through the proxy) per \
         returned entry is what DynamoDB would bill for each entry the filter gives; the time \
         is every page's, on moto moto's.\n\n\
         | backend | filter | account entries | returned | items read | read per returned | read units | read units per returned | time (s) |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for f in &r.filters {
        let per = if f.returned == 0 {
            "-".to_string()
        } else {
            format!("{:.2}", f.items_read as f64 / f.returned as f64)
        };
        let units_per = match (f.read_units, f.returned) {
            (Some(u), returned) if returned > 0 => format!("{:.3}", u / returned as f64),
            _ => "-".to_string(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {per} | {} | {units_per} | {:.1} |",
            f.backend,
            f.filter,
            f.account_entries,
            f.returned,
            f.items_read,
            units(f.read_units),
            f.seconds
        );
    }
    md.push('\n');
}

/// Read units where the proxy counted them.
fn units(units: Option<f64>) -> String {
    units.map_or("-".to_string(), |u| format!("{u:.1}"))
}
