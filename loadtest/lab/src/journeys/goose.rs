//! The journeys as Goose scenarios (the closed loop): each [`Step`] becomes a transaction,
//! sent through the Goose user so Goose's own metrics, its coordinated-omission back-fill
//! included, see every request, and recorded on the lab's clock as well.

use std::sync::Arc;
use std::time::Instant;

use goose::prelude::*;

use super::{
    Answer, Call, Client, Journey, Method, NULL, Recorder, Reply, Session, Shopfront, Step, record,
};

/// The two scenarios, weighted, recording into `recorder`.
///
/// Each user keeps the HTTP client Goose builds for it, whose pool holds an idle connection
/// for reqwest's default 90 s, longer than the shop servers' 60 s idle timeout
/// (`loadtest_platform::CLIENT_POOL_IDLE` is the lab's rule for its own clients). It is left
/// so on purpose: a user sends its next request as soon as the last one is answered, for as
/// long as the attack lasts, and every attack starts new users, so no connection of theirs
/// ever waits long enough to meet the server's close; replacing the client (an on-start
/// transaction per user) would drop Goose's defaults and add a transaction to every result.
pub fn scenarios(shop: &Shopfront, recorder: &Arc<Recorder>) -> anyhow::Result<Vec<Scenario>> {
    let mut scenarios = Vec::new();
    for (journey, weight) in [
        (Journey::Browse, shop.browse_weight),
        (Journey::Buy, shop.buy_weight),
    ] {
        if weight == 0 {
            continue;
        }
        let mut scenario = Scenario::new(journey.as_str()).set_weight(weight)?;
        for step in journey.steps() {
            let mut transaction = transaction(*step, shop, recorder);
            // A buy user logs in once and then loops over adding and checking out.
            if *step == Step::LogIn {
                transaction = transaction.set_on_start();
            }
            scenario = scenario.register_transaction(transaction);
        }
        scenarios.push(scenario);
    }
    anyhow::ensure!(!scenarios.is_empty(), "both journey weights are 0");
    Ok(scenarios)
}

/// One scenario of one request to the null endpoint, recorded as journey `null`: what the
/// generator can drive when the server costs nothing.
pub fn null_scenario(recorder: &Arc<Recorder>) -> Scenario {
    let recorder = recorder.clone();
    Scenario::new("null").register_transaction(
        Transaction::new(Arc::new(move |user| {
            let recorder = recorder.clone();
            Box::pin(async move {
                let mut client = GooseClient {
                    user,
                    recorder: &recorder,
                };
                client.send("null", Call::get(NULL, "/null")).await?;
                Ok(())
            })
        }))
        .set_name("null"),
    )
}

fn transaction(step: Step, shop: &Shopfront, recorder: &Arc<Recorder>) -> Transaction {
    let shop = Arc::new(shop.clone());
    let recorder = recorder.clone();
    Transaction::new(Arc::new(move |user| {
        let shop = shop.clone();
        let recorder = recorder.clone();
        Box::pin(async move {
            let mut client = GooseClient {
                user,
                recorder: &recorder,
            };
            step.run(&mut client, &shop).await
        })
    }))
    .set_name(step.name())
}

/// A Goose user as a journey's [`Client`]; its session lives in the user's session data.
struct GooseClient<'a> {
    user: &'a mut GooseUser,
    recorder: &'a Recorder,
}

impl Client for GooseClient<'_> {
    type Error = Box<TransactionError>;

    async fn send(&mut self, journey: &str, call: Call<'_>) -> Result<Answer, Self::Error> {
        let method = match call.method {
            Method::Get => GooseMethod::Get,
            Method::Post => GooseMethod::Post,
            Method::Put => GooseMethod::Put,
        };
        let mut builder = self.user.get_request_builder(&method, call.path)?;
        if let Some(body) = &call.body {
            builder = builder.json(body);
        }
        if let Some(token) = &call.bearer {
            builder = builder.bearer_auth(token);
        }
        if let Some(key) = &call.idempotency_key {
            builder = builder.header("Idempotency-Key", key);
        }
        let request = GooseRequest::builder()
            .method(method)
            .path(call.path)
            .name(call.name)
            .set_request_builder(builder)
            .build();
        let t_ms = self.recorder.now_ms();
        let started = Instant::now();
        let response = self.user.request(request).await?;
        let reply = match response.response {
            // The body is read for every request (a real client would), parsed only when
            // the journey needs something from it.
            Ok(response) => Reply {
                status: response.status().as_u16(),
                bytes: response.bytes().await.unwrap_or_default().to_vec(),
                timed_out: false,
            },
            Err(error) => Reply::none(&error),
        };
        let latency_us = started.elapsed().as_micros() as u64;
        let email = self
            .user
            .get_session_data::<Session>()
            .map(|session| session.email.clone());
        Ok(record(
            self.recorder,
            journey,
            &call,
            reply,
            t_ms,
            latency_us,
            email.as_deref(),
        ))
    }

    fn session(&mut self) -> &mut Session {
        if self.user.get_session_data::<Session>().is_none() {
            self.user.set_session_data(Session::default());
        }
        self.user
            .get_session_data_mut::<Session>()
            .expect("the session was set just above")
    }

    fn user_index(&self) -> usize {
        self.user.weighted_users_index
    }
}
