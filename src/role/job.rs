//! What a job's data asks a worker to do.
//!
//! | data | kind | result |
//! | --- | --- | --- |
//! | `sleep 2s` | simulated work: waits, reporting progress | `slept 2s` |
//! | `cpu 200000` | real CPU work: counts the primes below N | `17984 primes below 200000` |
//! | `echo hello` | returns its text at once | `hello` |
//! | `fail why` | fails with that error (to watch retries) | — |
//! | anything else | processed as the classic lab did: a short delay | `Processado_<data>_por_<worker>` |
//!
//! The coordinator checks the data when a job is submitted ([`JobKind::parse`]), so `sleep
//! forever` is refused at once instead of failing on a worker later.

use std::time::Duration;

use crate::topology::units::{UnitError, format_duration, parse_duration};

/// The longest `sleep` a job may ask for.
pub const MAX_SLEEP: Duration = Duration::from_secs(3600);
/// The largest `cpu N`: about a minute of work on a slow core.
pub const MAX_CPU: u64 = 2_000_000_000;
/// How long a classic job takes.
pub const CLASSIC_DELAY: Duration = Duration::from_millis(200);

/// What a job does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobKind {
    /// Wait this long.
    Sleep(Duration),
    /// Count the primes below N.
    Cpu(u64),
    /// Return this text.
    Echo(String),
    /// Fail with this error.
    Fail(String),
    /// The classic lab's processing of free text.
    Classic(String),
}

/// Job data that starts with a kind's word but whose argument is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JobDataError {
    /// `sleep` without a duration.
    #[error("sleep: {0}")]
    Sleep(UnitError),
    /// `sleep` for longer than [`MAX_SLEEP`].
    #[error("sleep: at most {}", format_duration(MAX_SLEEP))]
    SleepTooLong,
    /// `cpu` without a whole number.
    #[error("cpu: expected a whole number such as `cpu 200000`, found `{0}`")]
    CpuNotANumber(String),
    /// `cpu` above [`MAX_CPU`].
    #[error("cpu: at most {MAX_CPU}")]
    CpuTooMuch,
}

impl JobKind {
    /// Reads job data; an error if it starts with a kind's word but its argument is wrong.
    pub fn parse(data: &str) -> Result<JobKind, JobDataError> {
        let data = data.trim();
        let (word, rest) = data.split_once(char::is_whitespace).unwrap_or((data, ""));
        let rest = rest.trim();
        match word {
            "sleep" => {
                let d = parse_duration(rest).map_err(JobDataError::Sleep)?;
                if d > MAX_SLEEP {
                    return Err(JobDataError::SleepTooLong);
                }
                Ok(JobKind::Sleep(d))
            }
            "cpu" => match rest.replace('_', "").parse::<u64>() {
                Ok(n) if n <= MAX_CPU => Ok(JobKind::Cpu(n)),
                Ok(_) => Err(JobDataError::CpuTooMuch),
                Err(_) => Err(JobDataError::CpuNotANumber(rest.to_string())),
            },
            "echo" => Ok(JobKind::Echo(rest.to_string())),
            "fail" => Ok(JobKind::Fail(if rest.is_empty() {
                "asked to fail".to_string()
            } else {
                rest.to_string()
            })),
            _ => Ok(JobKind::Classic(data.to_string())),
        }
    }
}

/// The classic lab's result line.
pub fn classic_result(data: &str, worker: &str) -> String {
    format!("Processado_{data}_por_{worker}")
}

/// Counts the primes below `n` with a sieve in segments, calling `progress` with 0–100 now and
/// then and stopping early (returning `None`) when it returns false.
pub fn count_primes(n: u64, mut progress: impl FnMut(u8) -> bool) -> Option<u64> {
    if n < 3 {
        return Some(0);
    }
    // Small primes up to √n, then each segment of the range is sieved by them.
    let limit = (n as f64).sqrt() as u64 + 1;
    let mut small = vec![true; limit as usize + 1];
    let mut base = Vec::new();
    for i in 2..=limit as usize {
        if small[i] {
            base.push(i as u64);
            let mut j = i * i;
            while j <= limit as usize {
                small[j] = false;
                j += i;
            }
        }
    }
    const SEGMENT: u64 = 1 << 16;
    let mut count = 0;
    let mut low = 2;
    let mut sieve = vec![true; SEGMENT as usize];
    while low < n {
        let high = (low + SEGMENT).min(n);
        sieve.iter_mut().for_each(|b| *b = true);
        for &p in &base {
            if p * p >= high {
                break;
            }
            let mut m = (low.div_ceil(p) * p).max(p * p);
            while m < high {
                sieve[(m - low) as usize] = false;
                m += p;
            }
        }
        count += sieve[..(high - low) as usize]
            .iter()
            .filter(|&&b| b)
            .count() as u64;
        low = high;
        if !progress(((low as f64 / n as f64) * 100.0) as u8) {
            return None;
        }
    }
    Some(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(
            JobKind::parse("sleep 2s"),
            Ok(JobKind::Sleep(Duration::from_secs(2)))
        );
        assert_eq!(
            JobKind::parse("sleep 250ms"),
            Ok(JobKind::Sleep(Duration::from_millis(250)))
        );
        assert_eq!(JobKind::parse("cpu 1_000"), Ok(JobKind::Cpu(1000)));
        assert_eq!(
            JobKind::parse("echo  hi there"),
            Ok(JobKind::Echo("hi there".into()))
        );
        assert_eq!(
            JobKind::parse("fail"),
            Ok(JobKind::Fail("asked to fail".into()))
        );
        assert_eq!(
            JobKind::parse("report"),
            Ok(JobKind::Classic("report".into()))
        );
        assert!(
            JobKind::parse("sleep forever")
                .unwrap_err()
                .to_string()
                .contains("sleep")
        );
        assert!(JobKind::parse("sleep 2h").is_err());
        assert!(JobKind::parse("cpu lots").is_err());
        assert_eq!(classic_result("x", "worker1"), "Processado_x_por_worker1");
    }

    #[test]
    fn primes() {
        assert_eq!(count_primes(2, |_| true), Some(0));
        assert_eq!(count_primes(3, |_| true), Some(1));
        assert_eq!(count_primes(100, |_| true), Some(25));
        assert_eq!(count_primes(200_000, |_| true), Some(17_984));
        assert_eq!(count_primes(1_000_000, |_| false), None);
    }
}
