//! The `tokens`, `sessions` and `logins` tables. Secrets are kept as SHA-256 hashes only: the
//! token a script sends, and the session id in a browser's cookie, are never stored.

use app::auth::Token;
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, get_opt_ts, get_ts, ts};

/// A person's session, as kept.
#[derive(Clone, Debug)]
pub struct Session {
    pub username: String,
    /// The identity provider's stable subject (`sub`): who the person is, whatever their
    /// username becomes. None only for sessions kept before it was recorded.
    pub subject: Option<String>,
    pub display_name: String,
    pub groups: Vec<String>,
    pub expires_at: DateTime<Utc>,
}

/// A login in flight: what the callback needs to finish it.
#[derive(Clone, Debug)]
pub struct PendingLogin {
    pub pkce_verifier: String,
    pub nonce: String,
    pub return_to: String,
}

/// An active token and the person it acts for (who made it; none for tokens kept before
/// people were recorded).
#[derive(Clone, Debug)]
pub struct ActiveToken {
    pub token: Token,
    /// The stable id of the person it acts for.
    pub person: Option<String>,
}

/// How long a login may take between the redirect to the provider and the callback.
const LOGIN_TTL_SECS: i64 = 600;

impl Store {
    /// Adds a token (its hash), made by `created_by` (a person's name; `person`, their stable
    /// id). Fails with a conflict when an active token has this name.
    pub async fn create_token(&self, new: &NewTokenRow<'_>) -> Result<Token, StoreError> {
        let row = sqlx::query(&self.sql(
            "INSERT INTO tokens (id, name, role, hash, created_by, person, person_name, expires_at, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, {now}) RETURNING *",
        ))
        .bind(new.id)
        .bind(new.name)
        .bind(new.role)
        .bind(new.hash)
        .bind(new.created_by)
        .bind(new.person)
        .bind(new.person_name)
        .bind(new.expires_at.map(ts))
        .fetch_one(&self.pool)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                StoreError::Duplicate(format!("a token called {:?} already exists", new.name))
            }
            _ => StoreError::Database(e),
        })?;
        token_from_row(&row)
    }

    /// Every token, newest first (revoked ones too: the record stays).
    pub async fn tokens(&self) -> Result<Vec<Token>, StoreError> {
        let rows = sqlx::query(&self.sql("SELECT * FROM tokens ORDER BY created_at DESC, id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(token_from_row).collect()
    }

    /// The active (neither revoked nor expired) token with this hash, marking it used.
    pub async fn token_by_hash(&self, hash: &str) -> Result<Option<ActiveToken>, StoreError> {
        let row = sqlx::query(&self.sql(
            "UPDATE tokens SET last_used_at = {now}
             WHERE hash = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > {now})
             RETURNING *",
        ))
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(ActiveToken {
            token: token_from_row(&row)?,
            person: row.try_get("person")?,
        }))
    }

    /// Whether the token with this hash is still active (an open event stream asks, so that a
    /// revoked or expired token's stream ends).
    pub async fn token_active(&self, hash: &str) -> Result<bool, StoreError> {
        let count: i64 = sqlx::query_scalar(&self.sql(
            "SELECT COUNT(*) FROM tokens
             WHERE hash = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > {now})",
        ))
        .bind(hash)
        .fetch_one(&self.pool)
        .await?;
        Ok(count > 0)
    }

    /// Revokes a token; `None` when there is no such token. Revoking twice keeps the first.
    pub async fn revoke_token(&self, id: &str, by: &str) -> Result<Option<Token>, StoreError> {
        sqlx::query(&self.sql(
            "UPDATE tokens SET revoked_at = {now}, revoked_by = ?
             WHERE id = ? AND revoked_at IS NULL",
        ))
        .bind(by)
        .bind(id)
        .execute(&self.pool)
        .await?;
        let row = sqlx::query(&self.sql("SELECT * FROM tokens WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    pub async fn create_session(&self, hash: &str, session: &Session) -> Result<(), StoreError> {
        sqlx::query(&self.sql(
            "INSERT INTO sessions (hash, username, subject, display_name, groups, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?, {now}, ?)",
        ))
        .bind(hash)
        .bind(&session.username)
        .bind(&session.subject)
        .bind(&session.display_name)
        .bind(super::to_json(&session.groups))
        .bind(ts(session.expires_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The unexpired session with this hash.
    pub async fn session(&self, hash: &str) -> Result<Option<Session>, StoreError> {
        let row =
            sqlx::query(&self.sql("SELECT * FROM sessions WHERE hash = ? AND expires_at > ?"))
                .bind(hash)
                .bind(ts(Utc::now()))
                .fetch_optional(&self.pool)
                .await?;
        let Some(r) = row else { return Ok(None) };
        let groups: String = r.try_get("groups")?;
        Ok(Some(Session {
            username: r.try_get("username")?,
            subject: r.try_get("subject")?,
            display_name: r.try_get("display_name")?,
            groups: serde_json::from_str(&groups)
                .map_err(|e| StoreError::Corrupt(format!("session groups: {e}")))?,
            expires_at: get_ts(&r, "expires_at")?,
        }))
    }

    /// Ends every session of a person (by login name or the provider's subject); how many.
    pub async fn end_sessions_of(&self, user: &str) -> Result<u64, StoreError> {
        let done =
            sqlx::query(&self.sql("DELETE FROM sessions WHERE username = ?1 OR subject = ?1"))
                .bind(user)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected())
    }

    /// Ends a session (logout), and drops every expired one.
    pub async fn end_session(&self, hash: &str) -> Result<(), StoreError> {
        sqlx::query(&self.sql("DELETE FROM sessions WHERE hash = ? OR expires_at <= ?"))
            .bind(hash)
            .bind(ts(Utc::now()))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn begin_login(&self, state: &str, login: &PendingLogin) -> Result<(), StoreError> {
        let stale = Utc::now() - chrono::Duration::seconds(LOGIN_TTL_SECS);
        sqlx::query(&self.sql("DELETE FROM logins WHERE created_at < ?"))
            .bind(ts(stale))
            .execute(&self.pool)
            .await?;
        sqlx::query(&self.sql(
            "INSERT INTO logins (state, pkce_verifier, nonce, return_to, created_at) VALUES (?, ?, ?, ?, ?)",
        ))
        .bind(state)
        .bind(&login.pkce_verifier)
        .bind(&login.nonce)
        .bind(&login.return_to)
        .bind(ts(Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Takes (once) the login started with this state, if it is recent.
    pub async fn finish_login(&self, state: &str) -> Result<Option<PendingLogin>, StoreError> {
        let stale = Utc::now() - chrono::Duration::seconds(LOGIN_TTL_SECS);
        let row = sqlx::query(
            &self.sql("DELETE FROM logins WHERE state = ? AND created_at >= ? RETURNING *"),
        )
        .bind(state)
        .bind(ts(stale))
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(PendingLogin {
            pkce_verifier: r.try_get("pkce_verifier")?,
            nonce: r.try_get("nonce")?,
            return_to: r.try_get("return_to")?,
        }))
    }
}

fn token_from_row(r: &AnyRow) -> Result<Token, StoreError> {
    Ok(Token {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        role: r.try_get("role")?,
        created_by: r.try_get("created_by")?,
        created_at: get_ts(r, "created_at")?,
        revoked_at: get_opt_ts(r, "revoked_at")?,
        revoked_by: r.try_get("revoked_by")?,
        last_used_at: get_opt_ts(r, "last_used_at")?,
        expires_at: get_opt_ts(r, "expires_at")?,
        person: r.try_get("person_name")?,
    })
}

/// A token to keep: its hash, never its secret.
#[derive(Clone, Copy, Debug)]
pub struct NewTokenRow<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub role: &'a str,
    pub hash: &'a str,
    /// Who made it, as the token list shows it (the caller's name).
    pub created_by: &'a str,
    /// The person it acts for — the maker's person ([`crate::person::Person`]): stable id and
    /// login name.
    pub person: &'a str,
    pub person_name: &'a str,
    pub expires_at: Option<DateTime<Utc>>,
}
