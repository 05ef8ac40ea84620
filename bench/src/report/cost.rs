//! Cost: the AWS calls and units of a sync, priced, against docs/DEPLOY.md's estimates.

use std::fmt::Write as _;

use super::not_run;
use crate::cost::{self, Dollars};

/// The estimates docs/DEPLOY.md made before it quoted this benchmark (dollars per million
/// account-syncs, first round), to compare with.
const DEPLOY_NO_CHANGES: f64 = 10.6;

const DEPLOY_TEN_CHANGES: f64 = 18.7;

/// Write units of an incremental sync with 10 changes measured on 2026-11-24, before the
/// change feed existed: the reference for the feed's cost.
const PRE_FEED_TEN_CHANGES_WRU: f64 = 12.0;

fn dollars_row(
    md: &mut String,
    name: &str,
    pick: fn(&Dollars) -> f64,
    scenarios: &[cost::Scenario],
) {
    let cells: Vec<String> = scenarios
        .iter()
        .map(|s| format!("{:.2}", pick(&s.dollars_per_million)))
        .collect();
    let _ = writeln!(md, "| {name} | {} |", cells.join(" | "));
}

pub(super) fn section_cost(md: &mut String, results: Option<&cost::Results>) {
    md.push_str("## 4. Cost per account-sync\n\n");
    let Some(r) = results else {
        return not_run(md, "cost");
    };
    let _ = writeln!(
        md,
        "Requests counted by a proxy between the AWS SDK and moto (by `X-Amz-Target`, or `Action=`), \
         DynamoDB capacity units estimated from the items in each request and answer (on-demand \
         rules: 1 WRU per started KB written, 2x in a transaction, plus 1 WRU for the \
         `by-provider` index when an account write creates or changes its keys or `status`, the \
         only attributes the index projects; the change feed's items, one per page a sync \
         writes, as any item; for the `by-seq` index, which still holds the entries stored \
         before the feed items, 1 for each entry a write takes out of it; 1 RRU per started 4 KB read \
         strongly consistent, half when eventually consistent). An account-sync = its share of a scheduled fan-out over {} \
         accounts + its share of one worker invocation of a batch of {} (the event source \
         mapping's `ReceiveMessage` and `DeleteMessageBatch`, one Lambda request) + the worker's \
         sync of a OneDrive drive of {} files synced before. Log bytes are the hub's own log lines \
         at info level, formatted as `hub::telemetry` does, counted instead of printed. Tokens are \
         the stand-in's (about 40 characters), so account items are smaller than with real \
         Microsoft tokens (1.5 to 2.5 KB).\n",
        r.fanout_accounts, r.batch, r.drive_files
    );
    let names: Vec<&str> = r.scenarios.iter().map(|s| s.name.as_str()).collect();
    let mut operations: Vec<&String> = r
        .scenarios
        .iter()
        .flat_map(|s| s.per_sync.requests.keys())
        .collect();
    operations.sort();
    operations.dedup();
    let _ = writeln!(md, "| per account-sync | {} |", names.join(" | "));
    let _ = writeln!(md, "|---|{}", "---|".repeat(names.len()));
    for op in operations {
        let cells: Vec<String> = r
            .scenarios
            .iter()
            .map(|s| format!("{:.3}", s.per_sync.requests.get(op).copied().unwrap_or(0.0)))
            .collect();
        let _ = writeln!(md, "| {op} | {} |", cells.join(" | "));
    }
    let row = |md: &mut String, name: &str, f: &dyn Fn(&cost::Scenario) -> String| {
        let cells: Vec<String> = r.scenarios.iter().map(f).collect();
        let _ = writeln!(md, "| {name} | {} |", cells.join(" | "));
    };
    row(md, "DynamoDB write units (est.)", &|s| {
        format!("{:.2}", s.per_sync.write_units)
    });
    row(md, "of which file items (table)", &|s| {
        format!("{:.2}", s.per_sync.file_write_units)
    });
    row(md, "of which the feed's items", &|s| {
        format!("{:.2}", s.per_sync.feed_write_units)
    });
    row(
        md,
        "of which the `by-seq` index (entries stored before the feed items)",
        &|s| format!("{:.2}", s.per_sync.feed_index_write_units),
    );
    row(md, "of which lease / account writes", &|s| {
        format!("{:.2}", s.per_sync.account_write_units)
    });
    row(md, "of which other items", &|s| {
        format!("{:.2}", other_write_units(&s.per_sync))
    });
    row(md, "DynamoDB read units (est.)", &|s| {
        format!("{:.2}", s.per_sync.read_units)
    });
    row(md, "largest account item (bytes)", &|s| {
        s.per_sync.largest_item_bytes.to_string()
    });
    row(md, "log bytes", &|s| format!("{:.0}", s.log_bytes_per_sync));
    row(md, "wall time here (ms)", &|s| {
        format!("{:.1}", s.wall_ms_per_sync)
    });

    let _ = writeln!(
        md,
        "\nDollars per million account-syncs (us-east-1 list prices: KMS $3 per million requests; \
         DynamoDB on demand $0.625 per million WRU, $0.125 per million RRU; SQS $0.40 per million \
         requests; Lambda $0.20 per million requests and arm64 $0.0000133334 per GB-s, with an \
         **assumed** {} s billed per account at {} MB as in docs/DEPLOY.md; CloudWatch Logs $0.50 \
         per GB):\n",
        r.assumed_seconds_per_sync, r.worker_memory_mb
    );
    let _ = writeln!(
        md,
        "| $ per million account-syncs | {} |",
        names.join(" | ")
    );
    let _ = writeln!(md, "|---|{}", "---|".repeat(names.len()));
    dollars_row(md, "KMS", |d| d.kms, &r.scenarios);
    dollars_row(md, "DynamoDB writes", |d| d.dynamodb_writes, &r.scenarios);
    dollars_row(md, "DynamoDB reads", |d| d.dynamodb_reads, &r.scenarios);
    dollars_row(md, "SQS", |d| d.sqs, &r.scenarios);
    dollars_row(md, "Lambda requests", |d| d.lambda_requests, &r.scenarios);
    dollars_row(
        md,
        "Lambda duration (assumed)",
        |d| d.lambda_duration,
        &r.scenarios,
    );
    dollars_row(md, "CloudWatch Logs", |d| d.logs, &r.scenarios);
    dollars_row(md, "**total**", |d| d.total, &r.scenarios);
    let _ = writeln!(
        md,
        "\ndocs/DEPLOY.md first estimated about ${DEPLOY_NO_CHANGES} per million syncs with no changes (one \
         token refresh per sync) and about ${DEPLOY_TEN_CHANGES} with 10 changes. Not counted here: \
         idle polling of the event source mapping, the KMS key, alarms and storage (fixed monthly \
         costs, listed in docs/DEPLOY.md, which now quotes the figures above).\n"
    );
}

/// The write units of neither file items, the feed nor accounts (claims, marks...).
fn other_write_units(counts: &crate::proxy::Counts) -> f64 {
    counts.write_units
        - counts.file_write_units
        - counts.feed_index_write_units
        - counts.feed_write_units
        - counts.account_write_units
}

pub(super) fn observe_cost(md: &mut String, r: &cost::Results) {
    for s in &r.scenarios {
        let d = &s.dollars_per_million;
        let parts = [
            ("KMS", d.kms),
            ("DynamoDB", d.dynamodb_writes + d.dynamodb_reads),
            ("SQS", d.sqs),
            (
                "Lambda (duration assumed)",
                d.lambda_requests + d.lambda_duration,
            ),
            ("CloudWatch Logs", d.logs),
        ];
        let (top, top_dollars) =
            parts
                .iter()
                .copied()
                .fold(("", 0.0), |best, p| if p.1 > best.1 { p } else { best });
        let _ = writeln!(
            md,
            "- **Cost, {}**: ${:.2} per million account-syncs; {top} is the largest part (${top_dollars:.2}).",
            s.name, d.total
        );
    }
    let Some(quiet) = r.scenarios.first() else {
        return;
    };
    let puts = quiet
        .per_sync
        .requests
        .get("DynamoDB.PutItem")
        .copied()
        .unwrap_or(0.0);
    let item = quiet.per_sync.largest_item_bytes;
    let units_per_write = (item as f64 / 1024.0).ceil().max(1.0);
    let account_units = puts * units_per_write;
    let _ = writeln!(
        md,
        "- **Account writes** (changed): a sync with no changes writes the account {} \
         (the last page's cursor together with the outcome), and a write of the {item}-byte \
         item costs {units_per_write:.0} WRU in the table and nothing in the `by-provider` index, \
         which now projects only the keys and `status`, so an update that leaves them alone writes \
         nothing there: {account_units:.0} WRU per sync. The earlier run measured 8 (two writes, \
         each charged again for an index that projected every attribute). With real Microsoft \
         tokens (1.5 to 2.5 KB access tokens, items of about 5 KB) each write costs about five \
         units, so the saving grows with them. The price: `GET /users` reads the ids from the \
         index and the accounts with `BatchGetItem` (a rare management call).",
        if puts.round() == 1.0 {
            "once".to_string()
        } else {
            format!("{puts:.0} times")
        }
    );
    if let Some(changed) = r
        .scenarios
        .iter()
        .find(|s| s.per_sync.feed_write_units > 0.0)
    {
        let c = &changed.per_sync;
        let _ = writeln!(
            md,
            "- **The change feed's price** ({}): {:.1} WRU per sync against {PRE_FEED_TEN_CHANGES_WRU:.0} \
             before the feed (the run of 2026-11-24) and 36 to 38 with the feed in the `by-seq` \
             index (the runs of 2026-11-25 and 2026-12-07). Split: {:.1} for the file items in the \
             table, {:.1} for the feed's item of the page (its positions: sequence numbers and \
             file ids), {:.1} in the `by-seq` index (entries stored before the feed items, leaving \
             it), {:.1} for the account (the lease is taken before the entries are numbered and \
             given back with the last page's cursor and the outcome), {:.1} other. A sync that \
             finds nothing new takes no lease and writes the account once, as before the feed.",
            changed.name,
            c.write_units,
            c.file_write_units,
            c.feed_write_units,
            c.feed_index_write_units,
            c.account_write_units,
            other_write_units(c),
        );
    }
    if let Some(quiet) = r
        .scenarios
        .iter()
        .find(|s| s.per_sync.feed_write_units == 0.0 && other_write_units(&s.per_sync) > 0.0)
    {
        let c = &quiet.per_sync;
        let _ = writeln!(
            md,
            "- **A push channel that cannot open costs every sync** ({}: {:.1} WRU of other writes, \
             {:.0} `DeleteItem`s per sync). The benchmark's hub has push on (its `HUB_PUBLIC_URL` is \
             https), and the Graph stand-in, as Graph does, validates a new subscription by calling \
             its `notificationUrl`, which it cannot reach here: so every sync stores the channel's \
             two records, fails to open the subscription and removes them again, a provider call \
             and 4 WRU for nothing. A deployment whose subscriptions keep failing (a wrong public \
             URL, a route the provider cannot reach) pays that on every sync. Not changed in this \
             round: the change is to remember a failed open on the account and try again after a \
             back-off (hours), instead of at the next sync.",
            quiet.name,
            other_write_units(c),
            c.requests
                .get("DynamoDB.DeleteItem")
                .copied()
                .unwrap_or(0.0),
        );
    }
    if let Some(refresh) = r.scenarios.iter().find(|s| s.name.contains("refresh")) {
        let _ = writeln!(
            md,
            "- **KMS: one `Decrypt` per sync, one `GenerateDataKey` per refresh** (${:.2} per million \
             syncs when every sync refreshes, as hourly syncs with hour-long access tokens do). Data \
             keys are bound to each account by the KMS encryption context, so they cannot be cached \
             across accounts; keeping the account binding in the AES-GCM associated data only (it is \
             already there) and using one cached data key per worker for a few minutes would make KMS \
             nearly free, at the price of CloudTrail no longer naming the account whose tokens were \
             opened. Not made: binding each envelope to its account in KMS itself is a requirement \
             of the hub's design, worth more than these dollars. Syncing more often than the token \
             lifetime does not add refreshes.",
            refresh.dollars_per_million.kms
        );
    }
    if let Some(changed) = r.scenarios.iter().find(|s| s.name.contains("changed")) {
        let per_file = (changed.log_bytes_per_sync - quiet.log_bytes_per_sync) / 10.0;
        let _ = writeln!(
            md,
            "- **Logs grow with the changes**: about {per_file:.0} bytes per changed file (one info line \
             each), ${:.2} per million syncs with 10 changes; a first sync of 100,000 files logs about \
             {:.0} MB. Not changed: the worker logs each file it stores (docs/API.md, \
             \"Functions and queues\"); a deployment that does not want them can raise the worker's \
             log level (`RUST_LOG`), and the log groups' retention bounds what is kept.",
            changed.dollars_per_million.logs,
            per_file * 100_000.0 / 1e6
        );
    }
    let _ = writeln!(
        md,
        "- **Against docs/DEPLOY.md**: it estimated ${DEPLOY_NO_CHANGES} (no changes, one refresh) and \
         ${DEPLOY_TEN_CHANGES} (10 changes) before the changes above; the measured counts give {}. \
         The stand-in's short tokens make the items here smaller than in production, which works \
         the other way.",
        r.scenarios
            .iter()
            .map(|s| format!("${:.2} ({})", s.dollars_per_million.total, s.name))
            .collect::<Vec<_>>()
            .join(", ")
    );
}
