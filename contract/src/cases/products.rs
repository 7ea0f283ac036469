//! `catalog` as the public sees it: listing, paging, search, category filter, product pages
//! with availability and recommendations, and deterministic seeding.

use anyhow::{Result, ensure};
use serde_json::{Value, json};

use crate::client::with_query;
use crate::{Case, Ctx, Fields};

pub(crate) fn cases() -> Vec<Case> {
    cases![products:
        listing_defaults_to_the_first_page_of_twenty_sorted_by_id,
        seeded_products_have_the_documented_shape,
        the_last_page_holds_the_rest_and_a_page_beyond_is_empty,
        per_page_outside_1_to_100_or_page_0_returns_422,
        non_numeric_paging_returns_400,
        search_matches_name_substrings_case_insensitively_and_counts_all_matches,
        search_treats_percent_and_underscore_literally,
        search_longer_than_100_characters_returns_422,
        category_filter_is_an_exact_match,
        search_and_category_filter_combine,
        product_page_shows_the_product_availability_and_recommendations,
        product_page_of_an_unknown_id_returns_404,
        product_page_with_a_non_numeric_id_returns_400,
        availability_is_low_with_five_units_or_fewer,
        availability_turns_out_of_stock_when_the_last_unit_is_sold,
        the_same_seed_gives_the_same_catalog,
        another_seed_gives_another_catalog,
        products_need_no_token,
    ]
}

async fn listing_defaults_to_the_first_page_of_twenty_sorted_by_id(ctx: Ctx) -> Result<()> {
    let resp = ctx.get("/api/products").await?;
    let page = resp.expect(200)?;
    ensure!(
        page.i64_at("page")? == 1,
        "default page is not 1: {}",
        resp.text
    );
    ensure!(
        page.i64_at("per_page")? == 20,
        "default per_page is not 20: {}",
        resp.text
    );
    ensure!(
        page.i64_at("total")? == 30,
        "30 products were seeded: {}",
        resp.text
    );
    ensure!(
        ids(page)? == (1..=20).collect::<Vec<_>>(),
        "not ids 1..=20 in order: {}",
        resp.text
    );
    Ok(())
}

async fn seeded_products_have_the_documented_shape(ctx: Ctx) -> Result<()> {
    for product in ctx.all_products().await? {
        let id = product.i64_at("id")?;
        ensure!(
            product.str_at("sku")? == format!("SKU-{id:06}"),
            "sku: {product}"
        );
        ensure!(
            product.str_at("name")?.ends_with(&format!(" {id}")),
            "name: {product}"
        );
        product.str_at("description")?;
        let category = product.str_at("category")?;
        ensure!(
            domain::seed::CATEGORIES.contains(&category),
            "category: {product}"
        );
        let price = product.i64_at("price_cents")?;
        ensure!((199..=19_999).contains(&price), "price: {product}");
    }
    Ok(())
}

async fn the_last_page_holds_the_rest_and_a_page_beyond_is_empty(ctx: Ctx) -> Result<()> {
    let resp = ctx.get("/api/products?page=2").await?;
    let page = resp.expect(200)?;
    ensure!(
        ids(page)? == (21..=30).collect::<Vec<_>>(),
        "page 2: {}",
        resp.text
    );
    ensure!(
        page.i64_at("total")? == 30 && page.i64_at("page")? == 2,
        "{}",
        resp.text
    );
    let resp = ctx.get("/api/products?page=3&per_page=7").await?;
    ensure!(
        ids(resp.expect(200)?)? == (15..=21).collect::<Vec<_>>(),
        "page 3 of 7: {}",
        resp.text
    );
    let resp = ctx.get("/api/products?page=5").await?;
    let page = resp.expect(200)?;
    ensure!(
        ids(page)?.is_empty() && page.i64_at("total")? == 30,
        "page 5: {}",
        resp.text
    );
    let resp = ctx.get("/api/products?per_page=100").await?;
    ensure!(
        ids(resp.expect(200)?)?.len() == 30,
        "per_page=100: {}",
        resp.text
    );
    Ok(())
}

async fn per_page_outside_1_to_100_or_page_0_returns_422(ctx: Ctx) -> Result<()> {
    for query in ["per_page=0", "per_page=101", "page=0", "per_page=100000"] {
        ctx.get(&format!("/api/products?{query}"))
            .await?
            .expect_error(422, "invalid")?;
    }
    ctx.get("/api/products?per_page=1").await?.expect(200)?;
    Ok(())
}

async fn non_numeric_paging_returns_400(ctx: Ctx) -> Result<()> {
    for query in [
        "page=abc",
        "per_page=ten",
        "page=1.5",
        "per_page=99999999999999999999",
    ] {
        let resp = ctx.get(&format!("/api/products?{query}")).await?;
        resp.expect_error(400, "bad_request")?;
    }
    Ok(())
}

async fn search_matches_name_substrings_case_insensitively_and_counts_all_matches(
    ctx: Ctx,
) -> Result<()> {
    let everything = ctx.all_products().await?;
    // The second word of a seeded name is a noun shared by several products.
    let name = ctx.product(12).await?.str_at("name")?.to_owned();
    let noun = name.split(' ').nth(1).unwrap_or(&name).to_owned();
    let expected: Vec<i64> = matching(&everything, |product| {
        Ok(product
            .str_at("name")?
            .to_lowercase()
            .contains(&noun.to_lowercase()))
    })?;
    for q in [noun.to_uppercase(), noun.to_lowercase()] {
        let resp = ctx
            .get(&with_query(
                "/api/products",
                &[("q", &q), ("per_page", "100")],
            ))
            .await?;
        let page = resp.expect(200)?;
        ensure!(
            ids(page)? == expected,
            "q={q}: expected ids {expected:?}, got {}",
            resp.text
        );
        ensure!(
            page.i64_at("total")? == expected.len() as i64,
            "q={q} total: {}",
            resp.text
        );
    }
    // total counts every match, not just the page.
    let resp = ctx
        .get(&with_query(
            "/api/products",
            &[("q", &noun), ("per_page", "1")],
        ))
        .await?;
    ensure!(
        resp.expect(200)?.i64_at("total")? == expected.len() as i64,
        "{}",
        resp.text
    );
    Ok(())
}

async fn search_treats_percent_and_underscore_literally(ctx: Ctx) -> Result<()> {
    for q in ["%", "_", "%%", "S%p", "_ _", "\\"] {
        let resp = ctx.get(&with_query("/api/products", &[("q", q)])).await?;
        let page = resp.expect(200)?;
        ensure!(
            page.i64_at("total")? == 0,
            "q={q:?} matched as a wildcard: {}",
            resp.text
        );
    }
    Ok(())
}

async fn search_longer_than_100_characters_returns_422(ctx: Ctx) -> Result<()> {
    let long = "a".repeat(101);
    ctx.get(&with_query("/api/products", &[("q", &long)]))
        .await?
        .expect_error(422, "invalid")?;
    let limit = "é".repeat(100);
    let resp = ctx
        .get(&with_query("/api/products", &[("q", &limit)]))
        .await?;
    ensure!(resp.expect(200)?.i64_at("total")? == 0, "{}", resp.text);
    Ok(())
}

async fn category_filter_is_an_exact_match(ctx: Ctx) -> Result<()> {
    let everything = ctx.all_products().await?;
    let category = everything[0].str_at("category")?.to_owned();
    let expected = matching(&everything, |product| {
        Ok(product.str_at("category")? == category)
    })?;
    let query = with_query(
        "/api/products",
        &[("category", &category), ("per_page", "100")],
    );
    let resp = ctx.get(&query).await?;
    ensure!(
        ids(resp.expect(200)?)? == expected,
        "category={category}: {}",
        resp.text
    );
    let prefix = &category[..category.len() - 1];
    let resp = ctx
        .get(&with_query("/api/products", &[("category", prefix)]))
        .await?;
    ensure!(
        resp.expect(200)?.i64_at("total")? == 0,
        "a prefix matched: {}",
        resp.text
    );
    let resp = ctx
        .get(&with_query(
            "/api/products",
            &[("category", "no-such-aisle")],
        ))
        .await?;
    ensure!(resp.expect(200)?.i64_at("total")? == 0, "{}", resp.text);
    Ok(())
}

async fn search_and_category_filter_combine(ctx: Ctx) -> Result<()> {
    let everything = ctx.all_products().await?;
    let category = everything[4].str_at("category")?.to_owned();
    let expected = matching(&everything, |product| {
        Ok(product.str_at("category")? == category && product.str_at("name")?.contains('1'))
    })?;
    let query = with_query(
        "/api/products",
        &[("q", "1"), ("category", &category), ("per_page", "100")],
    );
    let resp = ctx.get(&query).await?;
    ensure!(
        ids(resp.expect(200)?)? == expected,
        "expected {expected:?}: {}",
        resp.text
    );
    Ok(())
}

async fn product_page_shows_the_product_availability_and_recommendations(ctx: Ctx) -> Result<()> {
    let everything = ctx.all_products().await?;
    let listed = &everything[6];
    let id = listed.i64_at("id")?;
    let page = ctx.product(id).await?;
    for field in [
        "id",
        "sku",
        "name",
        "description",
        "category",
        "price_cents",
    ] {
        ensure!(
            page.field(field)? == listed.field(field)?,
            "{field} differs from the list: {page}"
        );
    }
    ensure!(
        page.str_at("availability")? == "in_stock",
        "10 units are in_stock: {page}"
    );
    let recommendations = page.array_at("recommendations")?;
    let same_category =
        matching(&everything, |product| {
            Ok(product.str_at("category")? == listed.str_at("category")?
                && product.i64_at("id")? != id)
        })?;
    ensure!(
        same_category.is_empty() || !recommendations.is_empty(),
        "product {id} has peers {same_category:?} but no recommendations"
    );
    for recommendation in recommendations {
        let other = recommendation.i64_at("product_id")?;
        ensure!(other != id, "a product recommends itself: {page}");
        ensure!(
            same_category.contains(&other),
            "recommended {other} is from another category"
        );
        let other_name = everything[usize::try_from(other - 1)?].str_at("name")?;
        ensure!(
            recommendation.str_at("name")? == other_name,
            "wrong name: {recommendation}"
        );
        recommendation.i64_at("score")?;
    }
    Ok(())
}

async fn product_page_of_an_unknown_id_returns_404(ctx: Ctx) -> Result<()> {
    for id in ["31", "999999999", "0", "-1"] {
        ctx.get(&format!("/api/products/{id}"))
            .await?
            .expect_error(404, "not_found")?;
    }
    Ok(())
}

async fn product_page_with_a_non_numeric_id_returns_400(ctx: Ctx) -> Result<()> {
    for id in ["abc", "1.5", "1e3", "99999999999999999999999", "%20"] {
        ctx.get(&format!("/api/products/{id}"))
            .await?
            .expect_error(400, "bad_request")?;
    }
    Ok(())
}

async fn availability_is_low_with_five_units_or_fewer(ctx: Ctx) -> Result<()> {
    ctx.reset(json!({"products": 30, "stock": 5, "users": 5, "seed": 7}))
        .await?;
    ensure!(
        ctx.product(1).await?.str_at("availability")? == "low",
        "5 units must be low"
    );
    ctx.reset(json!({"products": 30, "stock": 6, "users": 5, "seed": 7}))
        .await?;
    ensure!(
        ctx.product(1).await?.str_at("availability")? == "in_stock",
        "6 units: in_stock"
    );
    ctx.reset(json!({"products": 30, "stock": 0, "users": 5, "seed": 7}))
        .await?;
    ensure!(
        ctx.product(1).await?.str_at("availability")? == "out_of_stock",
        "0 units"
    );
    Ok(())
}

async fn availability_turns_out_of_stock_when_the_last_unit_is_sold(ctx: Ctx) -> Result<()> {
    ctx.reset(json!({"products": 30, "stock": 7, "users": 5, "seed": 7}))
        .await?;
    let token = ctx.login_seeded(1).await?;
    ctx.put_in_cart(&token, 3, 2).await?;
    ctx.checkout(&token, "first").await?.expect(201)?;
    let page = ctx.product(3).await?;
    ensure!(
        page.str_at("availability")? == "low",
        "5 units left must be low: {page}"
    );
    ctx.put_in_cart(&token, 3, 5).await?;
    ctx.checkout(&token, "second").await?.expect(201)?;
    let page = ctx.product(3).await?;
    ensure!(
        page.str_at("availability")? == "out_of_stock",
        "0 left: {page}"
    );
    Ok(())
}

async fn the_same_seed_gives_the_same_catalog(ctx: Ctx) -> Result<()> {
    let before = ctx.all_products().await?;
    let recommendations_before = ctx.product(5).await?.field("recommendations")?.clone();
    ctx.reset(crate::default_reset()).await?;
    ensure!(
        ctx.all_products().await? == before,
        "the same seed gave another catalog"
    );
    let recommendations_after = ctx.product(5).await?.field("recommendations")?.clone();
    ensure!(
        recommendations_after == recommendations_before,
        "recommendations changed"
    );
    Ok(())
}

async fn another_seed_gives_another_catalog(ctx: Ctx) -> Result<()> {
    let before = ctx.all_products().await?;
    ctx.reset(json!({"products": 30, "stock": 10, "users": 5, "seed": 8}))
        .await?;
    let after = ctx.all_products().await?;
    ensure!(
        after.len() == 30,
        "30 products expected, got {}",
        after.len()
    );
    ensure!(after != before, "seed 8 gave the catalog of seed 7");
    Ok(())
}

async fn products_need_no_token(ctx: Ctx) -> Result<()> {
    // Public pages answer without any Authorization header at all.
    ctx.get("/api/products").await?.expect(200)?;
    ctx.get("/api/products/1").await?.expect(200)?;
    Ok(())
}

fn ids(page: &Value) -> Result<Vec<i64>> {
    page.array_at("items")?
        .iter()
        .map(|item| item.i64_at("id"))
        .collect()
}

fn matching(products: &[Value], keep: impl Fn(&Value) -> Result<bool>) -> Result<Vec<i64>> {
    let mut ids = Vec::new();
    for product in products {
        if keep(product)? {
            ids.push(product.i64_at("id")?);
        }
    }
    Ok(ids)
}
