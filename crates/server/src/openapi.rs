//! The OpenAPI 3.1 document, built from the route table so that every route is described.

use serde_json::{Map, Value, json};

use crate::error::ErrorCode;
use crate::routes::ROUTES;

fn loyalty_schemas() -> Value {
    let text = json!({ "type": ["string", "null"] });
    json!({
        "CouponBatchIn": { "type": "object", "additionalProperties": false, "required": ["name", "count"], "properties": {
            "name": { "type": "string" }, "count": { "type": "integer", "minimum": 1, "maximum": 10000 },
            "percent_off": { "type": ["integer", "null"], "minimum": 1, "maximum": 100 },
            "amount_off_minor": { "type": ["integer", "null"], "minimum": 1 }, "currency": text,
            "max_uses": { "type": ["integer", "null"], "minimum": 1, "description": "uses of each code in all; 1 for single-use codes" },
            "max_uses_per_customer": { "type": ["integer", "null"], "minimum": 1 },
            "valid_from": { "type": ["string", "null"], "format": "date-time" }, "valid_until": { "type": ["string", "null"], "format": "date-time" } } },
        "CouponBatch": { "type": "object", "properties": {
            "batch_id": { "type": "integer" }, "name": { "type": "string" }, "codes": { "type": "array", "items": { "type": "string" } } } },
        "CouponRedeemIn": { "type": "object", "additionalProperties": false, "required": ["customer_id"], "properties": {
            "customer_id": { "type": "string" } } },
        "Coupon": { "type": "object", "properties": {
            "code": { "type": "string" }, "batch_id": { "type": "integer" }, "name": { "type": "string" },
            "offer": { "type": "object" }, "uses": { "type": "integer" }, "max_uses": { "type": ["integer", "null"] },
            "max_uses_per_customer": { "type": ["integer", "null"] }, "customer_uses": { "type": "integer" },
            "valid": { "type": "boolean", "description": "validation only: whether a redemption now would be accepted" },
            "refusal": { "type": ["string", "null"], "description": "validation only: the code a redemption would meet" } } },
        "RedeemIn": { "type": "object", "additionalProperties": false, "required": ["points"], "properties": {
            "points": { "type": "integer", "minimum": 1 }, "reason": text } },
        "HoldIn": { "type": "object", "additionalProperties": false, "required": ["points", "ttl_seconds"], "properties": {
            "points": { "type": "integer", "minimum": 1 }, "ttl_seconds": { "type": "integer", "minimum": 1, "maximum": 2_592_000 } } },
        "CaptureIn": { "type": "object", "additionalProperties": false, "properties": {
            "points": { "type": ["integer", "null"], "minimum": 1, "description": "absent: the whole hold" } } },
        "AdjustIn": { "type": "object", "additionalProperties": false, "required": ["points", "reason"], "properties": {
            "points": { "type": "integer", "description": "positive adds available points, negative spends them" }, "reason": { "type": "string" } } },
        "DryRunIn": { "type": "object", "additionalProperties": false, "required": ["currency", "lines"], "properties": {
            "customer_id": text, "currency": { "type": "string" },
            "lines": { "type": "array", "minItems": 1, "items": { "$ref": "#/components/schemas/OrderLineIn" } } } },
        "Balances": { "type": "object", "properties": {
            "available": { "type": "integer" }, "pending": { "type": "integer" }, "held": { "type": "integer" },
            "owed": { "type": "integer", "description": "points taken back by refunds after they were spent" } } },
        "Wallet": { "type": "object", "properties": {
            "customer_id": { "type": "string" }, "available": { "type": "integer" }, "pending": { "type": "integer" },
            "held": { "type": "integer" }, "owed": { "type": "integer" }, "tier": text,
            "lots": { "type": "array", "description": "lots with points left, in spending order (pending last)", "items": { "type": "object", "properties": {
                "lot": { "type": "integer" }, "points": { "type": "integer" }, "remaining": { "type": "integer" },
                "status": { "type": "string", "enum": ["available", "pending"] }, "earned_at": { "type": "string", "format": "date-time" },
                "available_from": { "type": "string", "format": "date-time" }, "expires_at": { "type": ["string", "null"], "format": "date-time" },
                "source": { "type": "string", "enum": ["order", "award", "adjustment"] }, "order_id": text } } } } },
        "LedgerReceipt": { "type": "object", "properties": {
            "customer_id": { "type": "string" }, "points": { "type": "integer" }, "lot": { "type": ["integer", "null"] },
            "wallet": { "$ref": "#/components/schemas/Balances" } } },
        "Hold": { "type": "object", "properties": {
            "id": { "type": "string", "example": "hld_5" }, "customer_id": { "type": "string" },
            "status": { "type": "string", "enum": ["open", "captured", "voided"] }, "points": { "type": "integer" },
            "expires_at": { "type": "string", "format": "date-time" }, "wallet": { "$ref": "#/components/schemas/Balances" } } },
        "Program": { "type": "object", "properties": {
            "version": { "type": "integer" }, "name": { "type": "string" }, "currency": { "type": "string" },
            "defined_at": { "type": "string", "format": "date-time" }, "definition": { "type": "string", "description": "the TOML text" } } },
        "DryRun": { "type": "object", "properties": {
            "program_version": { "type": "integer" }, "points": { "type": "integer" },
            "parts": { "type": "array", "items": { "type": "object", "properties": { "rule": { "type": "string" }, "points": { "type": "integer" } } } },
            "explanation": { "type": "array", "items": { "type": "string" } },
            "available_from": { "type": "string", "format": "date-time" }, "expires_at": { "type": ["string", "null"], "format": "date-time" } } },
        "EventIn": { "type": "object", "additionalProperties": false, "required": ["event"], "properties": {
            "event": { "type": "string", "description": "an event the program's earning.events defines; another is 422" },
            "id": { "type": ["string", "null"], "description": "the shop's id of this occurrence: the same id earns once" },
            "properties": { "type": ["object", "null"], "description": "not stored" } } },
        "Tier": { "type": "object", "properties": {
            "customer_id": { "type": "string" }, "tier": { "type": ["string", "null"] },
            "since": { "type": ["string", "null"], "format": "date-time" },
            "kept_until": { "type": ["string", "null"], "format": "date-time", "description": "end of the qualification period" },
            "below_since": { "type": ["string", "null"], "format": "date-time", "description": "the measure is below the tier's threshold since" },
            "grace_ends_at": { "type": ["string", "null"], "format": "date-time", "description": "one step down then, unless the threshold is reached again" },
            "benefits": { "type": ["object", "null"] },
            "history": { "type": "array", "items": { "type": "object", "properties": {
                "from": { "type": ["string", "null"] }, "to": { "type": ["string", "null"] },
                "reason": { "type": "string", "enum": ["qualified", "downgraded"] }, "measure": { "type": "integer" },
                "threshold": { "type": "integer" }, "at": { "type": "string", "format": "date-time" } } } } } },
    })
}

fn schemas() -> Value {
    let text = json!({ "type": ["string", "null"] });
    let money = json!({ "type": "object", "properties": {
        "amount_minor": { "type": "integer", "description": "integer minor units, e.g. cents" },
        "currency": { "type": "string", "description": "ISO 4217 code" } } });
    let mut all = json!({
        "Problem": { "type": "object", "description": "RFC 9457 problem document", "properties": {
            "type": { "type": "string" }, "title": { "type": "string" }, "status": { "type": "integer" },
            "detail": { "type": "string" }, "field": { "type": "string", "description": "the input at fault, e.g. lines[0].quantity" },
            "code": { "type": "string", "enum": ErrorCode::all_codes() } },
            "required": ["type", "title", "status", "detail", "code"] },
        "Money": money,
        "MarketingConsent": { "type": "object", "properties": {
            "granted": { "type": "boolean" }, "source": text, "recorded_at": { "type": ["string", "null"], "format": "date-time" } },
            "required": ["granted"] },
        "CustomerIn": { "type": "object", "additionalProperties": false, "properties": {
            "external_id": text, "email": text, "phone": text, "name": text,
            "birthday": { "type": ["string", "null"], "format": "date" }, "locale": text,
            "time_zone": { "type": ["string", "null"], "description": "IANA name, e.g. Europe/Berlin" },
            "marketing_consent": { "$ref": "#/components/schemas/MarketingConsent" },
            "attributes": { "type": "object", "additionalProperties": { "type": "string" } },
            "referred_by": { "type": ["string", "null"], "description": "the referring customer (cus_7), on creation" } } },
        "Customer": { "type": "object", "properties": {
            "id": { "type": "string", "example": "cus_42" }, "external_id": text, "email": text, "phone": text,
            "name": text, "birthday": text, "locale": text, "time_zone": text,
            "marketing_consent": { "$ref": "#/components/schemas/MarketingConsent" },
            "attributes": { "type": "object" }, "first_seen_at": { "type": "string", "format": "date-time" },
            "erased_at": { "type": ["string", "null"], "format": "date-time" } } },
        "ProductIn": { "type": "object", "additionalProperties": false, "required": ["sku", "name"], "properties": {
            "sku": { "type": "string" }, "name": { "type": "string" }, "category": text,
            "price_minor": { "type": ["integer", "null"], "minimum": 0 }, "currency": text } },
        "Product": { "type": "object", "properties": {
            "id": { "type": "string", "example": "prd_7" }, "sku": { "type": "string" }, "name": { "type": "string" },
            "category": text, "price": { "$ref": "#/components/schemas/Money" } } },
        "OrderLineIn": { "type": "object", "additionalProperties": false, "required": ["sku", "quantity", "unit_price_minor"], "properties": {
            "sku": { "type": "string" }, "name": text, "quantity": { "type": "integer", "minimum": 1 },
            "unit_price_minor": { "type": "integer", "minimum": 0 }, "discount_minor": { "type": "integer", "minimum": 0 } } },
        "OrderIn": { "type": "object", "additionalProperties": false, "required": ["placed_at", "currency", "lines"], "properties": {
            "external_id": { "type": ["string", "null"], "description": "recording an order whose external_id exists returns the existing order" },
            "customer_id": text, "customer_external_id": text,
            "placed_at": { "type": "string", "format": "date-time" }, "currency": { "type": "string" },
            "lines": { "type": "array", "minItems": 1, "items": { "$ref": "#/components/schemas/OrderLineIn" } } } },
        "Order": { "type": "object", "properties": {
            "id": { "type": "string", "example": "ord_9" }, "external_id": text, "customer_id": { "type": "string" },
            "placed_at": { "type": "string", "format": "date-time" }, "currency": { "type": "string" },
            "total": { "$ref": "#/components/schemas/Money" }, "refunded": { "$ref": "#/components/schemas/Money" },
            "lines": { "type": "array", "items": { "type": "object" } } } },
        "RefundIn": { "type": "object", "additionalProperties": false, "properties": {
            "external_id": text, "refunded_at": { "type": ["string", "null"], "format": "date-time" }, "reason": text,
            "lines": { "type": ["array", "null"], "description": "absent: refund everything not yet refunded",
                "items": { "type": "object", "required": ["line", "quantity"], "properties": {
                    "line": { "type": "integer", "minimum": 0 }, "quantity": { "type": "integer", "minimum": 1 } } } } } },
        "Refund": { "type": "object", "properties": {
            "id": { "type": "string", "example": "ref_3" }, "order_id": { "type": "string" }, "external_id": text,
            "refunded_at": { "type": "string", "format": "date-time" }, "reason": text,
            "amount": { "$ref": "#/components/schemas/Money" }, "lines": { "type": "array", "items": { "type": "object" } } } },
        "KeyIn": { "type": "object", "additionalProperties": false, "required": ["name", "role"], "properties": {
            "name": { "type": "string" }, "role": { "type": "string", "enum": ["owner", "analyst", "agent", "cashier", "integration"] } } },
        "Page": { "type": "object", "properties": {
            "items": { "type": "array", "items": {} }, "next_cursor": { "type": ["string", "null"] } } },
    });
    for (name, schema) in loyalty_schemas().as_object().expect("an object") {
        all[name] = schema.clone();
    }
    for (name, schema) in crate::openapi_rewards::schemas().as_object().expect("an object") {
        all[name] = schema.clone();
    }
    all
}

/// The request and response schemas of a route, by method and path.
fn bodies(method: &str, path: &str) -> (Option<&'static str>, &'static str) {
    match (method, path) {
        ("POST", "/api/v1/customers") => (Some("CustomerIn"), "Customer"),
        ("PATCH", "/api/v1/customers/{id}") => (Some("CustomerIn"), "Customer"),
        ("GET", "/api/v1/customers/{id}") | ("POST", "/api/v1/customers/{id}/erase") => (None, "Customer"),
        ("POST", "/api/v1/products") => (Some("ProductIn"), "Product"),
        ("GET", "/api/v1/products/{id}") => (None, "Product"),
        ("POST", "/api/v1/orders") => (Some("OrderIn"), "Order"),
        ("GET", "/api/v1/orders/{id}") => (None, "Order"),
        ("POST", "/api/v1/orders/{id}/refunds") => (Some("RefundIn"), "Refund"),
        ("POST", "/api/v1/keys") => (Some("KeyIn"), "Page"),
        ("GET", "/api/v1/customers/{id}/wallet") => (None, "Wallet"),
        ("POST", "/api/v1/customers/{id}/wallet/redeem") => (Some("RedeemIn"), "LedgerReceipt"),
        ("POST", "/api/v1/customers/{id}/wallet/adjust") => (Some("AdjustIn"), "LedgerReceipt"),
        ("POST", "/api/v1/customers/{id}/wallet/holds") => (Some("HoldIn"), "Hold"),
        ("POST", "/api/v1/holds/{id}/capture") => (Some("CaptureIn"), "Hold"),
        ("POST", "/api/v1/holds/{id}/void") => (None, "Hold"),
        ("PUT", "/api/v1/loyalty/program") => (Some("ProgramToml"), "Program"),
        ("GET", "/api/v1/loyalty/program") => (None, "Program"),
        ("POST", "/api/v1/loyalty/dry-run") => (Some("DryRunIn"), "DryRun"),
        ("POST", "/api/v1/coupons") => (Some("CouponBatchIn"), "CouponBatch"),
        ("GET", "/api/v1/coupons/{code}") => (None, "Coupon"),
        ("POST", "/api/v1/coupons/{code}/redeem") => (Some("CouponRedeemIn"), "Coupon"),
        ("GET", "/api/v1/customers/{id}/tier") => (None, "Tier"),
        ("POST", "/api/v1/customers/{id}/events") => (Some("EventIn"), "LedgerReceipt"),
        _ => crate::openapi_rewards::bodies(method, path).unwrap_or((None, "Page")),
    }
}

pub fn document() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let (request, response) = bodies(route.method, route.path);
        let mut op = json!({
            "summary": route.summary,
            "responses": {
                "200": { "description": "success", "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{response}") } } } },
                "default": { "description": "a problem", "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } },
            },
        });
        if let Some(operation) = route.operation {
            op["security"] = json!([{ "bearer": [] }]);
            op["x-operation"] = format!("{operation:?}").into();
            let roles: Vec<&str> = regulars_core::Role::ALL
                .into_iter()
                .filter(|r| regulars_core::access::allows(*r, operation))
                .map(|r| r.as_str())
                .collect();
            op["x-roles"] = json!(roles);
        }
        let mut parameters: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        if route.method != "GET" {
            parameters.push(json!({ "name": "Idempotency-Key", "in": "header", "required": false, "schema": { "type": "string", "maxLength": 255 },
                "description": "replays return the first response; the same key with another body is 422" }));
        } else if response == "Page" && route.operation.is_some() {
            parameters.push(json!({ "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 200 } }));
            parameters.push(json!({ "name": "cursor", "in": "query", "schema": { "type": "string" } }));
        }
        if !parameters.is_empty() {
            op["parameters"] = parameters.into();
        }
        if request == Some("ProgramToml") {
            op["requestBody"] = json!({ "required": true, "content": { "application/toml": { "schema": { "type": "string",
                "description": "the program file: earning rules, lock period, expiry, tiers (crates/core/src/loyalty/program.rs)" } } } });
        } else if let Some(request) = request {
            op["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{request}") } } } });
        }
        let entry = paths.entry(route.path.to_owned()).or_insert_with(|| json!({}));
        entry[route.method.to_ascii_lowercase()] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": { "title": "Regulars API", "version": "1", "description": "Customer retention: customers, products, orders, refunds, loyalty wallets and the program. A loyalty refusal is a 409 problem whose code is the refusal's (insufficient_points, hold_expired, ...). Errors are RFC 9457 problem documents with a stable code." },
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "description": "an API key: rgl_..." } },
        },
    })
}
