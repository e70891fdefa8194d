//! Who may do what: the roles an API key carries and the one table that decides.

use std::fmt;
use std::str::FromStr;

/// The role of an API key or a staff member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Runs the business: may do everything.
    Owner,
    /// Reads customers, orders and figures; changes nothing.
    Analyst,
    /// Works the service desk: reads orders, keeps customer details up to date.
    Agent,
    /// A till: looks customers up, enrols them, records orders and refunds.
    Cashier,
    /// A web shop or other system: keeps customers, products, orders and refunds in step.
    Integration,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Owner, Role::Analyst, Role::Agent, Role::Cashier, Role::Integration];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Analyst => "analyst",
            Role::Agent => "agent",
            Role::Cashier => "cashier",
            Role::Integration => "integration",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}: expected one of owner, analyst, agent, cashier, integration"))
    }
}

/// Everything the API lets a caller do, one variant per kind of operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    CustomersRead,
    CustomersWrite,
    ProductsRead,
    ProductsWrite,
    OrdersRead,
    OrdersWrite,
    RefundsWrite,
    /// Export everything stored about one customer.
    PrivacyExport,
    /// Erase one customer's personal data.
    PrivacyErase,
    KeysManage,
    /// Read analytics: metrics, cohorts, segments, models, the at-risk list.
    AnalyticsRead,
    /// Recompute the analytics snapshot now.
    AnalyticsRefresh,
    /// Read a wallet, its statement, and what an order would earn (the dry run).
    LoyaltyRead,
    /// Spend points: redeem, place a hold, capture or void it. (Points are earned by recording orders.)
    LoyaltySpend,
    /// Correct a wallet by hand.
    LoyaltyAdjust,
    /// Read and define the loyalty program.
    LoyaltyProgram,
    /// Earn the points of a custom event (a review, a newsletter sign-up) posted by the shop.
    LoyaltyEarn,
    /// Read the loyalty events engagement acts on ("points expiring").
    LoyaltyEvents,
}

impl Operation {
    pub const ALL: [Operation; 18] = [
        Operation::CustomersRead,
        Operation::CustomersWrite,
        Operation::ProductsRead,
        Operation::ProductsWrite,
        Operation::OrdersRead,
        Operation::OrdersWrite,
        Operation::RefundsWrite,
        Operation::PrivacyExport,
        Operation::PrivacyErase,
        Operation::KeysManage,
        Operation::AnalyticsRead,
        Operation::AnalyticsRefresh,
        Operation::LoyaltyRead,
        Operation::LoyaltySpend,
        Operation::LoyaltyAdjust,
        Operation::LoyaltyProgram,
        Operation::LoyaltyEarn,
        Operation::LoyaltyEvents,
    ];
}

/// The one table that decides whether `role` may perform `operation`.
///
/// Loyalty: every role may read wallets (the analyst for figures, the agent to answer a customer, the till
/// and the shop to show a balance); the till and the shop spend points (points are earned by recording
/// orders, which they may do); only the owner adjusts a wallet by hand or defines the program. The shop
/// (integration) posts custom events that earn points; the analyst and the shop read loyalty events.
pub fn allows(role: Role, operation: Operation) -> bool {
    use Operation::*;
    match role {
        Role::Owner => true,
        Role::Analyst => matches!(
            operation,
            CustomersRead | ProductsRead | OrdersRead | AnalyticsRead | AnalyticsRefresh | LoyaltyRead | LoyaltyEvents
        ),
        Role::Agent => matches!(operation, CustomersRead | CustomersWrite | ProductsRead | OrdersRead | LoyaltyRead),
        Role::Cashier => matches!(
            operation,
            CustomersRead
                | CustomersWrite
                | ProductsRead
                | OrdersRead
                | OrdersWrite
                | RefundsWrite
                | LoyaltyRead
                | LoyaltySpend
        ),
        Role::Integration => matches!(
            operation,
            CustomersRead
                | CustomersWrite
                | ProductsRead
                | ProductsWrite
                | OrdersRead
                | OrdersWrite
                | RefundsWrite
                | LoyaltyRead
                | LoyaltySpend
                | LoyaltyEarn
                | LoyaltyEvents
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_owner_manages_keys_and_privacy() {
        for role in Role::ALL {
            let owner = role == Role::Owner;
            assert_eq!(allows(role, Operation::KeysManage), owner);
            assert_eq!(allows(role, Operation::PrivacyErase), owner);
            assert_eq!(allows(role, Operation::PrivacyExport), owner);
            assert!(allows(role, Operation::CustomersRead));
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!(!allows(Role::Analyst, Operation::OrdersWrite));
        for role in Role::ALL {
            let owner = role == Role::Owner;
            assert_eq!(allows(role, Operation::LoyaltyAdjust), owner);
            assert_eq!(allows(role, Operation::LoyaltyProgram), owner);
            assert!(allows(role, Operation::LoyaltyRead));
            let spends = matches!(role, Role::Owner | Role::Cashier | Role::Integration);
            assert_eq!(allows(role, Operation::LoyaltySpend), spends);
            let earns = matches!(role, Role::Owner | Role::Integration);
            assert_eq!(allows(role, Operation::LoyaltyEarn), earns);
            let events = matches!(role, Role::Owner | Role::Analyst | Role::Integration);
            assert_eq!(allows(role, Operation::LoyaltyEvents), events);
        }
        assert!("root".parse::<Role>().is_err());
    }
}
