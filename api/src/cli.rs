//! Command-line flags shared by every way of starting a shop process (`shoplab serve ...`,
//! the `monolith` binary). Only flags actually given override the other layers.

use std::path::PathBuf;

use serde::Serialize;

#[derive(Clone, Debug, Default, clap::Args, Serialize)]
pub struct ServeArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long)]
    #[serde(skip)]
    pub port: Option<u16>,
    /// Address to bind (default 127.0.0.1; 0.0.0.0 inside a container).
    #[arg(long)]
    #[serde(skip)]
    pub bind: Option<String>,
    /// Settings file (TOML); `SHOPLAB_*` variables and these flags override it.
    #[arg(long)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Database: sqlite://PATH (default, created when missing) or postgres://...
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db: Option<String>,
    /// Wipe and seed the shop at start with this seed.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Microservices only: a context this process calls and its replicas,
    /// `catalog=http://127.0.0.1:4101[,http://...]` (repeatable).
    #[arg(long = "upstream", value_parser = parse_upstream)]
    #[serde(skip_serializing_if = "Vec::is_empty", serialize_with = "upstream_map")]
    pub upstreams: Vec<(String, Vec<String>)>,
}

fn parse_upstream(text: &str) -> Result<(String, Vec<String>), String> {
    let (name, urls) = text.split_once('=').ok_or("expected NAME=URL[,URL...]")?;
    let urls: Vec<String> = urls
        .split(',')
        .filter(|url| !url.is_empty())
        .map(str::to_owned)
        .collect();
    if name.is_empty() || urls.is_empty() {
        return Err("expected NAME=URL[,URL...]".into());
    }
    // The hops parse each replica's address once and speak plain HTTP/1 (micro_rpc).
    for url in &urls {
        let uri: axum::http::Uri = url
            .parse()
            .map_err(|error| format!("{url:?} is not a URL: {error}"))?;
        if uri.scheme_str() != Some("http") || uri.authority().is_none() {
            return Err(format!("{url:?}: expected http://HOST:PORT"));
        }
    }
    Ok((name.to_owned(), urls))
}

fn upstream_map<S: serde::Serializer>(
    upstreams: &[(String, Vec<String>)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = serializer.serialize_map(Some(upstreams.len()))?;
    for (name, urls) in upstreams {
        map.serialize_entry(name, urls)?;
    }
    map.end()
}

impl ServeArgs {
    pub fn settings(&self) -> anyhow::Result<crate::Settings> {
        crate::Settings::load(self.config.as_deref(), self)
    }

    pub fn address(&self, default_port: u16) -> String {
        format!(
            "{}:{}",
            self.bind.as_deref().unwrap_or("127.0.0.1"),
            self.port.unwrap_or(default_port)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::parse_upstream;

    #[test]
    fn an_upstream_is_a_name_and_plain_http_replicas() {
        assert_eq!(
            parse_upstream("catalog=http://127.0.0.1:4101,http://catalog:8080").unwrap(),
            (
                "catalog".to_owned(),
                vec![
                    "http://127.0.0.1:4101".to_owned(),
                    "http://catalog:8080".to_owned()
                ]
            )
        );
        for bad in [
            "catalog",
            "=http://127.0.0.1:4101",
            "catalog=",
            "catalog=127.0.0.1:4101",
            "catalog=https://catalog:8443",
            "catalog=http://",
        ] {
            assert!(parse_upstream(bad).is_err(), "{bad:?} was taken");
        }
    }
}
