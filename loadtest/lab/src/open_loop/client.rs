//! An open-loop arrival as a journey's [`Client`]: a shared reqwest client, and the moment
//! the journey was due, from which its first request's latency is measured.

use std::sync::Arc;
use std::time::Instant;

use crate::journeys::{Answer, Call, Client, Method, Recorder, Reply, Session, record};

pub(crate) struct ArrivalClient {
    pub http: reqwest::Client,
    pub base_url: Arc<str>,
    pub recorder: Arc<Recorder>,
    pub session: Session,
    /// The arrival's number, which picks its seeded user.
    pub index: usize,
    /// When the journey was due: the next request's latency starts here, not when it was
    /// sent. Taken by the first request; each later request of the journey is due when the
    /// one before it has answered, which is when it is sent.
    pub due: Option<Instant>,
}

impl Client for ArrivalClient {
    /// Nothing ends a step early here: every failure is an answer, recorded.
    type Error = std::convert::Infallible;

    async fn send(&mut self, journey: &str, call: Call<'_>) -> Result<Answer, Self::Error> {
        let due = self.due.take().unwrap_or_else(Instant::now);
        let url = format!("{}{}", self.base_url, call.path);
        let mut request = match call.method {
            Method::Get => self.http.get(&url),
            Method::Post => self.http.post(&url),
            Method::Put => self.http.put(&url),
        };
        if let Some(body) = &call.body {
            request = request.json(body);
        }
        if let Some(token) = &call.bearer {
            request = request.bearer_auth(token);
        }
        if let Some(key) = &call.idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        let reply = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                match response.bytes().await {
                    Ok(bytes) => Reply {
                        status,
                        bytes: bytes.to_vec(),
                        timed_out: false,
                    },
                    // The answer broke off (or timed out) mid-body: no answer.
                    Err(error) => Reply::none(&error),
                }
            }
            Err(error) => Reply::none(&error),
        };
        let latency_us = due.elapsed().as_micros() as u64;
        let t_ms = self.recorder.ms_at(due);
        let email = self.session.email.clone();
        Ok(record(
            &self.recorder,
            journey,
            &call,
            reply,
            t_ms,
            latency_us,
            Some(&email),
        ))
    }

    fn session(&mut self) -> &mut Session {
        &mut self.session
    }

    fn user_index(&self) -> usize {
        self.index
    }
}
