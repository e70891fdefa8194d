//! OpenAPI schemas of rewards, punch cards, coupon holds, promotions, checkout pricing and sales (merged
//! into the document by `openapi`).

use regulars_analytics::rfm::SEGMENT_NAMES;
use serde_json::{Value, json};

pub(crate) fn schemas() -> Value {
    let text = json!({ "type": ["string", "null"] });
    let int = json!({ "type": ["integer", "null"], "minimum": 1 });
    let time = json!({ "type": ["string", "null"], "format": "date-time" });
    json!({
        "RewardIn": { "type": "object", "additionalProperties": false, "required": ["key", "name", "cost"], "properties": {
            "key": { "type": "string" }, "name": { "type": "string" },
            "free_item": { "type": ["string", "null"], "description": "a SKU; exactly one of free_item, amount_off_minor, percent_off" },
            "amount_off_minor": int, "currency": text, "percent_off": { "type": ["integer", "null"], "minimum": 1, "maximum": 100 },
            "cost": { "type": "integer", "minimum": 1, "description": "points" }, "stock": { "type": ["integer", "null"], "minimum": 0 },
            "per_customer_limit": int, "valid_from": time, "valid_until": time } },
        "Reward": { "type": "object", "properties": {
            "id": { "type": "string", "example": "rwd_1" }, "key": { "type": "string" }, "name": { "type": "string" },
            "offer": { "type": "object" }, "cost": { "type": "integer" }, "stock": { "type": ["integer", "null"] },
            "issued": { "type": "integer" }, "remaining": { "type": ["integer", "null"] },
            "per_customer_limit": { "type": ["integer", "null"] }, "valid_from": time, "valid_until": time } },
        "RewardRedeemIn": { "type": "object", "additionalProperties": false, "required": ["customer_id"], "properties": {
            "customer_id": { "type": "string" },
            "delivery": { "type": ["string", "null"], "enum": ["code", "offer", null], "description": "code (default): a single-use code; offer: apply it now" } } },
        "RewardRedeemed": { "type": "object", "properties": {
            "redemption_id": { "type": "integer" }, "reward_id": { "type": "string" }, "customer_id": { "type": "string" },
            "points": { "type": "integer" }, "available": { "type": "integer" }, "customer_uses": { "type": "integer" },
            "code": text, "offer": { "type": "object" } } },
        "CouponHoldIn": { "type": "object", "additionalProperties": false, "required": ["customer_id", "ttl_seconds"], "properties": {
            "customer_id": { "type": "string" }, "ttl_seconds": { "type": "integer", "minimum": 1, "maximum": 86400 } } },
        "CouponHold": { "type": "object", "properties": {
            "id": { "type": "string", "example": "chl_1" }, "code": { "type": "string" }, "customer_id": { "type": "string" },
            "status": { "type": "string", "enum": ["open", "confirmed", "released", "expired"] },
            "placed_at": { "type": "string", "format": "date-time" }, "expires_at": { "type": "string", "format": "date-time" },
            "redemption_id": { "type": ["integer", "null"] } } },
        "PromotionIn": { "type": "object", "additionalProperties": false, "required": ["name", "currency"], "properties": {
            "name": { "type": "string" }, "percent_off": int, "amount_off_minor": int, "buy": int, "get": int,
            "get_percent_off": { "type": ["integer", "null"], "minimum": 1, "maximum": 100 }, "sku": text, "category": text,
            "stacking": { "type": ["string", "null"], "enum": ["combinable", "exclusive", null] },
            "minimum_minor": { "type": "integer", "minimum": 0 }, "currency": { "type": "string" },
            "tiers": { "type": "array", "items": { "type": "string" } }, "valid_from": time, "valid_until": time } },
        "Promotion": { "type": "object", "properties": {
            "id": { "type": "string", "example": "prm_1" }, "name": { "type": "string" }, "offer": { "type": "object" },
            "stacking": { "type": "string" }, "minimum": { "$ref": "#/components/schemas/Money" },
            "tiers": { "type": "array", "items": { "type": "string" } }, "valid_from": time, "valid_until": time } },
        "PriceIn": { "type": "object", "additionalProperties": false, "required": ["currency", "lines"], "properties": {
            "customer_id": text, "currency": { "type": "string" },
            "coupons": { "type": "array", "items": { "type": "string" } },
            "lines": { "type": "array", "minItems": 1, "items": { "type": "object", "additionalProperties": false,
                "required": ["sku", "quantity", "unit_price_minor"], "properties": {
                    "sku": { "type": "string" }, "category": text, "quantity": { "type": "integer", "minimum": 1 },
                    "unit_price_minor": { "type": "integer", "minimum": 0 }, "currency": text } } } } },
        "Priced": { "type": "object", "properties": {
            "currency": { "type": "string" },
            "lines": { "type": "array", "items": { "type": "object", "properties": {
                "sku": { "type": "string" }, "quantity": { "type": "integer" }, "unit_price_minor": { "type": "integer" },
                "gross_minor": { "type": "integer" }, "discount_minor": { "type": "integer" }, "total_minor": { "type": "integer" } } } },
            "applied": { "type": "array", "items": { "type": "object" } },
            "coupons": { "type": "array", "items": { "type": "object", "properties": {
                "code": { "type": "string" }, "applied": { "type": "boolean" }, "refusal": text, "detail": text, "gift": text } } },
            "discount_minor": { "type": "integer" }, "total_minor": { "type": "integer", "minimum": 0 },
            "explanation": { "type": "array", "items": { "type": "string" } } } },
        "SaleIn": { "type": "object", "additionalProperties": false,
            "required": ["name", "starts_at", "ends_at", "early_access_from"],
            "description": "name at least one tier or segment; a customer qualifies by either", "properties": {
            "name": { "type": "string" }, "starts_at": { "type": "string", "format": "date-time" },
            "ends_at": { "type": "string", "format": "date-time" }, "early_access_from": { "type": "string", "format": "date-time" },
            "tiers": { "type": "array", "items": { "type": "string" } },
            "segments": { "type": "array", "items": { "type": "string", "enum": SEGMENT_NAMES },
                "description": "RFM segments in the latest analytics snapshot" } } },
        "Sale": { "type": "object", "properties": {
            "id": { "type": "string", "example": "sal_1" }, "name": { "type": "string" },
            "starts_at": { "type": "string", "format": "date-time" }, "ends_at": { "type": "string", "format": "date-time" },
            "early_access_from": { "type": "string", "format": "date-time" }, "tiers": { "type": "array", "items": { "type": "string" } },
            "segments": { "type": "array", "items": { "type": "string" } } } },
        "AccessTokenIn": { "type": "object", "additionalProperties": false, "required": ["customer_id"], "properties": {
            "customer_id": { "type": "string" } } },
        "AccessToken": { "type": "object", "properties": {
            "sale_id": { "type": "string" }, "customer_id": { "type": "string" },
            "tier": { "type": ["string", "null"], "description": "the customer's tier at the grant" },
            "segment": { "type": ["string", "null"], "description": "the customer's segment in the latest snapshot at the grant" },
            "token": { "type": "string", "description": "<sale>.<customer>.<HMAC-SHA256 in hex>" },
            "valid_from": { "type": "string", "format": "date-time" }, "valid_until": { "type": "string", "format": "date-time" } } },
        "Access": { "type": "object", "properties": {
            "valid": { "type": "boolean" }, "sale_id": { "type": "string" }, "customer_id": { "type": "string" },
            "early": { "type": "boolean", "description": "before the sale starts for everyone" } } },
    })
}

/// The request and response schemas of this part's routes.
pub(crate) fn bodies(method: &str, path: &str) -> Option<(Option<&'static str>, &'static str)> {
    Some(match (method, path) {
        ("POST", "/api/v1/rewards") => (Some("RewardIn"), "Reward"),
        ("POST", "/api/v1/rewards/{id}/redeem") => (Some("RewardRedeemIn"), "RewardRedeemed"),
        ("POST", "/api/v1/coupons/{code}/holds") => (Some("CouponHoldIn"), "CouponHold"),
        ("POST", "/api/v1/coupon-holds/{id}/confirm") | ("POST", "/api/v1/coupon-holds/{id}/release") => {
            (None, "CouponHold")
        }
        ("POST", "/api/v1/promotions") => (Some("PromotionIn"), "Promotion"),
        ("POST", "/api/v1/checkout/price") => (Some("PriceIn"), "Priced"),
        ("POST", "/api/v1/sales") => (Some("SaleIn"), "Sale"),
        ("POST", "/api/v1/sales/{id}/access-tokens") => (Some("AccessTokenIn"), "AccessToken"),
        ("GET", "/api/v1/sales/{id}/access") => (None, "Access"),
        _ => return None,
    })
}
