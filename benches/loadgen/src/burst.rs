//! `burst`: every shopper connects and sends at once; the report gives
//! refusals by code, then the node is stopped (killed, when it runs in its
//! own process) and every acknowledged message is looked up in its sled
//! directory.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use mikabot::storage::Storage;
use mikabot_actors::ids::{SessionId, StoreId};
use mikabot_actors::log::ConversationLog;
use mikabot_test_support::model::Shape;
use mikabot_test_support::shopper::Shopper;
use serde::Serialize;

use crate::report::{Counts, add, counts_text, secs, table};
use crate::{Common, FRAME_LIMIT, Head, QUESTIONS, RunInfo, STORE, Target, rig, source};

#[derive(Clone, Debug)]
pub struct BurstOptions {
    pub shoppers: usize,
    pub shape: Shape,
}

#[derive(Clone, Debug, Serialize)]
pub struct BurstReport {
    pub run: RunInfo,
    pub shoppers: usize,
    pub sessions_opened: usize,
    /// Refusals and failures by code.
    pub refused: Counts,
    pub messages_acknowledged: usize,
    pub replies_completed: usize,
    pub elapsed_secs: f64,
    /// Acknowledged messages missing from storage after the node was
    /// killed (`None`: a running node's storage cannot be read).
    pub acknowledged_lost: Option<usize>,
    pub how_checked: String,
}

#[derive(Default)]
struct BurstOutcome {
    opened: bool,
    refused: Option<String>,
    acked: Option<(String, String)>,
    replied: bool,
}

async fn burst_shopper(index: usize, target: Target, source: IpAddr) -> BurstOutcome {
    let mut outcome = BurstOutcome::default();
    let mut shopper = match Shopper::open(&target.from(source)).await {
        Ok(shopper) => shopper,
        Err(failure) => {
            outcome.refused = Some(failure.label());
            return outcome;
        }
    };
    let session = match shopper.try_hello(FRAME_LIMIT).await {
        Ok(session) => session,
        Err(failure) => {
            outcome.refused = Some(failure.label());
            return outcome;
        }
    };
    outcome.opened = true;
    let client_id = format!("burst-{index}");
    let text = format!("{} #{index}", QUESTIONS[index % QUESTIONS.len()]);
    if let Err(failure) = shopper.try_message(&client_id, &text).await {
        outcome.refused = Some(failure.label());
        return outcome;
    }
    loop {
        match shopper.try_next::<Head>(FRAME_LIMIT).await {
            Ok(frame) => match frame.kind.as_str() {
                "ack" => outcome.acked = Some((session.clone(), client_id.clone())),
                "done" => {
                    outcome.replied = true;
                    break;
                }
                "error" => {
                    if outcome.acked.is_none() {
                        outcome.refused = frame.code;
                    }
                    break;
                }
                _ => {}
            },
            Err(failure) => {
                if outcome.acked.is_none() {
                    outcome.refused = Some(failure.label());
                }
                break;
            }
        }
    }
    shopper.close().await;
    outcome
}

/// Opens a stopped node's storage. sled's own threads may hold its lock a
/// moment after the node let go, so a busy lock is tried again for a while.
async fn open_stopped(dir: &std::path::Path) -> anyhow::Result<Storage> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Storage::open(&mikabot::storage::StorageOptions::in_dir(dir)) {
            Ok(storage) => return Ok(storage),
            Err(error) if Instant::now() < deadline => {
                tracing::debug!(%error, "the node's storage is not free yet");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// Acknowledged messages missing from the node's storage.
async fn missing_in_storage(
    dir: &std::path::Path,
    acked: &[(String, String)],
) -> anyhow::Result<usize> {
    let storage = open_stopped(dir).await?;
    let store = StoreId::parse(STORE)?;
    let mut missing = 0;
    for (session, client_id) in acked {
        let found = SessionId::parse(session)
            .and_then(|id| storage.find_session(&store, id).ok().flatten())
            .and_then(|meta| storage.history(&store, meta.conversation, usize::MAX).ok())
            .is_some_and(|history| {
                history
                    .iter()
                    .any(|m| m.client_id.as_deref() == Some(client_id.as_str()))
            });
        missing += usize::from(!found);
    }
    Ok(missing)
}

pub async fn burst(common: &Common, options: &BurstOptions) -> anyhow::Result<BurstReport> {
    let mut rig = rig("burst", common, options.shape, &[]).await?;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..options.shoppers {
        tasks.spawn(burst_shopper(i, rig.target.clone(), source(common, i)));
    }
    let mut outcomes = Vec::with_capacity(options.shoppers);
    let limit = Duration::from_secs(300);
    tokio::time::timeout(limit, async {
        while let Some(outcome) = tasks.join_next().await {
            outcomes.push(outcome?);
        }
        anyhow::Ok(())
    })
    .await
    .context("the burst did not finish in time")??;
    let elapsed = started.elapsed();

    let mut refused = Counts::new();
    let mut acked = Vec::new();
    let (mut opened, mut replied) = (0, 0);
    for outcome in outcomes {
        opened += usize::from(outcome.opened);
        replied += usize::from(outcome.replied);
        if let Some(code) = outcome.refused {
            add(&mut refused, code);
        }
        acked.extend(outcome.acked);
    }
    rig.node.stop().await?;
    rig.model.stop().await;
    let (lost, how) = match &rig.node.data_dir {
        Some(dir) => (
            Some(missing_in_storage(dir, &acked).await?),
            format!(
                "node stopped ({}), its sled directory opened and every acknowledged message looked up",
                if rig.node.measured_alone() {
                    "SIGKILL"
                } else {
                    "gracefully"
                }
            ),
        ),
        None => (
            None,
            "not checked: the node's storage is not reachable".into(),
        ),
    };
    Ok(BurstReport {
        run: rig.info,
        shoppers: options.shoppers,
        sessions_opened: opened,
        refused,
        messages_acknowledged: acked.len(),
        replies_completed: replied,
        elapsed_secs: secs(elapsed),
        acknowledged_lost: lost,
        how_checked: how,
    })
}

impl BurstReport {
    pub fn markdown(&self) -> String {
        table(
            &format!("burst: {} shoppers at once", self.shoppers),
            &[
                ("sessions opened", self.sessions_opened.to_string()),
                ("refused, by code", counts_text(&self.refused)),
                (
                    "messages acknowledged",
                    self.messages_acknowledged.to_string(),
                ),
                ("replies completed", self.replies_completed.to_string()),
                ("time", format!("{:.2} s", self.elapsed_secs)),
                (
                    "acknowledged messages lost",
                    self.acknowledged_lost
                        .map_or("not checked".into(), |n| n.to_string()),
                ),
                ("checked by", self.how_checked.clone()),
            ],
        )
    }
}
