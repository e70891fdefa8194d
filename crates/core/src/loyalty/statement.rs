//! The statement: every posting of a wallet in plain words, `+40: order 1043, 1 point per EUR, 2x in tier Gold`.
//!
//! A line's sign is what the posting did to the customer's total (available + pending + held − owed): `+`
//! for points that came in, `-` for points that went out, none for moves within the wallet (points
//! maturing, held, released, or repaying a debt) and for write-offs, which forgive without moving the
//! customer's points. Postings of one request with the same reason and accounts (one redemption spread over
//! several lots) make one line.

use std::fmt;

use chrono::{DateTime, Utc};

use super::points::Points;
use super::wallet::{Account, EarnReason, EarnRule, Posting, Reason, Release};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementLine {
    pub at: DateTime<Utc>,
    /// The change to the customer's total; zero for moves within the wallet.
    pub change: Points,
    /// The points the posting moved.
    pub points: Points,
    pub text: String,
}

impl fmt::Display for StatementLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.change.get() {
            c if c > 0 => write!(f, "+{c}: {}", self.text),
            c if c < 0 => write!(f, "{c}: {}", self.text),
            _ => write!(f, "{}: {}", self.points, self.text),
        }
    }
}

/// The statement of a wallet's postings, in the order given.
pub fn statement(postings: &[Posting]) -> Vec<StatementLine> {
    let mut lines: Vec<(StatementLine, &Posting)> = Vec::new();
    for p in postings {
        let change = match (p.debit.in_wallet(), p.credit.in_wallet()) {
            (false, true) => p.points,
            (true, false) => -p.points,
            _ => Points::ZERO,
        };
        if let Some((last, first)) = lines.last_mut() {
            let same = first.request.is_some()
                && first.request == p.request
                && first.reason == p.reason
                && (first.debit, first.credit, first.hold, first.at) == (p.debit, p.credit, p.hold, p.at);
            if same {
                last.points += p.points;
                last.change += change;
                continue;
            }
        }
        lines.push((StatementLine { at: p.at, change, points: p.points, text: describe(p) }, p));
    }
    lines.into_iter().map(|(line, _)| line).collect()
}

fn describe(p: &Posting) -> String {
    let hold = p.hold.map(|h| h.to_string()).unwrap_or_default();
    match &p.reason {
        Reason::Earned(reason) => describe_earning(reason, p.credit),
        Reason::Matured => "now available".to_owned(),
        Reason::Redeemed { note: Some(note) } => format!("redeemed, {note}"),
        Reason::Redeemed { note: None } => "redeemed".to_owned(),
        Reason::HoldPlaced => format!("held for a checkout ({hold})"),
        Reason::HoldCaptured => format!("spent at checkout ({hold})"),
        Reason::HoldReleased(Release::Voided) => format!("{hold} voided, back to available"),
        Reason::HoldReleased(Release::Expired) => format!("{hold} expired, back to available"),
        Reason::HoldReleased(Release::NotCaptured) => format!("{hold} not spent, back to available"),
        Reason::Expired if p.debit == Account::Held => format!("expired when {hold} released them"),
        Reason::Expired => "expired".to_owned(),
        Reason::ClawedBack { order, refund } => format!("order {} refunded ({refund})", order.number),
        Reason::DebtRecorded { order, refund } => {
            format!("order {} refunded ({refund}); already spent, owed", order.number)
        }
        Reason::WrittenOff { order, refund } => {
            format!("order {} refunded ({refund}); already spent, written off", order.number)
        }
        Reason::DebtRepaid => "repaid what was owed".to_owned(),
        Reason::Adjusted { note } => format!("adjustment, {note}"),
    }
}

fn describe_earning(reason: &EarnReason, credit: Account) -> String {
    let rule = match &reason.rule {
        EarnRule::Purchase { points_per_unit, currency, tier, multiplied_lines } => {
            let mut s = format!("{points_per_unit} per {currency}");
            if let Some(t) = tier {
                s.push_str(&format!(", {} in tier {}", t.multiplier, t.tier));
            }
            match multiplied_lines {
                0 => {}
                1 => s.push_str(", a product multiplier on 1 line"),
                n => s.push_str(&format!(", product multipliers on {n} lines")),
            }
            s
        }
        EarnRule::WelcomeBonus => "welcome bonus".to_owned(),
        EarnRule::NthPurchase { n } => format!("bonus on purchase number {n}"),
        EarnRule::BigSpender { above } => format!("bonus for spending at least {above}"),
        EarnRule::SignUp => "sign-up bonus".to_owned(),
        EarnRule::Birthday { year } => format!("birthday bonus {year}"),
        EarnRule::Referrer { friend } => format!("referral bonus: {friend} made a first purchase"),
        EarnRule::ReferredFriend { referrer } => format!("bonus for joining through {referrer}"),
        EarnRule::Event { name } => format!("event {name}"),
    };
    let pending = if credit == Account::Pending { " (pending)" } else { "" };
    match &reason.order {
        Some(order) => format!("order {}, {rule}{pending}", order.number),
        None => format!("{rule}{pending}"),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::ids::{OrderId, RefundId};
    use crate::loyalty::ledger::{Clawback, Command, Earn, EarnPart, Request, Shortfall, execute};
    use crate::loyalty::points::Multiplier;
    use crate::loyalty::wallet::{LotSource, OrderRef, RequestId, TierBoost, WalletState};
    use crate::money::Currency;

    #[test]
    fn postings_read_as_plain_words() {
        let now = Utc.with_ymd_and_hms(2026, 4, 1, 9, 0, 0).unwrap();
        let order = OrderRef { id: OrderId::from_key(43), number: "1043".into() };
        let purchase = EarnRule::Purchase {
            points_per_unit: 1,
            currency: Currency::parse("c", "EUR").unwrap(),
            tier: Some(TierBoost { tier: "Gold".into(), multiplier: Multiplier::parse("m", "2").unwrap() }),
            multiplied_lines: 0,
        };
        let part = |rule, points| EarnPart {
            reason: EarnReason { rule, order: Some(order.clone()) },
            points: Points::new(points),
        };
        let mut state = WalletState::default();
        let mut postings = Vec::new();
        let mut run = |id: &str, command| {
            let outcome = execute(&state, &Request { id: RequestId::parse("id", id).unwrap(), command }, now).unwrap();
            state.apply(&outcome);
            postings.extend(outcome.postings);
        };
        run("a", Command::Adjust { points: Points::new(10), note: "welcome gift".into(), expires_at: None });
        let parts = vec![part(purchase, 40), part(EarnRule::WelcomeBonus, 100)];
        run(
            "b",
            Command::Earn(Earn {
                parts,
                source: LotSource::Order(order.clone()),
                available_from: now,
                expires_at: None,
            }),
        );
        run("c", Command::Redeem { points: Points::new(120), note: Some("reward: free croissant".into()) });
        let refund = RefundId::from_key(5);
        let clawback = Clawback {
            order: order.clone(),
            refund,
            order_net_minor: 2000,
            refunded_total_minor: 1000,
            shortfall: Shortfall::Debt,
        };
        run("d", Command::Clawback(clawback));
        let text: Vec<String> = statement(&postings).iter().map(|l| l.to_string()).collect();
        assert_eq!(
            text,
            vec![
                "+10: adjustment, welcome gift",
                "+40: order 1043, 1 per EUR, 2x in tier Gold",
                "+100: order 1043, welcome bonus",
                "-120: redeemed, reward: free croissant",
                "-30: order 1043 refunded (ref_5)",
                "-40: order 1043 refunded (ref_5); already spent, owed",
            ]
        );
    }
}
