//! Checks made before `shoplab load` sends its first request: the shop answers `/ready`, and
//! it serves at least the products the journeys will ask for. Both are refused with an error
//! naming what was found, because a load against a dead or smaller shop measures errors, not
//! the shop.

use std::time::Duration;

use anyhow::Context as _;

/// How long one check may take: a shop that cannot answer `/ready` within it is not ready.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Fails unless `GET {base_url}/ready` answers 2xx.
pub async fn check_ready(http: &reqwest::Client, base_url: &str) -> anyhow::Result<()> {
    let url = format!("{base_url}/ready");
    let response = http
        .get(&url)
        .timeout(CHECK_TIMEOUT)
        .send()
        .await
        .with_context(|| format!("the shop does not answer GET {url}: nothing was measured"))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        anyhow::bail!(
            "the shop is not ready: GET {url} answered {status} {}; nothing was measured",
            body.chars().take(300).collect::<String>()
        );
    }
    Ok(())
}

/// The number of products the shop's catalogue holds (`total` of `GET /api/products`).
pub async fn catalogue_size(http: &reqwest::Client, base_url: &str) -> anyhow::Result<u64> {
    #[derive(serde::Deserialize)]
    struct Page {
        total: u64,
    }
    let url = format!("{base_url}/api/products?per_page=1");
    let response = http
        .get(&url)
        .timeout(CHECK_TIMEOUT)
        .send()
        .await
        .with_context(|| format!("ask the catalogue's size: GET {url}"))?;
    let status = response.status();
    anyhow::ensure!(
        status.is_success(),
        "ask the catalogue's size: GET {url} answered {status}"
    );
    let page: Page = response
        .json()
        .await
        .with_context(|| format!("read the catalogue's size from GET {url}"))?;
    Ok(page.total)
}

/// Fails when the journeys would ask for products the shop does not have: product ids
/// `1..=asked` must all exist.
pub fn check_products(asked: u32, served: u64) -> anyhow::Result<()> {
    anyhow::ensure!(
        u64::from(asked) <= served,
        "--products {asked} asks for more products than the shop serves ({served}): \
         requests for the missing ones would fail as 404s; pass --products {served} or less"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_products;

    #[test]
    fn products_beyond_the_catalogue_are_refused_naming_both_numbers() {
        let error = check_products(5000, 1000).expect_err("5000 > 1000");
        let message = error.to_string();
        assert!(
            message.contains("5000") && message.contains("1000"),
            "{message}"
        );
        assert!(check_products(1000, 1000).is_ok());
        assert!(check_products(20, 1000).is_ok());
    }
}
