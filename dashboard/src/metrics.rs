//! `/metrics` in the Prometheus text format: requests and their latency per route, the data
//! loads and register checks run, and the store's commits, size and head. Answered on a
//! loopback address, or to the administrator's session; to anyone else it does not exist.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

/// One route's requests.
#[derive(Default)]
struct Route {
    /// By status class (`2xx`, `3xx`, `4xx`, `5xx`).
    by_class: BTreeMap<&'static str, u64>,
    /// Requests at or under each bound of [`BUCKETS`].
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// What the server counts.
#[derive(Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<String, Route>>,
    /// Whole loads of the data (each judging every deadline).
    pub loads: AtomicU64,
    /// Loads of the registers alone after a register entry (each judging the BRE and DSR rules).
    pub register_checks: AtomicU64,
}

impl Metrics {
    /// Counts one answer of `route` (the route's pattern, `/review/{key}`) with `status`,
    /// taking `secs`.
    pub fn observe(&self, route: &str, status: u16, secs: f64) {
        let class = match status {
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        let Ok(mut routes) = self.routes.lock() else { return };
        let r = match routes.get_mut(route) {
            Some(r) => r,
            None => routes.entry(route.to_owned()).or_default(),
        };
        *r.by_class.entry(class).or_default() += 1;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                r.buckets[i] += 1;
            }
        }
        r.sum += secs;
        r.count += 1;
    }

    /// The metrics in the Prometheus text format (0.0.4), with the store's.
    pub fn render(&self, store: &custos_engine::store::Store) -> String {
        let mut out = String::new();
        let label = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        out.push_str("# HELP custos_http_requests_total Requests answered, by route and status class.\n");
        out.push_str("# TYPE custos_http_requests_total counter\n");
        let routes = self.routes.lock().map(|r| {
            r.iter()
                .map(|(k, v)| (k.clone(), v.by_class.clone(), v.buckets, v.sum, v.count))
                .collect::<Vec<_>>()
        });
        let routes = routes.unwrap_or_default();
        for (route, by_class, _, _, _) in &routes {
            for (class, n) in by_class {
                let _ = writeln!(
                    out,
                    "custos_http_requests_total{{route=\"{}\",status=\"{class}\"}} {n}",
                    label(route)
                );
            }
        }
        out.push_str("# HELP custos_http_request_duration_seconds Time to answer, by route.\n");
        out.push_str("# TYPE custos_http_request_duration_seconds histogram\n");
        for (route, _, buckets, sum, count) in &routes {
            let route = label(route);
            for (bound, n) in BUCKETS.iter().zip(buckets) {
                let _ = writeln!(
                    out,
                    "custos_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "custos_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(out, "custos_http_request_duration_seconds_sum{{route=\"{route}\"}} {sum}");
            let _ = writeln!(out, "custos_http_request_duration_seconds_count{{route=\"{route}\"}} {count}");
        }
        out.push_str("# HELP custos_data_loads_total Whole loads of the data, each judging every deadline as of its instant.\n");
        out.push_str("# TYPE custos_data_loads_total counter\n");
        let _ = writeln!(out, "custos_data_loads_total {}", self.loads.load(Ordering::Relaxed));
        out.push_str("# HELP custos_register_checks_total Loads of the registers alone after a register entry, each judging the BRE and DSR rules.\n");
        out.push_str("# TYPE custos_register_checks_total counter\n");
        let _ =
            writeln!(out, "custos_register_checks_total {}", self.register_checks.load(Ordering::Relaxed));
        let mut kinds: BTreeMap<&str, u64> = BTreeMap::new();
        let mut bytes = 0u64;
        for e in store.entries() {
            *kinds.entry(e.body.kind.as_str()).or_default() += 1;
            bytes += e.body.files.iter().map(|f| f.bytes).sum::<u64>();
        }
        out.push_str("# HELP custos_store_commits Commits of the store's manifest, by kind (import, audit, disposition, trail, register, …).\n");
        out.push_str("# TYPE custos_store_commits gauge\n");
        for (kind, n) in kinds {
            let _ = writeln!(out, "custos_store_commits{{kind=\"{}\"}} {n}", label(kind));
        }
        out.push_str("# HELP custos_store_bytes Bytes of the files the store's manifest lists.\n");
        out.push_str("# TYPE custos_store_bytes gauge\n");
        let _ = writeln!(out, "custos_store_bytes {bytes}");
        out.push_str("# HELP custos_store_head_info The store's head: the hash of its latest entry.\n");
        out.push_str("# TYPE custos_store_head_info gauge\n");
        let _ = writeln!(
            out,
            "custos_store_head_info{{head=\"{}\",entries=\"{}\"}} 1",
            label(store.head()),
            store.entries().len()
        );
        out
    }
}
