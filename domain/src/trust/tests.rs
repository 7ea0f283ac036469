//! The verifier's refusals, one per way a token can be wrong.

use super::*;

fn pair() -> (Keyring, Identity, Identity) {
    let keyring = Keyring::generate();
    let orders = keyring.identity(Peer::Service(Context::Orders));
    let payments = keyring.identity(Peer::Service(Context::Payments));
    (keyring, orders, payments)
}

const PAYMENTS: Peer = Peer::Service(Context::Payments);

#[test]
fn a_token_for_the_callee_verifies_and_names_its_issuer() {
    let (_, orders, payments) = pair();
    let token = orders.token_for(PAYMENTS).unwrap();
    assert_eq!(
        payments.verify(&token).unwrap(),
        Peer::Service(Context::Orders)
    );
}

#[test]
fn the_caller_reuses_its_token_until_half_its_life_is_gone() {
    let (_, orders, _) = pair();
    let first = orders.token_for(PAYMENTS).unwrap();
    assert_eq!(orders.token_for(PAYMENTS).unwrap(), first);
    assert_ne!(
        orders.token_for(Peer::Service(Context::Inventory)).unwrap(),
        first
    );
}

#[test]
fn a_token_for_another_audience_is_refused() {
    let (keyring, orders, _) = pair();
    let inventory = keyring.identity(Peer::Service(Context::Inventory));
    let token = orders.token_for(PAYMENTS).unwrap();
    let refused = inventory.verify(&token).unwrap_err();
    assert!(
        matches!(&refused, DomainError::Unauthenticated(why) if why.contains("another service")),
        "{refused:?}"
    );
}

#[test]
fn an_expired_token_is_refused() {
    let (_, orders, payments) = pair();
    let now = now_ms() / 1000;
    let token = orders.issue(PAYMENTS, now - 120, now - 60).unwrap();
    let refused = payments.verify(&token).unwrap_err();
    assert!(
        matches!(&refused, DomainError::Unauthenticated(why) if why.contains("expired")),
        "{refused:?}"
    );
}

#[test]
fn a_token_that_claims_a_long_life_is_refused_though_signed() {
    let (_, orders, payments) = pair();
    let now = now_ms() / 1000;
    let token = orders
        .issue(PAYMENTS, now, now + MAX_LIFETIME_SECS + 60)
        .unwrap();
    assert!(matches!(
        payments.verify(&token),
        Err(DomainError::Unauthenticated(_))
    ));
    let from_the_future = orders.issue(PAYMENTS, now + 60, now + 90).unwrap();
    assert!(matches!(
        payments.verify(&from_the_future),
        Err(DomainError::Unauthenticated(_))
    ));
}

#[test]
fn a_token_signed_with_another_deployments_key_is_refused() {
    let (_, _, payments) = pair();
    // Same name, different key: what a forger who knows the format but not the key makes.
    let forger = Keyring::generate().identity(Peer::Service(Context::Orders));
    let token = forger.token_for(PAYMENTS).unwrap();
    let refused = payments.verify(&token).unwrap_err();
    assert!(
        matches!(&refused, DomainError::Unauthenticated(why) if why.contains("signature")),
        "{refused:?}"
    );
}

#[test]
fn a_token_whose_issuer_is_changed_after_signing_is_refused() {
    let (keyring, _, payments) = pair();
    let gateway = keyring.identity(Peer::Gateway);
    let token = gateway.token_for(PAYMENTS).unwrap();
    // Swap the header's key id for "orders": the signature covers the header.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let header = r#"{"typ":"JWT","alg":"EdDSA","kid":"orders"}"#;
    parts[0] = URL_SAFE_NO_PAD.encode(header);
    let tampered = parts.join(".");
    assert!(matches!(
        payments.verify(&tampered),
        Err(DomainError::Unauthenticated(_))
    ));
}

#[test]
fn garbage_an_unsigned_token_and_an_hmac_token_are_refused() {
    let (_, _, payments) = pair();
    assert!(payments.verify("").is_err());
    assert!(payments.verify("not.a.token").is_err());
    let now = now_ms() / 1000;
    let claims = Claims {
        iss: "orders".into(),
        aud: "payments".into(),
        iat: now,
        exp: now + 60,
    };
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("orders".into());
    let hmac = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(b"guess")).unwrap();
    assert!(payments.verify(&hmac).is_err());
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    let none = format!(
        "{}.{body}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"orders"}"#)
    );
    assert!(payments.verify(&none).is_err());
}

#[test]
fn an_identity_refuses_to_start_with_another_process_key() {
    let keyring = Keyring::generate();
    let stolen = keyring.private_key(Peer::Gateway);
    let error = Identity::new(
        Peer::Service(Context::Orders),
        stolen,
        &keyring.public_keys(),
    )
    .unwrap_err();
    assert!(error.contains("not orders's"), "{error}");
    assert!(Identity::new(Peer::Gateway, "%%", &keyring.public_keys()).is_err());
}

#[test]
fn the_public_keys_setting_names_every_peer_and_no_private_key() {
    let keyring = Keyring::generate();
    let text = keyring.public_keys();
    for peer in Peer::all() {
        assert!(text.contains(&format!("{peer}=")), "{text}");
        assert!(!text.contains(keyring.private_key(peer)));
    }
    assert_eq!(Peer::parse("gateway"), Some(Peer::Gateway));
    assert_eq!(Peer::parse("orders"), Some(Peer::Service(Context::Orders)));
    assert_eq!(Peer::parse("lab"), None);
}

#[test]
fn a_verified_token_is_remembered_and_a_copy_with_another_signature_is_not() {
    let (_, orders, payments) = pair();
    let token = orders.token_for(PAYMENTS).unwrap();
    for _ in 0..3 {
        assert_eq!(
            payments.verify(&token).unwrap(),
            Peer::Service(Context::Orders)
        );
    }
    // The same header and claims under a signature of another key: other bytes, so the
    // remembered verification does not apply, and the signature is checked and refused.
    let forged = Keyring::generate()
        .identity(Peer::Service(Context::Orders))
        .issue(PAYMENTS, 0, 0)
        .unwrap();
    let signature = forged.rsplit('.').next().unwrap();
    let (signed, _) = token.rsplit_once('.').unwrap();
    assert!(matches!(
        payments.verify(&format!("{signed}.{signature}")),
        Err(DomainError::Unauthenticated(_))
    ));
    assert!(payments.verify(&token).is_ok());
}
