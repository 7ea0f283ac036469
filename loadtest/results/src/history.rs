//! The per-request history: one [`RequestRecord`] per request the load harness sent, written
//! as one JSON object per line (`history.jsonl`) and read back by the invariant checker
//! (`loadtest-check`) to compare what clients were told with what the shop kept.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// The transaction name of a checkout, as the journeys record it (route template).
pub const CHECKOUT: &str = "POST /api/orders";

/// One request as the client saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Milliseconds since the experiment's start, on the same clock as fault events.
    pub t_ms: u64,
    /// `browse` or `buy`.
    pub journey: String,
    /// Method and route template, e.g. `POST /api/orders`, `GET /api/products/{id}`.
    pub transaction: String,
    /// The HTTP status; 0 when no answer came (connect error, timeout).
    pub status: u16,
    pub latency_us: u64,
    pub outcome: Outcome,
    /// No answer came within the generator's request timeout: a failure that cost the
    /// client the whole timeout, counted apart from fast errors (a refused connection, a
    /// 5xx). Absent in histories written before it was recorded.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub timed_out: bool,
    /// The `Idempotency-Key` sent (checkout only).
    pub idempotency_key: Option<String>,
    /// The order id of a 201 checkout answer.
    pub order_id: Option<i64>,
    /// The total of a 201 checkout answer.
    pub total_cents: Option<i64>,
    /// Email of the user a buy journey runs as.
    pub user: Option<String>,
}

/// What a request's answer tells the client about its effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A 2xx answer: it happened.
    Ok,
    /// A definite refusal, or a read that failed: nothing was changed.
    Fail,
    /// A write that got no answer, a timeout or a 5xx: it may or may not have happened. The
    /// checker resolves these by idempotency key and never counts them as failed.
    MaybeApplied,
}

impl Outcome {
    /// Classifies an answer. A write whose answer did not arrive (status 0), timed out (408)
    /// or was a 5xx may have been applied before the failure; everything else non-2xx is a
    /// definite failure.
    pub fn classify(method_is_write: bool, status: u16) -> Outcome {
        match status {
            200..=299 => Outcome::Ok,
            0 | 408 | 500..=599 if method_is_write => Outcome::MaybeApplied,
            _ => Outcome::Fail,
        }
    }
}

/// Reads a `history.jsonl` file; blank lines are skipped.
pub fn read_jsonl(path: &Path) -> anyhow::Result<Vec<RequestRecord>> {
    let file = File::open(path).with_context(|| format!("open history {}", path.display()))?;
    let mut records = Vec::new();
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("read history {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let record = serde_json::from_str(&line)
            .with_context(|| format!("parse {} line {}", path.display(), index + 1))?;
        records.push(record);
    }
    Ok(records)
}

/// Writes `records` to `path` as JSON lines, replacing the file.
pub fn write_jsonl(path: &Path, records: &[RequestRecord]) -> anyhow::Result<()> {
    let file = File::create(path).with_context(|| format!("create history {}", path.display()))?;
    let mut writer = BufWriter::new(file);
    for record in records {
        write_record(&mut writer, record)?;
    }
    writer
        .flush()
        .with_context(|| format!("write history {}", path.display()))
}

/// Appends one record as one line, for a harness that streams its history as it goes.
pub fn write_record(writer: &mut impl Write, record: &RequestRecord) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *writer, record).context("write a history record")?;
    writer.write_all(b"\n").context("write a history record")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified_by_what_the_client_can_know() {
        assert_eq!(Outcome::classify(true, 201), Outcome::Ok);
        assert_eq!(Outcome::classify(false, 200), Outcome::Ok);
        assert_eq!(Outcome::classify(true, 0), Outcome::MaybeApplied);
        assert_eq!(Outcome::classify(true, 408), Outcome::MaybeApplied);
        assert_eq!(Outcome::classify(true, 503), Outcome::MaybeApplied);
        assert_eq!(Outcome::classify(true, 409), Outcome::Fail);
        assert_eq!(Outcome::classify(true, 422), Outcome::Fail);
        assert_eq!(Outcome::classify(false, 0), Outcome::Fail);
        assert_eq!(Outcome::classify(false, 503), Outcome::Fail);
    }

    #[test]
    fn records_survive_a_round_trip_through_a_file() {
        let records = vec![
            RequestRecord {
                t_ms: 12,
                journey: "buy".into(),
                transaction: CHECKOUT.into(),
                status: 201,
                latency_us: 3_400,
                outcome: Outcome::Ok,
                timed_out: false,
                idempotency_key: Some("key-1".into()),
                order_id: Some(7),
                total_cents: Some(1_299),
                user: Some("user1@shoplab.test".into()),
            },
            RequestRecord {
                t_ms: 15,
                journey: "browse".into(),
                transaction: "GET /api/products/{id}".into(),
                status: 0,
                latency_us: 2_000_000,
                outcome: Outcome::Fail,
                timed_out: true,
                idempotency_key: None,
                order_id: None,
                total_cents: None,
                user: None,
            },
        ];
        let folder = tempfile::tempdir().expect("temp dir");
        let path = folder.path().join("history.jsonl");
        write_jsonl(&path, &records).expect("write");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text.lines().count(), 2);
        assert!(
            text.contains(r#""outcome":"ok""#),
            "snake_case outcome: {text}"
        );
        assert_eq!(read_jsonl(&path).expect("read back"), records);
    }
}
