//! Hostile forwarding headers behind a trusted proxy: garbage left of the
//! address our proxy appended must not move the client, an unparseable
//! first untrusted hop makes the client unknown (limited, in one shared
//! bucket, never the proxy and never exempt), and exempt networks match
//! IPv4-mapped peers.

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request};
use axum::routing::get;
use common::{from, send};
use policy_runtime::{ClientIpResolver, Engine, rate_limit};
use std::net::IpAddr;

/// The proxy in front of the application: trusted and exempt.
const PROXY: &str = "10.0.0.1";

#[rate_limit("3/hour")]
async fn limited() -> &'static str {
    "ok"
}

/// Behind a trusted proxy network that is also exempt, as when internal
/// traffic is never limited.
fn app() -> Router {
    let engine = Engine::builder()
        .trusted_proxies(["10.0.0.0/8"])
        .exempt_ips(["10.0.0.0/8"])
        .build()
        .unwrap();
    Router::new().route("/", get(limited)).layer(engine)
}

fn request(peer: &str, headers: &[(&str, &[u8])]) -> Request<Body> {
    let mut request = from(peer, "GET", "/").body(Body::empty()).unwrap();
    for (name, value) in headers {
        request.headers_mut().append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_bytes(value).unwrap(),
        );
    }
    request
}

async fn status(app: &Router, peer: &str, headers: &[(&str, &[u8])]) -> u16 {
    send(app, request(peer, headers)).await.status.as_u16()
}

const CLEAN: (&str, &[u8]) = ("x-forwarded-for", b"203.0.113.5");

/// Sends `hostile`, the clean header, then `hostile` twice: all four count
/// against 203.0.113.5, so the last is refused.
async fn counts_as_203_0_113_5(hostile: (&str, &[u8])) {
    let app = app();
    let mut statuses = Vec::new();
    for headers in [[hostile], [CLEAN], [hostile], [hostile]] {
        statuses.push(status(&app, PROXY, &headers).await);
    }
    assert_eq!(
        statuses,
        [200, 200, 200, 429],
        "{}: {} bytes ending {:?}",
        hostile.0,
        hostile.1.len(),
        String::from_utf8_lossy(&hostile.1[hostile.1.len().saturating_sub(24)..])
    );
    // The same bucket as the clean header, which is now refused too.
    assert_eq!(status(&app, PROXY, &[CLEAN]).await, 429);
}

#[tokio::test]
async fn a_clean_forwarded_client_is_limited() {
    let app = app();
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(status(&app, PROXY, &[CLEAN]).await);
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
}

#[tokio::test]
async fn a_raw_0xff_byte_left_of_the_client_does_not_make_the_proxy_the_client() {
    // What nginx forwards for a client that sent `X-Forwarded-For: \xff`.
    counts_as_203_0_113_5(("x-forwarded-for", b"\xff, 203.0.113.5")).await;
}

#[tokio::test]
async fn an_8_kib_line_ending_in_the_client_does_not_make_the_proxy_the_client() {
    let mut line = "198.51.100.7, ".repeat(8 * 1024 / 14).into_bytes();
    line.extend_from_slice(b"203.0.113.5");
    assert!(line.len() > 8 * 1024);
    counts_as_203_0_113_5(("x-forwarded-for", &line)).await;
}

#[tokio::test]
async fn an_unterminated_quote_spoils_only_its_own_element() {
    counts_as_203_0_113_5(("forwarded", br#"for="x, for=203.0.113.5"#)).await;
}

#[tokio::test]
async fn non_ascii_left_of_the_client_does_not_make_the_proxy_the_client() {
    counts_as_203_0_113_5(("x-forwarded-for", "é, 203.0.113.5".as_bytes())).await;
}

#[tokio::test]
async fn an_unparseable_first_untrusted_hop_is_an_unknown_client_with_its_own_bucket() {
    let app = app();
    // The proxy forwarded something that is not an address as the client.
    let unknown: [(&str, &[u8]); 5] = [
        ("x-forwarded-for", b"203.0.113.5, garbage"),
        ("forwarded", b"for=unknown"),
        (
            "forwarded",
            b"for=203.0.113.5, for=\"_hidden\", for=10.0.0.2",
        ),
        ("x-forwarded-for", b"203.0.113.5, \xff, 10.0.0.2"),
        ("x-real-ip", b"not an address"),
    ];
    let mut statuses = Vec::new();
    for header in unknown {
        statuses.push(status(&app, PROXY, &[header]).await);
    }
    // Limited (not exempt like the proxy), and all in one bucket.
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    // Neither the proxy itself (exempt) nor 203.0.113.5 shares that bucket.
    for _ in 0..5 {
        assert_eq!(status(&app, PROXY, &[]).await, 200);
    }
    assert_eq!(status(&app, PROXY, &[CLEAN]).await, 200);
    // The unknown client is the reserved discard-only address 100::.
    let resolver = ClientIpResolver::new()
        .trusted_proxies(["10.0.0.0/8"])
        .unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("forwarded", HeaderValue::from_static("for=unknown"));
    let unknown = resolver.resolve(PROXY.parse().unwrap(), &headers);
    assert_eq!(unknown, ClientIpResolver::UNKNOWN_CLIENT);
    assert_eq!(unknown, "100::".parse::<IpAddr>().unwrap());
}

#[tokio::test]
async fn the_unknown_client_is_never_exempt_nor_trusted() {
    // Even networks that contain 100:: neither exempt nor trust it.
    let engine = Engine::builder()
        .trusted_proxies(["10.0.0.0/8", "::/0"])
        .exempt_ips(["10.0.0.0/8", "::/0"])
        .build()
        .unwrap();
    let app = Router::new().route("/", get(limited)).layer(engine);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(status(&app, PROXY, &[("forwarded", b"for=_hidden")]).await);
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
}

#[tokio::test]
async fn exempt_ips_match_ipv4_mapped_peers() {
    // A listener on [::] sees IPv4 clients as ::ffff:a.b.c.d.
    let engine = Engine::builder().exempt_ips(["127.0.0.1"]).build().unwrap();
    let app = Router::new().route("/", get(limited)).layer(engine);
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(status(&app, "::ffff:127.0.0.1", &[]).await);
    }
    assert_eq!(statuses, [200; 5]);
    // Other mapped peers are limited as their IPv4 address.
    let mut statuses = Vec::new();
    for peer in [
        "::ffff:127.0.0.2",
        "127.0.0.2",
        "::ffff:127.0.0.2",
        "127.0.0.2",
    ] {
        statuses.push(status(&app, peer, &[]).await);
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
}

/// Header bytes made mostly of the pieces the parsers look at, never longer
/// than `max_pieces` pieces (with a rare very long value).
fn random_value(rng: &mut fastrand::Rng, pieces: &[&[u8]]) -> Vec<u8> {
    let mut value = Vec::new();
    let count = if rng.usize(..40) == 0 {
        3000
    } else {
        rng.usize(..24)
    };
    for _ in 0..count {
        if rng.usize(..6) == 0 {
            value.push(rng.u8(..));
        } else {
            value.extend_from_slice(pieces[rng.usize(..pieces.len())]);
        }
    }
    value
}

const SYNTAX: &[&[u8]] = &[
    b"for=",
    b"For=",
    b"proto=https",
    b";",
    b",",
    b", ",
    b"=",
    b"\"",
    b"\\",
    b" ",
    b"\t",
    b"[",
    b"]",
    b":",
    b"::",
    b".",
    b"_",
    b"unknown",
    b"_hidden",
    b"4711",
    b"99999",
    b"\xff",
    b"\xc3\xa9",
    b"%eth1",
    b"/",
];

/// Trusted (and exempt) in both properties.
fn resolver() -> ClientIpResolver {
    ClientIpResolver::new()
        .trusted_proxies(["10.0.0.0/8", "2001:db8:ffff::/48"])
        .unwrap()
}

fn trusted_or_exempt(ip: IpAddr) -> bool {
    let canonical = ip.to_canonical();
    let v4 = |text: &str| text.parse::<ipnet::IpNet>().unwrap();
    [v4("10.0.0.0/8"), v4("2001:db8:ffff::/48")]
        .iter()
        .any(|net| net.contains(&ip) || net.contains(&canonical))
}

/// Whether the header the resolver reads (the first of `Forwarded`,
/// `X-Forwarded-For`, `X-Real-IP` present) names no hop at all.
fn names_no_hop(headers: &HeaderMap) -> bool {
    let blank = |value: &HeaderValue, separators: &[u8]| {
        value
            .as_bytes()
            .iter()
            .all(|byte| separators.contains(byte))
    };
    for name in ["forwarded", "x-forwarded-for"] {
        if headers.contains_key(name) {
            return headers
                .get_all(name)
                .iter()
                .all(|value| blank(value, b" \t,"));
        }
    }
    let lines: Vec<_> = headers.get_all("x-real-ip").iter().collect();
    match lines.as_slice() {
        [] => true,
        [line] => blank(line, b" \t"),
        _ => false,
    }
}

/// Property: whatever bytes a trusted proxy forwards, the client is never a
/// trusted-proxy or exempt address unless the peer itself is the only hop.
///
/// The noise holds no byte `0`, `a` or `A`, without which no address of
/// 10.0.0.0/8 or 2001:db8:ffff::/48 can be written (`10.…`, `::ffff:a…`,
/// `2001:…`): a header listing only trusted addresses rightly names a client
/// inside the trusted network, which is not what this property is about.
#[test]
fn random_forwarding_bytes_never_resolve_to_a_trusted_or_exempt_address() {
    const NAMES: [&str; 3] = ["forwarded", "x-forwarded-for", "x-real-ip"];
    let mut pieces = SYNTAX.to_vec();
    pieces.extend_from_slice(&[
        b"1",
        b"::ffff:", // the four addresses last:
        b"198.51.19.7",
        b"::ffff:198.51.19.7",
        b"2c1f:db8::17",
        b"fe8::1",
    ]);
    let resolver = resolver();
    let peers: [IpAddr; 3] = [
        PROXY.parse().unwrap(),
        "::ffff:10.0.0.1".parse().unwrap(),
        "2001:db8:ffff::1".parse().unwrap(),
    ];
    let mut rng = fastrand::Rng::with_seed(0x2545_F491_4F6C_DD1D);
    let (mut unknown, mut addresses, mut no_hop) = (0, 0, 0);
    for _ in 0..20_000 {
        let mut headers = HeaderMap::new();
        for _ in 0..=rng.usize(..3) {
            let name = NAMES[rng.usize(..NAMES.len())];
            let mut value = random_value(&mut rng, &pieces);
            if rng.usize(..3) == 0 {
                // Often end in an address, so that the noise is left of it.
                value.extend_from_slice(b", ");
                value.extend_from_slice(pieces[pieces.len() - 1 - rng.usize(..4)]);
            }
            value.retain(|byte| !matches!(byte, b'0' | b'a' | b'A'));
            // HeaderValue refuses control bytes; keep what it accepts.
            if let Ok(value) = HeaderValue::from_bytes(&value) {
                headers.append(name, value);
            }
        }
        for peer in peers {
            let client = resolver.resolve(peer, &headers);
            if client == peer {
                assert!(names_no_hop(&headers), "{peer} for {headers:?}");
                no_hop += 1;
            } else {
                assert!(!trusted_or_exempt(client), "{client} for {headers:?}");
                if client == ClientIpResolver::UNKNOWN_CLIENT {
                    unknown += 1;
                } else {
                    addresses += 1;
                }
            }
        }
    }
    // The noise reaches every outcome.
    assert!(unknown > 1_000, "{unknown}");
    assert!(addresses > 1_000, "{addresses}");
    assert!(no_hop > 1_000, "{no_hop}");
}

/// Property: whatever a client sends in the header a proxy chain appends to,
/// the address the first proxy appended is the client.
#[test]
fn random_client_bytes_never_hide_the_address_our_proxies_appended() {
    let mut pieces = SYNTAX.to_vec();
    pieces.extend_from_slice(&[
        b"0",
        b"1",
        b"10.0.0.2",
        b"198.51.100.7",
        b"::ffff:",
        b"::ffff:10.0.0.3",
        b"2001:db8:ffff::9",
        b"2001:db8::",
    ]);
    let resolver = resolver();
    let peer: IpAddr = PROXY.parse().unwrap();
    let mut rng = fastrand::Rng::with_seed(0x9E37_79B9_7F4A_7C15);
    for round in 0..20_000u32 {
        let forwarded = rng.usize(..2) == 0;
        let name = if forwarded {
            "forwarded"
        } else {
            "x-forwarded-for"
        };
        // The client's own lines of the header.
        let mut lines: Vec<Vec<u8>> = (0..rng.usize(..3))
            .map(|_| random_value(&mut rng, &pieces))
            .filter(|value| HeaderValue::from_bytes(value).is_ok())
            .collect();
        // The first proxy appends the client's address, then each further
        // trusted proxy its own peer: on the last line or on a new one.
        let client: IpAddr = if rng.usize(..2) == 0 {
            format!("203.0.{}.{}", round % 250, rng.usize(..250))
                .parse()
                .unwrap()
        } else {
            format!("2001:db8:{:x}::{:x}", round % 0xfff0, rng.usize(..0xffff))
                .parse()
                .unwrap()
        };
        let mut appended = vec![client];
        for index in 0..rng.usize(..3) {
            appended.push(format!("10.0.1.{index}").parse().unwrap());
        }
        for hop in appended {
            let text = match (forwarded, hop, rng.usize(..3)) {
                (false, IpAddr::V6(v6), 0) => format!("[{v6}]:4711"),
                (false, hop, _) => hop.to_string(),
                (true, IpAddr::V4(v4), 0) => format!("for=\"{v4}:4711\";proto=https"),
                (true, IpAddr::V4(v4), _) => format!("for={v4}"),
                (true, IpAddr::V6(v6), 0) => format!("For=\"[{v6}]:_p\";by=_proxy"),
                (true, IpAddr::V6(v6), _) => format!("for=\"[{v6}]\""),
            };
            match lines.last_mut() {
                Some(line) if rng.usize(..2) == 0 => {
                    line.extend_from_slice(b", ");
                    line.extend_from_slice(text.as_bytes());
                }
                _ => lines.push(text.into_bytes()),
            }
        }
        let mut headers = HeaderMap::new();
        for line in &lines {
            headers.append(name, HeaderValue::from_bytes(line).unwrap());
        }
        assert_eq!(resolver.resolve(peer, &headers), client, "{headers:?}");
    }
}
