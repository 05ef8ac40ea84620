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
         not, so on moto only the items read speak for DynamoDB). Target: flat in time \
         (locally) and in items read from the smallest account to the largest. Load average \
         before/after: {} / {}.\n",
        r.loadavg_before, r.loadavg_after
    );
    md.push_str(
        "| backend | account entries | returned | items read | median (ms) | p90 (ms) |\n\
         |---|---|---|---|---|---|\n",
    );
    for l in &r.folder_listings {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {:.2} | {:.2} |",
            l.backend, l.account_entries, l.returned, l.items_read, l.ms.median, l.ms.p90
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
        }
    }
    md.push_str(
        "\nEach filter in the largest account, every page read (1,000 a page): what it read \
         for what it returned. `parent_id` and `drive_id` read their folder or drive only; \
         filters no index answers read the account.\n\n\
         | backend | filter | account entries | returned | items read | read per returned |\n\
         |---|---|---|---|---|---|\n",
    );
    for f in &r.filters {
        let per = if f.returned == 0 {
            "-".to_string()
        } else {
            format!("{:.2}", f.items_read as f64 / f.returned as f64)
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {per} |",
            f.backend, f.filter, f.account_entries, f.returned, f.items_read
        );
    }
    md.push('\n');
}
