//! The rules for `webops_deploy_app`'s `repository`: which URLs may be handed to WebOps to
//! clone, checked before anything is sent upstream.
//!
//! Accepted: `https://host/path`; `http://host/path`, `ssh://[user@]host[:port]/path` and the
//! scp-like `[user@]host:path` only when [`RepositoryPolicy::schemes`] names them. Refused:
//! every other scheme (`file:`, `javascript:`, `git:`, `ext::` ...), local paths, credentials
//! (a password anywhere; any user name in an `http(s)` URL; for `ssh` and scp-like forms only
//! a plain user name such as `git`), whitespace and control characters, and hosts that name
//! the WebOps server's own network: loopback, private (RFC 1918, CGNAT `100.64.0.0/10`, IPv6
//! ULA `fc00::/7`), link-local, unspecified, broadcast, multicast and reserved addresses
//! (IPv4-mapped and NAT64 IPv6 forms included), cloud metadata addresses and names,
//! `localhost` and `*.localhost`, `*.internal`, `*.local`, `*.home.arpa` and names without a
//! dot — unless the host is one of [`RepositoryPolicy::allowed_hosts`].
//!
//! URLs are parsed by the WHATWG rules of the `url` crate, so numeric disguises of an address
//! (`https://0x7f.1/`, `https://2130706433/`, `https://127.0.0.%31/`) are read as the address
//! they mean, and the URL handed to WebOps is the one that was checked, in its normalized
//! form. No name is resolved: a public name whose DNS answer is a private address is not
//! caught here, so the WebOps server's egress must be firewalled as well.

use std::net::{Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

use crate::config::{RepositoryPolicy, RepositoryScheme};

/// The longest repository URL accepted, in bytes.
const MAX_LEN: usize = 2048;

/// Checks `repository` against `policy`. Returns the URL to hand to WebOps (normalized for
/// the URL forms, as given for the scp-like form), or a message that says what was wrong and
/// what is allowed. The message never repeats the URL's user part.
pub(crate) fn check_repository(
    repository: &str,
    policy: &RepositoryPolicy,
) -> Result<String, String> {
    checked(repository, policy).map_err(|reason| refusal(&reason, policy))
}

/// The refusal message for `reason`.
fn refusal(reason: &str, policy: &RepositoryPolicy) -> String {
    let examples: Vec<&str> = RepositoryScheme::ALL
        .iter()
        .filter(|s| policy.allows_scheme(**s))
        .map(|s| example(*s))
        .collect();
    format!(
        "repository must be {} of a public Git host, without credentials; {reason}. Allowed: \
         {}. An operator can allow other forms with [webops] repository_schemes (\"https\", \
         \"http\", \"ssh\", \"scp\") and internal hosts with [webops] allowed_repository_hosts.",
        forms(policy),
        examples.join(" or ")
    )
}

/// "an https:// URL", "an https:// or ssh:// URL or an scp-like user@host:path" ...
fn forms(policy: &RepositoryPolicy) -> String {
    let urls: Vec<&str> = [
        (RepositoryScheme::Https, "https://"),
        (RepositoryScheme::Http, "http://"),
        (RepositoryScheme::Ssh, "ssh://"),
    ]
    .into_iter()
    .filter(|(s, _)| policy.allows_scheme(*s))
    .map(|(_, prefix)| prefix)
    .collect();
    let urls = match urls.as_slice() {
        [] => None,
        [one] => Some(format!("an {one} URL")),
        [first @ .., last] => Some(format!("an {} or {last} URL", first.join(", "))),
    };
    let scp = policy
        .allows_scheme(RepositoryScheme::Scp)
        .then_some("an scp-like user@host:path");
    match (urls, scp) {
        (Some(urls), Some(scp)) => format!("{urls} or {scp}"),
        (Some(urls), None) => urls,
        (None, Some(scp)) => scp.to_owned(),
        (None, None) => "a URL of a form this server accepts (it accepts none)".to_owned(),
    }
}

/// One example of each form.
fn example(scheme: RepositoryScheme) -> &'static str {
    match scheme {
        RepositoryScheme::Https => "https://host/path (e.g. https://github.com/acme/shop.git)",
        RepositoryScheme::Http => "http://host/path",
        RepositoryScheme::Ssh => "ssh://git@host/path",
        RepositoryScheme::Scp => "git@host:path (e.g. git@github.com:acme/shop.git)",
    }
}

/// The checks; `Err` is the reason alone.
fn checked(repository: &str, policy: &RepositoryPolicy) -> Result<String, String> {
    if repository.is_empty() {
        return Err("it is empty".to_owned());
    }
    if repository.len() > MAX_LEN {
        return Err(format!("it is longer than {MAX_LEN} bytes"));
    }
    if repository
        .chars()
        .any(|c| c.is_control() || c.is_whitespace())
    {
        return Err("it contains whitespace or a control character".to_owned());
    }
    if repository.contains('\\') {
        return Err("it contains a backslash".to_owned());
    }
    if let Some((scheme, _)) = repository.split_once("://") {
        let form = match scheme.to_ascii_lowercase().as_str() {
            "https" => RepositoryScheme::Https,
            "http" => RepositoryScheme::Http,
            "ssh" => RepositoryScheme::Ssh,
            _ => return Err(format!("{} URLs are not accepted", shown_scheme(scheme))),
        };
        if !policy.allows_scheme(form) {
            return Err(format!("{form}:// URLs are not accepted on this server"));
        }
        return checked_url(repository, form, policy);
    }
    match scp_parts(repository, policy) {
        Some(parts) => checked_scp(repository, parts, policy),
        None => match repository.split_once(':') {
            Some((scheme, _)) => Err(format!("{} URLs are not accepted", shown_scheme(scheme))),
            None => Err("it is not a URL (a local path or a bare name is not accepted)".to_owned()),
        },
    }
}

/// A scheme as shown in a message: `file:` when it looks like one, else "these".
fn shown_scheme(scheme: &str) -> String {
    let looks_like_scheme = !scheme.is_empty()
        && scheme.len() <= 32
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if looks_like_scheme {
        format!("{}:", scheme.to_ascii_lowercase())
    } else {
        "such".to_owned()
    }
}

/// An `https`, `http` or `ssh` URL.
fn checked_url(
    repository: &str,
    form: RepositoryScheme,
    policy: &RepositoryPolicy,
) -> Result<String, String> {
    let url = Url::parse(repository).map_err(|e| format!("it is not a valid URL ({e})"))?;
    if url.password().is_some() {
        return Err(
            "it contains a password (credentials never belong in the URL; give WebOps \
                    access to the repository instead)"
                .to_owned(),
        );
    }
    if form == RepositoryScheme::Ssh {
        check_user(url.username())?;
    } else if !url.username().is_empty() {
        return Err(format!(
            "it contains a user name, which an {form}:// URL must not (credentials never \
             belong in the URL)"
        ));
    }
    let host = match url.host() {
        None => return Err("it has no host".to_owned()),
        // ssh is not a special scheme: its host is opaque to the URL parser, so it is read
        // again as an https host would be (numeric forms, case, percent-encoding).
        Some(Host::Domain(name)) if form == RepositoryScheme::Ssh => special_host(name)?,
        Some(host) => host.to_owned(),
    };
    check_host(&host, policy)?;
    if matches!(url.path(), "" | "/") {
        return Err("it names no repository path".to_owned());
    }
    Ok(url.to_string())
}

/// `(user, host, path)` of an scp-like `[user@]host:path`, when `repository` is one: a user
/// part before the host, or a colon after a host with a dot, brackets or a host allowed by
/// name (so `javascript:alert(1)` is read as a scheme).
fn scp_parts<'a>(
    repository: &'a str,
    policy: &RepositoryPolicy,
) -> Option<(&'a str, &'a str, &'a str)> {
    let head = &repository[..repository.find('/').unwrap_or(repository.len())];
    let (user, rest) = match head.rfind('@') {
        Some(at) => (&repository[..at], &repository[at + 1..]),
        None => ("", repository),
    };
    // An IPv6 literal holds colons: the host ends at its closing bracket.
    let (host, path) = if rest.starts_with('[') {
        let close = rest.find("]:")?;
        (&rest[..=close], &rest[close + 2..])
    } else {
        rest.split_once(':')?
    };
    if host.contains('/') {
        return None;
    }
    let looks_scp =
        !user.is_empty() || host.contains('.') || host.starts_with('[') || policy.allows_host(host);
    looks_scp.then_some((user, host, path))
}

/// An scp-like `[user@]host:path`.
fn checked_scp(
    repository: &str,
    (user, host, path): (&str, &str, &str),
    policy: &RepositoryPolicy,
) -> Result<String, String> {
    if !policy.allows_scheme(RepositoryScheme::Scp) {
        return Err("the scp-like form user@host:path is not accepted on this server".to_owned());
    }
    if user.contains(':') {
        return Err(
            "it contains a password (credentials never belong in the URL; give WebOps \
                    access to the repository instead)"
                .to_owned(),
        );
    }
    check_user(user)?;
    let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(ip) => match ip.parse::<Ipv6Addr>() {
            Ok(ip) => Host::Ipv6(ip),
            Err(_) => return Err("its host is not a valid IPv6 address".to_owned()),
        },
        None => special_host(host)?,
    };
    check_host(&host, policy)?;
    if path.is_empty() || path == "/" {
        return Err("it names no repository path".to_owned());
    }
    if path.starts_with('-') {
        return Err("its path starts with '-'".to_owned());
    }
    Ok(repository.to_owned())
}

/// The user name of an ssh or scp-like form: empty, or letters, digits, `.`, `_`, `-`, not
/// starting with `-`.
fn check_user(user: &str) -> Result<(), String> {
    let plain = user
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if plain && !user.starts_with('-') && user.len() <= 64 {
        Ok(())
    } else {
        Err(
            "its user name is not a plain name such as git (credentials never belong in the \
             URL)"
                .to_owned(),
        )
    }
}

/// A host name read as the host of an https URL: numeric IPv4 forms become addresses,
/// names are lowercased and percent-decoded.
fn special_host(name: &str) -> Result<Host<String>, String> {
    if name.is_empty() {
        return Err("it has no host".to_owned());
    }
    if name.contains(['/', '?', '#', '@', '[', ']']) {
        return Err("its host is not a valid host name".to_owned());
    }
    let url = Url::parse(&format!("https://{name}/"))
        .map_err(|_| "its host is not a valid host name".to_owned())?;
    url.host()
        .map(|h| h.to_owned())
        .ok_or_else(|| "it has no host".to_owned())
}

/// Whether `host` may be cloned from: allowed by name, or neither internal nor special.
fn check_host(host: &Host<String>, policy: &RepositoryPolicy) -> Result<(), String> {
    let shown = match host {
        Host::Domain(name) => name.clone(),
        Host::Ipv4(ip) => ip.to_string(),
        Host::Ipv6(ip) => ip.to_string(),
    };
    if policy.allows_host(&shown) {
        return Ok(());
    }
    let problem = match host {
        Host::Domain(name) => domain_problem(name),
        Host::Ipv4(ip) => ipv4_problem(*ip),
        Host::Ipv6(ip) => ipv6_problem(*ip),
    };
    match problem {
        Some(problem) => Err(format!("{shown} {problem}")),
        None => Ok(()),
    }
}

/// Metadata services by name.
const METADATA_NAMES: &[&str] = &[
    "metadata",
    "metadata.google.internal",
    "metadata.goog",
    "metadata.azure.com",
    "instance-data",
    "instance-data.ec2.internal",
];

/// Suffixes of names that only resolve inside a network.
const INTERNAL_SUFFIXES: &[&str] = &[".internal", ".local", ".localdomain", ".home.arpa", ".lan"];

/// What is wrong with a host name, if anything.
fn domain_problem(name: &str) -> Option<String> {
    let name = name.trim_end_matches('.');
    let valid = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        });
    if !valid {
        return Some("is not a valid host name".to_owned());
    }
    if METADATA_NAMES.contains(&name) {
        return Some("is a cloud metadata service".to_owned());
    }
    if name == "localhost" || name.ends_with(".localhost") {
        return Some("is a loopback name".to_owned());
    }
    if let Some(suffix) = INTERNAL_SUFFIXES.iter().find(|s| name.ends_with(**s)) {
        return Some(format!("is an internal name (*{suffix})"));
    }
    if !name.contains('.') {
        return Some(
            "is a single-label name (no dot), which resolves inside the server's network"
                .to_owned(),
        );
    }
    None
}

/// Metadata services by IPv4 address.
const METADATA_V4: &[Ipv4Addr] = &[
    Ipv4Addr::new(169, 254, 169, 254),
    Ipv4Addr::new(169, 254, 170, 2),
    Ipv4Addr::new(169, 254, 169, 123),
    Ipv4Addr::new(100, 100, 100, 200),
];

/// What is wrong with an IPv4 address, if anything.
fn ipv4_problem(ip: Ipv4Addr) -> Option<String> {
    let [a, b, c, _] = ip.octets();
    let problem = if METADATA_V4.contains(&ip) {
        "is a cloud metadata address"
    } else if ip.is_loopback() {
        "is a loopback address"
    } else if ip.is_unspecified() || a == 0 {
        "is an unspecified address"
    } else if ip.is_broadcast() {
        "is the broadcast address"
    } else if ip.is_private() {
        "is a private address (RFC 1918)"
    } else if a == 100 && (64..128).contains(&b) {
        "is a shared (CGNAT, 100.64.0.0/10) address"
    } else if ip.is_link_local() {
        "is a link-local address"
    } else if ip.is_multicast() {
        "is a multicast address"
    } else if a >= 240
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b & 0xfe) == 18)
        || ip.is_documentation()
    {
        "is a reserved address"
    } else {
        return None;
    };
    Some(problem.to_owned())
}

/// What is wrong with an IPv6 address, if anything.
fn ipv6_problem(ip: Ipv6Addr) -> Option<String> {
    let segments = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return ipv4_problem(v4).map(|p| format!("(IPv4-mapped {v4}) {p}"));
    }
    // NAT64 (64:ff9b::/96) and the deprecated IPv4-compatible ::a.b.c.d carry an IPv4 address.
    let embedded = segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || segments[..6] == [0; 6];
    if embedded && !ip.is_loopback() && !ip.is_unspecified() {
        let o = ip.octets();
        let v4 = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
        if let Some(problem) = ipv4_problem(v4) {
            return Some(format!("(IPv4 {v4} inside) {problem}"));
        }
    }
    let problem = if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        "is a cloud metadata address"
    } else if ip.is_loopback() {
        "is a loopback address"
    } else if ip.is_unspecified() {
        "is an unspecified address"
    } else if (segments[0] & 0xfe00) == 0xfc00 {
        "is a private address (unique local, fc00::/7)"
    } else if (segments[0] & 0xffc0) == 0xfe80 || (segments[0] & 0xffc0) == 0xfec0 {
        "is a link-local address"
    } else if ip.is_multicast() {
        "is a multicast address"
    } else if segments[0] == 0x2001 && segments[1] == 0xdb8 {
        "is a reserved address"
    } else if segments[0] == 0x2002 {
        // 6to4: the IPv4 address follows the prefix.
        let v4 = Ipv4Addr::new(
            (segments[1] >> 8) as u8,
            segments[1] as u8,
            (segments[2] >> 8) as u8,
            segments[2] as u8,
        );
        return ipv4_problem(v4).map(|p| format!("(6to4 of {v4}) {p}"));
    } else {
        return None;
    };
    Some(problem.to_owned())
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    fn refused_ip(ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => ipv4_problem(v4).is_some(),
            IpAddr::V6(v6) => ipv6_problem(v6).is_some(),
        }
    }

    fn https_only() -> RepositoryPolicy {
        RepositoryPolicy::default()
    }

    fn every_form() -> RepositoryPolicy {
        RepositoryPolicy::default().schemes(RepositoryScheme::ALL.iter().copied())
    }

    fn refused(repository: &str, policy: &RepositoryPolicy) -> String {
        match check_repository(repository, policy) {
            Ok(url) => panic!("{repository:?} was accepted as {url:?}"),
            Err(message) => message,
        }
    }

    #[test]
    fn https_urls_of_public_hosts_pass_normalized() {
        let p = https_only();
        for (given, sent) in [
            (
                "https://github.com/acme/shop.git",
                "https://github.com/acme/shop.git",
            ),
            (
                "HTTPS://GitHub.com/acme/shop",
                "https://github.com/acme/shop",
            ),
            (
                "https://gitlab.example.com:8443/a/b.git",
                "https://gitlab.example.com:8443/a/b.git",
            ),
            ("https://8.8.8.8/a.git", "https://8.8.8.8/a.git"),
            (
                "https://[2606:4700::1]/a.git",
                "https://[2606:4700::1]/a.git",
            ),
        ] {
            assert_eq!(check_repository(given, &p).as_deref(), Ok(sent), "{given}");
        }
    }

    #[test]
    fn other_schemes_and_local_paths_are_refused() {
        let p = every_form();
        for (repository, expected) in [
            ("file:///etc/passwd", "file: URLs are not accepted"),
            ("FILE:///etc/passwd", "file: URLs are not accepted"),
            ("file:/etc/passwd", "file: URLs are not accepted"),
            ("javascript:alert(1)", "javascript: URLs are not accepted"),
            ("git://github.com/a/b.git", "git: URLs are not accepted"),
            ("ext::sh -c touch% pwned", "whitespace"),
            ("ext::sh", "ext: URLs are not accepted"),
            ("ftp://github.com/a", "ftp: URLs are not accepted"),
            ("/etc/passwd", "not a URL"),
            ("./repo", "not a URL"),
            ("github.com/acme/shop", "not a URL"),
            ("", "empty"),
        ] {
            let message = refused(repository, &p);
            assert!(message.contains(expected), "{repository}: {message}");
        }
    }

    #[test]
    fn forms_beyond_https_need_configuration() {
        let p = https_only();
        for (repository, expected) in [
            (
                "http://github.com/a/b.git",
                "http:// URLs are not accepted on this server",
            ),
            (
                "ssh://git@github.com/a/b.git",
                "ssh:// URLs are not accepted on this server",
            ),
            (
                "git@github.com:a/b.git",
                "scp-like form user@host:path is not accepted on this server",
            ),
        ] {
            let message = refused(repository, &p);
            assert!(message.contains(expected), "{repository}: {message}");
            assert!(message.contains("Allowed: https://host/path"), "{message}");
            assert!(message.contains("[webops] repository_schemes"), "{message}");
        }
        let p = every_form();
        for repository in [
            "http://github.com/a/b.git",
            "ssh://git@github.com/a/b.git",
            "ssh://github.com:2222/a/b.git",
            "git@github.com:a/b.git",
            "github.com:a/b.git",
        ] {
            assert!(check_repository(repository, &p).is_ok(), "{repository}");
        }
    }

    #[test]
    fn credentials_are_refused_and_never_repeated() {
        let p = every_form();
        for (repository, expected) in [
            ("https://user:hunter2@github.com/a/b.git", "password"),
            ("https://hunter2@github.com/a/b.git", "user name"),
            (
                "https://ghp_abcdefghijklmnop:x-oauth-basic@github.com/a",
                "password",
            ),
            ("http://user:hunter2@github.com/a/b.git", "password"),
            ("ssh://git:hunter2@github.com/a/b.git", "password"),
            ("git:hunter2@github.com:a/b.git", "password"),
            ("-oProxyCommand=x@github.com:a/b.git", "not a plain name"),
        ] {
            let message = refused(repository, &p);
            assert!(message.contains(expected), "{repository}: {message}");
            assert!(!message.contains("hunter2"), "{message}");
            assert!(!message.contains("ghp_"), "{message}");
        }
    }

    #[test]
    fn internal_addresses_are_refused_in_every_disguise() {
        let p = every_form();
        for (repository, expected) in [
            ("https://127.0.0.1/x.git", "127.0.0.1 is a loopback address"),
            ("https://0x7f.1/x", "127.0.0.1 is a loopback address"),
            ("https://2130706433/x", "127.0.0.1 is a loopback address"),
            ("https://0177.0.0.1/x", "127.0.0.1 is a loopback address"),
            ("https://127.1/x", "127.0.0.1 is a loopback address"),
            ("https://127.0.0.%31/x", "127.0.0.1 is a loopback address"),
            ("https://[::1]/x", "::1 is a loopback address"),
            ("https://[::ffff:127.0.0.1]/x", "IPv4-mapped 127.0.0.1"),
            ("https://[::ffff:10.0.0.5]/x", "private"),
            ("https://[64:ff9b::a9fe:a9fe]/x", "metadata"),
            ("https://10.0.0.5/x", "10.0.0.5 is a private address"),
            ("https://172.16.3.4/x", "private"),
            ("https://192.168.1.1/x", "private"),
            ("https://100.64.0.1/x", "CGNAT"),
            ("https://169.254.169.254/latest/meta-data/", "metadata"),
            ("http://169.254.169.254/latest/meta-data/", "metadata"),
            ("https://169.254.1.1/x", "link-local"),
            ("https://0.0.0.0/x", "unspecified"),
            ("https://0/x", "unspecified"),
            ("https://255.255.255.255/x", "broadcast"),
            ("https://224.0.0.1/x", "multicast"),
            ("https://[fd00:ec2::254]/x", "metadata"),
            ("https://[fc00::1]/x", "unique local"),
            ("https://[fe80::1]/x", "link-local"),
            ("https://[::]/x", "unspecified"),
            ("https://[ff02::1]/x", "multicast"),
            ("https://[2002:7f00:1::]/x", "6to4 of 127.0.0.1"),
            ("https://localhost/x", "loopback name"),
            ("https://LOCALHOST./x", "loopback name"),
            ("https://git.localhost/x", "loopback name"),
            ("https://metadata.google.internal/x", "metadata"),
            ("https://metadata/x", "metadata"),
            ("https://git.corp.internal/x", "internal name"),
            ("https://printer.local/x", "internal name"),
            ("https://gitserver/x", "single-label"),
            ("ssh://git@0x7f.1/x", "127.0.0.1 is a loopback address"),
            ("ssh://git@LocalHost/x", "loopback name"),
            ("git@127.0.0.1:x.git", "loopback address"),
            ("git@[::1]:x.git", "loopback address"),
            ("git@0x7f.1:x.git", "127.0.0.1 is a loopback address"),
            ("git@metadata.google.internal:x.git", "metadata"),
            ("git@gitserver:x.git", "single-label"),
        ] {
            let message = refused(repository, &p);
            assert!(message.contains(expected), "{repository}: {message}");
            assert!(message.contains("allowed_repository_hosts"), "{message}");
        }
    }

    #[test]
    fn allowed_hosts_open_exactly_those_hosts() {
        let p = every_form().allowed_hosts(["127.0.0.1", "GitServer", "git.corp.internal", "::1"]);
        for repository in [
            "http://127.0.0.1:8123/fixture.git",
            "https://0x7f.1/x.git",
            "https://gitserver/x.git",
            "https://git.corp.internal/x.git",
            "git@gitserver:x.git",
            "gitserver:x.git",
            "ssh://git@[::1]:22/x.git",
        ] {
            assert!(check_repository(repository, &p).is_ok(), "{repository}");
        }
        for repository in ["https://127.0.0.2/x", "https://other.internal/x"] {
            refused(repository, &p);
        }
        // An allowed host does not allow credentials or other schemes.
        refused("https://user:pw@127.0.0.1/x", &p);
        refused("file://127.0.0.1/etc/passwd", &p);
    }

    #[test]
    fn odd_characters_and_shapes_are_refused_without_panicking() {
        let p = every_form();
        for repository in [
            "https://github.com/a b",
            " https://github.com/a",
            "https://github.com/a\n",
            "https://github.com/a\u{0}",
            "https://github.com\\@evil.com/a",
            "https://",
            "https:///a",
            "https://github.com",
            "https://github.com/",
            "https://[::1/x",
            "https://-evil.com/x",
            "ssh://-oProxyCommand=touch/x",
            "git@github.com:-x",
            "git@github.com:",
            "git@[nonsense]:x",
            "@:",
            ":",
            "::",
            "[",
            "é:ü",
            "https://ex%41mple.com/%",
        ] {
            let _ = check_repository(repository, &p);
        }
        assert!(refused("https://github.com/a b", &p).contains("whitespace"));
        assert!(refused("https://github.com\\@evil.com/a", &p).contains("backslash"));
        let long = format!("https://github.com/{}", "a".repeat(3000));
        assert!(refused(&long, &p).contains("longer than"));
    }

    #[test]
    fn the_message_names_the_forms_in_use() {
        let message = refused("file:///etc/passwd", &https_only());
        assert!(
            message.starts_with("repository must be an https:// URL of a public Git host"),
            "{message}"
        );
        let panel = RepositoryPolicy::default()
            .schemes([RepositoryScheme::Https, RepositoryScheme::Http])
            .allowed_hosts(["127.0.0.1"]);
        let message = refused("file:///etc/passwd", &panel);
        assert!(
            message.starts_with("repository must be an https:// or http:// URL"),
            "{message}"
        );
        let message = refused("file:///etc/passwd", &every_form());
        assert!(
            message.contains("an https://, http:// or ssh:// URL or an scp-like user@host:path"),
            "{message}"
        );
    }

    #[test]
    fn public_addresses_pass() {
        for ip in ["8.8.8.8", "140.82.112.3", "2606:4700::1111", "100.128.0.1"] {
            assert!(!refused_ip(ip.parse().unwrap()), "{ip}");
        }
    }
}
