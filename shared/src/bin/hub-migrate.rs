//! `hub-migrate`: brings a deployed table's items up to the schema this version reads
//! (docs/DEPLOY.md, "Upgrading"). Run by the operator, with the AWS credentials of a role that
//! may `dynamodb:Scan` and `dynamodb:UpdateItem` the table and nothing more:
//!
//! ```text
//! TABLE_NAME=<stack>-hub AWS_REGION=<region> cargo run --release -p hub-shared --bin hub-migrate
//! ```
//!
//! Today's migration gives the index entries written before the `by-folder` index their keys
//! in it. It is safe to run while the hub runs, and to run again. The local store needs no
//! such step: it migrates its own index when it opens it.

use hub::store::dynamo::DynamoStore;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let table = std::env::var("TABLE_NAME")
        .map_err(|_| "TABLE_NAME must name the hub's table (<stack>-hub)")?;
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), &table);
    let report = store.backfill_folder_index().await?;
    println!(
        "{}: {} index entries without folder keys found, {} given theirs",
        table, report.found, report.updated
    );
    Ok(())
}
