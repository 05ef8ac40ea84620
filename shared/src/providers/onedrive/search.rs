//! Graph's own search of the OneDrive (docs/API.md, "Search"):
//! `GET /me/drive/root/search(q='{text}')`, which matches "across several fields including
//! filename, metadata, and file content", and also finds items shared with the user
//! (<https://learn.microsoft.com/en-us/graph/api/driveitem-search>). Hits are driveItems, read
//! with the listing's `$select` and converted as the listing converts them.

use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use secrecy::SecretString;
use serde::Deserialize;

use super::items::{DriveItem, ITEM_SELECT};
use super::OneDrive;
use crate::error::ProviderError;
use crate::model::FileEntry;
use crate::providers::get_json;

#[derive(Deserialize)]
struct Hits {
    #[serde(default)]
    value: Vec<DriveItem>,
}

/// The path segment `search(q='...')` of `text`: an OData string literal doubles its single
/// quotes (OData ABNF, `SQUOTE-in-string`), and the whole is percent-encoded so that
/// `/`, `?`, `#`, `%` and spaces stay inside the segment.
pub(super) fn search_segment(text: &str) -> String {
    let literal = text.replace('\'', "''");
    format!(
        "search(q='{}')",
        utf8_percent_encode(&literal, NON_ALPHANUMERIC)
    )
}

impl OneDrive {
    /// One page of at most `limit` hits (`$top`).
    pub(super) async fn search_drive(
        &self,
        token: &SecretString,
        text: &str,
        limit: usize,
    ) -> Result<Vec<FileEntry>, ProviderError> {
        let url = format!("{}/me/drive/root/{}", self.graph_url, search_segment(text));
        let top = limit.to_string();
        let query = [("$select", ITEM_SELECT), ("$top", top.as_str())];
        let hits: Hits = get_json(&self.http, &url, &query, token).await?;
        Ok(hits
            .value
            .into_iter()
            // The root of a drive is no entry of the index.
            .filter(|item| item.root.is_none())
            .map(DriveItem::into_found_entry)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_doubled_and_the_rest_encoded() {
        assert_eq!(search_segment("report"), "search(q='report')");
        assert_eq!(
            search_segment(r"it's a\b/c?"),
            "search(q='it%27%27s%20a%5Cb%2Fc%3F')"
        );
    }
}
