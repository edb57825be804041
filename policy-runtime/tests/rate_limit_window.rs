//! `X-RateLimit-Window` (`EngineBuilder::rate_limit_window_header`) over a
//! real Router: the period in seconds of the quota the other
//! `X-RateLimit-*` headers describe, on admitted responses and on 429s (a
//! quota's refusal, the penalty box's, the default limits'); off by default;
//! never with the IETF family alone or with no headers.

mod common;

use axum::Router;
use axum::routing::get;
use common::{Reply, get as get_request, send};
use policy_runtime::{Engine, EngineBuilder, HeaderStyle, ManualClock, Penalty, rate_limit};
use std::time::Duration;

/// The minute's quota is the one with the fewest requests left, then the one that refuses.
#[rate_limit("3/minute; 100/hour")]
async fn minute_decides() -> &'static str {
    "ok"
}

/// The hour's quota is the one with the fewest requests left.
#[rate_limit("50/minute; 2/hour")]
async fn hour_decides() -> &'static str {
    "ok"
}

fn builder() -> EngineBuilder {
    // Time stands still: every count and reset is exact.
    Engine::builder().clock(ManualClock::new())
}

fn routes(engine: Engine) -> Router {
    Router::new()
        .route("/minute", get(minute_decides))
        .route("/hour", get(hour_decides))
        .layer(engine)
}

fn window(reply: &Reply) -> Option<&str> {
    reply
        .headers
        .get("x-ratelimit-window")
        .map(|value| value.to_str().unwrap())
}

#[tokio::test]
async fn the_window_is_the_period_of_the_quota_that_decided_on_a_200_and_a_429() {
    for style in [HeaderStyle::Legacy, HeaderStyle::Both] {
        let engine = builder()
            .rate_limit_headers(style)
            .rate_limit_window_header(true)
            .build()
            .unwrap();
        let app = routes(engine);
        for left in ["2", "1", "0"] {
            let reply = send(&app, get_request("/minute")).await;
            assert_eq!(reply.status, 200, "{style:?}");
            assert_eq!(reply.header("x-ratelimit-limit"), "3");
            assert_eq!(reply.header("x-ratelimit-remaining"), left);
            assert_eq!(window(&reply), Some("60"), "{style:?}");
        }
        let refused = send(&app, get_request("/minute")).await;
        assert_eq!(refused.status, 429);
        assert_eq!(refused.header("x-ratelimit-limit"), "3");
        assert_eq!(refused.header("x-ratelimit-remaining"), "0");
        assert_eq!(refused.header("retry-after"), "20");
        assert_eq!(window(&refused), Some("60"), "{style:?}");

        // The hour decides: its window, with its limit.
        let reply = send(&app, get_request("/hour")).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("x-ratelimit-limit"), "2");
        assert_eq!(reply.header("x-ratelimit-remaining"), "1");
        assert_eq!(window(&reply), Some("3600"));
        assert_eq!(send(&app, get_request("/hour")).await.status, 200);
        let refused = send(&app, get_request("/hour")).await;
        assert_eq!(refused.status, 429);
        assert_eq!(refused.header("x-ratelimit-limit"), "2");
        assert_eq!(refused.header("retry-after"), "1800");
        assert_eq!(window(&refused), Some("3600"));
    }
}

#[tokio::test]
async fn a_client_in_the_penalty_box_sees_the_first_quotas_window() {
    let engine = builder()
        .rate_limit_window_header(true)
        .penalty(Penalty::new(
            1,
            Duration::from_secs(60),
            Duration::from_secs(300),
        ))
        .build()
        .unwrap();
    let app = routes(engine);
    for _ in 0..2 {
        assert_eq!(send(&app, get_request("/hour")).await.status, 200);
    }
    // The hour refuses (and strikes), then the penalty box blocks.
    let refused = send(&app, get_request("/hour")).await;
    assert_eq!(refused.status, 429);
    assert_eq!(window(&refused), Some("3600"));
    let blocked = send(&app, get_request("/hour")).await;
    assert_eq!(blocked.status, 429);
    assert_eq!(
        blocked.json()["error"],
        "Too Many Requests: blocked after repeated violations"
    );
    assert_eq!(blocked.header("retry-after"), "300");
    // The block's headers describe the limit's first quota: 50 a minute.
    assert_eq!(blocked.header("x-ratelimit-limit"), "50");
    assert_eq!(window(&blocked), Some("60"));
}

#[tokio::test]
async fn the_default_limits_show_their_window_too() {
    let engine = builder()
        .default_limits("200/day; 2/hour")
        .rate_limit_window_header(true)
        .build()
        .unwrap();
    let app = Router::new()
        .route("/plain", get(|| async { "plain" }))
        .route_layer(engine.default_limits())
        .layer(engine);
    for left in ["1", "0"] {
        let reply = send(&app, get_request("/plain")).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("x-ratelimit-remaining"), left);
        assert_eq!(window(&reply), Some("3600"));
    }
    let refused = send(&app, get_request("/plain")).await;
    assert_eq!(refused.status, 429);
    assert_eq!(window(&refused), Some("3600"));
}

#[tokio::test]
async fn off_by_default() {
    let app = routes(builder().build().unwrap());
    for expected in [200, 200, 200, 429] {
        let reply = send(&app, get_request("/minute")).await;
        assert_eq!(reply.status, expected);
        assert_eq!(reply.header("x-ratelimit-limit"), "3");
        assert_eq!(window(&reply), None);
    }
    // Turned on, then off again.
    let engine = builder()
        .rate_limit_window_header(true)
        .rate_limit_window_header(false)
        .build()
        .unwrap();
    let reply = send(&routes(engine), get_request("/minute")).await;
    assert_eq!(reply.header("x-ratelimit-remaining"), "2");
    assert_eq!(window(&reply), None);
}

#[tokio::test]
async fn never_without_the_legacy_family() {
    for style in [HeaderStyle::Ietf, HeaderStyle::None] {
        let engine = builder()
            .rate_limit_headers(style)
            .rate_limit_window_header(true)
            .build()
            .unwrap();
        let app = routes(engine);
        for expected in [200, 200, 200, 429] {
            let reply = send(&app, get_request("/minute")).await;
            assert_eq!(reply.status, expected, "{style:?}");
            assert_eq!(window(&reply), None, "{style:?}");
            assert!(reply.headers.get("x-ratelimit-limit").is_none());
            assert_eq!(
                reply.headers.contains_key("ratelimit"),
                style == HeaderStyle::Ietf
            );
        }
    }
}

/// A page may read the window through CORS when the engine sends it.
#[cfg(feature = "cors")]
#[tokio::test]
async fn cors_exposes_the_window_when_it_is_sent() {
    use axum::body::Body;

    const APP: &str = "https://app.example.com";
    for (on, exposed) in [
        (
            false,
            "retry-after,x-ratelimit-limit,x-ratelimit-remaining,x-ratelimit-reset,ratelimit,ratelimit-policy,x-request-id",
        ),
        (
            true,
            "retry-after,x-ratelimit-limit,x-ratelimit-remaining,x-ratelimit-reset,ratelimit,ratelimit-policy,x-request-id,x-ratelimit-window",
        ),
    ] {
        let engine = builder()
            .cors_origins([APP])
            .rate_limit_window_header(on)
            .build()
            .unwrap();
        let app = routes(engine.clone()).layer(engine.cors());
        let request = common::from("192.0.2.1", "GET", "/minute")
            .header("origin", APP)
            .body(Body::empty())
            .unwrap();
        let reply = send(&app, request).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("access-control-expose-headers"), exposed);
        assert_eq!(window(&reply).is_some(), on);
    }
}

/// The OpenAPI document lists the window with the other headers when the
/// engine sends it.
#[cfg(feature = "utoipa-axum")]
mod openapi {
    use super::*;
    use utoipa_axum::router::OpenApiRouter;
    use utoipa_axum::routes;

    #[rate_limit("3/minute")]
    #[utoipa::path(get, path = "/documented", responses((status = 200, description = "ok")))]
    async fn documented() -> &'static str {
        "ok"
    }

    /// The names of the headers of the 200 and the 429.
    fn documented_headers(engine: &Engine) -> [Vec<String>; 2] {
        let (_, mut openapi) = OpenApiRouter::<()>::new()
            .routes(routes!(documented))
            .split_for_parts();
        engine.document(&mut openapi);
        let spec = serde_json::to_value(&openapi).unwrap();
        let responses = &spec["paths"]["/documented"]["get"]["responses"];
        ["200", "429"].map(|status| {
            let mut names: Vec<String> = responses[status]["headers"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect();
            names.sort();
            names
        })
    }

    #[test]
    fn the_document_lists_the_window_when_it_is_sent() {
        let legacy = [
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
        ];
        let on = builder()
            .rate_limit_headers(HeaderStyle::Legacy)
            .rate_limit_window_header(true)
            .build()
            .unwrap();
        let [admitted, refused] = documented_headers(&on);
        let mut expected: Vec<&str> = legacy.to_vec();
        expected.push("X-RateLimit-Window");
        assert_eq!(admitted, expected);
        expected.insert(0, "Retry-After");
        assert_eq!(refused, expected);

        let off = builder()
            .rate_limit_headers(HeaderStyle::Legacy)
            .build()
            .unwrap();
        assert_eq!(documented_headers(&off)[0], legacy);
        let ietf = builder()
            .rate_limit_headers(HeaderStyle::Ietf)
            .rate_limit_window_header(true)
            .build()
            .unwrap();
        assert_eq!(
            documented_headers(&ietf)[0],
            ["RateLimit", "RateLimit-Policy"]
        );
    }
}
