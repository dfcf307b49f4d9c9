//! Typed values of the language: durations, sizes, rates, percentages and booleans.
//!
//! Each parser takes the text of one word and returns the value or a sentence saying what was
//! expected; the validator turns that sentence into a diagnostic at the word's span. Each type
//! also prints itself back the way a user would write it, for `tcluster check`'s summary.

use std::fmt;
use std::time::Duration;

/// A value that is not one of its kind, in words that say what was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UnitError {
    /// Not a value of this kind at all.
    #[error("expected {examples}, found `{found}`")]
    Expected {
        /// What one looks like.
        examples: &'static str,
        /// What was written.
        found: String,
    },
    /// A value of this kind, but one it may not take.
    #[error("{rule}, found `{found}`")]
    Outside {
        /// The rule it breaks.
        rule: &'static str,
        /// What was written.
        found: String,
    },
    /// Too large to hold.
    #[error("`{found}` is out of range for {what}")]
    OutOfRange {
        /// The kind of value.
        what: &'static str,
        /// What was written.
        found: String,
    },
    /// A duration too long to hold.
    #[error("`{0}` is too long a duration")]
    TooLong(String),
    /// An event rate above what tcluster accepts (a bot's posts or jobs, a chat rate limit).
    #[error("`{0}` is more than {MAX_EVENTS_PER_SECOND}/s, the highest rate tcluster accepts")]
    TooFast(String),
}

impl UnitError {
    fn expected(examples: &'static str, found: &str) -> Self {
        UnitError::Expected {
            examples,
            found: found.to_string(),
        }
    }

    fn outside(rule: &'static str, found: &str) -> Self {
        UnitError::Outside {
            rule,
            found: found.to_string(),
        }
    }

    fn out_of_range(what: &'static str, found: &str) -> Self {
        UnitError::OutOfRange {
            what,
            found: found.to_string(),
        }
    }
}

/// Parses a duration: `200ms`, `2s`, `1.5s`, `1m`, `1h`, `500us`, or a sum such as `1m30s`; a
/// bare number is seconds (as the classic lab's `health_check_interval 30`).
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    let mut rest = text;
    let mut seconds = 0.0;
    let mut parts = 0;
    while !rest.is_empty() {
        let (number, after) = split_number(rest);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.' || c == '-' || c == '+')
            .unwrap_or(after.len());
        let unit = &after[..unit_len];
        let value: f64 = parse_number(number).ok_or_else(|| duration_expected(text))?;
        if value < 0.0 {
            return Err(UnitError::outside("a duration cannot be negative", text));
        }
        let seconds_per_unit = match unit {
            "" if parts == 0 && unit_len == after.len() => 1.0,
            "s" | "sec" | "secs" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            _ => return Err(duration_expected(text)),
        };
        seconds += value * seconds_per_unit;
        parts += 1;
        rest = &after[unit_len..];
    }
    if parts == 0 {
        return Err(duration_expected(text));
    }
    // About a thousand years: well past any lecture, and safe for `Duration::from_secs_f64`.
    if seconds > 3.2e10 {
        return Err(UnitError::TooLong(text.to_string()));
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn duration_expected(text: &str) -> UnitError {
    UnitError::expected("a duration such as `200ms`, `2s` or `1m`", text)
}

/// A signed duration in milliseconds, for clock skew (`-2s`, `+500ms`).
pub fn parse_signed_duration_ms(text: &str) -> Result<i64, UnitError> {
    let (negative, magnitude) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let duration = parse_duration(magnitude)
        .map_err(|_| UnitError::expected("a duration such as `-2s` or `500ms`", text))?;
    let ms = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
    Ok(if negative { -ms } else { ms })
}

/// Prints a duration as a user would write it: `250ms`, `2s`, `1.5s`, `2m`, `1m30s`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if d.is_zero() {
        "0s".to_string()
    } else if ms == 0 {
        format!("{}us", d.as_micros())
    } else if ms < 1000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(60_000) && ms >= 60_000 {
        format!("{}m", ms / 60_000)
    } else if ms > 60_000 {
        format!(
            "{}m{}",
            ms / 60_000,
            format_duration(Duration::from_millis((ms % 60_000) as u64))
        )
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{}s", trim_float(ms as f64 / 1000.0))
    }
}

/// An amount of memory or storage, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Size(pub u64);

/// Parses a size: `4GB`, `512MB`, `64KB`, `100B`; `KiB`, `MiB`, `GiB`, `TiB` for powers of 1024.
/// A bare number is bytes.
pub fn parse_size(text: &str) -> Result<Size, UnitError> {
    let (number, unit) = split_number(text);
    let value = parse_number(number).ok_or_else(|| size_expected(text))?;
    let multiplier: f64 = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1.0,
        "KB" | "K" => 1e3,
        "MB" | "M" => 1e6,
        "GB" | "G" => 1e9,
        "TB" | "T" => 1e12,
        "KIB" => 1024.0,
        "MIB" => 1024.0 * 1024.0,
        "GIB" => 1024.0 * 1024.0 * 1024.0,
        "TIB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(size_expected(text)),
    };
    let bytes = value * multiplier;
    if !(0.0..=1.8e19).contains(&bytes) {
        return Err(UnitError::out_of_range("a size", text));
    }
    Ok(Size(bytes.round() as u64))
}

fn size_expected(text: &str) -> UnitError {
    UnitError::expected("a size such as `512MB` or `4GB`", text)
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}",
            scaled(self.0 as f64, &["B", "KB", "MB", "GB", "TB"])
        )
    }
}

/// A link bandwidth, in bits per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rate(pub u64);

/// Parses a rate: `1Gbps`, `10Mbps`, `512Kbps`, `9600bps`. A bare number is bits per second.
pub fn parse_rate(text: &str) -> Result<Rate, UnitError> {
    let (number, unit) = split_number(text);
    let value = parse_number(number).ok_or_else(|| rate_expected(text))?;
    let multiplier: f64 = match unit.to_ascii_lowercase().as_str() {
        "" | "bps" => 1.0,
        "kbps" => 1e3,
        "mbps" => 1e6,
        "gbps" => 1e9,
        "tbps" => 1e12,
        _ => return Err(rate_expected(text)),
    };
    let bits = value * multiplier;
    if !(0.0..=1.8e19).contains(&bits) {
        return Err(UnitError::out_of_range("a rate", text));
    }
    if bits < 1.0 {
        return Err(UnitError::outside(
            "a bandwidth must be more than zero",
            text,
        ));
    }
    Ok(Rate(bits.round() as u64))
}

/// The most events per second a `posts` or `jobs` rate may ask for.
pub const MAX_EVENTS_PER_SECOND: f64 = 1000.0;

/// An event rate: `2/s`, `30/min`, `100/h`, a bare number meaning per second, `0` for none.
/// Returns events per second.
pub fn parse_per_second(text: &str) -> Result<f64, UnitError> {
    let rate = parse_any_per_second(text)?;
    if rate > MAX_EVENTS_PER_SECOND {
        return Err(UnitError::TooFast(text.to_string()));
    }
    Ok(rate)
}

/// A rate written as [`parse_per_second`] reads it, without the ceiling a topology's rates
/// have (a benchmark paces tens of thousands of posts a second).
pub fn parse_any_per_second(text: &str) -> Result<f64, UnitError> {
    let expected = || UnitError::expected("a rate such as `2/s`, `30/min` or `0`", text);
    let (number, unit) = match text.split_once('/') {
        Some((number, unit)) => (number, unit),
        None => (text, "s"),
    };
    let (digits, rest) = split_number(number);
    if !rest.is_empty() {
        return Err(expected());
    }
    let value = parse_number(digits).ok_or_else(expected)?;
    let per: f64 = match unit.to_ascii_lowercase().as_str() {
        "s" | "sec" | "second" => 1.0,
        "m" | "min" | "minute" => 60.0,
        "h" | "hour" => 3600.0,
        _ => return Err(expected()),
    };
    let rate = value / per;
    if rate < 0.0 {
        return Err(UnitError::outside("a rate cannot be negative", text));
    }
    Ok(rate)
}

fn rate_expected(text: &str) -> UnitError {
    UnitError::expected("a rate such as `10Mbps` or `1Gbps`", text)
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}",
            scaled(self.0 as f64, &["bps", "Kbps", "Mbps", "Gbps", "Tbps"])
        )
    }
}

/// A percentage from 0 to 100 (`loss 5%`).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Percent(pub f64);

/// Parses a percentage: `5%`, `0.5%`, or a bare `5`.
pub fn parse_percent(text: &str) -> Result<Percent, UnitError> {
    let number = text.strip_suffix('%').unwrap_or(text);
    let value = parse_number(number)
        .ok_or_else(|| UnitError::expected("a percentage such as `5%`", text))?;
    if !(0.0..=100.0).contains(&value) {
        return Err(UnitError::outside(
            "a percentage is between 0% and 100%",
            text,
        ));
    }
    Ok(Percent(value))
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", trim_float(self.0))
    }
}

/// Parses a Tcl-style boolean: true/false, yes/no, on/off, 1/0 (any case).
pub fn parse_bool(text: &str) -> Result<bool, UnitError> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(UnitError::expected(
            "true or false (or yes/no, on/off, 1/0)",
            text,
        )),
    }
}

/// Splits `12.5ms` into `12.5` and `ms`.
fn split_number(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(text.len());
    (&text[..end], &text[end..])
}

/// A finite decimal number; rejects `inf`, `NaN`, `1e9` and the empty string.
fn parse_number(text: &str) -> Option<f64> {
    if text.is_empty() || !text.chars().any(|c| c.is_ascii_digit()) {
        return None;
    }
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

fn scaled(mut value: f64, units: &[&str]) -> String {
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < units.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!(
        "{}{}",
        trim_float((value * 100.0).round() / 100.0),
        units[unit]
    )
}

fn trim_float(value: f64) -> String {
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_second_rates() {
        assert_eq!(parse_per_second("2/s"), Ok(2.0));
        assert_eq!(parse_per_second("2"), Ok(2.0));
        assert_eq!(parse_per_second("0.5/s"), Ok(0.5));
        assert_eq!(parse_per_second("30/min"), Ok(0.5));
        assert_eq!(parse_per_second("3600/h"), Ok(1.0));
        assert_eq!(parse_per_second("0"), Ok(0.0));
        for bad in [
            "", "/s", "2/x", "fast", "-1/s", "2/s/s", "1e3", "5000/s", "inf/s",
        ] {
            assert!(parse_per_second(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("500us"), Ok(Duration::from_micros(500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        for bad in [
            "",
            "ms",
            "2x",
            "fast",
            "-1s",
            "1e3s",
            "inf",
            "NaN",
            "1..2s",
            "99999999999999h",
            "1m30",
            "1s-2s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn signed_durations_for_skew() {
        assert_eq!(parse_signed_duration_ms("-2s"), Ok(-2000));
        assert_eq!(parse_signed_duration_ms("+500ms"), Ok(500));
        assert_eq!(parse_signed_duration_ms("1s"), Ok(1000));
        assert!(parse_signed_duration_ms("--1s").is_err());
    }

    #[test]
    fn durations_print_as_written() {
        for text in ["200ms", "2s", "1.5s", "1m", "1m30s", "0s", "500us"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4GB"), Ok(Size(4_000_000_000)));
        assert_eq!(parse_size("512MB"), Ok(Size(512_000_000)));
        assert_eq!(parse_size("1GiB"), Ok(Size(1 << 30)));
        assert_eq!(parse_size("100"), Ok(Size(100)));
        assert_eq!(parse_size("4gb"), Ok(Size(4_000_000_000)));
        assert!(parse_size("4 gigs").is_err());
        assert!(parse_size("GB").is_err());
        assert!(parse_size("-4GB").is_err());
        assert_eq!(Size(4_000_000_000).to_string(), "4GB");
        assert_eq!(Size(1_500_000).to_string(), "1.5MB");
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("1Gbps"), Ok(Rate(1_000_000_000)));
        assert_eq!(parse_rate("10Mbps"), Ok(Rate(10_000_000)));
        assert_eq!(parse_rate("9600"), Ok(Rate(9600)));
        assert!(parse_rate("10MB").is_err());
        assert!(parse_rate("0bps").is_err());
        assert_eq!(Rate(1_000_000_000).to_string(), "1Gbps");
    }

    #[test]
    fn percentages() {
        assert_eq!(parse_percent("5%"), Ok(Percent(5.0)));
        assert_eq!(parse_percent("0.5%"), Ok(Percent(0.5)));
        assert_eq!(parse_percent("5"), Ok(Percent(5.0)));
        assert!(parse_percent("101%").is_err());
        assert!(parse_percent("-1%").is_err());
        assert!(parse_percent("lots").is_err());
        assert_eq!(Percent(0.5).to_string(), "0.5%");
    }

    #[test]
    fn booleans() {
        for yes in ["true", "yes", "on", "1", "TRUE", "Yes"] {
            assert_eq!(parse_bool(yes), Ok(true));
        }
        for no in ["false", "no", "off", "0", "False"] {
            assert_eq!(parse_bool(no), Ok(false));
        }
        assert!(parse_bool("maybe").is_err());
        assert!(parse_bool("2").is_err());
    }
}
