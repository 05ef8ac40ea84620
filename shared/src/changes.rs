//! The change feed of an account: `GET /users/{id}/changes` (contract section 6).
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

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{HubError, HubResult};
use crate::hub::Hub;
use crate::model::FileEntry;
use crate::store::FeedPosition;

/// The contract's page size of `/users/{id}/changes`: 100 unless asked, at most 1000.
pub const DEFAULT_CHANGE_PAGE: usize = 100;
pub const MAX_CHANGE_PAGE: usize = 1000;

/// The version prefix of the cursor's layout, so that a later layout can tell old cursors.
const CURSOR_VERSION: &str = "v1";
/// Hex digits of the account id's SHA-256 a cursor carries: enough to tell any two accounts
/// apart, without echoing the id.
const ACCOUNT_TAG_LEN: usize = 16;

/// A decoded `next_cursor`: the account it was issued for and the position after which the
/// feed goes on (`None`: the start).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedCursor {
    account_tag: String,
    position: Option<FeedPosition>,
}

fn account_tag(account_id: &str) -> String {
    let digest = hex::encode(Sha256::digest(account_id.as_bytes()));
    digest[..ACCOUNT_TAG_LEN].to_string()
}

fn not_issued() -> HubError {
    HubError::InvalidRequest("cursor is not one this hub issued for this account".into())
}

impl FeedCursor {
    /// The opaque string for `position` of the feed of `account_id`: the base64url of
    /// `v1:<account tag>:<seq>:<file id>`, with seq 0 and no file id at the start.
    pub fn encode(account_id: &str, position: Option<&FeedPosition>) -> String {
        let (seq, file_id) = position.map_or((0, ""), |p| (p.seq, p.file_id.as_str()));
        let plain = format!(
            "{CURSOR_VERSION}:{}:{seq}:{file_id}",
            account_tag(account_id)
        );
        URL_SAFE_NO_PAD.encode(plain)
    }

    /// Reads back what [`FeedCursor::encode`] wrote; anything else is `invalid_request`.
    pub fn decode(raw: &str) -> HubResult<FeedCursor> {
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| not_issued())?;
        let plain = String::from_utf8(bytes).map_err(|_| not_issued())?;
        // The file id comes last and may itself hold colons.
        let mut parts = plain.splitn(4, ':');
        let (Some(CURSOR_VERSION), Some(tag), Some(seq), Some(file_id)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(not_issued());
        };
        let well_formed_tag =
            tag.len() == ACCOUNT_TAG_LEN && tag.bytes().all(|b| b.is_ascii_hexdigit());
        // Only digits: `parse` would also take a leading `+`, which encode never writes.
        if !well_formed_tag || seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
            return Err(not_issued());
        }
        let seq: u64 = seq.parse().map_err(|_| not_issued())?;
        let position = match (seq, file_id) {
            (0, "") => None,
            (0, _) | (_, "") => return Err(not_issued()),
            (seq, file_id) => Some(FeedPosition {
                seq,
                file_id: file_id.to_string(),
            }),
        };
        Ok(FeedCursor {
            account_tag: tag.to_string(),
            position,
        })
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
    hub: &Hub,
    account_id: &str,
    cursor: Option<FeedCursor>,
    limit: usize,
) -> HubResult<ChangesPage> {
    let account = hub
        .store
        .get_account(account_id)
        .await?
        .ok_or_else(|| HubError::UserNotFound(account_id.to_string()))?;
    let after = match cursor {
        None => None,
        Some(cursor) => {
            if cursor.account_tag != account_tag(account_id) {
                return Err(not_issued());
            }
            // Every position handed out is at most at the watermark, which never goes down.
            if cursor
                .position
                .as_ref()
                .is_some_and(|p| p.seq > account.feed_seq)
            {
                return Err(not_issued());
            }
            cursor.position
        }
    };
    let page = hub
        .store
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

    #[test]
    fn a_cursor_decodes_to_what_was_encoded() {
        let position = FeedPosition {
            seq: 42,
            file_id: "id:with:colons".into(),
        };
        let cursor = FeedCursor::decode(&FeedCursor::encode("a1", Some(&position))).unwrap();
        assert_eq!(cursor.account_tag, account_tag("a1"));
        assert_eq!(cursor.position, Some(position));
        let start = FeedCursor::decode(&FeedCursor::encode("a1", None)).unwrap();
        assert_eq!(start.position, None);
    }

    #[test]
    fn anything_else_is_refused() {
        let tag = account_tag("a1");
        let forged = [
            "not base64!".to_string(),
            URL_SAFE_NO_PAD.encode("hello"),
            URL_SAFE_NO_PAD.encode(format!("v2:{tag}:1:f")),
            URL_SAFE_NO_PAD.encode(format!("v1:{tag}:+1:f")),
            URL_SAFE_NO_PAD.encode(format!("v1:{tag}:x:f")),
            URL_SAFE_NO_PAD.encode(format!("v1:{tag}:1:")),
            URL_SAFE_NO_PAD.encode(format!("v1:{tag}:0:f")),
            URL_SAFE_NO_PAD.encode("v1:short:1:f"),
            URL_SAFE_NO_PAD.encode(format!("v1:{tag}:99999999999999999999999:f")),
        ];
        for raw in forged {
            let error = FeedCursor::decode(&raw).unwrap_err();
            assert_eq!(error.code(), "invalid_request", "{raw}");
        }
    }
}
