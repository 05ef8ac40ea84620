//! Everything the hub's Lambda functions share.
//!
//! - [`config`]: the environment, read once per cold start; [`cold_start`]: a function that
//!   cannot start answers every invocation with the reason instead of exiting.
//! - [`providers`]: the cloud-drive connectors behind one trait, and their registry.
//! - [`crypto`], [`store`], [`queue`]: token encryption, storage and the job queue, each with
//!   an AWS and a local implementation chosen by `HUB_BACKEND`.
//! - [`retry`]: the one retry engine (provider calls, DynamoDB and SQS batch rounds).
//! - [`deadline`]: the time an invocation has left, from which every budget derives.
//! - [`deployment`]: what the code assumes of `template.yaml` (timeouts, reserves, receive
//!   counts, required variables), compared with the template by `tests/template.rs`.
//! - [`cursor`]: the one codec of the opaque cursors `/users`, `/files` and `/changes` issue.
//! - [`drives`]: an account's drives (section 11), kept in its record.
//! - [`login`], [`accounts`], [`changes`], [`fanout`], [`sync`], [`push`]: what the
//!   functions do (`sync`: the `sync-worker` function's batch and the sync of one account).
//! - [`events`], [`delivery`], [`webhook_signature`]: events to the app, queued by those
//!   and delivered, signed, by `app-webhooks`.
//! - `web` (feature `web`): the HTTP side shared by the API functions (error responses, API
//!   key, extractors into the domain's typed arguments). Nothing else depends on HTTP, so the
//!   worker builds without axum.

pub mod accounts;
pub mod changes;
pub mod cold_start;
pub mod config;
pub mod connect;
pub mod content;
pub mod crypto;
pub mod cursor;
pub mod deadline;
pub mod delivery;
pub mod deployment;
pub mod drives;
pub mod error;
pub mod events;
pub mod fanout;
pub mod hub;
pub mod jobs;
pub mod login;
pub mod metrics;
pub mod model;
pub mod providers;
pub mod proxy;
pub mod purge;
pub mod push;
pub mod queries;
pub mod queue;
pub mod retry;
pub mod return_urls;
pub mod search;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod tokens;
#[cfg(feature = "web")]
pub mod web;
pub mod webhook_signature;

pub use error::{HubError, HubResult, ProviderError};
pub use hub::Hub;
#[cfg(feature = "testing")]
pub mod testing;
