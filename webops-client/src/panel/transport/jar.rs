//! The panel session's cookie jar: the cookies the panel set, by name, and how many logins
//! produced them.

use std::collections::BTreeMap;

use reqwest::header::{self, HeaderMap, HeaderValue};

/// The cookies the panel set, by name, and how many logins produced them.
#[derive(Debug, Default, Clone)]
pub(super) struct Jar {
    pub(super) cookies: BTreeMap<String, String>,
    pub(super) logins: u64,
}

impl Jar {
    pub(super) fn header(&self) -> Option<HeaderValue> {
        if self.cookies.is_empty() {
            return None;
        }
        let text = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut value = HeaderValue::from_str(&text).ok()?;
        value.set_sensitive(true);
        Some(value)
    }

    /// Takes the `Set-Cookie` headers of an answer: a cookie with `Max-Age=0` or an empty
    /// value is removed.
    pub(super) fn store(&mut self, headers: &HeaderMap) {
        for value in headers.get_all(header::SET_COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            let mut parts = text.split(';');
            let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let (name, value) = (name.trim(), value.trim().trim_matches('"'));
            let expired = parts.any(|attr| {
                let attr = attr.trim().to_ascii_lowercase();
                attr == "max-age=0" || attr.starts_with("max-age=-")
            });
            if expired || value.is_empty() {
                self.cookies.remove(name);
            } else if !name.is_empty() {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jar_keeps_and_drops_cookies() {
        let mut jar = Jar::default();
        let mut headers = HeaderMap::new();
        headers.append(
            header::SET_COOKIE,
            HeaderValue::from_static("csrftoken=abc; Path=/; SameSite=Lax"),
        );
        headers.append(
            header::SET_COOKIE,
            HeaderValue::from_static("sessionid=s1; HttpOnly; Max-Age=1209600"),
        );
        jar.store(&headers);
        assert_eq!(jar.get("csrftoken"), Some("abc"));
        assert_eq!(jar.get("sessionid"), Some("s1"));
        let mut gone = HeaderMap::new();
        gone.append(
            header::SET_COOKIE,
            HeaderValue::from_static("sessionid=\"\"; Max-Age=0; Path=/"),
        );
        jar.store(&gone);
        assert_eq!(jar.get("sessionid"), None);
        assert_eq!(jar.header().unwrap().to_str().unwrap(), "csrftoken=abc");
    }
}
