//! The sync of one account: refresh the tokens when due, page through the provider's
//! listing, store each page of the file index and then the cursor that follows it.
//!
//! Safe to run twice for the same job, or twice at once for the same account:
//! - files are stored before the cursor that passes them, so a sync killed half-way resumes
//!   from the last stored page and misses nothing (a page may be stored twice: upserts);
//! - every account write is conditional on the version read. A worker that finds the cursor
//!   moved by another worker stops (the other one is ahead); one that finds the tokens
//!   refreshed by another adopts them. So a cursor never moves backwards and a rotated refresh
//!   token is never overwritten by an older one;
//! - one enumeration of an account at a time: a sync takes the account's lease (a field of
//!   the account, so the same conditional write) before it lists, keeps it on every write,
//!   and gives it back with its last one. A second sync that finds a live lease ends when
//!   the lease was taken after its job was asked for, and is requeued until the lease ends
//!   otherwise; one that finds its own lease taken stops. A lease outlasts the worker's
//!   invocation, so an expired one was left by a worker that is gone;
//! - each page's entries are numbered for the change feed (`crate::changes`) above the
//!   account's watermark `feed_seq`, and the page's cursor commit raises the watermark past
//!   them: the feed serves nothing above the watermark, so a reader never sees a number
//!   that a later entry could still land below.
//!
//! A sync never runs into its function's timeout (docs/API.md, "Sync jobs and timing"): no
//! provider call starts, or runs, past the deadline the caller passes, which keeps its own
//! reserve for storing the place. Then, or when a provider asks to wait longer than the retry
//! engine waits, the job goes back on the queue for the same account, delayed by the wait
//! asked: the message itself is done, so it neither uses up its receives nor fails its batch.
//! That cannot go on for ever: a job counts its requeues without a stored page and fails past
//! [`MAX_STALLED_REQUEUES`], and a provider that hands back the continuation cursor it was
//! asked with fails the job at once (see `listing::repeated_cursor`).
//!
//! One file per concept, so that each reads on its own (each file says why it exists):
//! - `batch`: the SQS batch consumer of `sync-worker`: each message to its job by its kind;
//! - `session`: one sync job from end to end: the job starts, the account syncs (the
//!   lease, the listing loop, the requeue), push upkeep follows a sync that finished;
//! - `state`: the `Session` a sync holds on its account, and how a sync ends;
//! - `account_change`: the account record's state machine, pure (`Change`, `applied`,
//!   `superseded`), and the one conditional write that applies it;
//! - `listing`: paging through the provider's listing, with its one-time recoveries;
//! - `index_writer`: storing a page of the index (and the removals it carries), then the
//!   cursor that passes it;
//! - `drive_news`: what a page says of the account's drives (section 11): its entries named
//!   by them, a lost drive's entries marked deleted, the drives counted at the end;
//! - `refresh`: refreshing the tokens and storing them before anything else can lose them;
//! - `credentials`: the same refresh for a request outside the sync (file content, the
//!   proxy), over a session without a lease.
//!
//! Imports run one way: `batch` -> `session` -> the steps -> `account_change` -> `state`.

mod account_change;
mod batch;
mod credentials;
mod drive_news;
mod index_writer;
mod listing;
mod refresh;
mod session;
mod state;

#[cfg(feature = "testing")]
pub use batch::fresh_invocation;
pub use batch::{handle_batch, Message, CONCURRENT_RECORDS, RESERVE};
pub use credentials::{Credentials, RefusedToken};
pub use session::{run, MAX_STALLED_REQUEUES};
pub use state::{SkipReason, SyncResult};
