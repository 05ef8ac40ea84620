//! `GET /users/{id}/search` (docs/API.md, "Search"): the provider's own search over names
//! and content, asked live with the account's token (refreshed once on a 401, as the sync
//! does), its hits answered as the index's entries would be: the connector converts them
//! as its listing does, and each is named by one of the account's drives as a synced page's
//! entries are ([`crate::drives::attribute`]).

use serde::Serialize;

use crate::deadline::Deadline;
use crate::drives;
use crate::error::{HubError, HubResult};
use crate::hub::Hub;
use crate::model::FileEntry;
use crate::sync::Credentials;

/// The most hits one search answers, and how many when the app names no `limit`.
pub const MAX_SEARCH_LIMIT: usize = 100;
pub const DEFAULT_SEARCH_LIMIT: usize = 25;
/// The longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 200;

/// A search as the app asked it, checked: 1 to [`MAX_QUERY_CHARS`] characters, 1 to
/// [`MAX_SEARCH_LIMIT`] hits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchRequest {
    pub query: String,
    pub limit: usize,
}

impl SearchRequest {
    pub fn new(query: &str, limit: usize) -> HubResult<Self> {
        let chars = query.chars().count();
        if chars == 0 || chars > MAX_QUERY_CHARS || query.trim().is_empty() {
            return Err(HubError::InvalidRequest(format!(
                "q must be 1 to {MAX_QUERY_CHARS} characters, not only spaces"
            )));
        }
        if !(1..=MAX_SEARCH_LIMIT).contains(&limit) {
            return Err(HubError::InvalidRequest(format!(
                "limit must be a whole number from 1 to {MAX_SEARCH_LIMIT}"
            )));
        }
        Ok(SearchRequest {
            query: query.to_string(),
            limit,
        })
    }
}

/// The answer of the search route.
#[derive(Debug, Serialize)]
pub struct SearchResults {
    pub files: Vec<FileEntry>,
}

/// Asks the account's provider for at most `request.limit` files matching `request.query`,
/// within `deadline`.
pub async fn search(
    hub: &Hub,
    account_id: &str,
    request: &SearchRequest,
    deadline: Deadline,
) -> HubResult<SearchResults> {
    let account = hub
        .store
        .get_account(account_id)
        .await?
        .ok_or_else(|| HubError::AccountNotFound(account_id.to_string()))?;
    let mut credentials = Credentials::open(hub, account, deadline).await?;
    let connector = credentials.connector().clone();
    let mut files = credentials
        .call(|token| {
            let connector = connector.clone();
            async move {
                deadline
                    .bound(connector.search(&token, &request.query, request.limit))
                    .await
            }
        })
        .await??;
    // What the index would not show: an item in the trash, and the drive's root.
    files.retain(|file| !file.deleted);
    files.truncate(request.limit);
    drives::attribute(&credentials.account().drives, &mut files);
    Ok(SearchResults { files })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_and_limits_are_checked() {
        assert!(SearchRequest::new("a", 1).is_ok());
        assert!(SearchRequest::new(&"é".repeat(200), 100).is_ok());
        for (query, limit) in [
            ("", 25),
            ("  ", 25),
            (&*"a".repeat(201), 25),
            ("a", 0),
            ("a", 101),
        ] {
            let error = SearchRequest::new(query, limit).unwrap_err();
            assert_eq!(error.code(), "invalid_request", "{query:?} {limit}");
        }
    }
}
