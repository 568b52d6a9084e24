//! The deploy engine: from a build and an environment to a finished deployment — fetch, read
//! and check parameters, pre-flight the imports, create the stack or an update change set,
//! execute, watch until a terminal status — each step persisted and pushed live.
//!
//! `engine.rs` starts and cancels; `finish.rs` records how each ends; `resume.rs` re-attaches after a restart; `run.rs` is
//! one deployment in flight (steps begin and end there, AWS calls retry there); `steps/` holds
//! one file per step; `outcome.rs` maps the stack's final status to the deployment's ending.

mod engine;
pub mod exports;
mod finish;
pub mod imports;
pub mod janitor;
mod outcome;
pub mod parameters;
pub mod preview;
mod resume;
mod run;
mod steps;
pub mod verdict;

pub use engine::{Engine, Plan, Settings};
pub use steps::MAX_TEMPLATE_BODY;
