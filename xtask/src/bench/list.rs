//! list: one page of 20 at depth 1, 100 and 10,000 for every sort key in both directions. The
//! keyset page is a request to the release list function (under the Runtime API emulator) with
//! the cursor a client paging that deep would hold; the OFFSET page is the same rows fetched by
//! skipping, SQL only. Both must be the same page.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use anyhow::bail;
use promo_core::domain::{ListQuery, SortKey};
use promo_core::store::Store;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::runtime::{RuntimeApi, expect};
use super::stats::Latencies;
use super::{PAGE, Sizes, Tokens, proxy_event};

pub struct Row {
    /// As the API writes it: `created_at` or `-created_at`.
    pub sort: String,
    pub depth: u64,
    pub keyset: Latencies,
    pub offset: Latencies,
}

pub async fn run(
    database: &PgConnectOptions,
    bootstrap: &Path,
    env: &HashMap<String, String>,
    tokens: &Tokens,
    sizes: &Sizes,
) -> anyhow::Result<Vec<Row>> {
    let store = Store::new(PgPoolOptions::new().max_connections(2).connect_with(database.clone()).await?);
    let runtime = RuntimeApi::start().await?;
    let mut instance = runtime.spawn(bootstrap, env)?;
    let now = chrono::Utc::now();
    let mut rows = Vec::new();
    for key in SortKey::ALL {
        for sort in [key.name().to_owned(), format!("-{}", key.name())] {
            let limit = PAGE.to_string();
            let query = ListQuery::parse([("sort", sort.as_str()), ("limit", limit.as_str())])?;
            for &depth in &sizes.depths {
                let skip = (depth - 1) * u64::from(PAGE);
                // The cursor a client holds after paging to `depth`: the previous page's.
                let cursor = if depth == 1 {
                    None
                } else {
                    store.list_offset(&query, skip - u64::from(PAGE), now).await?.next_cursor
                };
                let mut uri = format!("/promo-codes?sort={sort}&limit={PAGE}");
                if let Some(cursor) = &cursor {
                    uri.push_str(&format!("&cursor={cursor}"));
                }
                let mut keyset = Vec::new();
                let mut keyset_codes = Vec::new();
                for _ in 0..sizes.keyset_reps {
                    let event = proxy_event("GET", &uri, "/promo-codes", &[], Some(&tokens.admin), "")?;
                    let started = Instant::now();
                    let reply = runtime.invoke(event).await?;
                    keyset.push(started.elapsed());
                    expect(&format!("list {uri}"), &reply, 200)?;
                    keyset_codes = codes_of(&reply.body)?;
                }
                let mut offset = Vec::new();
                let mut offset_codes = Vec::new();
                for _ in 0..sizes.offset_reps {
                    let started = Instant::now();
                    let page = store.list_offset(&query, skip, now).await?;
                    offset.push(started.elapsed());
                    offset_codes = page.data.iter().map(|c| c.code.to_string()).collect();
                }
                if keyset_codes != offset_codes || keyset_codes.len() != PAGE as usize {
                    bail!(
                        "sort {sort} depth {depth}: the keyset page {keyset_codes:?} is not the OFFSET page {offset_codes:?}"
                    );
                }
                let row =
                    Row { sort: sort.clone(), depth, keyset: Latencies::new(keyset), offset: Latencies::new(offset) };
                println!(
                    "    {:<21} depth {:>6}: keyset p50 {} p99 {} ms | OFFSET p50 {} p99 {} ms",
                    sort,
                    depth,
                    super::stats::ms(row.keyset.p50()),
                    super::stats::ms(row.keyset.p99()),
                    super::stats::ms(row.offset.p50()),
                    super::stats::ms(row.offset.p99()),
                );
                rows.push(row);
            }
        }
    }
    let _ = instance.kill().await;
    store.pool().close().await;
    Ok(rows)
}

/// The codes of a list response (the API Gateway response document's body).
fn codes_of(response: &str) -> anyhow::Result<Vec<String>> {
    let document: serde_json::Value = serde_json::from_str(response)?;
    let page: serde_json::Value = serde_json::from_str(document["body"].as_str().unwrap_or_default())?;
    Ok(page["data"]
        .as_array()
        .map(|items| items.iter().filter_map(|i| i["code"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default())
}
