//! Cloud-drive providers behind one trait.
//!
//! The registry, `/config`, the connect page, login, the sync fan-out, the webhook route and
//! the worker read each provider's declarations and name no provider themselves. So, in this
//! crate, adding a provider (Box, say) is a new module here and two lines in this file (its
//! `pub mod` and its entry in [`PROVIDERS`]), plus the provider lists in this file's unit
//! tests. The module implements [`Connector`] (identity, one page of files; the push methods
//! if it pushes), declares its [`ProviderSpec`] (name, display name, client variables,
//! whether `source_type=both` takes it, how its webhook is read, its answer classifier, and
//! the constructor that reads its endpoint variables) and its [`oauth::OAuthEndpoints`]
//! (scopes, required scopes, revocation style, extra consent parameters).
//!
//! That holds only while the provider fits what the hub already knows: a revocation style of
//! [`oauth::Revocation`], a [`Webhook`] kind, deletions reported by id (tombstones) or by path
//! ([`RemovedPath`]). One that does not needs code outside its module, as Dropbox's removals by
//! path needed the page, the store, the worker and DynamoDB's `by-path` index.
//!
//! Outside this crate a provider also needs: its client variables in the functions'
//! environment and its redirect URI among the outputs of `template.yaml`
//! (`shared/tests/template.rs` fails without the variables), its name in the `ProviderName`
//! and `source_type` enums of `docs/openapi.yaml`, a stand-in in `testkit/` to test it
//! against, its variables in `.env.example` and in `scripts/dev`'s demo, and its place in
//! docs/API.md, the README and docs/DEPLOY.md.

pub mod answers;
pub mod box_com;
pub mod content;
pub mod dropbox;
pub mod google;
pub mod http;
pub mod oauth;
pub mod onedrive;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use secrecy::SecretString;

use crate::config::{Config, Env};
use crate::error::{HubError, HubResult, ProviderError};
use crate::model::{
    ContentFormat, ContentSource, DriveReport, FileEntry, Identity, PathRemoval, PushChannel,
    StreamSource,
};
use answers::{AnswerClassifier, Endpoint};
use content::{ByteRange, ContentRefusal, ContentStream};
use http::ProviderHttp;
use oauth::OAuthApp;

/// One page of a drive listing and where to go next.
///
/// A provider says "this id is gone" with a deleted entry in `files` (a tombstone: Google,
/// Graph) and "everything under this path is gone" with a [`RemovedPath`] (Dropbox, whose
/// deletions carry no id). The worker applies both in the page's order.
///
/// An entry's `drive_id` is the provider's drive of the item where it names one (`None`
/// otherwise); the worker makes it the id of one of the account's drives (`crate::drives`).
#[derive(Clone, Debug, PartialEq)]
pub struct FilePage {
    pub files: Vec<FileEntry>,
    /// Paths removed at the provider, each at its place among `files`.
    pub removed_paths: Vec<RemovedPath>,
    /// What the page says of the account's drives: every connector reports them all on the
    /// first page of an enumeration, and the changes it reads of them after.
    pub drives: Option<DriveReport>,
    pub next: NextPage,
}

impl FilePage {
    /// Whether the page changes nothing: no entry, no tombstone, no removal by path, no news
    /// of a drive.
    pub fn changes_nothing(&self) -> bool {
        self.files.is_empty() && self.removed_paths.is_empty() && self.drives.is_none()
    }

    /// A page of entries and tombstones only, without removals by path or news of drives.
    pub fn of_files(files: Vec<FileEntry>, next: NextPage) -> Self {
        FilePage {
            files,
            removed_paths: Vec::new(),
            drives: None,
            next,
        }
    }

    /// The same page, with what it says of the account's drives.
    pub fn with_drives(self, drives: DriveReport) -> Self {
        FilePage {
            drives: Some(drives),
            ..self
        }
    }
}

/// A removal by path at its place in a page: "the entry at this path, and everything under
/// it, is gone", or "what else was at this path is replaced" ([`PathRemoval`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemovedPath {
    pub removal: PathRemoval,
    /// Its place in the page: it applies after `files[..before]` and before
    /// `files[before..]`, so an entry re-created at the same path later in the page stays.
    pub before: usize,
}

/// The opaque cursor after a page. The worker stores it only after the page's files are
/// stored, so a sync killed half-way resumes from the last stored page and misses nothing.
#[derive(Clone, Debug, PartialEq)]
pub enum NextPage {
    /// More pages of this sync: call again with this cursor.
    More(String),
    /// This sync is complete; the next sync asks for changes since this cursor.
    Done(String),
}

impl NextPage {
    pub fn cursor(&self) -> &str {
        match self {
            NextPage::More(cursor) | NextPage::Done(cursor) => cursor,
        }
    }

    /// The next page from a provider's "next link / done link" pair (Drive's `nextPageToken`
    /// and `newStartPageToken`, Graph's `@odata.nextLink` and `@odata.deltaLink`): more pages
    /// while there is a next link, done at the done link. An answer with neither is refused;
    /// `names` names the two fields for the message.
    pub fn from_links(
        more: Option<String>,
        done: Option<String>,
        names: &str,
    ) -> Result<Self, ProviderError> {
        match (more, done) {
            (Some(more), _) => Ok(NextPage::More(more)),
            (None, Some(done)) => Ok(NextPage::Done(done)),
            (None, None) => Err(ProviderError::Rejected(format!(
                "the provider answered with neither {names}"
            ))),
        }
    }
}

/// A webhook body names at most this many notifications (docs/API.md, "Push notifications";
/// Graph's `value[]` items, Dropbox's `list_folder.accounts`); more is 400 `invalid_request`,
/// refused before any lookup. The public route's work per request is bounded by this, not by
/// what a sender chooses to put in. Here, under both, because each connector counts while it
/// reads and [`crate::push`] turns the count into the refusal.
pub const MAX_NOTICES: usize = 100;

/// Why a provider's push notification is not taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushRefusal {
    /// The provider sends no such notification.
    Unsupported,
    /// Its signature or secret does not match: a forgery, or meant for another app.
    Forged,
    /// Authentic, but not in the shape the provider documents.
    Malformed(String),
    /// It names more notifications (items, accounts) than one body may:
    /// [`MAX_NOTICES`]. The count it names.
    TooMany(usize),
}

/// How a provider tells the hub of changes (docs/API.md, "Push notifications").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushStyle {
    /// The hub takes no push notifications from it.
    Unsupported,
    /// One app-wide webhook, set in the provider's console (Dropbox): nothing to subscribe.
    AppWide,
    /// A channel per account, opened and renewed by the worker (Google Drive).
    Channels,
}

/// What opening a push channel needs.
pub struct ChannelRequest<'a> {
    /// The channel's id, picked by the hub.
    pub id: &'a str,
    /// Where the provider sends notifications: `{HUB_PUBLIC_URL}/webhooks/{provider}`.
    pub address: &'a str,
    /// The channel's secret, which every notification carries back.
    pub secret: &'a SecretString,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    /// The account's cursor after its sync: where the provider starts watching.
    pub cursor: Option<&'a str>,
}

/// A channel as the provider opened it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenedChannel {
    /// What stopping it takes besides its id (Drive's `resourceId`).
    pub resource_id: String,
    /// When it ends, as the provider set it (it may cut what was asked).
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// One item of a notification for a subscription (Graph's `value[]`), as the provider's
/// module read it; [`crate::push`] checks it against the stored channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionNotice {
    /// The provider's id of the subscription.
    pub subscription_id: String,
    /// The secret it carries back (Graph's `clientState`).
    pub secret: Option<String>,
    pub event: NoticeEvent,
}

/// What a subscription notice says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoticeEvent {
    /// Something changed: sync.
    Changed,
    /// Renew the subscription, or it ends (Graph `reauthorizationRequired`).
    RenewalRequired,
    /// The provider ended the subscription: make a new one (Graph `subscriptionRemoved`).
    Removed,
    /// Notifications were lost: sync (Graph `missed`).
    Missed,
}

/// A provider's name in routes, jobs and records (`google`, `onedrive`, `dropbox`): only the
/// names a module declares in its [`ProviderSpec`], so a string from a request becomes one
/// through [`ProviderName::known`], and an account id or an owner cannot be passed for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProviderName(&'static str);

impl ProviderName {
    /// For a provider module's own `NAME`; everything else goes through [`Self::known`].
    pub const fn declare(name: &'static str) -> Self {
        ProviderName(name)
    }

    /// The registered provider of this name, configured or not.
    pub fn known(name: &str) -> Option<Self> {
        PROVIDERS
            .iter()
            .map(|spec| spec.name)
            .find(|known| known.0 == name)
    }

    pub fn as_str(self) -> &'static str {
        self.0
    }

    /// Its registration.
    pub fn spec(self) -> &'static ProviderSpec {
        PROVIDERS
            .iter()
            .find(|spec| spec.name == self)
            .expect("a ProviderName is only made from a registered spec")
    }
}

impl std::fmt::Display for ProviderName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl AsRef<str> for ProviderName {
    fn as_ref(&self) -> &str {
        self.0
    }
}

impl PartialEq<str> for ProviderName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for ProviderName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl serde::Serialize for ProviderName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0)
    }
}

/// How a provider's notifications reach `GET|POST /webhooks/{provider}`: the names of the
/// fields the web layer reads, so that it dispatches on the kind of webhook, never on the
/// provider's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Webhook {
    /// The provider sends none: the route is a 404 for it.
    None,
    /// One body for every account of the app, signed with the app's secret (Dropbox): the
    /// address is verified by echoing the `challenge` query parameter on `GET`, and a
    /// notification's signature is in `signature_header`
    /// ([`Connector::app_notification`]).
    AppSigned {
        challenge_param: &'static str,
        signature_header: &'static str,
    },
    /// A channel message in headers and no body (Drive): the channel id, its secret, and the
    /// resource state whose value `handshake_state` marks the message sent when it opens.
    ChannelHeaders {
        id_header: &'static str,
        token_header: &'static str,
        state_header: &'static str,
        handshake_state: &'static str,
    },
    /// Subscription notices in the body ([`Connector::subscription_notices`]); the address
    /// is validated by echoing `validation_param`, on `GET` or `POST` (Graph).
    Subscriptions { validation_param: &'static str },
}

/// A cloud-drive provider. Its OAuth2 half (consent URL, code exchange, refresh,
/// revocation) is [`Connector::oauth`].
#[async_trait]
pub trait Connector: Send + Sync {
    /// The provider's name in routes, jobs and records.
    fn name(&self) -> ProviderName;

    /// The OAuth2 client (consent URL, code exchange, refresh, revocation).
    fn oauth(&self) -> &OAuthApp;

    /// The configured base of the provider's API, without a trailing slash: what the proxy
    /// sends a request's path under (docs/API.md, "Proxy"). Only this base: a provider with
    /// another host besides (Dropbox's content host) is proxied on this one alone.
    fn api_base(&self) -> &str;

    /// Who owns the access token.
    async fn identity(&self, access_token: &SecretString) -> Result<Identity, ProviderError>;

    /// One page of files. `None` starts a full enumeration; a cursor from a previous
    /// [`FilePage::next`] continues it, or asks for changes since a finished sync.
    async fn list_page(
        &self,
        access_token: &SecretString,
        cursor: Option<&str>,
    ) -> Result<FilePage, ProviderError>;

    /// Where the bytes of `file` (an entry of the account's index, not deleted) are: in
    /// `format`, or its own bytes without one (docs/API.md, "File content"). A link of the
    /// provider's own where one exists; else what the hub's content function needs to
    /// stream them through [`Connector::open_content`].
    async fn content(
        &self,
        access_token: &SecretString,
        file: &FileEntry,
        format: Option<ContentFormat>,
    ) -> Result<ContentSource, ContentRefusal>;

    /// At most `limit` of the files the provider's own search finds for `query` over names
    /// and content (docs/API.md, "Search"), converted as the listing converts its items, so
    /// that a hit looks exactly like the index's entry of the same file.
    async fn search(
        &self,
        access_token: &SecretString,
        query: &str,
        limit: usize,
    ) -> Result<Vec<FileEntry>, ProviderError>;

    /// Opens the bytes of a source this connector answered [`ContentSource::Streamed`]
    /// with: the whole, or one `range` of a [`StreamSource::rangeable`] file. The request
    /// sets [`http::STREAM_TIMEOUT`] as its timeout (the client's default would cut a long
    /// download); the caller ends the stream at its deadline.
    async fn open_content(
        &self,
        access_token: &SecretString,
        source: &StreamSource,
        range: Option<ByteRange>,
    ) -> Result<ContentStream, ContentRefusal> {
        let _ = (access_token, source, range);
        Err(ContentRefusal::Provider(ProviderError::Rejected(format!(
            "{} gives a link of its own for every file; the hub streams none",
            self.name()
        ))))
    }

    /// Checks an app-wide push notification (one body for every account of the app, signed
    /// with the app's secret: Dropbox's webhook) over its raw body, before reading it, and
    /// returns the provider identities it names. Providers without one refuse it as
    /// unsupported.
    fn app_notification(
        &self,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<Vec<String>, PushRefusal> {
        let _ = (signature, body);
        Err(PushRefusal::Unsupported)
    }

    /// How the provider pushes changes.
    fn push_style(&self) -> PushStyle {
        PushStyle::Unsupported
    }

    /// The scopes of which a grant must hold one for the provider to open a channel on it
    /// (for [`PushStyle::Channels`]); none when any grant can. An account without one is kept
    /// fresh by polling alone.
    fn channel_scopes(&self) -> &'static [&'static str] {
        &[]
    }

    /// The longest a channel may live (for [`PushStyle::Channels`]).
    fn channel_lifetime(&self) -> chrono::Duration {
        chrono::Duration::zero()
    }

    /// Opens a push channel for the account of `access_token` (for [`PushStyle::Channels`]).
    async fn open_channel(
        &self,
        access_token: &SecretString,
        request: &ChannelRequest<'_>,
    ) -> Result<OpenedChannel, ProviderError> {
        let _ = (access_token, request);
        Err(ProviderError::Rejected(format!(
            "{} has no per-account push channels",
            self.name()
        )))
    }

    /// Extends a live channel in place until `expires_at`, returning its new end; `Ok(None)`
    /// when the provider cannot (Drive), so that a new channel replaces it.
    async fn renew_channel(
        &self,
        access_token: &SecretString,
        channel: &PushChannel,
        expires_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, ProviderError> {
        let _ = (access_token, channel, expires_at);
        Ok(None)
    }

    /// Reads a notification body for subscriptions (Graph's `{"value": [...]}`); providers
    /// without one refuse it as unsupported.
    fn subscription_notices(&self, body: &[u8]) -> Result<Vec<SubscriptionNotice>, PushRefusal> {
        let _ = body;
        Err(PushRefusal::Unsupported)
    }

    /// Stops a channel; one the provider no longer knows counts as stopped.
    async fn close_channel(
        &self,
        access_token: &SecretString,
        channel: &PushChannel,
    ) -> Result<(), ProviderError> {
        let _ = (access_token, channel);
        Ok(())
    }
}

/// What every connector is built from once its provider is configured.
pub struct ProviderClient {
    pub name: ProviderName,
    pub client_id: String,
    pub client_secret: SecretString,
    pub redirect_uri: String,
    /// The scopes an operator asks beside the hub's own (the provider's
    /// [`ProviderSpec::scopes_var`]), so that an app can proxy what it needs.
    pub extra_scopes: Vec<String>,
    /// The shared HTTP client, bound to the provider's classifier.
    pub http: ProviderHttp,
}

/// What the registry needs of a provider module.
pub struct ProviderSpec {
    pub name: ProviderName,
    /// The name a person knows the provider by (the connect page's links).
    pub display_name: &'static str,
    /// Whether `source_type=both` takes it: `both` names the two providers of the first
    /// version (Google and OneDrive), whose clients send it; a later provider stays out.
    pub in_both: bool,
    /// How its notifications reach the webhook route.
    pub webhook: Webhook,
    /// The variables holding the OAuth client id and secret; the provider is configured when
    /// both are set (docs/API.md, "Configuration").
    pub client_id_var: &'static str,
    pub client_secret_var: &'static str,
    /// The variable holding extra scopes to ask at consent, space-separated (docs/API.md,
    /// "Proxy").
    pub scopes_var: &'static str,
    /// How the provider's refusals are read.
    pub answers: &'static dyn AnswerClassifier,
    /// Builds the connector (reading the provider's endpoint variables).
    pub build: fn(&Env, ProviderClient) -> HubResult<Arc<dyn Connector>>,
}

impl ProviderSpec {
    /// The provider's connector, or `None` when its client id or secret is not set.
    fn connector_from_env(
        &self,
        env: &Env,
        config: &Config,
        http: &ProviderHttp,
    ) -> HubResult<Option<Arc<dyn Connector>>> {
        let (Some(client_id), Some(client_secret)) =
            (env.get(self.client_id_var), env.get(self.client_secret_var))
        else {
            return Ok(None);
        };
        let client = ProviderClient {
            name: self.name,
            client_id,
            client_secret: SecretString::from(client_secret),
            redirect_uri: config.redirect_uri(self.name.as_str()),
            extra_scopes: env
                .get(self.scopes_var)
                .map(|scopes| scopes.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default(),
            http: http.answering_with(self.answers),
        };
        (self.build)(env, client).map(Some)
    }
}

/// Every provider the hub knows. Register a new one here.
pub const PROVIDERS: &[ProviderSpec] =
    &[google::SPEC, onedrive::SPEC, dropbox::SPEC, box_com::SPEC];

/// The configured connectors, by name.
#[derive(Clone)]
pub struct Registry {
    configured: BTreeMap<ProviderName, Arc<dyn Connector>>,
}

impl Registry {
    pub fn from_env(env: &Env, config: &Config, http: &ProviderHttp) -> HubResult<Self> {
        let mut configured = BTreeMap::new();
        for spec in PROVIDERS {
            if let Some(connector) = spec.connector_from_env(env, config, http)? {
                configured.insert(spec.name, connector);
            }
        }
        Ok(Registry { configured })
    }

    /// Whether the hub knows this provider at all, configured or not.
    pub fn is_known(name: &str) -> bool {
        ProviderName::known(name).is_some()
    }

    /// The configured connector of this name (auth routes, account management, webhooks):
    /// `unknown_provider`, or `provider_not_configured` as a 404.
    pub fn get(&self, name: &str) -> HubResult<Arc<dyn Connector>> {
        self.configured(name, false)
    }

    /// The connector for a sync: `unknown_provider`, or `provider_not_configured` as a 400.
    pub fn for_sync(&self, name: &str) -> HubResult<Arc<dyn Connector>> {
        self.configured(name, true)
    }

    fn configured(&self, name: &str, for_sync: bool) -> HubResult<Arc<dyn Connector>> {
        let known = ProviderName::known(name);
        if let Some(connector) = known.and_then(|known| self.configured.get(&known)) {
            return Ok(connector.clone());
        }
        if known.is_some() {
            Err(HubError::ProviderNotConfigured {
                provider: name.to_string(),
                for_sync,
            })
        } else {
            Err(HubError::UnknownProvider(name.to_string()))
        }
    }

    /// Configured provider names, in registration order.
    pub fn configured_names(&self) -> Vec<ProviderName> {
        self.configured_specs().map(|spec| spec.name).collect()
    }

    /// Configured providers' registrations, in registration order.
    pub fn configured_specs(&self) -> impl Iterator<Item = &'static ProviderSpec> + '_ {
        PROVIDERS
            .iter()
            .filter(|spec| self.configured.contains_key(&spec.name))
    }
}

/// GETs a provider API URL with a bearer token and decodes the JSON answer.
pub(crate) async fn get_json<T: serde::de::DeserializeOwned>(
    http: &ProviderHttp,
    url: &str,
    query: &[(&str, &str)],
    access_token: &SecretString,
) -> Result<T, ProviderError> {
    use secrecy::ExposeSecret;
    let response = http
        .send(Endpoint::Api, |client| {
            client
                .get(url)
                .query(query)
                .bearer_auth(access_token.expose_secret())
        })
        .await?;
    http::read_json(response, "the provider").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_known_only_when_a_module_registers_it() {
        for spec in PROVIDERS {
            let name = ProviderName::known(spec.name.as_str()).unwrap();
            assert_eq!(name, spec.name);
            // `PROVIDERS` is a constant, so its entries have no one address: compare what
            // the spec declares.
            assert_eq!(name.spec().name, spec.name);
            assert_eq!(name.spec().display_name, spec.display_name);
            assert_eq!(serde_json::to_value(name).unwrap(), spec.name.as_str());
        }
        for unknown in ["", "Box", "Google", "google ", "acc-1"] {
            assert_eq!(ProviderName::known(unknown), None, "{unknown:?}");
        }
    }

    #[test]
    fn names_are_unique_and_each_module_declares_its_own() {
        let mut names: Vec<&str> = PROVIDERS.iter().map(|spec| spec.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), PROVIDERS.len());
        assert_eq!(google::SPEC.name, google::NAME);
        assert_eq!(onedrive::SPEC.name, onedrive::NAME);
        assert_eq!(dropbox::SPEC.name, dropbox::NAME);
        assert_eq!(box_com::SPEC.name, box_com::NAME);
    }

    /// What the fan-out, the connect page and the webhook route used to hard-code, now each
    /// module's declaration: unchanged.
    #[test]
    fn declarations_keep_what_the_hub_did_before() {
        let both: Vec<&str> = PROVIDERS
            .iter()
            .filter(|spec| spec.in_both)
            .map(|spec| spec.name.as_str())
            .collect();
        assert_eq!(both, ["google", "onedrive"]);
        let displayed: Vec<&str> = PROVIDERS.iter().map(|spec| spec.display_name).collect();
        assert_eq!(
            displayed,
            ["Google Drive", "Microsoft OneDrive", "Dropbox", "Box"]
        );
        assert!(matches!(
            google::SPEC.webhook,
            Webhook::ChannelHeaders { .. }
        ));
        assert!(matches!(
            onedrive::SPEC.webhook,
            Webhook::Subscriptions { .. }
        ));
        assert!(matches!(dropbox::SPEC.webhook, Webhook::AppSigned { .. }));
        assert_eq!(box_com::SPEC.webhook, Webhook::None);
    }
}
