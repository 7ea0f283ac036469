//! Who a process is: the identity of each context it hosts, from `service_key` and
//! `service_public_keys`.
//!
//! A context stays an identity wherever it runs. A process hosting a group holds the
//! private keys of its own contexts and no other, verifies each context's callers with that
//! context's identity, and signs each call as the context that makes it: `orders` co-located
//! with `cart` still calls a remote `payments` as `orders`, so `payments`' rule "orders
//! only" means the same in every topology. One key per process instead would need a new
//! peer per grouping in every route's list of callers, and a process holding it could then
//! speak for contexts it does not host.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context as _;
use api::Settings;
use domain::Context;
use domain::topology::Group;
use domain::trust::{Identity, Peer};

/// This process's identity as `me` (the gateway) from `service_key` and
/// `service_public_keys`. Neither has a default: a process that cannot prove who it is, or
/// check who calls it, does not start.
pub fn identity(settings: &Settings, me: Peer) -> anyhow::Result<Arc<Identity>> {
    let (private_key, public_keys) = given_keys(settings, &me.to_string())?;
    let identity = Identity::new(me, &private_key, &public_keys).map_err(anyhow::Error::msg)?;
    Ok(Arc::new(identity))
}

/// The identity of every context of `group`. `service_key` is the bare private key for a
/// group of one (as a microservice has always been given it), or `catalog=KEY,...` naming
/// each context of the group exactly once (`domain::trust::Keyring::group_key`).
pub fn identities(
    settings: &Settings,
    group: &Group,
) -> anyhow::Result<BTreeMap<Context, Arc<Identity>>> {
    let name = group.name();
    let (private_keys, public_keys) = given_keys(settings, &name)?;
    let mut identities = BTreeMap::new();
    for (context, private_key) in private_keys_of(&private_keys, group)? {
        let identity = Identity::new(Peer::Service(context), &private_key, &public_keys)
            .map_err(|error| anyhow::anyhow!("{context}: {error}"))?;
        identities.insert(context, Arc::new(identity));
    }
    Ok(identities)
}

fn given_keys(settings: &Settings, name: &str) -> anyhow::Result<(String, String)> {
    // Empty counts as absent: a compose file passes an unset variable on as "".
    let given = |value: &Option<String>| value.clone().filter(|value| !value.trim().is_empty());
    let private_key = given(&settings.service_key).with_context(|| {
        format!(
            "{name} needs its own service_key (SHOPLAB_SERVICE_KEY): every internal call is signed"
        )
    })?;
    let public_keys = given(&settings.service_public_keys).with_context(|| {
        format!("{name} needs service_public_keys (SHOPLAB_SERVICE_PUBLIC_KEYS): every internal call is verified")
    })?;
    Ok((private_key, public_keys))
}

/// Splits `service_key` into one private key per context of `group`. A base64url key has
/// no `=` (unpadded), so `NAME=KEY` cannot be mistaken for a bare key.
fn private_keys_of(text: &str, group: &Group) -> anyhow::Result<BTreeMap<Context, String>> {
    let text = text.trim();
    if !text.contains('=') {
        return match group.contexts() {
            [context] => Ok(BTreeMap::from([(*context, text.to_owned())])),
            _ => anyhow::bail!(
                "{group} hosts several contexts: service_key names each one's key, {}",
                example(group)
            ),
        };
    }
    let mut keys = BTreeMap::new();
    for entry in text
        .split([',', ' ', '\n'])
        .filter(|entry| !entry.is_empty())
    {
        let (name, key) = entry
            .split_once('=')
            .with_context(|| format!("service_key: {entry:?} is not CONTEXT=KEY"))?;
        let context = Context::parse(name)
            .with_context(|| format!("service_key: {name:?} is not a context"))?;
        anyhow::ensure!(
            group.contains(context),
            "service_key holds the key of {context}, which {group} does not host: a process holds its own contexts' keys only"
        );
        anyhow::ensure!(
            keys.insert(context, key.to_owned()).is_none(),
            "service_key names {context} twice"
        );
    }
    let missing: Vec<&str> = group
        .contexts()
        .iter()
        .filter(|context| !keys.contains_key(context))
        .map(|context| context.as_str())
        .collect();
    anyhow::ensure!(
        missing.is_empty(),
        "service_key has no key for {}: {}",
        missing.join(", "),
        example(group)
    );
    Ok(keys)
}

fn example(group: &Group) -> String {
    let entries: Vec<String> = group
        .contexts()
        .iter()
        .map(|context| format!("{context}=KEY"))
        .collect();
    entries.join(",")
}

#[cfg(test)]
mod tests {
    use domain::trust::Keyring;

    use super::*;

    fn keyed(service_key: String, keyring: &Keyring) -> Settings {
        Settings {
            service_key: Some(service_key),
            service_public_keys: Some(keyring.public_keys()),
            ..Settings::default()
        }
    }

    #[test]
    fn a_group_gets_one_identity_per_context_from_the_keyring_s_group_key() {
        let keyring = Keyring::generate();
        let group = Group::parse("catalog+recommendations").unwrap();
        let settings = keyed(keyring.group_key(group.contexts()), &keyring);
        let identities = identities(&settings, &group).unwrap();
        assert_eq!(
            identities.keys().copied().collect::<Vec<_>>(),
            [Context::Catalog, Context::Recommendations]
        );
        // Each signs as itself: the catalog's token is verified as coming from catalog.
        let token = identities[&Context::Catalog]
            .token_for(Peer::Service(Context::Recommendations))
            .unwrap();
        assert_eq!(
            identities[&Context::Recommendations]
                .verify(&token)
                .unwrap(),
            Peer::Service(Context::Catalog)
        );
    }

    #[test]
    fn a_group_of_one_takes_the_bare_key_as_a_microservice_always_did() {
        let keyring = Keyring::generate();
        let group = Group::one(Context::Orders);
        let settings = keyed(keyring.group_key(group.contexts()), &keyring);
        assert!(!settings.service_key.as_deref().unwrap().contains('='));
        assert!(identities(&settings, &group).is_ok());
    }

    #[test]
    fn a_group_refuses_a_bare_key_a_missing_key_and_a_key_it_does_not_host() {
        let keyring = Keyring::generate();
        let group = Group::parse("cart+orders").unwrap();
        let error = |service_key: String| {
            identities(&keyed(service_key, &keyring), &group)
                .unwrap_err()
                .to_string()
        };
        let bare = error(keyring.private_key(Peer::Service(Context::Cart)).to_owned());
        assert!(bare.contains("cart=KEY,orders=KEY"), "{bare}");
        let foreign =
            error(keyring.group_key(&[Context::Cart, Context::Orders, Context::Payments]));
        assert!(
            foreign.contains("payments, which cart+orders does not host"),
            "{foreign}"
        );
        let half = error(format!(
            "cart={}",
            keyring.private_key(Peer::Service(Context::Cart))
        ));
        assert!(half.contains("no key for orders"), "{half}");
    }

    #[test]
    fn a_context_given_another_context_s_key_does_not_start() {
        let keyring = Keyring::generate();
        let group = Group::parse("cart+orders").unwrap();
        let swapped = format!(
            "cart={},orders={}",
            keyring.private_key(Peer::Service(Context::Orders)),
            keyring.private_key(Peer::Service(Context::Cart))
        );
        assert!(identities(&keyed(swapped, &keyring), &group).is_err());
    }
}
