//! Where a Dropbox listing is rooted, and the hub's cursor that remembers it.
//!
//! A member of a team with a team space has a root namespace (the team space: team folders
//! and every member folder) that differs from the home namespace (the member folder). Calls
//! are rooted at the home namespace unless `Dropbox-API-Path-Root` says otherwise, so without
//! it every team folder is missing. `users/get_current_account`'s `root_info` tells them apart
//! by their ids (`.tag` `team` or `user` is not the test: a team without a separate root
//! answers `user`, and a `team` whose two ids agree has nothing more to list), and listings of
//! a team space are rooted at it in `root` mode, `{".tag": "root", "root": "<id>"}`, which
//! Dropbox refuses with 422 `invalid_root` once the user's root is another
//! (<https://www.dropbox.com/developers/reference/path-root-header-modes>,
//! <https://developers.dropbox.com/dbx-team-files-guide>).
//!
//! The header goes with `list_folder/continue` too, although the cursor already holds its
//! root: that is how a saved cursor of a team space learns, at no extra call, that the root
//! changed (the user left the team, or the team moved). A cursor of the home namespace cannot
//! learn that a team space appeared from its listing, which goes on working; so a sync that
//! goes on from one reads `root_info` first (one call) and starts over when the root differs.

use serde::Deserialize;

use crate::model::{DriveInfo, DriveKind};

/// `common.RootInfo`, as far as the hub reads it.
#[derive(Clone, Debug, Deserialize)]
pub(super) struct RootInfo {
    root_namespace_id: String,
    home_namespace_id: String,
}

/// Where the account's listings are rooted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Root {
    /// The home namespace: the whole account of a user in no team space.
    Home,
    /// The team space, by its root namespace id.
    TeamSpace(String),
}

impl Root {
    /// The root `root_info` names: the team space when its two ids differ. An answer without
    /// `root_info` (Dropbox always sends it) is taken as the home.
    pub(super) fn of(info: Option<&RootInfo>) -> Root {
        match info {
            Some(info) if info.root_namespace_id != info.home_namespace_id => {
                Root::TeamSpace(info.root_namespace_id.clone())
            }
            _ => Root::Home,
        }
    }

    /// The `Dropbox-API-Path-Root` value of its calls; none for the home, as before team
    /// spaces (the header's `home` mode is the same as none).
    pub(super) fn header(&self) -> Option<String> {
        match self {
            Root::Home => None,
            Root::TeamSpace(id) => {
                Some(serde_json::json!({".tag": "root", "root": id}).to_string())
            }
        }
    }

    /// The drive its entries belong to: the team space's id, or `None` for the account's own
    /// drive (`super::DROPBOX_DRIVE_ID`, which the worker gives entries that name none).
    pub(super) fn drive_id(&self) -> Option<String> {
        match self {
            Root::Home => None,
            Root::TeamSpace(id) => Some(id.clone()),
        }
    }

    /// The drive `/users/{id}/drives` lists for it: a team space is named after the team
    /// when `get_current_account` names it.
    pub(super) fn drive(&self, team_name: Option<&str>) -> DriveInfo {
        match self {
            Root::Home => super::home_drive(),
            Root::TeamSpace(id) => DriveInfo {
                id: id.clone(),
                name: team_name
                    .filter(|name| !name.trim().is_empty())
                    .unwrap_or("Team space")
                    .to_string(),
                kind: DriveKind::TeamSpace,
            },
        }
    }
}

/// Marks the cursors of an enumeration under way, so that its pages are told from pages of
/// changes (`super::page_of`'s `replacing`). A cursor without it (a finished enumeration's,
/// or one saved before the mark existed) reads changes.
const ENUMERATING: &str = "enumerating:";

/// Marks a cursor rooted at a team space: `team-space=<root namespace id>;` (a namespace id
/// is `[-_0-9a-zA-Z:]+`, common.NamespaceId, so it holds no `;`). A cursor without it is
/// rooted at the home, as every cursor saved before team spaces is.
const TEAM_SPACE: &str = "team-space=";

/// The hub's cursor: Dropbox's own, after what the hub needs to go on from it. Its form is
/// `[enumerating:][team-space=<id>;]<Dropbox's cursor>`; a cursor of the home namespace
/// outside an enumeration is Dropbox's own, bare, as before either mark existed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Cursor {
    pub(super) enumerating: bool,
    pub(super) root: Root,
    pub(super) dropbox: String,
}

impl Cursor {
    pub(super) fn parse(cursor: &str) -> Cursor {
        let (enumerating, rest) = match cursor.strip_prefix(ENUMERATING) {
            Some(rest) => (true, rest),
            None => (false, cursor),
        };
        let rooted = rest
            .strip_prefix(TEAM_SPACE)
            .and_then(|rest| rest.split_once(';'));
        let (root, dropbox) = match rooted {
            Some((id, dropbox)) => (Root::TeamSpace(id.to_string()), dropbox),
            None => (Root::Home, rest),
        };
        Cursor {
            enumerating,
            root,
            dropbox: dropbox.to_string(),
        }
    }

    pub(super) fn encode(&self) -> String {
        let mark = if self.enumerating { ENUMERATING } else { "" };
        match &self.root {
            Root::Home => format!("{mark}{}", self.dropbox),
            Root::TeamSpace(id) => format!("{mark}{TEAM_SPACE}{id};{}", self.dropbox),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(root: &str, home: &str) -> RootInfo {
        RootInfo {
            root_namespace_id: root.into(),
            home_namespace_id: home.into(),
        }
    }

    #[test]
    fn the_ids_decide_the_root_not_the_tag() {
        assert_eq!(Root::of(Some(&info("7", "1"))), Root::TeamSpace("7".into()));
        assert_eq!(Root::of(Some(&info("1", "1"))), Root::Home);
        assert_eq!(Root::of(None), Root::Home);
        assert_eq!(
            Root::TeamSpace("7".into()).header().as_deref(),
            Some(r#"{".tag":"root","root":"7"}"#)
        );
        assert_eq!(Root::Home.header(), None);
    }

    #[test]
    fn cursors_keep_their_root_and_old_ones_read_as_the_home() {
        let cases = [
            (false, Root::Home, "AAEx-y_z"),
            (true, Root::Home, "AAEx-y_z"),
            (false, Root::TeamSpace("ns:7".into()), "AAEx"),
            (true, Root::TeamSpace("12-3_4".into()), "AAEx"),
        ];
        for (enumerating, root, dropbox) in cases {
            let cursor = Cursor {
                enumerating,
                root,
                dropbox: dropbox.into(),
            };
            assert_eq!(Cursor::parse(&cursor.encode()), cursor);
        }
        // Saved before team spaces: Dropbox's cursor, bare or marked as an enumeration.
        assert_eq!(Cursor::parse("AAEx").encode(), "AAEx");
        let old = Cursor::parse("enumerating:AAEx");
        assert_eq!(
            (old.enumerating, old.root, old.dropbox.as_str()),
            (true, Root::Home, "AAEx")
        );
    }
}
