//! [`Handle`]'s controls of what the stand-ins issued: access and refresh tokens, Graph's
//! delta links, Drive's listing tokens, Dropbox's cursors, granted scopes, token lifetimes.

use super::Handle;
use crate::state::{Provider, Reauthorization};

impl Handle {
    /// Every access token issued so far now answers 401.
    pub fn expire_access_tokens(&self) {
        self.with(|s| s.access_tokens.values_mut().for_each(|t| t.expired = true))
    }

    /// The provider's refresh tokens issued so far are refused with `invalid_grant`.
    pub fn revoke_refresh_tokens(&self, provider: impl Into<Provider>) {
        let provider = provider.into();
        self.with(|s| {
            let grants = &s.grants;
            s.refresh_tokens
                .values_mut()
                .filter(|t| grants[t.grant].provider == provider)
                .for_each(|t| t.valid = false)
        })
    }

    /// Graph links (next and delta) issued so far answer 410 Gone with `resyncRequired`
    /// (inner code `resyncChangesApplyDifferences`) and a `Location` to enumerate afresh.
    pub fn expire_delta_links(&self) {
        self.with(|s| s.delta_epoch += 1)
    }

    /// Drive `files.list` page tokens issued so far are refused with 400 `invalid` on
    /// `pageToken`, as a stale listing token is; `changes` page tokens are not affected.
    pub fn expire_listing_tokens(&self) {
        self.with(|s| s.listing_epoch += 1)
    }

    /// Dropbox cursors issued so far answer 409 `reset` (`error_summary` `reset/...`): the
    /// client must list the folder afresh.
    pub fn reset_cursors(&self) {
        self.with(|s| s.cursor_epoch += 1)
    }

    /// The user withdraws, at the provider, every scope of its grants to the app but `keep`
    /// (space-separated): the grants still refresh, but every API call then answers as the
    /// provider does without the scope (Drive 403 `insufficientPermissions`, Graph 403
    /// `accessDenied`, Dropbox 401 `missing_scope`).
    pub fn withdraw_scopes(&self, provider: impl Into<Provider>, keep: &str) {
        let provider = provider.into();
        self.with(|s| {
            for grant in s.grants.iter_mut().filter(|g| g.provider == provider) {
                grant.scope = grant
                    .scope
                    .split_whitespace()
                    .filter(|scope| keep.split_whitespace().any(|kept| kept == *scope))
                    .collect::<Vec<_>>()
                    .join(" ");
            }
        })
    }

    /// The provider's next consent grants only those of the requested scopes that are in
    /// `scopes` (space-separated), as when the user unticks Google's Drive box; the token
    /// answer's `scope` says what was granted.
    pub fn grant_only_on_next_consent(&self, provider: impl Into<Provider>, scopes: &str) {
        let provider = provider.into();
        self.with(|s| s.next_consent_grants.insert(provider, scopes.to_string()));
    }

    /// Microsoft refresh tokens issued so far are refused with `interaction_required` or
    /// `consent_required` until the user consents again (a new consent gets working tokens).
    pub fn require_reauthorization(&self, reason: Reauthorization) {
        self.with(|s| {
            let grants = &s.grants;
            s.refresh_tokens
                .values_mut()
                .filter(|t| grants[t.grant].provider == Provider::Microsoft)
                .for_each(|t| t.reauthorization = Some(reason))
        })
    }

    /// The next Graph delta page holding this item of `user` lists it twice: its previous
    /// version first, then the current one (clients must keep the last occurrence).
    pub fn repeat_in_next_delta_page(&self, user: &str, id: &str) {
        self.with(|s| {
            s.delta_repeats.insert((user.to_string(), id.to_string()));
        })
    }

    /// `user`'s OneDrive is not provisioned (`provisioned` false) or is again: its drive
    /// calls answer 404 "User's mysite not found." meanwhile.
    pub fn set_onedrive_provisioned(&self, user: &str, provisioned: bool) {
        self.with(|s| match provisioned {
            true => s.onedrive_unprovisioned.remove(user),
            false => s.onedrive_unprovisioned.insert(user.to_string()),
        });
    }

    /// Graph answers as a work or school account: `driveType` `business`, `quickXorHash` and
    /// the unsupported `sha256Hash` (no `sha1Hash`), and delta rounds also return the changed
    /// items' parent folders.
    pub fn set_graph_business(&self, business: bool) {
        self.with(|s| s.graph_business = business)
    }

    /// `expires_in` of token answers from now on, and how long those access tokens work.
    pub fn set_access_token_lifetime(&self, seconds: u64) {
        self.with(|s| s.token_lifetime = seconds)
    }
}
