//! `users` tables: `users`. Passwords are argon2id hashes; tokens are signed by
//! `domain::tokens`.

use std::sync::OnceLock;

use async_trait::async_trait;
use domain::faults::Faults;
use domain::seed::SeedUser;
use domain::tokens::TokenKeys;
use domain::users::{
    Credentials, Session, User, Users, ValidRegistration, hash_password, normalize_email,
    verify_password,
};
use domain::{Context, DomainError, DomainResult, now_ms};
use sqlx::AnyConnection;

use crate::Db;
use crate::db::{SEED_BATCH_ROWS, db_error, row_placeholders};

/// The tables a reset wipes. `token_secret` (the users context's too) is not among them: it
/// is the process's configuration, not shop data, and a reset must not log everyone out.
pub const TABLES: [&str; 1] = ["users"];

pub struct SqlUsers {
    db: Db,
    faults: Faults,
    tokens: TokenKeys,
}

impl SqlUsers {
    pub fn new(db: Db, faults: Faults, tokens: TokenKeys) -> SqlUsers {
        SqlUsers { db, faults, tokens }
    }
}

#[async_trait]
impl Users for SqlUsers {
    async fn register(&self, registration: ValidRegistration) -> DomainResult<User> {
        self.faults.enter(Context::Users).await?;
        let password_hash = hash_off_the_runtime(registration.password).await?;
        let row: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO users (email, name, password_hash, created_at_ms) VALUES ($1, $2, $3, $4)
             ON CONFLICT (email) DO NOTHING RETURNING id",
        )
        .bind(registration.email.clone())
        .bind(registration.name.clone())
        .bind(password_hash)
        .bind(now_ms())
        .fetch_optional(self.db.writer())
        .await
        .map_err(db_error)?;
        let (id,) =
            row.ok_or_else(|| DomainError::Conflict("email is already registered".into()))?;
        Ok(User {
            id,
            email: registration.email,
            name: registration.name,
        })
    }

    async fn login(
        &self,
        credentials: &Credentials,
        _from: Option<std::net::IpAddr>,
    ) -> DomainResult<Session> {
        self.faults.enter(Context::Users).await?;
        let email = normalize_email(&credentials.email);
        // No stored email holds a control character (registration refuses them), and
        // PostgreSQL cannot even compare a NUL, so such an email is simply unknown.
        let row: Option<(i64, String)> = if email.chars().any(char::is_control) {
            None
        } else {
            sqlx::query_as("SELECT id, password_hash FROM users WHERE email = $1")
                .bind(email)
                .fetch_optional(self.db.reader())
                .await
                .map_err(db_error)?
        };
        // An unknown email still costs one verification, so timing does not tell which
        // emails exist.
        let (user_id, password_hash) = row.unwrap_or((0, decoy_hash().to_owned()));
        let password = credentials.password.clone();
        let matches =
            tokio::task::spawn_blocking(move || verify_password(&password, &password_hash))
                .await
                .map_err(|error| DomainError::Internal(format!("verify task: {error}")))?;
        if !matches || user_id == 0 {
            return Err(DomainError::Unauthenticated(
                "wrong email or password".into(),
            ));
        }
        self.tokens.issue(user_id)
    }
}

/// The token secret kept in the database: `candidate` becomes it when none is kept yet, and
/// the kept one is returned either way, so every process on one database (a restarted one,
/// or replicas started at once) signs with the same secret.
pub async fn kept_token_secret(db: &Db, candidate: &str) -> DomainResult<String> {
    sqlx::query("INSERT INTO token_secret (id, secret) VALUES (1, $1) ON CONFLICT (id) DO NOTHING")
        .bind(candidate.to_owned())
        .execute(db.writer())
        .await
        .map_err(db_error)?;
    let (secret,): (String,) = sqlx::query_as("SELECT secret FROM token_secret WHERE id = 1")
        .fetch_one(db.writer())
        .await
        .map_err(db_error)?;
    Ok(secret)
}

/// Argon2 costs tens of milliseconds of CPU by design; it runs on the blocking pool so it
/// never stalls the async workers serving other requests.
async fn hash_off_the_runtime(password: String) -> DomainResult<String> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|error| DomainError::Internal(format!("hash task: {error}")))?
}

fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password for unknown emails").unwrap_or_default())
}

/// Inserts the seeded users in order (ids 1..=n after a wipe). They share one password, so
/// they share one hash: hashing thousands of users one by one would make a reset take
/// minutes, and the seeded users exist to let a load generator log in.
pub async fn seed_in(
    connection: &mut AnyConnection,
    users: &[SeedUser],
    password: &str,
) -> DomainResult<()> {
    if users.is_empty() {
        return Ok(());
    }
    let password_hash = hash_off_the_runtime(password.to_owned()).await?;
    let created_at_ms = now_ms();
    for chunk in users.chunks(SEED_BATCH_ROWS) {
        let sql = format!(
            "INSERT INTO users (email, name, password_hash, created_at_ms) VALUES {}",
            row_placeholders(chunk.len(), 4)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for user in chunk {
            query = query
                .bind(user.email.clone())
                .bind(user.name.clone())
                .bind(password_hash.clone())
                .bind(created_at_ms);
        }
        query.execute(&mut *connection).await.map_err(db_error)?;
    }
    Ok(())
}
