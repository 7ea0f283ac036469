//! Service identity in the microservices build: which process is calling, proven on every
//! internal call by a short-lived signed token (an EdDSA JWT), so that a service can refuse
//! whoever it does not know and authorize the ones it does by name.
//!
//! Every process (the gateway and each context's service) has an Ed25519 key pair of its
//! own, generated per deployment by whoever starts the build ([`Keyring::generate`]: the
//! lab's platforms, `shoplab serve micro`). A process is given its own private key and every
//! process's public key, nothing more. A caller signs `{iss: me, aud: callee, iat, exp}`
//! with its key; the callee checks the signature with the public key of the issuer the token
//! names, that the audience is itself, and that the token is neither expired nor longer-lived
//! than [`MAX_LIFETIME_SECS`].
//!
//! Why key pairs rather than one shared HMAC secret: with a shared secret, every process can
//! mint a token in any other's name, so a breach of the least important service (or of the
//! gateway, which faces the internet) would let its holder speak as `orders` to `payments`.
//! With key pairs a process can prove only its own identity; the keys it holds let it check
//! others, not impersonate them.
//!
//! No HTTP here: the header the token travels in and the layers that check it are
//! `micro_rpc::trust`'s.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::{Context, DomainError, DomainResult, now_ms};

/// How long a token lives. Short, so a token copied off the wire is soon worthless; long
/// enough that a caller signs one per callee per half-minute, not one per call.
pub const TOKEN_LIFETIME_SECS: i64 = 60;

/// A token claiming to live longer than this is refused whoever signed it: a bug or a
/// leaked key minting long-lived tokens must not make them last.
pub const MAX_LIFETIME_SECS: i64 = 300;

/// The HTTP header a service token travels in, named once for the client that sends it,
/// the services that check it and the lab's calibration. Not `Authorization`: the same
/// ports take the admin token there, and the two must never be mistaken for each other.
pub const TOKEN_HEADER: &str = "x-shoplab-service-token";

/// Clock difference tolerated between two hosts (compose, a cluster): a token this far past
/// its expiry, or issued this far in the future, still counts.
pub const LEEWAY_SECS: u64 = 5;

/// A process of the microservices build that calls or is called: the gateway or the
/// service of a context. Spelled as everywhere else (`gateway`, `catalog`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Peer {
    Gateway,
    Service(Context),
}

impl Peer {
    /// Every process that holds a key pair.
    pub fn all() -> Vec<Peer> {
        std::iter::once(Peer::Gateway)
            .chain(Context::ALL.into_iter().map(Peer::Service))
            .collect()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Peer::Gateway => "gateway",
            Peer::Service(context) => context.as_str(),
        }
    }

    pub fn parse(name: &str) -> Option<Peer> {
        match name {
            "gateway" => Some(Peer::Gateway),
            other => Context::parse(other).map(Peer::Service),
        }
    }
}

impl std::fmt::Display for Peer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// One process's key pair as settings carry it: the private key as PKCS#8 DER and the
/// public key as its 32 raw bytes, both base64url without padding.
#[derive(Clone)]
pub struct KeyPair {
    pub private_key: String,
    pub public_key: String,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A private key never reaches a log line.
        formatter
            .debug_struct("KeyPair")
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

impl KeyPair {
    /// A fresh key pair from the operating system's CSPRNG (ring's `SystemRandom`).
    pub fn generate() -> KeyPair {
        let random = ring::rand::SystemRandom::new();
        let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&random)
            .expect("the operating system's random source works");
        let private_key = URL_SAFE_NO_PAD.encode(pkcs8.as_ref());
        let public_key =
            public_key_of(pkcs8.as_ref()).expect("a key pair ring just made parses back");
        KeyPair {
            private_key,
            public_key,
        }
    }
}

/// The public key (base64url) of a PKCS#8 private key.
fn public_key_of(pkcs8: &[u8]) -> Option<String> {
    use ring::signature::KeyPair as _;
    let pair = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8).ok()?;
    Some(URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()))
}

/// Every process's key pair for one deployment: what whoever starts the build makes, and
/// hands out one private key per process.
#[derive(Clone, Debug)]
pub struct Keyring {
    pairs: BTreeMap<Peer, KeyPair>,
}

impl Keyring {
    /// A key pair for every [`Peer`].
    pub fn generate() -> Keyring {
        Keyring {
            pairs: Peer::all()
                .into_iter()
                .map(|peer| (peer, KeyPair::generate()))
                .collect(),
        }
    }

    /// `peer`'s private key: for `peer`'s process only (`service_key`).
    pub fn private_key(&self, peer: Peer) -> &str {
        &self.pairs[&peer].private_key
    }

    /// Every public key in the form of the `service_public_keys` setting:
    /// `gateway=KEY,catalog=KEY,...`.
    pub fn public_keys(&self) -> String {
        self.pairs
            .iter()
            .map(|(peer, pair)| format!("{peer}={}", pair.public_key))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The private keys of a process hosting `contexts`, in the form of its `service_key`
    /// setting: the bare key for one context (as a microservice has always been given it),
    /// `catalog=KEY,recommendations=KEY` for a group. Each context of a group keeps its own
    /// identity, so the process signs every call as the context that makes it and is given
    /// no key of a context it does not host.
    pub fn group_key(&self, contexts: &[Context]) -> String {
        match contexts {
            [context] => self.private_key(Peer::Service(*context)).to_owned(),
            _ => contexts
                .iter()
                .map(|context| format!("{context}={}", self.private_key(Peer::Service(*context))))
                .collect::<Vec<_>>()
                .join(","),
        }
    }

    /// The settings a process started as `peer` needs, as `SHOPLAB_*` environment variables.
    pub fn environment(&self, peer: Peer) -> [(String, String); 2] {
        [
            (
                "SHOPLAB_SERVICE_KEY".to_owned(),
                self.private_key(peer).to_owned(),
            ),
            ("SHOPLAB_SERVICE_PUBLIC_KEYS".to_owned(), self.public_keys()),
        ]
    }

    /// A token from the gateway for the catalog service: what the lab's calibration sends
    /// on its direct call to the catalog's search, so that rung pays the verification the
    /// gateway's hop pays. The lab may sign it because it made every key.
    pub fn calibration_token(&self) -> Option<String> {
        self.identity(Peer::Gateway)
            .token_for(Peer::Service(Context::Catalog))
            .ok()
    }

    /// The identity of `peer` built from this keyring (tests and in-process builds).
    pub fn identity(&self, peer: Peer) -> Identity {
        Identity::new(peer, self.private_key(peer), &self.public_keys())
            .expect("a generated keyring is consistent")
    }
}

/// What a token claims.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    iat: i64,
    exp: i64,
}

/// One process's identity at run time: it signs tokens as itself (cached per callee and
/// renewed when half their life is gone) and verifies the tokens others send it.
pub struct Identity {
    me: Peer,
    signing: EncodingKey,
    verifying: BTreeMap<Peer, DecodingKey>,
    /// The token in use per callee, with its expiry (seconds since the epoch).
    cached: Mutex<BTreeMap<Peer, (String, i64)>>,
    /// Tokens this process verified, by their exact text, with their issuer and expiry: a
    /// caller sends the same token for half a minute, so a signature is checked once per
    /// caller and token, and every other call pays a map lookup. Keyed by the whole token,
    /// signature included, so only the very bytes that verified ever hit it.
    verified: Mutex<HashMap<String, (Peer, i64)>>,
}

/// Verified tokens remembered at most; past it the memory starts afresh. A few callers'
/// tokens renewed every 30 s need a handful; the bound only stops a flood of distinct
/// valid tokens from growing it.
const VERIFIED_REMEMBERED: usize = 1024;

impl std::fmt::Debug for Identity {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Identity")
            .field("me", &self.me)
            .field("knows", &self.verifying.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// `me`'s identity from its private key and every public key (`gateway=KEY,...`).
    /// Refuses a private key that is not the one `public_keys` names for `me`: a process
    /// given another's key would sign tokens nobody accepts, and should not start.
    pub fn new(me: Peer, private_key: &str, public_keys: &str) -> Result<Identity, String> {
        let pkcs8 = URL_SAFE_NO_PAD
            .decode(private_key.trim())
            .map_err(|_| "service_key is not base64url".to_owned())?;
        let derived =
            public_key_of(&pkcs8).ok_or("service_key is not an Ed25519 PKCS#8 private key")?;
        let mut verifying = BTreeMap::new();
        let mut own = None;
        for entry in public_keys
            .split([',', ' ', '\n'])
            .filter(|entry| !entry.is_empty())
        {
            let (name, key) = entry
                .split_once('=')
                .ok_or_else(|| format!("service_public_keys: {entry:?} is not NAME=KEY"))?;
            let peer = Peer::parse(name)
                .ok_or_else(|| format!("service_public_keys: {name:?} is not a service"))?;
            let raw = URL_SAFE_NO_PAD
                .decode(key)
                .ok()
                .filter(|raw| raw.len() == 32)
                .ok_or_else(|| {
                    format!("service_public_keys: the key of {name} is not 32 bytes of base64url")
                })?;
            if peer == me {
                own = Some(key.to_owned());
            }
            verifying.insert(peer, DecodingKey::from_ed_der(&raw));
        }
        match own {
            Some(own) if own == derived => {}
            Some(_) => {
                return Err(format!(
                    "service_key is not {me}'s: its public key differs from the one service_public_keys names for {me}"
                ));
            }
            None => return Err(format!("service_public_keys names no key for {me}")),
        }
        Ok(Identity {
            me,
            signing: EncodingKey::from_ed_der(&pkcs8),
            verifying,
            cached: Mutex::new(BTreeMap::new()),
            verified: Mutex::new(HashMap::new()),
        })
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Peer, i64)>> {
        self.verified
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    pub fn me(&self) -> Peer {
        self.me
    }

    /// A token proving this process to `audience`: the cached one while more than half its
    /// life is left, a fresh one otherwise.
    pub fn token_for(&self, audience: Peer) -> DomainResult<String> {
        let now = now_ms() / 1000;
        let mut cached = self
            .cached
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some((token, expires_at)) = cached.get(&audience)
            && expires_at - now > TOKEN_LIFETIME_SECS / 2
        {
            return Ok(token.clone());
        }
        let expires_at = now + TOKEN_LIFETIME_SECS;
        let token = self.issue(audience, now, expires_at)?;
        cached.insert(audience, (token.clone(), expires_at));
        Ok(token)
    }

    /// Signs a token with explicit times, uncached; tests use it for expired and
    /// long-lived tokens.
    pub fn issue(&self, audience: Peer, issued_at: i64, expires_at: i64) -> DomainResult<String> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.me.to_string());
        let claims = Claims {
            iss: self.me.to_string(),
            aud: audience.to_string(),
            iat: issued_at,
            exp: expires_at,
        };
        jsonwebtoken::encode(&header, &claims, &self.signing)
            .map_err(|error| DomainError::Internal(format!("sign a service token: {error}")))
    }

    /// Who sent `token`, when it is a token for this process signed by a process whose
    /// public key this one holds, unexpired and short-lived; `Unauthenticated` otherwise
    /// (forged, malformed, expired, for another audience, from an unknown issuer).
    pub fn verify(&self, token: &str) -> DomainResult<Peer> {
        let refused = |why: &str| DomainError::Unauthenticated(format!("service token {why}"));
        let now = now_ms() / 1000;
        let leeway = LEEWAY_SECS as i64;
        if let Some(&(issuer, expires_at)) = self.remembered().get(token) {
            if now <= expires_at + leeway {
                return Ok(issuer);
            }
            return Err(refused("expired"));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| refused("is malformed"))?;
        // The issuer names the key to check with; the claims must then say the same.
        let issuer = header
            .kid
            .as_deref()
            .and_then(Peer::parse)
            .ok_or_else(|| refused("names no known issuer"))?;
        let key = self
            .verifying
            .get(&issuer)
            .ok_or_else(|| refused("names an issuer without a key here"))?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = LEEWAY_SECS;
        validation.set_audience(&[self.me.as_str()]);
        validation.set_issuer(&[issuer.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = jsonwebtoken::decode::<Claims>(token, key, &validation).map_err(|error| {
            use jsonwebtoken::errors::ErrorKind;
            match error.kind() {
                ErrorKind::ExpiredSignature => refused("expired"),
                ErrorKind::InvalidAudience => refused("is for another service"),
                ErrorKind::InvalidSignature => refused("has a bad signature"),
                _ => refused("is invalid"),
            }
        })?;
        let claims = data.claims;
        if claims.iat > now + leeway || claims.exp - claims.iat > MAX_LIFETIME_SECS {
            return Err(refused("claims a lifetime it may not have"));
        }
        let mut remembered = self.remembered();
        if remembered.len() >= VERIFIED_REMEMBERED {
            remembered.clear();
        }
        remembered.insert(token.to_owned(), (issuer, claims.exp));
        Ok(issuer)
    }
}

#[cfg(test)]
mod tests;
