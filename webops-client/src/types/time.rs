//! Reading the API's timestamps. WebOps writes them in UTC, as
//! `YYYY-MM-DDTHH:MM:SS[.fraction]` then `Z` or `+00:00`; [`plain_utc`] reads exactly that
//! form directly and everything else goes to chrono's own parser, so the accepted texts and
//! their values are chrono's (a test compares the two). A list of deployments carries two or
//! three timestamps per item, and chrono's general parser was a measurable share of decoding
//! one.

use std::fmt;

use chrono::NaiveDate;
use serde::Deserializer;
use serde::de::{Error, Visitor};

use super::Timestamp;

/// `text` as a timestamp, read as chrono's `DateTime<Utc>` deserializer reads it.
pub(crate) fn parse(text: &str) -> Result<Timestamp, chrono::ParseError> {
    match plain_utc(text) {
        Some(time) => Ok(time),
        None => text.parse(),
    }
}

/// `text` when it is exactly `YYYY-MM-DDTHH:MM:SS` with 1 to 9 fraction digits or none, then
/// `Z` or `+00:00`, and names a real time; `None` for anything else (a leap second, another
/// offset, a space for the `T`), which chrono then reads.
pub(crate) fn plain_utc(text: &str) -> Option<Timestamp> {
    let b = text.as_bytes();
    let b = match b.strip_suffix(b"Z") {
        Some(b) => b,
        None => b.strip_suffix(b"+00:00")?,
    };
    if b.len() < 19 || [b[4], b[7], b[10], b[13], b[16]] != *b"--T::" {
        return None;
    }
    let number = |digits: &[u8]| {
        digits.iter().try_fold(0u32, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    let nanos = match &b[19..] {
        [] => 0,
        [b'.', digits @ ..] if (1..=9).contains(&digits.len()) => {
            number(digits)? * 10u32.pow(9 - digits.len() as u32)
        }
        _ => return None,
    };
    let date = NaiveDate::from_ymd_opt(
        number(&b[0..4])? as i32,
        number(&b[5..7])?,
        number(&b[8..10])?,
    )?;
    let time = date.and_hms_nano_opt(
        number(&b[11..13])?,
        number(&b[14..16])?,
        number(&b[17..19])?,
        nanos,
    )?;
    Some(time.and_utc())
}

/// Deserializes a [`Timestamp`] (a serde `deserialize_with` function), with chrono's errors.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
    d.deserialize_str(TimestampVisitor)
}

/// [`deserialize`] for an optional timestamp: `null` is `None`.
pub(crate) fn deserialize_opt<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Timestamp>, D::Error> {
    d.deserialize_option(OptionVisitor)
}

struct TimestampVisitor;

impl Visitor<'_> for TimestampVisitor {
    type Value = Timestamp;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an RFC 3339 formatted date and time string")
    }

    fn visit_str<E: Error>(self, text: &str) -> Result<Timestamp, E> {
        parse(text).map_err(E::custom)
    }
}

struct OptionVisitor;

impl<'de> Visitor<'de> for OptionVisitor {
    type Value = Option<Timestamp>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an RFC 3339 formatted date and time string or null")
    }

    fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        deserialize(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[test]
    fn reads_every_text_as_chrono_does() {
        let mut texts: Vec<String> = [
            "2025-03-01T12:30:00Z",
            "2025-03-01T12:30:00.5Z",
            "2025-03-01T12:30:00.123Z",
            "2025-03-01T12:30:00.123456Z",
            "2025-03-01T12:30:00.123456789Z",
            "2025-03-01T12:30:00.1234567891Z",
            "2025-03-01T12:30:00.Z",
            "2025-03-01T12:30:60Z",
            "2025-03-01T23:59:60.5Z",
            "2025-03-01T24:00:00Z",
            "2025-03-01T12:60:00Z",
            "2024-02-29T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "2025-13-01T00:00:00Z",
            "2025-00-01T00:00:00Z",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999999Z",
            "+10000-01-01T00:00:00Z",
            "2025-03-01 12:30:00Z",
            "2025-03-01t12:30:00z",
            "2025-03-01T12:30:00+00:00",
            "2025-03-01T12:30:00.123456+00:00",
            "2025-03-01T12:30:00-00:00",
            "2025-03-01T12:30:00+00:00Z",
            "2025-03-01T12:30:00+02:00",
            "2025-03-01T12:30:00",
            "2025-3-01T12:30:00Z",
            "2025-03-01T12:30:0xZ",
            "2025-03-01T12:30:00.-1Z",
            "2025-03-01T12:30:00.1a3Z",
            "2025-03-01T1:30:00.1Z",
            "Z",
            "",
            "é025-03-01T12:30:00Z",
        ]
        .map(String::from)
        .to_vec();
        for day in ["01", "28", "29", "30", "31"] {
            for month in ["01", "02", "04", "12"] {
                for year in ["1900", "2000", "2023", "2024"] {
                    texts.push(format!("{year}-{month}-{day}T07:08:09.01Z"));
                }
            }
        }
        let mut fast = 0;
        for text in &texts {
            fast += usize::from(plain_utc(text).is_some());
            let chrono: Result<Timestamp, _> = text.parse();
            assert_eq!(parse(text), chrono, "{text}");
        }
        assert!(
            fast > texts.len() / 2,
            "the fast path read only {fast} texts"
        );
    }

    #[test]
    fn deserializes_plain_and_optional_timestamps() {
        #[derive(Deserialize)]
        struct Times {
            #[serde(deserialize_with = "deserialize")]
            at: Timestamp,
            #[serde(default, deserialize_with = "deserialize_opt")]
            maybe: Option<Timestamp>,
        }
        let read = |json: &str| serde_json::from_str::<Times>(json);
        let t = read(r#"{"at": "2025-03-01T12:30:00Z", "maybe": "2025-03-01T12:30:00+01:00"}"#)
            .unwrap();
        assert_eq!(t.at.to_rfc3339(), "2025-03-01T12:30:00+00:00");
        assert_eq!(t.maybe.unwrap().to_rfc3339(), "2025-03-01T11:30:00+00:00");
        assert!(
            read(r#"{"at": "2025-03-01T12:30:00Z", "maybe": null}"#)
                .unwrap()
                .maybe
                .is_none()
        );
        assert!(
            read(r#"{"at": "2025-03-01T12:30:00Z"}"#)
                .unwrap()
                .maybe
                .is_none()
        );
        let error = read(r#"{"at": "yesterday"}"#).err().unwrap().to_string();
        assert!(
            error.contains("input contains invalid characters"),
            "{error}"
        );
        let error = read(r#"{"at": 7}"#).err().unwrap().to_string();
        assert!(
            error.contains("an RFC 3339 formatted date and time string"),
            "{error}"
        );
    }
}
