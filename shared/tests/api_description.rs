//! Keeps the three descriptions of the HTTP API in step: the OpenAPI document, the SAM
//! template's routes and `cargo lambda watch`'s router. (The functions' own routers are
//! checked against the OpenAPI document by the schemathesis run in CI.)

use std::collections::BTreeSet;

fn workspace_file(path: &str) -> String {
    std::fs::read_to_string(format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// `(METHOD, /path)` of every operation in docs/openapi.yaml.
fn openapi_operations() -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    let mut path = None;
    for line in workspace_file("docs/openapi.yaml").lines() {
        if let Some(p) = line
            .strip_prefix("  /")
            .and_then(|rest| rest.strip_suffix(':'))
        {
            path = Some(format!("/{p}"));
        } else if !line.starts_with("  ") {
            path = None;
        } else if let (Some(p), Some(method)) = (
            &path,
            line.strip_prefix("    ").and_then(|l| l.strip_suffix(':')),
        ) {
            if ["get", "post", "put", "patch", "delete"].contains(&method) {
                operations.insert((method.to_uppercase(), p.clone()));
            }
        }
    }
    operations
}

#[test]
fn the_template_routes_match_the_openapi_document() {
    let template: BTreeSet<(String, String)> = workspace_file("template.yaml")
        .lines()
        .filter_map(|line| line.trim().strip_prefix("RouteKey: "))
        .map(|key| {
            let (method, path) = key.split_once(' ').unwrap();
            (method.to_string(), path.to_string())
        })
        .collect();
    assert_eq!(template, openapi_operations());
    assert_eq!(template.len(), 7);
}

#[test]
fn the_local_router_serves_every_documented_path() {
    let cargo = workspace_file("Cargo.toml");
    let section = cargo
        .split("[workspace.metadata.lambda.watch.router]")
        .nth(1)
        .unwrap();
    let local: BTreeSet<String> = section
        .lines()
        .take_while(|line| !line.starts_with('['))
        .filter_map(|line| {
            line.strip_prefix('"')
                .and_then(|l| l.split_once('"'))
                .map(|(path, _)| path.to_string())
        })
        .collect();
    let documented: BTreeSet<String> = openapi_operations()
        .into_iter()
        .map(|(_, path)| path)
        .collect();
    assert_eq!(local, documented);
}
