//! Every type that crosses the wire between the deployer, its page and its clients — requests,
//! answers, live events — with serde and nothing else: no Leptos, no axum, no AWS. The server, the
//! page (through `app`, which re-exports these modules) and `deployctl` speak in these types.
//! With the `schema` feature, each also describes itself for the API document.

pub mod auth;
pub mod deployment;
pub mod jenkins;
pub mod model;
pub mod pause;
pub mod time;
