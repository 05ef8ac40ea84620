//! What [`Handle`] tells a test about what happened: requests counted, tokens issued and
//! revoked, the latest authorization requests.

use std::collections::HashMap;

use super::Handle;
use crate::state::Provider;

impl Handle {
    /// How many requests had a path (and query, as sent) starting with `path_prefix`.
    pub fn requests(&self, path_prefix: &str) -> usize {
        self.with(|s| {
            let matching = s.requests.iter().filter(|r| r.starts_with(path_prefix));
            matching.count()
        })
    }

    /// The headers of every request whose path (and query, as sent) starts with
    /// `path_prefix`, in arrival order.
    pub fn request_headers(&self, path_prefix: &str) -> Vec<axum::http::HeaderMap> {
        self.with(|s| {
            let matching = s.request_headers.iter();
            matching
                .filter(|(uri, _)| uri.starts_with(path_prefix))
                .map(|(_, headers)| headers.clone())
                .collect()
        })
    }

    /// Every authorization code, access and refresh token handed out, to look for leaks.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.with(|s| s.issued.clone())
    }

    /// The tokens Google's revocation endpoint and Dropbox's `auth/token/revoke` accepted.
    pub fn revoked_tokens(&self) -> Vec<String> {
        self.with(|s| s.revoked.clone())
    }

    /// How many revocations were accepted.
    pub fn revocations(&self) -> usize {
        self.with(|s| s.revoked.len())
    }

    /// The query of the provider's latest authorization request, decoded.
    pub fn last_authorize_query(
        &self,
        provider: impl Into<Provider>,
    ) -> Option<HashMap<String, String>> {
        let provider = provider.into();
        self.with(|s| s.authorize_queries.get(&provider).cloned())
    }
}
