//! The only SQL of the project: promo codes in PostgreSQL through sqlx.
//!
//! Every query here is a single statement, so a Lambda instance holding one or two connections
//! never keeps a transaction open across a network round trip it does not control.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, QueryBuilder};

use crate::domain::{
    AuditEvent, Code, Description, Discount, EventsQuery, Expiry, ListQuery, MaxRedemptions, NewPromoCode, OrderId,
    Owner, PromoCode, PromoCodePatch, Redemption, SortDirection, SortKey, SortValue, Status, Unusable,
};

/// The schema, embedded in every binary that may need to apply it.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations");

/// How long one statement may run before PostgreSQL cancels it. A Lambda invocation that waits
/// longer than this is better answered with 503 than left to hit its own timeout.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("promo code not found")]
    NotFound,
    /// A unique constraint refused the write; `constraint` names which.
    #[error("a promo code with this code already exists")]
    Conflict { constraint: String },
    /// The caller's expected version is stale; nothing was written.
    #[error("the promo code is at version {current}, not one the caller expected")]
    VersionMismatch { current: i32 },
    /// A CHECK constraint refused the write: a rule that needs the stored row to check.
    #[error("{message}")]
    Invalid { param: String, message: String },
    /// The database could not be reached in time or cancelled the statement.
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error")]
    Database(#[source] sqlx::Error),
    /// A stored row breaks a domain rule: a bug or a hand edit, never the caller's fault.
    #[error("stored promo code {code} is invalid: {reason}")]
    Corrupt { code: String, reason: String },
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &error {
            let constraint = db.constraint().unwrap_or_default().to_owned();
            match db.kind() {
                sqlx::error::ErrorKind::UniqueViolation => return StoreError::Conflict { constraint },
                sqlx::error::ErrorKind::CheckViolation => {
                    if let Some(invalid) = check_violation(&constraint) {
                        return invalid;
                    }
                }
                _ => {}
            }
            // 57014: statement timeout; 53300: too many connections; 57P0x: server shutting down.
            if matches!(db.code().as_deref(), Some("57014" | "53300" | "57P01" | "57P02" | "57P03")) {
                return StoreError::Unavailable(error);
            }
            return StoreError::Database(error);
        }
        match error {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
                StoreError::Unavailable(error)
            }
            other => StoreError::Database(other),
        }
    }
}

/// Turns a CHECK constraint's name into the field a client should fix. A constraint not named
/// here is no rule a client can break (the domain checks first): `None`, an internal error, so
/// that no constraint name ever reaches a client.
fn check_violation(constraint: &str) -> Option<StoreError> {
    let (param, message) = match constraint {
        "promo_codes_expires_at_check" => ("expires_at", "expires_at must be after the code's created_at"),
        "promo_codes_times_redeemed_check" => {
            ("max_redemptions", "max_redemptions must not be below the code's times_redeemed")
        }
        "promo_codes_owner_check" => ("owner", "owner must be 1 to 255 characters, with no control characters"),
        "promo_codes_description_check" => {
            ("description", "description must be at most 500 characters, with no control characters")
        }
        "promo_codes_discount_bp_check" => {
            ("discount_percentage", "discount_percentage must be above 0 and at most 100")
        }
        "promo_codes_max_redemptions_check" => ("max_redemptions", "max_redemptions must be at least 1"),
        "redemptions_order_id_check" => {
            ("order_id", "order_id must be 1 to 128 characters, with no control characters")
        }
        _ => return None,
    };
    Some(StoreError::Invalid { param: param.to_owned(), message: message.to_owned() })
}

/// A pool that suits a Lambda instance: it serves one request at a time, so two connections
/// are plenty; acquiring waits briefly and then fails fast; every statement has a timeout.
/// Lazy, so a cold start does not pay for (or fail on) a connection it may not need yet.
///
/// sqlx pings a connection before each use (a round trip per request). That stays: without it
/// (tried, measured with `cargo xtask bench`), a warm instance whose sessions the database ended
/// (a failover; the deployed-API test ends them after a rotation) answered 503 on its next
/// request instead of reconnecting.
pub fn lambda_pool(options: PgConnectOptions) -> PgPool {
    PgPoolOptions::new()
        .max_connections(2)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(3))
        .idle_timeout(Some(Duration::from_secs(300)))
        .connect_lazy_with(with_session_settings(options))
}

/// What every connection of ours sets: a statement timeout.
fn with_session_settings(options: PgConnectOptions) -> PgConnectOptions {
    options.options([("statement_timeout", STATEMENT_TIMEOUT.as_millis().to_string())])
}

/// Reads the database's credentials again (the RDS-managed secret), for after a rotation.
pub type Credentials = Arc<dyn Fn() -> Result<PgConnectOptions, String> + Send + Sync>;

/// PostgreSQL's SQLSTATE for a refused password (`invalid_password`).
const INVALID_PASSWORD: &str = "28P01";

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub data: Vec<PromoCode>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// One page of a code's audit trail.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPage {
    pub data: Vec<AuditEvent>,
    pub next_cursor: Option<String>,
}

/// What a redemption did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    /// Counted now: 201.
    First(Redemption),
    /// This (code, order) was redeemed before: the same redemption, counted once, 200.
    Again(Redemption),
}

/// Why a redemption was refused.
#[derive(Debug, thiserror::Error)]
pub enum RedeemError {
    /// Unknown, or someone else's: the same answer.
    #[error("promo code not found")]
    NotFound,
    #[error("promo code is {}", .0.reason())]
    Unusable(Unusable),
    /// The order already has a redemption of this code, by another caller.
    #[error("this order already has a redemption of this promo code")]
    OrderTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A code looked up for its owner, with the database's time of the lookup.
#[derive(Debug)]
pub struct Lookup {
    pub code: Option<PromoCode>,
    pub now: DateTime<Utc>,
}

/// How many `not_found` answers a caller may get in a sliding window before 429.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuessLimit {
    pub max: u32,
    pub window: Duration,
}

impl Default for GuessLimit {
    /// 20 a minute: plenty for a person mistyping, nothing for enumerating 60-bit codes.
    fn default() -> Self {
        GuessLimit { max: 20, window: Duration::from_secs(60) }
    }
}

#[derive(sqlx::FromRow)]
struct RedemptionRow {
    id: String,
    code: String,
    order_id: String,
    discount_bp: i32,
    redeemed_at: DateTime<Utc>,
}

impl TryFrom<RedemptionRow> for Redemption {
    type Error = StoreError;

    fn try_from(row: RedemptionRow) -> Result<Redemption, StoreError> {
        let corrupt =
            |e: crate::domain::DomainError| StoreError::Corrupt { code: row.code.clone(), reason: e.to_string() };
        Ok(Redemption {
            id: row.id.clone(),
            code: Code::parse(&row.code).map_err(corrupt)?,
            order_id: OrderId::parse(&row.order_id).map_err(corrupt)?,
            discount: Discount::from_basis_points(i64::from(row.discount_bp)).map_err(corrupt)?,
            redeemed_at: row.redeemed_at,
        })
    }
}

/// Records one audit event inside the caller's transaction.
async fn record_event(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    code: &Code,
    action: &str,
    actor: &Owner,
    changes: &serde_json::Value,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO promo_code_events (code, action, actor, changes) VALUES ($1, $2, $3, $4)")
        .bind(code.as_str())
        .bind(action)
        .bind(actor.as_str())
        .bind(changes)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// `{"field": {"from": old, "to": new}}` for every field that differs.
fn diff(old: &serde_json::Value, new: &serde_json::Value) -> serde_json::Value {
    let mut changes = serde_json::Map::new();
    if let (Some(old), Some(new)) = (old.as_object(), new.as_object()) {
        for (field, to) in new {
            let from = old.get(field).cloned().unwrap_or(serde_json::Value::Null);
            if &from != to {
                changes.insert(field.clone(), serde_json::json!({"from": from, "to": to}));
            }
        }
    }
    serde_json::Value::Object(changes)
}

const COLUMNS: &str = "code, owner, discount_bp, expires_at, description, active, max_redemptions, \
                       times_redeemed, created_at, updated_at, version";

#[derive(sqlx::FromRow)]
struct Row {
    code: String,
    owner: String,
    discount_bp: i32,
    expires_at: DateTime<Utc>,
    description: Option<String>,
    active: bool,
    max_redemptions: Option<i32>,
    times_redeemed: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i32,
}

impl TryFrom<Row> for PromoCode {
    type Error = StoreError;

    fn try_from(row: Row) -> Result<PromoCode, StoreError> {
        let corrupt =
            |e: crate::domain::DomainError| StoreError::Corrupt { code: row.code.clone(), reason: e.to_string() };
        Ok(PromoCode {
            code: Code::parse(&row.code).map_err(corrupt)?,
            owner: Owner::parse(&row.owner).map_err(corrupt)?,
            discount: Discount::from_basis_points(i64::from(row.discount_bp)).map_err(corrupt)?,
            expires_at: Expiry::from_stored(row.expires_at),
            description: row.description.as_deref().map(Description::parse).transpose().map_err(corrupt)?,
            active: row.active,
            max_redemptions: row
                .max_redemptions
                .map(|m| MaxRedemptions::new(i64::from(m)))
                .transpose()
                .map_err(corrupt)?,
            times_redeemed: row.times_redeemed,
            created_at: row.created_at,
            updated_at: row.updated_at,
            version: row.version,
        })
    }
}

/// Promo codes in PostgreSQL.
#[derive(Clone)]
pub struct Store {
    pool: PgPool,
    credentials: Option<Credentials>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("pool", &self.pool).finish_non_exhaustive()
    }
}

impl Store {
    pub fn new(pool: PgPool) -> Store {
        Store { pool, credentials: None }
    }

    /// A store that reads its credentials again when the database refuses them: RDS rotates
    /// the managed master secret (every 7 days by default), and a warm instance must survive it.
    pub fn with_credentials(pool: PgPool, credentials: Credentials) -> Store {
        Store { pool, credentials: Some(credentials) }
    }

    /// After a failed request: when the database now refuses our password (a rotation), reads
    /// the credentials again and uses them for new connections. True when they were renewed, so
    /// the request may be tried once more (nothing was written: no connection was had).
    pub async fn renew_credentials_if_refused(&self) -> bool {
        let Some(credentials) = self.credentials.clone() else {
            return false;
        };
        let refused = match self.pool.acquire().await {
            Err(sqlx::Error::Database(error)) => error.code().as_deref() == Some(INVALID_PASSWORD),
            _ => false,
        };
        if !refused {
            return false;
        }
        match tokio::task::spawn_blocking(move || credentials()).await {
            Ok(Ok(options)) => {
                self.pool.set_connect_options(with_session_settings(options));
                tracing::warn!("the database refused our password: read the credentials again");
                true
            }
            Ok(Err(error)) => {
                tracing::error!(%error, "the database refused our password and the credentials cannot be read again");
                false
            }
            Err(_) => false,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Inserts a new code and its `created` event, in one transaction. A code equal ignoring
    /// case already exists: `Conflict`.
    pub async fn insert(&self, new: &NewPromoCode, actor: &Owner) -> Result<PromoCode, StoreError> {
        let sql = format!(
            "INSERT INTO promo_codes (code, owner, discount_bp, expires_at, description, active, max_redemptions) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
        );
        let mut tx = self.pool.begin().await?;
        let row: Row = sqlx::query_as(&sql)
            .bind(new.code.as_str())
            .bind(new.owner.as_str())
            .bind(new.discount.basis_points())
            .bind(new.expires_at.at())
            .bind(new.description.as_ref().map(Description::as_str))
            .bind(new.active)
            .bind(new.max_redemptions.map(MaxRedemptions::get))
            .fetch_one(&mut *tx)
            .await?;
        let created = PromoCode::try_from(row)?;
        record_event(&mut tx, &created.code, "created", actor, &created.audited_fields()).await?;
        tx.commit().await?;
        Ok(created)
    }

    pub async fn get(&self, code: &Code) -> Result<PromoCode, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM promo_codes WHERE code = $1");
        let row: Option<Row> = sqlx::query_as(&sql).bind(code.as_str()).fetch_optional(&self.pool).await?;
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    /// Applies a patch and records what changed, in one transaction. The row is locked first,
    /// so the version check and the write cannot interleave with another writer: of two
    /// clients holding the same version, exactly one wins. With `expected_versions`, a current
    /// version not among them writes nothing (an empty list never matches).
    pub async fn patch(
        &self,
        code: &Code,
        patch: &PromoCodePatch,
        expected_versions: Option<&[i32]>,
        actor: &Owner,
    ) -> Result<PromoCode, StoreError> {
        let mut tx = self.pool.begin().await?;
        let select = format!("SELECT {COLUMNS} FROM promo_codes WHERE code = $1 FOR UPDATE");
        let old: Row =
            sqlx::query_as(&select).bind(code.as_str()).fetch_optional(&mut *tx).await?.ok_or(StoreError::NotFound)?;
        if let Some(expected) = expected_versions
            && !expected.contains(&old.version)
        {
            return Err(StoreError::VersionMismatch { current: old.version });
        }
        let old = PromoCode::try_from(old)?;
        let update = format!(
            "UPDATE promo_codes SET \
                 owner = COALESCE($2, owner), \
                 discount_bp = COALESCE($3, discount_bp), \
                 expires_at = COALESCE($4, expires_at), \
                 description = CASE WHEN $5 THEN $6 ELSE description END, \
                 active = COALESCE($7, active), \
                 max_redemptions = CASE WHEN $8 THEN $9 ELSE max_redemptions END, \
                 version = version + 1, \
                 updated_at = now() \
             WHERE code = $1 \
             RETURNING {COLUMNS}"
        );
        let row: Row = sqlx::query_as(&update)
            .bind(code.as_str())
            .bind(patch.owner.as_ref().map(Owner::as_str))
            .bind(patch.discount.map(Discount::basis_points))
            .bind(patch.expires_at.map(Expiry::at))
            .bind(patch.description.is_some())
            .bind(patch.description.as_ref().and_then(|d| d.as_ref().map(Description::as_str)))
            .bind(patch.active)
            .bind(patch.max_redemptions.is_some())
            .bind(patch.max_redemptions.flatten().map(MaxRedemptions::get))
            .fetch_one(&mut *tx)
            .await?;
        let new = PromoCode::try_from(row)?;
        record_event(&mut tx, code, "updated", actor, &diff(&old.audited_fields(), &new.audited_fields())).await?;
        tx.commit().await?;
        Ok(new)
    }

    /// Redeems `code` for `order_id` on behalf of its owner. The code's row is locked first,
    /// then judged against that row and the database's clock (the transaction's `now()`, the
    /// one `redeemed_at` gets too), so the decision and the answer cannot disagree, and
    /// concurrent redemptions of one code queue: `times_redeemed` never passes its limit. An
    /// order already redeemed by this caller is a replay; by someone else (the code has
    /// changed hands since), `OrderTaken`.
    pub async fn redeem(&self, code: &Code, owner: &Owner, order_id: &OrderId) -> Result<Redeemed, RedeemError> {
        use sqlx::{FromRow, Row as _};
        if let Some(existing) = self.find_redemption(code, owner, order_id).await? {
            return Ok(Redeemed::Again(existing));
        }
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        let select =
            format!("SELECT {COLUMNS}, now() AS db_now FROM promo_codes WHERE code = $1 AND owner = $2 FOR UPDATE");
        let locked = sqlx::query(&select)
            .bind(code.as_str())
            .bind(owner.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        let Some(locked) = locked else {
            return Err(RedeemError::NotFound);
        };
        let db_now: DateTime<Utc> = locked.try_get("db_now").map_err(StoreError::from)?;
        let found = PromoCode::try_from(Row::from_row(&locked).map_err(StoreError::from)?)?;
        if let Some(why) = found.unusable(db_now) {
            drop(tx);
            // A concurrent request for the same order may have just committed (and used up
            // the code): that is a replay, not a refusal.
            if let Some(existing) = self.find_redemption(code, owner, order_id).await? {
                return Ok(Redeemed::Again(existing));
            }
            return Err(RedeemError::Unusable(why));
        }
        let inserted: Option<RedemptionRow> = sqlx::query_as(
            "INSERT INTO redemptions (code, order_id, redeemed_by, discount_bp) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (code, order_id) DO NOTHING \
             RETURNING id::text AS id, code, order_id, discount_bp, redeemed_at",
        )
        .bind(code.as_str())
        .bind(order_id.as_str())
        .bind(owner.as_str())
        .bind(found.discount.basis_points())
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::from)?;
        let Some(row) = inserted else {
            // The order was redeemed before the code came to this owner (or by this caller a
            // moment ago, in a race the first lookup could not see).
            drop(tx);
            return match self.find_redemption(code, owner, order_id).await? {
                Some(existing) => Ok(Redeemed::Again(existing)),
                None => Err(RedeemError::OrderTaken),
            };
        };
        sqlx::query("UPDATE promo_codes SET times_redeemed = times_redeemed + 1 WHERE code = $1")
            .bind(code.as_str())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        let changes = serde_json::json!({
            "order_id": order_id.as_str(),
            "times_redeemed": {"from": found.times_redeemed, "to": found.times_redeemed + 1},
        });
        record_event(&mut tx, code, "redeemed", owner, &changes).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(Redeemed::First(row.try_into()?))
    }

    /// `redeemer`'s redemption of `code` for `order_id`: a replay belongs to whoever redeemed,
    /// whoever owns the code today.
    async fn find_redemption(
        &self,
        code: &Code,
        redeemer: &Owner,
        order_id: &OrderId,
    ) -> Result<Option<Redemption>, StoreError> {
        let row: Option<RedemptionRow> = sqlx::query_as(
            "SELECT id::text AS id, code, order_id, discount_bp, redeemed_at FROM redemptions \
             WHERE code = $1 AND order_id = $2 AND redeemed_by = $3",
        )
        .bind(code.as_str())
        .bind(order_id.as_str())
        .bind(redeemer.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(Redemption::try_from).transpose()
    }

    /// One page of a code's audit trail, oldest first. An unknown code: `NotFound`.
    pub async fn events(&self, code: &Code, query: &EventsQuery) -> Result<EventPage, StoreError> {
        let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM promo_codes WHERE code = $1")
            .bind(code.as_str())
            .fetch_optional(&self.pool)
            .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound);
        }
        let rows: Vec<(i64, String, String, String, DateTime<Utc>, serde_json::Value)> = sqlx::query_as(
            "SELECT id, code, action, actor, at, changes FROM promo_code_events \
             WHERE code = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(code.as_str())
        .bind(query.after_id.unwrap_or(0))
        .bind(i64::from(query.limit()) + 1)
        .fetch_all(&self.pool)
        .await?;
        let limit = query.limit() as usize;
        let has_more = rows.len() > limit;
        let data: Vec<AuditEvent> = rows
            .into_iter()
            .take(limit)
            .map(|(id, code, action, actor, at, changes)| {
                let code = Code::parse(&code)
                    .map_err(|e| StoreError::Corrupt { code: code.clone(), reason: e.to_string() })?;
                Ok(AuditEvent { id, code, action, actor, at, changes })
            })
            .collect::<Result<_, StoreError>>()?;
        let next_cursor = if has_more { data.last().map(|last| EventsQuery::cursor_after(code, last)) } else { None };
        Ok(EventPage { data, next_cursor })
    }

    /// How long `caller` must wait before guessing again: `Some` once they have used their
    /// budget of `not_found` answers in the current window.
    pub async fn guess_wait(&self, caller: &Owner, limit: &GuessLimit) -> Result<Option<Duration>, StoreError> {
        let budget: Option<(i32, f64)> = sqlx::query_as(GUESS_BUDGET)
            .bind(caller.as_str())
            .bind(limit.window.as_secs_f64())
            .fetch_optional(&self.pool)
            .await?;
        Ok(budget.and_then(|(used, left)| guess_wait(used, left, limit)))
    }

    /// [`Store::guess_wait`] and [`Store::find_owned`] in one round trip, for validate: the
    /// wait when `owner` has used their guesses (then the code is not looked at), else the code
    /// and the database's time, the clock redeem judges by too.
    pub async fn find_owned_unless_guessing(
        &self,
        code: &Code,
        owner: &Owner,
        limit: &GuessLimit,
    ) -> Result<Result<Lookup, Duration>, StoreError> {
        use sqlx::{FromRow, Row as _};
        let sql = format!(
            "SELECT g.used, g.seconds_left, now() AS db_now, {COLUMNS} FROM (SELECT 1) AS one \
             LEFT JOIN ({GUESS_BUDGET}) AS g ON true \
             LEFT JOIN promo_codes ON code = $3 AND owner = $1"
        );
        let row = sqlx::query(&sql)
            .bind(owner.as_str())
            .bind(limit.window.as_secs_f64())
            .bind(code.as_str())
            .fetch_one(&self.pool)
            .await?;
        let used: Option<i32> = row.try_get("used")?;
        let left: Option<f64> = row.try_get("seconds_left")?;
        if let Some(wait) = used.zip(left).and_then(|(used, left)| guess_wait(used, left, limit)) {
            return Ok(Err(wait));
        }
        let now: DateTime<Utc> = row.try_get("db_now")?;
        // The LEFT JOIN found no code: every column of promo_codes is NULL.
        let found: Option<String> = row.try_get("code")?;
        let code = match found {
            Some(_) => Some(PromoCode::try_from(Row::from_row(&row)?)?),
            None => None,
        };
        Ok(Ok(Lookup { code, now }))
    }

    /// Spends one `not_found` answer of `caller`'s budget, in one atomic statement: concurrent
    /// guesses of one caller queue on their budget row. `Some(wait)` when the budget was already
    /// spent: this guess must be answered 429, not `not_found`. A window that has ended starts
    /// a new one.
    pub async fn record_guess_failure(
        &self,
        caller: &Owner,
        limit: &GuessLimit,
    ) -> Result<Option<Duration>, StoreError> {
        let (used, left): (i32, f64) = sqlx::query_as(
            "INSERT INTO guess_budgets AS b (caller, window_start, used) VALUES ($1, clock_timestamp(), 1) \
             ON CONFLICT (caller) DO UPDATE SET \
                 window_start = CASE WHEN b.window_start <= clock_timestamp() - make_interval(secs => $2) \
                                     THEN clock_timestamp() ELSE b.window_start END, \
                 used = CASE WHEN b.window_start <= clock_timestamp() - make_interval(secs => $2) \
                             THEN 1 ELSE least(b.used, $3) + 1 END \
             RETURNING used, extract(epoch FROM window_start + make_interval(secs => $2) - clock_timestamp())::float8",
        )
        .bind(caller.as_str())
        .bind(limit.window.as_secs_f64())
        .bind(i32::try_from(limit.max).unwrap_or(i32::MAX))
        .fetch_one(&self.pool)
        .await?;
        // The last allowed guess leaves `used == max`; any after it is over the budget.
        Ok((used > i32::try_from(limit.max).unwrap_or(i32::MAX)).then(|| wait_for(left)))
    }

    /// One page of codes matching the query, by keyset pagination on (sort key, code): the cost
    /// of a page does not depend on how deep it is.
    pub async fn list(&self, query: &ListQuery, now: DateTime<Utc>) -> Result<Page, StoreError> {
        let mut sql = QueryBuilder::new(format!("SELECT {COLUMNS} FROM promo_codes"));
        push_list_conditions(&mut sql, query, now)?;
        let rows: Vec<Row> = sql.build_query_as().fetch_all(&self.pool).await?;
        page(query, rows)
    }

    /// The same page as [`Store::list`] would give after `offset` rows, fetched the way keyset
    /// pagination avoids: with OFFSET, which reads and discards every row before the page. For
    /// the benchmark's comparison, and for reaching a deep page's cursor without paging to it.
    /// The query must carry no cursor.
    pub async fn list_offset(&self, query: &ListQuery, offset: u64, now: DateTime<Utc>) -> Result<Page, StoreError> {
        let mut sql = QueryBuilder::new(format!("SELECT {COLUMNS} FROM promo_codes"));
        push_list_conditions(&mut sql, query, now)?;
        sql.push(" OFFSET ").push_bind(i64::try_from(offset).unwrap_or(i64::MAX));
        let rows: Vec<Row> = sql.build_query_as().fetch_all(&self.pool).await?;
        page(query, rows)
    }

    /// PostgreSQL's plan for [`Store::list`] with this query: for checking that each sort is
    /// served by an index, in tests and when tuning.
    pub async fn explain_list(&self, query: &ListQuery, now: DateTime<Utc>) -> Result<String, StoreError> {
        let mut sql = QueryBuilder::new(format!("EXPLAIN SELECT {COLUMNS} FROM promo_codes"));
        push_list_conditions(&mut sql, query, now)?;
        let lines: Vec<String> = sql.build_query_scalar().fetch_all(&self.pool).await?;
        Ok(lines.join("\n"))
    }
}

/// A caller's budget: how many guesses they used, and the seconds left in its window (rows of
/// an ended window are not read). Binds: $1 the caller, $2 the window in seconds.
const GUESS_BUDGET: &str = "SELECT used, \
        extract(epoch FROM window_start + make_interval(secs => $2) - clock_timestamp())::float8 AS seconds_left \
    FROM guess_budgets WHERE caller = $1 AND window_start > clock_timestamp() - make_interval(secs => $2)";

/// The wait of a caller who used `used` guesses of a window with `seconds_left`.
fn guess_wait(used: i32, seconds_left: f64, limit: &GuessLimit) -> Option<Duration> {
    (i64::from(used) >= i64::from(limit.max)).then(|| wait_for(seconds_left))
}

/// A wait until the window ends: the caller may guess again then, when the budget starts anew.
fn wait_for(seconds_left: f64) -> Duration {
    Duration::from_secs_f64(seconds_left.max(0.0)).max(Duration::from_secs(1))
}

/// A page from up to `limit + 1` rows: the extra row only says that another page follows.
fn page(query: &ListQuery, rows: Vec<Row>) -> Result<Page, StoreError> {
    let limit = query.limit() as usize;
    let has_more = rows.len() > limit;
    let data = rows.into_iter().take(limit).map(PromoCode::try_from).collect::<Result<Vec<_>, _>>()?;
    let next_cursor = if has_more { data.last().map(|last| query.cursor_after(last)) } else { None };
    Ok(Page { data, next_cursor })
}

fn sort_column(key: SortKey) -> &'static str {
    match key {
        SortKey::CreatedAt => "created_at",
        SortKey::ExpiresAt => "expires_at",
        SortKey::Discount => "discount_bp",
        SortKey::Code => "code",
    }
}

/// Appends WHERE, ORDER BY and LIMIT for a list query. Values are always bound, never inlined.
fn push_list_conditions(
    sql: &mut QueryBuilder<'_, Postgres>,
    query: &ListQuery,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let f = query.filters();
    sql.push(" WHERE true");
    if let Some(owner) = &f.owner {
        sql.push(" AND owner = ").push_bind(owner.as_str().to_owned());
    }
    match f.status {
        Status::Active => {
            sql.push(" AND active AND expires_at > ").push_bind(now);
        }
        Status::Expired => {
            sql.push(" AND expires_at <= ").push_bind(now);
        }
        Status::Inactive => {
            sql.push(" AND NOT active AND expires_at > ").push_bind(now);
        }
        Status::All => {}
    }
    if let Some(prefix) = &f.code_prefix {
        // '_' is a LIKE wildcard and may appear in codes: escape it ('\' is the default escape).
        let pattern = format!("{}%", prefix.as_str().replace('_', "\\_"));
        sql.push(" AND code LIKE ").push_bind(pattern);
    }
    if let Some(min) = f.min_discount_bp {
        sql.push(" AND discount_bp >= ").push_bind(min);
    }
    if let Some(max) = f.max_discount_bp {
        sql.push(" AND discount_bp <= ").push_bind(max);
    }
    for (column, op, bound) in [
        ("expires_at", ">", f.expires_after),
        ("expires_at", "<", f.expires_before),
        ("created_at", ">", f.created_after),
        ("created_at", "<", f.created_before),
    ] {
        if let Some(bound) = bound {
            sql.push(format!(" AND {column} {op} ")).push_bind(bound);
        }
    }

    let sort = query.sort();
    let column = sort_column(sort.key);
    let (op, direction) = match sort.direction {
        SortDirection::Ascending => (">", "ASC"),
        SortDirection::Descending => ("<", "DESC"),
    };
    if let Some(after) = &query.after {
        let code = after.code.as_str().to_owned();
        match after.value {
            SortValue::CodeOnly => {
                sql.push(format!(" AND code {op} ")).push_bind(code);
            }
            SortValue::Micros(micros) => {
                let at = DateTime::from_timestamp_micros(micros).ok_or_else(|| StoreError::Invalid {
                    param: "cursor".into(),
                    message: "cursor is not one this API issued".into(),
                })?;
                sql.push(format!(" AND ({column}, code) {op} (")).push_bind(at).push(", ").push_bind(code).push(")");
            }
            SortValue::BasisPoints(bp) => {
                sql.push(format!(" AND ({column}, code) {op} (")).push_bind(bp).push(", ").push_bind(code).push(")");
            }
        }
    }
    if sort.key == SortKey::Code {
        sql.push(format!(" ORDER BY code {direction}"));
    } else {
        sql.push(format!(" ORDER BY {column} {direction}, code {direction}"));
    }
    // One row more than asked tells whether another page follows.
    sql.push(" LIMIT ").push_bind(i64::from(query.limit()) + 1);
    Ok(())
}

#[cfg(test)]
mod check_violations {
    use super::*;

    #[test]
    fn a_constraint_name_is_never_a_param() {
        let Some(StoreError::Invalid { param, .. }) = check_violation("promo_codes_discount_bp_check") else {
            panic!("a known constraint names its field");
        };
        assert_eq!(param, "discount_percentage");
        assert!(check_violation("promo_codes_some_future_check").is_none());
        assert!(check_violation("redemptions_discount_bp_check").is_none(), "no client sends this one");
    }
}
