//! Keeps the three descriptions of the HTTP API in step: the OpenAPI document, the SAM
//! template's routes and `cargo lambda watch`'s router. (The functions' own routers are
//! checked against the OpenAPI document by the schemathesis run in CI.)
//!
//! Each file is read with a real parser, so a reformatted file (other indentation, quoted
//! keys, flow style) reads the same and a broken one fails here.

use std::collections::BTreeSet;

use serde_norway::Value;

/// The HTTP methods an OpenAPI path item may hold operations under (OpenAPI 3.1, "Path
/// Item Object"); its other keys (`parameters`, `summary`, ...) are not operations.
const OPENAPI_METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn workspace_file(path: &str) -> String {
    std::fs::read_to_string(format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// A YAML file as a value. CloudFormation's short-form intrinsics (`!Ref`, `!GetAtt`,
/// `!Sub`, ...) are YAML tags: they parse as tagged values, which the lookups below never
/// need to look inside.
fn yaml_file(path: &str) -> Value {
    serde_norway::from_str(&workspace_file(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `(METHOD, /path)` of every operation in docs/openapi.yaml.
fn openapi_operations() -> BTreeSet<(String, String)> {
    documented_operations(true)
}

/// The operations behind the HTTP API: those of the paths without servers of their own
/// (the content links are served by the content function's URL instead).
fn api_operations() -> BTreeSet<(String, String)> {
    documented_operations(false)
}

fn documented_operations(with_own_servers: bool) -> BTreeSet<(String, String)> {
    let document = yaml_file("docs/openapi.yaml");
    let paths = document["paths"]
        .as_mapping()
        .expect("openapi.yaml has paths");
    let mut operations = BTreeSet::new();
    for (path, item) in paths {
        let path = path.as_str().expect("a path is a string");
        let item = item.as_mapping().expect("a path item is a mapping");
        if !with_own_servers && item.contains_key("servers") {
            continue;
        }
        for method in item.keys().filter_map(Value::as_str) {
            if OPENAPI_METHODS.contains(&method) {
                operations.insert((method.to_uppercase(), path.to_string()));
            }
        }
    }
    operations
}

/// `(METHOD, /path)` of every `AWS::ApiGatewayV2::Route` in template.yaml.
fn template_routes() -> BTreeSet<(String, String)> {
    let template = yaml_file("template.yaml");
    let resources = template["Resources"]
        .as_mapping()
        .expect("template.yaml has Resources");
    resources
        .iter()
        .filter(|(_, resource)| resource["Type"].as_str() == Some("AWS::ApiGatewayV2::Route"))
        .map(|(name, resource)| {
            let key = resource["Properties"]["RouteKey"]
                .as_str()
                .unwrap_or_else(|| panic!("route {name:?} has a literal RouteKey"));
            let (method, path) = key
                .split_once(' ')
                .unwrap_or_else(|| panic!("RouteKey {key:?} is `METHOD /path`"));
            (method.to_string(), documented_path(path))
        })
        .collect()
}

/// A path as OpenAPI writes it: API Gateway's greedy `{path+}` and `cargo lambda watch`'s
/// catch-all `{*path}` are OpenAPI's `{path}`.
fn documented_path(path: &str) -> String {
    path.split('/')
        .map(|segment| match segment.strip_prefix("{*") {
            Some(name) => format!("{{{name}"),
            None => segment.replace("+}", "}"),
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn the_template_routes_match_the_openapi_document() {
    let template = template_routes();
    assert_eq!(template, api_operations());
    assert_eq!(template.len(), 21);
}

/// The local router's route for every path no function serves.
const LOCAL_CATCH_ALL: &str = "/{*unknown}";

#[test]
fn the_local_router_serves_every_documented_path() {
    let cargo: toml::Table = workspace_file("Cargo.toml").parse().expect("Cargo.toml");
    let router = cargo["workspace"]["metadata"]["lambda"]["watch"]["router"]
        .as_table()
        .expect("Cargo.toml has [workspace.metadata.lambda.watch.router]");
    // The catch-all sends every other path to a function's JSON 404; it serves no route.
    let local: BTreeSet<String> = router
        .keys()
        .filter(|key| key.as_str() != LOCAL_CATCH_ALL)
        .map(|key| documented_path(key))
        .collect();
    assert_eq!(
        router.get(LOCAL_CATCH_ALL).and_then(|f| f.as_str()),
        Some("users"),
        "the local router sends unknown paths to users, whose fallback answers the API's 404"
    );
    let documented: BTreeSet<String> = openapi_operations()
        .into_iter()
        .map(|(_, path)| path)
        .collect();
    assert_eq!(local, documented);
}

/// The property names of `components.schemas.<name>` in docs/openapi.yaml.
fn schema_properties(name: &str) -> BTreeSet<String> {
    let document = yaml_file("docs/openapi.yaml");
    let properties = document["components"]["schemas"][name]["properties"]
        .as_mapping()
        .unwrap_or_else(|| panic!("docs/openapi.yaml has no schema {name} with properties"));
    properties
        .keys()
        .map(|key| key.as_str().unwrap().to_string())
        .collect()
}

/// The keys a value serialises to, as the routes answer it.
fn serialised_keys(value: impl serde::Serialize) -> BTreeSet<String> {
    serde_json::to_value(value)
        .unwrap()
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

/// The schemas say `additionalProperties: false` and list every field as required: a field
/// added to an entry, an account row or a drive must be described, and a described one must
/// be sent (the schemathesis run only sees what its generated requests happen to return).
#[test]
fn the_documented_shapes_are_what_the_hub_sends() {
    use chrono::Utc;
    use hub::model::{AccountStatus, AccountView, Drive, DriveInfo, DriveKind, FileEntry};

    assert_eq!(
        serialised_keys(FileEntry::tombstone("id")),
        schema_properties("File")
    );
    let drive = Drive::new(DriveInfo {
        id: "my-drive".into(),
        name: "My Drive".into(),
        kind: DriveKind::MyDrive,
    });
    assert_eq!(serialised_keys(drive), schema_properties("Drive"));
    let account = AccountView {
        id: "id".into(),
        email: "ada@example.com".into(),
        provider: "google".into(),
        has_refresh_token: true,
        status: AccountStatus::Active,
        connected_at: Utc::now(),
        last_synced_at: None,
        owner: None,
        last_sync: None,
    };
    assert_eq!(serialised_keys(account), schema_properties("Account"));
    let location = hub::content::ContentLocation {
        url: "https://hub.example/content/t".into(),
        expires_at: Some(Utc::now()),
        streamed_by_hub: true,
        size: Some(1),
        max_bytes_per_request: Some(1),
    };
    assert_eq!(
        serialised_keys(location),
        schema_properties("ContentLocation")
    );
}

/// The query parameters docs/openapi.yaml gives `GET /users/{id}/files` are those the hub
/// takes: any other is refused, so an undocumented one would be a filter no client can use.
#[test]
fn the_documented_file_filters_are_what_the_hub_takes() {
    let document = yaml_file("docs/openapi.yaml");
    let documented: BTreeSet<String> = document["paths"]["/users/{id}/files"]["get"]["parameters"]
        .as_sequence()
        .expect("/files has parameters")
        .iter()
        .filter(|parameter| parameter["in"].as_str() == Some("query"))
        .map(|parameter| parameter["name"].as_str().unwrap().to_string())
        .collect();
    let taken: BTreeSet<String> = hub::web::FILES_PARAMETERS
        .iter()
        .map(|name| name.to_string())
        .collect();
    assert_eq!(documented, taken);
}

/// `(METHOD, /path)` of every HTTP row of README.md's route table (section "What it does"):
/// the rows whose first cell is code, `GET\|POST /path?query=` with the query left out.
fn readme_routes() -> BTreeSet<(String, String)> {
    let readme = workspace_file("README.md");
    let section = readme
        .split("\n## What it does")
        .nth(1)
        .expect("README.md has a section \"What it does\"");
    let mut routes = BTreeSet::new();
    for row in section.lines().take_while(|line| !line.starts_with("## ")) {
        let Some(cell) = row
            .strip_prefix("| `")
            .and_then(|rest| rest.split_once("` |"))
            .map(|(cell, _)| cell)
        else {
            continue;
        };
        let (methods, target) = cell
            .split_once(' ')
            .unwrap_or_else(|| panic!("README route {cell:?} is `METHOD /path`"));
        let path = target.split('?').next().unwrap();
        for method in methods.split("\\|") {
            routes.insert((method.to_string(), path.to_string()));
        }
    }
    routes
}

/// The README's table is what a newcomer reads first: a route the API has and the table
/// lacks (as `/connect` once was) fails here, and so does a row the API does not serve.
#[test]
fn the_readmes_route_table_lists_every_operation() {
    let documented = openapi_operations();
    // HEAD comes with every GET (RFC 9110 §9.3.2); the table names it where it is useful.
    let readme: BTreeSet<_> = readme_routes()
        .into_iter()
        .filter(|(method, path)| {
            method != "HEAD" || !documented.contains(&("GET".to_string(), path.clone()))
        })
        .collect();
    let missing: Vec<_> = documented.difference(&readme).collect();
    let extra: Vec<_> = readme.difference(&documented).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "README.md's route table lacks {missing:?} and has {extra:?} that docs/openapi.yaml does not"
    );
}
