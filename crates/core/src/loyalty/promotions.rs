//! Promotions and the pricing function that applies them to an order's lines, and says what it did.
//!
//! The rules:
//! - A promotion takes an amount off, a percentage off, makes Y of every X + Y matching items free (or a
//!   percentage off them), or makes a number of matching items free (a reward). It applies to the whole
//!   order or to the lines of one SKU or category, and may need a minimum order (net, before promotions).
//! - **No total goes negative.** Every discount is taken from what is left of a line after earlier
//!   discounts, and never exceeds it; buy-X-get-Y never makes more items free than were bought, and the free
//!   ones are the cheapest.
//! - **Order of application** among combinable promotions: item promotions (buy X get Y, free items) first,
//!   then percentages, then amounts off; within each kind, in the order given.
//! - **Rounding**: a percentage is rounded down per line; an amount off is shared between lines in
//!   proportion to what is left of them, as a difference of cumulative values rounded down, so the shares
//!   add up exactly to the amount.
//! - **Stacking**: the candidates are all combinable promotions together, and each exclusive promotion on
//!   its own; the candidate with the largest discount wins (on a tie, the combinable set, then the
//!   exclusive promotion given first).

use std::collections::BTreeMap;

use crate::money::{Currency, Money};
use crate::order::{OrderLine, Sku};
use crate::text::{FieldError, bounded_text};

use super::punch::Matches;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromotionKind {
    AmountOff {
        minor: i64,
    },
    PercentOff {
        percent: u32,
    },
    /// Of every `buy + get` matching items, the `get` cheapest are `percent_off` off (100: free).
    BuyXGetY {
        buy: u32,
        get: u32,
        percent_off: u32,
    },
    /// The `units` cheapest matching items are free.
    FreeUnits {
        units: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stacking {
    Exclusive,
    Combinable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promotion {
    pub name: String,
    pub kind: PromotionKind,
    /// `None`: the whole order.
    pub target: Option<Matches>,
    pub stacking: Stacking,
    /// The order's net amount needed, in minor units (0 for none).
    pub minimum_minor: i64,
}

impl Promotion {
    pub fn new(
        name: &str,
        kind: PromotionKind,
        target: Option<Matches>,
        stacking: Stacking,
        minimum_minor: i64,
    ) -> Result<Promotion, FieldError> {
        let ok = match &kind {
            PromotionKind::AmountOff { minor } => *minor > 0,
            PromotionKind::PercentOff { percent } => (1..=100).contains(percent),
            PromotionKind::BuyXGetY { buy, get, percent_off } => {
                *buy >= 1 && *get >= 1 && (1..=100).contains(percent_off) && buy.checked_add(*get).is_some()
            }
            PromotionKind::FreeUnits { units } => *units >= 1,
        };
        if !ok {
            return Err(FieldError::new(
                "kind",
                "an amount above 0, a percentage from 1 to 100, or counts of at least 1",
            ));
        }
        if minimum_minor < 0 {
            return Err(FieldError::new("minimum_minor", "must not be negative"));
        }
        Ok(Promotion { name: bounded_text("name", name, 200)?, kind, target, stacking, minimum_minor })
    }

    fn rank(&self) -> u8 {
        match self.kind {
            PromotionKind::BuyXGetY { .. } | PromotionKind::FreeUnits { .. } => 0,
            PromotionKind::PercentOff { .. } => 1,
            PromotionKind::AmountOff { .. } => 2,
        }
    }
}

/// A promotion that applied, and what it took off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedPromotion {
    pub name: String,
    pub discount_minor: i64,
}

/// An order priced with promotions: its lines with the discounts added to `discount_minor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Priced {
    pub lines: Vec<OrderLine>,
    pub applied: Vec<AppliedPromotion>,
    pub discount_minor: i64,
    pub total_minor: i64,
    pub explanation: Vec<String>,
}

struct Candidate {
    discounts: Vec<i64>,
    applied: Vec<AppliedPromotion>,
    explanation: Vec<String>,
}

/// Applies `promotions` to an order's lines under the stacking rules, and explains the result.
pub fn price(
    currency: Currency,
    lines: &[OrderLine],
    categories: &BTreeMap<Sku, String>,
    promotions: &[Promotion],
) -> Priced {
    let combinable: Vec<&Promotion> = promotions.iter().filter(|p| p.stacking == Stacking::Combinable).collect();
    let mut best = apply_all(currency, lines, categories, &combinable);
    let mut best_exclusive: Option<&str> = None;
    for exclusive in promotions.iter().filter(|p| p.stacking == Stacking::Exclusive) {
        let candidate = apply_all(currency, lines, categories, &[exclusive]);
        if candidate.discounts.iter().sum::<i64>() > best.discounts.iter().sum::<i64>() {
            best = candidate;
            best_exclusive = Some(&exclusive.name);
        }
    }
    if let Some(name) = best_exclusive {
        best.explanation.push(format!("{name} is exclusive and gives the most, so no other promotion applies"));
    }
    let lines: Vec<OrderLine> = lines
        .iter()
        .zip(&best.discounts)
        .map(|(line, d)| OrderLine { discount_minor: line.discount_minor + d, ..line.clone() })
        .collect();
    let discount_minor = best.discounts.iter().sum();
    let total_minor = lines.iter().map(OrderLine::net_minor).sum();
    Priced { lines, applied: best.applied, discount_minor, total_minor, explanation: best.explanation }
}

fn apply_all(
    currency: Currency,
    lines: &[OrderLine],
    categories: &BTreeMap<Sku, String>,
    promotions: &[&Promotion],
) -> Candidate {
    let money = |minor| Money::new(minor, currency);
    let order_net: i64 = lines.iter().map(OrderLine::net_minor).sum();
    let mut left: Vec<i64> = lines.iter().map(OrderLine::net_minor).collect();
    let mut candidate = Candidate { discounts: vec![0; lines.len()], applied: Vec::new(), explanation: Vec::new() };
    let mut ordered = promotions.to_vec();
    ordered.sort_by_key(|p| p.rank());
    for promotion in ordered {
        if order_net < promotion.minimum_minor {
            candidate.explanation.push(format!(
                "{}: not applied, the order must be at least {}",
                promotion.name,
                money(promotion.minimum_minor)
            ));
            continue;
        }
        let targets: Vec<usize> = (0..lines.len())
            .filter(|&i| promotion.target.as_ref().is_none_or(|m| m.line(&lines[i], categories)))
            .collect();
        let discounts = discounts(promotion, lines, &left, &targets);
        let total: i64 = discounts.iter().map(|(_, d)| d).sum();
        for (i, d) in discounts {
            left[i] -= d;
            candidate.discounts[i] += d;
            debug_assert!(left[i] >= 0);
        }
        if total > 0 {
            candidate.explanation.push(format!("{}: {} off", promotion.name, money(total)));
            candidate.applied.push(AppliedPromotion { name: promotion.name.clone(), discount_minor: total });
        } else {
            candidate.explanation.push(format!("{}: nothing in the order it applies to", promotion.name));
        }
    }
    candidate
}

/// The discount of one promotion on each target line, given what is left of the lines.
fn discounts(promotion: &Promotion, lines: &[OrderLine], left: &[i64], targets: &[usize]) -> Vec<(usize, i64)> {
    let quantity = |i: usize| i64::from(lines[i].quantity.get());
    // The value of `k` items of line `i` out of what is left of it, rounded down.
    let items_value = |i: usize, k: i64| (i128::from(left[i]) * i128::from(k) / i128::from(quantity(i))) as i64;
    let free_items = |free: i64, percent: u32| {
        let mut cheapest = targets.to_vec();
        cheapest.sort_by(|&a, &b| {
            (i128::from(left[a]) * i128::from(quantity(b)))
                .cmp(&(i128::from(left[b]) * i128::from(quantity(a))))
                .then(a.cmp(&b))
        });
        let mut free_left = free;
        let mut out = Vec::new();
        for i in cheapest {
            let k = free_left.min(quantity(i));
            free_left -= k;
            out.push((i, items_value(i, k) * i64::from(percent) / 100));
        }
        out
    };
    match promotion.kind {
        PromotionKind::PercentOff { percent } => {
            targets.iter().map(|&i| (i, left[i] * i64::from(percent) / 100)).collect()
        }
        PromotionKind::AmountOff { minor } => {
            let pool: i64 = targets.iter().map(|&i| left[i]).sum();
            let amount = minor.min(pool);
            if pool == 0 {
                return Vec::new();
            }
            let share = |cumulative: i64| (i128::from(amount) * i128::from(cumulative) / i128::from(pool)) as i64;
            let mut cumulative = 0;
            targets
                .iter()
                .map(|&i| {
                    let before = share(cumulative);
                    cumulative += left[i];
                    (i, share(cumulative) - before)
                })
                .collect()
        }
        PromotionKind::BuyXGetY { buy, get, percent_off } => {
            let units: i64 = targets.iter().map(|&i| quantity(i)).sum();
            let free = units / (i64::from(buy) + i64::from(get)) * i64::from(get);
            free_items(free, percent_off)
        }
        PromotionKind::FreeUnits { units } => free_items(i64::from(units), 100),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::Quantity;

    fn eur() -> Currency {
        Currency::parse("c", "EUR").unwrap()
    }

    fn line(sku: &str, q: i64, unit: i64) -> OrderLine {
        OrderLine::new(Sku::parse("s", sku).unwrap(), None, Quantity::new("q", q).unwrap(), unit, 0).unwrap()
    }

    fn promo(name: &str, kind: PromotionKind, target: Option<&str>, stacking: Stacking) -> Promotion {
        let target = target.map(|s| Matches::Sku(Sku::parse("s", s).unwrap()));
        Promotion::new(name, kind, target, stacking, 0).unwrap()
    }

    #[test]
    fn buy_two_get_one_makes_the_cheapest_free_and_never_more_than_bought() {
        let lines = [line("MUG", 2, 800), line("CUP", 1, 500)];
        let b2g1 =
            promo("3 for 2", PromotionKind::BuyXGetY { buy: 2, get: 1, percent_off: 100 }, None, Stacking::Combinable);
        let priced = price(eur(), &lines, &BTreeMap::new(), std::slice::from_ref(&b2g1));
        assert_eq!(priced.discount_minor, 500, "the cup is free");
        assert_eq!(priced.total_minor, 1600);
        let priced = price(eur(), &[line("MUG", 2, 800)], &BTreeMap::new(), &[b2g1]);
        assert_eq!(priced.discount_minor, 0, "two items: nothing free");
    }

    #[test]
    fn nothing_goes_negative_and_amounts_are_shared_exactly() {
        let lines = [line("A", 1, 333), line("B", 1, 333), line("C", 1, 334)];
        let off = |minor| promo("off", PromotionKind::AmountOff { minor }, None, Stacking::Combinable);
        let priced = price(eur(), &lines, &BTreeMap::new(), &[off(100)]);
        let shares: Vec<i64> = priced.lines.iter().map(|l| l.discount_minor).collect();
        assert_eq!((shares.iter().sum::<i64>(), shares), (100, vec![33, 33, 34]));
        let priced = price(eur(), &lines, &BTreeMap::new(), &[off(5000), off(5000)]);
        assert_eq!((priced.total_minor, priced.discount_minor), (0, 1000));
        assert!(priced.lines.iter().all(|l| l.net_minor() == 0));
    }

    #[test]
    fn combinable_promotions_apply_items_then_percent_then_amount() {
        let lines = [line("MUG", 3, 1000)];
        let promotions = [
            promo("5 off", PromotionKind::AmountOff { minor: 500 }, None, Stacking::Combinable),
            promo("10%", PromotionKind::PercentOff { percent: 10 }, None, Stacking::Combinable),
            promo(
                "3 for 2",
                PromotionKind::BuyXGetY { buy: 2, get: 1, percent_off: 100 },
                Some("MUG"),
                Stacking::Combinable,
            ),
        ];
        let priced = price(eur(), &lines, &BTreeMap::new(), &promotions);
        // 3000 - 1000 free = 2000; -10% = 1800; -500 = 1300.
        assert_eq!(priced.total_minor, 1300);
        let names: Vec<&str> = priced.applied.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, vec!["3 for 2", "10%", "5 off"]);
        assert_eq!(priced.explanation[0], "3 for 2: 10.00 EUR off");
    }

    #[test]
    fn the_best_of_exclusive_or_combined_wins() {
        let lines = [line("MUG", 1, 1000)];
        let small = promo("2 off", PromotionKind::AmountOff { minor: 200 }, None, Stacking::Combinable);
        let other = promo("1 off", PromotionKind::AmountOff { minor: 100 }, None, Stacking::Combinable);
        let half = promo("half", PromotionKind::PercentOff { percent: 50 }, None, Stacking::Exclusive);
        let priced = price(eur(), &lines, &BTreeMap::new(), &[small.clone(), other.clone(), half]);
        assert_eq!((priced.discount_minor, priced.applied.len()), (500, 1));
        assert!(priced.explanation.last().unwrap().contains("exclusive"));
        let quarter = promo("quarter", PromotionKind::PercentOff { percent: 25 }, None, Stacking::Exclusive);
        let priced = price(eur(), &lines, &BTreeMap::new(), &[small, other, quarter]);
        assert_eq!((priced.discount_minor, priced.applied.len()), (300, 2), "a tie goes to the combined set");
    }

    #[test]
    fn minimums_and_targets_are_respected() {
        let lines = [line("MUG", 1, 1000), line("TEA", 2, 300)];
        let mut p = promo("free tea", PromotionKind::FreeUnits { units: 5 }, Some("TEA"), Stacking::Combinable);
        assert_eq!(price(eur(), &lines, &BTreeMap::new(), &[p.clone()]).discount_minor, 600, "only 2 teas bought");
        p.minimum_minor = 2000;
        let priced = price(eur(), &lines, &BTreeMap::new(), &[p]);
        assert_eq!(priced.discount_minor, 0);
        assert_eq!(priced.explanation, vec!["free tea: not applied, the order must be at least 20.00 EUR"]);
        assert!(
            Promotion::new("x", PromotionKind::PercentOff { percent: 101 }, None, Stacking::Combinable, 0).is_err()
        );
    }
}
