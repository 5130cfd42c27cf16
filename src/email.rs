//! Outgoing email: verification, password-reset, email-change and
//! invitation messages. With `email.smtp_host` set they go through SMTP
//! (lettre, over rustls); without it (a fresh machine) each message is
//! written to the node's log and kept in a bounded in-memory outbox that the
//! operator reads at `/dashboard/outbox`, so sign-up works with no mail
//! server. The outbox holds the last [`OUTBOX_CAPACITY`] messages and is
//! lost on restart, as it should be: its links are secrets.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::accounts::now_secs;
use crate::config::{EmailSettings, SmtpSecurity};

/// Messages the outbox keeps, newest last.
pub const OUTBOX_CAPACITY: usize = 100;
/// Longest wait for the SMTP server on one message.
const SMTP_TIMEOUT: Duration = Duration::from_secs(15);

/// One message to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// A message kept in the outbox.
#[derive(Clone, Debug)]
pub struct OutboxEntry {
    pub time: u64,
    pub email: Email,
}

/// Why a message was not sent.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    /// The configured sender is not a mailbox.
    #[error("email.from {0:?} is not a mailbox")]
    From(String),
    /// A recipient's address cannot be written as a mailbox (the address
    /// itself is not in the error, which may be logged).
    #[error("a recipient's address cannot receive mail")]
    Address,
    #[error("the message could not be built: {0}")]
    Build(String),
    #[error("the SMTP server refused or could not be reached: {0}")]
    Smtp(String),
}

/// `Name <address>` as a mailbox, if it is one.
pub fn parse_mailbox(raw: &str) -> Option<Mailbox> {
    raw.parse().ok()
}

enum Transport {
    Smtp(Box<AsyncSmtpTransport<Tokio1Executor>>),
    Outbox,
}

/// Sends the node's email.
pub struct Postman {
    transport: Transport,
    from: Mailbox,
    outbox: Mutex<VecDeque<OutboxEntry>>,
}

impl Postman {
    /// A postman for the settings (validated: `from` is a mailbox).
    pub fn new(settings: &EmailSettings) -> Result<Self, EmailError> {
        let from =
            parse_mailbox(&settings.from).ok_or_else(|| EmailError::From(settings.from.clone()))?;
        let host = settings.smtp_host.trim();
        let transport = if host.is_empty() {
            Transport::Outbox
        } else {
            let builder = match settings.smtp_security {
                SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
                SmtpSecurity::Starttls => {
                    AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                }
                SmtpSecurity::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                    host,
                )),
            }
            .map_err(|e| EmailError::Smtp(e.to_string()))?;
            let mut builder = builder.port(settings.smtp_port).timeout(Some(SMTP_TIMEOUT));
            if !settings.smtp_username.is_empty() {
                builder = builder.credentials(Credentials::new(
                    settings.smtp_username.clone(),
                    settings.smtp_password.expose().to_owned(),
                ));
            }
            Transport::Smtp(Box::new(builder.build()))
        };
        Ok(Self {
            transport,
            from,
            outbox: Mutex::new(VecDeque::new()),
        })
    }

    /// Whether messages stay on the node (no SMTP configured).
    pub fn uses_outbox(&self) -> bool {
        matches!(self.transport, Transport::Outbox)
    }

    /// Sends one message (or files it in the outbox).
    pub async fn send(&self, email: Email) -> Result<(), EmailError> {
        let to: Mailbox = email.to.parse().map_err(|_| EmailError::Address)?;
        match &self.transport {
            Transport::Outbox => {
                // Only the operator's own machine sees these: the outbox is
                // the fresh-machine default, where there is no mail server.
                tracing::info!(
                    subject = %email.subject,
                    "no SMTP configured (email.smtp_host): message kept in the outbox at /dashboard/outbox\n{}",
                    email.body
                );
                let mut outbox = self.outbox.lock().unwrap_or_else(PoisonError::into_inner);
                if outbox.len() == OUTBOX_CAPACITY {
                    outbox.pop_front();
                }
                outbox.push_back(OutboxEntry {
                    time: now_secs(),
                    email,
                });
                Ok(())
            }
            Transport::Smtp(smtp) => {
                let message = Message::builder()
                    .from(self.from.clone())
                    .to(to)
                    .subject(email.subject.clone())
                    .header(ContentType::TEXT_PLAIN)
                    .body(email.body)
                    .map_err(|e| EmailError::Build(e.to_string()))?;
                smtp.send(message)
                    .await
                    .map_err(|e| EmailError::Smtp(e.to_string()))?;
                tracing::info!(subject = %email.subject, "email sent");
                Ok(())
            }
        }
    }

    /// The outbox, newest first.
    pub fn outbox(&self) -> Vec<OutboxEntry> {
        let outbox = self.outbox.lock().unwrap_or_else(PoisonError::into_inner);
        outbox.iter().rev().cloned().collect()
    }
}
