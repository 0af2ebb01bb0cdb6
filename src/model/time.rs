//! `Timestamp`: an instant in UTC with nanosecond resolution.
//!
//! Records carry timestamps as a plain `i64` of nanoseconds since the Unix epoch, which
//! is what the on-disk encoding stores and what the indexes sort on. Human-readable
//! formats (JSON) see RFC 3339 strings instead, so JSON lines stay readable and keep the
//! shape existing consumers of call events expect (`"ts": "2026-11-21T10:00:00Z"`).
//!
//! # Invariants
//! - The range is that of `i64` nanoseconds: years 1677 to 2262. Parsing a string
//!   outside it is an error, never a wrapped value.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// An instant in UTC, stored as nanoseconds since the Unix epoch.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The Unix epoch, also the value of an unset timestamp.
    pub const EPOCH: Timestamp = Timestamp(0);
    /// The earliest representable instant.
    pub const MIN: Timestamp = Timestamp(i64::MIN);
    /// The latest representable instant.
    pub const MAX: Timestamp = Timestamp(i64::MAX);

    /// The current wall-clock time.
    pub fn now() -> Timestamp {
        Timestamp::from_datetime(Utc::now())
    }

    /// A timestamp from nanoseconds since the Unix epoch.
    pub const fn from_unix_nanos(nanos: i64) -> Timestamp {
        Timestamp(nanos)
    }

    /// A timestamp from milliseconds since the Unix epoch, saturating at the ends.
    pub const fn from_unix_millis(millis: i64) -> Timestamp {
        Timestamp(millis.saturating_mul(1_000_000))
    }

    /// Nanoseconds since the Unix epoch.
    pub const fn unix_nanos(self) -> i64 {
        self.0
    }

    /// Milliseconds since the Unix epoch (rounded towards negative infinity).
    pub const fn unix_millis(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    /// The instant as a chrono `DateTime`.
    pub fn to_datetime(self) -> DateTime<Utc> {
        DateTime::from_timestamp_nanos(self.0)
    }

    /// A timestamp from a chrono `DateTime`; instants outside the `i64` nanosecond
    /// range saturate to [`Timestamp::MIN`] or [`Timestamp::MAX`].
    pub fn from_datetime(at: DateTime<Utc>) -> Timestamp {
        match at.timestamp_nanos_opt() {
            Some(nanos) => Timestamp(nanos),
            None if at.timestamp() < 0 => Timestamp::MIN,
            None => Timestamp::MAX,
        }
    }

    /// Parses an RFC 3339 string such as `2026-11-21T10:00:00.5Z` or with an offset.
    pub fn parse_rfc3339(text: &str) -> Result<Timestamp, String> {
        let at = DateTime::parse_from_rfc3339(text)
            .map_err(|e| format!("`{text}` is not an RFC 3339 timestamp: {e}"))?;
        at.with_timezone(&Utc)
            .timestamp_nanos_opt()
            .map(Timestamp)
            .ok_or_else(|| format!("`{text}` is outside the years 1677 to 2262"))
    }

    /// The RFC 3339 form in UTC, with as many fractional digits as needed.
    pub fn to_rfc3339(self) -> String {
        self.to_datetime()
            .to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.to_rfc3339())
        } else {
            serializer.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
            Timestamp::parse_rfc3339(&text).map_err(de::Error::custom)
        } else {
            i64::deserialize(deserializer).map(Timestamp)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_form_is_rfc3339_and_round_trips() {
        let at = Timestamp::from_unix_nanos(1_763_719_200_123_000_000);
        let json = serde_json::to_string(&at).unwrap();
        assert_eq!(json, "\"2025-11-21T10:00:00.123Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), at);
    }

    #[test]
    fn msgpack_form_is_an_integer() {
        let at = Timestamp::from_unix_nanos(-5);
        let bytes = rmp_serde::to_vec(&at).unwrap();
        assert_eq!(rmp_serde::from_slice::<i64>(&bytes).unwrap(), -5);
        assert_eq!(rmp_serde::from_slice::<Timestamp>(&bytes).unwrap(), at);
    }

    #[test]
    fn offsets_are_normalised_to_utc() {
        let at = Timestamp::parse_rfc3339("2026-01-01T02:00:00+02:00").unwrap();
        assert_eq!(at.to_rfc3339(), "2026-01-01T00:00:00Z");
    }

    #[test]
    fn out_of_range_strings_are_errors() {
        assert!(Timestamp::parse_rfc3339("9999-01-01T00:00:00Z").is_err());
        assert!(Timestamp::parse_rfc3339("yesterday").is_err());
    }
}
