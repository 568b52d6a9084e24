//! One page per file.

pub mod audit;
pub mod deployment;
pub mod home;
pub mod not_found;
pub mod project;
pub mod promotion;
pub mod routes;
pub mod tokens;
pub mod webhooks;
