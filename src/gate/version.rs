//! Reading an app version from a pod or a pod template: a label, an annotation, or the tag
//! of a named container's image.

use crate::config::VersionSource;
use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// Reads the version text `source` points at, or says why there is none.
pub fn read_version(
    source: &VersionSource,
    meta: &ObjectMeta,
    spec: Option<&PodSpec>,
) -> Result<String, String> {
    match source {
        VersionSource::Label(key) => meta
            .labels
            .as_ref()
            .and_then(|l| l.get(key))
            .filter(|v| !v.trim().is_empty())
            .cloned()
            .ok_or_else(|| format!("no version: label {key} is missing")),
        VersionSource::Annotation(key) => meta
            .annotations
            .as_ref()
            .and_then(|a| a.get(key))
            .filter(|v| !v.trim().is_empty())
            .cloned()
            .ok_or_else(|| format!("no version: annotation {key} is missing")),
        VersionSource::Image(container) => {
            let image = spec
                .and_then(|s| {
                    s.containers
                        .iter()
                        .chain(s.init_containers.iter().flatten())
                        .find(|c| c.name == *container)
                })
                .ok_or_else(|| format!("no version: there is no container named {container}"))?
                .image
                .clone()
                .unwrap_or_default();
            image_tag(&image).map(str::to_string).ok_or_else(|| {
                format!("no version: image `{image}` of container {container} has no tag")
            })
        }
    }
}

/// The tag of an image reference (`registry:5000/shop/api:2.0.0@sha256:…` → `2.0.0`).
pub fn image_tag(image: &str) -> Option<&str> {
    let without_digest = image.split('@').next().unwrap_or(image);
    // A `:` before the last `/` belongs to a registry port.
    let last_segment = without_digest.rsplit('/').next().unwrap_or(without_digest);
    let (_, tag) = last_segment.rsplit_once(':')?;
    (!tag.is_empty()).then_some(tag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Container;

    #[test]
    fn image_tags_ignore_registry_ports_and_digests() {
        assert_eq!(image_tag("ghcr.io/shop/worker:1.9.2"), Some("1.9.2"));
        assert_eq!(
            image_tag("registry:5000/shop/worker:v2.0.0@sha256:abcd"),
            Some("v2.0.0")
        );
        assert_eq!(image_tag("registry:5000/shop/worker"), None);
        assert_eq!(image_tag("worker@sha256:abcd"), None);
        assert_eq!(image_tag("worker:"), None);
    }

    #[test]
    fn versions_come_from_the_configured_source() {
        let meta = ObjectMeta {
            labels: Some([("v".to_string(), "2.0.0".to_string())].into()),
            ..ObjectMeta::default()
        };
        let spec = PodSpec {
            containers: vec![Container {
                name: "worker".into(),
                image: Some("shop/worker:1.9.0".into()),
                ..Container::default()
            }],
            ..PodSpec::default()
        };
        assert_eq!(
            read_version(&VersionSource::Label("v".into()), &meta, None).unwrap(),
            "2.0.0"
        );
        assert!(
            read_version(&VersionSource::Annotation("v".into()), &meta, None)
                .unwrap_err()
                .contains("annotation v")
        );
        assert_eq!(
            read_version(&VersionSource::Image("worker".into()), &meta, Some(&spec)).unwrap(),
            "1.9.0"
        );
        assert!(
            read_version(&VersionSource::Image("api".into()), &meta, Some(&spec))
                .unwrap_err()
                .contains("no container named api")
        );
    }
}
