//! The needs the project's tests have, each found the same way wherever a test needs it.

use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use crate::{Need, Unmet};

/// The variable naming the PostgreSQL server tests use.
pub const POSTGRES_ENV: &str = "SHOPLAB_TEST_POSTGRES_URL";
/// Where a machine's own PostgreSQL listens when the variable is unset.
const POSTGRES_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432";

/// A PostgreSQL server's URL (no database path, no trailing slash): the one
/// `SHOPLAB_TEST_POSTGRES_URL` names — broken if it does not accept a connection — or else
/// this machine's own on 127.0.0.1:5432 if it accepts one.
pub fn postgres() -> Need<String> {
    let named = std::env::var(POSTGRES_ENV)
        .ok()
        .map(|url| server_of(url.trim()))
        .filter(|url| !url.is_empty());
    let found = match named {
        Some(url) => accepts(&url)
            .map(|()| url.clone())
            .map_err(|why| Unmet::Broken(format!("{POSTGRES_ENV}={url}: {why}"))),
        None => accepts(POSTGRES_DEFAULT)
            .map(|()| POSTGRES_DEFAULT.to_owned())
            .map_err(|why| {
                Unmet::Absent(format!(
                    "no PostgreSQL at {POSTGRES_DEFAULT} ({why}); set {POSTGRES_ENV}"
                ))
            }),
    };
    Need::new("postgres", found)
}

/// The server part of a PostgreSQL URL: a database path or query, if any, removed.
fn server_of(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            parsed.set_path("");
            parsed.set_query(None);
            parsed.as_str().trim_end_matches('/').to_owned()
        }
        // Reported as broken by `accepts`, with the parser's reason.
        Err(_) => url.to_owned(),
    }
}

/// Whether the server in a `postgres://` URL accepts a TCP connection (within 2 s).
fn accepts(url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|error| format!("not a URL: {error}"))?;
    let host = parsed.host_str().ok_or("no host in the URL")?;
    let port = parsed.port().unwrap_or(5432);
    let address = (host, port)
        .to_socket_addrs()
        .map_err(|error| format!("{host} does not resolve: {error}"))?
        .next()
        .ok_or_else(|| format!("{host} has no address"))?;
    TcpStream::connect_timeout(&address, Duration::from_secs(2))
        .map(drop)
        .map_err(|error| format!("{address} refuses: {error}"))
}

/// chromedriver: the path `SHOPLAB_TEST_CHROMEDRIVER` names (broken if it does not exist),
/// else `/usr/bin/chromedriver` if installed.
pub fn chromedriver() -> Need<PathBuf> {
    let found = match std::env::var_os("SHOPLAB_TEST_CHROMEDRIVER") {
        Some(path) => {
            let path = PathBuf::from(path);
            if path.exists() {
                Ok(path)
            } else {
                Err(Unmet::Broken(format!(
                    "SHOPLAB_TEST_CHROMEDRIVER names {}, which does not exist",
                    path.display()
                )))
            }
        }
        None => {
            let path = PathBuf::from("/usr/bin/chromedriver");
            if path.exists() {
                Ok(path)
            } else {
                Err(Unmet::Absent(
                    "no chromedriver at /usr/bin/chromedriver and SHOPLAB_TEST_CHROMEDRIVER is \
                     unset (apt-get install chromium chromium-driver)"
                        .to_owned(),
                ))
            }
        }
    };
    Need::new("chromedriver", found)
}

/// The tag of the project's images in a running Docker engine: `SHOPLAB_TEST_COMPOSE_TAG`,
/// which `.ci/compose.sh` sets after building them.
pub fn compose_images() -> Need<String> {
    let found = std::env::var("SHOPLAB_TEST_COMPOSE_TAG").map_err(|_| {
        Unmet::Absent(
            "no Docker images to run: SHOPLAB_TEST_COMPOSE_TAG is unset (.ci/compose.sh builds \
             the images, starts an engine and sets it)"
                .to_owned(),
        )
    });
    Need::new("docker-images", found)
}

/// The tag of the project's images and of the swarm's own (`shoplab/swarm-node`,
/// `shoplab/postgres`) in a running Docker engine: `SHOPLAB_TEST_SWARM_TAG`, which
/// `.ci/swarm.sh` sets after building them; broken when the engine lacks the node image.
pub fn swarm_images() -> Need<String> {
    let found = match std::env::var("SHOPLAB_TEST_SWARM_TAG") {
        Err(_) => Err(Unmet::Absent(
            "no swarm to make: SHOPLAB_TEST_SWARM_TAG is unset (.ci/swarm.sh builds the images \
             with deploy/docker/build-images.sh and deploy/swarm/build-images.sh, starts an \
             engine and sets it)"
                .to_owned(),
        )),
        Ok(tag) => {
            let image = format!("shoplab/swarm-node:{tag}");
            let inspected = std::process::Command::new("docker")
                .args(["image", "inspect", "--format", "{{.Id}}", &image])
                .output();
            match inspected {
                Ok(output) if output.status.success() => Ok(tag),
                Ok(output) => Err(Unmet::Broken(format!(
                    "SHOPLAB_TEST_SWARM_TAG={tag}, but the engine has no {image}: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                ))),
                Err(error) => Err(Unmet::Broken(format!(
                    "SHOPLAB_TEST_SWARM_TAG={tag}, but docker does not run: {error}"
                ))),
            }
        }
    };
    Need::new("swarm", found)
}
