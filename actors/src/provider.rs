//! Which model answers a reply. Normally the configured provider; the
//! offline responder instead, with a short notice to the shopper, when the
//! store has spent its daily token budget or when the provider's circuit
//! breaker is open. Shoppers always get an answer, never silence, and a
//! failing or costly provider cannot be hammered.
//!
//! The breaker opens after `failures_to_open` consecutive failed model
//! requests and stays open for `cooldown`; then one reply is let through
//! as a probe (half-open): its success closes the breaker, its failure
//! opens it again.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::ids::StoreId;
use crate::language::Language;
use crate::limits::StoreBudgets;
use crate::model::{ChatModel, ModelError};

/// The breaker's state, as operators see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// A circuit breaker over the model provider.
#[derive(Debug)]
pub struct Breaker {
    failures_to_open: u32,
    cooldown: Duration,
    state: Mutex<State>,
}

/// What the breaker lets a reply do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Ask the provider.
    Provider,
    /// Ask the provider as the probe of a half-open breaker.
    Probe,
    /// Answer offline.
    Fallback,
}

impl Breaker {
    pub fn new(failures_to_open: u32, cooldown: Duration) -> Self {
        Self {
            failures_to_open: failures_to_open.max(1),
            cooldown,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    fn state_now(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn admit(&self) -> Admission {
        let mut state = self.state_now();
        match *state {
            State::Closed { .. } => Admission::Provider,
            State::Open { until } if Instant::now() >= until => {
                *state = State::HalfOpen { probing: true };
                Admission::Probe
            }
            State::Open { .. } | State::HalfOpen { probing: true } => Admission::Fallback,
            State::HalfOpen { probing: false } => {
                *state = State::HalfOpen { probing: true };
                Admission::Probe
            }
        }
    }

    /// A model request answered.
    pub fn succeeded(&self) {
        *self.state_now() = State::Closed { failures: 0 };
    }

    /// A model request failed.
    pub fn failed(&self) {
        let mut state = self.state_now();
        let open = State::Open {
            until: Instant::now() + self.cooldown,
        };
        *state = match *state {
            State::Closed { failures } if failures + 1 < self.failures_to_open => State::Closed {
                failures: failures + 1,
            },
            _ => open,
        };
    }

    /// A probe ended with neither outcome (its reply was cut or
    /// withdrawn): the next reply may probe.
    pub fn probe_abandoned(&self) {
        let mut state = self.state_now();
        if let State::HalfOpen { probing: true } = *state {
            *state = State::HalfOpen { probing: false };
        }
    }

    pub fn state(&self) -> BreakerState {
        match *self.state_now() {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { until } if Instant::now() >= until => BreakerState::HalfOpen,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }
}

/// Why a reply comes from the offline responder instead of the provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Degraded {
    /// The store spent its model budget for today.
    Budget,
    /// The provider failed repeatedly; its breaker is open.
    Breaker,
}

impl Degraded {
    pub fn as_str(self) -> &'static str {
        match self {
            Degraded::Budget => "budget",
            Degraded::Breaker => "breaker",
        }
    }

    /// What the shopper is told first, in their language.
    pub fn notice(self, language: Language) -> &'static str {
        match (self, language) {
            (Degraded::Budget, Language::En) => {
                "Our assistant is in basic mode for the rest of the day, so this answer is simpler than usual."
            }
            (Degraded::Budget, Language::Nl) => {
                "Onze assistent werkt de rest van de dag in basisstand, dus dit antwoord is eenvoudiger dan anders."
            }
            (Degraded::Budget, Language::Fr) => {
                "Notre assistant fonctionne en mode simplifié jusqu'à demain : cette réponse est plus simple que d'habitude."
            }
            (Degraded::Budget, Language::De) => {
                "Unser Assistent läuft für den Rest des Tages im Basismodus, daher ist diese Antwort einfacher als sonst."
            }
            (Degraded::Budget, Language::Es) => {
                "Nuestro asistente funciona en modo básico el resto del día, así que esta respuesta es más sencilla de lo habitual."
            }
            (Degraded::Budget, Language::It) => {
                "Il nostro assistente funziona in modalità base per il resto della giornata, quindi questa risposta è più semplice del solito."
            }
            (Degraded::Breaker, Language::En) => {
                "Our assistant is having trouble right now, so this answer is simpler than usual."
            }
            (Degraded::Breaker, Language::Nl) => {
                "Onze assistent heeft nu een storing, dus dit antwoord is eenvoudiger dan anders."
            }
            (Degraded::Breaker, Language::Fr) => {
                "Notre assistant rencontre un problème en ce moment : cette réponse est plus simple que d'habitude."
            }
            (Degraded::Breaker, Language::De) => {
                "Unser Assistent hat gerade eine Störung, daher ist diese Antwort einfacher als sonst."
            }
            (Degraded::Breaker, Language::Es) => {
                "Nuestro asistente tiene problemas en este momento, así que esta respuesta es más sencilla de lo habitual."
            }
            (Degraded::Breaker, Language::It) => {
                "Il nostro assistente ha un problema in questo momento, quindi questa risposta è più semplice del solito."
            }
        }
    }
}

/// The models a node answers with, and what decides between them.
pub struct Models {
    /// The configured provider.
    pub primary: Arc<dyn ChatModel>,
    /// The offline responder.
    pub fallback: Arc<dyn ChatModel>,
    pub breaker: Breaker,
    pub budgets: StoreBudgets,
}

/// The model chosen for one reply.
pub struct Chosen {
    pub model: Arc<dyn ChatModel>,
    /// Why it is the fallback, if it is.
    pub degraded: Option<Degraded>,
    /// The reply is the half-open breaker's probe.
    pub probe: bool,
}

impl Models {
    /// A node with one model and no limits (tests, or a node whose only
    /// model is the offline responder).
    pub fn only(model: Arc<dyn ChatModel>) -> Self {
        Self {
            primary: Arc::clone(&model),
            fallback: model,
            breaker: Breaker::new(u32::MAX, Duration::ZERO),
            budgets: StoreBudgets::new(0),
        }
    }

    /// Whether the primary is the fallback itself (nothing to fall back
    /// from).
    fn offline_only(&self) -> bool {
        Arc::ptr_eq(&self.primary, &self.fallback)
    }

    /// The model that would answer `store` now, without taking the
    /// breaker's probe (for a name to show).
    pub fn current(&self, store: &StoreId) -> &'static str {
        let offline = self.offline_only()
            || !self.budgets.allows(store)
            || self.breaker.state() == BreakerState::Open;
        if offline {
            self.fallback.name()
        } else {
            self.primary.name()
        }
    }

    /// Tells the breaker what a request of the provider `chosen` came to
    /// (nothing for a reply given offline): a refused request is the
    /// provider answering; only its own trouble counts against it.
    pub fn settle(&self, chosen: &Chosen, result: Result<(), &ModelError>) {
        if chosen.degraded.is_some() {
            return;
        }
        match result {
            Err(error) if error.is_providers_fault() => self.breaker.failed(),
            _ => self.breaker.succeeded(),
        }
    }

    /// The model for the next reply of `store`.
    pub fn choose(&self, store: &StoreId) -> Chosen {
        let fallback = |reason| Chosen {
            model: Arc::clone(&self.fallback),
            degraded: Some(reason),
            probe: false,
        };
        if self.offline_only() {
            return Chosen {
                model: Arc::clone(&self.primary),
                degraded: None,
                probe: false,
            };
        }
        if !self.budgets.allows(store) {
            return fallback(Degraded::Budget);
        }
        match self.breaker.admit() {
            Admission::Fallback => fallback(Degraded::Breaker),
            admission => Chosen {
                model: Arc::clone(&self.primary),
                degraded: None,
                probe: admission == Admission::Probe,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_breaker_opens_after_consecutive_failures_and_probes_after_its_cool_down() {
        let breaker = Breaker::new(3, Duration::from_millis(50));
        breaker.failed();
        breaker.failed();
        breaker.succeeded();
        breaker.failed();
        breaker.failed();
        assert_eq!(breaker.admit(), Admission::Provider, "not three in a row");
        breaker.failed();
        assert_eq!(breaker.state(), BreakerState::Open);
        assert_eq!(breaker.admit(), Admission::Fallback);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        assert_eq!(breaker.admit(), Admission::Probe);
        assert_eq!(breaker.admit(), Admission::Fallback, "one probe at a time");
        breaker.failed();
        assert_eq!(
            breaker.state(),
            BreakerState::Open,
            "a failed probe reopens"
        );
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(breaker.admit(), Admission::Probe);
        breaker.probe_abandoned();
        assert_eq!(
            breaker.admit(),
            Admission::Probe,
            "an abandoned probe is retried"
        );
        breaker.succeeded();
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert_eq!(breaker.admit(), Admission::Provider);
    }

    #[test]
    fn every_notice_is_written_for_every_language() {
        for degraded in [Degraded::Budget, Degraded::Breaker] {
            let mut seen = std::collections::HashSet::new();
            for language in Language::ALL {
                let notice = degraded.notice(language);
                assert!(notice.len() > 20);
                assert!(seen.insert(notice), "{language:?} repeats another");
            }
        }
    }
}
