//! What every [`Store`] must do, as tests each implementation runs on a
//! fresh, empty store of its own (see `sqlite/tests.rs` and
//! `postgres/tests.rs`, which also hold the tests of what only one of them
//! has: files, pools, the change feed).
//!
//! Each function is one test; [`all_conformance_tests!`] turns them into
//! `#[test]`s given a function making a [`Harness`] per test.

mod links;
mod stats;

pub(crate) use links::*;
pub(crate) use stats::*;

use super::Store;
use crate::model::{LinkClicks, NewLink};

/// A fresh, empty store for one test, and what a test needs to look past
/// the trait.
pub(crate) trait Harness {
    fn store(&self) -> &dyn Store;
    /// Rows in one of the store's tables.
    fn rows_in(&self, table: &str) -> i64;
}

/// Declares one `#[test]` per conformance function, each on the harness
/// `$make()` returns; `None` skips the test (the store is not available
/// here, and `$make` said so).
macro_rules! all_conformance_tests {
    ($make:path) => {
        $crate::store::conformance::all_conformance_tests!(
            $make;
            plain_creates_return_the_newest_live_plain_link,
            custom_slugs_are_unique_against_custom_and_generated_ones,
            create_keeps_every_field_and_a_given_creation_time,
            create_many_reports_per_item_and_dedups_within_the_batch,
            create_many_refuses_too_many_and_takes_none,
            update_applies_the_patch_and_clears_with_some_none,
            stats_add_up_sorted_and_capped,
            counts_saturate_instead_of_overflowing,
            delete_removes_the_link_and_its_stats_and_ids_are_not_reused,
            list_pages_newest_first_without_gaps_or_duplicates,
            for_each_streams_oldest_first_and_stops_at_the_first_error,
            concurrent_creates_get_distinct_ids_and_slugs,
            concurrent_plain_creates_of_one_url_share_one_link,
            a_retried_click_batch_counts_once,
            a_click_batch_names_links_in_any_order,
            referrer_rows_per_link_are_capped,
        );
    };
    ($make:path; $($name:ident),+ $(,)?) => {
        $(
            #[test]
            fn $name() {
                use $crate::store::conformance::Harness as _;
                let Some(harness) = $make() else { return };
                $crate::store::conformance::$name(harness.store(), &|table| {
                    harness.rows_in(table)
                });
            }
        )+
    };
}
pub(crate) use all_conformance_tests;

/// Counts the rows of a table of the store under test.
pub(crate) type RowsIn<'a> = &'a dyn Fn(&str) -> i64;

pub(crate) fn plain(url: &str) -> NewLink {
    NewLink {
        url: url.into(),
        ..NewLink::default()
    }
}

pub(crate) fn custom(url: &str, slug: &str) -> NewLink {
    NewLink {
        url: url.into(),
        slug: Some(slug.into()),
        ..NewLink::default()
    }
}

pub(crate) fn clicks(link_id: i64, day: i32, referrer: &str, agent: &str, n: u64) -> LinkClicks {
    LinkClicks {
        link_id,
        total: n,
        days: vec![(day, n)],
        referrers: vec![(referrer.into(), n)],
        agents: vec![(agent.into(), n)],
    }
}
