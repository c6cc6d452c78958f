//! `postdesk poll` and `mailboxes` against a real Dovecot on loopback (issue 16), each
//! test on SQLite and on PostgreSQL.
//!
//! `scripts/test` starts the server and exports `POSTDESK_TEST_IMAP_PORT` (plain, LOGIN
//! allowed), `POSTDESK_TEST_IMAPS_PORT` (implicit TLS), `POSTDESK_TEST_IMAP_CA` (its
//! self-signed certificate) and `POSTDESK_TEST_IMAP_PASSWORD`. The server takes any user
//! name with that password (also as an XOAUTH2 token), so every test logs in as a user of
//! its own and starts with empty folders. Without the server the tests skip, unless
//! `POSTDESK_REQUIRE_SERVERS=1`.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// The test server, when there is one.
struct Server {
    port: u16,
    tls_port: u16,
    ca: String,
    password: String,
}

fn server() -> Option<Server> {
    let Ok(port) = std::env::var("POSTDESK_TEST_IMAP_PORT") else {
        assert!(
            std::env::var("POSTDESK_REQUIRE_SERVERS").as_deref() != Ok("1"),
            "POSTDESK_REQUIRE_SERVERS=1 but POSTDESK_TEST_IMAP_PORT is not set"
        );
        eprintln!("skipped: no IMAP server (set POSTDESK_TEST_IMAP_PORT, see scripts/test)");
        return None;
    };
    Some(Server {
        port: port.parse().unwrap(),
        tls_port: std::env::var("POSTDESK_TEST_IMAPS_PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0),
        ca: std::env::var("POSTDESK_TEST_IMAP_CA").unwrap_or_default(),
        password: std::env::var("POSTDESK_TEST_IMAP_PASSWORD").unwrap_or_else(|_| "secret".into()),
    })
}

/// A user name no other test (or earlier run) has used: its folders start empty.
fn fresh_user(test: &str) -> String {
    format!("{}@example.test", unique(test))
}

/// The backends to run a test on: SQLite, and PostgreSQL when a server is named.
fn backends() -> Vec<Env> {
    let mut envs = vec![Env::sqlite()];
    envs.extend(Env::postgres());
    envs
}

/// A small IMAP client for setting the scene: plain TCP, one command at a time, except
/// APPEND, which is pipelined (LITERAL+) so thousands of messages load in seconds.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    tag: u32,
}

impl Client {
    fn login(server: &Server, user: &str) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let mut c = Client {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
            tag: 0,
        };
        let mut greeting = String::new();
        c.reader.read_line(&mut greeting).unwrap();
        assert!(greeting.starts_with("* OK"), "{greeting}");
        c.run(&format!("LOGIN \"{user}\" \"{}\"", server.password));
        c
    }

    /// Send one command; the untagged lines of its answer. Panics unless it is OK.
    fn run(&mut self, command: &str) -> Vec<String> {
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        write!(self.writer, "{tag} {command}\r\n").unwrap();
        self.read_until(&tag)
    }

    fn read_until(&mut self, tag: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let mut l = String::new();
            assert!(
                self.reader.read_line(&mut l).unwrap() > 0,
                "connection closed"
            );
            if let Some(rest) = l.strip_prefix(&format!("{tag} ")) {
                assert!(rest.starts_with("OK"), "{tag}: {l}");
                return lines;
            }
            lines.push(l.trim_end().to_string());
        }
    }

    /// APPEND every message to `folder`, pipelined; `seen` ones with `\Seen` set.
    fn append(&mut self, folder: &str, messages: &[(String, bool)]) {
        let first = self.tag + 1;
        let mut out = Vec::new();
        for (raw, seen) in messages {
            self.tag += 1;
            let flags = if *seen { " (\\Seen)" } else { "" };
            write!(
                out,
                "t{} APPEND \"{folder}\"{flags} {{{}+}}\r\n",
                self.tag,
                raw.len()
            )
            .unwrap();
            out.extend_from_slice(raw.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        self.writer.write_all(&out).unwrap();
        for t in first..=self.tag {
            self.read_until(&format!("t{t}"));
        }
    }

    /// SELECT `folder`: its UIDVALIDITY.
    fn select(&mut self, folder: &str) -> u32 {
        let lines = self.run(&format!("SELECT \"{folder}\""));
        lines
            .iter()
            .find_map(|l| {
                l.split_once("[UIDVALIDITY ")
                    .and_then(|(_, r)| r.split(']').next())
                    .and_then(|v| v.parse().ok())
            })
            .expect("UIDVALIDITY")
    }

    /// `UID SEARCH criteria` in the selected folder.
    fn search(&mut self, criteria: &str) -> Vec<u32> {
        let lines = self.run(&format!("UID SEARCH {criteria}"));
        lines
            .iter()
            .filter_map(|l| l.strip_prefix("* SEARCH"))
            .flat_map(|r| r.split_whitespace().map(|n| n.parse().unwrap()))
            .collect()
    }

    /// How many messages `folder` holds.
    fn count(&mut self, folder: &str) -> usize {
        self.select(folder);
        self.search("ALL").len()
    }
}

/// A message from a person with its own Message-ID.
fn message(n: usize, tag: &str) -> String {
    format!(
        "From: Customer {n} <c{n}@example.org>\r\nTo: support@example.com\r\nSubject: Question {n} ({tag})\r\nMessage-ID: <{tag}-{n}@example.org>\r\nDate: Thu, 5 Nov 2026 10:00:00 +0000\r\n\r\nHello, this is question {n}.\r\n"
    )
}

fn messages(range: std::ops::Range<usize>, tag: &str) -> Vec<(String, bool)> {
    range.map(|n| (message(n, tag), false)).collect()
}

/// A config file with one `[[mailbox]]` named `help` for `user` (plain, loopback), with
/// `extra` lines added to the entry and `top` before it.
fn config(env: &Env, server: &Server, user: &str, extra: &str, top: &str) -> String {
    env.write("password", format!("{}\n", server.password).as_bytes());
    let text = format!(
        "{top}\n[[mailbox]]\nname = \"help\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\naccount = \"{user}\"\n{extra}\n",
        server.port
    );
    let extra_has_credentials = extra.contains("password_file") || extra.contains("oauth2_");
    let text = if extra_has_credentials {
        text
    } else {
        format!("{text}password_file = \"password\"\n")
    };
    env.write("postdesk.toml", text.as_bytes());
    env.path("postdesk.toml").display().to_string()
}

fn poll(env: &Env, config: &str) -> Output {
    env.run(&["--config", config, "poll"], b"")
}

fn poll_ok(env: &Env, config: &str) -> String {
    let out = poll(env, config);
    assert_eq!(
        code(&out),
        0,
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn spawn_poll(env: &Env, config: &str) -> Child {
    env.cmd(&["--config", config, "poll"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Stored messages, distinct Message-IDs among them, held records, and UID records.
fn counts(env: &Env) -> (i64, i64, i64, i64) {
    (
        env.query_i64("SELECT count(*) FROM messages"),
        env.query_i64("SELECT count(DISTINCT message_id) FROM messages"),
        env.query_i64("SELECT count(*) FROM held_messages"),
        env.query_i64("SELECT count(*) FROM imap_uids"),
    )
}

fn health(env: &Env, config: &str) -> Value {
    env.json(&["--config", config, "mailboxes", "--json"])[0].clone()
}

// --- exactly once --------------------------------------------------------------------

/// Every message becomes one stored message, mail a person already read included; the
/// second pass takes nothing; `\Seen` is set on every message taken.
#[test]
fn every_message_once_read_mail_included_then_seen() {
    let Some(server) = server() else { return };
    for env in backends() {
        let user = fresh_user("once");
        let mut imap = Client::login(&server, &user);
        let mut batch = messages(0..7, "once");
        batch[1].1 = true; // already read by a person
        batch[4].1 = true;
        imap.append("INBOX", &batch);
        let cfg = config(&env, &server, &user, "after = \"seen\"\nbatch_size = 3", "");

        let out = poll_ok(&env, &cfg);
        assert!(
            out.contains("help INBOX uid 1: created PD-1 (human)"),
            "{out}"
        );
        assert!(out.contains("help: took 7 messages (created 7)"), "{out}");
        assert_eq!(counts(&env), (7, 7, 0, 7));
        imap.select("INBOX");
        assert_eq!(
            imap.search("UNSEEN"),
            Vec::<u32>::new(),
            "all marked \\Seen"
        );

        // More mail, and the old mail marked unread again by a person: only the new mail
        // is taken (the record, not the flag, says what was taken).
        imap.run("UID STORE 1:7 -FLAGS.SILENT (\\Seen)");
        imap.append("INBOX", &messages(7..9, "once"));
        let out = poll_ok(&env, &cfg);
        assert!(out.contains("help: took 2 messages (created 2)"), "{out}");
        assert_eq!(counts(&env), (9, 9, 0, 9));
        let out = poll_ok(&env, &cfg);
        assert!(out.contains("help: took 0 messages"), "{out}");

        let h = health(&env, &cfg);
        assert_eq!(h["health"]["messages_total"], 9, "{h}");
        assert_eq!(h["health"]["consecutive_failures"], 0, "{h}");
        assert!(h["health"]["last_success_at"].is_string(), "{h}");
        assert!(h["warning"].is_null(), "{h}");
    }
}

/// `\Seen` is set only after the message is stored: a poll whose writes of messages
/// fail (a trigger refuses them) stores nothing and marks nothing; once the store takes
/// them again, the next poll does both.
#[test]
fn seen_only_after_storing() {
    after_action_only_after_storing("seen");
}

/// The same for MOVE: nothing leaves INBOX until it is stored.
#[test]
fn move_only_after_storing() {
    after_action_only_after_storing("move:Done");
}

fn after_action_only_after_storing(after: &str) {
    let Some(server) = server() else { return };
    for env in backends() {
        let user = fresh_user("after-commit");
        let mut imap = Client::login(&server, &user);
        imap.append("INBOX", &messages(0..3, "aftercommit"));
        let cfg = config(&env, &server, &user, &format!("after = \"{after}\""), "");
        // Create the database, then make it refuse messages.
        assert_eq!(code(&env.run(&["ingest"], message(99, "x").as_bytes())), 0);
        if env.is_postgres() {
            env.execute(
                "CREATE FUNCTION refuse() RETURNS trigger AS $$
                 BEGIN RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql",
            );
            env.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON messages
                 FOR EACH ROW EXECUTE FUNCTION refuse()",
            );
        } else {
            env.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON messages
                 BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
            );
        }
        let out = poll(&env, &cfg);
        assert_eq!(code(&out), 1);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("mailbox `help`: storing failed")
                && stderr.contains("refused by the test"),
            "{stderr}"
        );
        imap.select("INBOX");
        assert_eq!(
            imap.search("UNSEEN"),
            vec![1, 2, 3],
            "nothing marked or moved before storing"
        );
        assert_eq!(counts(&env), (1, 1, 0, 0));
        env.execute(if env.is_postgres() {
            "DROP TRIGGER refuse ON messages"
        } else {
            "DROP TRIGGER refuse"
        });
        poll_ok(&env, &cfg);
        assert_eq!(counts(&env), (4, 4, 0, 3));
        if after == "seen" {
            imap.select("INBOX");
            assert_eq!(imap.search("UNSEEN"), Vec::<u32>::new());
        } else {
            assert_eq!(imap.count("INBOX"), 0);
            assert_eq!(imap.count("Done"), 3);
        }
    }
}

/// `after = "move:Done"` moves every stored message out of INBOX; a second pass finds
/// nothing to take or move.
#[test]
fn move_after_storing() {
    let Some(server) = server() else { return };
    for env in backends() {
        let user = fresh_user("move");
        let mut imap = Client::login(&server, &user);
        imap.append("INBOX", &messages(0..5, "move"));
        let cfg = config(
            &env,
            &server,
            &user,
            "after = \"move:Done\"\nbatch_size = 2",
            "",
        );
        let out = poll_ok(&env, &cfg);
        assert!(out.contains("help: took 5 messages"), "{out}");
        assert_eq!(counts(&env), (5, 5, 0, 5));
        assert_eq!(imap.count("INBOX"), 0);
        assert_eq!(imap.count("Done"), 5);
        assert_eq!(
            env.query_i64("SELECT count(*) FROM imap_uids WHERE after_done"),
            5
        );
        let out = poll_ok(&env, &cfg);
        assert!(out.contains("help: took 0 messages"), "{out}");
    }
}

/// On a server without MOVE (the test server hides it from clients of 127.0.0.2), the
/// after-action copies, flags `\Deleted` and expunges those UIDs (UID EXPUNGE).
#[test]
fn move_without_the_move_extension() {
    let Some(server) = server() else { return };
    let Ok(host) = std::env::var("POSTDESK_TEST_IMAP_NO_MOVE_HOST") else {
        eprintln!("skipped: POSTDESK_TEST_IMAP_NO_MOVE_HOST is not set (see scripts/test)");
        return;
    };
    for env in backends() {
        let user = fresh_user("copy");
        let mut imap = Client::login(&server, &user);
        imap.append("INBOX", &messages(0..4, "copy"));
        let cfg = config(
            &env,
            &server,
            &user,
            "after = \"move:Done\"\nbatch_size = 3",
            "",
        );
        let text = std::fs::read_to_string(&cfg)
            .unwrap()
            .replace("host = \"127.0.0.1\"", &format!("host = \"{host}\""));
        std::fs::write(&cfg, text).unwrap();
        let out = poll_ok(&env, &cfg);
        assert!(out.contains("help: took 4 messages"), "{out}");
        assert_eq!(imap.count("INBOX"), 0);
        assert_eq!(imap.count("Done"), 4);
        imap.append("INBOX", &messages(4..6, "copy"));
        let out = poll_ok(&env, &cfg);
        assert!(out.contains("help: took 2 messages"), "{out}");
        assert_eq!(imap.count("INBOX"), 0);
        assert_eq!(imap.count("Done"), 6);
        assert_eq!(counts(&env), (6, 6, 0, 6));
    }
}

/// A message the pipeline cannot take is quarantined, and the messages after it are
/// stored all the same.
#[test]
fn broken_message_is_quarantined_and_the_loop_goes_on() {
    let Some(server) = server() else { return };
    for env in backends() {
        let user = fresh_user("broken");
        let mut imap = Client::login(&server, &user);
        let mut batch = messages(0..4, "broken");
        // More header fields than the configured limit.
        let many: String = (0..20).map(|i| format!("X-Field-{i}: {i}\r\n")).collect();
        batch.insert(2, (format!("{many}{}", message(50, "broken")), false));
        imap.append("INBOX", &batch);
        let cfg = config(&env, &server, &user, "", "[limits]\nmax_header_fields = 15");
        let out = poll_ok(&env, &cfg);
        assert!(
            out.contains("help INBOX uid 3: quarantined held #1 (invalid)"),
            "{out}"
        );
        assert!(out.contains("help: took 5 messages"), "{out}");
        assert_eq!(counts(&env), (4, 4, 1, 5));
    }
}

/// A UIDVALIDITY reset (the folder deleted and created again with the same messages and
/// new ones): nothing is stored twice and the new messages are taken.
#[test]
fn uidvalidity_reset_duplicates_nothing_and_takes_new_mail() {
    let Some(server) = server() else { return };
    for env in backends() {
        let user = fresh_user("uidvalidity");
        let mut imap = Client::login(&server, &user);
        imap.run("CREATE Support");
        imap.append("Support", &messages(0..3, "reset"));
        let before = imap.select("Support");
        let cfg = config(&env, &server, &user, "folders = [\"Support\"]", "");
        poll_ok(&env, &cfg);
        assert_eq!(counts(&env), (3, 3, 0, 3));

        // Recreate until the server hands out a new UIDVALIDITY (it is time-based).
        let mut after = before;
        for _ in 0..30 {
            imap.run("UNSELECT");
            imap.run("DELETE Support");
            imap.run("CREATE Support");
            after = imap.select("Support");
            if after != before {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        assert_ne!(after, before, "the server kept the UIDVALIDITY");
        imap.append("Support", &messages(0..5, "reset"));
        let out = poll_ok(&env, &cfg);
        assert!(
            out.contains("help: took 5 messages (created 2, duplicate 3)"),
            "{out}"
        );
        assert_eq!(counts(&env), (5, 5, 0, 8));
        let out = poll_ok(&env, &cfg);
        assert!(out.contains("help: took 0 messages"), "{out}");
    }
}

/// Two polls started together store nothing twice (one holds the lease, the other skips
/// or finds the UIDs recorded).
#[test]
fn overlapping_polls_store_nothing_twice() {
    let Some(server) = server() else { return };
    for env in backends() {
        let user = fresh_user("overlap");
        let cfg = config(&env, &server, &user, "batch_size = 20", "");
        // The database exists before the race (creating it is not what is tested).
        poll_ok(&env, &cfg);
        let mut imap = Client::login(&server, &user);
        imap.append("INBOX", &messages(0..300, "overlap"));
        let children: Vec<Child> = (0..2).map(|_| spawn_poll(&env, &cfg)).collect();
        for c in children {
            let out = c.wait_with_output().unwrap();
            assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
        }
        poll_ok(&env, &cfg);
        assert_eq!(counts(&env), (300, 300, 0, 300));
    }
}

/// Four poll workers on one PostgreSQL database and one mailbox take 2,000 messages
/// exactly once between them.
#[test]
fn four_workers_on_postgres_take_2000_messages_once() {
    let Some(server) = server() else { return };
    let Some(env) = Env::postgres() else { return };
    let user = fresh_user("four");
    let mut imap = Client::login(&server, &user);
    imap.append("INBOX", &messages(0..2000, "four"));
    let cfg = config(&env, &server, &user, "batch_size = 50\nlease_secs = 2", "");
    env.run(&["--config", &cfg, "mailboxes"], b"");
    let started = Instant::now();
    while env.query_i64("SELECT count(*) FROM imap_uids") < 2000 {
        assert!(started.elapsed() < Duration::from_secs(120), "too slow");
        let workers: Vec<Child> = (0..4).map(|_| spawn_poll(&env, &cfg)).collect();
        for w in workers {
            let out = w.wait_with_output().unwrap();
            assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
        }
    }
    assert_eq!(counts(&env), (2000, 2000, 0, 2000));
}

/// Exactly once does not rest on the lease: four polls at once while the test keeps
/// deleting every lease (so they overlap on one folder all the time) still store each
/// message once; the transaction's own check of the UID records does it. A poll that
/// finds its lease taken by another stops with an error saying so.
#[test]
fn overlapping_workers_without_the_lease_still_store_once() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let Some(server) = server() else { return };
    for env in backends() {
        let user = fresh_user("nolease");
        let cfg = config(&env, &server, &user, "batch_size = 10", "");
        poll_ok(&env, &cfg);
        let mut imap = Client::login(&server, &user);
        imap.append("INBOX", &messages(0..500, "nolease"));
        let env = Arc::new(env);
        let done = Arc::new(AtomicBool::new(false));
        let thief = {
            let (env, done) = (env.clone(), done.clone());
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    env.execute("DELETE FROM imap_leases");
                    std::thread::sleep(Duration::from_millis(3));
                }
            })
        };
        let started = Instant::now();
        let (mut lost, mut overlapped) = (0, 0);
        while env.query_i64("SELECT count(*) FROM imap_uids") < 500 {
            assert!(started.elapsed() < Duration::from_secs(120), "too slow");
            let workers: Vec<Child> = (0..4)
                .map(|_| {
                    env.cmd(&["--config", &cfg, "poll"])
                        .env("POSTDESK_LOG", "info")
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::piped())
                        .spawn()
                        .unwrap()
                })
                .collect();
            for w in workers {
                let out = w.wait_with_output().unwrap();
                let stderr = String::from_utf8_lossy(&out.stderr);
                if code(&out) != 0 {
                    assert!(
                        stderr.contains("the lease was lost to another poll"),
                        "{stderr}"
                    );
                    lost += 1;
                }
                overlapped += stderr.matches("taken by an overlapping poll").count();
            }
        }
        eprintln!("{lost} polls lost their lease; {overlapped} batches met recorded UIDs");
        done.store(true, Ordering::Relaxed);
        thief.join().unwrap();
        assert_eq!(counts(&env), (500, 500, 0, 500));
    }
}

// --- watch ------------------------------------------------------------------------------

/// `postdesk watch` with the configuration `cfg`, its log piped.
fn spawn_watch(env: &Env, cfg: &str) -> Child {
    env.cmd(&["--config", cfg, "watch"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// `watch` with `extra` settings: a message appended while it waits is stored within
/// 5 seconds, and SIGTERM makes it exit 0 promptly.
fn watch_stores_within_5_s(test: &str, extra: &str) {
    let Some(server) = server() else { return };
    for env in backends() {
        let user = fresh_user(test);
        let cfg = config(&env, &server, &user, extra, "");
        poll_ok(&env, &cfg); // creates the database
        let mut watch = spawn_watch(&env, &cfg);
        // Its first pass is done when it holds the lease and has recorded a success.
        wait_until("watch did not start", Duration::from_secs(10), || {
            env.query_i64("SELECT count(*) FROM imap_leases") > 0
                && env.query_i64("SELECT consecutive_failures FROM imap_health") == 0
        });
        std::thread::sleep(Duration::from_millis(300));
        let mut imap = Client::login(&server, &user);
        for n in 0..3 {
            imap.append("INBOX", &messages(n..n + 1, test));
            wait_until(
                &format!("message {n} not stored within 5 s"),
                Duration::from_secs(5),
                || env.query_i64("SELECT count(*) FROM imap_uids") > n as i64,
            );
        }
        sigterm(&watch);
        let mut status = None;
        wait_until("no exit after SIGTERM", Duration::from_secs(10), || {
            status = watch.try_wait().unwrap();
            status.is_some()
        });
        let status = status.unwrap();
        let out = watch.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(status.code(), Some(0), "{stderr}");
        assert!(
            stderr.contains("help INBOX uid 3: created PD-3"),
            "{stderr}"
        );
        assert_eq!(counts(&env), (3, 3, 0, 3));
        assert_eq!(
            env.query_i64("SELECT count(*) FROM imap_leases"),
            0,
            "lease given up"
        );
    }
}

/// With IDLE (Dovecot has it).
#[test]
fn watch_with_idle_stores_new_mail_within_5_s_and_stops_on_sigterm() {
    watch_stores_within_5_s("watch-idle", "after = \"seen\"");
}

/// Without IDLE: polling every second.
#[test]
fn watch_without_idle_polls() {
    watch_stores_within_5_s("watch-poll", "idle = false\npoll_interval_secs = 1");
}

/// SIGTERM during a long backlog: `watch` finishes the batch in hand (stored, recorded,
/// its after-action done) and exits 0 without starting another.
#[test]
fn watch_stops_after_the_batch_in_hand() {
    let Some(server) = server() else { return };
    for env in backends() {
        let user = fresh_user("stop");
        let cfg = config(&env, &server, &user, "batch_size = 5\nafter = \"seen\"", "");
        poll_ok(&env, &cfg);
        let mut imap = Client::login(&server, &user);
        imap.append("INBOX", &messages(0..1000, "stop"));
        let mut watch = spawn_watch(&env, &cfg);
        wait_until("watch did not start", Duration::from_secs(30), || {
            env.query_i64("SELECT count(*) FROM imap_uids") >= 50
        });
        sigterm(&watch);
        let asked = Instant::now();
        let status = watch.wait().unwrap();
        assert!(asked.elapsed() < Duration::from_secs(5), "slow to stop");
        assert_eq!(status.code(), Some(0));
        let taken = env.query_i64("SELECT count(*) FROM imap_uids");
        assert!(
            taken < 1000,
            "stopped before the end of the backlog: {taken}"
        );
        assert_eq!(taken % 5, 0, "whole batches only: {taken}");
        assert_eq!(counts(&env), (taken, taken, 0, taken));
        assert_eq!(
            env.query_i64("SELECT count(*) FROM imap_uids WHERE NOT after_done"),
            0,
            "every after-action done"
        );
        imap.select("INBOX");
        assert_eq!(imap.search("SEEN").len() as i64, taken);
    }
}

/// One `watch` serves several mailboxes at once.
#[test]
fn watch_serves_several_mailboxes() {
    let Some(server) = server() else { return };
    for env in backends() {
        let users = [fresh_user("watch-a"), fresh_user("watch-b")];
        env.write("password", format!("{}\n", server.password).as_bytes());
        let text: String = users
            .iter()
            .enumerate()
            .map(|(i, user)| {
                format!(
                    "[[mailbox]]\nname = \"m{i}\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\naccount = \"{user}\"\npassword_file = \"password\"\n",
                    server.port
                )
            })
            .collect();
        env.write("watch.toml", text.as_bytes());
        let cfg = env.path("watch.toml").display().to_string();
        poll_ok(&env, &cfg);
        let mut watch = spawn_watch(&env, &cfg);
        wait_until("watch did not start", Duration::from_secs(10), || {
            env.query_i64("SELECT count(*) FROM imap_leases") >= 2
        });
        std::thread::sleep(Duration::from_millis(300));
        for (i, user) in users.iter().enumerate() {
            Client::login(&server, user).append("INBOX", &messages(i..i + 1, "watch-multi"));
        }
        wait_until("not stored within 5 s", Duration::from_secs(5), || {
            env.query_i64("SELECT count(*) FROM imap_uids") >= 2
        });
        sigterm(&watch);
        assert_eq!(watch.wait().unwrap().code(), Some(0));
        assert_eq!(counts(&env), (2, 2, 0, 2));
        assert_eq!(
            env.query_i64("SELECT count(DISTINCT mailbox) FROM imap_uids"),
            2
        );
    }
}

/// `watch` survives losing its connection: the folder it idles on is deleted under it
/// (Dovecot then drops the session), the error goes to the health record, and after a
/// reconnection with back-off mail in the recreated folder is stored.
#[test]
fn watch_reconnects_after_losing_the_connection() {
    let Some(server) = server() else { return };
    for env in backends() {
        let user = fresh_user("reconnect");
        let mut imap = Client::login(&server, &user);
        imap.run("CREATE Support");
        let cfg = config(&env, &server, &user, "folders = [\"Support\"]", "");
        poll_ok(&env, &cfg);
        let mut watch = spawn_watch(&env, &cfg);
        wait_until("watch did not start", Duration::from_secs(10), || {
            env.query_i64("SELECT count(*) FROM imap_leases") > 0
        });
        std::thread::sleep(Duration::from_millis(300));
        imap.run("DELETE Support");
        // Let it notice (its retries fail while the folder is missing).
        wait_until("no error recorded", Duration::from_secs(10), || {
            env.query_i64(
                "SELECT count(*) FROM imap_health WHERE last_error LIKE '%SELECT failed%'",
            ) > 0
        });
        // The lost connection and the failed retry are both in the health record.
        assert!(env.query_i64("SELECT consecutive_failures FROM imap_health") >= 2);
        imap.run("CREATE Support");
        imap.append("Support", &messages(0..1, "reconnect"));
        wait_until(
            "not stored after reconnecting",
            Duration::from_secs(20),
            || env.query_i64("SELECT count(*) FROM messages") >= 1,
        );
        sigterm(&watch);
        let status = watch.wait().unwrap();
        let mut stderr = String::new();
        std::io::Read::read_to_string(watch.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        assert_eq!(status.code(), Some(0), "{stderr}");
        assert!(stderr.contains("(trying again in 1 s)"), "{stderr}");
        assert!(
            stderr.contains("SELECT failed: no response: Mailbox doesn't exist: Support"),
            "{stderr}"
        );
        assert_eq!(counts(&env).0, 1);
    }
}

/// Several mailboxes in one config: one `poll` takes each (AUTHENTICATE PLAIN for one,
/// LOGIN for the other); a mailbox that fails (wrong password) does not stop the others,
/// and the exit status says something failed.
#[test]
fn several_mailboxes_one_failing() {
    let Some(server) = server() else { return };
    for env in backends() {
        let (a, b, c) = (
            fresh_user("multi-a"),
            fresh_user("multi-b"),
            fresh_user("multi-c"),
        );
        let mut imap = Client::login(&server, &a);
        imap.append("INBOX", &messages(0..2, "multi-a"));
        let mut imap = Client::login(&server, &c);
        imap.append("INBOX", &messages(0..3, "multi-c"));
        env.write("password", format!("{}\n", server.password).as_bytes());
        env.write("wrong", b"wrong\n");
        let entry = |name: &str, user: &str, extra: &str| {
            format!(
                "[[mailbox]]\nname = \"{name}\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\naccount = \"{user}\"\n{extra}\n",
                server.port
            )
        };
        let text = [
            entry("a", &a, "password_file = \"password\"\nauth = \"plain\""),
            entry("b", &b, "password_file = \"wrong\""),
            entry("c", &c, "password_file = \"password\""),
        ]
        .concat();
        env.write("multi.toml", text.as_bytes());
        let cfg = env.path("multi.toml").display().to_string();
        let out = poll(&env, &cfg);
        assert_eq!(code(&out), 1);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stdout.contains("a: took 2 messages"), "{stdout}");
        assert!(stdout.contains("b: failed after 0 messages"), "{stdout}");
        assert!(stdout.contains("c: took 3 messages"), "{stdout}");
        assert!(stderr.contains("mailbox `b`:"), "{stderr}");
        assert_eq!(counts(&env), (5, 5, 0, 5));
        let all = env.json(&["--config", &cfg, "mailboxes", "--json"]);
        let failures: Vec<i64> = all
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["health"]["consecutive_failures"].as_i64().unwrap())
            .collect();
        assert_eq!(failures, vec![0, 1, 0]);
    }
}

// --- leases -----------------------------------------------------------------------------

/// A live lease held elsewhere makes `poll` skip the mailbox; an expired one is taken.
#[test]
fn a_live_lease_elsewhere_skips_an_expired_one_is_taken() {
    let Some(server) = server() else { return };
    for env in backends() {
        let user = fresh_user("lease");
        let cfg = config(&env, &server, &user, "", "");
        poll_ok(&env, &cfg);
        let mut imap = Client::login(&server, &user);
        imap.append("INBOX", &messages(0..2, "lease"));
        let far = 4_000_000_000_000i64; // year 2096, in Unix ms
        env.execute(&format!(
            "INSERT INTO imap_leases (mailbox, holder, expires_ms) VALUES ('help', 'otherhost:1:ab', {far})"
        ));
        let out = poll_ok(&env, &cfg);
        assert!(
            out.contains("help: skipped (another poll is working on it)"),
            "{out}"
        );
        assert_eq!(counts(&env).0, 0);
        env.execute("UPDATE imap_leases SET expires_ms = 1");
        let out = poll_ok(&env, &cfg);
        assert!(out.contains("help: took 2 messages"), "{out}");
        assert_eq!(env.query_i64("SELECT count(*) FROM imap_leases"), 0);
    }
}

// --- errors and health ---------------------------------------------------------------

/// A wrong password: exit 1, an error naming the mailbox and the server's reason, the
/// health record shows it, and a mailbox not fetched successfully for longer than its
/// `warn_after_secs` gets a warning.
#[test]
fn wrong_password_is_named_and_shows_in_health() {
    let Some(server) = server() else { return };
    for env in backends() {
        let user = fresh_user("wrongpw");
        let cfg = config(&env, &server, &user, "warn_after_secs = 1", "");
        poll_ok(&env, &cfg);
        env.write("password", b"not-the-password\n");
        std::thread::sleep(Duration::from_millis(1100));
        let out = poll(&env, &cfg);
        assert_eq!(code(&out), 1);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "postdesk: mailbox `help`: 127.0.0.1:{} refused the login of `{user}`: [AUTHENTICATIONFAILED] Authentication failed.",
                server.port
            )),
            "{stderr}"
        );
        assert!(
            stderr.contains("warning: mailbox `help` has not been fetched successfully for"),
            "{stderr}"
        );
        let h = health(&env, &cfg);
        assert_eq!(h["health"]["consecutive_failures"], 1, "{h}");
        assert!(
            h["health"]["last_error"]
                .as_str()
                .unwrap()
                .contains("refused the login"),
            "{h}"
        );
        assert!(h["warning"].as_str().unwrap().contains("last error"), "{h}");
        let text = env.run(&["--config", &cfg, "mailboxes"], b"");
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(text.contains("WARNING: mailbox `help`"), "{text}");
    }
}

/// XOAUTH2 with the token in a file works; a rejected token from a command gives a clear
/// error naming the mailbox, and the health record shows it. A failing token command is
/// named too.
#[test]
fn xoauth2_token_from_file_and_command() {
    let Some(server) = server() else { return };
    for env in backends() {
        let user = fresh_user("xoauth2");
        let mut imap = Client::login(&server, &user);
        imap.append("INBOX", &messages(0..2, "xoauth2"));
        env.write("token", format!("{}\n", server.password).as_bytes());
        let cfg = config(&env, &server, &user, "oauth2_token_file = \"token\"", "");
        let out = poll_ok(&env, &cfg);
        assert!(out.contains("help: took 2 messages"), "{out}");

        let cfg = config(
            &env,
            &server,
            &user,
            "oauth2_token_command = [\"sh\", \"-c\", \"echo expired-token\"]",
            "",
        );
        let out = poll(&env, &cfg);
        assert_eq!(code(&out), 1);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "mailbox `help`: 127.0.0.1:{} refused the login of `{user}`",
                server.port
            )) && stderr.contains("AUTHENTICATIONFAILED"),
            "{stderr}"
        );
        let h = health(&env, &cfg);
        assert!(
            h["health"]["last_error"]
                .as_str()
                .unwrap()
                .contains("refused the login"),
            "{h}"
        );

        let cfg = config(
            &env,
            &server,
            &user,
            "oauth2_token_command = [\"sh\", \"-c\", \"echo helper broke >&2; exit 3\"]",
            "",
        );
        let out = poll(&env, &cfg);
        assert_eq!(code(&out), 1);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("mailbox `help`: cannot read the credentials: `sh` failed")
                && stderr.contains("helper broke"),
            "{stderr}"
        );
    }
}

/// Implicit TLS and STARTTLS, verified against the configured CA; without it the
/// certificate is refused and the error names the mailbox.
#[test]
fn tls_implicit_and_starttls() {
    let Some(server) = server() else { return };
    if server.tls_port == 0 || server.ca.is_empty() {
        eprintln!("skipped: no TLS listener (POSTDESK_TEST_IMAPS_PORT, POSTDESK_TEST_IMAP_CA)");
        return;
    }
    let env = Env::sqlite();
    let user = fresh_user("tls");
    let mut imap = Client::login(&server, &user);
    imap.append("INBOX", &messages(0..2, "tls"));
    env.write("password", format!("{}\n", server.password).as_bytes());
    let entry = |tls: &str, port: u16, ca: bool| {
        let ca = if ca {
            format!("ca_file = \"{}\"\n", server.ca)
        } else {
            String::new()
        };
        let text = format!(
            "[[mailbox]]\nname = \"help\"\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"{tls}\"\naccount = \"{user}\"\npassword_file = \"password\"\n{ca}"
        );
        env.write("tls.toml", text.as_bytes());
        env.path("tls.toml").display().to_string()
    };
    let out = poll_ok(&env, &entry("implicit", server.tls_port, true));
    assert!(out.contains("help: took 2 messages"), "{out}");
    imap.append("INBOX", &messages(2..3, "tls"));
    let out = poll_ok(&env, &entry("starttls", server.port, true));
    assert!(out.contains("help: took 1 messages"), "{out}");
    let out = poll(&env, &entry("implicit", server.tls_port, false));
    assert_eq!(code(&out), 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "mailbox `help`: cannot connect to 127.0.0.1:{}: TLS:",
            server.tls_port
        )) && stderr.contains("certificate"),
        "{stderr}"
    );
}

// --- crash safety ----------------------------------------------------------------------

/// 2,000 messages; `poll` killed with SIGKILL at 20 random moments spread over the
/// work (each when a random number of messages is stored, plus a random few ms: during a
/// fetch, a transaction, an after-action), then let finish: every message exactly once
/// in the store, none left behind, every after-action done. (The next run takes over the
/// lease of the killed one at once: same host, process gone.)
#[test]
fn crash_safety_kill_9_during_a_2000_message_poll() {
    let Some(server) = server() else { return };
    for env in backends() {
        let user = fresh_user("crash");
        let cfg = config(
            &env,
            &server,
            &user,
            "batch_size = 25\nafter = \"seen\"",
            "",
        );
        poll_ok(&env, &cfg); // creates the database
        let mut imap = Client::login(&server, &user);
        imap.append("INBOX", &messages(0..2000, "crash"));
        let started = Instant::now();
        let mut seed = u64::from(std::process::id()) ^ 0x9e37_79b9_7f4a_7c15;
        let mut random = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        // 20 kill points spread over the 2,000 messages, in order.
        let mut targets: Vec<i64> = (0..20).map(|i| i * 95 + random(95) as i64).collect();
        targets.sort_unstable();
        let stored = || env.query_i64("SELECT count(*) FROM imap_uids");
        let mut kills = Vec::new();
        while kills.len() < targets.len() {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "too slow: {kills:?}"
            );
            let target = targets[kills.len()];
            let mut child = spawn_poll(&env, &cfg);
            while stored() < target && child.try_wait().unwrap().is_none() {
                std::thread::sleep(Duration::from_millis(2));
            }
            std::thread::sleep(Duration::from_millis(random(15)));
            if child.try_wait().unwrap().is_none() {
                child.kill().unwrap(); // SIGKILL
                kills.push(stored());
            }
            child.wait().unwrap();
        }
        poll_ok(&env, &cfg);
        assert_eq!(counts(&env), (2000, 2000, 0, 2000), "killed at {kills:?}");
        imap.select("INBOX");
        assert_eq!(
            imap.search("UNSEEN"),
            Vec::<u32>::new(),
            "after-actions caught up"
        );
        eprintln!(
            "crash safety ({}): {} kills at {kills:?} stored, then finished; {:.1} s",
            if env.is_postgres() {
                "PostgreSQL"
            } else {
                "SQLite"
            },
            kills.len(),
            started.elapsed().as_secs_f64()
        );
    }
}

// --- acknowledgements ----------------------------------------------------------------

/// Mail taken by `poll` is live mail, as `ingest`'s is: a new ticket's acknowledgement is
/// queued with it and sent at the end of the pass, to the Return-Path the delivering server
/// recorded (RFC 3834). Needs the SMTP sink of `scripts/test` as well.
#[test]
fn a_polled_new_ticket_is_acknowledged_once() {
    let Some(server) = server() else { return };
    let Some((port, spool)) = smtp_sink() else {
        return;
    };
    for env in backends() {
        let user = fresh_user("ack");
        let domain = user.replace('@', ".").to_lowercase();
        let first = format!(
            "Return-Path: <ann@{domain}>\r\nFrom: Ann <ann@{domain}>\r\nTo: support@example.com\r\nSubject: The printer jams\r\nMessage-ID: <q1@{domain}>\r\nDate: Thu, 5 Nov 2026 10:00:00 +0000\r\n\r\nThe printer jams on every page.\r\n"
        );
        let again = format!(
            "Return-Path: <ann@{domain}>\r\nFrom: Ann <ann@{domain}>\r\nTo: support@example.com\r\nSubject: Re: The printer jams\r\nMessage-ID: <q2@{domain}>\r\nIn-Reply-To: <q1@{domain}>\r\nDate: Thu, 5 Nov 2026 11:00:00 +0000\r\n\r\nStill jamming.\r\n"
        );
        Client::login(&server, &user).append("INBOX", &[(first, false), (again, false)]);
        let top = format!(
            "[outbound]\nfrom = \"Example Support <support@example.com>\"\n\
             [outbound.smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\ntimeout_secs = 5\n"
        );
        let cfg = config(&env, &server, &user, "", &top);
        let polled = poll_ok(&env, &cfg);
        let outbox = env.json(&["--config", &cfg, "outbox", "list", "--json"]);
        let sent: Vec<_> = std::fs::read_dir(spool.join(&domain))
            .map(|d| {
                d.map(|e| e.unwrap().path())
                    .filter(|p| p.extension().is_some_and(|e| e == "eml"))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(
            sent.len(),
            1,
            "one acknowledgement, for the new ticket only; poll said {polled}, outbox: {outbox}"
        );
        let raw = String::from_utf8(std::fs::read(&sent[0]).unwrap()).unwrap();
        assert!(raw.contains("Auto-Submitted: auto-replied"), "{raw}");
        assert!(
            raw.contains(&format!("In-Reply-To: <q1@{domain}>")),
            "{raw}"
        );
        let queued = env.query_i64("SELECT count(*) FROM outbox WHERE status = 'queued'");
        assert_eq!(queued, 0, "nothing left queued");
    }
}
