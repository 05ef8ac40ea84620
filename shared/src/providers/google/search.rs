//! Drive's own search (docs/API.md, "Search"): `files.list` with a `q` over names and
//! content (<https://developers.google.com/drive/api/guides/search-files>) across every
//! drive the user reaches (`corpora=allDrives`), hits converted as the listing converts its
//! files.

use secrecy::SecretString;
use serde::Deserialize;

use super::listing::{DriveFile, FILE_FIELDS, SHARED_DRIVE_FLAGS};
use super::GoogleDrive;
use crate::error::ProviderError;
use crate::model::FileEntry;
use crate::providers::get_json;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Hits {
    #[serde(default)]
    incomplete_search: bool,
    #[serde(default)]
    files: Vec<DriveFile>,
}

/// A string literal of Drive's query language: "Escape single quotes in queries with `\'`"
/// and a backslash with `\\`
/// (<https://developers.google.com/drive/api/guides/ref-search-terms>, "Query string
/// examples" and the query's rules).
pub(super) fn literal(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('\'');
    for c in text.chars() {
        if c == '\'' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('\'');
    quoted
}

/// The `q` of a search for `text`: in the name or the full text (name, description,
/// indexable text and content), not in the trash. `name contains` matches a name by prefix,
/// `fullText contains` by whole words anywhere: together they find what a person typing part
/// of a name or a word of the content expects.
pub(super) fn search_query(text: &str) -> String {
    let literal = literal(text);
    format!("(name contains {literal} or fullText contains {literal}) and trashed = false")
}

impl GoogleDrive {
    /// One page of `files.list` over every drive. `allDrives` may answer an incomplete
    /// search (`incompleteSearch`): what it found is still what Drive found, so it is
    /// answered, unlike a listing, where a missing file would be taken as deleted.
    pub(super) async fn search_files(
        &self,
        token: &SecretString,
        text: &str,
        limit: usize,
    ) -> Result<Vec<FileEntry>, ProviderError> {
        let q = search_query(text);
        let fields = format!("incompleteSearch,files({FILE_FIELDS})");
        let page_size = limit.to_string();
        let mut query = vec![
            ("q", q.as_str()),
            ("fields", fields.as_str()),
            ("pageSize", page_size.as_str()),
            ("corpora", "allDrives"),
            ("spaces", "drive"),
        ];
        query.extend_from_slice(SHARED_DRIVE_FLAGS);
        let hits: Hits = get_json(
            &self.http,
            &format!("{}/drive/v3/files", self.api_url),
            &query,
            token,
        )
        .await?;
        if hits.incomplete_search {
            tracing::info!("Drive searched only some of the user's drives (incompleteSearch)");
        }
        Ok(hits.files.into_iter().map(DriveFile::into_entry).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_backslashes_are_escaped() {
        assert_eq!(literal("plain"), "'plain'");
        assert_eq!(literal(r"it's a\b"), r"'it\'s a\\b'");
        assert_eq!(
            search_query("x'y"),
            r"(name contains 'x\'y' or fullText contains 'x\'y') and trashed = false"
        );
    }
}
