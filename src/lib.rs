//! The `#[napi]` edge: turns JS values into core calls and core results
//! into JS values. No logic of its own beyond conversion.

#![deny(clippy::all)]

mod bench;
mod bridge;
mod convert;
mod engine;
mod host;

pub use engine::NativeEngine;

use napi_derive::napi;

/// Validates plugin options and returns them normalized (defaults filled in),
/// or throws an error whose message starts with its code.
#[napi]
pub fn parse_config(options_json: String, system_zone: Option<String>) -> napi::Result<serde_json::Value> {
    let raw: serde_json::Value = serde_json::from_str(&options_json).map_err(|e| convert::js_error_text("EC_INVALID_CONFIG", &e.to_string()))?;
    let cfg = ec_core::config::PluginConfig::parse(&raw, &convert::environment(system_zone)).map_err(convert::js_error)?;
    Ok(convert::config_to_json(&cfg))
}

#[napi]
pub fn core_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
