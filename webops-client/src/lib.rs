//! A typed async client of the WebOps hosting platform: the documented REST API v1
//! ([`Client`]) and the shipped WebOps control panel ([`PanelClient`]), behind one trait,
//! [`WebOpsApi`]; [`ClientBuilder::build_any`] picks the one a server speaks.
//!
//! ```no_run
//! # async fn demo() -> Result<(), webops_client::Error> {
//! use std::time::Duration;
//! use webops_client::{Client, DeploymentFilter, WebOpsApi};
//!
//! let client = Client::builder()
//!     .base_url("http://localhost:8000")
//!     .api_version("v1")
//!     .token("my-api-token")
//!     .timeout(Duration::from_secs(30))
//!     .max_retries(3)
//!     .build()?;
//! let page = client.list_deployments(&DeploymentFilter::new().per_page(10)).await?;
//! for deployment in page.items {
//!     println!("{} {}", deployment.name, deployment.status);
//! }
//! # Ok(()) }
//! ```
//!
//! The library reads no environment on its own; [`ClientConfig::from_env`] is an explicit helper.

mod any;
mod api;
mod client;
mod decode;
mod error;
mod flavor;
mod panel;
mod plan;
mod retry;
mod sync;
mod trace;
mod types;

pub use any::AnyClient;
#[cfg(feature = "mock")]
pub use api::MockWebOpsApi;
pub use api::{MAX_PER_PAGE, WebOpsApi, WebOpsApiExt};
pub use client::{Client, ClientBuilder, ClientConfig, RequestEvent, RequestObserver};
pub use decode::REDACTED;
pub use error::{Error, ErrorKind, Result};
pub use flavor::{ApiFlavor, Capabilities, Flavor, NO_ENVIRONMENT};
pub use panel::{PanelClient, RequestBudget};
pub use plan::{Change, PlannedRequest};
pub use trace::{RequestSpan, RequestTracer, TracedRequest};
pub use types::*;

/// Compiles the README's example as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
