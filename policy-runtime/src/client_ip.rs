//! The client address a policy keys on.
//!
//! This module owns finding the client address of a request: the peer address
//! that axum's `ConnectInfo` puts on the request (or `MockConnectInfo` in
//! tests), and, through [`ClientIpResolver`], the address that a trusted
//! reverse proxy forwarded in `Forwarded`, `X-Forwarded-For` or `X-Real-IP`.
//!
//! It also owns the one check of an address against configured networks
//! ([`in_networks`]), shared by trusted proxies and exempt addresses, so that
//! both treat IPv4-mapped IPv6 addresses as IPv4.
//!
//! Three rules hold everywhere here:
//! - Without a peer address (no connect info) there is no client address:
//!   callers refuse the request instead of sharing one bucket between all
//!   clients.
//! - It never trusts forwarding headers from a peer that is not a configured
//!   proxy. Any client can send them, so honouring them from an untrusted peer
//!   would let every client choose its own rate-limit key.
//! - Behind a trusted proxy, a forwarded client that is not an address is
//!   the one reserved unknown client ([`ClientIpResolver::UNKNOWN_CLIENT`]),
//!   never the proxy: proxies are often exempt, and garbage must not buy an
//!   exemption. Forwarding headers are read from their end, byte by byte and
//!   within a fixed bound, so what a client writes left of its own address
//!   changes nothing and costs little.

use axum::extract::connect_info::{ConnectInfo, MockConnectInfo};
use axum::http::header::ValueIter;
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap, HeaderValue};
use ipnet::{IpNet, Ipv6Net};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The peer IP address of the connection, if the server recorded it.
pub(crate) fn peer_ip(parts: &Parts) -> Option<IpAddr> {
    peer_ip_in(&parts.extensions)
}

/// [`peer_ip`] from a request's extensions, for layers that hold a whole request.
pub(crate) fn peer_ip_in(extensions: &Extensions) -> Option<IpAddr> {
    if let Some(ConnectInfo(addr)) = extensions.get::<ConnectInfo<SocketAddr>>() {
        return Some(addr.ip());
    }
    extensions
        .get::<MockConnectInfo<SocketAddr>>()
        .map(|MockConnectInfo(addr)| addr.ip())
}

/// The log line that tells an operator how to give the server connect info.
pub(crate) const MISSING_CONNECT_INFO_FIX: &str = "the client address is unknown because the server was not started with connect info; \
serve the router with `axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())` \
(or add `MockConnectInfo` in tests)";

/// At most this many hops, counted from the right, are considered.
const MAX_HOPS: usize = 32;

/// At most this many bytes of a forwarding header (all its lines), counted
/// from its end, are read; each line costs one more.
const MAX_HEADER_BYTES: usize = 4 * 1024;

/// The IPv6 prefix length that groups clients unless configured otherwise.
const DEFAULT_IPV6_PREFIX: u8 = 64;

const FORWARDED: &str = "forwarded";
const X_FORWARDED_FOR: &str = "x-forwarded-for";
const X_REAL_IP: &str = "x-real-ip";

/// How the client address is found: the peer, or a forwarded hop when the peer is a trusted proxy.
///
/// With no trusted proxy (the default) the TCP peer is the client and
/// forwarding headers are ignored. Behind reverse proxies, name their
/// networks with [`trusted_proxies`](Self::trusted_proxies) or
/// [`trusted_proxies_from_list`](Self::trusted_proxies_from_list); see
/// [`resolve`](Self::resolve) for exactly which hop is chosen. Rate limits key
/// on [`group`](Self::group) of the result, so that one IPv6 host cannot
/// escape its limit by cycling through the addresses of its /64.
///
/// ```
/// use axum::http::HeaderMap;
/// use policy_runtime::ClientIpResolver;
/// use std::net::IpAddr;
///
/// let resolver = ClientIpResolver::new().trusted_proxies(["10.0.0.0/8"])?;
/// let mut headers = HeaderMap::new();
/// headers.insert("x-forwarded-for", "198.51.100.7, 10.0.0.2".parse()?);
///
/// let peer: IpAddr = "10.0.0.1".parse()?;
/// assert_eq!(resolver.resolve(peer, &headers), "198.51.100.7".parse::<IpAddr>()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct ClientIpResolver {
    trusted: Vec<IpNet>,
    ipv6_prefix: u8,
}

impl ClientIpResolver {
    /// The client of a request whose trusted proxy forwarded no usable
    /// address: `100::`, of the discard-only prefix `100::/64` (RFC 6666),
    /// which no real client has.
    ///
    /// [`resolve`](Self::resolve) returns it when the first hop that is not
    /// trusted is not an IP address (`for=unknown`, `_hidden`, garbage), so
    /// that such a request is neither taken for the proxy nor for a trusted
    /// hop. All these unknown clients are one client: by IP they share one
    /// rate-limit bucket (their own: no real address groups with it, at any
    /// IPv6 prefix but /0). Addresses of `100::/64` are never trusted
    /// proxies and never exempt, whatever networks are configured.
    ///
    /// ```
    /// use policy_runtime::ClientIpResolver;
    /// use std::net::IpAddr;
    ///
    /// assert_eq!(ClientIpResolver::UNKNOWN_CLIENT, "100::".parse::<IpAddr>().unwrap());
    /// ```
    pub const UNKNOWN_CLIENT: IpAddr = IpAddr::V6(Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0));

    /// No trusted proxy: the peer address is the client. IPv6 grouped by /64.
    ///
    /// ```
    /// use axum::http::HeaderMap;
    /// use policy_runtime::ClientIpResolver;
    /// use std::net::IpAddr;
    ///
    /// let resolver = ClientIpResolver::new();
    /// let mut headers = HeaderMap::new();
    /// headers.insert("x-forwarded-for", "1.2.3.4".parse()?); // sent by the client itself
    ///
    /// let peer: IpAddr = "203.0.113.9".parse()?;
    /// assert_eq!(resolver.resolve(peer, &headers), peer);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new() -> Self {
        Self {
            trusted: Vec::new(),
            ipv6_prefix: DEFAULT_IPV6_PREFIX,
        }
    }

    /// Trust these proxy networks (CIDRs like "10.0.0.0/8", "2001:db8::/32", or single addresses "127.0.0.1", "::1").
    ///
    /// The networks are added to those already trusted. Surrounding spaces
    /// are ignored, and host bits are cleared (`"10.1.2.3/8"` means
    /// `10.0.0.0/8`). An entry that is neither an address nor a CIDR network,
    /// an empty one included, is an error naming it.
    ///
    /// Trust only networks whose every address is a proxy you run: a peer in
    /// them may name any client it likes. `0.0.0.0/0` would let every client
    /// choose its own address.
    ///
    /// ```
    /// use policy_runtime::{ClientIpError, ClientIpResolver};
    ///
    /// let resolver = ClientIpResolver::new().trusted_proxies(["10.0.0.0/8", "::1"])?;
    ///
    /// let error = ClientIpResolver::new().trusted_proxies(["10.0.0.0/33"]).unwrap_err();
    /// assert_eq!(
    ///     error,
    ///     ClientIpError::InvalidProxy { variable: None, entry: "10.0.0.0/33".to_owned() }
    /// );
    /// # let _ = resolver;
    /// # Ok::<(), ClientIpError>(())
    /// ```
    pub fn trusted_proxies<I, S>(mut self, cidrs: I) -> Result<Self, ClientIpError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        for entry in cidrs {
            let entry = entry.as_ref().trim();
            let net = parse_network(entry).ok_or_else(|| ClientIpError::InvalidProxy {
                variable: None,
                entry: entry.to_owned(),
            })?;
            self.trusted.push(net);
        }
        Ok(self)
    }

    /// Parses a comma-separated list, as in the TRUSTED_PROXIES environment variable; the error names the variable and the bad entry.
    ///
    /// Each entry is read as by [`trusted_proxies`](Self::trusted_proxies).
    /// Empty entries (a blank list, a trailing comma) are skipped, so an
    /// empty variable trusts nothing. `variable` is used only in the error.
    ///
    /// ```
    /// use policy_runtime::{ClientIpError, ClientIpResolver};
    ///
    /// let list = std::env::var("TRUSTED_PROXIES").unwrap_or_default();
    /// let resolver = ClientIpResolver::new().trusted_proxies_from_list("TRUSTED_PROXIES", &list)?;
    ///
    /// let error = ClientIpResolver::new()
    ///     .trusted_proxies_from_list("TRUSTED_PROXIES", "10.0.0.0/8, proxy.internal")
    ///     .unwrap_err();
    /// assert_eq!(
    ///     error,
    ///     ClientIpError::InvalidProxy {
    ///         variable: Some("TRUSTED_PROXIES".to_owned()),
    ///         entry: "proxy.internal".to_owned(),
    ///     }
    /// );
    /// # let _ = resolver;
    /// # Ok::<(), ClientIpError>(())
    /// ```
    pub fn trusted_proxies_from_list(
        mut self,
        variable: &str,
        list: &str,
    ) -> Result<Self, ClientIpError> {
        for entry in list.split(',') {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            let net = parse_network(entry).ok_or_else(|| ClientIpError::InvalidProxy {
                variable: Some(variable.to_owned()),
                entry: entry.to_owned(),
            })?;
            self.trusted.push(net);
        }
        Ok(self)
    }

    /// Group IPv6 clients by this prefix length (0..=128; default 64). Values over 128 are an error.
    ///
    /// A /64 is what one subscriber or host usually gets, so it is the
    /// default; 128 keys every IPv6 address alone, 48 a whole site.
    ///
    /// ```
    /// use policy_runtime::{ClientIpError, ClientIpResolver};
    /// use std::net::IpAddr;
    ///
    /// let resolver = ClientIpResolver::new().ipv6_prefix(48)?;
    /// let ip: IpAddr = "2001:db8:1:2::5".parse().unwrap();
    /// assert_eq!(resolver.group(ip), "2001:db8:1::".parse::<IpAddr>().unwrap());
    ///
    /// assert_eq!(
    ///     ClientIpResolver::new().ipv6_prefix(129).unwrap_err(),
    ///     ClientIpError::InvalidPrefix(129)
    /// );
    /// # Ok::<(), ClientIpError>(())
    /// ```
    pub fn ipv6_prefix(mut self, bits: u8) -> Result<Self, ClientIpError> {
        if bits > 128 {
            return Err(ClientIpError::InvalidPrefix(bits));
        }
        self.ipv6_prefix = bits;
        Ok(self)
    }

    /// The client address of a request whose TCP peer is `peer`.
    ///
    /// 1. If `peer` is not in a trusted network (or none is trusted), it is
    ///    the client, whatever the headers say.
    /// 2. Otherwise the hops are read from the first of these headers that is
    ///    present: `Forwarded` (the `for=` parameter of each element, RFC
    ///    7239), then `X-Forwarded-For`, then `X-Real-IP` (one address).
    ///    Several lines of one header are read in order as one list.
    /// 3. The hops are walked from the right, where our nearest proxy
    ///    appended its peer. Trusted hops are skipped; the first hop that is
    ///    not trusted is the client. (The left-most hop is whatever the client
    ///    sent, so it is never believed just for being left-most.) Elements
    ///    left of that hop are never read, so whatever a client puts there
    ///    (bytes that are not ASCII, unterminated quotes, kilobytes of
    ///    anything) changes nothing.
    /// 4. If the first hop that is not trusted is not an IP address, the
    ///    client is **unknown**: [`UNKNOWN_CLIENT`](Self::UNKNOWN_CLIENT),
    ///    never `peer` nor a trusted hop. Unparseable are: `unknown`,
    ///    obfuscated identifiers such as `_hidden`, garbage, bytes that are
    ///    not ASCII, a `Forwarded` element without exactly one `for=` or
    ///    whose quoted string is not closed, a list or several lines in
    ///    `X-Real-IP`, and an element not complete within the bound below.
    /// 5. If every hop is trusted, the client is the left-most hop (the
    ///    request came from inside the trusted networks); if the header names
    ///    no hop at all (it is absent, or only spaces and commas), it is
    ///    `peer`.
    ///
    /// **Bound**: at most the 32 right-most hops and the last 4 KiB (4,096
    /// bytes) of the header's lines, read from the end, are considered; a
    /// hop beyond either bound is unparseable (so 32 trusted hops followed
    /// by anything make the client unknown). A header of any size thus costs
    /// at most that much work, and this allocates nothing. Elements are cut
    /// at commas outside `Forwarded` quoted strings. Hops are accepted as
    /// `198.51.100.7`, `198.51.100.7:4711`, `2001:db8::1`, `[2001:db8::1]`
    /// and `[2001:db8::1]:4711`, quoted or not in `Forwarded`. An
    /// IPv4-mapped IPv6 peer or hop (`::ffff:10.0.0.1`) matches IPv4
    /// networks. This never panics, whatever the headers hold.
    ///
    /// **Deploying**: only the first header present is read. The nearest
    /// proxy must therefore overwrite or strip those of the three it does not
    /// maintain itself: a proxy that appends to `X-Forwarded-For` but passes a
    /// client's `Forwarded` through lets that client choose its address.
    ///
    /// ```
    /// use axum::http::{HeaderMap, HeaderValue};
    /// use policy_runtime::ClientIpResolver;
    /// use std::net::IpAddr;
    ///
    /// let resolver = ClientIpResolver::new().trusted_proxies(["10.0.0.0/8"])?;
    /// let peer: IpAddr = "10.0.0.1".parse()?;
    ///
    /// // The client sent "1.2.3.4" itself; our proxy appended the real peer.
    /// let mut headers = HeaderMap::new();
    /// headers.insert("x-forwarded-for", "1.2.3.4, 198.51.100.7, 10.0.0.2".parse()?);
    /// assert_eq!(resolver.resolve(peer, &headers), "198.51.100.7".parse::<IpAddr>()?);
    ///
    /// // Garbage the client sent, left of its address, changes nothing.
    /// let mut headers = HeaderMap::new();
    /// headers.insert("x-forwarded-for", HeaderValue::from_bytes(b"\xff, 198.51.100.7")?);
    /// assert_eq!(resolver.resolve(peer, &headers), "198.51.100.7".parse::<IpAddr>()?);
    ///
    /// let mut headers = HeaderMap::new();
    /// headers.insert("forwarded", r#"for="[2001:db8::17]:4711";proto=https"#.parse()?);
    /// assert_eq!(resolver.resolve(peer, &headers), "2001:db8::17".parse::<IpAddr>()?);
    ///
    /// // Our proxy could not name the client: unknown, not the proxy.
    /// let mut headers = HeaderMap::new();
    /// headers.insert("forwarded", "for=unknown".parse()?);
    /// assert_eq!(resolver.resolve(peer, &headers), ClientIpResolver::UNKNOWN_CLIENT);
    ///
    /// // An untrusted peer is the client, whatever it sends.
    /// let stranger: IpAddr = "203.0.113.9".parse()?;
    /// assert_eq!(resolver.resolve(stranger, &headers), stranger);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if self.trusted.is_empty() || !self.is_trusted(peer) {
            return peer;
        }
        let mut hops = hops_from_right(headers);
        // The left-most trusted hop so far.
        let mut client = peer;
        for _ in 0..MAX_HOPS {
            match hops.next() {
                None => return client,
                Some(Hop::Address(ip)) if self.is_trusted(ip) => client = ip,
                Some(Hop::Address(ip)) => return ip,
                Some(Hop::Unparseable) => return Self::UNKNOWN_CLIENT,
            }
        }
        // 32 trusted hops: anything further left is out of reach.
        match hops.next() {
            None => client,
            Some(_) => Self::UNKNOWN_CLIENT,
        }
    }

    /// The rate-limit key form of an address: IPv4 (and IPv4-mapped IPv6, converted to IPv4) as is; IPv6 masked to the prefix.
    ///
    /// ```
    /// use policy_runtime::ClientIpResolver;
    /// use std::net::IpAddr;
    ///
    /// let resolver = ClientIpResolver::new();
    /// let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    /// assert_eq!(resolver.group(ip("198.51.100.7")), ip("198.51.100.7"));
    /// assert_eq!(resolver.group(ip("::ffff:198.51.100.7")), ip("198.51.100.7"));
    /// assert_eq!(resolver.group(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
    /// ```
    pub fn group(&self, ip: IpAddr) -> IpAddr {
        match ip.to_canonical() {
            IpAddr::V4(v4) => IpAddr::V4(v4),
            IpAddr::V6(v6) => IpAddr::V6(
                Ipv6Net::new(v6, self.ipv6_prefix)
                    .map(|net| net.network())
                    // The prefix is checked when set, so this is never used.
                    .unwrap_or(v6),
            ),
        }
    }

    /// Whether `ip`, or the IPv4 address it maps, is in a trusted network.
    fn is_trusted(&self, ip: IpAddr) -> bool {
        in_networks(&self.trusted, ip)
    }
}

/// Whether `ip`, or the IPv4 address an IPv4-mapped `ip` stands for
/// (`::ffff:127.0.0.1` for `127.0.0.1`), is in one of `networks`.
///
/// Addresses of the discard-only prefix `100::/64`, where
/// [`ClientIpResolver::UNKNOWN_CLIENT`] lives, are in none: the unknown
/// client is never trusted nor exempt. Both the trusted-proxy and the
/// exempt-address checks go through here, so that they agree.
pub(crate) fn in_networks(networks: &[IpNet], ip: IpAddr) -> bool {
    // No networks, the common case for exemptions: nothing to canonicalise.
    if networks.is_empty() || is_discard_only(ip) {
        return false;
    }
    let canonical = ip.to_canonical();
    networks
        .iter()
        .any(|net| net.contains(&ip) || net.contains(&canonical))
}

/// Whether `ip` is in `100::/64` (RFC 6666).
fn is_discard_only(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V6(v6) => v6.segments()[..4] == [0x100, 0, 0, 0],
        IpAddr::V4(_) => false,
    }
}

impl Default for ClientIpResolver {
    /// The same as [`ClientIpResolver::new`]: no trusted proxy, IPv6 grouped by /64.
    ///
    /// ```
    /// use axum::http::HeaderMap;
    /// use policy_runtime::ClientIpResolver;
    /// use std::net::IpAddr;
    ///
    /// let resolver = ClientIpResolver::default();
    /// let peer: IpAddr = "2001:db8::5".parse().unwrap();
    /// assert_eq!(resolver.resolve(peer, &HeaderMap::new()), peer);
    /// assert_eq!(resolver.group(peer), "2001:db8::".parse::<IpAddr>().unwrap());
    /// ```
    fn default() -> Self {
        Self::new()
    }
}

/// A trusted-proxy list or IPv6 prefix that cannot be used.
///
/// ```
/// use policy_runtime::{ClientIpError, ClientIpResolver};
///
/// let error = ClientIpResolver::new()
///     .trusted_proxies_from_list("TRUSTED_PROXIES", "10.0.0.0/8,10.0.0.300")
///     .unwrap_err();
/// assert!(matches!(error, ClientIpError::InvalidProxy { .. }));
/// assert!(error.to_string().contains("TRUSTED_PROXIES"));
/// assert!(error.to_string().contains("10.0.0.300"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientIpError {
    /// An entry of a trusted-proxy list is neither an IP address nor a CIDR network.
    #[error("{}", invalid_proxy_message(.variable.as_deref(), .entry))]
    InvalidProxy {
        /// The environment variable the list came from, if any.
        variable: Option<String>,
        /// The entry as written, without surrounding spaces.
        entry: String,
    },
    /// An IPv6 grouping prefix length over 128.
    #[error(
        "the IPv6 grouping prefix /{0} is out of range: expected a prefix length from 0 to 128 \
         (64, the default, keys each /64 network as one client)"
    )]
    InvalidPrefix(u8),
}

fn invalid_proxy_message(variable: Option<&str>, entry: &str) -> String {
    let what = "is not an IP address or CIDR network";
    match variable {
        Some(variable) => format!(
            "{variable} has the entry {entry:?}, which {what}; expected a comma-separated list \
             of networks and addresses, such as \"10.0.0.0/8, 2001:db8::/32, 127.0.0.1\""
        ),
        None => format!(
            "the trusted proxy {entry:?} {what}; expected a network such as \"10.0.0.0/8\" or \
             \"2001:db8::/32\", or a single address such as \"127.0.0.1\" or \"::1\""
        ),
    }
}

/// A CIDR network (host bits cleared) or a single address as a full-length network.
fn parse_network(entry: &str) -> Option<IpNet> {
    let entry = entry.trim();
    if let Ok(net) = entry.parse::<IpNet>() {
        return Some(net.trunc());
    }
    entry.parse::<IpAddr>().ok().map(IpNet::from)
}

/// One hop of a forwarding header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hop {
    Address(IpAddr),
    /// Not an IP address: `unknown`, `_hidden`, garbage, an element cut by
    /// [`MAX_HEADER_BYTES`], and so on.
    Unparseable,
}

/// The hops of the first forwarding header present, right to left.
///
/// Reads bytes, not text: an element that is not ASCII (or not UTF-8) is
/// one unparseable hop, and the elements to its right are read as usual.
/// At most [`MAX_HEADER_BYTES`] of the header, counted from its end, are
/// read (each line also costs one byte, so that many empty lines cannot cost
/// more): an element not complete within them is unparseable, and nothing is
/// read after it. Allocates nothing.
enum Hops<'h> {
    /// `X-Real-IP`: one hop, already read, or none.
    One(Option<Hop>),
    /// `Forwarded` or `X-Forwarded-For`.
    List(ListHops<'h>),
}

impl Iterator for Hops<'_> {
    type Item = Hop;

    fn next(&mut self) -> Option<Hop> {
        match self {
            Hops::One(hop) => hop.take(),
            Hops::List(list) => list.next(),
        }
    }
}

/// The hops of a comma-separated header, read from the end of its last line.
struct ListHops<'h> {
    /// `Forwarded` elements may hold quoted strings, whose commas do not
    /// separate; `X-Forwarded-For` has none.
    forwarded: bool,
    /// The lines not yet started, last first.
    lines: std::iter::Rev<ValueIter<'h, HeaderValue>>,
    /// What is left of the current line: its left part.
    line: &'h [u8],
    /// How many more bytes may be read.
    budget: usize,
    /// Set once the budget ran out: nothing more is read.
    finished: bool,
}

impl Iterator for ListHops<'_> {
    type Item = Hop;

    fn next(&mut self) -> Option<Hop> {
        if self.finished {
            return None;
        }
        loop {
            if self.line.is_empty() {
                let line = self.lines.next()?;
                if self.budget == 0 {
                    self.finished = true;
                    return Some(Hop::Unparseable);
                }
                self.budget -= 1;
                self.line = line.as_bytes();
                continue;
            }
            let element = match self.take_last_element() {
                Piece::Element(element) => trim_ows(element),
                Piece::Spoiled => return Some(Hop::Unparseable),
                Piece::OutOfBudget => {
                    self.finished = true;
                    return Some(Hop::Unparseable);
                }
            };
            if element.is_empty() {
                continue;
            }
            let hop = if self.forwarded {
                forwarded_for(element)
            } else {
                parse_node(element, false)
            };
            return Some(hop.map_or(Hop::Unparseable, Hop::Address));
        }
    }
}

impl<'h> ListHops<'h> {
    fn new(forwarded: bool, lines: ValueIter<'h, HeaderValue>) -> Self {
        Self {
            forwarded,
            lines: lines.rev(),
            line: &[],
            budget: MAX_HEADER_BYTES,
            finished: false,
        }
    }

    /// Takes the right-most element off the current line, with the comma
    /// that separates it from the rest.
    fn take_last_element(&mut self) -> Piece<'h> {
        let line = self.line;
        let mut quoted = false;
        let mut end = line.len();
        while end > 0 {
            let Some(budget) = self.budget.checked_sub(1) else {
                return Piece::OutOfBudget;
            };
            self.budget = budget;
            end -= 1;
            let byte = line[end];
            if quoted {
                // Read backwards, a quote opens the quoted string unless an
                // odd run of backslashes escapes it. The run counted is cut
                // at the budget, which then runs out within it.
                if byte == b'"' {
                    let escapes = line[..end]
                        .iter()
                        .rev()
                        .take(budget.saturating_add(1))
                        .take_while(|&&before| before == b'\\')
                        .count();
                    quoted = escapes % 2 == 1;
                }
            } else if self.forwarded && byte == b'"' {
                quoted = true;
            } else if byte == b',' {
                self.line = &line[..end];
                return Piece::Element(&line[end + 1..]);
            }
        }
        self.line = &[];
        if quoted {
            // A quoted string that never opens: it runs to the start of the
            // line, so this element is unparseable (and the walk ends here).
            return Piece::Spoiled;
        }
        Piece::Element(line)
    }
}

/// What [`ListHops::take_last_element`] found.
enum Piece<'h> {
    /// The bytes of an element, without the separating comma.
    Element(&'h [u8]),
    /// An element whose quoted string is not closed.
    Spoiled,
    /// The budget ran out inside an element.
    OutOfBudget,
}

/// The hops of the first forwarding header present, right to left.
fn hops_from_right(headers: &HeaderMap) -> Hops<'_> {
    if headers.contains_key(FORWARDED) {
        return Hops::List(ListHops::new(true, headers.get_all(FORWARDED).iter()));
    }
    if headers.contains_key(X_FORWARDED_FOR) {
        return Hops::List(ListHops::new(
            false,
            headers.get_all(X_FORWARDED_FOR).iter(),
        ));
    }
    let mut values = headers.get_all(X_REAL_IP).iter();
    let Some(first) = values.next() else {
        return Hops::One(None);
    };
    if values.next().is_some() {
        // Which line would be ours is unknown: trust neither.
        return Hops::One(Some(Hop::Unparseable));
    }
    if first.len() > MAX_HEADER_BYTES {
        return Hops::One(Some(Hop::Unparseable));
    }
    let value = trim_ows(first.as_bytes());
    if value.is_empty() {
        return Hops::One(None);
    }
    let hop = parse_node(value, false).map_or(Hop::Unparseable, Hop::Address);
    Hops::One(Some(hop))
}

/// The address in the one `for=` parameter of a `Forwarded` element.
fn forwarded_for(element: &[u8]) -> Option<IpAddr> {
    let mut found = None;
    for pair in split_unquoted(element, b';') {
        let pair = trim_ows(pair);
        if pair.is_empty() {
            continue;
        }
        let equals = pair.iter().position(|&byte| byte == b'=')?;
        let (name, value) = (&pair[..equals], &pair[equals + 1..]);
        if trim_ows(name).eq_ignore_ascii_case(b"for") {
            if found.is_some() {
                // A repeated parameter makes the element ambiguous.
                return None;
            }
            found = Some(trim_ows(value));
        }
    }
    let value = found?;
    let node = match value.strip_prefix(b"\"") {
        Some(quoted) => {
            let inner = quoted.strip_suffix(b"\"")?;
            // No address needs an escape; anything escaped is not one.
            if inner.iter().any(|&byte| matches!(byte, b'"' | b'\\')) {
                return None;
            }
            inner
        }
        None => value,
    };
    parse_node(node, true)
}

/// Splits `bytes` at each `separator` outside a quoted string. An
/// unterminated quote runs to the end.
fn split_unquoted(bytes: &[u8], separator: u8) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    let mut finished = false;
    std::iter::from_fn(move || {
        if finished {
            return None;
        }
        let mut quoted = false;
        let mut escaped = false;
        for (index, &byte) in bytes.iter().enumerate().skip(start) {
            if quoted {
                if escaped {
                    escaped = false;
                } else if byte == b'\\' {
                    escaped = true;
                } else if byte == b'"' {
                    quoted = false;
                }
            } else if byte == b'"' {
                quoted = true;
            } else if byte == separator {
                let piece = &bytes[start..index];
                start = index + 1;
                return Some(piece);
            }
        }
        finished = true;
        Some(&bytes[start..])
    })
}

/// An IP address with an optional port: `198.51.100.7`, `198.51.100.7:80`,
/// `2001:db8::1`, `[2001:db8::1]` or `[2001:db8::1]:80`. With
/// `obfuscated_port`, a port may also be an RFC 7239 `_identifier`.
/// Anything that is not ASCII is not an address.
fn parse_node(node: &[u8], obfuscated_port: bool) -> Option<IpAddr> {
    if !node.is_ascii() {
        return None;
    }
    // ASCII is UTF-8.
    let node = std::str::from_utf8(node).ok()?;
    if let Some(bracketed) = node.strip_prefix('[') {
        let (address, rest) = bracketed.split_once(']')?;
        let address: Ipv6Addr = address.parse().ok()?;
        if !rest.is_empty() {
            let port = rest.strip_prefix(':')?;
            if !valid_port(port, obfuscated_port) {
                return None;
            }
        }
        return Some(IpAddr::V6(address));
    }
    if let Ok(address) = node.parse::<IpAddr>() {
        return Some(address);
    }
    let (address, port) = node.split_once(':')?;
    let address: Ipv4Addr = address.parse().ok()?;
    valid_port(port, obfuscated_port).then_some(IpAddr::V4(address))
}

fn valid_port(port: &str, obfuscated_allowed: bool) -> bool {
    if !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit()) {
        return port.parse::<u16>().is_ok();
    }
    obfuscated_allowed
        && port.len() > 1
        && port.starts_with('_')
        && port
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Trims HTTP optional whitespace (spaces and tabs).
fn trim_ows(bytes: &[u8]) -> &[u8] {
    let is_ows = |byte: &u8| matches!(byte, b' ' | b'\t');
    let start = bytes
        .iter()
        .position(|byte| !is_ows(byte))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|byte| !is_ows(byte))
        .map_or(start, |last| last + 1);
    &bytes[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderName;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn headers(lines: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in lines {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    /// Trusts 10.0.0.0/8 and 2001:db8:ffff::/48; the peer is 10.0.0.1.
    fn behind_proxies() -> ClientIpResolver {
        ClientIpResolver::new()
            .trusted_proxies(["10.0.0.0/8", "2001:db8:ffff::/48"])
            .unwrap()
    }

    fn resolve_behind_proxies(lines: &[(&str, &str)]) -> IpAddr {
        behind_proxies().resolve(ip("10.0.0.1"), &headers(lines))
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_the_headers_say() {
        let spoofed = headers(&[
            ("forwarded", "for=1.2.3.4"),
            ("x-forwarded-for", "1.2.3.4"),
            ("x-real-ip", "1.2.3.4"),
        ]);
        let peer = ip("203.0.113.9");
        assert_eq!(ClientIpResolver::new().resolve(peer, &spoofed), peer);
        assert_eq!(behind_proxies().resolve(peer, &spoofed), peer);
        for (name, value) in [
            ("forwarded", "for=1.2.3.4"),
            ("x-forwarded-for", "1.2.3.4, 10.0.0.2"),
            ("x-real-ip", "1.2.3.4"),
        ] {
            let one = headers(&[(name, value)]);
            assert_eq!(behind_proxies().resolve(peer, &one), peer, "{name}");
        }
        // An IPv6 peer outside the trusted /48.
        let peer = ip("2001:db8:fffe::1");
        assert_eq!(behind_proxies().resolve(peer, &spoofed), peer);
    }

    #[test]
    fn trusted_peer_without_headers_is_the_client() {
        assert_eq!(resolve_behind_proxies(&[]), ip("10.0.0.1"));
    }

    #[test]
    fn trusted_peer_names_the_client_before_the_trusted_proxies() {
        let client = resolve_behind_proxies(&[("x-forwarded-for", "198.51.100.7, 10.0.0.2")]);
        assert_eq!(client, ip("198.51.100.7"));
    }

    #[test]
    fn right_most_untrusted_hop_beats_a_spoofed_left_most() {
        let client = resolve_behind_proxies(&[(
            "x-forwarded-for",
            "1.2.3.4, 198.51.100.7, 10.0.0.2, 2001:db8:ffff::9",
        )]);
        assert_eq!(client, ip("198.51.100.7"));
        let client =
            resolve_behind_proxies(&[("forwarded", "for=1.2.3.4, for=198.51.100.7, for=10.0.0.2")]);
        assert_eq!(client, ip("198.51.100.7"));
    }

    #[test]
    fn forwarded_quoted_ipv6_ports_and_parameters() {
        let client = resolve_behind_proxies(&[(
            "forwarded",
            r#"for="[2001:db8:cafe::17]:4711";proto=https;by=10.0.0.2, For=10.0.0.3"#,
        )]);
        assert_eq!(client, ip("2001:db8:cafe::17"));
        let cases = [
            (r#"for="[2001:db8:cafe::17]""#, "2001:db8:cafe::17"),
            (r#"for="[2001:db8:cafe::17]:_port-1""#, "2001:db8:cafe::17"),
            (r#"for="198.51.100.7:8080""#, "198.51.100.7"),
            ("for=198.51.100.7", "198.51.100.7"),
            (r#"for="198.51.100.7""#, "198.51.100.7"),
            (
                r#"proto=http; FOR = "198.51.100.7" ;by=_proxy"#,
                "198.51.100.7",
            ),
            // A comma inside a quoted value does not split the element.
            (
                r#"for=198.51.100.7;note=", for=203.0.113.5""#,
                "198.51.100.7",
            ),
        ];
        for (value, expected) in cases {
            let client = resolve_behind_proxies(&[("forwarded", value)]);
            assert_eq!(client, ip(expected), "{value}");
        }
    }

    #[test]
    fn x_forwarded_for_accepts_ports_and_brackets() {
        let cases = [
            ("198.51.100.7:4711, 10.0.0.2", "198.51.100.7"),
            ("[2001:db8:cafe::17]:4711, 10.0.0.2", "2001:db8:cafe::17"),
            ("[2001:db8:cafe::17],10.0.0.2", "2001:db8:cafe::17"),
            ("2001:db8:cafe::17\t,\t10.0.0.2", "2001:db8:cafe::17"),
        ];
        for (value, expected) in cases {
            let client = resolve_behind_proxies(&[("x-forwarded-for", value)]);
            assert_eq!(client, ip(expected), "{value}");
        }
    }

    #[test]
    fn several_header_lines_are_one_list_in_order() {
        let client = resolve_behind_proxies(&[
            ("x-forwarded-for", "1.2.3.4, 198.51.100.7"),
            ("x-forwarded-for", "10.0.0.2"),
        ]);
        assert_eq!(client, ip("198.51.100.7"));
        let client = resolve_behind_proxies(&[
            ("x-forwarded-for", "198.51.100.7"),
            ("x-forwarded-for", "203.0.113.5, 10.0.0.2"),
        ]);
        assert_eq!(client, ip("203.0.113.5"));
        let client = resolve_behind_proxies(&[
            ("forwarded", "for=1.2.3.4"),
            (
                "forwarded",
                r#"for="[2001:db8:cafe::17]:4711", for=10.0.0.2"#,
            ),
            ("forwarded", "for=10.0.0.3"),
        ]);
        assert_eq!(client, ip("2001:db8:cafe::17"));
    }

    #[test]
    fn forwarded_wins_over_x_forwarded_for_which_wins_over_x_real_ip() {
        let all = [
            ("x-real-ip", "203.0.113.3"),
            ("x-forwarded-for", "203.0.113.2"),
            ("forwarded", "for=203.0.113.1"),
        ];
        assert_eq!(resolve_behind_proxies(&all), ip("203.0.113.1"));
        assert_eq!(resolve_behind_proxies(&all[..2]), ip("203.0.113.2"));
        assert_eq!(resolve_behind_proxies(&all[..1]), ip("203.0.113.3"));
        // Presence decides, not usefulness: an empty X-Forwarded-For leaves the peer.
        let empty_xff = [("x-real-ip", "203.0.113.3"), ("x-forwarded-for", "")];
        assert_eq!(resolve_behind_proxies(&empty_xff), ip("10.0.0.1"));
    }

    #[test]
    fn x_real_ip_is_one_address() {
        let client = resolve_behind_proxies(&[("x-real-ip", " 198.51.100.7:80 ")]);
        assert_eq!(client, ip("198.51.100.7"));
        // A trusted X-Real-IP is the left-most (only) hop, so it is the client.
        assert_eq!(
            resolve_behind_proxies(&[("x-real-ip", "10.0.0.9")]),
            ip("10.0.0.9")
        );
        // A list, or two lines, are not one address: the client is unknown.
        let list = [("x-real-ip", "198.51.100.7, 203.0.113.5")];
        assert_eq!(resolve_behind_proxies(&list), UNKNOWN);
        let two = [("x-real-ip", "198.51.100.7"), ("x-real-ip", "203.0.113.5")];
        assert_eq!(resolve_behind_proxies(&two), UNKNOWN);
        // A blank one names no hop.
        assert_eq!(
            resolve_behind_proxies(&[("x-real-ip", " ")]),
            ip("10.0.0.1")
        );
    }

    const UNKNOWN: IpAddr = ClientIpResolver::UNKNOWN_CLIENT;

    #[test]
    fn an_unparseable_first_untrusted_hop_makes_the_client_unknown() {
        let cases = [
            ("x-forwarded-for", "198.51.100.7, garbage, 10.0.0.2"),
            ("x-forwarded-for", "198.51.100.7, unknown, 10.0.0.2"),
            ("x-forwarded-for", "198.51.100.7, 10.0.0.300, 10.0.0.2"),
            ("x-forwarded-for", "198.51.100.7, 10.0.0.5:99999, 10.0.0.2"),
            ("x-forwarded-for", "198.51.100.7, 10.0.0.5:_obf, 10.0.0.2"),
            ("x-forwarded-for", "198.51.100.7, unknown"),
            ("forwarded", "for=198.51.100.7, for=_hidden, for=10.0.0.2"),
            ("forwarded", "for=198.51.100.7, for=unknown, for=10.0.0.2"),
            ("forwarded", "for=198.51.100.7, proto=https, for=10.0.0.2"),
            (
                "forwarded",
                "for=198.51.100.7, for=1.2.3.4;for=5.6.7.8, for=10.0.0.2",
            ),
            (
                "forwarded",
                r#"for=198.51.100.7, for="1.2.3.4, for=10.0.0.2"#,
            ),
            (
                "forwarded",
                "for=198.51.100.7, for=[2001:db8::1, for=10.0.0.2",
            ),
            (
                "forwarded",
                r#"for=198.51.100.7, for="\1.2.3.4", for=10.0.0.2"#,
            ),
            ("forwarded", "for=198.51.100.7, for=unknown"),
            ("forwarded", r#"for="_hidden""#),
            ("x-real-ip", "unknown"),
        ];
        for (name, value) in cases {
            let client = resolve_behind_proxies(&[(name, value)]);
            assert_eq!(client, UNKNOWN, "{name}: {value}");
        }
        // Garbage left of the first untrusted hop is never read.
        let cases = [
            ("x-forwarded-for", "garbage, 198.51.100.7"),
            ("x-forwarded-for", "[::1, 198.51.100.7, 10.0.0.2"),
            ("forwarded", "for=_hidden, for=198.51.100.7"),
            ("forwarded", r#"for="x, for=198.51.100.7"#),
            ("forwarded", r#"for=x"; a="b, for="198.51.100.7""#),
        ];
        for (name, value) in cases {
            let client = resolve_behind_proxies(&[(name, value)]);
            assert_eq!(client, ip("198.51.100.7"), "{name}: {value}");
        }
    }

    #[test]
    fn forwarded_quoted_strings_are_read_backwards_with_their_escapes() {
        // An escaped quote does not end the quoted string: its comma is in it.
        let client = resolve_behind_proxies(&[(
            "forwarded",
            r#"for=198.51.100.7;note="x\", for=203.0.113.5", for=10.0.0.2"#,
        )]);
        assert_eq!(client, ip("198.51.100.7"));
        // An escaped backslash does not escape the quote after it.
        let client = resolve_behind_proxies(&[(
            "forwarded",
            r#"for=198.51.100.7;note="x\\", for=203.0.113.5, for=10.0.0.2"#,
        )]);
        assert_eq!(client, ip("203.0.113.5"));
    }

    #[test]
    fn bytes_that_are_not_ascii_spoil_only_their_own_element() {
        let raw = |lines: &[(&str, &[u8])]| {
            let mut map = HeaderMap::new();
            for (name, value) in lines {
                map.append(
                    HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    HeaderValue::from_bytes(value).unwrap(),
                );
            }
            behind_proxies().resolve(ip("10.0.0.1"), &map)
        };
        for name in ["forwarded", "x-forwarded-for", "x-real-ip"] {
            let client = raw(&[(name, b"198.51.100.7\xff, 10.0.0.2")]);
            assert_eq!(client, UNKNOWN, "{name}");
        }
        assert_eq!(
            raw(&[("x-forwarded-for", b"\xff, 198.51.100.7")]),
            ip("198.51.100.7")
        );
        assert_eq!(
            raw(&[("forwarded", b"for=\xff, for=198.51.100.7")]),
            ip("198.51.100.7")
        );
        assert_eq!(
            raw(&[("forwarded", "for=\"é\", for=\"[2001:db8::7]\"".as_bytes())]),
            ip("2001:db8::7")
        );
        // Lines are one list: our proxy's line comes last.
        let lines: [(&str, &[u8]); 2] = [
            ("x-forwarded-for", "198.51.100.7, é".as_bytes()),
            ("x-forwarded-for", b"10.0.0.2"),
        ];
        assert_eq!(raw(&lines), UNKNOWN);
        let lines: [(&str, &[u8]); 2] = [
            ("x-forwarded-for", "é, 198.51.100.7".as_bytes()),
            ("x-forwarded-for", b"10.0.0.2"),
        ];
        assert_eq!(raw(&lines), ip("198.51.100.7"));
    }

    #[test]
    fn only_the_last_4_kib_of_a_header_are_read() {
        // A long line costs only its end.
        let long = format!("{}198.51.100.7", "1.2.3.4, ".repeat(2000));
        assert!(long.len() > 4 * MAX_HEADER_BYTES);
        let client = resolve_behind_proxies(&[
            ("x-forwarded-for", long.as_str()),
            ("x-forwarded-for", "10.0.0.2"),
        ]);
        assert_eq!(client, ip("198.51.100.7"));
        // Trusted hops whose elements fill the budget before the client is
        // reached: unknown.
        let hop = format!("for=10.0.0.2;host=\"{}\"", "h".repeat(200));
        let chain = |count: usize| vec![hop.as_str(); count].join(", ");
        let near = format!("for=198.51.100.7, {}", chain(15));
        assert!(near.len() < MAX_HEADER_BYTES);
        assert_eq!(
            resolve_behind_proxies(&[("forwarded", near.as_str())]),
            ip("198.51.100.7")
        );
        let far = format!("for=198.51.100.7, {}", chain(25));
        assert!(far.len() > MAX_HEADER_BYTES);
        assert_eq!(
            resolve_behind_proxies(&[("forwarded", far.as_str())]),
            UNKNOWN
        );
        // So does one element longer than the budget, and so do lines.
        let huge = format!("for=198.51.100.7;host=\"{}\"", "h".repeat(MAX_HEADER_BYTES));
        assert_eq!(
            resolve_behind_proxies(&[("forwarded", huge.as_str())]),
            UNKNOWN
        );
        let mut map = HeaderMap::new();
        map.append("x-forwarded-for", HeaderValue::from_static("198.51.100.7"));
        for _ in 0..MAX_HEADER_BYTES {
            map.append("x-forwarded-for", HeaderValue::from_static(""));
        }
        assert_eq!(behind_proxies().resolve(ip("10.0.0.1"), &map), UNKNOWN);
        // A run of backslashes longer than the budget is not followed to its end.
        let escapes = format!("for=\"{}\"", "\\".repeat(3 * MAX_HEADER_BYTES));
        assert_eq!(
            resolve_behind_proxies(&[("forwarded", escapes.as_str())]),
            UNKNOWN
        );
    }

    #[test]
    fn all_hops_trusted_gives_the_left_most() {
        let client = resolve_behind_proxies(&[("x-forwarded-for", "10.0.0.3, 10.0.0.2")]);
        assert_eq!(client, ip("10.0.0.3"));
        let client =
            resolve_behind_proxies(&[("forwarded", r#"for="[2001:db8:ffff::3]", for=10.0.0.2"#)]);
        assert_eq!(client, ip("2001:db8:ffff::3"));
    }

    #[test]
    fn only_the_32_right_most_hops_are_considered() {
        let trusted_chain = |count: usize| {
            (0..count)
                .map(|index| format!("10.0.1.{index}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        // The client is the 32nd hop from the right: found.
        let value = format!("1.2.3.4, 198.51.100.7, {}", trusted_chain(31));
        let client = resolve_behind_proxies(&[("x-forwarded-for", value.as_str())]);
        assert_eq!(client, ip("198.51.100.7"));
        // 32 trusted hops and nothing else: the left-most is the client.
        let value = trusted_chain(32);
        let client = resolve_behind_proxies(&[("x-forwarded-for", value.as_str())]);
        assert_eq!(client, ip("10.0.1.0"));
        // The client is the 33rd: out of reach, so unknown (never a proxy).
        let value = format!("198.51.100.7, {}", trusted_chain(32));
        let client = resolve_behind_proxies(&[("x-forwarded-for", value.as_str())]);
        assert_eq!(client, UNKNOWN);
        // Across several lines too.
        let client = resolve_behind_proxies(&[
            ("x-forwarded-for", "198.51.100.7"),
            ("x-forwarded-for", trusted_chain(20).as_str()),
            ("x-forwarded-for", trusted_chain(12).as_str()),
        ]);
        assert_eq!(client, UNKNOWN);
    }

    #[test]
    fn the_unknown_client_is_in_no_network() {
        let everything = [
            "0.0.0.0/0".parse::<IpNet>().unwrap(),
            "::/0".parse().unwrap(),
        ];
        assert!(!in_networks(&everything, UNKNOWN));
        assert!(!in_networks(&everything, ip("100::1")));
        assert!(in_networks(&everything, ip("100:0:0:1::")));
        let resolver = ClientIpResolver::new()
            .trusted_proxies(["::/0", "0.0.0.0/0"])
            .unwrap();
        // A peer in 100::/64 is not trusted: its headers are ignored.
        let map = headers(&[("x-forwarded-for", "198.51.100.7")]);
        assert_eq!(resolver.resolve(ip("100::5"), &map), ip("100::5"));
        // The unknown client keys alone at every prefix but /0.
        for bits in [48, 64, 128] {
            let resolver = ClientIpResolver::new().ipv6_prefix(bits).unwrap();
            assert_eq!(resolver.group(UNKNOWN), UNKNOWN);
        }
    }

    #[test]
    fn ipv4_mapped_addresses_are_in_ipv4_networks() {
        let loopback = [IpNet::from(ip("127.0.0.1"))];
        assert!(in_networks(&loopback, ip("::ffff:127.0.0.1")));
        assert!(in_networks(&loopback, ip("127.0.0.1")));
        assert!(!in_networks(&loopback, ip("::ffff:127.0.0.2")));
        // IPv4-compatible (deprecated) addresses are not IPv4.
        assert!(!in_networks(&loopback, ip("::127.0.0.1")));
        let mapped = [IpNet::from(ip("::ffff:127.0.0.1"))];
        assert!(in_networks(&mapped, ip("::ffff:127.0.0.1")));
    }

    #[test]
    fn ipv4_mapped_addresses_match_ipv4_networks() {
        let map = headers(&[("x-forwarded-for", "198.51.100.7, ::ffff:10.0.0.2")]);
        let resolver = behind_proxies();
        assert_eq!(
            resolver.resolve(ip("::ffff:10.0.0.1"), &map),
            ip("198.51.100.7")
        );
        let peer = ip("::ffff:203.0.113.9");
        assert_eq!(resolver.resolve(peer, &map), peer);
    }

    #[test]
    fn ipv6_is_grouped_by_prefix_and_mapped_ipv4_becomes_ipv4() {
        let default = ClientIpResolver::default();
        assert_eq!(
            default.group(ip("2001:db8:1:2:3:4:5:6")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(default.group(ip("198.51.100.7")), ip("198.51.100.7"));
        assert_eq!(default.group(ip("::ffff:198.51.100.7")), ip("198.51.100.7"));
        let site = ClientIpResolver::new().ipv6_prefix(48).unwrap();
        assert_eq!(site.group(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1::"));
        assert_eq!(site.group(ip("::ffff:198.51.100.7")), ip("198.51.100.7"));
        let host = ClientIpResolver::new().ipv6_prefix(128).unwrap();
        assert_eq!(
            host.group(ip("2001:db8:1:2:3:4:5:6")),
            ip("2001:db8:1:2:3:4:5:6")
        );
        let all = ClientIpResolver::new().ipv6_prefix(0).unwrap();
        assert_eq!(all.group(ip("2001:db8:1:2:3:4:5:6")), ip("::"));
        assert_eq!(all.group(ip("198.51.100.7")), ip("198.51.100.7"));
    }

    #[test]
    fn prefix_over_128_is_an_error() {
        let error = ClientIpResolver::new().ipv6_prefix(129).unwrap_err();
        assert_eq!(error, ClientIpError::InvalidPrefix(129));
        let message = error.to_string();
        assert!(
            message.contains("/129") && message.contains("0 to 128"),
            "{message}"
        );
        assert_eq!(
            ClientIpResolver::new().ipv6_prefix(255).unwrap_err(),
            ClientIpError::InvalidPrefix(255)
        );
    }

    #[test]
    fn trusted_proxies_accept_networks_and_single_addresses() {
        let resolver = ClientIpResolver::new()
            .trusted_proxies([" 127.0.0.1 ", "::1", "192.168.1.77/16", "2001:db8::/32"])
            .unwrap();
        let map = headers(&[("x-forwarded-for", "198.51.100.7")]);
        for peer in ["127.0.0.1", "::1", "192.168.200.1", "2001:db8:9::1"] {
            assert_eq!(
                resolver.resolve(ip(peer), &map),
                ip("198.51.100.7"),
                "{peer}"
            );
        }
        for peer in ["127.0.0.2", "::2", "192.169.0.1", "2001:db9::1"] {
            assert_eq!(resolver.resolve(ip(peer), &map), ip(peer), "{peer}");
        }
        // Lists add to what is already trusted.
        let resolver = ClientIpResolver::new()
            .trusted_proxies(["10.0.0.0/8"])
            .unwrap()
            .trusted_proxies_from_list("TRUSTED_PROXIES", " 127.0.0.1 ,, ::1,")
            .unwrap();
        for peer in ["10.1.1.1", "127.0.0.1", "::1"] {
            assert_eq!(
                resolver.resolve(ip(peer), &map),
                ip("198.51.100.7"),
                "{peer}"
            );
        }
        let nothing = ClientIpResolver::new()
            .trusted_proxies_from_list("TRUSTED_PROXIES", "  ")
            .unwrap();
        assert_eq!(nothing.resolve(ip("127.0.0.1"), &map), ip("127.0.0.1"));
    }

    #[test]
    fn invalid_proxy_errors_name_the_entry_and_the_variable() {
        for bad in ["10.0.0.0/33", "proxy.internal", "", "[::1]", "10.0.0.1:80"] {
            let error = ClientIpResolver::new()
                .trusted_proxies(["10.0.0.0/8", bad])
                .unwrap_err();
            assert_eq!(
                error,
                ClientIpError::InvalidProxy {
                    variable: None,
                    entry: bad.to_owned()
                }
            );
            let message = error.to_string();
            assert!(message.contains(&format!("{bad:?}")), "{message}");
            assert!(message.contains("10.0.0.0/8"), "{message}");
        }
        let error = ClientIpResolver::new()
            .trusted_proxies_from_list("TRUSTED_PROXIES", "10.0.0.0/8, 2001:db8::/129 ,::1")
            .unwrap_err();
        assert_eq!(
            error,
            ClientIpError::InvalidProxy {
                variable: Some("TRUSTED_PROXIES".to_owned()),
                entry: "2001:db8::/129".to_owned()
            }
        );
        let message = error.to_string();
        assert!(message.contains("TRUSTED_PROXIES"), "{message}");
        assert!(message.contains("\"2001:db8::/129\""), "{message}");
        assert!(message.contains("comma-separated"), "{message}");
    }

    /// Header bytes made mostly of the pieces the parsers look at.
    fn random_value(rng: &mut fastrand::Rng) -> Vec<u8> {
        const PIECES: &[&[u8]] = &[
            b"for=",
            b"For=",
            b"proto=https",
            b"1",
            b"10.0.0.2",
            b"198.51.100.7",
            b"::ffff:",
            b"2001:db8::",
            b"[",
            b"]",
            b":",
            b"::",
            b".",
            b",",
            b";",
            b"=",
            b"\"",
            b"\\",
            b" ",
            b"\t",
            b"_",
            b"unknown",
            b"_hidden",
            b"4711",
            b"99999",
            b"\xff",
            b"\xc3\xa9",
            b"\x7f",
            b"\x01",
            b"%eth0",
            b"/",
        ];
        let mut value = Vec::new();
        let pieces = if rng.usize(..50) == 0 {
            5000
        } else {
            rng.usize(..24)
        };
        for _ in 0..pieces {
            if rng.usize(..8) == 0 {
                value.push(rng.u8(..));
            } else {
                value.extend_from_slice(PIECES[rng.usize(..PIECES.len())]);
            }
        }
        value
    }

    #[test]
    fn random_header_bytes_never_panic_nor_move_an_untrusted_peer() {
        const NAMES: [&str; 3] = ["forwarded", "x-forwarded-for", "x-real-ip"];
        let resolver = behind_proxies();
        let trusting_everyone = ClientIpResolver::new()
            .trusted_proxies(["0.0.0.0/0", "::/0"])
            .unwrap();
        let untrusted_v4 = ip("203.0.113.9");
        let untrusted_v6 = ip("2001:db8:fffe::1");
        let mut rng = fastrand::Rng::with_seed(0x9E37_79B9_7F4A_7C15);
        let mut readable = 0;
        for _ in 0..20_000 {
            let mut map = HeaderMap::new();
            for _ in 0..=rng.usize(..3) {
                let name = NAMES[rng.usize(..NAMES.len())];
                // HeaderValue refuses control bytes; keep what it accepts.
                if let Ok(value) = HeaderValue::from_bytes(&random_value(&mut rng)) {
                    readable += usize::from(value.to_str().is_ok());
                    map.append(name, value);
                }
            }
            assert_eq!(resolver.resolve(untrusted_v4, &map), untrusted_v4);
            assert_eq!(resolver.resolve(untrusted_v6, &map), untrusted_v6);
            assert_eq!(
                ClientIpResolver::new().resolve(untrusted_v4, &map),
                untrusted_v4
            );
            let peer = ip("10.0.0.1");
            let _ = resolver.group(resolver.resolve(peer, &map));
            let _ = trusting_everyone.group(trusting_everyone.resolve(peer, &map));
            // Whatever the client put to the left, the line our proxy appends
            // last names the client.
            let real = ip("198.51.100.77");
            if map.contains_key("forwarded") {
                map.append("forwarded", HeaderValue::from_static("for=198.51.100.77"));
            } else {
                map.append("x-forwarded-for", HeaderValue::from_static("198.51.100.77"));
            }
            assert_eq!(resolver.resolve(peer, &map), real, "{map:?}");
        }
        assert!(readable > 1_000, "too few readable values: {readable}");
    }
}
