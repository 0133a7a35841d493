//! Where a push subscription or webhook may point (server-side request
//! forgery): `https` only, and only to public addresses, unless the host is
//! on the operator's allowlist (`push.allow_hosts`). Checked when a device
//! registers the URL and again at every send, where every name is resolved
//! through [`Guard`] so a name cannot turn private between the two (DNS
//! rebinding). Redirects are never followed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// Why a URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("not a URL")]
    NotAUrl,
    #[error("only https URLs are allowed")]
    NotHttps,
    #[error("the URL must not carry a user name or password")]
    Credentials,
    #[error("{0} is not a public address ({1})")]
    NotPublic(IpAddr, &'static str),
    #[error("the host does not resolve")]
    Unresolved,
}

/// The operator's allowlist: hosts (`name` or `name:port`) exempt from the
/// checks.
#[derive(Debug, Clone, Default)]
pub struct Allow {
    /// Host names (lower case), each with its port if the entry named one.
    hosts: Vec<(String, Option<u16>)>,
}

impl Allow {
    pub fn new(hosts: &[String]) -> Self {
        let entry = |h: &String| {
            let h = h.to_ascii_lowercase();
            match h
                .rsplit_once(':')
                .map(|(name, port)| (name, port.parse().ok()))
            {
                Some((name, Some(port))) => (name.to_owned(), Some(port)),
                _ => (h, None),
            }
        };
        Allow {
            hosts: hosts.iter().map(entry).collect(),
        }
    }

    /// Whether `host` is allowed on `port` (`None`: on the port an entry
    /// names, as the resolver asks, which does not know the port).
    fn allows(&self, host: &str, port: Option<u16>) -> bool {
        self.hosts.iter().any(|(name, allowed)| {
            name.eq_ignore_ascii_case(host)
                && (allowed.is_none() || port.is_none() || *allowed == port)
        })
    }
}

/// A URL's host and port, once its form is acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub url: reqwest::Url,
    /// The host is on the allowlist: any address, and `http`, will do.
    pub allowed: bool,
}

/// Checks a URL's form: `https` (or an allowed host), no credentials, and,
/// for an address written in the URL, a public one.
pub fn check_form(raw: &str, allow: &Allow) -> Result<Checked, Refused> {
    let url = reqwest::Url::parse(raw).map_err(|_| Refused::NotAUrl)?;
    let host = url.host_str().ok_or(Refused::NotAUrl)?.to_owned();
    let port = url.port_or_known_default().ok_or(Refused::NotAUrl)?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Refused::Credentials);
    }
    let allowed = allow.allows(&host, Some(port));
    if allowed {
        return match url.scheme() {
            "https" | "http" => Ok(Checked { url, allowed }),
            _ => Err(Refused::NotHttps),
        };
    }
    if url.scheme() != "https" {
        return Err(Refused::NotHttps);
    }
    match url.host() {
        Some(url::Host::Ipv4(ip)) => public(IpAddr::V4(ip))?,
        Some(url::Host::Ipv6(ip)) => public(IpAddr::V6(ip))?,
        _ => {}
    }
    Ok(Checked { url, allowed })
}

/// [`check_form`], then the host's name resolved: every address must be
/// public. For registering a URL; a send resolves through [`Guard`].
pub async fn check(raw: &str, allow: &Allow) -> Result<Checked, Refused> {
    let checked = check_form(raw, allow)?;
    if checked.allowed {
        return Ok(checked);
    }
    let host = checked.url.host_str().unwrap_or_default().to_owned();
    let port = checked.url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|_| Refused::Unresolved)?
        .collect();
    if addrs.is_empty() {
        return Err(Refused::Unresolved);
    }
    for addr in addrs {
        public(addr.ip())?;
    }
    Ok(checked)
}

/// Refuses an address that is not on the public internet: loopback,
/// private, shared (CGNAT), link-local (with cloud metadata at
/// 169.254.169.254), unique local, multicast, unspecified, reserved and
/// documentation ranges, and IPv6 forms that embed such an IPv4 address.
pub fn public(ip: IpAddr) -> Result<(), Refused> {
    match why_not_public(ip) {
        None => Ok(()),
        Some(why) => Err(Refused::NotPublic(ip, why)),
    }
}

fn why_not_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => why_not_public_v4(v4),
        IpAddr::V6(v6) => why_not_public_v6(v6),
    }
}

fn why_not_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => "this network",
        (10, _, _) => "private",
        (100, 64..=127, _) => "shared address space",
        (127, _, _) => "loopback",
        (169, 254, _) => "link-local or cloud metadata",
        (172, 16..=31, _) => "private",
        (192, 0, 0) => "IETF protocol assignments",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (192, 88, 99) => "6to4 relay",
        (192, 168, _) => "private",
        (198, 18..=19, _) => "benchmarking",
        (224..=239, _, _) => "multicast",
        (240..=255, _, _) => "reserved or broadcast",
        _ => return None,
    })
}

fn why_not_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return why_not_public_v4(v4);
    }
    let s = ip.segments();
    Some(match s {
        [0, 0, 0, 0, 0, 0, 0, 0] => "unspecified",
        [0, 0, 0, 0, 0, 0, 0, 1] => "loopback",
        // IPv4-compatible (deprecated) and NAT64: judged by the IPv4 inside.
        [0, 0, 0, 0, 0, 0, _, _] | [0x64, 0xff9b, 0, 0, 0, 0, _, _] => {
            let v4 = Ipv4Addr::new(
                (s[6] >> 8) as u8,
                (s[6] & 0xff) as u8,
                (s[7] >> 8) as u8,
                (s[7] & 0xff) as u8,
            );
            return why_not_public_v4(v4).or(Some("IPv4 embedded in IPv6"));
        }
        [0x2001, 0xdb8, ..] => "documentation",
        [0x2002, ..] => "6to4",
        _ if s[0] & 0xfe00 == 0xfc00 => "unique local",
        _ if s[0] & 0xffc0 == 0xfe80 => "link-local",
        _ if s[0] & 0xffc0 == 0xfec0 => "site-local",
        _ if s[0] & 0xff00 == 0xff00 => "multicast",
        _ => return None,
    })
}

/// The push client's resolver: a name resolves only to public addresses,
/// unless it is on the allowlist; a name with none left fails to resolve,
/// so nothing is sent. (An address written in a URL is not resolved:
/// [`check_form`] judges it before every send.)
#[derive(Debug, Clone)]
pub struct Guard {
    pub allow: Arc<Allow>,
}

impl reqwest::dns::Resolve for Guard {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let allowed = allow.allows(&host, None);
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| allowed || why_not_public(a.ip()).is_none())
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} has no public address").into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn refused(ip: &str) -> bool {
        public(ip.parse().unwrap()).is_err()
    }

    /// Never by sending anything: these ranges are only judged here.
    #[test]
    fn private_link_local_and_metadata_ranges_are_refused() {
        for ip in [
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.254",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.0.1",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "127.1.2.3",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "::7f00:1",
            "2001:db8::1",
        ] {
            assert!(refused(ip), "{ip} must be refused");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "172.15.255.255",
            "100.128.0.1",
            "192.169.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!refused(ip), "{ip} is public");
        }
    }

    #[test]
    fn forms_are_checked_before_any_lookup() {
        let none = Allow::default();
        assert_eq!(
            check_form("http://push.example.com/x", &none),
            Err(Refused::NotHttps)
        );
        assert_eq!(
            check_form("ftp://push.example.com/x", &none),
            Err(Refused::NotHttps)
        );
        assert_eq!(check_form("not a url", &none), Err(Refused::NotAUrl));
        assert_eq!(
            check_form("https://user:pw@push.example.com/x", &none),
            Err(Refused::Credentials)
        );
        assert!(matches!(
            check_form("https://127.0.0.1/x", &none),
            Err(Refused::NotPublic(..))
        ));
        assert!(matches!(
            check_form("https://[::1]:8443/x", &none),
            Err(Refused::NotPublic(..))
        ));
        assert!(matches!(
            check_form("https://0x7f000001/x", &none),
            Err(Refused::NotPublic(..))
        ));
        assert!(check_form("https://push.example.com/x", &none).is_ok());
        let allow = Allow::new(&["127.0.0.1:9000".into()]);
        assert!(
            check_form("http://127.0.0.1:9000/x", &allow)
                .unwrap()
                .allowed
        );
        assert!(matches!(
            check_form("http://127.0.0.1:9001/x", &allow),
            Err(Refused::NotHttps)
        ));
        assert!(matches!(
            check_form("https://127.0.0.1:9001/x", &allow),
            Err(Refused::NotPublic(..))
        ));
    }
}
