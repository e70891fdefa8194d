//! The demo shop's customers and their orders, generated one customer at a time so that a million
//! customers stream in bounded memory.
//!
//! Who buys what, and when:
//! - **Regulars** (`regular_share`, 4 % by default) keep a weekly rhythm: one to five fixed weekdays (say Monday
//!   and Friday), a usual time (a commuter at 7:40, a lunch regular at 12:30, give or take a quarter of an
//!   hour), a usual order (a flat white and a croissant), and they come on 80-95 % of their days. A quarter of
//!   them stop coming at some point: churned regulars.
//! - **Everyone else** follows a buy-till-you-die process with known parameters: MBG/NBD purchase times and
//!   Gamma-Gamma spend from `regulars_analytics::synth` (so many buy once and never return, some come back a
//!   few times, some drop out). Each purchase becomes a basket of products of the customer's favourite
//!   departments worth about the spend drawn for it. The time of day is redrawn from the shop's opening hours
//!   and its rush hours (breakfast, lunch, afternoon; later on Saturdays, short Sundays).
//! - About 4 % of lines get 10 % off; `refund_share` of orders (3 %) are refunded, 60 % of them whole, the
//!   others one item of one line, between ten minutes and three days later.
//!
//! Everything is drawn from per-customer random streams of `seed`, so customer `i` is the same whatever the
//! number of customers, and the same seed gives the same shop.

use std::collections::VecDeque;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use regulars_analytics::models::{BgNbdParams, GammaGammaParams};
use regulars_analytics::synth::{self, PurchaseProcess, SyntheticConfig};
use regulars_core::{
    Consent, Currency, CustomerDraft, CustomerRef, Email, ExternalId, ImportedOrder, ImportedRefund, OrderDraft,
    OrderLine, Phone, ProductDraft, Quantity, RefundLine, Sku,
};

use crate::DemoError;
use crate::catalogue::{CATALOGUE, Category, of_category, product_draft};
use crate::people::{email, name, phone, pick_origin};

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoConfig {
    pub seed: u64,
    pub customers: u64,
    /// The last day of the history (inclusive).
    pub end: NaiveDate,
    /// Length of the history in days (548, about 18 months, by default).
    pub history_days: u32,
    pub currency: Currency,
    /// Where the shop is: purchase times are local times there.
    pub shop_time_zone: Tz,
    /// Share of customers who are regulars with a weekly rhythm.
    pub regular_share: f64,
    /// Share of orders refunded (whole or in part).
    pub refund_share: f64,
}

impl DemoConfig {
    /// 18 months up to `end`, in euros, in Berlin, 4 % regulars, 3 % of orders refunded.
    pub fn new(seed: u64, customers: u64, end: NaiveDate) -> Self {
        DemoConfig {
            seed,
            customers,
            end,
            history_days: 548,
            currency: Currency::parse("currency", "EUR").expect("EUR is a currency"),
            shop_time_zone: chrono_tz::Europe::Berlin,
            regular_share: 0.04,
            refund_share: 0.03,
        }
    }

    /// The first day of the history.
    pub fn start(&self) -> NaiveDate {
        self.end - Duration::days(i64::from(self.history_days) - 1)
    }

    fn validate(&self) -> Result<(), DemoError> {
        let bad = |m: &str| Err(DemoError::InvalidConfig(m.to_owned()));
        if self.history_days < 28 {
            return bad("history_days must be at least 28");
        }
        if !(0.0..=1.0).contains(&self.regular_share) || !(0.0..=1.0).contains(&self.refund_share) {
            return bad("regular_share and refund_share must be between 0 and 1");
        }
        if self.start().year() < 1950 {
            return bad("the history must start after 1950");
        }
        Ok(())
    }
}

/// The true parameters of the purchase process of the non-regular customers (time unit: week).
pub const PROCESS: BgNbdParams = BgNbdParams { r: 0.45, alpha: 3.5, a: 0.6, b: 2.2 };
/// The true spend parameters (euros): a mean spend of p·v/(q-1) = 12 euros per purchase.
pub const SPEND: GammaGammaParams = GammaGammaParams { p: 4.0, q: 5.0, v: 12.0 };

/// Salt that separates the demo's random streams from the synthetic generator's (which uses the bare seed).
const SALT: u64 = 0xD3A0_5EED_C0FF_EE00;

/// One purchase before it has lines: when, and what kind of basket.
struct Visit {
    at: DateTime<Utc>,
    /// Target value of the basket in minor units; `None` for a regular's usual order.
    target_minor: Option<i64>,
}

/// A customer's tastes.
struct Habit {
    /// Favourite departments, most liked first.
    departments: Vec<Category>,
    /// A regular's usual order (catalogue indices).
    usual: Vec<usize>,
}

/// The orders of the demo shop, customer after customer (each customer's orders in time order).
pub struct DemoOrders {
    config: DemoConfig,
    synth: SyntheticConfig,
    by_category: Vec<(Category, Vec<usize>)>,
    products: Vec<ProductDraft>,
    next_customer: u64,
    queue: VecDeque<ImportedOrder>,
    end_instant: DateTime<Utc>,
}

impl DemoOrders {
    pub fn new(config: DemoConfig) -> Result<Self, DemoError> {
        config.validate()?;
        let mut synth = SyntheticConfig::new(
            PurchaseProcess::MbgNbd(PROCESS),
            SPEND,
            config.customers as usize,
            config.start(),
            config.end,
            config.seed,
        );
        synth.acquisition_end = config.end;
        synth.minor_units_per_major = 10i64.pow(u32::from(config.currency.minor_digits()));
        // Validates the parameters once, so that later calls cannot fail.
        synth::generate_customer(&synth, 0)?;
        let end_instant =
            local_to_utc(config.shop_time_zone, (config.end + Duration::days(1)).and_time(NaiveTime::MIN));
        Ok(DemoOrders {
            by_category: Category::ALL.iter().map(|&c| (c, of_category(c))).collect(),
            products: CATALOGUE.iter().map(|item| product_draft(item, config.currency)).collect(),
            synth,
            next_customer: 0,
            queue: VecDeque::new(),
            end_instant,
            config,
        })
    }

    /// The whole catalogue, including products nobody bought.
    pub fn products(&self) -> &[ProductDraft] {
        &self.products
    }

    fn category_products(&self, category: Category) -> &[usize] {
        &self.by_category.iter().find(|(c, _)| *c == category).expect("every category").1
    }

    fn generate_customer(&mut self, index: u64) {
        let mut rng = ChaCha8Rng::seed_from_u64(self.config.seed ^ SALT);
        rng.set_stream(index);
        let customer = self.customer_draft(index, &mut rng);
        let regular = rng.gen_bool(self.config.regular_share);
        let habit = self.habit(regular, &mut rng);
        let visits = self.purchase_times(index, regular, &mut rng);
        let customer_id = customer.external_id.clone().expect("set");
        let mut customer = customer;
        if customer.consent.marketing {
            customer.consent.recorded_at = visits.first().map(|v| v.at);
        }
        for (k, visit) in visits.iter().enumerate() {
            let lines = self.basket(&habit, visit.target_minor, &mut rng);
            let order_id = ExternalId::parse("order_id", &format!("demo-o{index}-{}", k + 1)).expect("short id");
            let refunds = self.refund(&order_id, visit.at, &lines, &mut rng);
            let mut products: Vec<ProductDraft> = Vec::with_capacity(lines.len());
            for line in &lines {
                let item = CATALOGUE.iter().position(|i| i.sku == line.sku.as_str()).expect("catalogue SKU");
                products.push(self.products[item].clone());
            }
            let order = OrderDraft::new(
                Some(order_id),
                CustomerRef::External(customer_id.clone()),
                visit.at,
                self.config.currency,
                lines,
            )
            .expect("generated orders are valid");
            self.queue.push_back(ImportedOrder {
                line_number: 0,
                customer: customer.clone(),
                order,
                products,
                refunds,
            });
        }
    }

    fn customer_draft(&self, index: u64, rng: &mut ChaCha8Rng) -> CustomerDraft {
        let origin = pick_origin(rng);
        let (first, last) = name(origin, rng);
        let has_email = rng.gen_bool(0.88);
        let email = has_email.then(|| Email::parse("email", &email(first, last, index, rng)).expect("valid e-mail"));
        let phone = rng.gen_bool(0.35).then(|| Phone::parse("phone", &phone(origin, rng)).expect("valid phone"));
        let birthday = rng.gen_bool(0.55).then(|| {
            let age_days = rng.gen_range(18 * 365 + 5..80 * 365);
            self.config.end - Duration::days(age_days)
        });
        let marketing = has_email && rng.gen_bool(0.45);
        let source = if rng.gen_bool(0.3) { "web" } else { "till" };
        CustomerDraft {
            external_id: Some(ExternalId::parse("customer_id", &format!("demo-c{index}")).expect("short id")),
            email,
            phone,
            name: Some(format!("{first} {last}")),
            birthday,
            locale: Some(origin.locale.to_owned()),
            time_zone: Some(origin.time_zone.to_owned()),
            consent: if marketing {
                Consent { marketing: true, recorded_at: None, source: Some(source.to_owned()) }
            } else {
                Consent::default()
            },
            attributes: Default::default(),
        }
    }

    fn habit(&self, regular: bool, rng: &mut ChaCha8Rng) -> Habit {
        const LIKING: [(Category, u32); 7] = [
            (Category::Coffee, 32),
            (Category::Bakery, 20),
            (Category::Tea, 10),
            (Category::Deli, 15),
            (Category::Pantry, 8),
            (Category::Books, 11),
            (Category::Stationery, 4),
        ];
        let mut departments = Vec::with_capacity(3);
        while departments.len() < 3 {
            let category = LIKING.choose_weighted(rng, |(_, w)| *w).expect("weights").0;
            if !departments.contains(&category) {
                departments.push(category);
            }
        }
        let mut usual = Vec::new();
        if regular {
            let drink = if rng.gen_bool(0.8) { Category::Coffee } else { Category::Tea };
            usual.push(*self.category_products(drink).choose(rng).expect("drinks"));
            if rng.gen_bool(0.55) {
                let food = if rng.gen_bool(0.75) { Category::Bakery } else { Category::Deli };
                usual.push(*self.category_products(food).choose(rng).expect("food"));
            }
        }
        Habit { departments, usual }
    }

    /// When the customer buys. The one place that decides the purchase process: regulars keep their weekly
    /// rhythm, everyone else follows `regulars_analytics::synth` (MBG/NBD times, Gamma-Gamma spend).
    fn purchase_times(&self, index: u64, regular: bool, rng: &mut ChaCha8Rng) -> Vec<Visit> {
        let (start, end) = (self.config.start(), self.config.end);
        let tz = self.config.shop_time_zone;
        let mut visits = Vec::new();
        if regular {
            let days = [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri, Weekday::Sat];
            let how_many = *[1usize, 2, 2, 2, 3, 3, 5].choose(rng).expect("counts");
            let weekdays: Vec<Weekday> =
                if how_many == 5 { days[..5].to_vec() } else { days.choose_multiple(rng, how_many).copied().collect() };
            let usual_minute: i64 = if rng.gen_bool(0.7) {
                rng.gen_range(7 * 60 + 20..9 * 60 + 30)
            } else {
                rng.gen_range(12 * 60..13 * 60 + 30)
            };
            let attendance = rng.gen_range(0.8..0.95);
            let span = (end - start).num_days();
            let from = start + Duration::days(rng.gen_range(0..=span * 2 / 3));
            let until = if rng.gen_bool(0.25) {
                (from + Duration::days(rng.gen_range(56..=span.max(57)))).min(end)
            } else {
                end
            };
            let mut day = from;
            while day <= until {
                if weekdays.contains(&day.weekday()) && (visits.is_empty() || rng.gen_bool(attendance)) {
                    let seconds = (usual_minute + rng.gen_range(-15..=15)) * 60 + rng.gen_range(0..60);
                    let local = day.and_time(NaiveTime::MIN) + Duration::seconds(seconds);
                    visits.push(Visit { at: local_to_utc(tz, local), target_minor: None });
                }
                day += Duration::days(1);
            }
            if visits.is_empty() {
                let local = from.and_time(NaiveTime::MIN) + Duration::minutes(usual_minute);
                visits.push(Visit { at: local_to_utc(tz, local), target_minor: None });
            }
        } else {
            let customer = synth::generate_customer(&self.synth, index).expect("validated in new");
            for purchase in customer.purchases {
                let day = purchase.at.date();
                let local = day.and_time(NaiveTime::MIN) + Duration::seconds(time_of_day_seconds(day, rng));
                visits.push(Visit { at: local_to_utc(tz, local), target_minor: Some(purchase.amount_minor) });
            }
            visits.sort_by_key(|v| v.at);
        }
        visits
    }

    fn basket(&self, habit: &Habit, target_minor: Option<i64>, rng: &mut ChaCha8Rng) -> Vec<OrderLine> {
        let mut items: Vec<(usize, u32)> = Vec::new();
        let add = |items: &mut Vec<(usize, u32)>, item: usize, quantity: u32| match items
            .iter_mut()
            .find(|(i, _)| *i == item)
        {
            Some((_, q)) => *q += quantity,
            None => items.push((item, quantity)),
        };
        match target_minor {
            None => {
                for &item in &habit.usual {
                    add(&mut items, item, 1);
                }
                if rng.gen_bool(0.15) {
                    let extra = if rng.gen_bool(0.7) { Category::Bakery } else { Category::Pantry };
                    add(&mut items, *self.category_products(extra).choose(rng).expect("items"), 1);
                }
            }
            Some(target) => {
                let mut total = 0i64;
                for _ in 0..6 {
                    let department = *[0usize, 0, 0, 1, 1, 2].choose(rng).expect("weights");
                    let category = habit.departments[department];
                    let item = *self.category_products(category).choose(rng).expect("items");
                    let quantity = if rng.gen_bool(0.12) { 2 } else { 1 };
                    let price = CATALOGUE[item].price_minor * i64::from(quantity);
                    if !items.is_empty() && total + price > target + target * 3 / 10 {
                        continue;
                    }
                    add(&mut items, item, quantity);
                    total += price;
                    if total * 4 >= target * 3 {
                        break;
                    }
                }
            }
        }
        items
            .into_iter()
            .map(|(item, quantity)| {
                let product = &CATALOGUE[item];
                let gross = product.price_minor * i64::from(quantity);
                let discount = if rng.gen_bool(0.04) { gross / 10 } else { 0 };
                OrderLine::new(
                    Sku::parse("sku", product.sku).expect("catalogue SKU"),
                    Some(product.name.to_owned()),
                    Quantity::new("quantity", i64::from(quantity)).expect("1 or more"),
                    product.price_minor,
                    discount,
                )
                .expect("catalogue prices are valid")
            })
            .collect()
    }

    fn refund(
        &self,
        order_id: &ExternalId,
        placed_at: DateTime<Utc>,
        lines: &[OrderLine],
        rng: &mut ChaCha8Rng,
    ) -> Vec<ImportedRefund> {
        if !rng.gen_bool(self.config.refund_share) {
            return Vec::new();
        }
        let refund_lines: Vec<RefundLine> = if rng.gen_bool(0.6) {
            lines
                .iter()
                .enumerate()
                .map(|(i, l)| RefundLine { line: i, quantity: l.quantity.get(), amount_minor: l.net_minor() })
                .collect()
        } else {
            let i = rng.gen_range(0..lines.len());
            vec![RefundLine { line: i, quantity: 1, amount_minor: lines[i].refund_minor(1) }]
        };
        let mut refunded_at = placed_at + Duration::seconds(rng.gen_range(600..3 * 86_400));
        if refunded_at >= self.end_instant {
            refunded_at = placed_at + Duration::seconds(600);
        }
        vec![ImportedRefund {
            external_id: ExternalId::parse("refund_id", &format!("{order_id}-refund")).expect("short id"),
            refunded_at,
            lines: refund_lines,
        }]
    }
}

impl Iterator for DemoOrders {
    type Item = ImportedOrder;

    fn next(&mut self) -> Option<ImportedOrder> {
        loop {
            if let Some(order) = self.queue.pop_front() {
                return Some(order);
            }
            if self.next_customer >= self.config.customers {
                return None;
            }
            let index = self.next_customer;
            self.next_customer += 1;
            self.generate_customer(index);
        }
    }
}

/// A time of day in seconds after midnight, following the shop's hours and rush hours.
fn time_of_day_seconds(day: NaiveDate, rng: &mut ChaCha8Rng) -> i64 {
    // (from minute, to minute, weight)
    const WEEKDAY: &[(i64, i64, u32)] =
        &[(420, 570, 30), (570, 690, 14), (690, 840, 30), (840, 1020, 19), (1020, 1140, 7)];
    const SATURDAY: &[(i64, i64, u32)] = &[(480, 600, 15), (600, 780, 40), (780, 960, 30), (960, 1080, 15)];
    const SUNDAY: &[(i64, i64, u32)] = &[(540, 720, 55), (720, 1020, 45)];
    let slots = match day.weekday() {
        Weekday::Sat => SATURDAY,
        Weekday::Sun => SUNDAY,
        _ => WEEKDAY,
    };
    let &(from, to, _) = slots.choose_weighted(rng, |s| s.2).expect("weights");
    rng.gen_range(from * 60..to * 60)
}

/// A local time of the shop in UTC (the earlier instant when clocks go back; an hour later when the local
/// time is skipped, which the opening hours never hit).
fn local_to_utc(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    tz.from_local_datetime(&local)
        .earliest()
        .or_else(|| tz.from_local_datetime(&(local + Duration::hours(1))).earliest())
        .expect("an hour later exists")
        .with_timezone(&Utc)
}
