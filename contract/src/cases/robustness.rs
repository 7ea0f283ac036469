//! Hostile and malformed input across every endpoint: oversized bodies, broken JSON, missing
//! content types, odd paths and strings. The rule here: refused with the documented 4xx and
//! error body, never a 5xx.

use anyhow::{Result, ensure};
use reqwest::Method;
use serde_json::json;

use crate::client::with_query;
use crate::{Call, Case, Ctx, Fields};

pub(crate) fn cases() -> Vec<Case> {
    cases![robustness:
        bodies_over_64_kib_return_413_on_every_json_endpoint,
        a_5_mb_body_sent_without_waiting_gets_its_413_not_a_reset,
        malformed_json_returns_400_on_every_json_endpoint,
        json_without_a_content_type_returns_400_on_every_json_endpoint,
        bodies_that_are_not_utf8_or_are_deeply_nested_are_refused_without_a_5xx,
        odd_paths_and_ids_are_refused_without_a_5xx,
        odd_search_strings_are_answered_without_a_5xx,
        control_characters_in_stored_strings_never_cause_a_5xx,
        wrong_methods_on_known_routes_are_refused_without_a_5xx,
        a_body_just_under_the_limit_is_read_not_refused_for_size,
    ]
}

/// Every endpoint that reads a JSON body, with how to authenticate it.
#[derive(Clone, Copy)]
enum Auth {
    None,
    User,
    Admin,
}

const JSON_ENDPOINTS: [(&str, &str, Auth); 6] = [
    ("POST", "/api/users", Auth::None),
    ("POST", "/api/sessions", Auth::None),
    ("PUT", "/api/cart/items/1", Auth::User),
    ("POST", "/api/orders", Auth::User),
    ("POST", "/admin/reset", Auth::Admin),
    ("POST", "/admin/faults", Auth::Admin),
];

async fn bodies_over_64_kib_return_413_on_every_json_endpoint(ctx: Ctx) -> Result<()> {
    let token = ctx.login_seeded(1).await?;
    let huge = json!({"name": "x".repeat(70 * 1024), "email": "big@example.com", "password": "long enough"});
    for (method, path, auth) in JSON_ENDPOINTS {
        let call = endpoint(&ctx, method, path, auth, &token).json(&huge);
        call.await?.expect_error(413, "payload_too_large")?;
    }
    // A huge body without any JSON content type is still refused for its size, not read.
    let call = ctx
        .request(Method::POST, "/api/users")
        .raw_body(vec![b'a'; 200 * 1024], None);
    call.await?.expect_client_error()?;
    Ok(())
}

/// reqwest sends a body at once, without `Expect: 100-continue`: a server that answers
/// before reading it and closes would reset the connection under the client's feet.
async fn a_5_mb_body_sent_without_waiting_gets_its_413_not_a_reset(ctx: Ctx) -> Result<()> {
    let body = json!({"name": "x".repeat(5 << 20), "email": "huge@example.com", "password": "long enough"});
    ctx.request(Method::POST, "/api/users")
        .json(&body)
        .await?
        .expect_error(413, "payload_too_large")?;
    Ok(())
}

async fn malformed_json_returns_400_on_every_json_endpoint(ctx: Ctx) -> Result<()> {
    let token = ctx.login_seeded(1).await?;
    // Every endpoint and body is tried before failing, so one run lists every mismatch.
    let mut mismatches = Vec::new();
    for body in [
        "{",
        "{\"email\":",
        "{\"quantity\":",
        "not json",
        "{'quantity': 1}",
        "{\"quantity\": 1,}",
        "",
    ] {
        for (method, path, auth) in JSON_ENDPOINTS {
            let call = endpoint(&ctx, method, path, auth, &token);
            let resp = call.raw_body(body, Some("application/json")).await?;
            if let Err(error) = resp.expect_error(400, "bad_request") {
                mismatches.push(format!("{error:#}"));
            }
        }
    }
    ensure!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    Ok(())
}

async fn json_without_a_content_type_returns_400_on_every_json_endpoint(ctx: Ctx) -> Result<()> {
    let token = ctx.login_seeded(1).await?;
    let body = json!({"email": "user1@shoplab.test", "password": "shoplab-7"}).to_string();
    for (method, path, auth) in JSON_ENDPOINTS {
        let resp = endpoint(&ctx, method, path, auth, &token)
            .raw_body(body.clone(), None)
            .await?;
        resp.expect_error(400, "bad_request")?;
        let resp = endpoint(&ctx, method, path, auth, &token)
            .raw_body(body.clone(), Some("text/plain"))
            .await?;
        resp.expect_client_error()?;
    }
    Ok(())
}

async fn bodies_that_are_not_utf8_or_are_deeply_nested_are_refused_without_a_5xx(
    ctx: Ctx,
) -> Result<()> {
    let token = ctx.login_seeded(1).await?;
    let nested = format!("{}{}", "[".repeat(5_000), "]".repeat(5_000));
    let bodies: [Vec<u8>; 4] = [
        b"{\"email\": \"\xff\xfe\", \"password\": \"x\", \"name\": \"y\"}".to_vec(),
        nested.into_bytes(),
        b"\x00\x00\x00".to_vec(),
        b"{\"quantity\": 1}\x00".to_vec(),
    ];
    for body in bodies {
        for (method, path, auth) in JSON_ENDPOINTS {
            let call = endpoint(&ctx, method, path, auth, &token);
            call.raw_body(body.clone(), Some("application/json"))
                .await?
                .expect_client_error()?;
        }
    }
    Ok(())
}

async fn odd_paths_and_ids_are_refused_without_a_5xx(ctx: Ctx) -> Result<()> {
    let token = ctx.login_seeded(1).await?;
    let long_id = "9".repeat(5_000);
    let long_path = format!("/api/products/{long_id}");
    for path in [
        "/api/products/%00",
        "/api/products/%F0%9F%A6%80",
        "/api/products/1%20OR%201=1",
        "/api/products/1;DROP%20TABLE%20products",
        "/api/products/..%2F..%2Fetc%2Fpasswd",
        "/api/products/",
        "/api/products/1/extra",
        "/api/orders/%27",
        "/api/cart/items/%22",
        long_path.as_str(),
    ] {
        ctx.get(path).token(&token).await?.expect_client_error()?;
    }
    let resp = ctx
        .put(
            "/api/cart/items/-99999999999999999999",
            json!({"quantity": 1}),
        )
        .token(&token)
        .await?;
    resp.expect_client_error()?;
    Ok(())
}

async fn odd_search_strings_are_answered_without_a_5xx(ctx: Ctx) -> Result<()> {
    for q in [
        "' OR 1=1 --",
        "\"; DROP TABLE products; --",
        "日本語🙂",
        "\u{0}",
        "[a-z]*",
        "\\%",
        "NULL",
        "\u{202e}lamp",
    ] {
        let resp = ctx.get(&with_query("/api/products", &[("q", q)])).await?;
        ensure!(resp.status < 500, "q={q:?}: {}", resp.text);
        if resp.status == 200 {
            ensure!(
                resp.json.i64_at("total")? == 0,
                "q={q:?} matched products: {}",
                resp.text
            );
        }
    }
    for category in ["' OR ''='", "books' --", "%"] {
        let resp = ctx
            .get(&with_query("/api/products", &[("category", category)]))
            .await?;
        ensure!(
            resp.expect(200)?.i64_at("total")? == 0,
            "category={category:?}: {}",
            resp.text
        );
    }
    Ok(())
}

async fn control_characters_in_stored_strings_never_cause_a_5xx(ctx: Ctx) -> Result<()> {
    let token = ctx.login_seeded(1).await?;
    ctx.put_in_cart(&token, 1, 1).await?;
    // PostgreSQL refuses NUL in text; the answer must still be a 201 or a 422, not a 500.
    let resp = ctx
        .post("/api/orders", json!({"note": "nul\u{0}here"}))
        .token(&token)
        .idempotency_key("nul")
        .await?;
    ensure!(
        resp.status == 201 || resp.status == 422,
        "NUL in a note: {} {}",
        resp.status,
        resp.text
    );
    for (index, name) in ["nul\u{0}name", "bell\u{7}", "line\nbreak"]
        .iter()
        .enumerate()
    {
        let body = json!({"email": format!("ctl{index}@example.com"), "password": "long enough", "name": name});
        ctx.post("/api/users", body)
            .await?
            .expect_error(422, "invalid")?;
    }
    let body = json!({"email": "nul\u{0}@example.com", "password": "long enough", "name": "N"});
    ctx.post("/api/users", body)
        .await?
        .expect_error(422, "invalid")?;
    let body = json!({"email": "user1@shoplab.test\u{0}", "password": "shoplab-7"});
    ctx.post("/api/sessions", body)
        .await?
        .expect_error(401, "unauthenticated")?;
    Ok(())
}

async fn wrong_methods_on_known_routes_are_refused_without_a_5xx(ctx: Ctx) -> Result<()> {
    for (method, path) in [
        (Method::DELETE, "/api/products"),
        (Method::POST, "/api/products/1"),
        (Method::PATCH, "/api/cart"),
        (Method::PUT, "/api/orders/1"),
        (Method::GET, "/api/sessions"),
        (Method::GET, "/admin/reset"),
    ] {
        ctx.request(method, path).await?.expect_client_error()?;
    }
    Ok(())
}

async fn a_body_just_under_the_limit_is_read_not_refused_for_size(ctx: Ctx) -> Result<()> {
    // 60 KiB of name: over the 100-character rule, under the size limit, so the answer is
    // the validation error, which proves the body was read.
    let body = json!({"email": "big@example.com", "password": "long enough", "name": "x".repeat(60 * 1024)});
    ctx.post("/api/users", body)
        .await?
        .expect_error(422, "invalid")?;
    Ok(())
}

fn endpoint(ctx: &Ctx, method: &str, path: &str, auth: Auth, user_token: &str) -> Call {
    let method = Method::from_bytes(method.as_bytes()).unwrap_or(Method::POST);
    let call = ctx.request(method, path).idempotency_key("robustness");
    match auth {
        Auth::None => call,
        Auth::User => call.token(user_token),
        Auth::Admin => call.admin(),
    }
}
