//! Helpers for the gate's tests: the shop's app config and requirement parsing.
#![allow(dead_code)]

use concertina::config::{AppConfig, Config};
use concertina::requires::{Requirement, parse_requires};
use std::collections::BTreeMap;

/// The apps of the fixtures: `api` (label), `worker` (image tag), `web` (Argo, label).
pub const SHOP_CONFIG: &str = r#"
[kubernetes]
namespace = "shop"

[apps.api]
selector = "app.kubernetes.io/name=api"
version = "label:app.kubernetes.io/version"

[apps.worker]
selector = "app=worker"
version = "image:worker"

[apps.web]
selector = "app.kubernetes.io/name in (web)"
version = "label:app.kubernetes.io/version"
"#;

/// The apps of [`SHOP_CONFIG`].
pub fn shop_apps() -> BTreeMap<String, AppConfig> {
    Config::parse(SHOP_CONFIG)
        .expect("the shop config parses")
        .apps
}

/// `api>=2.0.0` and friends.
pub fn req(text: &str) -> Vec<Requirement> {
    parse_requires(text).expect("a valid requires expression")
}
