//! The unit tests of the account record's state machine: [`applied`](super::applied) and
//! [`superseded`](super::superseded), pure, on records built here.

use super::*;
use chrono::Duration;

fn account() -> Account {
    Account {
        cursor: Some("c1".into()),
        version: 7,
        ..crate::testing::account("onedrive")
            .id("a1")
            .user("u1")
            .email("a@example.com")
            .tokens(sealed("old"))
            .build()
    }
}

fn sealed(tag: &str) -> Sealed {
    Sealed {
        data_key: None,
        nonce: "n".into(),
        ciphertext: tag.into(),
    }
}

fn outcome(result: SyncStatus) -> SyncOutcome {
    SyncOutcome {
        finished_at: Utc::now(),
        result,
        files_changed: 3,
        detail: None,
        error: None,
    }
}

#[test]
fn a_restart_opens_a_new_generation_that_the_last_page_closes() {
    let before = account();
    let restarted = applied(
        &before,
        &Change::Restart {
            from: before.cursor.clone(),
        },
    );
    assert_eq!(restarted.cursor, None);
    assert_eq!(
        restarted.listing,
        Listing {
            generation: 1,
            reconcile: true
        }
    );
    let middle = applied(
        &restarted,
        &Change::Cursor {
            from: None,
            to: "p2".into(),
            feed_seq: 0,
            counted: ChangeCount::default(),
            drives: None,
            finished: None,
        },
    );
    assert!(
        middle.listing.reconcile,
        "still reconciling mid-enumeration"
    );
    let done = applied(
        &middle,
        &Change::Cursor {
            from: Some("p2".into()),
            to: "d1".into(),
            feed_seq: 0,
            counted: ChangeCount::default(),
            drives: None,
            finished: Some(outcome(SyncStatus::Ok)),
        },
    );
    assert_eq!(
        done.listing,
        Listing {
            generation: 1,
            reconcile: false
        }
    );
}

#[test]
fn every_change_advances_the_version_once() {
    let before = account();
    let changes = [
        Change::Tokens {
            sealed: sealed("new"),
            has_refresh_token: false,
        },
        Change::Cursor {
            from: Some("c1".into()),
            to: "c2".into(),
            feed_seq: 0,
            counted: ChangeCount::default(),
            drives: None,
            finished: None,
        },
        Change::Finished {
            outcome: outcome(SyncStatus::Failed),
            holder: "h1".into(),
        },
        Change::NeedsReauth {
            at: Utc::now(),
            holder: "h1".into(),
        },
    ];
    for change in &changes {
        assert_eq!(applied(&before, change).version, 8, "{change:?}");
    }
}

#[test]
fn fresh_tokens_reactivate_the_account() {
    let mut before = account();
    before.status = AccountStatus::NeedsReauth;
    let after = applied(
        &before,
        &Change::Tokens {
            sealed: sealed("new"),
            has_refresh_token: false,
        },
    );
    assert_eq!(after.tokens, sealed("new"));
    assert!(!after.has_refresh_token);
    assert_eq!(after.status, AccountStatus::Active);
    assert_eq!(after.cursor, before.cursor, "the cursor is not touched");
}

#[test]
fn the_last_page_records_the_outcome_with_the_cursor() {
    let before = account();
    let ok = outcome(SyncStatus::Ok);
    let after = applied(
        &before,
        &Change::Cursor {
            from: Some("c1".into()),
            to: "c2".into(),
            feed_seq: 0,
            counted: ChangeCount::default(),
            drives: None,
            finished: Some(ok.clone()),
        },
    );
    assert_eq!(after.cursor.as_deref(), Some("c2"));
    assert_eq!(after.last_sync, Some(ok.clone()));
    assert_eq!(after.last_synced_at, Some(ok.finished_at));

    let middle = applied(
        &before,
        &Change::Cursor {
            from: Some("c1".into()),
            to: "c2".into(),
            feed_seq: 0,
            counted: ChangeCount::default(),
            drives: None,
            finished: None,
        },
    );
    assert_eq!(middle.last_sync, None, "a middle page records no outcome");
}

#[test]
fn a_failure_is_recorded_without_moving_last_synced_at() {
    let before = account();
    let after = applied(
        &before,
        &Change::Finished {
            outcome: outcome(SyncStatus::Failed),
            holder: "h1".into(),
        },
    );
    assert_eq!(after.last_sync.unwrap().result, SyncStatus::Failed);
    assert_eq!(after.last_synced_at, None);
}

#[test]
fn a_refused_grant_marks_the_account() {
    let after = applied(
        &account(),
        &Change::NeedsReauth {
            at: Utc::now(),
            holder: "h1".into(),
        },
    );
    assert_eq!(after.status, AccountStatus::NeedsReauth);
    assert_eq!(after.last_sync.unwrap().result, SyncStatus::NeedsReauth);
    assert_eq!(
        after.tokens,
        sealed("old"),
        "the tokens stay for a later look"
    );
}

#[test]
fn a_moved_cursor_supersedes_a_cursor_change_only() {
    let ours = account();
    let mut latest = account();
    latest.version = 8;
    latest.cursor = Some("c9".into());
    let cursor = Change::Cursor {
        from: Some("c1".into()),
        to: "c2".into(),
        feed_seq: 0,
        counted: ChangeCount::default(),
        drives: None,
        finished: None,
    };
    assert!(superseded(&cursor, &ours, &latest));
    assert!(!superseded(
        &Change::Finished {
            outcome: outcome(SyncStatus::Failed),
            holder: "h1".into(),
        },
        &ours,
        &latest
    ));
    latest.cursor = ours.cursor.clone();
    assert!(
        !superseded(&cursor, &ours, &latest),
        "another change of the record (a refresh) is applied again on top"
    );
}

#[test]
fn tokens_stored_by_another_worker_supersede_a_refresh_and_a_refusal() {
    let ours = account();
    let mut latest = account();
    latest.tokens = sealed("theirs");
    let refresh = Change::Tokens {
        sealed: sealed("new"),
        has_refresh_token: true,
    };
    let refusal = Change::NeedsReauth {
        at: Utc::now(),
        holder: "h1".into(),
    };
    assert!(superseded(&refresh, &ours, &latest));
    assert!(superseded(&refusal, &ours, &latest));
    latest.tokens = ours.tokens.clone();
    assert!(!superseded(&refresh, &ours, &latest));
    assert!(!superseded(&refusal, &ours, &latest));
}

fn lease(holder: &str, seconds_left: i64) -> Lease {
    Lease {
        holder: holder.into(),
        since: Some(Utc::now()),
        job_requested_at: None,
        until: Utc::now() + Duration::seconds(seconds_left),
    }
}

#[test]
fn the_lease_is_taken_with_the_watermark_over_what_a_dead_sync_left() {
    let mut before = account();
    before.feed_seq = 10;
    let taken = applied(
        &before,
        &Change::Acquire {
            lease: lease("me", 150),
            last_seq: 14,
        },
    );
    assert_eq!(taken.lease.as_ref().unwrap().holder, "me");
    assert_eq!(
        taken.feed_seq, 14,
        "entries left above the watermark join the feed"
    );
    let page = applied(
        &taken,
        &Change::Cursor {
            from: Some("c1".into()),
            to: "c2".into(),
            feed_seq: 17,
            counted: ChangeCount::default(),
            drives: None,
            finished: None,
        },
    );
    assert_eq!(page.feed_seq, 17);
    assert!(page.lease.is_some(), "kept mid-enumeration");
    let done = applied(
        &page,
        &Change::Cursor {
            from: Some("c2".into()),
            to: "c3".into(),
            feed_seq: 17,
            counted: ChangeCount::default(),
            drives: None,
            finished: Some(outcome(SyncStatus::Ok)),
        },
    );
    assert_eq!(done.lease, None, "given back with the last page");
}

#[test]
fn a_syncs_changes_add_up_across_its_pages_and_invocations_until_its_end() {
    let page = |counted, finished| Change::Cursor {
        from: None,
        to: "c".into(),
        feed_seq: 0,
        counted,
        drives: None,
        finished,
    };
    let two = ChangeCount {
        stored: 2,
        deleted: 1,
    };
    let first = applied(&account(), &page(two, None));
    let paused = applied(
        &first,
        &Change::Paused {
            holder: "me".into(),
        },
    );
    let failed = applied(
        &paused,
        &Change::Finished {
            outcome: outcome(SyncStatus::Failed),
            holder: "me".into(),
        },
    );
    let second = applied(&failed, &page(two, None));
    assert_eq!(
        second.unreported,
        ChangeCount {
            stored: 4,
            deleted: 2
        },
        "kept through a pause and a failure"
    );
    let done = applied(&second, &page(two, Some(outcome(SyncStatus::Ok))));
    assert!(done.unreported.is_zero(), "reported with the last page");
}

#[test]
fn a_failure_gives_back_only_its_own_lease() {
    let mut before = account();
    before.lease = Some(lease("other", 60));
    let failed = Change::Finished {
        outcome: outcome(SyncStatus::Failed),
        holder: "me".into(),
    };
    assert!(applied(&before, &failed).lease.is_some());
    before.lease = Some(lease("me", 60));
    assert_eq!(applied(&before, &failed).lease, None);
}

#[test]
fn a_live_lease_of_another_sync_supersedes_taking_it_and_an_expired_one_does_not() {
    let ours = account();
    let mut latest = account();
    let acquire = Change::Acquire {
        lease: lease("me", 150),
        last_seq: 0,
    };
    latest.lease = Some(lease("other", 60));
    assert!(superseded(&acquire, &ours, &latest));
    latest.lease = Some(lease("other", -1));
    assert!(!superseded(&acquire, &ours, &latest));
    latest.lease = None;
    assert!(!superseded(&acquire, &ours, &latest));
}

#[test]
fn nothing_new_moves_the_cursor_and_records_the_outcome_unless_a_sync_got_there() {
    let mut ours = account();
    ours.cursor = Some("c1".into());
    ours.feed_seq = 9;
    let nothing_new = Change::NothingNew {
        from: Some("c1".into()),
        to: "c2".into(),
        outcome: outcome(SyncStatus::Ok),
    };
    let next = applied(&ours, &nothing_new);
    assert_eq!(next.cursor.as_deref(), Some("c2"));
    assert!(next.last_synced_at.is_some());
    assert_eq!((next.lease, next.feed_seq), (None, 9), "no lease, no feed");

    let mut latest = ours.clone();
    assert!(!superseded(&nothing_new, &ours, &latest), "unchanged");
    latest.lease = Some(lease("other", 60));
    assert!(superseded(&nothing_new, &ours, &latest), "a sync holds it");
    latest.lease = Some(lease("other", -1));
    assert!(!superseded(&nothing_new, &ours, &latest), "a dead one");
    latest.cursor = Some("c3".into());
    assert!(superseded(&nothing_new, &ours, &latest), "a sync moved it");
}

#[test]
fn a_page_s_drives_are_written_with_its_cursor_and_a_good_end_stamps_the_active_ones() {
    use crate::model::{Drive, DriveInfo, DriveKind, DriveStatus};
    let mut team = Drive::new(DriveInfo {
        id: "0Ateam".into(),
        name: "Team".into(),
        kind: DriveKind::SharedDrive,
    });
    team.status = DriveStatus::Removed;
    let mine = Drive::new(DriveInfo {
        id: "my-drive".into(),
        name: "My Drive".into(),
        kind: DriveKind::MyDrive,
    });
    let ok = outcome(SyncStatus::Ok);
    let after = applied(
        &account(),
        &Change::Cursor {
            from: None,
            to: "c1".into(),
            feed_seq: 0,
            counted: ChangeCount::default(),
            drives: Some(vec![mine, team]),
            finished: Some(ok.clone()),
        },
    );
    assert_eq!(after.drives.len(), 2);
    assert_eq!(after.drives[0].last_synced_at, Some(ok.finished_at));
    assert_eq!(
        after.drives[1].last_synced_at, None,
        "a removed drive is not synced"
    );
    let failed = applied(
        &after,
        &Change::Finished {
            outcome: outcome(SyncStatus::Failed),
            holder: "me".into(),
        },
    );
    assert_eq!(
        failed.drives, after.drives,
        "a failure leaves the drives as they were"
    );
}
