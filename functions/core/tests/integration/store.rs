//! The store on a real PostgreSQL: writes, optimistic concurrency, every filter and sort, cursor
//! walks, and the query plans that keep pages cheap.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use promo_core::domain::{DomainError, ListQuery, NewPromoCode, PromoCode, PromoCodePatch};
use promo_core::store::{Store, StoreError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::helpers::{Seed, StoreAsAdmin, at, fresh_pool, fresh_store, seed};

fn new_code(body: &str) -> NewPromoCode {
    NewPromoCode::from_json(body.as_bytes(), Utc::now()).expect("valid test body")
}

fn query(params: &[(&str, &str)]) -> ListQuery {
    ListQuery::parse(params.iter().copied()).expect("valid test query")
}

/// Follows the cursors from the first page to the last; returns every code in order.
async fn walk(store: &Store, params: &[(&str, &str)], now: DateTime<Utc>) -> Vec<String> {
    let mut codes = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10_000 {
        let mut p: Vec<(&str, &str)> = params.to_vec();
        if let Some(c) = &cursor {
            p.push(("cursor", c));
        }
        let page = store.list(&query(&p), now).await.expect("list");
        let limit = query(params).limit() as usize;
        assert!(page.data.len() <= limit);
        if page.next_cursor.is_some() {
            assert_eq!(page.data.len(), limit, "a page before the last is full");
        }
        codes.extend(page.data.iter().map(|c| c.code.to_string()));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return codes,
        }
    }
    panic!("the cursor walk did not end");
}

#[tokio::test]
async fn a_created_code_reads_back_exactly() {
    let store = fresh_store().await;
    let created = store.insert_as_admin(&new_code(
            r#"{"code":"summer25","owner":"user-123","discount_percentage":12.34,"expires_at":"2030-12-31T23:59:59+01:00","description":"Summer","max_redemptions":5}"#,
        ))
        .await
        .unwrap();
    assert_eq!(created.code.as_str(), "SUMMER25");
    assert_eq!(created.discount.basis_points(), 1234);
    assert_eq!(created.expires_at.at(), at("2030-12-31T22:59:59Z"));
    assert_eq!(created.version, 1);
    assert_eq!(created.times_redeemed, 0);
    assert_eq!(created.max_redemptions.unwrap().get(), 5);
    assert_eq!(created.created_at, created.updated_at);

    let read = store.get(&created.code).await.unwrap();
    assert_eq!(read, created);
    let json = serde_json::to_value(&read).unwrap();
    assert_eq!(json["discount_percentage"].to_string(), "12.34");
}

#[tokio::test]
async fn a_code_equal_ignoring_case_is_a_conflict() {
    let store = fresh_store().await;
    let body = |code: &str| {
        format!(r#"{{"code":"{code}","owner":"u","discount_percentage":5,"expires_at":"2030-01-01T00:00:00Z"}}"#)
    };
    store.insert_as_admin(&new_code(&body("Summer25"))).await.unwrap();
    let err = store.insert_as_admin(&new_code(&body("sUMMER25"))).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { ref constraint } if constraint == "promo_codes_pkey"), "{err:?}");
}

#[tokio::test]
async fn getting_an_unknown_code_is_not_found() {
    let store = fresh_store().await;
    let code = promo_core::domain::Code::parse("NOPE1234").unwrap();
    assert!(matches!(store.get(&code).await, Err(StoreError::NotFound)));
}

#[tokio::test]
async fn a_patch_changes_what_it_names_and_bumps_the_version() {
    let store = fresh_store().await;
    let created = store.insert_as_admin(&new_code(
            r#"{"code":"PATCHME","owner":"a","discount_percentage":5,"expires_at":"2030-01-01T00:00:00Z","description":"d","max_redemptions":3}"#,
        ))
        .await
        .unwrap();
    let patch = PromoCodePatch::from_json(
        br#"{"owner":"b","discount_percentage":7.5,"description":null,"active":false,"max_redemptions":null}"#,
    )
    .unwrap();
    let patched = store.patch_as_admin(&created.code, &patch, Some(1)).await.unwrap();
    assert_eq!(patched.owner.as_str(), "b");
    assert_eq!(patched.discount.basis_points(), 750);
    assert_eq!(patched.description, None);
    assert!(!patched.active);
    assert_eq!(patched.max_redemptions, None);
    assert_eq!(patched.expires_at, created.expires_at);
    assert_eq!(patched.created_at, created.created_at);
    assert_eq!(patched.version, 2);
    assert!(patched.updated_at >= created.updated_at);

    let again = store
        .patch_as_admin(&created.code, &PromoCodePatch::from_json(br#"{"active":true}"#).unwrap(), None)
        .await
        .unwrap();
    assert_eq!(again.version, 3);
    assert_eq!(again.owner.as_str(), "b");
}

#[tokio::test]
async fn a_stale_version_is_refused_and_nothing_is_written() {
    let store = fresh_store().await;
    let created = store
        .insert_as_admin(&new_code(
            r#"{"code":"STALE1","owner":"a","discount_percentage":5,"expires_at":"2030-01-01T00:00:00Z"}"#,
        ))
        .await
        .unwrap();
    store
        .patch_as_admin(&created.code, &PromoCodePatch::from_json(br#"{"owner":"b"}"#).unwrap(), Some(1))
        .await
        .unwrap();

    let err = store
        .patch_as_admin(
            &created.code,
            &PromoCodePatch::from_json(br#"{"owner":"c","discount_percentage":99}"#).unwrap(),
            Some(1),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::VersionMismatch { current: 2 }), "{err:?}");
    let read = store.get(&created.code).await.unwrap();
    assert_eq!(read.owner.as_str(), "b");
    assert_eq!(read.discount.basis_points(), 500);
    assert_eq!(read.version, 2);
}

#[tokio::test]
async fn of_concurrent_patches_expecting_the_same_version_exactly_one_wins() {
    let store = fresh_store().await;
    let created = store
        .insert_as_admin(&new_code(
            r#"{"code":"RACE1","owner":"a","discount_percentage":5,"expires_at":"2030-01-01T00:00:00Z"}"#,
        ))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            let code = created.code.clone();
            tokio::spawn(async move {
                let patch = PromoCodePatch::from_json(format!(r#"{{"owner":"writer-{i}"}}"#).as_bytes()).unwrap();
                store.patch_as_admin(&code, &patch, Some(1)).await
            })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => wins += 1,
            Err(StoreError::VersionMismatch { current: 2 }) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(store.get(&created.code).await.unwrap().version, 2);
}

#[tokio::test]
async fn patching_an_unknown_code_is_not_found() {
    let store = fresh_store().await;
    let code = promo_core::domain::Code::parse("GHOST1").unwrap();
    let patch = PromoCodePatch::from_json(br#"{"active":false}"#).unwrap();
    assert!(matches!(store.patch_as_admin(&code, &patch, None).await, Err(StoreError::NotFound)));
    assert!(matches!(store.patch_as_admin(&code, &patch, Some(1)).await, Err(StoreError::NotFound)));
}

#[tokio::test]
async fn a_patch_may_end_a_campaign_now_but_not_before_it_was_created() {
    let store = fresh_store().await;
    let created = store
        .insert_as_admin(&new_code(
            r#"{"code":"ENDNOW","owner":"a","discount_percentage":5,"expires_at":"2030-01-01T00:00:00Z"}"#,
        ))
        .await
        .unwrap();
    let now = promo_core::domain::Expiry::parse(&(Utc::now() + Duration::seconds(1)).to_rfc3339()).unwrap();
    let patch = PromoCodePatch { expires_at: Some(now), ..Default::default() };
    assert_eq!(store.patch_as_admin(&created.code, &patch, None).await.unwrap().expires_at, now);

    let before = PromoCodePatch::from_json(br#"{"expires_at":"2020-01-01T00:00:00Z"}"#).unwrap();
    match store.patch_as_admin(&created.code, &before, None).await {
        Err(StoreError::Invalid { param, .. }) => assert_eq!(param, "expires_at"),
        other => panic!("expected an invalid expires_at, got {other:?}"),
    }
    assert_eq!(store.get(&created.code).await.unwrap().version, 2, "the refused patch wrote nothing");
}

#[tokio::test]
async fn the_database_refuses_bad_rows_even_without_the_domain_types() {
    let pool = fresh_pool(1).await;
    let bad_rows = [
        ("lower1", 100, "code"),
        ("ABC", 100, "code"),
        ("GOOD01", 0, "discount_bp"),
        ("GOOD02", 10_001, "discount_bp"),
    ];
    for (code, bp, constraint) in bad_rows {
        let err = sqlx::query(
            "INSERT INTO promo_codes (code, owner, discount_bp, expires_at) VALUES ($1, 'o', $2, now() + interval '1 day')",
        )
        .bind(code)
        .bind(bp)
        .execute(&pool)
        .await
        .unwrap_err();
        let db = err.as_database_error().expect("a database error");
        assert_eq!(db.constraint(), Some(format!("promo_codes_{constraint}_check").as_str()), "{code} {bp}");
    }
    let err = sqlx::query("INSERT INTO promo_codes (code, owner, discount_bp, expires_at) VALUES ('CTRL1', E'a\\nb', 5, now() + interval '1 day')")
        .execute(&pool)
        .await
        .unwrap_err();
    assert_eq!(err.as_database_error().and_then(|d| d.constraint()), Some("promo_codes_owner_check"));
}

/// Rows with many ties on every sort key, some expired and some switched off at `list_now()`.
fn varied_rows(n: usize, rng_seed: u64) -> Vec<Seed> {
    let mut rng = StdRng::seed_from_u64(rng_seed);
    let owners = ["alice", "bob", "carol"];
    let discounts = [500, 1000, 1250, 2000, 10_000];
    let base = at("2026-01-01T00:00:00Z");
    (0..n)
        .map(|i| {
            let created_at = base + Duration::minutes(rng.random_range(0..40));
            let expires_at = if rng.random_bool(0.3) {
                at("2026-03-01T00:00:00Z") + Duration::hours(rng.random_range(0..5))
            } else {
                at("2027-01-01T00:00:00Z") + Duration::hours(rng.random_range(0..5))
            };
            let prefix = ["SUM", "WIN", "S_M", "SAL"][rng.random_range(0..4)];
            Seed {
                code: format!("{prefix}{i:05}"),
                owner: owners[rng.random_range(0..owners.len())].into(),
                discount_bp: discounts[rng.random_range(0..discounts.len())],
                expires_at,
                created_at,
                active: rng.random_bool(0.8),
            }
        })
        .collect()
}

fn list_now() -> DateTime<Utc> {
    at("2026-06-01T00:00:00Z")
}

fn sorted(rows: &[Seed], sort: &str) -> Vec<String> {
    let mut rows = rows.to_vec();
    let descending = sort.starts_with('-');
    rows.sort_by(|a, b| {
        let ordering = match sort.trim_start_matches('-') {
            "created_at" => a.created_at.cmp(&b.created_at),
            "expires_at" => a.expires_at.cmp(&b.expires_at),
            "discount_percentage" => a.discount_bp.cmp(&b.discount_bp),
            "code" => std::cmp::Ordering::Equal,
            other => panic!("unknown sort {other}"),
        }
        .then_with(|| a.code.cmp(&b.code));
        if descending { ordering.reverse() } else { ordering }
    });
    rows.into_iter().map(|r| r.code).collect()
}

#[tokio::test]
async fn every_sort_in_both_directions_orders_with_the_code_tie_break() {
    let store = fresh_store().await;
    let rows = varied_rows(150, 7);
    seed(store.pool(), &rows).await;
    for key in ["created_at", "expires_at", "discount_percentage", "code"] {
        for sort in [key.to_owned(), format!("-{key}")] {
            let got = walk(&store, &[("sort", &sort), ("limit", "100")], list_now()).await;
            assert_eq!(got, sorted(&rows, &sort), "sort={sort}");
        }
    }
    // The default is newest first.
    assert_eq!(walk(&store, &[("limit", "100")], list_now()).await, sorted(&rows, "-created_at"));
}

#[tokio::test]
async fn every_filter_and_status_selects_exactly_the_matching_codes() {
    let store = fresh_store().await;
    let rows = varied_rows(200, 11);
    seed(store.pool(), &rows).await;
    let now = list_now();

    type Predicate = Box<dyn Fn(&Seed) -> bool>;
    let cases: Vec<(Vec<(&str, &str)>, Predicate)> = vec![
        (vec![("status", "all")], Box::new(|_| true)),
        (vec![("status", "active")], Box::new(move |r| r.active && r.expires_at > now)),
        (vec![("status", "expired")], Box::new(move |r| r.expires_at <= now)),
        (vec![("status", "inactive")], Box::new(move |r| !r.active && r.expires_at > now)),
        (vec![("owner", "bob")], Box::new(|r| r.owner == "bob")),
        (vec![("owner", "nobody")], Box::new(|_| false)),
        (vec![("code_prefix", "su")], Box::new(|r| r.code.starts_with("SU"))),
        // '_' must match itself, not any character: S_M matches, SUM and SAL do not.
        (vec![("code_prefix", "S_")], Box::new(|r| r.code.starts_with("S_"))),
        (vec![("min_discount", "12.5")], Box::new(|r| r.discount_bp >= 1250)),
        (vec![("max_discount", "10")], Box::new(|r| r.discount_bp <= 1000)),
        (vec![("min_discount", "10"), ("max_discount", "12.5")], Box::new(|r| (1000..=1250).contains(&r.discount_bp))),
        (vec![("expires_after", "2026-03-01T02:00:00Z")], Box::new(|r| r.expires_at > at("2026-03-01T02:00:00Z"))),
        (vec![("expires_before", "2026-03-01T02:00:00Z")], Box::new(|r| r.expires_at < at("2026-03-01T02:00:00Z"))),
        (vec![("created_after", "2026-01-01T00:20:00Z")], Box::new(|r| r.created_at > at("2026-01-01T00:20:00Z"))),
        (
            vec![("created_before", "2026-01-01T01:20:00+01:00")],
            Box::new(|r| r.created_at < at("2026-01-01T00:20:00Z")),
        ),
        (
            vec![("owner", "alice"), ("status", "active"), ("min_discount", "10"), ("code_prefix", "W")],
            Box::new(move |r| {
                r.owner == "alice" && r.active && r.expires_at > now && r.discount_bp >= 1000 && r.code.starts_with('W')
            }),
        ),
    ];
    for (params, predicate) in cases {
        let mut with_page = params.clone();
        with_page.push(("limit", "13"));
        let got = walk(&store, &with_page, now).await;
        let expected: Vec<Seed> = rows.iter().filter(|r| predicate(r)).cloned().collect();
        assert_eq!(got, sorted(&expected, "-created_at"), "{params:?}");
    }
}

#[tokio::test]
async fn a_cursor_walk_over_1000_codes_returns_each_exactly_once() {
    let store = fresh_store().await;
    let rows = varied_rows(1000, 42);
    seed(store.pool(), &rows).await;
    let all: HashSet<String> = rows.iter().map(|r| r.code.clone()).collect();
    for sort in ["-created_at", "expires_at", "-discount_percentage", "code"] {
        let got = walk(&store, &[("sort", sort), ("limit", "37")], list_now()).await;
        assert_eq!(got.len(), 1000, "sort={sort}");
        assert_eq!(got.iter().cloned().collect::<HashSet<_>>(), all, "sort={sort}");
        assert_eq!(got, sorted(&rows, sort), "sort={sort}");
    }
}

#[tokio::test]
async fn the_last_page_has_no_cursor_and_an_exact_fit_needs_no_extra_page() {
    let store = fresh_store().await;
    seed(store.pool(), &varied_rows(10, 3)).await;
    let page = store.list(&query(&[("limit", "10")]), list_now()).await.unwrap();
    assert_eq!(page.data.len(), 10);
    assert_eq!(page.next_cursor, None);
    let page = store.list(&query(&[("limit", "9")]), list_now()).await.unwrap();
    assert!(page.next_cursor.is_some());
}

#[tokio::test]
async fn a_cursor_reused_with_another_sort_or_filter_is_refused() {
    let store = fresh_store().await;
    seed(store.pool(), &varied_rows(30, 5)).await;
    let page = store.list(&query(&[("sort", "code"), ("limit", "5")]), list_now()).await.unwrap();
    let cursor = page.next_cursor.expect("a second page");
    let reused = ListQuery::parse([("sort", "-code"), ("limit", "5"), ("cursor", cursor.as_str())]);
    assert!(matches!(reused, Err(DomainError::Malformed { ref param, .. }) if param.as_deref() == Some("cursor")));
    let refiltered = ListQuery::parse([("sort", "code"), ("owner", "bob"), ("cursor", cursor.as_str())]);
    assert!(matches!(refiltered, Err(DomainError::Malformed { .. })));
    // The same sort and filters with another page size is fine.
    assert!(ListQuery::parse([("sort", "code"), ("limit", "7"), ("cursor", cursor.as_str())]).is_ok());
}

#[tokio::test]
async fn at_100000_codes_every_sort_is_served_by_an_index_without_a_sort_or_seq_scan() {
    let store = fresh_store().await;
    sqlx::query(
        "INSERT INTO promo_codes (code, owner, discount_bp, expires_at, created_at, updated_at, active) \
         SELECT 'GEN' || lpad(i::text, 6, '0'), 'owner-' || (i % 500), 1 + (i * 7919) % 10000, \
                timestamptz '2027-01-01' + (i % 997) * interval '1 minute', \
                timestamptz '2026-01-01' + (i % 3001) * interval '1 second', \
                timestamptz '2026-01-01', i % 10 <> 0 \
         FROM generate_series(1, 100000) AS i",
    )
    .execute(store.pool())
    .await
    .unwrap();
    sqlx::query("ANALYZE promo_codes").execute(store.pool()).await.unwrap();

    let mut plans: Vec<(String, String)> = Vec::new();
    let default_plan = store.explain_list(&query(&[]), list_now()).await.unwrap();
    plans.push(("default".into(), default_plan));
    for key in ["created_at", "expires_at", "discount_percentage", "code"] {
        for sort in [key.to_owned(), format!("-{key}")] {
            plans.push((sort.clone(), store.explain_list(&query(&[("sort", &sort)]), list_now()).await.unwrap()));
        }
    }
    // A deep page: the keyset condition must still be an index range.
    let first = store.list(&query(&[("limit", "100")]), list_now()).await.unwrap();
    let deep = query(&[("limit", "100"), ("cursor", first.next_cursor.as_deref().unwrap())]);
    plans.push(("default, page 2".into(), store.explain_list(&deep, list_now()).await.unwrap()));

    for (name, plan) in plans {
        assert!(plan.contains("Index"), "{name}: no index used:\n{plan}");
        assert!(!plan.contains("Seq Scan"), "{name}: a sequential scan:\n{plan}");
        assert!(!plan.contains("Sort"), "{name}: a sort node:\n{plan}");
    }
}

#[tokio::test]
async fn a_listed_code_renders_like_a_fetched_one() {
    let store = fresh_store().await;
    let created: PromoCode = store
        .insert_as_admin(&new_code(
            r#"{"code":"SAME01","owner":"o","discount_percentage":1,"expires_at":"2030-01-01T00:00:00Z"}"#,
        ))
        .await
        .unwrap();
    let page = store.list(&query(&[]), Utc::now()).await.unwrap();
    assert_eq!(page.data, vec![created]);
}

#[tokio::test]
async fn the_database_and_the_domain_agree_on_what_a_control_character_is() {
    let pool = fresh_pool(1).await;
    let probes = (1u32..=0xa0).chain([0xad, 0x2028, 0x2029, 0x200b, 0xfeff, 0x1f600]).filter_map(char::from_u32);
    for (i, c) in probes.enumerate() {
        let text = format!("a{c}b");
        let domain = promo_core::domain::has_control_characters(&text);
        for (n, (owner, description)) in [(text.as_str(), "plain"), ("plain", text.as_str())].into_iter().enumerate() {
            let stored = sqlx::query(
                "INSERT INTO promo_codes (code, owner, discount_bp, expires_at, description) \
                 VALUES ($1, $2, 100, now() + interval '1 day', $3)",
            )
            .bind(format!("PROBE{i}X{n}"))
            .bind(owner)
            .bind(description)
            .execute(&pool)
            .await;
            let field = if n == 0 { "owner" } else { "description" };
            assert_eq!(stored.is_err(), domain, "{field} with U+{:04X}: {stored:?}", c as u32);
        }
    }
}
