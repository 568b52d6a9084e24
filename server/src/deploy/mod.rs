//! The deploy engine: from a build and an environment to a finished deployment — fetch, read
//! and check parameters, pre-flight the imports, create the stack or an update change set,
//! execute, watch until a terminal status — each step persisted and pushed live.

pub mod cfn;
pub mod engine;
pub mod imports;
pub mod parameters;

pub use engine::{Engine, Settings};
