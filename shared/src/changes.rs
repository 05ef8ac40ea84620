//! The change feed of an account: `GET /users/{id}/changes` (docs/API.md, "File index and
//! change feed").
//!
//! Every entry stored gets the account's next sequence number (see `crate::sync`): a sync
//! holds the account's lease, so one writer numbers an account's entries at a time, and an
//! entry changed again is stored again under a higher number, at the position of its latest
//! change. The account's `feed_seq` is the watermark: the highest number whose page has been
//! committed (its cursor saved). The feed reads the account first and serves entries up to
//! the watermark only, so:
//! - an entry stored but not committed yet stays out until its commit, and always lands
//!   above every position already handed out: a reader never passes a number that an entry
//!   could still take later;
//! - numbers only grow, so a newer state of a file always comes after an older one, and a
//!   cursor (a position) stays valid through any number of syncs.

use serde::Serialize;

use crate::cursor::{self, Cursor, Position, Route};
use crate::error::{HubError, HubResult};
use crate::model::FileEntry;
use crate::store::{FeedPosition, Store};

/// The page size of `/users/{id}/changes`: 100 unless asked, at most 1000.
pub const DEFAULT_CHANGE_PAGE: usize = 100;
pub const MAX_CHANGE_PAGE: usize = 1000;

/// Where the feed goes on: after this entry, or (`None`) from the start. Written into the
/// cursor (see [`crate::cursor`]) as `<seq>:<file id>`, with seq 0 and no file id at the start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedAfter(pub Option<FeedPosition>);

impl Position for FeedAfter {
    const ROUTE: Route = Route::Changes;

    fn write(&self) -> String {
        let (seq, file_id) = self
            .0
            .as_ref()
            .map_or((0, ""), |p| (p.seq, p.file_id.as_str()));
        format!("{seq}:{file_id}")
    }

    fn read(text: &str) -> Option<Self> {
        // The file id comes last and may itself hold colons.
        let (seq, file_id) = text.split_once(':')?;
        // Only digits: `parse` would also take a leading `+`, which `write` never writes.
        if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        match (seq.parse::<u64>().ok()?, file_id) {
            (0, "") => Some(FeedAfter(None)),
            (0, _) | (_, "") => None,
            (seq, file_id) => Some(FeedAfter(Some(FeedPosition {
                seq,
                file_id: file_id.to_string(),
            }))),
        }
    }
}

/// A decoded `next_cursor` of a feed: whose feed is checked by [`feed`].
pub type FeedCursor = Cursor<FeedAfter>;

impl FeedCursor {
    /// The opaque `next_cursor` for `position` of the feed of `account_id`.
    pub fn encode(account_id: &str, position: Option<&FeedPosition>) -> String {
        cursor::encode(Some(account_id), &FeedAfter(position.cloned()))
    }

    /// Reads back what [`FeedCursor::encode`] wrote; anything else is `invalid_request`.
    pub fn decode(raw: &str) -> HubResult<FeedCursor> {
        cursor::decode(raw)
    }
}

#[derive(Debug, Serialize, PartialEq)]
pub struct ChangesPage {
    pub changes: Vec<FileEntry>,
    pub next_cursor: String,
    pub has_more: bool,
}

/// Up to `limit` changes of the account's index after `cursor` (from the start without
/// one). `next_cursor` is the position of the last change returned, or the same position
/// when there was nothing new.
pub async fn feed(
    store: &dyn Store,
    account_id: &str,
    cursor: Option<FeedCursor>,
    limit: usize,
) -> HubResult<ChangesPage> {
    let account = store
        .get_account(account_id)
        .await?
        .ok_or_else(|| HubError::AccountNotFound(account_id.to_string()))?;
    let after = match cursor {
        None => None,
        Some(cursor) => {
            let FeedAfter(after) = cursor.of(Some(account_id))?;
            // Every position handed out is at most at the watermark, which never goes down.
            if after.as_ref().is_some_and(|p| p.seq > account.feed_seq) {
                return Err(HubError::InvalidRequest(
                    "cursor points past this feed's end; it is not one this hub issued".into(),
                ));
            }
            after
        }
    };
    let page = store
        .changes(account_id, after.as_ref(), account.feed_seq, limit)
        .await?;
    let last = page.entries.last().map(|last| FeedPosition {
        seq: last.seq,
        file_id: last.entry.id.clone(),
    });
    let next = last.or(after);
    Ok(ChangesPage {
        next_cursor: FeedCursor::encode(account_id, next.as_ref()),
        changes: page.entries.into_iter().map(|e| e.entry).collect(),
        has_more: page.has_more,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cursor::forge;

    #[test]
    fn a_cursor_decodes_to_what_was_encoded() {
        let position = FeedPosition {
            seq: 42,
            file_id: "id:with:colons".into(),
        };
        let cursor = FeedCursor::decode(&FeedCursor::encode("a1", Some(&position))).unwrap();
        assert_eq!(cursor.of(Some("a1")).unwrap(), FeedAfter(Some(position)));
        let start = FeedCursor::decode(&FeedCursor::encode("a1", None)).unwrap();
        assert_eq!(start.of(Some("a1")).unwrap(), FeedAfter(None));
    }

    #[test]
    fn anything_else_is_refused() {
        let forged = [
            "not base64!".to_string(),
            forge("v2", "changes", Some("a1"), "+1:f"),
            forge("v2", "changes", Some("a1"), "x:f"),
            forge("v2", "changes", Some("a1"), "1:"),
            forge("v2", "changes", Some("a1"), "0:f"),
            forge("v2", "changes", Some("a1"), "1"),
            forge("v2", "changes", Some("a1"), ":f"),
            forge("v2", "changes", Some("a1"), "99999999999999999999999:f"),
            // The same position, of another route.
            forge("v2", "files", Some("a1"), "1:f"),
        ];
        for raw in forged {
            let error = FeedCursor::decode(&raw).unwrap_err();
            assert_eq!(error.code(), "invalid_request", "{raw}");
        }
    }
}
