//! Trusted proxies: which peers' `X-Forwarded-For` names the client, and the client address
//! the throttle and the logs use.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use http::HeaderMap;
use ipnet::IpNet;

/// The address of every request whose peer is unknown (a router served without
/// `ConnectInfo<SocketAddr>`): one shared throttle entry, and `X-Forwarded-For` ignored.
pub(crate) const UNKNOWN_PEER: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);

/// Which peers are reverse proxies whose `X-Forwarded-For` names the client: loopback
/// peers and `[http] trusted_proxies`.
pub(crate) struct ProxyTrust {
    networks: Vec<IpNet>,
}

impl ProxyTrust {
    /// Loopback plus `networks`.
    pub(crate) fn new(networks: Vec<IpNet>) -> Self {
        ProxyTrust { networks }
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        ip.is_loopback() || self.networks.iter().any(|net| net.contains(&ip))
    }

    /// The client's address: the peer's, or — when the peer is a trusted proxy — the one
    /// `X-Forwarded-For` names, read from the right past every trusted proxy (each appends
    /// the address it received the request from). An unknown peer is [`UNKNOWN_PEER`]
    /// whatever the headers say: nothing vouches for them.
    pub(crate) fn client_ip(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> IpAddr {
        let Some(peer) = peer else {
            return UNKNOWN_PEER;
        };
        let mut client = peer.ip().to_canonical();
        if !self.trusts(client) {
            return client;
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        for hop in hops.into_iter().rev() {
            let Ok(ip) = hop.trim().parse::<IpAddr>() else {
                break;
            };
            client = ip.to_canonical();
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn forwarded(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn forwarded_for_is_trusted_only_from_loopback_by_default() {
        let headers = forwarded("1.2.3.4, 203.0.113.9");
        let trust = ProxyTrust::new(Vec::new());
        let loopback = SocketAddr::from(([127, 0, 0, 1], 5000));
        let remote = SocketAddr::from(([198, 51, 100, 7], 5000));
        assert_eq!(
            trust.client_ip(Some(loopback), &headers),
            IpAddr::from([203, 0, 113, 9])
        );
        assert_eq!(
            trust.client_ip(Some(remote), &headers),
            IpAddr::from([198, 51, 100, 7])
        );
        // An IPv4-mapped loopback peer (dual-stack socket) is loopback too.
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:5000".parse().unwrap();
        assert_eq!(
            trust.client_ip(Some(mapped), &headers),
            IpAddr::from([203, 0, 113, 9])
        );
    }

    #[test]
    fn trusted_proxies_are_skipped_from_the_right() {
        let trust = ProxyTrust::new(vec!["10.0.0.0/8".parse().unwrap()]);
        let proxy = SocketAddr::from(([10, 1, 2, 3], 443));
        // client → edge proxy 10.9.9.9 → proxy 10.1.2.3 → us; a client-written first entry
        // is not believed.
        let headers = forwarded("6.6.6.6, 203.0.113.9, 10.9.9.9");
        assert_eq!(
            trust.client_ip(Some(proxy), &headers),
            IpAddr::from([203, 0, 113, 9])
        );
        // Without the header, the proxy itself is the client.
        assert_eq!(
            trust.client_ip(Some(proxy), &HeaderMap::new()),
            IpAddr::from([10, 1, 2, 3])
        );
        // A peer outside the trusted networks is the client, whatever it forwards.
        let other = SocketAddr::from(([172, 17, 0, 1], 443));
        assert_eq!(
            trust.client_ip(Some(other), &headers),
            IpAddr::from([172, 17, 0, 1])
        );
    }

    #[test]
    fn an_unknown_peer_is_one_fixed_address_and_its_forwarded_for_is_ignored() {
        let trust = ProxyTrust::new(Vec::new());
        assert_eq!(
            trust.client_ip(None, &forwarded("203.0.113.9")),
            UNKNOWN_PEER
        );
        assert_eq!(trust.client_ip(None, &forwarded("1.2.3.4")), UNKNOWN_PEER);
        assert!(!UNKNOWN_PEER.is_loopback());
    }
}
