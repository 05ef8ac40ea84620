//! Box's own search (docs/API.md, "Search"): `GET /search`, over names, descriptions, file
//! content, comments and tags by default (`content_types`), items in the trash left out by
//! default (`trash_content=non_trashed_only`)
//! (<https://developer.box.com/reference/get-search/>). Hits are read with the listing's
//! `fields` and converted as the listing converts its items.

use secrecy::SecretString;
use serde::Deserialize;

use super::sync::{Item, FIELDS};
use super::BoxConnector;
use crate::error::ProviderError;
use crate::model::FileEntry;
use crate::providers::get_json;

/// `search_results_items`: the page of hits.
#[derive(Deserialize)]
struct SearchResults {
    entries: Vec<Item>,
}

impl BoxConnector {
    /// One page of at most `limit` hits (Box takes up to 200). No `type`: Box takes one
    /// type there, and the index holds every type the listing meets (files, folders, web
    /// links), so hits are left of every type too.
    pub(super) async fn search_items(
        &self,
        token: &SecretString,
        text: &str,
        limit: usize,
    ) -> Result<Vec<FileEntry>, ProviderError> {
        let url = format!("{}/search", self.api_url);
        let limit = limit.to_string();
        let query = [
            ("query", text),
            ("fields", FIELDS),
            ("limit", limit.as_str()),
        ];
        let found: SearchResults = get_json(&self.http, &url, &query, token).await?;
        Ok(found.entries.into_iter().map(Item::into_entry).collect())
    }
}
