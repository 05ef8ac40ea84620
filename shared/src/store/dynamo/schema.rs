//! The table's schema, as `template.yaml` declares it: its indexes and, for tests,
//! benchmarks and local emulators (feature `testing`), its creation. A deployed hub never
//! creates its table: the stack does.

#[cfg(feature = "testing")]
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    LocalSecondaryIndex, Projection, ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};

#[cfg(feature = "testing")]
use super::*;

pub const PROVIDER_INDEX: &str = "by-provider";
pub const SEQ_INDEX: &str = "by-seq";
pub const PATH_INDEX: &str = "by-path";
pub const FOLDER_INDEX: &str = "by-folder";

/// Creates the table as `template.yaml` does (keys, `by-provider`, `by-folder`, `by-seq` and
/// `by-path` indexes, TTL), for tests, benchmarks and local emulators.
#[cfg(feature = "testing")]
pub async fn create_table(client: &Client, table: &str) -> HubResult<()> {
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
    };
    let attr_of = |name: &str, kind: ScalarAttributeType| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(kind)
            .build()
    };
    let attr = |name: &str| attr_of(name, ScalarAttributeType::S);
    let index = GlobalSecondaryIndex::builder()
        .index_name(PROVIDER_INDEX)
        .key_schema(key("gsi1pk", KeyType::Hash).map_err(HubError::internal)?)
        .key_schema(key("gsi1sk", KeyType::Range).map_err(HubError::internal)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::Include)
                .non_key_attributes(STATUS_ATTRIBUTE)
                .build(),
        )
        .build()
        .map_err(HubError::internal)?;
    let folders = GlobalSecondaryIndex::builder()
        .index_name(FOLDER_INDEX)
        .key_schema(key(DRIVE_KEY_ATTRIBUTE, KeyType::Hash).map_err(HubError::internal)?)
        .key_schema(key(PLACE_ATTRIBUTE, KeyType::Range).map_err(HubError::internal)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::Include)
                .non_key_attributes(DELETED_ATTRIBUTE)
                .build(),
        )
        .build()
        .map_err(HubError::internal)?;
    // Both local indexes: the account's partition, ordered by `range`, every attribute.
    let local_index = |name: &str, range: &str| {
        LocalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key("pk", KeyType::Hash).map_err(HubError::internal)?)
            .key_schema(key(range, KeyType::Range).map_err(HubError::internal)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .map_err(HubError::internal)
    };
    let path_index = local_index(PATH_INDEX, PATH_ATTRIBUTE)?;
    let feed_index = local_index(SEQ_INDEX, SEQ_ATTRIBUTE)?;
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash).map_err(HubError::internal)?)
        .key_schema(key("sk", KeyType::Range).map_err(HubError::internal)?)
        .attribute_definitions(attr("pk").map_err(HubError::internal)?)
        .attribute_definitions(attr("sk").map_err(HubError::internal)?)
        .attribute_definitions(attr("gsi1pk").map_err(HubError::internal)?)
        .attribute_definitions(attr("gsi1sk").map_err(HubError::internal)?)
        .attribute_definitions(
            attr_of(SEQ_ATTRIBUTE, ScalarAttributeType::N).map_err(HubError::internal)?,
        )
        .global_secondary_indexes(index)
        .global_secondary_indexes(folders)
        .attribute_definitions(attr(DRIVE_KEY_ATTRIBUTE).map_err(HubError::internal)?)
        .attribute_definitions(attr(PLACE_ATTRIBUTE).map_err(HubError::internal)?)
        .attribute_definitions(attr(PATH_ATTRIBUTE).map_err(HubError::internal)?)
        .local_secondary_indexes(feed_index)
        .local_secondary_indexes(path_index)
        .send()
        .await
        .map_err(|e| failed("CreateTable", e))?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(TTL_ATTRIBUTE)
                .enabled(true)
                .build()
                .map_err(HubError::internal)?,
        )
        .send()
        .await
        .map_err(|e| failed("UpdateTimeToLive", e))?;
    Ok(())
}
