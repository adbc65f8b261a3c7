//! `shortener export` and `shortener import`, run as commands on the data
//! directory of a real server: a round trip gives the same links.

mod util;

use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;
use util::{run_cli, unix_now, Options};

/// Every link as the API shows it, oldest first, without `short_url` (its
/// host is the server's) and `protected` (passwords are not exported).
fn all_links(server: &util::Shortener) -> Vec<Value> {
    let page = util::json(&server.api("GET", "/api/links?limit=100", None));
    assert_eq!(page["next_cursor"], Value::Null);
    let mut links: Vec<Value> = page["links"].as_array().unwrap().clone();
    for link in &mut links {
        let object = link.as_object_mut().unwrap();
        object.remove("short_url");
        object.remove("protected");
    }
    links.reverse();
    links
}

fn data_arg(dir: &Path) -> String {
    dir.to_str().unwrap().to_owned()
}

#[test]
fn export_then_import_into_a_fresh_store_gives_the_same_links() {
    let source = util::data_dir();
    let mut server = Options::new()
        .data(source.path())
        .arg("--flush-ms", "100")
        .start();
    let expires = util::rfc3339(unix_now() + 86_400);
    server.create(json!({"url": "https://example.com/plain"}));
    server.create_slug("custom", "https://example.com/a,b?c=\"d\"");
    server.create(
        json!({"url": "https://example.com/exp", "slug": "expiring", "expires_at": expires}),
    );
    server.create(json!({"url": "https://example.com/budget", "slug": "budget", "max_clicks": 5}));
    server.create_slug("off", "https://example.com/off");
    let res = server.api("PATCH", "/api/links/off", Some(&json!({"disabled": true})));
    assert_eq!(res.status, 200);
    server.create(
        json!({"url": "https://example.com/pw", "slug": "secret", "password": "pw-secret"}),
    );
    server.create(json!({"url": "https://example.com/caf\u{e9}"}));
    for _ in 0..3 {
        assert_eq!(server.get("/custom").status, 302);
    }
    assert_eq!(server.get("/budget").status, 302);
    server.stats_when_total("custom", 3, Duration::from_secs(5));
    server.stats_when_total("budget", 1, Duration::from_secs(5));
    let before = all_links(&server);
    assert_eq!(before.len(), 7);
    let (status, stderr) = server.terminate();
    assert!(status.success(), "{stderr}");
    drop(server);

    let work = tempfile::tempdir().unwrap();
    let csv = work.path().join("links.csv");
    let out = run_cli(&[
        "--data",
        &data_arg(source.path()),
        "export",
        csv.to_str().unwrap(),
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stderr), "exported 7 links\n");
    let exported = std::fs::read_to_string(&csv).unwrap();
    let mut lines = exported.lines();
    assert_eq!(
        lines.next(),
        Some("slug,url,created_at,expires_at,disabled,max_clicks,clicks")
    );
    assert_eq!(lines.count(), 7);
    // Without a file it goes to stdout, the same bytes.
    let out = run_cli(&["--data", &data_arg(source.path()), "export"]);
    assert_eq!(String::from_utf8(out.stdout).unwrap(), exported);

    let target = util::data_dir();
    let out = run_cli(&[
        "--data",
        &data_arg(target.path()),
        "import",
        csv.to_str().unwrap(),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "imported 7 links, skipped 0\n"
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    // Exported again, byte for byte the same file.
    let again = work.path().join("again.csv");
    run_cli(&[
        "--data",
        &data_arg(target.path()),
        "export",
        again.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read_to_string(&again).unwrap(), exported);

    let server = Options::new().data(target.path()).start();
    let after = all_links(&server);
    assert_eq!(after, before);
    assert_eq!(
        server.get("/custom").header("location"),
        Some("https://example.com/a,b?c=\"d\"")
    );
    assert_eq!(server.get("/expiring").status, 302);
    assert_eq!(server.get("/off").status, 410);
    // The budget came with its clicks: 4 left.
    for _ in 0..4 {
        assert_eq!(server.get("/budget").status, 302);
    }
    assert_eq!(server.get("/budget").status, 410);
    // The password did not travel: the link is open now.
    assert_eq!(server.link("secret")["protected"], false);
    assert_eq!(server.get("/secret").status, 302);
    assert_eq!(server.stats("custom")["total"], 3);
}

#[test]
fn import_reads_stdin_and_reports_the_rows_it_skips() {
    let data = util::data_dir();
    let mut server = Options::new().data(data.path()).start();
    server.create_slug("taken", "https://example.com/taken");
    server.terminate();
    drop(server);

    let csv = "Short Code,Long URL,Visits\n\
               from-shlink,https://example.com/s,12\n\
               taken,https://example.com/other,0\n\
               bad-url,ftp://example.com/,0\n\
               ,https://example.com/generated,1\n\
               api,https://example.com/reserved,0\n";
    let mut child = util::cli(&["--data", &data_arg(data.path()), "import", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), csv.as_bytes()).unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "imported 2 links, skipped 3\n"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let skipped: Vec<&str> = stderr.lines().collect();
    assert_eq!(skipped.len(), 3, "{stderr}");
    assert!(skipped[0].starts_with("line 3: skipped: "), "{stderr}");
    assert!(skipped[0].contains("taken"), "{stderr}");
    assert!(skipped[1].starts_with("line 4: skipped: "), "{stderr}");
    assert!(skipped[2].starts_with("line 6: skipped: "), "{stderr}");

    let server = Options::new().data(data.path()).start();
    assert_eq!(
        server.get("/from-shlink").header("location"),
        Some("https://example.com/s")
    );
    assert_eq!(server.link("from-shlink")["clicks"], 12);
    assert_eq!(server.link("taken")["url"], "https://example.com/taken");
    let page = util::json(&server.api("GET", "/api/links", None));
    let links = page["links"].as_array().unwrap();
    assert_eq!(links.len(), 3);
    let generated = links
        .iter()
        .find(|l| l["url"] == "https://example.com/generated")
        .expect("the row without a slug");
    assert_eq!(generated["slug"].as_str().unwrap().len(), 7);
    assert_eq!(generated["clicks"], 1);
}

#[test]
fn import_without_a_url_column_fails_and_imports_nothing() {
    let data = util::data_dir();
    let csv = data.path().join("bad.csv");
    std::fs::write(&csv, "slug,name\nabc,def\n").unwrap();
    let out = util::cli(&[
        "--data",
        &data_arg(data.path()),
        "import",
        csv.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no url column"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run_cli(&["--data", &data_arg(data.path()), "export"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "slug,url,created_at,expires_at,disabled,max_clicks,clicks\n"
    );
}
