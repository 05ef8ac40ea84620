//! What an app does with the index: read all of `/users/{id}/files`, and follow
//! `/users/{id}/changes` as a feed client does, in pages small enough to cross page
//! boundaries in every test.

use std::collections::BTreeMap;

use oauth2::reqwest::Method;
use serde_json::Value;

use crate::{LocalHub, StatusCode};

/// The whole index of an account, tombstones included (`deleted=any`), by file id, read
/// `page_size` entries at a time.
pub async fn index_of(hub: &LocalHub, id: &str, page_size: usize) -> BTreeMap<String, Value> {
    let mut files = BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/users/{id}/files?limit={page_size}&deleted=any&cursor={c}"),
            None => format!("/users/{id}/files?limit={page_size}&deleted=any"),
        };
        let (status, page) = hub.json(hub.authed(Method::GET, &path)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for file in page["files"].as_array().unwrap() {
            files.insert(file["id"].as_str().unwrap().to_string(), file.clone());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return files,
        }
    }
}

/// A client of the change feed: what it has seen of each file, and where it stands.
pub struct FeedClient {
    pub seen: BTreeMap<String, Value>,
    pub cursor: Option<String>,
    page_size: usize,
}

impl FeedClient {
    /// A client that has read nothing yet and reads `page_size` changes at a time.
    pub fn new(page_size: usize) -> FeedClient {
        FeedClient {
            seen: BTreeMap::new(),
            cursor: None,
            page_size,
        }
    }

    /// Reads the feed until it is caught up, checking that no file ever goes back to a state
    /// older than one already seen.
    pub async fn catch_up(&mut self, hub: &LocalHub, id: &str) {
        loop {
            let path = match &self.cursor {
                Some(c) => format!("/users/{id}/changes?limit={}&cursor={c}", self.page_size),
                None => format!("/users/{id}/changes?limit={}", self.page_size),
            };
            let (status, page) = hub.json(hub.authed(Method::GET, &path)).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            for entry in page["changes"].as_array().unwrap() {
                let file_id = entry["id"].as_str().unwrap().to_string();
                if let Some(before) = self.seen.get(&file_id) {
                    assert!(
                        entry["changed_at"].as_str() >= before["changed_at"].as_str(),
                        "an older state after a newer one: {before} then {entry}"
                    );
                }
                self.seen.insert(file_id, entry.clone());
            }
            self.cursor = Some(
                page["next_cursor"]
                    .as_str()
                    .expect("next_cursor is always a string")
                    .to_string(),
            );
            if page["has_more"] == false {
                return;
            }
        }
    }
}
