//! What the Box stand-in remembers of one user's Box: its files and folders (two id spaces),
//! each item's status, and the user's event stream.
//!
//! Box's ids are numeric strings, and files and folders are numbered apart ("file 12" and
//! "folder 12" are different items), so the tree keys items by (type, id). Folder `0` is the
//! user's root, "All Files" (<https://developer.box.com/guides/folders/>). An item is
//! `active`, `trashed` (in the trash, restorable) or `deleted` (purged), Box's `item_status`
//! (<https://developer.box.com/reference/resources/file/>).

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// A Box item's `type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BoxKind {
    /// Sorted first: listings give folders before files.
    Folder,
    File,
}

impl BoxKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BoxKind::Folder => "folder",
            BoxKind::File => "file",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    Active,
    Trashed,
    Deleted,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Trashed => "trashed",
            Status::Deleted => "deleted",
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Item {
    pub kind: BoxKind,
    pub id: String,
    pub name: String,
    /// The id of the folder it is in; "" for the root.
    pub parent: String,
    pub status: Status,
    pub size: u64,
    /// Changes with every version: a new upload changes the content.
    pub version: u64,
    pub modified_at: DateTime<Utc>,
    /// Box's `sequence_id`: one more at every change of the item.
    pub sequence_id: u64,
}

/// One user event as the `changes` stream holds it: what happened, and the item as it was
/// then (Box's `source`).
#[derive(Clone, Debug)]
pub(crate) struct Event {
    pub event_id: String,
    pub event_type: &'static str,
    pub created_at: DateTime<Utc>,
    pub source: Value,
}

/// The root folder's id and name (<https://developer.box.com/guides/folders/>).
pub const ROOT_ID: &str = "0";
const ROOT_NAME: &str = "All Files";

/// Where stream positions start: Box's are large opaque numbers, so the stand-in's are too
/// (and "0", which Box reads as "from the oldest event kept", is not one of them).
pub(crate) const STREAM_BASE: u64 = 1_152_922_976_252_290_000;

#[derive(Clone, Debug)]
pub(crate) struct Tree {
    pub items: BTreeMap<(BoxKind, String), Item>,
    pub events: Vec<Event>,
    /// Every page of events also holds each of its events a second time, the page in
    /// reverse order: Box "may return events more than once or out of chronological order"
    /// (<https://developer.box.com/guides/events/>).
    pub repeat_events: bool,
}

impl Default for Tree {
    fn default() -> Tree {
        let root = Item {
            kind: BoxKind::Folder,
            id: ROOT_ID.into(),
            name: ROOT_NAME.into(),
            parent: String::new(),
            status: Status::Active,
            size: 0,
            version: 0,
            modified_at: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
            sequence_id: 0,
        };
        Tree {
            items: BTreeMap::from([((BoxKind::Folder, ROOT_ID.to_string()), root)]),
            events: Vec::new(),
            repeat_events: false,
        }
    }
}

fn stamp(at: DateTime<Utc>) -> String {
    // Box writes times with an offset, to the second (`2012-12-12T10:53:43-08:00`).
    at.to_rfc3339_opts(SecondsFormat::Secs, false)
}

impl Tree {
    pub fn get(&self, kind: BoxKind, id: &str) -> Option<&Item> {
        self.items.get(&(kind, id.to_string()))
    }

    fn folder(&self, id: &str) -> Option<&Item> {
        self.get(BoxKind::Folder, id)
    }

    /// Whether the item can be opened: itself active, and every folder above it too.
    pub fn reachable(&self, kind: BoxKind, id: &str) -> bool {
        let mut current = self.get(kind, id);
        while let Some(item) = current {
            if item.status != Status::Active {
                return false;
            }
            if item.id == ROOT_ID && item.kind == BoxKind::Folder {
                return true;
            }
            current = self.folder(&item.parent);
        }
        false
    }

    /// The folders above the item, root first (Box's `path_collection`), or the Trash when
    /// the item itself is trashed.
    fn path_collection(&self, item: &Item) -> Value {
        if item.status == Status::Trashed {
            let trash = json!({"type": "folder", "id": "1", "sequence_id": null, "etag": null,
                               "name": "Trash"});
            return json!({"total_count": 1, "entries": [trash]});
        }
        let mut above = Vec::new();
        let mut parent = self.folder(&item.parent);
        while let Some(folder) = parent {
            above.push(self.mini(folder));
            parent = self.folder(&folder.parent);
        }
        above.reverse();
        json!({"total_count": above.len(), "entries": above})
    }

    /// The item's "mini" form: what Box always answers (`type`, `id`, `sequence_id`, `etag`,
    /// `name`).
    fn mini(&self, item: &Item) -> Value {
        let root = item.kind == BoxKind::Folder && item.id == ROOT_ID;
        // The root folder has no sequence id or etag.
        let (sequence_id, etag) = match root {
            true => (Value::Null, Value::Null),
            false => (
                json!(item.sequence_id.to_string()),
                json!(item.sequence_id.to_string()),
            ),
        };
        json!({"type": item.kind.as_str(), "id": item.id, "sequence_id": sequence_id,
               "etag": etag, "name": item.name})
    }

    /// The item with every field the stand-in knows.
    pub fn full(&self, item: &Item) -> Value {
        let mut value = self.mini(item);
        let fields = value.as_object_mut().expect("mini is an object");
        fields.insert("size".into(), json!(item.size));
        fields.insert("modified_at".into(), json!(stamp(item.modified_at)));
        fields.insert("created_at".into(), json!(stamp(item.modified_at)));
        fields.insert("item_status".into(), json!(item.status.as_str()));
        fields.insert("path_collection".into(), self.path_collection(item));
        let parent = self.folder(&item.parent).map(|p| self.mini(p));
        fields.insert("parent".into(), parent.unwrap_or(Value::Null));
        if item.kind == BoxKind::File {
            fields.insert("sha1".into(), json!(sha1_of(item)));
        }
        value
    }

    /// The item as `fields` selects it: the mini fields' `type`, `id` and `etag` always, and
    /// only the named others ("the response will only include the fields requested, plus
    /// the base fields", <https://developer.box.com/guides/api-calls/request-extra-fields/>).
    pub fn selected(&self, item: &Item, fields: Option<&str>) -> Value {
        let full = self.full(item);
        let Some(fields) = fields else {
            return full;
        };
        let full = full.as_object().expect("full is an object");
        let mut chosen = Map::new();
        for name in ["type", "id", "etag"]
            .into_iter()
            .chain(fields.split(',').map(str::trim))
        {
            if let Some(value) = full.get(name) {
                chosen.insert(name.to_string(), value.clone());
            }
        }
        Value::Object(chosen)
    }

    /// The active children of a folder, folders first, each by id.
    pub fn children(&self, folder: &str) -> Vec<&Item> {
        let mut children: Vec<&Item> = self
            .items
            .values()
            .filter(|item| item.parent == folder && item.status == Status::Active)
            .filter(|item| !(item.kind == BoxKind::Folder && item.id == ROOT_ID))
            .collect();
        children.sort_by_key(|item| (item.kind, item.id.parse::<u64>().unwrap_or(0)));
        children
    }

    /// Records an event of `event_type` for the item as it is now.
    pub fn record(&mut self, kind: BoxKind, id: &str, event_type: &'static str) {
        let item = self
            .get(kind, id)
            .expect("events name existing items")
            .clone();
        let source = self.full(&item);
        let number = self.events.len() + 1;
        self.events.push(Event {
            event_id: hex::encode(Sha256::digest(format!("{number}|{id}").as_bytes()))[..40]
                .to_string(),
            event_type,
            created_at: Utc::now(),
            source,
        });
    }

    /// Every reachable item but the root, as (type, id, path from the root).
    pub fn reachable_paths(&self) -> Vec<(BoxKind, String, String)> {
        let mut found: Vec<(BoxKind, String, String)> = self
            .items
            .values()
            .filter(|item| !(item.kind == BoxKind::Folder && item.id == ROOT_ID))
            .filter(|item| self.reachable(item.kind, &item.id))
            .map(|item| (item.kind, item.id.clone(), self.path_of(item)))
            .collect();
        found.sort();
        found
    }

    /// `/A/B/name`: the names of the folders above the item (the root's left out), then its own.
    pub fn path_of(&self, item: &Item) -> String {
        let mut names = vec![item.name.clone()];
        let mut parent = self.folder(&item.parent);
        while let Some(folder) = parent.filter(|f| f.id != ROOT_ID) {
            names.push(folder.name.clone());
            parent = self.folder(&folder.parent);
        }
        names.reverse();
        format!("/{}", names.join("/"))
    }

    /// The stream position after the latest event.
    pub fn now(&self) -> u64 {
        STREAM_BASE + self.events.len() as u64
    }
}

/// A SHA-1-shaped digest (40 upper-case hex digits, as Box writes them) standing in for the
/// content's: it changes with every version.
fn sha1_of(item: &Item) -> String {
    let digest = Sha256::digest(format!("{}|{}", item.id, item.version).as_bytes());
    hex::encode_upper(&digest[..20])
}
