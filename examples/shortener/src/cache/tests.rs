//! Tests of the redirect cache: bounds, eviction, misses, generations,
//! click budgets and stale entries.

use super::*;

fn link(id: i64, slug: &str) -> Link {
    Link {
        id,
        slug: slug.into(),
        url: format!("https://example.com/{slug}"),
        created_at: 0,
        expires_at: None,
        disabled: false,
        max_clicks: None,
        clicks: 0,
        password_hash: None,
    }
}

fn hit_id(cache: &RedirectCache, slug: &str) -> Option<i64> {
    cache.with(slug, |l| match l {
        Lookup::Hit(link) => Some(link.id),
        _ => None,
    })
}

#[test]
fn remembers_links_and_misses_until_invalidated() {
    let cache = RedirectCache::new(CacheConfig::default());
    assert!(cache.with("abc", |l| matches!(l, Lookup::Unknown)));
    let generation = cache.generation("abc");
    cache.insert("abc", Some(&link(1, "abc")), generation);
    assert_eq!(hit_id(&cache, "abc"), Some(1));
    cache.insert("nope", None, cache.generation("nope"));
    assert!(cache.with("nope", |l| matches!(l, Lookup::Missing)));
    cache.invalidate("abc");
    cache.invalidate("nope");
    assert_eq!(hit_id(&cache, "abc"), None);
    assert!(cache.with("nope", |l| matches!(l, Lookup::Unknown)));
    assert_eq!(cache.counters.hits.get(), 1);
    assert_eq!(cache.counters.negative_hits.get(), 1);
}

#[test]
fn a_load_that_raced_an_update_is_not_cached() {
    let cache = RedirectCache::new(CacheConfig::default());
    let before_update = cache.generation("abc");
    cache.invalidate("abc");
    cache.insert("abc", Some(&link(1, "abc")), before_update);
    assert_eq!(hit_id(&cache, "abc"), None);
}

#[test]
fn stays_within_its_bounds_and_keeps_recent_links() {
    let config = CacheConfig {
        max_entries: SHARDS * 4,
        ..CacheConfig::default()
    };
    let cache = RedirectCache::new(config);
    for i in 0..10_000 {
        let slug = format!("s{i}");
        cache.insert(&slug, Some(&link(i, &slug)), cache.generation(&slug));
    }
    assert!(cache.len() <= SHARDS * 4, "{} entries", cache.len());
    assert!(cache.counters.evictions.get() >= 10_000 - SHARDS as u64 * 4);

    let bytes_config = CacheConfig {
        max_bytes: SHARDS * 1024,
        ..CacheConfig::default()
    };
    let cache = RedirectCache::new(bytes_config);
    for i in 0..10_000 {
        let slug = format!("s{i}");
        cache.insert(&slug, Some(&link(i, &slug)), cache.generation(&slug));
    }
    assert!(cache.bytes() <= SHARDS * 1024);
    assert!(!cache.is_empty());
}

#[test]
fn misses_are_bounded_and_expire() {
    let config = CacheConfig {
        max_negative: SHARDS,
        negative_ttl: Duration::from_millis(50),
        ..CacheConfig::default()
    };
    let cache = RedirectCache::new(config);
    for i in 0..1_000 {
        let slug = format!("m{i}");
        cache.insert(&slug, None, cache.generation(&slug));
    }
    let remembered: usize = cache.shards.iter().map(|s| s.read().missing.len()).sum();
    assert!(remembered <= SHARDS);
    cache.insert("gone", None, cache.generation("gone"));
    assert!(cache.with("gone", |l| matches!(l, Lookup::Missing)));
    std::thread::sleep(Duration::from_millis(60));
    assert!(cache.with("gone", |l| matches!(l, Lookup::Unknown)));
}

#[test]
fn peeking_counts_nothing() {
    let cache = RedirectCache::new(CacheConfig::default());
    cache.insert("abc", Some(&link(1, "abc")), cache.generation("abc"));
    cache.insert("nope", None, cache.generation("nope"));
    assert!(cache.peek("abc", |l| matches!(l, Lookup::Hit(_))));
    assert!(cache.peek("nope", |l| matches!(l, Lookup::Missing)));
    assert!(cache.peek("other", |l| matches!(l, Lookup::Unknown)));
    let c = &cache.counters;
    let counts = [&c.hits, &c.negative_hits, &c.misses].map(|n| n.get());
    assert_eq!(counts, [0, 0, 0]);
}

#[test]
fn a_second_load_keeps_the_live_entry_and_its_clicks() {
    let cache = RedirectCache::new(CacheConfig::default());
    let limited = Link {
        max_clicks: Some(2),
        ..link(7, "lim")
    };
    let generation = cache.generation("lim");
    cache.insert("lim", Some(&limited), generation);
    assert!(cache.with("lim", |l| matches!(l, Lookup::Hit(l) if l.take_click())));
    // A load that raced the first (same generation) read 0 clicks.
    cache.insert("lim", Some(&limited), generation);
    assert!(cache.with("lim", |l| matches!(l, Lookup::Hit(l) if l.take_click())));
    assert!(!cache.with("lim", |l| matches!(l, Lookup::Hit(l) if l.take_click())));
}

#[test]
fn an_expired_entry_is_replaced() {
    let cache = RedirectCache::new(CacheConfig {
        ttl: Duration::from_millis(30),
        ..CacheConfig::default()
    });
    cache.insert("abc", Some(&link(1, "abc")), cache.generation("abc"));
    std::thread::sleep(Duration::from_millis(40));
    assert!(cache.with("abc", |l| matches!(l, Lookup::Stale { refresh: true, .. })));
    cache.insert("abc", Some(&link(2, "abc")), cache.generation("abc"));
    assert_eq!(hit_id(&cache, "abc"), Some(2));
    assert_eq!(cache.len(), 1);
}

#[test]
fn click_budget_is_enforced_in_memory() {
    let cache = RedirectCache::new(CacheConfig::default());
    let limited = Link {
        max_clicks: Some(2),
        clicks: 1,
        ..link(7, "lim")
    };
    cache.insert("lim", Some(&limited), cache.generation("lim"));
    let take = || cache.with("lim", |l| matches!(l, Lookup::Hit(l) if l.take_click()));
    assert!(take());
    assert!(!take());
    assert!(cache.with("lim", |l| matches!(l, Lookup::Hit(l) if l.is_spent())));
}

#[test]
fn a_link_with_a_budget_is_read_again_after_the_budget_ttl() {
    let cache = RedirectCache::new(CacheConfig {
        budget_ttl: Duration::from_millis(30),
        ..CacheConfig::default()
    });
    let limited = Link {
        max_clicks: Some(5),
        ..link(7, "lim")
    };
    cache.insert("lim", Some(&limited), cache.generation("lim"));
    cache.insert("abc", Some(&link(1, "abc")), cache.generation("abc"));
    std::thread::sleep(Duration::from_millis(40));
    // Clicks other instances flushed meanwhile are in the next read.
    assert!(cache.with("lim", |l| matches!(l, Lookup::Unknown)));
    assert_eq!(hit_id(&cache, "abc"), Some(1));
    let spent = Link {
        clicks: 5,
        ..limited
    };
    cache.insert("lim", Some(&spent), cache.generation("lim"));
    assert!(cache.with("lim", |l| matches!(l, Lookup::Hit(l) if l.is_spent())));
}

#[test]
fn expired_links_are_served_while_one_visit_reads_them_again() {
    let cache = RedirectCache::new(CacheConfig::default());
    let limited = Link {
        max_clicks: Some(5),
        ..link(7, "lim")
    };
    cache.insert("abc", Some(&link(1, "abc")), cache.generation("abc"));
    cache.insert("lim", Some(&limited), cache.generation("lim"));
    cache.insert("nope", None, cache.generation("nope"));
    cache.expire_all();
    let stale = |slug| {
        cache.with(slug, |l| match l {
            Lookup::Stale { link, refresh } => Some((link.id, refresh)),
            _ => None,
        })
    };
    // The first visit is told to read it again; the others meanwhile not.
    assert_eq!(stale("abc"), Some((1, true)));
    assert_eq!(stale("abc"), Some((1, false)));
    // A read that failed (or was kept out) lets the next visit try again.
    cache.refresh_done("abc");
    assert_eq!(stale("abc"), Some((1, true)));
    // A link with a budget waits for the store's count.
    assert!(cache.with("lim", |l| matches!(l, Lookup::Unknown)));
    assert!(cache.stale("lim", |l| l.is_some_and(|l| l.id == 7)));
    assert!(cache.with("nope", |l| matches!(l, Lookup::Unknown)));
    // A fresh read replaces it.
    cache.insert("abc", Some(&link(2, "abc")), cache.generation("abc"));
    cache.refresh_done("abc");
    assert_eq!(hit_id(&cache, "abc"), Some(2));
}

#[test]
fn a_link_gone_from_the_store_is_not_served_even_stale() {
    let cache = RedirectCache::new(CacheConfig::default());
    cache.insert("abc", Some(&link(1, "abc")), cache.generation("abc"));
    cache.expire_all();
    // Deleted while the change feed was down: the refresh reads nothing.
    cache.insert("abc", None, cache.generation("abc"));
    assert!(cache.with("abc", |l| matches!(l, Lookup::Missing)));
    assert!(cache.stale("abc", |l| l.is_none()));
    assert_eq!(cache.len(), 0);
}
