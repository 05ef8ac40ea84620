//! The hub's records: accounts, tokens, file index entries and sync jobs.

use chrono::{DateTime, Duration, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::crypto::Sealed;

mod content;
mod drives;
pub use content::{ContentFormat, ContentLink, ContentSource, StreamSource};
pub use drives::{Drive, DriveInfo, DriveKind, DriveReport, DriveStatus, MAX_DRIVES};

/// OAuth tokens in memory. `SecretString` keeps them out of `Debug` output and zeroes them on
/// drop; they are serialised only into the plaintext handed straight to the cipher.
#[derive(Clone, Debug)]
pub struct TokenSet {
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// The plaintext layout sealed into an account's `tokens` attribute.
#[derive(Serialize, Deserialize)]
struct TokenPlaintext {
    access_token: String,
    refresh_token: Option<String>,
    expires_at: Option<DateTime<Utc>>,
}

impl TokenSet {
    /// True when the access token is missing an expiry or expires within `margin`.
    pub fn expires_within(&self, margin: Duration, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|at| at - now <= margin)
    }

    /// Keeps the previous refresh token when the provider's answer carries none (Google
    /// sends one only on the first consent; Microsoft rotates it on every refresh).
    pub fn keeping_refresh_token_of(mut self, previous: &TokenSet) -> Self {
        if self.refresh_token.is_none() {
            self.refresh_token = previous.refresh_token.clone();
        }
        self
    }

    pub(crate) fn to_plaintext(&self) -> Zeroizing<Vec<u8>> {
        let plain = TokenPlaintext {
            access_token: self.access_token.expose_secret().to_string(),
            refresh_token: self
                .refresh_token
                .as_ref()
                .map(|t| t.expose_secret().to_string()),
            expires_at: self.expires_at,
        };
        let bytes = serde_json::to_vec(&plain).expect("token JSON always serialises");
        let TokenPlaintext {
            access_token,
            refresh_token,
            ..
        } = plain;
        drop(Zeroizing::new(access_token));
        drop(refresh_token.map(Zeroizing::new));
        Zeroizing::new(bytes)
    }

    pub(crate) fn from_plaintext(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        let plain: TokenPlaintext = serde_json::from_slice(bytes)?;
        Ok(TokenSet {
            access_token: plain.access_token.into(),
            refresh_token: plain.refresh_token.map(Into::into),
            expires_at: plain.expires_at,
        })
    }
}

/// Who the user is at the provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The provider's stable user id (Google `sub`, Microsoft `id`).
    pub provider_user_id: String,
    pub email: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    Active,
    /// The provider refused the refresh token: the user must log in again.
    NeedsReauth,
}

/// How a sync ended, as stored in the account's `last_sync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncStatus {
    Ok,
    /// The provider refused the refresh token.
    NeedsReauth,
    /// The job failed and was left for the queue to retry.
    Failed,
}

/// How the last sync of an account ended. Stored under the names of the account row's
/// `last_sync` (`at`, `outcome`, `error`), so that DynamoDB's projection of a `/users` row
/// reads it as [`LastSync`]; the names of records written before are read too.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncOutcome {
    #[serde(rename = "at", alias = "finished_at")]
    pub finished_at: DateTime<Utc>,
    #[serde(rename = "outcome", alias = "result")]
    pub result: SyncStatus,
    pub files_changed: u64,
    /// What went wrong, for the logs and the operator (it may name a provider's answer).
    pub detail: Option<String>,
    /// The contract's code naming why the sync did not end well (`provider_error`, ...);
    /// `None` when it did.
    #[serde(default)]
    pub error: Option<String>,
}

impl SyncOutcome {
    /// A sync that ended well, having stored `files_changed` entries.
    pub fn ok(at: DateTime<Utc>, files_changed: u64) -> Self {
        SyncOutcome {
            finished_at: at,
            result: SyncStatus::Ok,
            files_changed,
            detail: None,
            error: None,
        }
    }

    /// A sync that stopped: `detail` for the operator, `error` the contract's code.
    pub fn failed(at: DateTime<Utc>, detail: String, error: &str) -> Self {
        SyncOutcome {
            finished_at: at,
            result: SyncStatus::Failed,
            files_changed: 0,
            detail: Some(detail),
            error: Some(error.to_string()),
        }
    }
}

/// An account row's `last_sync` (contract section 11): when the last sync ended, how, and
/// the code of what went wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastSync {
    pub at: DateTime<Utc>,
    pub outcome: SyncStatus,
    #[serde(default)]
    pub error: Option<String>,
}

impl From<&SyncOutcome> for LastSync {
    fn from(outcome: &SyncOutcome) -> Self {
        LastSync {
            at: outcome.finished_at,
            outcome: outcome.result,
            error: outcome.error.clone(),
        }
    }
}

/// A connected cloud-drive account. `version` makes every update conditional: a writer that
/// read an older version loses cleanly instead of overwriting a rotated refresh token or
/// moving the change cursor backwards.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    pub provider: String,
    pub provider_user_id: String,
    /// The app's user this account was connected for (a connect session's owner: docs/API.md,
    /// "Connect sessions"); `None` for a login without a session.
    #[serde(default)]
    pub owner: Option<String>,
    pub email: String,
    pub status: AccountStatus,
    pub connected_at: DateTime<Utc>,
    pub last_synced_at: Option<DateTime<Utc>>,
    pub last_sync: Option<SyncOutcome>,
    pub has_refresh_token: bool,
    /// The scopes the provider granted at the last login (what was asked, when its token
    /// answer names none); empty for an account connected before the hub stored them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// The encrypted [`TokenSet`], bound to this account by the encryption context.
    pub tokens: Sealed,
    /// The connector's opaque position: mid-enumeration, or the change cursor of a finished
    /// sync. Saved only after the files of the page that produced it are stored.
    pub cursor: Option<String>,
    /// Which enumeration of the drive the index entries were last seen in.
    #[serde(default)]
    pub listing: Listing,
    /// The sync that holds the account now: one enumeration at a time (docs/API.md, "Sync jobs
    /// and timing").
    #[serde(default)]
    pub lease: Option<Lease>,
    /// The drives the account's index covers (contract section 11), at most [`MAX_DRIVES`];
    /// empty until the first enumeration that knows of drives has listed its first page.
    #[serde(default)]
    pub drives: Vec<Drive>,
    /// The change feed's watermark: the highest sequence number committed. Entries stored
    /// with a higher one belong to a page whose cursor is not saved yet, and stay out of
    /// the feed until it is (see `crate::changes`).
    #[serde(default)]
    pub feed_seq: u64,
    /// What the sync under way stored in the pages whose cursors are committed, for the one
    /// `sync.completed` at its end: a sync that goes on in another invocation (out of time,
    /// or after its worker died) reports every change it stored, once.
    #[serde(default, skip_serializing_if = "ChangeCount::is_zero")]
    pub unreported: ChangeCount,
    pub version: u64,
}

/// Index entries a sync stored: `stored` counts them all (present or marked deleted), and
/// `deleted` those of them marked deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeCount {
    pub stored: u64,
    pub deleted: u64,
}

impl ChangeCount {
    pub fn is_zero(&self) -> bool {
        *self == ChangeCount::default()
    }
}

impl std::ops::Add for ChangeCount {
    type Output = ChangeCount;

    fn add(self, other: ChangeCount) -> ChangeCount {
        ChangeCount {
            stored: self.stored + other.stored,
            deleted: self.deleted + other.deleted,
        }
    }
}

/// A sync's claim on its account, taken and released with the account's conditional write.
/// It outlasts the worker's invocation, so a lease whose `until` has passed was left by a
/// worker that is gone (killed at its timeout) and is free to take.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Random per sync: tells two syncs of one account apart, even on one worker.
    pub holder: String,
    /// When the holder took it (`None` on leases written before this field existed).
    #[serde(default)]
    pub since: Option<DateTime<Utc>>,
    /// When the holder's own job was requested: names that job, so that a redelivery of it
    /// (its holder died) is told apart from another job.
    #[serde(default)]
    pub job_requested_at: Option<DateTime<Utc>>,
    pub until: DateTime<Utc>,
}

impl Lease {
    /// Whether a sync other than `holder` holds it at `now`.
    pub fn blocks(&self, holder: &str, now: DateTime<Utc>) -> bool {
        self.holder != holder && self.until > now
    }

    /// Whether the holder's enumeration lists whatever a job requested at `requested_at` was
    /// asked for: it started after the request, and is not that same job delivered before
    /// (a redelivery means the earlier attempt may have died holding the lease). A job
    /// requested later (a push for a change the holder may have listed past) still has work.
    pub fn covers(&self, requested_at: DateTime<Utc>) -> bool {
        self.since.is_some_and(|since| since >= requested_at)
            && self.job_requested_at != Some(requested_at)
    }
}

/// Which enumeration of the drive is under way. Every entry stored carries the generation it
/// was seen in, so that at the end of an enumeration that replaced an expired cursor the
/// entries not seen again (deleted while the cursor was dead) can be told apart and marked
/// deleted. Stored with the account, so a sync killed half-way through a restarted
/// enumeration still reconciles when it resumes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listing {
    /// Starts at 0 with the account's first enumeration; one more at each restart.
    pub generation: u64,
    /// The enumeration under way replaces an expired cursor: entries of older generations
    /// that it does not see again are gone at the provider.
    pub reconcile: bool,
}

/// The public view of an account (one `/users` row): never a token.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AccountView {
    pub id: String,
    pub email: String,
    pub provider: String,
    pub has_refresh_token: bool,
    pub status: AccountStatus,
    pub connected_at: DateTime<Utc>,
    pub last_synced_at: Option<DateTime<Utc>>,
    pub owner: Option<String>,
    /// `null` before the first sync ends.
    #[serde(default)]
    pub last_sync: Option<LastSync>,
}

impl From<&Account> for AccountView {
    fn from(account: &Account) -> Self {
        AccountView {
            id: account.id.clone(),
            email: account.email.clone(),
            provider: account.provider.clone(),
            has_refresh_token: account.has_refresh_token,
            status: account.status,
            connected_at: account.connected_at,
            last_synced_at: account.last_synced_at,
            owner: account.owner.clone(),
            last_sync: account.last_sync.as_ref().map(LastSync::from),
        }
    }
}

/// Whether an index entry is a file, a folder or a shortcut.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    File,
    Folder,
    /// A Google Drive shortcut: its `target_id` names what it points at.
    Shortcut,
}

/// The provider's hash of a file's content (docs/API.md, "File index and change feed").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentHash {
    /// `md5` (Google), `quickXorHash` or `sha1` (Microsoft), `dropbox`.
    pub algorithm: String,
    pub value: String,
}

impl ContentHash {
    pub fn new(algorithm: &str, value: impl Into<String>) -> Self {
        ContentHash {
            algorithm: algorithm.to_string(),
            value: value.into(),
        }
    }
}

/// One entry of an account's file index (one `/users/{id}/files` or `/changes` row). The
/// fields added in v2 default to `null` so that entries stored before them still read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub kind: Option<FileKind>,
    pub mime_type: Option<String>,
    pub size: Option<u64>,
    pub modified_at: Option<DateTime<Utc>>,
    pub web_url: Option<String>,
    pub deleted: bool,
    /// The provider's ids of the parent folders (`[]` where it has none, as Dropbox).
    #[serde(default)]
    pub parent_ids: Option<Vec<String>>,
    /// The drive it belongs to: the `id` of one of the account's drives, as
    /// `/users/{id}/drives` lists them (contract section 11).
    #[serde(default)]
    pub drive_id: Option<String>,
    /// The provider's display path, where it has one (Dropbox).
    #[serde(default)]
    pub path: Option<String>,
    /// The provider's own lower-case form of `path` (Dropbox's `path_lower`), the key that
    /// removals by path match on. Dropbox documents no case-folding rule, so the hub keeps
    /// Dropbox's value rather than lower-casing `path` itself. Not part of the entry's shape:
    /// the store keeps it beside the entry ([`crate::store::StoredFile`]).
    #[serde(skip)]
    pub path_lower: Option<String>,
    #[serde(default)]
    pub content_hash: Option<ContentHash>,
    /// What a shortcut points at (Drive's `shortcutDetails.targetId`); `None` for every
    /// other entry.
    #[serde(default)]
    pub target_id: Option<String>,
    /// When the hub stored this state of the entry; set by the store.
    #[serde(default)]
    pub changed_at: Option<DateTime<Utc>>,
}

impl FileEntry {
    /// An entry with only an id and a name known; the rest is filled in by the connector.
    pub fn new(id: impl Into<String>, name: impl Into<String>) -> Self {
        FileEntry {
            id: id.into(),
            name: name.into(),
            kind: None,
            mime_type: None,
            size: None,
            modified_at: None,
            web_url: None,
            deleted: false,
            parent_ids: None,
            drive_id: None,
            path: None,
            path_lower: None,
            content_hash: None,
            target_id: None,
            changed_at: None,
        }
    }

    /// A removal reported by id: the store fills in what it knew of the entry.
    pub fn tombstone(id: impl Into<String>) -> Self {
        FileEntry {
            deleted: true,
            ..FileEntry::new(id, "")
        }
    }

    /// The key a removal by path matches this entry on: the provider's lower-case path, else
    /// its path in lower case.
    pub fn path_key(&self) -> Option<String> {
        self.path_lower
            .clone()
            .or_else(|| self.path.as_deref().map(path_key))
    }
}

/// What a removal by path marks deleted. Dropbox reports deletions by path, not id, and an
/// entry arriving at a path held by another id replaces what was there
/// (<https://www.dropbox.com/developers/documentation/http/documentation#files-list_folder>:
/// a file replaces whatever is at its `path_lower`, a folder's children included; a folder
/// replaces a file, or takes over a folder without touching its children).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathRemoval {
    /// The path in lower case, as the provider gives it.
    pub path_lower: String,
    /// Only the entry at the path, not what is under it.
    pub entry_only: bool,
    /// The entry that stays: the one now at the path, which replaces any other there.
    pub keep: Option<String>,
}

impl PathRemoval {
    /// The entry at `path_lower` and everything under it.
    pub fn subtree(path_lower: impl Into<String>) -> Self {
        PathRemoval {
            path_lower: path_lower.into(),
            entry_only: false,
            keep: None,
        }
    }

    /// Whether the live entry `id`, whose path key is `key`, is removed.
    pub fn removes(&self, id: &str, key: &str) -> bool {
        if self.keep.as_deref() == Some(id) {
            return false;
        }
        match key.strip_prefix(self.path_lower.as_str()) {
            Some("") => true,
            Some(rest) => !self.entry_only && rest.starts_with('/'),
            None => false,
        }
    }
}

/// A path as removals by path compare it: Dropbox paths are case-insensitive, and its
/// `path_lower` is the lower-cased full path (Dropbox documents no case-folding rule; both
/// sides go through this one function, so an entry's `path_display` and a deletion's
/// `path_lower` agree whatever case each came in).
pub fn path_key(path: &str) -> String {
    path.to_lowercase()
}

/// A pending OAuth login: created by `/login`, consumed once by `/callback`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoginState {
    pub state: String,
    pub provider: String,
    /// The PKCE verifier, sealed like tokens so no secret rests in clear text.
    pub pkce_verifier: Sealed,
    pub expires_at: DateTime<Utc>,
    /// The id (token hash) of the connect session the login was started with, if any
    /// (docs/API.md, "Connect sessions"): the callback connects the account for that session's
    /// owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// The hex SHA-256 of the browser key the login's cookie holds (docs/API.md, "Logins"):
    /// only the browser that started the login can finish it. The key itself is never stored. A
    /// state stored without one (before this field existed) matches no browser: it fails
    /// closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser_key_hash: Option<String>,
}

/// A connect session (docs/API.md, "Connect sessions"): an app's backend asks for one so that
/// one of its users (the `owner`) connects one drive. Stored under `id`, the SHA-256 of its
/// token: the token itself is never kept.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ConnectSession {
    pub id: String,
    pub owner: String,
    /// The providers its page offers, each configured when the session was created.
    pub providers: Vec<String>,
    /// Where the callback sends the browser back, checked against the allowlist.
    pub return_to: Option<String>,
    pub expires_at: DateTime<Utc>,
    /// Set once, by the callback that connected its account.
    #[serde(default)]
    pub spent: bool,
}

impl ConnectSession {
    /// Whether it can still start or finish a login at `now`.
    pub fn usable(&self, now: DateTime<Utc>) -> bool {
        !self.spent && self.expires_at > now
    }
}

/// A push channel the worker keeps for an account (docs/API.md, "Push notifications"): a Google
/// Drive `changes.watch` channel, or a Graph subscription. Stored before the provider is asked
/// to open it, since its first notification may come before that call returns; found by
/// `(provider, id)` alone when a notification names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushChannel {
    pub provider: String,
    /// The channel's id, which the hub picks (a new UUID per channel).
    pub id: String,
    pub account_id: String,
    /// The SHA-256 (hex) of the channel's secret (Google's `token`): the secret itself is
    /// never stored.
    pub secret_hash: String,
    /// The provider's own name for it, needed to stop it (Drive's `resourceId`, Graph's
    /// subscription id); `None` until the provider has answered the subscribe call.
    pub resource_id: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    /// The provider asked for it to be renewed before its end (Graph's
    /// `reauthorizationRequired`): the next sync renews it.
    #[serde(default)]
    pub renew: bool,
}

impl PushChannel {
    /// Whether the provider confirmed it and it is still live at `now`.
    pub fn live(&self, now: DateTime<Utc>) -> bool {
        self.resource_id.is_some() && self.expires_at > now
    }
}

/// Why a sync was asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncReason {
    Manual,
    Schedule,
    /// A provider's push notification (docs/API.md, "Push notifications").
    Push,
}

/// A queue message: sync one account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncJob {
    /// The account to sync; `user_id` on the wire (docs/API.md, "Sync jobs and timing").
    #[serde(rename = "user_id")]
    pub account_id: String,
    pub provider: String,
    pub reason: SyncReason,
    pub requested_at: DateTime<Utc>,
    /// How many times in a row this job was requeued by a sync that stored nothing (out of
    /// time or told to wait before its first page): bounded by the worker, so that a sync
    /// that never gets anywhere fails and reaches the dead-letter queue (`crate::sync`).
    /// Only in requeued jobs: absent means 0, and 0 is not written.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stalled_requeues: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Where a fan-out stands: the providers still to go (the first one in progress) and the
/// last account id queued of the first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FanOutPosition {
    pub providers: Vec<String>,
    pub after: Option<String>,
    pub reason: SyncReason,
    /// The fan-out this position belongs to, and which of its invocations runs it: each
    /// step is claimed once, so a redelivered continuation does not start a second chain.
    pub chain: String,
    pub step: u32,
}

/// An account being deleted (docs/API.md, "Deleting an account"): what `DELETE /users/{id}`
/// leaves in the account's place until the account's index, feed, channels and push mark are
/// purged. It holds no token and no profile (the sealed tokens went with the account), is out
/// of every listing and lookup (the store's reads of accounts never return it, its identity and
/// owner records are gone, and it has no key in DynamoDB's `by-provider` index), and a sync's
/// conditional write of the account fails on it. The store removes it last, once nothing else
/// of the account is left: until then a repeated `DELETE` answers 204 and puts the purge back
/// on the queue (`crate::purge`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deletion {
    pub account_id: String,
    pub provider: String,
    /// The provider's user id: locally, an identity record a crash left pointing here is
    /// removed with the tombstone (DynamoDB removes it in the tombstone's own transaction).
    pub provider_user_id: String,
    #[serde(default)]
    pub owner: Option<String>,
    /// When the delete began. Present on every tombstone and on no account: what tells the
    /// two apart where they share a key.
    pub deleting_since: DateTime<Utc>,
    /// `account.deleted`, produced once when the delete began: whoever sends it sends this
    /// same `webhook-id` and body.
    pub event: QueuedEvent,
    /// Whether `event` has been queued.
    #[serde(default)]
    pub announced: bool,
    /// The live lease of a sync that was listing when the delete began: until it ends (or
    /// that sync, finding its account gone, gives it back here) the sync may still store a
    /// page, so the purge ends no earlier.
    #[serde(default)]
    pub lease: Option<Lease>,
    /// The account's version plus one at the delete, one more at each change: every write
    /// of the tombstone is conditional on it.
    pub version: u64,
}

impl Deletion {
    /// The tombstone a delete that begins at `now` puts in the account's place, carrying
    /// `event` (the `account.deleted` it sends) and the end of a sync's live lease.
    pub fn of(account: &Account, event: QueuedEvent, now: DateTime<Utc>) -> Self {
        Deletion {
            account_id: account.id.clone(),
            provider: account.provider.clone(),
            provider_user_id: account.provider_user_id.clone(),
            owner: account.owner.clone(),
            deleting_since: now,
            event,
            announced: false,
            lease: account.lease.clone().filter(|lease| lease.until > now),
            version: account.version + 1,
        }
    }
}

/// A purge job: go on removing what is left of an account being deleted. Travels on the sync
/// queue as `{"purge_account": {...}}` beside the sync jobs (docs/API.md, "Sync jobs and
/// timing").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeJob {
    /// The account; `user_id` as in a sync job's body.
    #[serde(rename = "user_id")]
    pub account_id: String,
    pub requested_at: DateTime<Utc>,
}

/// Everything that travels on the sync queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum QueueMessage {
    /// Sync one account: the sync job's body.
    Sync(SyncJob),
    /// Go on with a fan-out that ran out of time in its own invocation.
    FanOut { continue_fanout: FanOutPosition },
    /// Go on with the purge of a deleted account (`crate::purge`).
    Purge { purge_account: PurgeJob },
}

/// One page of a paged listing, with the key of the next page.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// The last page, with nothing on it.
    pub fn empty() -> Self {
        Page {
            items: Vec::new(),
            next: None,
        }
    }
}

/// An event on the events queue: its id and the exact body every attempt sends
/// (made by [`crate::events`], delivered by [`crate::delivery`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedEvent {
    pub webhook_id: String,
    /// The event type again, for logs (the body is not logged).
    #[serde(rename = "type")]
    pub kind: String,
    pub body: String,
}
