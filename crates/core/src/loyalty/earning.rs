//! What an order or an event earns, and why: the dry run, and the parts a ledger `Earn` is made of.
//!
//! The rules for an order, applied in this order and all stacking:
//! 1. An order in another currency than the program's earns nothing.
//! 2. **Purchase points.** Each line counts its net amount (after its discounts and promotions) times its
//!    product multiplier: the SKU's if it has one, otherwise its category's, otherwise 1x (a SKU multiplier
//!    replaces a category multiplier; they do not multiply). The sum is multiplied by the tier's multiplier
//!    and by `points_per_unit`, and **rounded down once per order**, in integers:
//!    `floor(Σ(net_minor × line_hundredths) × tier_hundredths × points_per_unit / (100 × 100 × 10^minor_digits))`.
//! 3. **Welcome bonus** on the customer's first purchase.
//! 4. **Nth purchase** bonuses: every rule whose `n` is this purchase's number (or divides it, with `repeat`).
//! 5. **Big spender**: the bonus of the highest threshold the order's net amount reaches (at least `above`).
//! 6. **Referral**: on a referred customer's first purchase, the friend's bonus, and the referrer's bonus
//!    for the referrer's wallet.
//!
//! Fixed bonuses are not multiplied by the tier. Points from orders (and the referrer's) are pending for
//! the program's `lock_days`; sign-up, birthday and event points are available at once.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::ids::{CustomerId, RefundId};
use crate::money::{Currency, Money};
use crate::order::{Order, OrderLine, Sku};

use super::ledger::{Clawback, Command, Earn, EarnPart};
use super::points::{Multiplier, Points};
use super::program::Program;
use super::refusal::Refusal;
use super::wallet::{EarnReason, EarnRule, LotSource, OrderRef, TierBoost};

/// What the rules need to know about the customer at the time of the order.
#[derive(Debug, Clone, Copy)]
pub struct CustomerContext<'a> {
    pub customer: CustomerId,
    pub tier: Option<&'a str>,
    /// Purchases the customer made before this one.
    pub orders_before: u32,
    pub referred_by: Option<CustomerId>,
}

/// What an order earns: the parts for the customer's wallet, the referrer's part for theirs, and the
/// explanation in plain words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderEarning {
    pub parts: Vec<EarnPart>,
    pub total: Points,
    pub referrer: Option<(CustomerId, EarnPart)>,
    pub explanation: Vec<String>,
}

/// The dry run for a stored order.
pub fn earn_for_order(
    program: &Program,
    order: &Order,
    categories: &BTreeMap<Sku, String>,
    customer: CustomerContext<'_>,
) -> OrderEarning {
    let reference = OrderRef::new(order.id, order.external_id.as_ref());
    earn_for_lines(program, Some(&reference), order.currency, &order.lines, categories, customer)
}

/// The dry run for order lines, recorded or not (`order` is `None` before the order exists).
pub fn earn_for_lines(
    program: &Program,
    order: Option<&OrderRef>,
    currency: Currency,
    lines: &[OrderLine],
    categories: &BTreeMap<Sku, String>,
    customer: CustomerContext<'_>,
) -> OrderEarning {
    let rules = &program.earning;
    let money = |minor| Money::new(minor, currency);
    let part = |rule, points| EarnPart { reason: EarnReason { rule, order: order.cloned() }, points };
    let mut parts = Vec::new();
    let mut explanation = Vec::new();
    if currency != program.currency {
        explanation
            .push(format!("the order is in {currency} and the program earns on {}: no points", program.currency));
        return OrderEarning { parts, total: Points::ZERO, referrer: None, explanation };
    }

    let mut weighted: i128 = 0;
    let mut multiplied_lines = 0;
    for (i, line) in lines.iter().enumerate() {
        let (multiplier, why) = match (rules.skus.get(&line.sku), categories.get(&line.sku)) {
            (Some(m), _) => (*m, format!("SKU {}", line.sku.as_str())),
            (None, Some(c)) if rules.categories.contains_key(c) => (rules.categories[c], format!("category {c}")),
            _ => (Multiplier::ONE, String::new()),
        };
        if multiplier != Multiplier::ONE {
            multiplied_lines += 1;
            explanation.push(format!("line {} ({}): {multiplier} for {why}", i + 1, line.sku.as_str()));
        }
        weighted += i128::from(line.net_minor()) * i128::from(multiplier.hundredths());
    }
    let tier = customer.tier.and_then(|name| program.tiers.as_ref()?.get(name));
    let tier_multiplier = tier.map_or(Multiplier::ONE, |t| t.benefits.multiplier);
    let scale = 100 * 100 * 10i128.pow(u32::from(currency.minor_digits()));
    let purchase = weighted * i128::from(tier_multiplier.hundredths()) * i128::from(rules.points_per_unit) / scale;
    let purchase = Points::new(purchase.min(i128::from(Points::MAX_REQUEST)) as i64);
    let net: i64 = lines.iter().map(OrderLine::net_minor).sum();
    if rules.points_per_unit > 0 {
        let in_tier = match tier {
            Some(t) if tier_multiplier != Multiplier::ONE => format!(", {tier_multiplier} in tier {}", t.name),
            _ => String::new(),
        };
        explanation.push(format!(
            "{} net at {} per {currency}{in_tier}: {purchase} points (rounded down once per order)",
            money(net),
            plural(rules.points_per_unit, "point"),
        ));
        let boost = tier
            .filter(|_| tier_multiplier != Multiplier::ONE)
            .map(|t| TierBoost { tier: t.name.clone(), multiplier: tier_multiplier });
        let rule =
            EarnRule::Purchase { points_per_unit: rules.points_per_unit, currency, tier: boost, multiplied_lines };
        parts.push(part(rule, purchase));
    }

    let number = customer.orders_before + 1;
    if customer.orders_before == 0 && rules.welcome_bonus.is_positive() {
        explanation.push(format!("welcome bonus on the first purchase: {}", rules.welcome_bonus));
        parts.push(part(EarnRule::WelcomeBonus, rules.welcome_bonus));
    }
    for rule in &rules.nth_purchase {
        if number == rule.n || (rule.repeat && number.is_multiple_of(rule.n)) {
            explanation.push(format!("bonus on purchase number {number}: {}", rule.points));
            parts.push(part(EarnRule::NthPurchase { n: rule.n }, Points::new(rule.points)));
        }
    }
    if let Some(&(above, points)) = rules.big_spender.iter().rev().find(|(above, _)| net >= *above) {
        explanation.push(format!("bonus for an order of at least {}: {points}", money(above)));
        parts.push(part(EarnRule::BigSpender { above: money(above) }, points));
    }
    let mut referrer = None;
    if let (0, Some(by), Some((for_referrer, for_friend))) =
        (customer.orders_before, customer.referred_by, rules.referral)
    {
        explanation
            .push(format!("first purchase of a friend referred by {by}: {for_friend}, and {for_referrer} for {by}"));
        parts.push(part(EarnRule::ReferredFriend { referrer: by }, for_friend));
        let reason = EarnReason { rule: EarnRule::Referrer { friend: customer.customer }, order: None };
        referrer = Some((by, EarnPart { reason, points: for_referrer }));
    }
    parts.retain(|p| p.points.is_positive());
    let total = parts.iter().map(|p| p.points).sum();
    explanation.push(format!("total: {total} points"));
    OrderEarning { parts, total, referrer, explanation }
}

fn plural(n: u32, word: &str) -> String {
    if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") }
}

impl OrderEarning {
    /// The ledger request for the customer's points, pending through the lock period. Its request id is
    /// [`super::wallet::RequestId::for_order`].
    pub fn command(&self, program: &Program, order: &OrderRef, now: DateTime<Utc>) -> Command {
        earn_command(program, self.parts.clone(), LotSource::Order(order.clone()), true, now)
    }

    /// The ledger request for the referrer's points, with request id
    /// [`super::wallet::RequestId::for_referral`] of the friend.
    pub fn referrer_command(&self, program: &Program, now: DateTime<Utc>) -> Option<(CustomerId, Command)> {
        let (referrer, part) = self.referrer.clone()?;
        Some((referrer, earn_command(program, vec![part], LotSource::Award, true, now)))
    }
}

/// An `Earn` request for `parts` at `now`, with the program's lock (when `pending`) and expiry.
pub fn earn_command(
    program: &Program,
    parts: Vec<EarnPart>,
    source: LotSource,
    pending: bool,
    now: DateTime<Utc>,
) -> Command {
    let (available_from, expires_at) = program.lot_times(now, pending);
    Command::Earn(Earn { parts, source, available_from, expires_at })
}

/// The sign-up bonus, if the program has one. Request id: `RequestId::for_sign_up`.
pub fn sign_up(program: &Program) -> Option<EarnPart> {
    let points = program.earning.sign_up;
    points.is_positive().then_some(EarnPart { reason: EarnReason { rule: EarnRule::SignUp, order: None }, points })
}

/// The customer's local date at `now`, in their time zone (or the program's when they have none).
pub fn local_date(now: DateTime<Utc>, time_zone: Tz) -> NaiveDate {
    now.with_timezone(&time_zone).date_naive()
}

/// The birthday bonus if `local_today` (the customer's own calendar) is their birthday. 29 February
/// birthdays are celebrated on 28 February in other years. Request id: `RequestId::for_birthday(year)`,
/// so it is paid once a year.
pub fn birthday(program: &Program, birthday: NaiveDate, local_today: NaiveDate) -> Option<EarnPart> {
    let points = program.earning.birthday;
    let leap_day = (birthday.month(), birthday.day()) == (2, 29);
    let today_is = (local_today.month(), local_today.day()) == (birthday.month(), birthday.day())
        || (leap_day && !local_today.leap_year() && (local_today.month(), local_today.day()) == (2, 28));
    (points.is_positive() && today_is).then(|| EarnPart {
        reason: EarnReason { rule: EarnRule::Birthday { year: local_today.year() }, order: None },
        points,
    })
}

/// The points for a custom event the integration posted, if the customer may still earn them
/// (`times_before`: how often they earned them already).
pub fn event(program: &Program, name: &str, times_before: u32) -> Result<EarnPart, Refusal> {
    let rule = program.earning.events.get(name.trim()).ok_or(Refusal::UnknownEvent)?;
    if rule.limit_per_customer.is_some_and(|limit| times_before >= limit) {
        return Err(Refusal::EventLimitReached);
    }
    Ok(EarnPart {
        reason: EarnReason { rule: EarnRule::Event { name: name.trim().to_owned() }, order: None },
        points: rule.points,
    })
}

/// The ledger request that takes back the points of a refund (request id `RequestId::for_refund`).
pub fn clawback_command(program: &Program, order: &Order, refund: RefundId, refunded_total_minor: i64) -> Command {
    Command::Clawback(Clawback {
        order: OrderRef::new(order.id, order.external_id.as_ref()),
        refund,
        order_net_minor: order.total_minor,
        refunded_total_minor,
        shortfall: program.shortfall,
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::ids::OrderId;
    use crate::loyalty::program::tests::example;
    use crate::order::Quantity;
    use crate::text::ExternalId;

    fn line(sku: &str, q: i64, unit: i64, discount: i64) -> OrderLine {
        OrderLine::new(Sku::parse("s", sku).unwrap(), None, Quantity::new("q", q).unwrap(), unit, discount).unwrap()
    }

    fn order(lines: Vec<OrderLine>) -> Order {
        Order {
            id: OrderId::from_key(43),
            external_id: Some(ExternalId::parse("e", "1043").unwrap()),
            customer_id: CustomerId::from_key(1),
            placed_at: DateTime::UNIX_EPOCH,
            currency: Currency::parse("c", "EUR").unwrap(),
            total_minor: lines.iter().map(OrderLine::net_minor).sum(),
            lines,
            refunded_minor: 0,
        }
    }

    fn regular(tier: Option<&str>, orders_before: u32) -> CustomerContext<'_> {
        CustomerContext { customer: CustomerId::from_key(1), tier, orders_before, referred_by: None }
    }

    fn categories() -> BTreeMap<Sku, String> {
        BTreeMap::from([(Sku::parse("s", "CROISSANT").unwrap(), "pastry".to_owned())])
    }

    #[test]
    fn purchase_points_round_down_once_per_order() {
        // 3 x 3.33 = 9.99 and 2 x 0.99 = 1.98 would round down to 9 + 1 per line; once per order it is 11.
        let o = order(vec![line("A", 3, 333, 0), line("B", 2, 99, 0)]);
        let e = earn_for_order(&example(), &o, &BTreeMap::new(), regular(None, 3));
        assert_eq!(e.total, Points::new(11));
        assert_eq!(e.explanation[0], "11.97 EUR net at 1 point per EUR: 11 points (rounded down once per order)");
    }

    #[test]
    fn multipliers_stack_line_then_tier_and_bonuses_do_not_multiply() {
        let o = order(vec![line("BEANS-1KG", 2, 2000, 0), line("CROISSANT", 4, 250, 100), line("MILK", 1, 150, 0)]);
        let e = earn_for_order(&example(), &o, &categories(), regular(Some("Gold"), 0));
        // (40.00 x 3 + 9.00 x 0.5 + 1.50) x 2 = 252; + welcome 100; 50.50 EUR is at least 50.00 EUR: + 50.
        let points: Vec<i64> = e.parts.iter().map(|p| p.points.get()).collect();
        assert_eq!(points, vec![252, 100, 50]);
        assert_eq!(e.total, Points::new(402));
        assert!(e.explanation.iter().any(|l| l == "line 2 (CROISSANT): 0.5x for category pastry"));
        let EarnRule::Purchase { tier: Some(boost), multiplied_lines, .. } = &e.parts[0].reason.rule else {
            panic!("a purchase part with a tier boost");
        };
        assert_eq!((boost.tier.as_str(), boost.multiplier.to_string(), *multiplied_lines), ("Gold", "2x".into(), 2));
        assert_eq!(e.parts[0].reason.order.as_ref().unwrap().number, "1043");
    }

    #[test]
    fn nth_purchase_big_spender_and_referral() {
        let program = example();
        let big = order(vec![line("A", 1, 12000, 0)]);
        let e = earn_for_order(&program, &big, &BTreeMap::new(), regular(None, 19));
        let rules: Vec<&str> = e.parts.iter().map(|p| p.reason.rule.kind()).collect();
        assert_eq!(rules, vec!["purchase", "nth_purchase", "big_spender"], "the 20th purchase, 120.00 EUR");
        assert_eq!(e.parts[2].points, Points::new(150), "only the highest threshold");
        let third = earn_for_order(&program, &big, &BTreeMap::new(), regular(None, 2));
        assert_eq!(third.parts[1].reason.rule, EarnRule::NthPurchase { n: 3 });

        let referrer = CustomerId::from_key(9);
        let friend = CustomerContext { referred_by: Some(referrer), ..regular(None, 0) };
        let e = earn_for_order(&program, &order(vec![line("A", 1, 500, 0)]), &BTreeMap::new(), friend);
        assert_eq!(e.parts.last().unwrap().reason.rule, EarnRule::ReferredFriend { referrer });
        let (who, part) = e.referrer.clone().unwrap();
        assert_eq!((who, part.points), (referrer, Points::new(200)));
        let now = Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap();
        let Some((_, Command::Earn(earn))) = e.referrer_command(&program, now) else { panic!("an earn") };
        assert_eq!(earn.available_from, now + chrono::Duration::days(14));
    }

    #[test]
    fn an_order_earns_once_through_the_ledger_and_its_refund_takes_the_points_back() {
        use crate::loyalty::ledger::{Request, execute};
        use crate::loyalty::wallet::{RequestId, WalletState};
        let program = example();
        let o = order(vec![line("A", 2, 1000, 0)]);
        let e = earn_for_order(&program, &o, &BTreeMap::new(), regular(None, 0));
        assert_eq!(e.total, Points::new(120), "20 for 20.00 EUR and the welcome bonus");
        let now = Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap();
        let reference = OrderRef::new(o.id, o.external_id.as_ref());
        let earn = Request { id: RequestId::for_order(o.id), command: e.command(&program, &reference, now) };
        let mut state = WalletState::default();
        state.apply(&execute(&state, &earn, now).unwrap());
        assert_eq!(state.balances.pending, Points::new(120));
        assert!(execute(&state, &earn, now + chrono::Duration::minutes(1)).unwrap().replayed);
        let refund = RefundId::from_key(1);
        let clawback =
            Request { id: RequestId::for_refund(refund), command: clawback_command(&program, &o, refund, 1000) };
        let outcome = execute(&state, &clawback, now).unwrap();
        assert_eq!(outcome.receipt.points, Points::new(60), "half the order, half its points");
        state.apply(&outcome);
        assert_eq!(state.balances.pending, Points::new(60));
    }

    #[test]
    fn other_currencies_earn_nothing() {
        let mut o = order(vec![line("A", 1, 5000, 0)]);
        o.currency = Currency::parse("c", "USD").unwrap();
        let e = earn_for_order(&example(), &o, &BTreeMap::new(), regular(None, 0));
        assert_eq!((e.total, e.parts.len()), (Points::ZERO, 0));
        assert!(e.explanation[0].contains("USD"));
    }

    #[test]
    fn events_birthdays_and_sign_up() {
        let program = example();
        assert_eq!(sign_up(&program).unwrap().points, Points::new(50));
        let born = NaiveDate::from_ymd_opt(1992, 2, 29).unwrap();
        assert!(birthday(&program, born, NaiveDate::from_ymd_opt(2026, 2, 28).unwrap()).is_some());
        assert!(birthday(&program, born, NaiveDate::from_ymd_opt(2028, 2, 28).unwrap()).is_none());
        assert!(birthday(&program, born, NaiveDate::from_ymd_opt(2028, 2, 29).unwrap()).is_some());
        // 23:30 UTC on 9 March is already 10 March in Berlin.
        let now = Utc.with_ymd_and_hms(2026, 3, 9, 23, 30, 0).unwrap();
        let today = local_date(now, "Europe/Berlin".parse().unwrap());
        let part = birthday(&program, NaiveDate::from_ymd_opt(1990, 3, 10).unwrap(), today).unwrap();
        assert_eq!(part.reason.rule, EarnRule::Birthday { year: 2026 });
        assert_eq!(event(&program, "review", 4).unwrap().points, Points::new(20));
        assert_eq!(event(&program, "review", 5), Err(Refusal::EventLimitReached));
        assert_eq!(event(&program, "tweet", 0), Err(Refusal::UnknownEvent));
    }
}
