//! The dashboard's JSON API on a real server: shapes, limits, filters, paging, the empty store
//! and the event stream.

use super::server::{Server, bundles, pan, txn};
use serde_json::Value;
use std::collections::HashSet;
use std::io::{BufRead, BufReader};

fn get_json(server: &Server, path: &str) -> (u16, Value) {
    let (status, body) = server.get(path);
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

#[test]
fn an_empty_store_gives_zeros_and_empty_pages() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &bundles().a, &[], &[]);
    let (status, stats) = get_json(&server, "/api/stats");
    assert_eq!(status, 200);
    assert_eq!((stats["processed"].as_i64(), stats["flagged"].as_i64()), (Some(0), Some(0)));
    assert!(stats["p99_latency_us"].is_null() && stats["last_received_at"].is_null(), "{stats}");
    assert_eq!(stats["per_minute"].as_array().unwrap().len(), 60);
    for path in ["/api/transactions", "/api/flagged"] {
        let (status, page) = get_json(&server, path);
        assert_eq!((status, page["transactions"].as_array().unwrap().len()), (200, 0), "{path}");
        assert!(page["next"].is_null());
    }
    assert_eq!(get_json(&server, "/api/countries").1, Value::Array(vec![]));
    let (status, page) = server.get("/");
    assert_eq!(status, 200);
    assert!(page.contains("No transactions yet"));
}

#[test]
fn stats_pages_filters_and_countries_agree_with_what_was_scored() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &bundles().b, &[], &[]);
    let countries = ["FR", "BR", "US"];
    let mut actions = Vec::new();
    for i in 0..30u64 {
        let amount = if i % 3 == 0 { 3000.0 } else { 20.0 };
        let t = txn(&format!("d-{i:02}"), &pan(400 + i % 7), amount, countries[i as usize % 3], "2025-01-09T02:00:00Z");
        let (status, body) = server.predict(&t);
        assert_eq!(status, 200, "{body}");
        actions.push(body["action"].as_str().unwrap().to_owned());
    }
    let flagged = actions.iter().filter(|a| *a != "allow").count() as i64;
    let blocked = actions.iter().filter(|a| *a == "block").count() as i64;

    let (_, stats) = get_json(&server, "/api/stats");
    assert_eq!(stats["processed"], 30);
    assert_eq!((stats["flagged"].as_i64(), stats["blocked"].as_i64()), (Some(flagged), Some(blocked)), "{stats}");
    assert!(stats["p99_latency_us"].as_u64().unwrap() > 0);
    // The answers' p99 is the server's own measure, commit included: never below scoring alone.
    let answer = stats["p99_answer_us"].as_u64().unwrap_or_else(|| panic!("{stats}"));
    assert!(answer >= stats["p99_latency_us"].as_u64().unwrap(), "{stats}");
    let per_minute: i64 =
        stats["per_minute"].as_array().unwrap().iter().map(|m| m["transactions"].as_i64().unwrap()).sum();
    assert_eq!(per_minute, 30);

    // Pages of 7, newest first, cover every transaction exactly once.
    let mut seen = HashSet::new();
    let mut last: Option<i64> = None;
    let mut path = "/api/transactions?limit=7".to_owned();
    loop {
        let (status, page) = get_json(&server, &path);
        assert_eq!(status, 200, "{page}");
        for t in page["transactions"].as_array().unwrap() {
            assert!(seen.insert(t["txn_id"].as_str().unwrap().to_owned()), "repeated {t}");
            let at = t["received_at"].as_i64().unwrap();
            assert!(last.is_none_or(|l| at <= l), "not newest first");
            last = Some(at);
            assert!(t.get("card_token").is_none() && t["card_masked"].as_str().unwrap().contains("******"));
        }
        match page["next"].as_str() {
            Some(next) => path = format!("/api/transactions?limit=7&before={next}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 30);

    for action in ["allow", "review", "block"] {
        let (_, page) = get_json(&server, &format!("/api/transactions?action={action}&limit=500"));
        let rows = page["transactions"].as_array().unwrap();
        assert_eq!(rows.len(), actions.iter().filter(|a| *a == action).count(), "{action}");
        assert!(rows.iter().all(|t| t["action"] == action));
    }
    let (_, page) = get_json(&server, "/api/flagged?limit=500");
    let rows = page["transactions"].as_array().unwrap();
    assert_eq!(rows.len() as i64, flagged);
    assert!(rows.iter().all(|t| t["action"] != "allow" && t["reasons"].as_array().is_some_and(|r| !r.is_empty())));

    let (_, by_country) = get_json(&server, "/api/countries?limit=2");
    let list = by_country.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert!(list[0]["flagged"].as_i64() >= list[1]["flagged"].as_i64());
    let (_, all) = get_json(&server, "/api/countries");
    let total: i64 = all.as_array().unwrap().iter().map(|c| c["transactions"].as_i64().unwrap()).sum();
    assert_eq!(total, 30);
}

#[test]
fn bad_queries_are_400_with_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &bundles().a, &[], &[]);
    for (path, field) in [
        ("/api/transactions?limit=0", Some("limit")),
        ("/api/transactions?limit=501", Some("limit")),
        ("/api/transactions?action=maybe", Some("action")),
        ("/api/transactions?before=yesterday", Some("before")),
        ("/api/flagged?limit=lots", None),
        ("/api/countries?limit=0", Some("limit")),
    ] {
        let (status, body) = get_json(&server, path);
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_query")), "{path}: {body}");
        assert_eq!(body["error"]["field"].as_str(), field, "{path}");
    }
}

#[test]
fn the_event_stream_sends_stats_at_once_and_when_results_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &bundles().a, &[], &[]);
    let response = server.client().get(format!("{}/api/events", server.url)).send().unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut lines = BufReader::new(response).lines();
    let mut next_stats = || loop {
        let line = lines.next().unwrap().unwrap();
        if let Some(data) = line.strip_prefix("data: ") {
            return serde_json::from_str::<Value>(data).unwrap();
        }
    };
    assert_eq!(next_stats()["processed"], 0);
    server.predict(&txn("e-1", &pan(9), 10.0, "FR", "2025-01-09T10:00:00Z"));
    assert_eq!(next_stats()["processed"], 1);
}
