//! Dropbox team spaces and the `Dropbox-API-Path-Root` header.
//!
//! A member of a team with a team space has two namespaces: the team's root namespace
//! (`root_info.root_namespace_id`), which holds the team folders and every member's folder,
//! and the home namespace (`home_namespace_id`), the member folder
//! (<https://developers.dropbox.com/dbx-team-files-guide>, "Team Spaces model"). Calls are
//! rooted at the home namespace unless the header says otherwise; paths are relative to the
//! namespace the call is rooted at, so in the team space the member folder is a folder at the
//! top. The header is a `common.PathRoot` union (<https://www.dropbox.com/developers/reference/path-root-header-modes>):
//! - `{".tag": "home"}`: the home namespace, as without the header;
//! - `{".tag": "root", "root": "<id>"}`: the user's root namespace, which must be `<id>`, else
//!   422 `invalid_root` whose value is the user's current `root_info` ("If this value does
//!   not match the user's root_namespace_id, a 422 error will be returned");
//! - `{".tag": "namespace_id", "namespace_id": "<id>"}`: a namespace the user can open, else
//!   422 `no_permission` (common.PathRootError). The stand-in knows the user's root and home
//!   namespaces only, not those of single shared folders.
//!
//! A value that is not such a union is a malformed call: 400 in plain text.
//!
//! A cursor remembers the namespace its listing is rooted at, so `list_folder/continue` needs
//! no header (Dropbox documents none for it); a header sent with it is checked all the same,
//! which is how a client keeping `root` mode on every call learns that the root changed. A
//! cursor of a namespace the user can no longer open (a team space left) answers `reset`:
//! Dropbox documents nothing for that case, and `reset` is its documented "list again".

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::{bad_input, path_display, Refusal};
use crate::state::{uid_of, Drive, FileSpec, Provider, State, TeamSpace};

pub(crate) const PATH_ROOT_HEADER: &str = "dropbox-api-path-root";

/// The user's home namespace id: the same whether or not the user's team has a team space
/// (a team's move to a team space keeps the member's files in their member folder).
pub(crate) fn home_namespace(user: &str) -> String {
    uid_of(&format!("namespace:{user}"))
}

/// `common.RootInfo` of the user: `team` (TeamRootInfo, with `home_path`, the member folder's
/// path in the team space) when the root differs from the home, `user` otherwise.
pub(crate) fn root_info(state: &State, user: &str) -> Value {
    let home = home_namespace(user);
    match state.dropbox_team_spaces.get(user) {
        None => json!({".tag": "user", "root_namespace_id": home, "home_namespace_id": home}),
        Some(team) => json!({
            ".tag": "team",
            "root_namespace_id": team.root,
            "home_namespace_id": home,
            "home_path": member_path(state, user, team),
        }),
    }
}

/// `users.FullTeam` of a team-space member (`null` for a user in no team): the team's id and
/// name with its policies, every one of which the spec requires.
pub(crate) fn team_json(state: &State, user: &str) -> Value {
    let Some(team) = state.dropbox_team_spaces.get(user) else {
        return Value::Null;
    };
    json!({
        "id": team.team_id,
        "name": team.team_name,
        "sharing_policies": {
            "shared_folder_member_policy": {".tag": "anyone"},
            "shared_folder_join_policy": {".tag": "from_anyone"},
            "shared_link_create_policy": {".tag": "default_public"},
            "group_creation_policy": {".tag": "admins_only"},
            "shared_folder_link_restriction_policy": {".tag": "anyone"},
            "enforce_link_password_policy": {".tag": "optional"},
            "default_link_expiration_days_policy": {".tag": "none"},
            "shared_link_default_permissions_policy": {".tag": "default"},
        },
        "office_addin_policy": {".tag": "disabled"},
        "top_level_content_policy": {".tag": "admin_only"},
    })
}

fn member_path(state: &State, user: &str, team: &TeamSpace) -> String {
    state
        .drives
        .get(&(Provider::Dropbox, user.to_string()))
        .and_then(|drive| drive.files.get(&team.member_folder))
        .map(|folder| format!("/{}", folder.spec.name))
        .unwrap_or_default()
}

/// How paths read from the namespace a call is rooted at.
#[derive(Clone, Debug)]
pub(crate) struct View {
    /// A team-space member's home: only what is under the member folder is seen, its path
    /// cut of this prefix (the member folder's path in the team space).
    member_prefix: Option<String>,
}

impl View {
    /// The item's path as the call sees it; `None` when it is outside the namespace.
    pub(crate) fn path(&self, drive: &Drive, spec: &FileSpec) -> Option<String> {
        let full = path_display(drive, spec);
        match &self.member_prefix {
            None => Some(full),
            Some(prefix) => full
                .strip_prefix(prefix.as_str())
                .filter(|rest| rest.starts_with('/'))
                .map(str::to_string),
        }
    }
}

/// The view of `namespace` for `user`, if the user can open it now: the team space (or, for
/// a user in no team space, the home, which is also the root), or a member's home.
pub(crate) fn view_of(state: &State, user: &str, namespace: &str) -> Option<View> {
    let home = home_namespace(user);
    match state.dropbox_team_spaces.get(user) {
        None => (namespace == home).then_some(View {
            member_prefix: None,
        }),
        Some(team) if namespace == team.root => Some(View {
            member_prefix: None,
        }),
        Some(team) if namespace == home => Some(View {
            member_prefix: Some(member_path(state, user, team)),
        }),
        Some(_) => None,
    }
}

/// The namespace the call's `Dropbox-API-Path-Root` header roots it at (`None`: no header),
/// or the refusal Dropbox gives.
pub(crate) fn requested_namespace(
    state: &State,
    user: &str,
    endpoint: &str,
    headers: &HeaderMap,
) -> Result<Option<String>, Refusal> {
    let Some(value) = headers.get(PATH_ROOT_HEADER) else {
        return Ok(None);
    };
    let malformed = |problem: &str| {
        Box::new(bad_input(
            endpoint,
            &format!("Invalid value for HTTP header \"Dropbox-API-Path-Root\": {problem}"),
        ))
    };
    let parsed: Value = value
        .to_str()
        .ok()
        .and_then(|text| serde_json::from_str(text).ok())
        .ok_or_else(|| malformed("could not decode input as JSON"))?;
    // A void member may be given as its bare tag (the HTTP documentation's "Request and
    // response formats"); `root` and `namespace_id` carry a value and may not.
    let (tag, object) = match &parsed {
        Value::String(tag) if tag == "home" => (tag.as_str(), None),
        Value::Object(object) => match object.get(".tag").and_then(Value::as_str) {
            Some(tag) => (tag, Some(object)),
            None => return Err(malformed("expected a \".tag\"")),
        },
        _ => return Err(malformed("expected a PathRoot union")),
    };
    // Its single member: a NamespaceId (`[-_0-9a-zA-Z:]+`, common.stone); nothing else.
    let member = |name: &str| -> Result<String, Refusal> {
        let object = object.expect("a tag with a value comes from an object");
        if object.keys().any(|key| key != ".tag" && key != name) {
            return Err(malformed("unknown field"));
        }
        let id = object
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| malformed(&format!("missing required field '{name}'")))?;
        let valid = !id.is_empty()
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':'));
        if !valid {
            return Err(malformed(&format!(
                "'{id}' did not match pattern '[-_0-9a-zA-Z:]+'"
            )));
        }
        Ok(id.to_string())
    };
    match tag {
        "home" => {
            if object.is_some_and(|object| object.len() > 1) {
                return Err(malformed("unknown field"));
            }
            Ok(Some(home_namespace(user)))
        }
        "root" => {
            let id = member("root")?;
            let current = current_root(state, user);
            if id != current {
                let info = root_info(state, user);
                let error = json!({".tag": "invalid_root", "invalid_root": info});
                return Err(Box::new(path_root_error(error)));
            }
            Ok(Some(id))
        }
        "namespace_id" => {
            let id = member("namespace_id")?;
            if view_of(state, user, &id).is_none() {
                return Err(Box::new(path_root_error(json!({".tag": "no_permission"}))));
            }
            Ok(Some(id))
        }
        other => Err(malformed(&format!("unknown tag '{other}'"))),
    }
}

/// The user's root namespace id now.
pub(crate) fn current_root(state: &State, user: &str) -> String {
    match state.dropbox_team_spaces.get(user) {
        Some(team) => team.root.clone(),
        None => home_namespace(user),
    }
}

/// 422 with a `common.PathRootError` (how Dropbox's SDKs read a 422: "Path Root request
/// error", e.g. DBRequestPathRootError); the summary names the union's tag.
fn path_root_error(error: Value) -> Response {
    let tag = error[".tag"].as_str().unwrap_or("other").to_string();
    let body = json!({"error_summary": format!("{tag}/..."), "error": error});
    (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
}

/// Makes `user` a member of a team with a team space named `team_name`: a new root namespace
/// holds the member folder (named after the user, as Dropbox names member folders), into which
/// everything the user had moves unchanged: the home namespace is the same, so paths relative
/// to it, and cursors rooted at it, stay valid. Returns the member folder's id. Items added
/// later at the top (`parent: None`) are in the team space, outside the member folder.
pub(crate) fn join(state: &mut State, user: &str, team_name: &str) -> String {
    state.dropbox_roots_made += 1;
    let made = state.dropbox_roots_made;
    let root = uid_of(&format!("team-root:{user}:{made}"));
    let email = state.email(Provider::Dropbox, user);
    let folder_name = format!("{} Example", super::given_name(&email));
    let member_folder = format!("id:dbmember{made:06}");
    let drive = state.drive(Provider::Dropbox, user);
    // Every version of a top-level item moves under the member folder without a change:
    // nothing moved for the home namespace.
    for file in drive.files.values_mut() {
        let specs = std::iter::once(&mut file.spec)
            .chain(file.previous.iter_mut())
            .chain(file.versions.iter_mut().map(|(_, spec)| spec));
        for spec in specs {
            if spec.parent.is_none() {
                spec.parent = Some(member_folder.clone());
            }
        }
    }
    drive.record(FileSpec::folder(member_folder.clone(), folder_name), false);
    let team = TeamSpace {
        team_id: format!("dbtid:{}", uid_of(&format!("team:{user}:{made}"))),
        team_name: team_name.to_string(),
        root,
        member_folder: member_folder.clone(),
    };
    state.dropbox_team_spaces.insert(user.to_string(), team);
    member_folder
}

/// The team moves to a new root namespace (its root id changes, its content does not).
pub(crate) fn move_root(state: &mut State, user: &str) {
    state.dropbox_roots_made += 1;
    let made = state.dropbox_roots_made;
    let team = state
        .dropbox_team_spaces
        .get_mut(user)
        .expect("the user is in a team space");
    team.root = uid_of(&format!("team-root:{user}:{made}"));
}

/// The user leaves the team space: the team folders are gone from the user's view, and the
/// member folder's content is the user's whole Dropbox again (root and home are one).
pub(crate) fn leave(state: &mut State, user: &str) {
    let team = state
        .dropbox_team_spaces
        .remove(user)
        .expect("the user is in a team space");
    let drive = state.drive(Provider::Dropbox, user);
    let member = drive
        .files
        .get(&team.member_folder)
        .map(|folder| path_display(drive, &folder.spec));
    let home: Vec<String> = drive
        .files
        .values()
        .filter(|file| {
            let path = path_display(drive, &file.spec);
            member
                .as_deref()
                .is_some_and(|prefix| path.starts_with(&format!("{prefix}/")))
        })
        .map(|file| file.spec.id.clone())
        .collect();
    drive.files.retain(|id, _| home.contains(id));
    for file in drive.files.values_mut() {
        let specs = std::iter::once(&mut file.spec)
            .chain(file.previous.iter_mut())
            .chain(file.versions.iter_mut().map(|(_, spec)| spec));
        for spec in specs {
            if spec.parent.as_deref() == Some(team.member_folder.as_str()) {
                spec.parent = None;
            }
        }
    }
}
