//! Every route of the API with the operation it performs: the table the authorisation middleware,
//! the OpenAPI document and the role tests all read. A route missing here is refused.

use regulars_core::Operation;

/// One route: method, path pattern (axum syntax), the operation it needs (`None`: no key needed).
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub operation: Option<Operation>,
    pub summary: &'static str,
}

const fn route(method: &'static str, path: &'static str, operation: Operation, summary: &'static str) -> Route {
    Route { method, path, operation: Some(operation), summary }
}

const fn public(method: &'static str, path: &'static str, summary: &'static str) -> Route {
    Route { method, path, operation: None, summary }
}

use Operation::*;

pub const ROUTES: &[Route] = &[
    public("GET", "/healthz", "Liveness: the process answers"),
    public("GET", "/readyz", "Readiness: the database answers"),
    public("GET", "/metrics", "Prometheus metrics"),
    public("GET", "/api/v1/openapi.json", "This API's OpenAPI document"),
    route("POST", "/api/v1/customers", CustomersWrite, "Create a customer"),
    route("GET", "/api/v1/customers", CustomersRead, "List customers, or find them by external_id, email or phone"),
    route("GET", "/api/v1/customers/{id}", CustomersRead, "Get a customer"),
    route("PATCH", "/api/v1/customers/{id}", CustomersWrite, "Update a customer; null clears a field"),
    route("GET", "/api/v1/customers/{id}/orders", OrdersRead, "List a customer's orders"),
    route("GET", "/api/v1/customers/{id}/export", PrivacyExport, "Everything stored about a customer"),
    route("POST", "/api/v1/customers/{id}/erase", PrivacyErase, "Erase a customer's personal data, keeping orders"),
    route("POST", "/api/v1/products", ProductsWrite, "Create a product, or update the one with the same SKU"),
    route("GET", "/api/v1/products", ProductsRead, "List products"),
    route("GET", "/api/v1/products/{id}", ProductsRead, "Get a product"),
    route("POST", "/api/v1/orders", OrdersWrite, "Record an order (once per external_id)"),
    route("GET", "/api/v1/orders/{id}", OrdersRead, "Get an order"),
    route("POST", "/api/v1/orders/{id}/refunds", RefundsWrite, "Refund an order, whole or per line"),
    route("GET", "/api/v1/orders/{id}/refunds", OrdersRead, "List an order's refunds"),
    route("GET", "/api/v1/customers/{id}/predictions", CustomersRead, "A customer's figures from the latest snapshot"),
    route("GET", "/api/v1/analytics/summary", AnalyticsRead, "The latest snapshot: size, models, shop metrics, CLV"),
    route("GET", "/api/v1/analytics/metrics", AnalyticsRead, "Retention metrics by period, for all or one segment"),
    route("GET", "/api/v1/analytics/cohorts", AnalyticsRead, "Cohort retention table"),
    route("GET", "/api/v1/analytics/segments", AnalyticsRead, "RFM segments with counts and the RFM grid"),
    route("GET", "/api/v1/analytics/at-risk", AnalyticsRead, "Customers ordered by value at risk"),
    route("POST", "/api/v1/analytics/snapshot", AnalyticsRefresh, "Recompute the analytics snapshot now"),
    route("GET", "/api/v1/customers/{id}/wallet", LoyaltyRead, "A customer's points: balances and lots"),
    route("GET", "/api/v1/customers/{id}/wallet/statement", LoyaltyRead, "Every posting of a wallet in plain words"),
    route("POST", "/api/v1/customers/{id}/wallet/redeem", LoyaltySpend, "Spend available points"),
    route("POST", "/api/v1/customers/{id}/wallet/holds", LoyaltySpend, "Reserve points for a checkout, with a timeout"),
    route("POST", "/api/v1/holds/{id}/capture", LoyaltySpend, "Spend a hold's points, all or part; the rest go back"),
    route("POST", "/api/v1/holds/{id}/void", LoyaltySpend, "Release a hold's points"),
    route("POST", "/api/v1/customers/{id}/wallet/adjust", LoyaltyAdjust, "Correct a wallet by hand (owner only)"),
    route("PUT", "/api/v1/loyalty/program", LoyaltyProgram, "Define the loyalty program (TOML); errors name the field"),
    route("GET", "/api/v1/loyalty/program", LoyaltyProgram, "The current loyalty program (TOML) and its version"),
    route("POST", "/api/v1/loyalty/dry-run", LoyaltyRead, "What an order would earn, and why"),
    route(
        "GET",
        "/api/v1/customers/{id}/tier",
        LoyaltyRead,
        "A customer's tier, its benefits and clocks, and every change",
    ),
    route("POST", "/api/v1/customers/{id}/events", LoyaltyEarn, "Earn a custom event's points (the program's events)"),
    route("GET", "/api/v1/loyalty/events", LoyaltyEvents, "Events for engagement, oldest first (?kind=&cursor=)"),
    route("POST", "/api/v1/coupons", LoyaltyProgram, "Create a batch of coupon codes with their offer and limits"),
    route("GET", "/api/v1/coupons/{code}", LoyaltyRead, "Validate a coupon without using it (?customer_id=...)"),
    route("POST", "/api/v1/coupons/{code}/redeem", LoyaltySpend, "Redeem a coupon for a customer"),
    route("POST", "/api/v1/rewards", LoyaltyProgram, "Add a reward to the catalogue (points cost, stock, limits)"),
    route("GET", "/api/v1/rewards", LoyaltyRead, "The rewards catalogue with stock left"),
    route(
        "POST",
        "/api/v1/rewards/{id}/redeem",
        LoyaltySpend,
        "Spend points on a reward: a single-use code or the offer",
    ),
    route(
        "GET",
        "/api/v1/customers/{id}/punch-cards",
        LoyaltyRead,
        "A customer's punch cards: stamps and codes issued",
    ),
    route("POST", "/api/v1/coupons/{code}/holds", LoyaltySpend, "Hold a coupon during a checkout; counts as a use"),
    route("POST", "/api/v1/coupon-holds/{id}/confirm", LoyaltySpend, "Turn a coupon hold into a redemption"),
    route("POST", "/api/v1/coupon-holds/{id}/release", LoyaltySpend, "Release a coupon hold"),
    route("POST", "/api/v1/promotions", LoyaltyProgram, "Define a promotion (validity, minimum order, tiers)"),
    route("GET", "/api/v1/promotions", LoyaltyRead, "List promotions"),
    route("POST", "/api/v1/checkout/price", LoyaltyRead, "Price a cart with promotions and coupons (writes nothing)"),
    route("POST", "/api/v1/sales", LoyaltyProgram, "Define a sale with early access for some tiers or RFM segments"),
    route("POST", "/api/v1/sales/{id}/access-tokens", LoyaltySpend, "Issue a signed early-access token to a customer"),
    route("GET", "/api/v1/sales/{id}/access", LoyaltyRead, "Check an early-access token (?token=...)"),
    route("POST", "/api/v1/keys", KeysManage, "Create an API key (its secret is shown once)"),
    route("GET", "/api/v1/keys", KeysManage, "List API keys"),
    route("POST", "/api/v1/keys/{prefix}/revoke", KeysManage, "Revoke an API key"),
];

pub fn find(method: &str, path: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|r| r.method == method && r.path == path)
}
