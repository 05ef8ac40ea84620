//! What the stand-ins remember: users and their drives, consents, grants and tokens, and the
//! switches tests flip. Handlers lock it for the length of one answer, never across an await.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap};
use chrono::{DateTime, TimeZone, Utc};
use sha2::{Digest, Sha256};

pub const GOOGLE_CLIENT_ID: &str = "google-client-id";
pub const GOOGLE_CLIENT_SECRET: &str = "google-client-secret";
pub const ONEDRIVE_CLIENT_ID: &str = "onedrive-client-id";
pub const ONEDRIVE_CLIENT_SECRET: &str = "onedrive-client-secret";
pub const DEFAULT_GOOGLE_USER: &str = "google-user-1";
pub const DEFAULT_GOOGLE_EMAIL: &str = "alice@example.com";
pub const DEFAULT_MICROSOFT_USER: &str = "ms-user-1";
pub const DEFAULT_MICROSOFT_EMAIL: &str = "bob@example.onmicrosoft.com";
/// Dropbox's app key and app secret (the secret also signs its webhook notifications).
pub const DROPBOX_CLIENT_ID: &str = "dropbox-app-key";
pub const DROPBOX_CLIENT_SECRET: &str = "dropbox-app-secret";
/// Shaped like Dropbox's account ids: `dbid:` and 35 more characters (40 in all).
pub const DEFAULT_DROPBOX_USER: &str = "dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc";
pub const DEFAULT_DROPBOX_EMAIL: &str = "carol@example.com";
pub const BOX_CLIENT_ID: &str = "box-client-id";
pub const BOX_CLIENT_SECRET: &str = "box-client-secret";
/// Box user ids are numeric strings.
pub const DEFAULT_BOX_USER: &str = "20130487";
pub const DEFAULT_BOX_EMAIL: &str = "dave@example.com";

/// Dropbox's numeric user id (`uid` of the token answer), derived from the account id: the
/// token answer (`oauth.rs`), the namespaces (`dropbox.rs`) and the webhooks (`push.rs`) agree on it.
pub(crate) fn uid_of(account_id: &str) -> String {
    let digest = Sha256::digest(account_id.as_bytes());
    let number = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    (number % 1_000_000_000).to_string()
}

/// Google, Microsoft, Dropbox or Box. Test code may also name them as in the hub's routes:
/// `"google"`, `"onedrive"` (or `"microsoft"`), `"dropbox"`, `"box"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Provider {
    Google,
    Microsoft,
    Dropbox,
    Box,
}

impl From<&str> for Provider {
    /// Panics on an unknown name: it is a mistake in the test, not input to answer.
    fn from(name: &str) -> Provider {
        match name {
            "google" => Provider::Google,
            "onedrive" | "microsoft" => Provider::Microsoft,
            "dropbox" => Provider::Dropbox,
            "box" => Provider::Box,
            other => panic!("no stand-in for provider {other:?}"),
        }
    }
}

impl Provider {
    /// The one registered client: (client id, client secret).
    pub(crate) fn client(self) -> (&'static str, &'static str) {
        match self {
            Provider::Google => (GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET),
            Provider::Microsoft => (ONEDRIVE_CLIENT_ID, ONEDRIVE_CLIENT_SECRET),
            Provider::Dropbox => (DROPBOX_CLIENT_ID, DROPBOX_CLIENT_SECRET),
            Provider::Box => (BOX_CLIENT_ID, BOX_CLIENT_SECRET),
        }
    }

    /// The provider's name as its own pages show it.
    pub(crate) fn display_name(self) -> &'static str {
        match self {
            Provider::Google => "Google",
            Provider::Microsoft => "Microsoft",
            Provider::Dropbox => "Dropbox",
            Provider::Box => "Box",
        }
    }

    pub(crate) fn default_user(self) -> &'static str {
        match self {
            Provider::Google => DEFAULT_GOOGLE_USER,
            Provider::Microsoft => DEFAULT_MICROSOFT_USER,
            Provider::Dropbox => DEFAULT_DROPBOX_USER,
            Provider::Box => DEFAULT_BOX_USER,
        }
    }
}

/// A file to put in a drive. `FileSpec::new` fills in a plain-text file; override the public
/// fields for anything else (e.g. a Google Doc: `mime_type` `application/vnd.google-apps.document`
/// and `size: None`).
#[derive(Clone, Debug, PartialEq)]
pub struct FileSpec {
    pub id: String,
    pub name: String,
    pub mime_type: String,
    /// Bytes; Google Docs have none.
    pub size: Option<u64>,
    pub modified_time: DateTime<Utc>,
    /// In the trash: Drive still lists it with `trashed: true`; Graph reports it deleted.
    pub trashed: bool,
    /// The folder it is in (a [`FileSpec::folder`] of the same drive); `None`: the drive's root.
    pub parent: Option<String>,
    /// Google only: the shared drive it lives in; `None`: the user's My Drive.
    pub drive_id: Option<String>,
    /// Google only: owned by someone else and shared with the user (`ownedByMe: false`); still
    /// in the `user` corpus, as Drive documents.
    pub shared_with_me: bool,
    /// Google only: a shortcut to the file with this id.
    pub shortcut_target: Option<String>,
    /// Graph only: a folder shared with the user and added to their OneDrive: the folder
    /// (owner whose OneDrive holds it, its id there). Delta shows it with a `remoteItem`
    /// facet and no `folder` facet of its own.
    pub remote_folder: Option<(String, String)>,
    /// Graph only: a `package` of this type (`oneNote`: a OneNote notebook), which has
    /// neither `file` nor `folder` facet.
    pub package: Option<String>,
}

impl FileSpec {
    pub fn new(id: impl Into<String>, name: impl Into<String>) -> FileSpec {
        FileSpec {
            id: id.into(),
            name: name.into(),
            mime_type: "text/plain".into(),
            size: Some(1024),
            modified_time: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
            trashed: false,
            parent: None,
            drive_id: None,
            shared_with_me: false,
            shortcut_target: None,
            remote_folder: None,
            package: None,
        }
    }

    /// Graph: the folder `remote_id` of `owner`'s OneDrive, shared with the user and added to
    /// their OneDrive as the item `id` named `name`.
    pub fn remote_folder(
        id: impl Into<String>,
        name: impl Into<String>,
        owner: impl Into<String>,
        remote_id: impl Into<String>,
    ) -> FileSpec {
        FileSpec {
            mime_type: FOLDER_MIME_TYPE.into(),
            size: None,
            remote_folder: Some((owner.into(), remote_id.into())),
            ..FileSpec::new(id, name)
        }
    }

    /// Graph: a OneNote notebook, a `package` of type `oneNote`.
    pub fn onenote_notebook(id: impl Into<String>, name: impl Into<String>) -> FileSpec {
        FileSpec {
            mime_type: "application/msonenote".into(),
            size: Some(0),
            package: Some("oneNote".into()),
            ..FileSpec::new(id, name)
        }
    }

    /// A Drive shortcut to `target` (<https://developers.google.com/drive/api/guides/shortcuts>).
    pub fn shortcut(
        id: impl Into<String>,
        name: impl Into<String>,
        target: impl Into<String>,
    ) -> FileSpec {
        FileSpec {
            mime_type: SHORTCUT_MIME_TYPE.into(),
            size: None,
            shortcut_target: Some(target.into()),
            ..FileSpec::new(id, name)
        }
    }

    /// A folder: Drive's folder MIME type (Graph: the `folder` facet), no size.
    pub fn folder(id: impl Into<String>, name: impl Into<String>) -> FileSpec {
        FileSpec {
            mime_type: FOLDER_MIME_TYPE.into(),
            size: None,
            ..FileSpec::new(id, name)
        }
    }

    /// The same file inside the folder `parent`.
    pub fn in_folder(self, parent: impl Into<String>) -> FileSpec {
        FileSpec {
            parent: Some(parent.into()),
            ..self
        }
    }

    /// The same file in the Google shared drive `drive_id`.
    pub fn in_shared_drive(self, drive_id: impl Into<String>) -> FileSpec {
        FileSpec {
            drive_id: Some(drive_id.into()),
            ..self
        }
    }

    /// The same file, owned by someone else and shared with the user (Google).
    pub fn shared_with_me(self) -> FileSpec {
        FileSpec {
            shared_with_me: true,
            ..self
        }
    }

    pub fn is_folder(&self) -> bool {
        self.mime_type == FOLDER_MIME_TYPE
    }

    /// A digest standing in for the content's: it changes with every version of the file.
    pub(crate) fn content_digest(&self) -> [u8; 32] {
        let version = format!("{}|{}|{}", self.id, self.name, self.modified_time);
        Sha256::digest(version.as_bytes()).into()
    }
}

/// Drive's folder type, <https://developers.google.com/drive/api/guides/folder>.
pub const FOLDER_MIME_TYPE: &str = "application/vnd.google-apps.folder";
/// Drive's shortcut type, <https://developers.google.com/drive/api/guides/shortcuts>.
pub const SHORTCUT_MIME_TYPE: &str = "application/vnd.google-apps.shortcut";

/// Why Microsoft's token endpoint refuses a refresh until the user signs in again, as
/// <https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow#error-codes-for-token-endpoint-errors>
/// lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reauthorization {
    /// `interaction_required`, AADSTS50076: multi-factor authentication is now required.
    InteractionRequired,
    /// `consent_required`, AADSTS65001: the user has not (or no longer) consented.
    ConsentRequired,
}

#[derive(Clone, Debug)]
pub(crate) struct File {
    pub spec: FileSpec,
    /// Deleted for good; kept as a tombstone so change feeds can report it.
    pub deleted: bool,
    /// Sequence number of the file's latest change: feeds collapse to one change per file,
    /// as Drive's and Graph's do.
    pub seq: u64,
    pub changed_at: DateTime<Utc>,
    /// The version before the latest change, for feeds that repeat an item.
    pub previous: Option<FileSpec>,
    /// The earlier versions with the sequence numbers of their changes, oldest first: what a
    /// client that last looked at some point saw (Dropbox reports a move at the old path).
    pub versions: Vec<(u64, FileSpec)>,
}

/// A Google shared drive, as one user sees it: whether the user is a member now, and the
/// change that made it so (Drive's changes feed reports it as a `drive` change).
#[derive(Clone, Debug)]
pub(crate) struct SharedDrive {
    pub name: String,
    pub member: bool,
    pub seq: u64,
    pub changed_at: DateTime<Utc>,
}

/// A SharePoint site (Graph's `site`) and its document libraries (drive id → name); a library
/// deleted from the site is gone from `GET /sites/{id}/drives` and from `/drives/{id}`.
#[derive(Clone, Debug, Default)]
pub(crate) struct GraphSite {
    pub name: String,
    pub libraries: BTreeMap<String, String>,
}

impl State {
    /// The site holding the document library `drive_id`, if the library exists.
    pub(crate) fn library_site(&self, drive_id: &str) -> Option<&str> {
        self.graph_sites
            .iter()
            .find(|(_, site)| site.libraries.contains_key(drive_id))
            .map(|(id, _)| id.as_str())
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Drive {
    /// Ordered by id, which is the listing order of both fakes.
    pub files: BTreeMap<String, File>,
    /// Google: the shared drives the user is or was a member of, by id.
    pub shared_drives: BTreeMap<String, SharedDrive>,
    /// The sequence number the next change gets.
    pub next_seq: u64,
    /// Numbers generated names (`file-00001.txt`).
    pub generated: u64,
}

impl Default for Drive {
    fn default() -> Drive {
        // Starts at 1 so that no page token is "0".
        Drive {
            files: BTreeMap::new(),
            shared_drives: BTreeMap::new(),
            next_seq: 1,
            generated: 0,
        }
    }
}

impl Drive {
    /// Records a change to the file with this id (creating it from `spec` if new). A file put
    /// in a shared drive the user has not joined makes the user a member of it first (named
    /// by its id), so tests that only place files need not manage membership.
    pub fn record(&mut self, spec: FileSpec, deleted: bool) {
        if let Some(drive) = &spec.drive_id {
            if !self.shared_drives.contains_key(drive) {
                self.set_membership(drive, drive, true);
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let earlier = self.files.remove(&spec.id);
        let previous = earlier.as_ref().map(|f| f.spec.clone());
        let versions = match earlier {
            None => Vec::new(),
            Some(mut file) => {
                file.versions.push((file.seq, file.spec));
                file.versions
            }
        };
        let file = File {
            spec,
            deleted,
            seq,
            changed_at: Utc::now(),
            previous,
            versions,
        };
        self.files.insert(file.spec.id.clone(), file);
    }

    /// The user joins (or leaves) the shared drive `id`, recorded as a change.
    pub fn set_membership(&mut self, id: &str, name: &str, member: bool) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let drive = SharedDrive {
            name: name.to_string(),
            member,
            seq,
            changed_at: Utc::now(),
        };
        self.shared_drives.insert(id.to_string(), drive);
    }

    /// Whether the user can open the shared drive `id` now.
    pub fn is_member(&self, id: &str) -> bool {
        self.shared_drives.get(id).is_some_and(|drive| drive.member)
    }

    /// The live items under a folder, at any depth, parents before their children.
    pub fn descendants(&self, folder: &str) -> Vec<FileSpec> {
        let mut found: Vec<FileSpec> = Vec::new();
        let mut parents = vec![folder.to_string()];
        while let Some(parent) = parents.pop() {
            let children = self
                .files
                .values()
                .filter(|f| !f.deleted && f.spec.parent.as_deref() == Some(parent.as_str()));
            for child in children {
                if found.iter().all(|f| f.id != child.spec.id) && child.spec.id != folder {
                    parents.push(child.spec.id.clone());
                    found.push(child.spec.clone());
                }
            }
        }
        found
    }

    /// The current version of a file that is not deleted; panics otherwise (a test mistake).
    pub fn live(&self, id: &str) -> FileSpec {
        match self.files.get(id) {
            Some(file) if !file.deleted => file.spec.clone(),
            _ => panic!("no file {id:?} in this drive"),
        }
    }
}

/// One consent: the tokens issued from it share its fate when it is revoked.
#[derive(Clone, Debug)]
pub(crate) struct Grant {
    pub provider: Provider,
    pub user: String,
    pub scope: String,
    pub revoked: bool,
}

pub(crate) struct AccessToken {
    pub grant: usize,
    pub expires_at: Instant,
    pub expired: bool,
}

pub(crate) struct RefreshToken {
    pub grant: usize,
    pub valid: bool,
    /// Refused with this until the user consents again (Microsoft).
    pub reauthorization: Option<Reauthorization>,
}

pub(crate) struct PendingCode {
    pub provider: Provider,
    pub user: String,
    pub redirect_uri: String,
    pub challenge: String,
    pub scope: String,
    /// Whether the exchange hands out a refresh token (Google: `access_type=offline`,
    /// Microsoft: the `offline_access` scope).
    pub offline: bool,
    pub issued_at: Instant,
}

pub(crate) struct Fault {
    pub path_prefix: String,
    pub status: u16,
    pub retry_after: Option<String>,
    pub remaining: usize,
    /// Drive's `errors[0].reason` (e.g. `userRateLimitExceeded`); `None`: the status's default.
    pub reason: Option<String>,
}

/// The next `remaining` requests of `method` whose path starts with `path_prefix` are held
/// for `delay` before they are answered (as usual).
pub(crate) struct Delay {
    pub method: String,
    pub path_prefix: String,
    pub delay: Duration,
    pub remaining: usize,
}

/// Requests held until they have all arrived (see `Handle::hold_together`).
pub(crate) struct Gate {
    pub method: String,
    pub path_prefix: String,
    pub count: usize,
    pub arrived: usize,
    pub together: std::sync::Arc<tokio::sync::Barrier>,
    /// How much longer each request waits than the one that arrived before it, once all
    /// have arrived: in flight together, answered in their order of arrival.
    pub stagger: Duration,
}

/// A Dropbox user's team space: the team's root namespace, which holds the team folders and,
/// as a folder at its top, the user's member folder (the user's home namespace). The files
/// of both are in the user's [`Drive`]; the member folder is one of its folders
/// (<https://developers.dropbox.com/dbx-team-files-guide>, "Team Spaces model").
#[derive(Clone, Debug)]
pub(crate) struct TeamSpace {
    pub team_id: String,
    pub team_name: String,
    /// `root_info.root_namespace_id`.
    pub root: String,
    /// The id of the member folder in the user's drive.
    pub member_folder: String,
}

#[derive(Default)]
pub(crate) struct State {
    pub base_url: String,
    pub drives: HashMap<(Provider, String), Drive>,
    pub emails: HashMap<(Provider, String), String>,
    pub next_identity: HashMap<Provider, String>,
    pub fresh_identities: bool,
    pub consents: u64,
    pub deny_next_consent: bool,
    /// The consent page is an HTML page with Allow and Deny instead of an instant redirect.
    pub interactive_consent: bool,
    pub authorize_queries: HashMap<Provider, HashMap<String, String>>,
    pub codes: HashMap<String, PendingCode>,
    /// Indexed by grant number.
    pub grants: Vec<Grant>,
    pub access_tokens: HashMap<String, AccessToken>,
    pub refresh_tokens: HashMap<String, RefreshToken>,
    pub issued: Vec<String>,
    pub revoked: Vec<String>,
    /// Path and query of every request, in arrival order.
    pub requests: Vec<String>,
    /// The headers of the latest requests (a thousand at least), with their path and query,
    /// in arrival order: what a client sent besides its body (the proxy's tests look for
    /// what must not pass).
    pub request_headers: Vec<(String, HeaderMap)>,
    /// The bytes of files uploaded through Drive's media upload, by file id.
    pub uploads: HashMap<String, Vec<u8>>,
    pub faults: Vec<Fault>,
    pub delays: Vec<Delay>,
    pub gates: Vec<Gate>,
    /// Graph links carry the epoch they were issued in; `expire_delta_links` moves it on.
    pub delta_epoch: u64,
    /// Drive `files.list` page tokens carry the epoch they were issued in;
    /// `expire_listing_tokens` moves it on.
    pub listing_epoch: u64,
    /// Scopes the provider's next consent grants at most (the user unticks the others).
    pub next_consent_grants: HashMap<Provider, String>,
    /// Google users who already gave this app an offline grant: Google issues their next
    /// refresh token only when the consent was asked again with `prompt=consent`.
    pub google_offline_users: std::collections::HashSet<String>,
    /// (user, item id) the next Graph delta page holding the item lists twice, stale first.
    pub delta_repeats: std::collections::HashSet<(String, String)>,
    /// Graph answers as for a work or school account (OneDrive for Business).
    pub graph_business: bool,
    /// Work or school users whose OneDrive is not provisioned (never opened, no license):
    /// Graph answers their drive calls 404 "User's mysite not found.".
    pub onedrive_unprovisioned: std::collections::HashSet<String>,
    /// Graph: SharePoint sites by id. Their libraries' contents are drives of their own, kept
    /// in `drives` under (Microsoft, the library's drive id).
    pub graph_sites: BTreeMap<String, GraphSite>,
    /// Graph: the sites each (work or school) user follows, by user.
    pub followed_sites: HashMap<String, std::collections::BTreeSet<String>>,
    pub graph_page_size: usize,
    /// The most entries a Dropbox `list_folder` page holds, whatever `limit` asks.
    pub dropbox_page_size: usize,
    /// Drive push channels (`changes.watch`), live or expired.
    pub channels: Vec<Channel>,
    /// Graph subscriptions, live or expired.
    pub subscriptions: Vec<Subscription>,
    /// The Dropbox app's webhook URI, once it passed verification.
    pub dropbox_webhook: Option<String>,
    /// Dropbox cursors carry the epoch they were issued in; `reset_cursors` moves it on.
    pub cursor_epoch: u64,
    /// Dropbox users whose team has a team space, by account id (`dropbox::team`).
    pub dropbox_team_spaces: HashMap<String, TeamSpace>,
    /// Team-space roots made so far: each new root namespace id is a new number.
    pub dropbox_roots_made: u64,
    pub drive_max_page_size: usize,
    pub token_lifetime: u64,
    pub latency: Duration,
    /// Makes generated file ids unique across all drives.
    pub file_counter: u64,
    /// Each Box user's files and folders, by user id.
    pub box_trees: HashMap<String, crate::box_com::tree::Tree>,
    /// The last Box file id and folder id given: two counters, so that a file and a folder
    /// may have the same id, as at Box.
    pub box_file_ids: u64,
    pub box_folder_ids: u64,
    /// The most entries a Box folder listing page and events page hold; `None`: as asked.
    pub box_page_sizes: Option<(usize, usize)>,
    /// Files' bytes and the pre-authenticated links issued to them (`downloads.rs`).
    pub downloads: crate::downloads::Downloads,
    /// Drive files' bytes and exports, and the files Drive refuses to give.
    pub google_bytes: crate::google::bytes::GoogleBytes,
}

pub(crate) type Shared = Arc<Mutex<State>>;

/// A panicking test thread must not wedge the server for the others.
pub(crate) fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn random_token(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

/// The `n`th fresh identity made from `user`: `<user>-<n>`, except that a Dropbox account id
/// keeps its fixed length of 40 characters (users.AccountId: `min_length=40, max_length=40`),
/// so the end of the default id gives way to `-<n>`.
fn fresh_id(provider: Provider, user: &str, n: u64) -> String {
    let suffix = format!("-{n}");
    match provider {
        Provider::Dropbox => {
            let keep = user.len().saturating_sub(suffix.len());
            format!("{}{suffix}", &user[..keep])
        }
        Provider::Google | Provider::Microsoft | Provider::Box => format!("{user}{suffix}"),
    }
}

impl State {
    pub fn new(base_url: String) -> State {
        let mut state = State {
            base_url,
            graph_page_size: 200,
            drive_max_page_size: 1000,
            dropbox_page_size: 500,
            token_lifetime: 3600,
            ..State::default()
        };
        state.set_identity(Provider::Google, DEFAULT_GOOGLE_USER, DEFAULT_GOOGLE_EMAIL);
        state.set_identity(
            Provider::Microsoft,
            DEFAULT_MICROSOFT_USER,
            DEFAULT_MICROSOFT_EMAIL,
        );
        state.set_identity(
            Provider::Dropbox,
            DEFAULT_DROPBOX_USER,
            DEFAULT_DROPBOX_EMAIL,
        );
        state.set_identity(Provider::Box, DEFAULT_BOX_USER, DEFAULT_BOX_EMAIL);
        state
    }

    /// The Box user's tree (a root folder alone at first).
    pub fn box_tree(&mut self, user: &str) -> &mut crate::box_com::tree::Tree {
        self.box_trees.entry(user.to_string()).or_default()
    }

    pub fn set_identity(&mut self, provider: Provider, user: &str, email: &str) {
        // Dropbox's `users.FullAccount` (its Stone validators) wants 40-character account ids:
        // a shorter one would be an answer the real service never gives.
        assert!(
            provider != Provider::Dropbox || (user.starts_with("dbid:") && user.len() == 40),
            "a Dropbox account id is `dbid:` and 35 more characters, not {user:?}"
        );
        self.emails
            .insert((provider, user.to_string()), email.to_string());
        self.next_identity.insert(provider, user.to_string());
        self.drive(provider, user);
    }

    pub fn email(&self, provider: Provider, user: &str) -> String {
        self.emails
            .get(&(provider, user.to_string()))
            .cloned()
            .unwrap_or_else(|| format!("{user}@example.com"))
    }

    pub fn drive(&mut self, provider: Provider, user: &str) -> &mut Drive {
        self.drives.entry((provider, user.to_string())).or_default()
    }

    /// Who the consent now under way logs in as. With fresh identities every consent is a new
    /// user whose drive starts as a copy of the configured user's, so load tests can seed once.
    pub fn consenting_user(&mut self, provider: Provider) -> String {
        self.consents += 1;
        let user = self.next_identity[&provider].clone();
        if !self.fresh_identities {
            return user;
        }
        let fresh = fresh_id(provider, &user, self.consents);
        let email = format!("user{}@example.com", self.consents);
        let drive = self.drive(provider, &user).clone();
        self.emails.insert((provider, fresh.clone()), email);
        self.drives.insert((provider, fresh.clone()), drive);
        if provider == Provider::Box {
            let tree = self.box_tree(&user).clone();
            self.box_trees.insert(fresh.clone(), tree);
        }
        fresh
    }

    /// Adds `n` generated plain-text files; returns their ids.
    pub fn add_files(&mut self, provider: Provider, user: &str, n: usize) -> Vec<String> {
        if provider == Provider::Box {
            return (0..n)
                .map(|_| {
                    let tree = self.box_tree(user);
                    let number = tree.items.len();
                    let name = format!("file-{number:05}.txt");
                    self.box_add(user, crate::BoxKind::File, &name, crate::BOX_ROOT_ID)
                })
                .collect();
        }
        let mut ids = Vec::with_capacity(n);
        for _ in 0..n {
            self.file_counter += 1;
            let id = match provider {
                Provider::Google => format!("gfile{:08}", self.file_counter),
                Provider::Microsoft => format!("MSFILE!{:08}", self.file_counter),
                Provider::Dropbox => format!("id:dbfile{:08}", self.file_counter),
                Provider::Box => unreachable!("Box files are added to its tree above"),
            };
            let drive = self.drive(provider, user);
            drive.generated += 1;
            let number = drive.generated;
            let mut spec = FileSpec::new(id.clone(), format!("file-{number:05}.txt"));
            spec.size = Some(1000 + number);
            spec.modified_time += chrono::Duration::minutes(number as i64);
            drive.record(spec, false);
            ids.push(id);
        }
        ids
    }

    pub fn new_grant(&mut self, provider: Provider, user: &str, scope: &str) -> usize {
        self.grants.push(Grant {
            provider,
            user: user.to_string(),
            scope: scope.to_string(),
            revoked: false,
        });
        self.grants.len() - 1
    }

    pub fn issue_access_token(&mut self, grant: usize) -> String {
        let token = random_token(match self.grants[grant].provider {
            Provider::Google => "gat-",
            Provider::Microsoft => "mat-",
            // Dropbox's short-lived tokens start with `sl.`.
            Provider::Dropbox => "sl.u.",
            Provider::Box => "box-at-",
        });
        let lifetime = Duration::from_secs(self.token_lifetime);
        self.access_tokens.insert(
            token.clone(),
            AccessToken {
                grant,
                expires_at: Instant::now() + lifetime,
                expired: false,
            },
        );
        self.issued.push(token.clone());
        token
    }

    pub fn issue_refresh_token(&mut self, grant: usize) -> String {
        let token = random_token(match self.grants[grant].provider {
            Provider::Google => "grt-",
            Provider::Microsoft => "mrt-",
            Provider::Dropbox => "dbrt-",
            Provider::Box => "box-rt-",
        });
        self.refresh_tokens.insert(
            token.clone(),
            RefreshToken {
                grant,
                valid: true,
                reauthorization: None,
            },
        );
        self.issued.push(token.clone());
        token
    }

    /// The grant behind the request's bearer token, if it is a live access token of this
    /// provider; `None` means 401.
    pub fn authenticate(&self, provider: Provider, headers: &HeaderMap) -> Option<Grant> {
        let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let access = self.access_tokens.get(token.trim())?;
        let grant = &self.grants[access.grant];
        let live = !access.expired && access.expires_at > Instant::now() && !grant.revoked;
        (live && grant.provider == provider).then(|| grant.clone())
    }
}

// ------------------------------------------------------------ push records
// Kept here with the rest of what the stand-ins remember; `push.rs` serves them.

/// A Drive push channel (`changes.watch`).
pub(crate) struct Channel {
    pub id: String,
    pub resource_id: String,
    pub resource_uri: String,
    pub token: Option<String>,
    pub address: String,
    pub expiration: DateTime<Utc>,
    pub user: String,
    /// The last `X-Goog-Message-Number` sent (the `sync` message is 1).
    pub message_number: u64,
}

/// A Graph subscription.
#[derive(Clone)]
pub(crate) struct Subscription {
    pub id: String,
    pub user: String,
    pub change_type: String,
    pub resource: String,
    pub notification_url: String,
    pub lifecycle_url: Option<String>,
    pub expiration: DateTime<Utc>,
    pub client_state: Option<String>,
}
