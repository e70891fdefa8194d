//! Punch cards: "buy 10 of these, the 11th is free". Matching items of an order earn stamps; every full card
//! issues its reward and uses up its stamps; stamps may expire; refunds remove the stamps they earned.
//!
//! The rules:
//! - A card matches a SKU or a category. With `per = "item"` (the default) every matching item bought is a
//!   stamp; with `per = "order"` an order with any matching item is one stamp.
//! - A card completes when it has `stamps` live stamps (not used, not removed, not expired); the stamps used
//!   are the soonest-expiring, then the oldest. One order may complete several cards.
//! - A refund removes stamps of its order that are still live, newest first. Stamps already used on an
//!   issued reward stay used (the reward was given); the count of those is reported.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

use crate::ids::OrderId;
use crate::order::{OrderLine, RefundLine, Sku};
use crate::text::{FieldError, bounded_text};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PunchCardFile {
    pub name: String,
    pub stamps: u32,
    #[serde(default)]
    pub sku: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub per: StampPer,
    #[serde(default)]
    pub stamp_expiry_days: Option<u32>,
    /// What a full card gives, in words.
    pub reward: String,
    /// The free item, if the reward is one.
    #[serde(default)]
    pub reward_sku: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StampPer {
    #[default]
    Item,
    Order,
}

/// Which order lines a card or a promotion counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matches {
    Sku(Sku),
    Category(String),
}

impl Matches {
    pub fn line(&self, line: &OrderLine, categories: &BTreeMap<Sku, String>) -> bool {
        match self {
            Matches::Sku(sku) => &line.sku == sku,
            Matches::Category(c) => categories.get(&line.sku) == Some(c),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PunchCard {
    pub name: String,
    pub stamps: u32,
    pub matches: Matches,
    pub per: StampPer,
    pub stamp_expiry_days: Option<u32>,
    pub reward: String,
    pub reward_sku: Option<Sku>,
}

impl PunchCard {
    pub fn parse(file: &PunchCardFile) -> Result<PunchCard, FieldError> {
        if !(1..=1000).contains(&file.stamps) {
            return Err(FieldError::new("stamps", "between 1 and 1000"));
        }
        let matches = match (&file.sku, &file.category) {
            (Some(sku), None) => Matches::Sku(Sku::parse("sku", sku)?),
            (None, Some(category)) => Matches::Category(bounded_text("category", category, 200)?),
            _ => return Err(FieldError::new("sku", "a card counts either one sku or one category")),
        };
        Ok(PunchCard {
            name: bounded_text("name", &file.name, 200)?,
            stamps: file.stamps,
            matches,
            per: file.per,
            stamp_expiry_days: file.stamp_expiry_days,
            reward: bounded_text("reward", &file.reward, 200)?,
            reward_sku: file.reward_sku.as_deref().map(|s| Sku::parse("reward_sku", s)).transpose()?,
        })
    }

    /// The stamps an order's lines earn.
    pub fn stamps_for_lines(&self, lines: &[OrderLine], categories: &BTreeMap<Sku, String>) -> u32 {
        let mut matching = lines.iter().filter(|l| self.matches.line(l, categories)).peekable();
        match self.per {
            StampPer::Item => matching.map(|l| l.quantity.get()).sum(),
            StampPer::Order => u32::from(matching.peek().is_some()),
        }
    }

    /// The stamps a refund takes back: the matching items it returns, or, per order, the order's stamp once
    /// no matching item is left unreturned. `already_refunded` is per line, before this refund.
    pub fn stamps_for_refund(
        &self,
        lines: &[OrderLine],
        already_refunded: &[u32],
        refund: &[RefundLine],
        categories: &BTreeMap<Sku, String>,
    ) -> u32 {
        let matching = |i: usize| lines.get(i).is_some_and(|l| self.matches.line(l, categories));
        let returned = |i: usize| refund.iter().filter(|r| r.line == i).map(|r| r.quantity).sum::<u32>();
        match self.per {
            StampPer::Item => (0..lines.len()).filter(|&i| matching(i)).map(returned).sum(),
            StampPer::Order => {
                let before = already_refunded.iter().copied().chain(std::iter::repeat(0));
                let (mut left_before, mut left_after) = (0u32, 0u32);
                for ((i, line), done) in lines.iter().enumerate().zip(before) {
                    if matching(i) {
                        let left = line.quantity.get().saturating_sub(done);
                        left_before += left;
                        left_after += left.saturating_sub(returned(i));
                    }
                }
                u32::from(left_before > 0 && left_after == 0)
            }
        }
    }
}

/// What became of a stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StampState {
    Live,
    /// Used on the card completed with this number.
    Used {
        card: u32,
    },
    Removed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    /// Numbered within the customer's card from 1.
    pub id: u32,
    pub order: OrderId,
    pub stamped_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub state: StampState,
}

impl Stamp {
    fn live_at(&self, now: DateTime<Utc>) -> bool {
        self.state == StampState::Live && self.expires_at.is_none_or(|e| e > now)
    }
}

/// One customer's stamps on one card, and how many cards they completed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CardState {
    pub stamps: Vec<Stamp>,
    pub completed: u32,
}

/// A completed card: its number and the stamps it used. The store issues the card's reward for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedCard {
    pub number: u32,
    pub stamps: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PunchOutcome {
    pub new_stamps: Vec<Stamp>,
    pub completed: Vec<CompletedCard>,
}

impl CardState {
    /// Live stamps at `now`.
    pub fn live(&self, now: DateTime<Utc>) -> usize {
        self.stamps.iter().filter(|s| s.live_at(now)).count()
    }

    /// Adds `count` stamps for an order and completes every card they fill.
    pub fn punch(&self, card: &PunchCard, order: OrderId, count: u32, now: DateTime<Utc>) -> PunchOutcome {
        let expires_at = card.stamp_expiry_days.map(|d| now + Duration::days(i64::from(d)));
        let first = self.stamps.len() as u32 + 1;
        let new_stamps: Vec<Stamp> = (0..count)
            .map(|i| Stamp { id: first + i, order, stamped_at: now, expires_at, state: StampState::Live })
            .collect();
        let mut live: Vec<&Stamp> = self.stamps.iter().chain(&new_stamps).filter(|s| s.live_at(now)).collect();
        live.sort_by_key(|s| (s.expires_at.is_none(), s.expires_at, s.stamped_at, s.id));
        let completed = live
            .chunks_exact(card.stamps as usize)
            .enumerate()
            .map(|(i, chunk)| CompletedCard {
                number: self.completed + i as u32 + 1,
                stamps: chunk.iter().map(|s| s.id).collect(),
            })
            .collect();
        PunchOutcome { new_stamps, completed }
    }

    /// Which stamps of `order` a refund worth `count` stamps removes (live ones, newest first), and how many
    /// it could not remove because they were already used on a reward.
    pub fn unstamp(&self, order: OrderId, count: u32) -> (Vec<u32>, u32) {
        let mut removed: Vec<u32> = self
            .stamps
            .iter()
            .rev()
            .filter(|s| s.order == order && s.state == StampState::Live)
            .take(count as usize)
            .map(|s| s.id)
            .collect();
        removed.sort_unstable();
        let used = self.stamps.iter().filter(|s| s.order == order && matches!(s.state, StampState::Used { .. })).count()
            as u32;
        let short = (count - removed.len() as u32).min(used);
        (removed, short)
    }

    pub fn apply(&mut self, outcome: &PunchOutcome) {
        self.stamps.extend(outcome.new_stamps.iter().cloned());
        for card in &outcome.completed {
            for id in &card.stamps {
                self.stamps[*id as usize - 1].state = StampState::Used { card: card.number };
            }
            self.completed = self.completed.max(card.number);
        }
    }

    pub fn remove(&mut self, stamps: &[u32]) {
        for id in stamps {
            self.stamps[*id as usize - 1].state = StampState::Removed;
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::order::Quantity;

    fn line(sku: &str, q: i64) -> OrderLine {
        OrderLine::new(Sku::parse("s", sku).unwrap(), None, Quantity::new("q", q).unwrap(), 250, 0).unwrap()
    }

    fn card(per: StampPer, expiry: Option<u32>) -> PunchCard {
        let file = PunchCardFile {
            name: "Espresso".into(),
            stamps: 3,
            sku: Some("ESP".into()),
            category: None,
            per,
            stamp_expiry_days: expiry,
            reward: "a free espresso".into(),
            reward_sku: Some("ESP".into()),
        };
        PunchCard::parse(&file).unwrap()
    }

    fn day(d: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::days(d)
    }

    #[test]
    fn items_earn_stamps_and_full_cards_issue_rewards() {
        let c = card(StampPer::Item, None);
        let none = BTreeMap::new();
        let lines = [line("ESP", 2), line("TEA", 5)];
        assert_eq!(c.stamps_for_lines(&lines, &none), 2);
        assert_eq!(card(StampPer::Order, None).stamps_for_lines(&lines, &none), 1);
        let mut state = CardState::default();
        let out = state.punch(&c, OrderId::from_key(1), 2, day(0));
        assert!(out.completed.is_empty());
        state.apply(&out);
        let out = state.punch(&c, OrderId::from_key(2), 5, day(1));
        assert_eq!(
            out.completed,
            vec![
                CompletedCard { number: 1, stamps: vec![1, 2, 3] },
                CompletedCard { number: 2, stamps: vec![4, 5, 6] }
            ]
        );
        state.apply(&out);
        assert_eq!((state.live(day(1)), state.completed), (1, 2));
    }

    #[test]
    fn stamps_expire() {
        let c = card(StampPer::Item, Some(30));
        let mut state = CardState::default();
        state.apply(&state.punch(&c, OrderId::from_key(1), 2, day(0)));
        let out = state.punch(&c, OrderId::from_key(2), 1, day(30));
        assert!(out.completed.is_empty(), "the first two expired on day 30");
        state.apply(&out);
        assert_eq!(state.live(day(30)), 1);
    }

    #[test]
    fn refunds_remove_the_stamps_they_earned() {
        let c = card(StampPer::Item, None);
        let lines = [line("ESP", 2), line("TEA", 1)];
        let none = BTreeMap::new();
        let refund = [
            RefundLine { line: 0, quantity: 1, amount_minor: 250 },
            RefundLine { line: 1, quantity: 1, amount_minor: 250 },
        ];
        assert_eq!(c.stamps_for_refund(&lines, &[0, 0], &refund, &none), 1);
        let per_order = card(StampPer::Order, None);
        assert_eq!(per_order.stamps_for_refund(&lines, &[0, 0], &refund, &none), 0, "one espresso is kept");
        assert_eq!(per_order.stamps_for_refund(&lines, &[1, 0], &refund, &none), 1, "the last one goes back");

        let mut state = CardState::default();
        state.apply(&state.punch(&c, OrderId::from_key(1), 2, day(0)));
        state.apply(&state.punch(&c, OrderId::from_key(2), 2, day(1)));
        // Card 1 used stamps 1, 2 (order 1) and 3 (order 2); stamp 4 of order 2 is live.
        assert_eq!(state.unstamp(OrderId::from_key(2), 2), (vec![4], 1));
        state.remove(&[4]);
        assert_eq!(state.live(day(2)), 0);
    }
}
