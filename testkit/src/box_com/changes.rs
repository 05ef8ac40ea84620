//! Changes to a Box user's tree, each recorded in the user's event stream as Box names it
//! (<https://developer.box.com/guides/events/event-triggers/>, the user events): what the
//! handle's controls do.

use chrono::Utc;

use super::tree::{BoxKind, Item, Status};
use crate::state::State;

/// A change the tests make to a Box item.
#[derive(Clone, Debug)]
pub enum BoxChange {
    /// A new version of a file's content (`ITEM_UPLOAD`).
    Upload,
    /// `ITEM_RENAME`.
    Rename(String),
    /// Into another folder (`ITEM_MOVE`).
    Move(String),
    /// Into the trash (`ITEM_TRASH`); the items under a folder go with it, without events.
    Trash,
    /// Out of the trash (`ITEM_UNDELETE_VIA_TRASH`).
    Restore,
    /// Purged from the trash: gone for good. Box's user stream has no event for it (the
    /// item was reported trashed already).
    Purge,
}

impl State {
    fn next_box_id(&mut self, kind: BoxKind) -> String {
        // Two counters from the same start: files and folders share ids, as at Box.
        let counter = match kind {
            BoxKind::File => &mut self.box_file_ids,
            BoxKind::Folder => &mut self.box_folder_ids,
        };
        *counter += 1;
        (1_000_000 + *counter).to_string()
    }

    /// Adds a file or folder named `name` in the folder `parent` (`ITEM_CREATE` for a folder,
    /// `ITEM_UPLOAD` for a file); returns its id. Panics if `parent` is no folder of the user.
    pub fn box_add(&mut self, user: &str, kind: BoxKind, name: &str, parent: &str) -> String {
        assert!(
            self.box_tree(user).get(BoxKind::Folder, parent).is_some(),
            "no Box folder {parent:?} for {user:?}"
        );
        let id = self.next_box_id(kind);
        let item = Item {
            kind,
            id: id.clone(),
            name: name.to_string(),
            parent: parent.to_string(),
            status: Status::Active,
            size: if kind == BoxKind::File {
                1000 + name.len() as u64
            } else {
                0
            },
            version: 1,
            modified_at: Utc::now(),
            sequence_id: 0,
        };
        let tree = self.box_tree(user);
        tree.items.insert((kind, id.clone()), item);
        let event = match kind {
            BoxKind::File => "ITEM_UPLOAD",
            BoxKind::Folder => "ITEM_CREATE",
        };
        tree.record(kind, &id, event);
        id
    }

    /// Copies an item into `parent` (`ITEM_COPY` for the copy alone: the contents of a
    /// copied folder come without events of their own); returns the copy's id.
    pub fn box_copy(&mut self, user: &str, kind: BoxKind, id: &str, parent: &str) -> String {
        let original = self.box_item(user, kind, id);
        let copy = self.box_add_quietly(user, &original, parent);
        if kind == BoxKind::Folder {
            let mut pending = vec![(id.to_string(), copy.clone())];
            while let Some((from, to)) = pending.pop() {
                let children: Vec<Item> = self
                    .box_tree(user)
                    .children(&from)
                    .into_iter()
                    .cloned()
                    .collect();
                for child in children {
                    let made = self.box_add_quietly(user, &child, &to);
                    if child.kind == BoxKind::Folder {
                        pending.push((child.id.clone(), made));
                    }
                }
            }
        }
        self.box_tree(user).record(kind, &copy, "ITEM_COPY");
        copy
    }

    fn box_add_quietly(&mut self, user: &str, original: &Item, parent: &str) -> String {
        let id = self.next_box_id(original.kind);
        let item = Item {
            id: id.clone(),
            parent: parent.to_string(),
            sequence_id: 0,
            ..original.clone()
        };
        self.box_tree(user)
            .items
            .insert((original.kind, id.clone()), item);
        id
    }

    fn box_item(&mut self, user: &str, kind: BoxKind, id: &str) -> Item {
        match self.box_tree(user).get(kind, id) {
            Some(item) if item.status != Status::Deleted => item.clone(),
            _ => panic!("no Box {} {id:?} for {user:?}", kind.as_str()),
        }
    }

    /// Applies `change` to an item and records its event. Panics on an item the user does
    /// not have (a test mistake).
    pub fn box_change(&mut self, user: &str, kind: BoxKind, id: &str, change: BoxChange) {
        let mut item = self.box_item(user, kind, id);
        let event = match change {
            BoxChange::Upload => {
                assert_eq!(kind, BoxKind::File, "only files have versions");
                item.version += 1;
                item.size += 1;
                Some("ITEM_UPLOAD")
            }
            BoxChange::Rename(name) => {
                item.name = name;
                Some("ITEM_RENAME")
            }
            BoxChange::Move(parent) => {
                item.parent = parent;
                Some("ITEM_MOVE")
            }
            BoxChange::Trash => {
                item.status = Status::Trashed;
                Some("ITEM_TRASH")
            }
            BoxChange::Restore => {
                item.status = Status::Active;
                Some("ITEM_UNDELETE_VIA_TRASH")
            }
            BoxChange::Purge => {
                item.status = Status::Deleted;
                None
            }
        };
        item.sequence_id += 1;
        item.modified_at = Utc::now();
        let tree = self.box_tree(user);
        tree.items.insert((kind, id.to_string()), item);
        if let Some(event) = event {
            tree.record(kind, id, event);
        }
    }
}
