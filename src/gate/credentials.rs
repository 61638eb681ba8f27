//! Kubernetes credentials: the in-cluster service account, a kubeconfig file (`--kubeconfig`,
//! `KUBECONFIG`, `~/.kube/config`) and its contexts, with errors that say what to set.

use super::access;

/// The client configuration: see [`super::judge_requires`] for the order. The error says what to set.
pub async fn kube_config(
    cli_context: Option<&str>,
    config_context: Option<&str>,
) -> Result<kube::Config, String> {
    kube_config_at(None, cli_context, config_context).await
}

/// [`kube_config`] with an explicit kubeconfig file (`--kubeconfig`), which replaces
/// `KUBECONFIG` and is read even in a pod.
pub async fn kube_config_at(
    kubeconfig: Option<&std::path::Path>,
    cli_context: Option<&str>,
    config_context: Option<&str>,
) -> Result<kube::Config, String> {
    use kube::config::{KubeConfigOptions, Kubeconfig};
    if let Some(file) = kubeconfig {
        let context = cli_context.or(config_context);
        let parsed = Kubeconfig::read_from(file).map_err(|e| {
            format!(
                "cannot read kubeconfig {} (--kubeconfig): {}; pass the path of a readable kubeconfig file",
                file.display(),
                access::error_chain(&e)
            )
        })?;
        let options = KubeConfigOptions {
            context: context.map(str::to_string),
            ..KubeConfigOptions::default()
        };
        return kube::Config::from_custom_kubeconfig(parsed, &options)
            .await
            .map_err(|e| {
                format!(
                    "cannot load {} from kubeconfig {} (--kubeconfig): {}",
                    context.map_or_else(
                        || "the current context".to_string(),
                        |c| format!("context `{c}`")
                    ),
                    file.display(),
                    access::error_chain(&e)
                )
            });
    }
    let from_kubeconfig = |context: Option<&str>| {
        let options = KubeConfigOptions {
            context: context.map(str::to_string),
            ..KubeConfigOptions::default()
        };
        async move { kube::Config::from_kubeconfig(&options).await }
    };
    if let Some(context) = cli_context {
        return from_kubeconfig(Some(context)).await.map_err(|e| {
            format!(
                "cannot load kubeconfig context `{context}`: {}",
                access::error_chain(&e)
            )
        });
    }
    if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
        return kube::Config::incluster().map_err(|e| {
            format!(
                "running in a pod but the service account cannot be read: {}; mount a service account token (automountServiceAccountToken) for the `concertina` ServiceAccount",
                access::error_chain(&e)
            )
        });
    }
    from_kubeconfig(config_context).await.map_err(|e| {
        format!(
            "no Kubernetes credentials: not running in a pod and no usable kubeconfig (KUBECONFIG or ~/.kube/config{}): {}",
            config_context.map(|c| format!(", context `{c}`")).unwrap_or_default(),
            access::error_chain(&e)
        )
    })
}
