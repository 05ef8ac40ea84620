//! The one codec of every opaque cursor the API hands out: the `cursor` of `GET /users`'
//! `Link`, and the `next_cursor` of `GET /users/{id}/files` and `GET /users/{id}/changes`.
//!
//! A cursor is the base64url (no padding) of `v2:<route>:<account>:<position>`:
//! - `v2`, the layout's version: a later layout can tell these cursors from its own;
//! - `<route>` (`users`, `files`, `changes`): a cursor of one route is refused by another.
//!   Without it a `/files` cursor (any file id) could pass for a `/changes` position and the
//!   other way round, and resume a list somewhere it never was;
//! - `<account>`: for the routes of one account, the first 16 hex digits of the SHA-256 of its
//!   id, so that a cursor of one account's list is refused on another's without the cursor
//!   echoing the id; empty for `/users`, which lists every account;
//! - `<position>`: the route's own (see the [`Position`] implementations), last, so that it
//!   may hold colons (file ids do).
//!
//! Cursors are opaque, not secret: nothing is signed, and a client that writes one by hand
//! gets at most a position in a list it may read anyway. What the codec guarantees is that
//! anything it did not write is `invalid_request`, never a store error or a 5xx.
//!
//! Cursors of the formats before `v2` (hex of `<provider>/<id>` for `/users`, hex of the file
//! id for `/files`, base64url of `v1:<account>:<seq>:<file id>` for `/changes`) are refused,
//! not translated: the hub has no deployment yet, so no client holds one, and a branch for
//! them would be code that serves no one. A later layout that replaces `v2` while clients keep
//! `/changes` cursors (a client's sync state) should accept `v2` for a release instead.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::error::{HubError, HubResult};

/// The version prefix of the layout this codec writes and the only one it reads.
const VERSION: &str = "v2";
/// Hex digits of the account id's SHA-256 a per-account cursor carries: enough to tell any two
/// accounts apart, without echoing the id.
const ACCOUNT_TAG_LEN: usize = 16;

/// The routes that issue cursors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /users`: every account (or one owner's), so no account binding.
    Users,
    /// `GET /users/{id}/files`.
    Files,
    /// `GET /users/{id}/changes`.
    Changes,
}

impl Route {
    fn name(self) -> &'static str {
        match self {
            Route::Users => "users",
            Route::Files => "files",
            Route::Changes => "changes",
        }
    }

    /// Whether the route lists one account's data, so its cursors name that account.
    fn per_account(self) -> bool {
        !matches!(self, Route::Users)
    }
}

/// Where a route's page ended, as the route writes it into the cursor.
pub trait Position: Sized {
    /// The route whose cursors carry this position.
    const ROUTE: Route;
    /// The position as text; [`Position::read`] must read it back.
    fn write(&self) -> String;
    /// The position [`Position::write`] wrote, or `None` for text it could not have written.
    fn read(text: &str) -> Option<Self>;
}

/// A cursor read back by [`decode`]: its position, to be taken with [`Cursor::of`] once the
/// account of the request is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor<P> {
    account: Option<String>,
    position: P,
}

/// The refusal of every cursor this hub did not issue for the list it is sent to.
fn refused() -> HubError {
    HubError::InvalidRequest(
        "cursor is not one this hub issued for this list; start again without one".into(),
    )
}

fn account_tag(account_id: &str) -> String {
    let digest = hex::encode(Sha256::digest(account_id.as_bytes()));
    digest[..ACCOUNT_TAG_LEN].to_string()
}

/// The opaque cursor of `position`, of the account `account_id` for a per-account route
/// (`None` for `/users`).
pub fn encode<P: Position>(account_id: Option<&str>, position: &P) -> String {
    let account = account_id.map(account_tag).unwrap_or_default();
    let plain = format!(
        "{VERSION}:{}:{account}:{}",
        P::ROUTE.name(),
        position.write()
    );
    URL_SAFE_NO_PAD.encode(plain)
}

/// Reads back what [`encode`] wrote for the route of `P`; anything else (another layout,
/// another route, a malformed position) is `invalid_request`.
pub fn decode<P: Position>(raw: &str) -> HubResult<Cursor<P>> {
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| refused())?;
    let plain = String::from_utf8(bytes).map_err(|_| refused())?;
    let mut parts = plain.splitn(4, ':');
    let (Some(VERSION), Some(route), Some(account), Some(position)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(refused());
    };
    if route != P::ROUTE.name() {
        return Err(refused());
    }
    let account = match (P::ROUTE.per_account(), account) {
        (false, "") => None,
        // Lower-case hex only: the form `encode` writes.
        (true, tag)
            if tag.len() == ACCOUNT_TAG_LEN
                && tag.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) =>
        {
            Some(tag.to_string())
        }
        _ => return Err(refused()),
    };
    let position = P::read(position).ok_or_else(refused)?;
    Ok(Cursor { account, position })
}

impl<P> Cursor<P> {
    /// The position, if the cursor was issued for the list of `account_id` (`None`: the list of
    /// every account); a cursor of another account's list is `invalid_request`.
    pub fn of(self, account_id: Option<&str>) -> HubResult<P> {
        if self.account != account_id.map(account_tag) {
            return Err(refused());
        }
        Ok(self.position)
    }
}

/// A cursor written by hand, for tests of what the codec and the routes refuse.
#[cfg(test)]
pub(crate) fn forge(
    version: &str,
    route: &str,
    account_id: Option<&str>,
    position: &str,
) -> String {
    let account = account_id.map(account_tag).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(format!("{version}:{route}:{account}:{position}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stand-ins of the three routes' positions: any non-empty text.
    macro_rules! stand_in {
        ($name:ident, $route:expr) => {
            #[derive(Debug, PartialEq)]
            struct $name(String);

            impl Position for $name {
                const ROUTE: Route = $route;
                fn write(&self) -> String {
                    self.0.clone()
                }
                fn read(text: &str) -> Option<Self> {
                    (!text.is_empty()).then(|| $name(text.to_string()))
                }
            }
        };
    }
    stand_in!(Users, Route::Users);
    stand_in!(Files, Route::Files);
    stand_in!(Changes, Route::Changes);

    #[test]
    fn a_cursor_decodes_to_what_was_encoded() {
        let raw = encode(Some("a1"), &Files("id:with:colons".into()));
        let cursor = decode::<Files>(&raw).unwrap();
        assert_eq!(
            cursor.of(Some("a1")).unwrap(),
            Files("id:with:colons".into())
        );
        let raw = encode(None, &Users("google/abc".into()));
        assert_eq!(
            decode::<Users>(&raw).unwrap().of(None).unwrap(),
            Users("google/abc".into())
        );
        // Only the characters of base64url: nothing to escape in a query or a `Link`.
        assert!(raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }

    #[test]
    fn a_cursor_of_another_route_or_account_is_refused() {
        let files = encode(Some("a1"), &Files("f".into()));
        let error = decode::<Changes>(&files).unwrap_err();
        assert_eq!(error.code(), "invalid_request");
        let error = decode::<Users>(&files).unwrap_err();
        assert_eq!(error.code(), "invalid_request");
        let users = encode(None, &Users("google/abc".into()));
        let error = decode::<Files>(&users).unwrap_err();
        assert_eq!(error.code(), "invalid_request");
        let error = decode::<Files>(&files).unwrap().of(Some("a2")).unwrap_err();
        assert_eq!(error.code(), "invalid_request");
        let error = decode::<Files>(&files).unwrap().of(None).unwrap_err();
        assert_eq!(error.code(), "invalid_request");
    }

    #[test]
    fn anything_else_is_refused() {
        let tag = account_tag("a1");
        let forged = [
            String::new(),
            "not base64!".to_string(),
            URL_SAFE_NO_PAD.encode("hello"),
            URL_SAFE_NO_PAD.encode([0xff, 0xfe]),
            // The layouts before v2, and a later one.
            hex::encode("google/abc"),
            hex::encode("file-42"),
            URL_SAFE_NO_PAD.encode(format!("v1:{tag}:1:f")),
            forge("v3", "files", Some("a1"), "f"),
            forge("v2", "nosuch", Some("a1"), "f"),
            // A per-account route without its account, or with a malformed one.
            forge("v2", "files", None, "f"),
            URL_SAFE_NO_PAD.encode("v2:files:short:f"),
            URL_SAFE_NO_PAD.encode(format!("v2:files:{}:f", tag.to_uppercase())),
            // A position the route could not have written.
            forge("v2", "files", Some("a1"), ""),
            URL_SAFE_NO_PAD.encode(format!("v2:files:{tag}")),
        ];
        for raw in forged {
            let error = decode::<Files>(&raw).unwrap_err();
            assert_eq!(error.code(), "invalid_request", "{raw}");
        }
        // `/users` lists every account: a cursor of it names none.
        let error = decode::<Users>(&forge("v2", "users", Some("a1"), "g/a")).unwrap_err();
        assert_eq!(error.code(), "invalid_request");
    }
}
