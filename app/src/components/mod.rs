//! Widgets shared by the pages.

pub mod build_select;
pub mod changes;
pub mod deployment_badge;
pub mod dialog;
pub mod env_tabs;
pub mod error_line;
pub mod header;
pub mod history;
pub mod jenkins;
pub mod notice;
pub mod pause;
pub mod progress;
pub mod project_nav;
pub mod recover;
pub mod stack_card;
pub mod status_badge;
