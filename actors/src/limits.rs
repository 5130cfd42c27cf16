//! Bounds on what an unauthenticated client can make the node do, counted
//! per client ([`ClientId`], the edge's key for an address or an IPv6
//! network), per node and per store:
//!
//! - [`ClientSlots`]: sessions open at once, per client and on the node. A
//!   session holds a [`Slot`] while it lives; dropping it frees the place,
//!   however the session ended.
//! - [`ClientRates`]: new conversations per client per hour, and messages
//!   (each one a model reply) per client per minute, across all its
//!   sockets.
//! - [`StoreBudgets`]: model tokens per store per day (UTC); past it, the
//!   store's shoppers are answered by the offline responder.
//!
//! Memory: every map here is keyed by clients or stores seen recently and
//! is swept by the node's housekeeping ([`ClientRates::sweep`]).

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::ids::StoreId;

/// A client as the limits count it: an IPv4 address, or an IPv6 network.
/// The edge makes it; this crate only compares them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientId(pub u128);

/// Why a session may not open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotRefusal {
    /// The client has its most sessions open.
    Client { max: usize },
    /// The client's wider network (an IPv6 /48) has its most open.
    Network { max: usize },
    /// The node has its most sessions open.
    Node { max: usize },
}

#[derive(Default)]
struct SlotCounts {
    per_client: DashMap<ClientId, usize>,
    per_network: DashMap<ClientId, usize>,
    total: AtomicUsize,
}

/// Sessions open now, per client, per wider network and in all.
#[derive(Clone)]
pub struct ClientSlots {
    counts: Arc<SlotCounts>,
    per_client: usize,
    per_network: usize,
    per_node: usize,
}

/// A session's place; dropping it frees it.
pub struct Slot {
    counts: Arc<SlotCounts>,
    client: Option<ClientId>,
    network: Option<ClientId>,
}

/// Takes a place in `map` under `key` if fewer than `max` are taken.
fn take(map: &DashMap<ClientId, usize>, key: ClientId, max: usize) -> bool {
    let mut open = map.entry(key).or_insert(0);
    if *open >= max {
        let empty = *open == 0;
        drop(open);
        if empty {
            map.remove_if(&key, |_, n| *n == 0);
        }
        return false;
    }
    *open += 1;
    true
}

/// Gives back a place taken by [`take`]. A count is 1 or more while a place
/// is held; the entry goes with the last, so a map holds only keys with
/// sessions.
fn give_back(map: &DashMap<ClientId, usize>, key: ClientId) {
    map.remove_if_mut(&key, |_, open| {
        *open -= 1;
        *open == 0
    });
}

impl ClientSlots {
    pub fn new(per_client: usize, per_network: usize, per_node: usize) -> Self {
        Self {
            counts: Arc::default(),
            per_client: per_client.max(1),
            per_network: per_network.max(1),
            per_node: per_node.max(1),
        }
    }

    /// A place for a session of `client` in `network` (its wider network,
    /// where there is one). An unknown address is counted on the node only.
    pub fn acquire(
        &self,
        client: Option<ClientId>,
        network: Option<ClientId>,
    ) -> Result<Slot, SlotRefusal> {
        let counts = &self.counts;
        let total = counts.total.fetch_add(1, Ordering::SeqCst);
        if total >= self.per_node {
            counts.total.fetch_sub(1, Ordering::SeqCst);
            return Err(SlotRefusal::Node { max: self.per_node });
        }
        if let Some(client) = client
            && !take(&counts.per_client, client, self.per_client)
        {
            counts.total.fetch_sub(1, Ordering::SeqCst);
            return Err(SlotRefusal::Client {
                max: self.per_client,
            });
        }
        if let Some(network) = network
            && !take(&counts.per_network, network, self.per_network)
        {
            if let Some(client) = client {
                give_back(&counts.per_client, client);
            }
            counts.total.fetch_sub(1, Ordering::SeqCst);
            return Err(SlotRefusal::Network {
                max: self.per_network,
            });
        }
        Ok(Slot {
            counts: Arc::clone(counts),
            client,
            network,
        })
    }

    /// Sessions holding a place now.
    pub fn open(&self) -> usize {
        self.counts.total.load(Ordering::SeqCst)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(client) = self.client {
            give_back(&self.counts.per_client, client);
        }
        if let Some(network) = self.network {
            give_back(&self.counts.per_network, network);
        }
        self.counts.total.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Per-client rates across all of a client's sockets.
pub struct ClientRates {
    conversations: DefaultKeyedRateLimiter<ClientId>,
    conversations_per_hour: NonZeroU32,
    messages: DefaultKeyedRateLimiter<ClientId>,
    messages_per_minute: NonZeroU32,
}

/// A rate was spent: when asking again can succeed, and the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spent {
    pub retry_after: Duration,
    pub limit: NonZeroU32,
}

fn spend(
    limiter: &DefaultKeyedRateLimiter<ClientId>,
    client: ClientId,
    limit: NonZeroU32,
) -> Result<(), Spent> {
    limiter.check_key(&client).map_err(|not_until| Spent {
        retry_after: not_until.wait_time_from(DefaultClock::default().now()),
        limit,
    })
}

impl ClientRates {
    pub fn new(conversations_per_hour: u32, messages_per_minute: u32) -> Self {
        let conversations_per_hour =
            NonZeroU32::new(conversations_per_hour).unwrap_or(NonZeroU32::MIN);
        let messages_per_minute = NonZeroU32::new(messages_per_minute).unwrap_or(NonZeroU32::MIN);
        Self {
            conversations: RateLimiter::keyed(Quota::per_hour(conversations_per_hour)),
            conversations_per_hour,
            messages: RateLimiter::keyed(Quota::per_minute(messages_per_minute)),
            messages_per_minute,
        }
    }

    /// Spends one of the client's new conversations this hour.
    pub fn new_conversation(&self, client: ClientId) -> Result<(), Spent> {
        spend(&self.conversations, client, self.conversations_per_hour)
    }

    /// Spends one of the client's messages (model replies) this minute.
    pub fn message(&self, client: ClientId) -> Result<(), Spent> {
        spend(&self.messages, client, self.messages_per_minute)
    }

    /// Forgets clients idle long enough to have their full allowance back.
    pub fn sweep(&self) {
        self.conversations.retain_recent();
        self.messages.retain_recent();
    }
}

/// Model tokens spent per store today, against a daily budget.
pub struct StoreBudgets {
    /// Tokens a store may spend a day; 0 is no limit.
    daily_tokens: u64,
    spent: DashMap<StoreId, (u64, u64)>,
    /// The day (days since the Unix epoch) the counts are for.
    today: Mutex<u64>,
}

/// Days since the Unix epoch, now (UTC).
fn day_now() -> u64 {
    crate::log::now_ms() / 86_400_000
}

impl StoreBudgets {
    pub fn new(daily_tokens: u64) -> Self {
        Self {
            daily_tokens,
            spent: DashMap::new(),
            today: Mutex::new(day_now()),
        }
    }

    /// Starts a new day's counts when the day changed.
    fn roll(&self, day: u64) {
        let mut today = self.today.lock().unwrap_or_else(PoisonError::into_inner);
        if *today != day {
            *today = day;
            self.spent.clear();
        }
    }

    /// Whether `store` still has budget today.
    pub fn allows(&self, store: &StoreId) -> bool {
        self.allows_on(store, day_now())
    }

    fn allows_on(&self, store: &StoreId, day: u64) -> bool {
        if self.daily_tokens == 0 {
            return true;
        }
        self.roll(day);
        self.spent
            .get(store)
            .is_none_or(|entry| entry.value().1 < self.daily_tokens)
    }

    /// Adds `tokens` to what `store` spent today.
    pub fn spend(&self, store: &StoreId, tokens: u64) {
        self.spend_on(store, tokens, day_now());
    }

    fn spend_on(&self, store: &StoreId, tokens: u64, day: u64) {
        self.roll(day);
        let mut entry = self.spent.entry(store.clone()).or_insert((day, 0));
        entry.1 = entry.1.saturating_add(tokens);
    }

    /// Tokens `store` spent today.
    pub fn spent_today(&self, store: &StoreId) -> u64 {
        self.roll(day_now());
        self.spent.get(store).map_or(0, |entry| entry.value().1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_bound_each_client_its_network_and_the_node_and_free_on_drop() {
        let slots = ClientSlots::new(2, 3, 4);
        let (a, b, c) = (ClientId(1), ClientId(2), ClientId(3));
        let net = Some(ClientId(100));
        let first = slots.acquire(Some(a), net).expect("a place");
        let second = slots.acquire(Some(a), net).expect("a place");
        assert_eq!(
            slots.acquire(Some(a), net).err(),
            Some(SlotRefusal::Client { max: 2 })
        );
        let third = slots.acquire(Some(b), net).expect("another client");
        assert_eq!(
            slots.acquire(Some(c), net).err(),
            Some(SlotRefusal::Network { max: 3 }),
            "a fresh client in a full network"
        );
        let fourth = slots.acquire(Some(c), None).expect("outside the network");
        assert_eq!(
            slots.acquire(None, None).err(),
            Some(SlotRefusal::Node { max: 4 })
        );
        assert_eq!(slots.open(), 4);
        drop(first);
        let again = slots.acquire(Some(a), net).expect("a place freed");
        drop((again, second, third, fourth));
        assert_eq!(slots.open(), 0);
        assert!(
            slots.counts.per_client.is_empty(),
            "no client is remembered"
        );
        assert!(
            slots.counts.per_network.is_empty(),
            "no network is remembered"
        );
    }

    #[test]
    fn rates_are_per_client_across_sockets() {
        let rates = ClientRates::new(2, 3);
        let (a, b) = (ClientId(7), ClientId(8));
        for _ in 0..3 {
            rates.message(a).expect("within the minute's allowance");
        }
        let spent = rates.message(a).expect_err("the fourth this minute");
        assert_eq!(spent.limit.get(), 3);
        assert!(spent.retry_after > Duration::ZERO && spent.retry_after <= Duration::from_secs(60));
        rates.message(b).expect("another client");
        rates.new_conversation(a).expect("one");
        rates.new_conversation(a).expect("two");
        let spent = rates.new_conversation(a).expect_err("three this hour");
        assert!(spent.retry_after > Duration::from_secs(60));
    }

    #[test]
    fn a_store_budget_is_spent_per_day_and_renews() {
        let budgets = StoreBudgets::new(100);
        let store = StoreId::parse("s").expect("valid");
        let other = StoreId::parse("t").expect("valid");
        assert!(budgets.allows_on(&store, 10));
        budgets.spend_on(&store, 60, 10);
        assert!(budgets.allows_on(&store, 10));
        budgets.spend_on(&store, 40, 10);
        assert!(!budgets.allows_on(&store, 10), "100 of 100 spent");
        assert!(budgets.allows_on(&other, 10), "per store");
        assert!(budgets.allows_on(&store, 11), "a new day");
        let unlimited = StoreBudgets::new(0);
        unlimited.spend_on(&store, u64::MAX, 10);
        unlimited.spend_on(&store, 5, 10);
        assert!(unlimited.allows_on(&store, 10));
    }
}
