//! Dropbox's own search (docs/API.md, "Search"): `files/search_v2`, over names and, where
//! the account's plan has it, file content
//! (<https://www.dropbox.com/developers/documentation/http/documentation#files-search>).
//! It is rooted as the listing is (`Dropbox-API-Path-Root`, `root.rs`), so that a hit's
//! path and id are those of the index's entry, and converted by the listing's `page_of`.

use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;

use super::root::Root;
use super::{page_of, Dropbox, Metadata};
use crate::error::ProviderError;
use crate::model::FileEntry;

#[derive(Deserialize)]
struct SearchV2Result {
    matches: Vec<SearchMatchV2>,
}

#[derive(Deserialize)]
struct SearchMatchV2 {
    metadata: MetadataV2,
}

/// `MetadataV2`, an open union: `metadata` wraps the entry's `Metadata`.
#[derive(Deserialize)]
#[serde(tag = ".tag", rename_all = "snake_case")]
enum MetadataV2 {
    Metadata {
        metadata: Metadata,
    },
    #[serde(other)]
    Other,
}

impl Dropbox {
    /// One page of at most `limit` hits (`options.max_results`) among the files not deleted.
    pub(super) async fn search_files(
        &self,
        token: &SecretString,
        text: &str,
        limit: usize,
    ) -> Result<Vec<FileEntry>, ProviderError> {
        let account = self.account(token).await?;
        let root = Root::of(account.root_info.as_ref());
        let argument = json!({
            "query": text,
            "options": {
                "max_results": limit,
                "file_status": "active",
                "filename_only": false,
            },
        });
        let found: SearchV2Result = self
            .rpc("files/search_v2", Some(argument), &root, token)
            .await?;
        let entries = found
            .matches
            .into_iter()
            .filter_map(|hit| match hit.metadata {
                MetadataV2::Metadata { metadata } => Some(metadata),
                MetadataV2::Other => None,
            })
            .collect();
        Ok(page_of(entries, false, root.drive_id()).0)
    }
}
