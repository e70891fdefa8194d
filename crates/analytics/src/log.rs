//! The transaction log in columns: the one input every analysis derives from.
//!
//! Records (customer key, purchase time, amount in minor units, optional SKUs) go into a
//! [`TransactionLogBuilder`]; [`TransactionLogBuilder::build`] groups them by customer with a counting
//! sort (linear in the number of records), orders each customer's purchases by time, and by default
//! merges the purchases a customer made on one day into one transaction, as the BTYD literature and
//! the Python `lifetimes` library do. The result, [`TransactionLog`], holds plain columns
//! (customer index `u32`, day `i32`, amount `i64`) sorted by customer and then by day.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use hashbrown::HashTable;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{AnalyticsError, Result};

/// Days from 0001-01-01 (chrono's "day 1 of the common era") to 1970-01-01.
const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// The day number used in the columns: days since 1970-01-01.
pub fn day_number(date: NaiveDate) -> i32 {
    date.num_days_from_ce() - UNIX_EPOCH_DAYS_FROM_CE
}

/// The calendar date of a day number (days since 1970-01-01).
pub fn date_of_day_number(day: i32) -> NaiveDate {
    NaiveDate::from_num_days_from_ce_opt(day + UNIX_EPOCH_DAYS_FROM_CE).unwrap_or(NaiveDate::MIN)
}

/// The unit in which recency, age and model time are expressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TimeUnit {
    /// Calendar days.
    Day,
    /// Weeks of seven days; fractional weeks are kept (as `lifetimes` with `freq="D", freq_multiplier=7`
    /// and as in Fader and Hardie's CDNOW figures, where T = 38.86 weeks).
    #[default]
    Week,
    /// Average Gregorian months of 365.2425 / 12 days; fractional months are kept.
    Month,
}

impl TimeUnit {
    /// Length of one unit in days.
    pub fn days(self) -> f64 {
        match self {
            TimeUnit::Day => 1.0,
            TimeUnit::Week => 7.0,
            TimeUnit::Month => 365.2425 / 12.0,
        }
    }
}

/// Options of the log builder.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LogOptions {
    /// Unit of recency, age and model time used by default in summaries built from this log.
    pub time_unit: TimeUnit,
    /// Merge the purchases one customer made on one day into one transaction (amounts summed,
    /// SKUs concatenated, earliest time of day kept). On by default.
    pub merge_same_day: bool,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions { time_unit: TimeUnit::Week, merge_same_day: true }
    }
}

/// A customer key as given by the caller, kept for output.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CustomerKey {
    /// A numeric key.
    Number(u64),
    /// A textual key.
    Text(String),
}

impl fmt::Display for CustomerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CustomerKey::Number(n) => write!(f, "{n}"),
            CustomerKey::Text(s) => f.write_str(s),
        }
    }
}

/// A borrowed customer key, accepted by [`TransactionLogBuilder::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomerKeyRef<'a> {
    /// A numeric key.
    Number(u64),
    /// A textual key.
    Text(&'a str),
}

impl From<u64> for CustomerKeyRef<'_> {
    fn from(n: u64) -> Self {
        CustomerKeyRef::Number(n)
    }
}
impl From<u32> for CustomerKeyRef<'_> {
    fn from(n: u32) -> Self {
        CustomerKeyRef::Number(n as u64)
    }
}
impl<'a> From<&'a str> for CustomerKeyRef<'a> {
    fn from(s: &'a str) -> Self {
        CustomerKeyRef::Text(s)
    }
}
impl<'a> From<&'a String> for CustomerKeyRef<'a> {
    fn from(s: &'a String) -> Self {
        CustomerKeyRef::Text(s.as_str())
    }
}
impl<'a> From<&'a CustomerKey> for CustomerKeyRef<'a> {
    fn from(k: &'a CustomerKey) -> Self {
        match k {
            CustomerKey::Number(n) => CustomerKeyRef::Number(*n),
            CustomerKey::Text(s) => CustomerKeyRef::Text(s),
        }
    }
}

/// When a purchase happened: a day, and the time of day where known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurchaseTime {
    /// Days since 1970-01-01.
    pub day: i32,
    /// Seconds since midnight, where the source had a time of day.
    pub second_of_day: Option<u32>,
}

impl From<NaiveDate> for PurchaseTime {
    fn from(date: NaiveDate) -> Self {
        PurchaseTime { day: day_number(date), second_of_day: None }
    }
}
impl From<NaiveDateTime> for PurchaseTime {
    fn from(at: NaiveDateTime) -> Self {
        PurchaseTime { day: day_number(at.date()), second_of_day: Some(at.time().num_seconds_from_midnight()) }
    }
}

/// A small, fast, non-cryptographic hasher (the Fx hash of rustc) for interning keys.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.write_u64(u64::from_le_bytes(chunk.try_into().expect("eight bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.write_u64(u64::from_le_bytes(word));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.hash = (self.hash.rotate_left(5) ^ n).wrapping_mul(FX_SEED);
    }
    fn write_u8(&mut self, n: u8) {
        self.write_u64(n as u64)
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64)
    }
    fn finish(&self) -> u64 {
        self.hash
    }
}

pub(crate) type FxBuild = BuildHasherDefault<FxHasher>;

/// Whether two byte strings are equal; those of up to 16 bytes compared in (overlapping) words, without
/// a call to `memcmp`.
#[inline]
fn same_text(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let len = a.len();
    let word8 = |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().expect("eight bytes"));
    let word4 = |s: &[u8], at: usize| u32::from_le_bytes(s[at..at + 4].try_into().expect("four bytes"));
    match len {
        8..=16 => word8(a, 0) == word8(b, 0) && word8(a, len - 8) == word8(b, len - 8),
        4..=7 => word4(a, 0) == word4(b, 0) && word4(a, len - 4) == word4(b, len - 4),
        _ => a == b,
    }
}

fn text_hash(s: &str) -> u64 {
    let mut hasher = FxHasher::default();
    hasher.write(s.as_bytes());
    hasher.finish()
}

/// Collects purchase records and turns them into a [`TransactionLog`].
#[derive(Debug, Default)]
pub struct TransactionLogBuilder {
    options: LogOptions,
    number_keys: HashMap<u64, u32, FxBuild>,
    /// (hash of the text, index into `keys`) of the textual keys.
    text_keys: HashTable<(u64, u32)>,
    /// The key interned last (files often list a customer's purchases together).
    last_key: Option<u32>,
    keys: Vec<CustomerKey>,
    customer: Vec<u32>,
    day: Vec<i32>,
    second_of_day: Vec<u32>,
    has_time: bool,
    amount: Vec<i64>,
    sku_start: Vec<u32>,
    sku_ids: Vec<u32>,
    sku_names: Vec<String>,
    sku_lookup: HashMap<String, u32, FxBuild>,
}

impl TransactionLogBuilder {
    /// A builder with the given options.
    pub fn new(options: LogOptions) -> Self {
        TransactionLogBuilder { options, ..Default::default() }
    }

    /// A builder with room for `records` records.
    pub fn with_capacity(options: LogOptions, records: usize) -> Self {
        let mut builder = Self::new(options);
        builder.customer.reserve(records);
        builder.day.reserve(records);
        builder.amount.reserve(records);
        builder.number_keys.reserve(records / 8);
        builder
    }

    /// Makes room for `records` more records holding `skus` SKUs in all, with times of day.
    pub fn reserve(&mut self, records: usize, skus: usize) {
        self.customer.reserve(records);
        self.day.reserve(records);
        self.amount.reserve(records);
        self.second_of_day.reserve(records);
        self.sku_start.reserve(records + 1);
        self.sku_ids.reserve(skus);
    }

    /// Number of records pushed so far.
    pub fn record_count(&self) -> usize {
        self.customer.len()
    }

    fn intern(&mut self, key: CustomerKeyRef<'_>) -> Result<u32> {
        let index = match self.find(key) {
            Some(index) => index,
            None => self.insert_new(match key {
                CustomerKeyRef::Number(n) => CustomerKey::Number(n),
                CustomerKeyRef::Text(s) => CustomerKey::Text(s.to_owned()),
            })?,
        };
        self.last_key = Some(index);
        Ok(index)
    }

    /// The index of a key interned before.
    fn find(&self, key: CustomerKeyRef<'_>) -> Option<u32> {
        if let Some(last) = self.last_key {
            let same = match (&self.keys[last as usize], key) {
                (CustomerKey::Number(a), CustomerKeyRef::Number(b)) => *a == b,
                (CustomerKey::Text(a), CustomerKeyRef::Text(b)) => same_text(a.as_bytes(), b.as_bytes()),
                _ => false,
            };
            if same {
                return Some(last);
            }
        }
        match key {
            CustomerKeyRef::Number(n) => self.number_keys.get(&n).copied(),
            CustomerKeyRef::Text(s) => {
                let hash = text_hash(s);
                self.text_keys.find(hash, |&(h, i)| h == hash && self.text_of(i) == s).map(|&(_, i)| i)
            }
        }
    }

    fn text_of(&self, index: u32) -> &str {
        match &self.keys[index as usize] {
            CustomerKey::Text(t) => t,
            CustomerKey::Number(_) => unreachable!("only textual keys are in text_keys"),
        }
    }

    /// Interns a key not interned before.
    fn insert_new(&mut self, key: CustomerKey) -> Result<u32> {
        let next = self.keys.len();
        if next as u64 >= u32::MAX as u64 {
            return Err(AnalyticsError::TooManyCustomers { max: u32::MAX as u64 - 1 });
        }
        match &key {
            CustomerKey::Number(n) => {
                self.number_keys.insert(*n, next as u32);
            }
            CustomerKey::Text(s) => {
                let hash = text_hash(s);
                self.text_keys.insert_unique(hash, (hash, next as u32), |&(h, _)| h);
            }
        }
        self.keys.push(key);
        Ok(next as u32)
    }

    /// Adds one purchase. Amounts are in minor units (cents) and must not be negative; a zero amount
    /// is kept (it counts as a transaction with no value).
    pub fn push<'a>(
        &mut self,
        customer: impl Into<CustomerKeyRef<'a>>,
        at: impl Into<PurchaseTime>,
        amount_minor: i64,
    ) -> Result<()> {
        self.push_with_skus(customer, at, amount_minor, &[] as &[&str])
    }

    /// Adds one purchase with the SKUs (item codes) it contained.
    pub fn push_with_skus<'a, S: AsRef<str>>(
        &mut self,
        customer: impl Into<CustomerKeyRef<'a>>,
        at: impl Into<PurchaseTime>,
        amount_minor: i64,
        skus: &[S],
    ) -> Result<()> {
        let record = self.customer.len();
        if amount_minor < 0 {
            return Err(AnalyticsError::NegativeAmount { record, amount_minor });
        }
        let at = at.into();
        let index = self.intern(customer.into())?;
        self.customer.push(index);
        self.day.push(at.day);
        if let Some(second) = at.second_of_day {
            if !self.has_time {
                self.has_time = true;
                self.second_of_day.resize(record, 0);
            }
            self.second_of_day.push(second);
        } else if self.has_time {
            self.second_of_day.push(0);
        }
        self.amount.push(amount_minor);
        if !skus.is_empty() && self.sku_start.is_empty() {
            self.sku_start.resize(record + 1, 0);
        }
        if !self.sku_start.is_empty() {
            for sku in skus {
                let id = self.intern_sku(sku.as_ref());
                self.sku_ids.push(id);
            }
            self.sku_start.push(self.sku_ids.len() as u32);
        }
        Ok(())
    }

    /// Appends the records of `other` as if each had been pushed into this builder after the records it
    /// already holds: customers and SKUs keep their order of first appearance. Builders filled in
    /// parallel from consecutive parts of an input and appended in order therefore build the same log
    /// as one builder filled with the whole input. This builder's options are kept.
    pub fn append(&mut self, other: TransactionLogBuilder) -> Result<()> {
        let before = self.customer.len();
        let added = other.customer.len();
        let mut customers = Vec::with_capacity(other.keys.len());
        for key in other.keys {
            let index = match self.find((&key).into()) {
                Some(index) => index,
                None => self.insert_new(key)?,
            };
            customers.push(index);
        }
        self.customer.extend(other.customer.iter().map(|&c| customers[c as usize]));
        self.day.extend_from_slice(&other.day);
        self.amount.extend_from_slice(&other.amount);
        if other.has_time && !self.has_time {
            self.has_time = true;
            self.second_of_day.resize(before, 0);
        }
        if self.has_time {
            if other.has_time {
                self.second_of_day.extend_from_slice(&other.second_of_day);
            } else {
                self.second_of_day.resize(before + added, 0);
            }
        }
        let other_has_skus = !other.sku_start.is_empty();
        if other_has_skus && self.sku_start.is_empty() {
            self.sku_start.resize(before + 1, 0);
        }
        if !self.sku_start.is_empty() {
            if other_has_skus {
                let skus: Vec<u32> = other.sku_names.iter().map(|name| self.intern_sku(name)).collect();
                let offset = self.sku_ids.len() as u32;
                self.sku_ids.extend(other.sku_ids.iter().map(|&id| skus[id as usize]));
                self.sku_start.extend(other.sku_start[1..].iter().map(|&end| end + offset));
            } else {
                let end = self.sku_ids.len() as u32;
                self.sku_start.resize(before + added + 1, end);
            }
        }
        Ok(())
    }

    /// Adds one purchase whose SKUs were interned with [`TransactionLogBuilder::intern_sku`] (ids of this
    /// builder): the same as [`TransactionLogBuilder::push_with_skus`] with their names, without looking
    /// the names up again. An id this builder did not give is an [`AnalyticsError::InvalidInput`].
    pub fn push_with_sku_ids<'a>(
        &mut self,
        customer: impl Into<CustomerKeyRef<'a>>,
        at: impl Into<PurchaseTime>,
        amount_minor: i64,
        sku_ids: &[u32],
    ) -> Result<()> {
        if let Some(&id) = sku_ids.iter().find(|&&id| id as usize >= self.sku_names.len()) {
            return Err(AnalyticsError::InvalidInput(format!("SKU id {id} was not given by this builder")));
        }
        self.push_with_skus(customer, at, amount_minor, &[] as &[&str])?;
        if !sku_ids.is_empty() {
            if self.sku_start.len() < self.customer.len() + 1 {
                // The first record with SKUs: the records before it had none.
                let record = self.customer.len() - 1;
                self.sku_start.resize(record + 1, 0);
                self.sku_ids.extend_from_slice(sku_ids);
                self.sku_start.push(self.sku_ids.len() as u32);
            } else {
                self.sku_ids.extend_from_slice(sku_ids);
                *self.sku_start.last_mut().expect("a record with SKUs") = self.sku_ids.len() as u32;
            }
        }
        Ok(())
    }

    /// The id of a SKU in this builder (numbered in order of first appearance), interning it if new.
    pub fn intern_sku(&mut self, sku: &str) -> u32 {
        match self.sku_lookup.get(sku) {
            Some(&id) => id,
            None => {
                let id = self.sku_names.len() as u32;
                self.sku_names.push(sku.to_owned());
                self.sku_lookup.insert(sku.to_owned(), id);
                id
            }
        }
    }

    /// One builder holding the records of `parts` in order: the same as appending each part in turn to
    /// an empty builder with these options ([`TransactionLogBuilder::append`]), with the records
    /// copied in parallel.
    pub fn join(options: LogOptions, parts: Vec<TransactionLogBuilder>) -> Result<Self> {
        let mut joined = TransactionLogBuilder::new(options);
        // Customers and SKUs in order of first appearance, and where each part's records go.
        let mut customer_maps = Vec::with_capacity(parts.len());
        let mut sku_maps = Vec::with_capacity(parts.len());
        let (mut records, mut skus) = (0usize, 0usize);
        let mut sku_offsets = Vec::with_capacity(parts.len());
        joined.text_keys.reserve(parts.iter().map(|p| p.text_keys.len()).sum(), |&(h, _)| h);
        joined.keys.reserve(parts.iter().map(|p| p.keys.len()).sum());
        let mut parts = parts;
        for part in &mut parts {
            let mut map = Vec::with_capacity(part.keys.len());
            for key in std::mem::take(&mut part.keys) {
                let index = match joined.find((&key).into()) {
                    Some(index) => index,
                    None => joined.insert_new(key)?,
                };
                map.push(index);
            }
            customer_maps.push(map);
            sku_maps.push(part.sku_names.iter().map(|name| joined.intern_sku(name)).collect::<Vec<u32>>());
            sku_offsets.push(skus as u32);
            records += part.customer.len();
            skus += part.sku_ids.len();
        }
        let has_time = parts.iter().any(|p| p.has_time);
        let has_skus = parts.iter().any(|p| !p.sku_start.is_empty());
        joined.has_time = has_time;
        joined.customer = vec![0; records];
        joined.day = vec![0; records];
        joined.amount = vec![0; records];
        joined.second_of_day = if has_time { vec![0; records] } else { Vec::new() };
        joined.sku_start = if has_skus { vec![0; records + 1] } else { Vec::new() };
        joined.sku_ids = vec![0; skus];
        // Disjoint slices of the joined columns, one per part.
        struct Slot<'a> {
            customer: &'a mut [u32],
            day: &'a mut [i32],
            amount: &'a mut [i64],
            second: &'a mut [u32],
            sku_end: &'a mut [u32],
            sku_ids: &'a mut [u32],
        }
        fn take<'a, T>(rest: &mut &'a mut [T], k: usize) -> &'a mut [T] {
            let (head, tail) = std::mem::take(rest).split_at_mut(k);
            *rest = tail;
            head
        }
        let mut slots = Vec::with_capacity(parts.len());
        {
            let (mut customer, mut day, mut amount) =
                (&mut joined.customer[..], &mut joined.day[..], &mut joined.amount[..]);
            let mut second = &mut joined.second_of_day[..];
            let mut sku_end = if has_skus { &mut joined.sku_start[1..] } else { &mut [][..] };
            let mut sku_ids = &mut joined.sku_ids[..];
            for part in &parts {
                let n = part.customer.len();
                let c = take(&mut customer, n);
                let d = take(&mut day, n);
                let a = take(&mut amount, n);
                let s = take(&mut second, if has_time { n } else { 0 });
                let e = take(&mut sku_end, if has_skus { n } else { 0 });
                let i = take(&mut sku_ids, part.sku_ids.len());
                slots.push(Slot { customer: c, day: d, amount: a, second: s, sku_end: e, sku_ids: i });
            }
        }
        // Each part is dropped once copied, so its memory serves what comes next.
        slots.into_par_iter().zip(parts.into_par_iter()).enumerate().for_each(|(p, (slot, part))| {
            let (customers, part_skus) = (&customer_maps[p], &sku_maps[p]);
            let sku_offset = sku_offsets[p];
            for (out, &c) in slot.customer.iter_mut().zip(&part.customer) {
                *out = customers[c as usize];
            }
            slot.day.copy_from_slice(&part.day);
            slot.amount.copy_from_slice(&part.amount);
            if has_time && part.has_time {
                slot.second.copy_from_slice(&part.second_of_day);
            }
            for (out, &id) in slot.sku_ids.iter_mut().zip(&part.sku_ids) {
                *out = part_skus[id as usize];
            }
            if has_skus {
                if part.sku_start.is_empty() {
                    slot.sku_end.fill(sku_offset);
                } else {
                    for (out, &end) in slot.sku_end.iter_mut().zip(&part.sku_start[1..]) {
                        *out = end + sku_offset;
                    }
                }
            }
        });
        Ok(joined)
    }

    /// The log of the records of `parts` in order: the same log as [`TransactionLogBuilder::join`] and
    /// then [`TransactionLogBuilder::build`] give, without the joined copy. The records are copied once,
    /// straight from the parts into customer order (each part dropped once copied); each customer's
    /// records are ordered by time and merged in place.
    pub fn build_parts(options: LogOptions, parts: Vec<TransactionLogBuilder>) -> Result<TransactionLog> {
        let mut parts = parts;
        // Customers and SKUs in order of first appearance; the parts' ids turned into the log's.
        let mut keys = TransactionLogBuilder::new(options);
        keys.text_keys.reserve(parts.iter().map(|p| p.text_keys.len()).sum(), |&(h, _)| h);
        keys.keys.reserve(parts.iter().map(|p| p.keys.len()).sum());
        let mut customer_maps = Vec::with_capacity(parts.len());
        let mut sku_maps = Vec::with_capacity(parts.len());
        for part in &mut parts {
            let mut map = Vec::with_capacity(part.keys.len());
            for key in std::mem::take(&mut part.keys) {
                let index = match keys.find((&key).into()) {
                    Some(index) => index,
                    None => keys.insert_new(key)?,
                };
                map.push(index);
            }
            customer_maps.push(map);
            sku_maps.push(part.sku_names.iter().map(|name| keys.intern_sku(name)).collect::<Vec<u32>>());
        }
        parts.par_iter_mut().zip(&customer_maps).zip(&sku_maps).for_each(|((part, customers), skus)| {
            for c in &mut part.customer {
                *c = customers[*c as usize];
            }
            for id in &mut part.sku_ids {
                *id = skus[*id as usize];
            }
        });
        drop((customer_maps, sku_maps));
        let customers = keys.keys.len();
        let records: usize = parts.iter().map(|p| p.customer.len()).sum();
        let has_time = parts.iter().any(|p| p.has_time);
        let has_skus = parts.iter().any(|p| !p.sku_start.is_empty());
        // Where each customer's records (and their SKUs) go: a counting sort.
        let mut start = vec![0usize; customers + 1];
        let mut sku_start = if has_skus { vec![0usize; customers + 1] } else { Vec::new() };
        for part in &parts {
            for &c in &part.customer {
                start[c as usize + 1] += 1;
            }
            if has_skus && !part.sku_start.is_empty() {
                for (&c, ends) in part.customer.iter().zip(part.sku_start.windows(2)) {
                    sku_start[c as usize + 1] += (ends[1] - ends[0]) as usize;
                }
            }
        }
        for i in 0..customers {
            start[i + 1] += start[i];
        }
        for i in 0..sku_start.len().saturating_sub(1) {
            sku_start[i + 1] += sku_start[i];
        }
        let skus = sku_start.last().copied().unwrap_or(0);
        let mut day = vec![0i32; records];
        let mut amount = vec![0i64; records];
        let mut second = if has_time { vec![0u32; records] } else { Vec::new() };
        let mut sku_len = if has_skus { vec![0u32; records] } else { Vec::new() };
        let mut sku_ids = vec![0u32; skus];
        fn take<'a, T>(rest: &mut &'a mut [T], k: usize) -> &'a mut [T] {
            let (head, tail) = std::mem::take(rest).split_at_mut(k);
            *rest = tail;
            head
        }
        // Each customer's records in file order. When the customers come in order through the parts (a
        // file sorted by customer), that is the parts' records one part after the other: each part is
        // copied to a slice of its own, in parallel.
        let mut last_customer = 0;
        let in_customer_order = parts.par_iter().all(|p| p.customer.is_sorted())
            && parts.iter().all(|p| match (p.customer.first(), p.customer.last()) {
                (Some(&first), Some(&last)) => {
                    let ordered = first >= last_customer;
                    last_customer = last;
                    ordered
                }
                _ => true,
            });
        if in_customer_order {
            let (mut d, mut s, mut a, mut l, mut i) =
                (&mut day[..], &mut second[..], &mut amount[..], &mut sku_len[..], &mut sku_ids[..]);
            let mut copies = Vec::with_capacity(parts.len());
            for part in parts {
                let n = part.customer.len();
                let k = part.sku_start.last().map_or(0, |&end| (end - part.sku_start[0]) as usize);
                let slices = (
                    take(&mut d, n),
                    take(&mut s, if has_time { n } else { 0 }),
                    take(&mut a, n),
                    take(&mut l, if has_skus { n } else { 0 }),
                    take(&mut i, k),
                );
                copies.push((part, slices));
            }
            copies.into_par_iter().for_each(|(part, (d, s, a, l, i))| {
                d.copy_from_slice(&part.day);
                a.copy_from_slice(&part.amount);
                if has_time && part.has_time {
                    s.copy_from_slice(&part.second_of_day);
                }
                if let Some(&end) = part.sku_start.last() {
                    for (len, ends) in l.iter_mut().zip(part.sku_start.windows(2)) {
                        *len = ends[1] - ends[0];
                    }
                    i.copy_from_slice(&part.sku_ids[part.sku_start[0] as usize..end as usize]);
                }
            });
            parts = Vec::new();
        }
        let mut next = start.clone();
        let mut next_sku = sku_start.clone();
        for part in parts {
            let part_skus = !part.sku_start.is_empty();
            for (r, &c) in part.customer.iter().enumerate() {
                let c = c as usize;
                let slot = next[c];
                next[c] += 1;
                day[slot] = part.day[r];
                amount[slot] = part.amount[r];
                if has_time && part.has_time {
                    second[slot] = part.second_of_day[r];
                }
                if part_skus {
                    let (a, b) = (part.sku_start[r] as usize, part.sku_start[r + 1] as usize);
                    sku_len[slot] = (b - a) as u32;
                    let at = next_sku[c];
                    sku_ids[at..at + (b - a)].copy_from_slice(&part.sku_ids[a..b]);
                    next_sku[c] += b - a;
                }
            }
        }
        drop((next, next_sku));
        // Each customer's records by (day, time of day, file order); in parallel over runs of customers.
        {
            struct Run<'a> {
                starts: &'a [usize],
                sku_starts: &'a [usize],
                day: &'a mut [i32],
                second: &'a mut [u32],
                amount: &'a mut [i64],
                sku_len: &'a mut [u32],
                sku_ids: &'a mut [u32],
            }
            let mut runs = Vec::new();
            let (mut d, mut s, mut a, mut l, mut i) =
                (&mut day[..], &mut second[..], &mut amount[..], &mut sku_len[..], &mut sku_ids[..]);
            let mut first = 0;
            while first < customers {
                let mut last = first + 1;
                while last < customers && start[last] - start[first] < 1 << 16 {
                    last += 1;
                }
                let n = start[last] - start[first];
                let k = if has_skus { sku_start[last] - sku_start[first] } else { 0 };
                runs.push(Run {
                    starts: &start[first..=last],
                    sku_starts: if has_skus { &sku_start[first..=last] } else { &[] },
                    day: take(&mut d, n),
                    second: take(&mut s, if has_time { n } else { 0 }),
                    amount: take(&mut a, n),
                    sku_len: take(&mut l, if has_skus { n } else { 0 }),
                    sku_ids: take(&mut i, k),
                });
                first = last;
            }
            runs.into_par_iter().for_each(|run| {
                let base = run.starts[0];
                let sku_base = run.sku_starts.first().copied().unwrap_or(0);
                let mut order: Vec<u32> = Vec::new();
                let mut scratch_ids: Vec<u32> = Vec::new();
                for c in 0..run.starts.len() - 1 {
                    let (from, to) = (run.starts[c] - base, run.starts[c + 1] - base);
                    if to - from < 2 {
                        continue;
                    }
                    let day = &run.day[from..to];
                    let sorted = if has_time {
                        let second = &run.second[from..to];
                        (1..day.len()).all(|k| (day[k - 1], second[k - 1]) <= (day[k], second[k]))
                    } else {
                        day.is_sorted()
                    };
                    if sorted {
                        continue;
                    }
                    // The keys are distinct (the position breaks ties), so an unstable sort gives the one order.
                    order.clear();
                    order.extend(0..(to - from) as u32);
                    if has_time {
                        let second = &run.second[from..to];
                        order.sort_unstable_by_key(|&r| (day[r as usize], second[r as usize], r));
                    } else {
                        order.sort_unstable_by_key(|&r| (day[r as usize], r));
                    }
                    fn permute<T: Copy>(values: &mut [T], order: &[u32]) {
                        let old = values.to_vec();
                        for (out, &r) in values.iter_mut().zip(order) {
                            *out = old[r as usize];
                        }
                    }
                    if has_skus {
                        let sku_from = run.sku_starts[c] - sku_base;
                        let sku_to = run.sku_starts[c + 1] - sku_base;
                        let lens = &run.sku_len[from..to];
                        let mut offsets = Vec::with_capacity(lens.len());
                        let mut at = sku_from;
                        for &len in lens {
                            offsets.push(at);
                            at += len as usize;
                        }
                        scratch_ids.clear();
                        for &r in &order {
                            let a = offsets[r as usize];
                            scratch_ids.extend_from_slice(&run.sku_ids[a..a + lens[r as usize] as usize]);
                        }
                        run.sku_ids[sku_from..sku_to].copy_from_slice(&scratch_ids);
                        permute(&mut run.sku_len[from..to], &order);
                    }
                    permute(&mut run.day[from..to], &order);
                    permute(&mut run.amount[from..to], &order);
                    if has_time {
                        permute(&mut run.second[from..to], &order);
                    }
                }
            });
        }
        // Same-day purchases merged, in place: a transaction is written at or before its first record.
        // (Nothing moves when no customer bought twice on one day, as in a file of daily transactions.)
        let mut out_customer: Vec<u32> = Vec::with_capacity(records);
        let mut out_record_count: Vec<u32> = Vec::with_capacity(records);
        let mut customer_start;
        let same_day =
            |c: usize| start[c + 1] - start[c] > 1 && day[start[c]..start[c + 1]].windows(2).any(|w| w[0] == w[1]);
        let nothing_to_merge = !options.merge_same_day || !(0..customers).into_par_iter().any(same_day);
        let mut w = 0usize;
        if nothing_to_merge {
            for c in 0..customers {
                out_customer.resize(start[c + 1], c as u32);
            }
            out_record_count.resize(records, 1);
            customer_start = start;
            w = records;
        } else {
            customer_start = Vec::with_capacity(customers + 1);
            customer_start.push(0usize);
            let (mut sku_read, mut sku_write) = (0usize, 0usize);
            for c in 0..customers {
                let mut previous_day = i32::MIN;
                for r in start[c]..start[c + 1] {
                    let today = day[r];
                    let len = if has_skus { sku_len[r] } else { 0 };
                    if options.merge_same_day && today == previous_day {
                        amount[w - 1] += amount[r];
                        out_record_count[w - 1] += 1;
                        if has_skus {
                            sku_len[w - 1] += len;
                        }
                    } else {
                        day[w] = today;
                        amount[w] = amount[r];
                        if has_time {
                            second[w] = second[r];
                        }
                        if has_skus {
                            sku_len[w] = len;
                        }
                        out_customer.push(c as u32);
                        out_record_count.push(1);
                        w += 1;
                    }
                    if len > 0 {
                        sku_ids.copy_within(sku_read..sku_read + len as usize, sku_write);
                        sku_read += len as usize;
                        sku_write += len as usize;
                    }
                    previous_day = today;
                }
                customer_start.push(w);
            }
        }
        day.truncate(w);
        amount.truncate(w);
        if has_time {
            second.truncate(w);
        }
        let skus = has_skus.then(|| {
            // SKU counts into offsets.
            sku_len.truncate(w);
            let mut total = 0u32;
            for len in &mut sku_len {
                let here = *len;
                *len = total;
                total += here;
            }
            sku_len.push(total);
            SkuColumn { start: sku_len, ids: sku_ids, names: keys.sku_names }
        });
        Ok(TransactionLog {
            options,
            keys: keys.keys,
            customer_start,
            customer: out_customer,
            day,
            amount,
            second_of_day: has_time.then_some(second),
            records_per_transaction: out_record_count,
            skus,
            record_count: records,
        })
    }

    /// Groups the records by customer (counting sort), orders each customer's records by time and
    /// merges same-day purchases if the options say so.
    pub fn build(self) -> TransactionLog {
        let customers = self.keys.len();
        let records = self.customer.len();
        // Counting sort by customer index.
        let mut start = vec![0usize; customers + 1];
        for &c in &self.customer {
            start[c as usize + 1] += 1;
        }
        for i in 0..customers {
            start[i + 1] += start[i];
        }
        let mut next = start.clone();
        let mut order = vec![0u32; records];
        for (record, &c) in self.customer.iter().enumerate() {
            let slot = &mut next[c as usize];
            order[*slot] = record as u32;
            *slot += 1;
        }
        // Order each customer's records by (day, time of day, arrival); in parallel over customers.
        {
            let mut slices: Vec<&mut [u32]> = Vec::with_capacity(customers);
            let mut rest: &mut [u32] = &mut order;
            for c in 0..customers {
                let (head, tail) = rest.split_at_mut(start[c + 1] - start[c]);
                slices.push(head);
                rest = tail;
            }
            let day = &self.day;
            let second = &self.second_of_day;
            let has_time = self.has_time;
            slices.par_iter_mut().with_min_len(4096).for_each(|slice| {
                // The keys are distinct (the record number breaks ties), so an unstable sort gives the
                // one order; records often come in time order already.
                if slice.len() > 1 {
                    if has_time {
                        let key = |&r: &u32| (day[r as usize], second[r as usize], r);
                        if !slice.is_sorted_by_key(key) {
                            slice.sort_unstable_by_key(key);
                        }
                    } else {
                        let key = |&r: &u32| (day[r as usize], r);
                        if !slice.is_sorted_by_key(key) {
                            slice.sort_unstable_by_key(key);
                        }
                    }
                }
            });
        }
        // Gather (and merge) into output columns.
        let has_skus = !self.sku_start.is_empty();
        let mut out_customer = Vec::with_capacity(records);
        let mut out_day = Vec::with_capacity(records);
        let mut out_amount = Vec::with_capacity(records);
        let mut out_second = if self.has_time { Vec::with_capacity(records) } else { Vec::new() };
        let mut out_record_count: Vec<u32> = Vec::with_capacity(records);
        let mut out_sku_start: Vec<u32> = if has_skus { vec![0] } else { Vec::new() };
        let mut out_sku_ids: Vec<u32> = Vec::new();
        let mut customer_start = Vec::with_capacity(customers + 1);
        customer_start.push(0usize);
        for c in 0..customers {
            let mut previous_day = i32::MIN;
            for &r in &order[start[c]..start[c + 1]] {
                let r = r as usize;
                let merge = self.options.merge_same_day && self.day[r] == previous_day;
                if merge {
                    *out_amount.last_mut().expect("merge follows a push") += self.amount[r];
                    *out_record_count.last_mut().expect("merge follows a push") += 1;
                } else {
                    out_customer.push(c as u32);
                    out_day.push(self.day[r]);
                    out_amount.push(self.amount[r]);
                    out_record_count.push(1);
                    if self.has_time {
                        out_second.push(self.second_of_day[r]);
                    }
                }
                if has_skus {
                    if !merge && out_customer.len() > 1 {
                        out_sku_start.push(out_sku_ids.len() as u32);
                    }
                    let (a, b) = (self.sku_start[r] as usize, self.sku_start[r + 1] as usize);
                    out_sku_ids.extend_from_slice(&self.sku_ids[a..b]);
                }
                previous_day = self.day[r];
            }
            customer_start.push(out_day.len());
        }
        if has_skus && !out_day.is_empty() {
            out_sku_start.push(out_sku_ids.len() as u32);
        }
        TransactionLog {
            options: self.options,
            keys: self.keys,
            customer_start,
            customer: out_customer,
            day: out_day,
            amount: out_amount,
            second_of_day: if self.has_time { Some(out_second) } else { None },
            records_per_transaction: out_record_count,
            skus: if has_skus {
                Some(SkuColumn { start: out_sku_start, ids: out_sku_ids, names: self.sku_names })
            } else {
                None
            },
            record_count: records,
        }
    }
}

/// SKUs of each transaction: transaction `i` holds `ids[start[i]..start[i + 1]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SkuColumn {
    /// Offsets into `ids`, one more than there are transactions.
    pub start: Vec<u32>,
    /// Interned SKU ids.
    pub ids: Vec<u32>,
    /// SKU names by id.
    pub names: Vec<String>,
}

/// Purchases in columns, sorted by customer and then by time.
#[derive(Debug, Clone, PartialEq)]
pub struct TransactionLog {
    options: LogOptions,
    keys: Vec<CustomerKey>,
    customer_start: Vec<usize>,
    customer: Vec<u32>,
    day: Vec<i32>,
    amount: Vec<i64>,
    second_of_day: Option<Vec<u32>>,
    records_per_transaction: Vec<u32>,
    skus: Option<SkuColumn>,
    record_count: usize,
}

impl TransactionLog {
    /// Options the log was built with.
    pub fn options(&self) -> LogOptions {
        self.options
    }
    /// Number of distinct customers.
    pub fn customer_count(&self) -> usize {
        self.keys.len()
    }
    /// Number of transactions (after same-day merging).
    pub fn transaction_count(&self) -> usize {
        self.day.len()
    }
    /// Number of records pushed into the builder.
    pub fn record_count(&self) -> usize {
        self.record_count
    }
    /// The caller's key of customer `index`.
    pub fn customer_key(&self, index: u32) -> &CustomerKey {
        &self.keys[index as usize]
    }
    /// All customer keys, by customer index.
    pub fn customer_keys(&self) -> &[CustomerKey] {
        &self.keys
    }
    /// The range of rows holding customer `index`'s transactions.
    pub fn rows_of(&self, index: u32) -> std::ops::Range<usize> {
        self.customer_start[index as usize]..self.customer_start[index as usize + 1]
    }
    /// Row offsets per customer (one more than there are customers).
    pub fn customer_starts(&self) -> &[usize] {
        &self.customer_start
    }
    /// Customer index column.
    pub fn customers(&self) -> &[u32] {
        &self.customer
    }
    /// Day column (days since 1970-01-01).
    pub fn days(&self) -> &[i32] {
        &self.day
    }
    /// Amount column in minor units.
    pub fn amounts(&self) -> &[i64] {
        &self.amount
    }
    /// Time of day column (seconds since midnight), when the input had times.
    pub fn seconds_of_day(&self) -> Option<&[u32]> {
        self.second_of_day.as_deref()
    }
    /// How many input records each transaction merged.
    pub fn records_per_transaction(&self) -> &[u32] {
        &self.records_per_transaction
    }
    /// SKUs per transaction, when the input had SKUs.
    pub fn skus(&self) -> Option<&SkuColumn> {
        self.skus.as_ref()
    }
    /// First and last day in the log, or `None` when it is empty.
    pub fn day_range(&self) -> Option<(i32, i32)> {
        let min = self.day.par_iter().min()?;
        let max = self.day.par_iter().max()?;
        Some((*min, *max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn groups_sorts_and_merges_same_day() {
        let mut b = TransactionLogBuilder::new(LogOptions::default());
        b.push_with_skus("bob", date(2024, 1, 5), 500, &["A"]).unwrap();
        b.push_with_skus("ann", date(2024, 1, 3), 100, &["B", "C"]).unwrap();
        b.push_with_skus("bob", date(2024, 1, 2), 200, &["A"]).unwrap();
        b.push_with_skus("bob", date(2024, 1, 5), 50, &["D"]).unwrap();
        let log = b.build();
        assert_eq!(log.customer_count(), 2);
        assert_eq!(log.transaction_count(), 3);
        assert_eq!(log.record_count(), 4);
        assert_eq!(log.customer_key(0), &CustomerKey::Text("bob".into()));
        assert_eq!(log.customers(), &[0, 0, 1]);
        assert_eq!(
            log.days(),
            &[day_number(date(2024, 1, 2)), day_number(date(2024, 1, 5)), day_number(date(2024, 1, 3))]
        );
        assert_eq!(log.amounts(), &[200, 550, 100]);
        assert_eq!(log.records_per_transaction(), &[1, 2, 1]);
        let skus = log.skus().unwrap();
        let names = |t: usize| -> Vec<&str> {
            skus.ids[skus.start[t] as usize..skus.start[t + 1] as usize]
                .iter()
                .map(|&i| skus.names[i as usize].as_str())
                .collect()
        };
        assert_eq!(names(0), vec!["A"]);
        assert_eq!(names(1), vec!["A", "D"]);
        assert_eq!(names(2), vec!["B", "C"]);
    }

    #[test]
    fn appended_parts_build_the_same_log_as_one_builder() {
        let at = |d: u32, h: u32| date(2024, 1, d).and_hms_opt(h, 0, 0).unwrap();
        type Record = (CustomerKey, PurchaseTime, i64, Vec<&'static str>);
        let records: Vec<Record> = vec![
            (CustomerKey::Text("bob".into()), date(2024, 1, 5).into(), 500, vec![]),
            (CustomerKey::Number(7), at(3, 9).into(), 100, vec!["B", "C"]),
            (CustomerKey::Text("bob".into()), at(2, 10).into(), 200, vec!["A"]),
            (CustomerKey::Text("ann".into()), date(2024, 1, 5).into(), 50, vec![]),
            (CustomerKey::Number(7), at(5, 8).into(), 70, vec!["D", "B"]),
            (CustomerKey::Text("cy".into()), at(1, 8).into(), 10, vec!["E"]),
            (CustomerKey::Text("bob".into()), date(2024, 1, 2).into(), 1, vec![]),
        ];
        let push = |b: &mut TransactionLogBuilder, r: &Record| {
            b.push_with_skus(CustomerKeyRef::from(&r.0), r.1, r.2, &r.3).unwrap();
        };
        let mut whole = TransactionLogBuilder::new(LogOptions::default());
        records.iter().for_each(|r| push(&mut whole, r));
        let whole = whole.build();
        // Every way of cutting the records into three consecutive parts.
        for i in 0..=records.len() {
            for j in i..=records.len() {
                let mut parts = [&records[..i], &records[i..j], &records[j..]].map(|part| {
                    let mut b = TransactionLogBuilder::new(LogOptions::default());
                    part.iter().for_each(|r| push(&mut b, r));
                    b
                });
                let [first, second, third] = &mut parts;
                let mut appended = std::mem::take(first);
                appended.append(std::mem::take(second)).unwrap();
                appended.append(std::mem::take(third)).unwrap();
                assert_eq!(appended.build(), whole, "cut at {i} and {j}");
                let parts = [&records[..i], &records[i..j], &records[j..]].map(|part| {
                    let mut b = TransactionLogBuilder::new(LogOptions::default());
                    part.iter().for_each(|r| push(&mut b, r));
                    b
                });
                let joined = TransactionLogBuilder::join(LogOptions::default(), parts.into()).unwrap();
                assert_eq!(joined.build(), whole, "joined, cut at {i} and {j}");
                for options in [LogOptions::default(), LogOptions { merge_same_day: false, ..Default::default() }] {
                    let parts = [&records[..i], &records[i..j], &records[j..]].map(|part| {
                        let mut b = TransactionLogBuilder::new(LogOptions::default());
                        part.iter().for_each(|r| push(&mut b, r));
                        b
                    });
                    let mut one = TransactionLogBuilder::new(options);
                    records.iter().for_each(|r| push(&mut one, r));
                    let built = TransactionLogBuilder::build_parts(options, parts.into()).unwrap();
                    assert_eq!(built, one.build(), "built from parts, cut at {i} and {j}, {options:?}");
                }
            }
        }
    }

    #[test]
    fn built_from_many_parts_the_log_is_that_of_one_builder() {
        // Records in no particular order: customers interleaved, days out of order, same-day purchases,
        // times of day and SKUs in some parts only.
        let mut state = 7u64;
        let mut next = |n: u64| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % n
        };
        let names = ["A", "B", "a-sku-longer-than-sixteen-bytes", "C"];
        type Record = (u64, u32, Option<u32>, i64, Vec<&'static str>);
        let records: Vec<Record> = (0..3000)
            .map(|i| {
                let customer = next(150);
                let day = 1 + next(20) as u32;
                let hour = (i % 7 != 0).then(|| next(24) as u32);
                let skus = (0..next(4)).map(|_| names[next(4) as usize]).collect();
                (customer, day, hour, next(1000) as i64, skus)
            })
            .collect();
        let push = |b: &mut TransactionLogBuilder, r: &Record| {
            let at: PurchaseTime = match r.2 {
                Some(h) => date(2024, 1, r.1).and_hms_opt(h, 0, 0).unwrap().into(),
                None => date(2024, 1, r.1).into(),
            };
            let key =
                if r.0.is_multiple_of(3) { CustomerKey::Number(r.0) } else { CustomerKey::Text(format!("c{}", r.0)) };
            b.push_with_skus(CustomerKeyRef::from(&key), at, r.3, &r.4).unwrap();
        };
        for options in [LogOptions::default(), LogOptions { merge_same_day: false, ..Default::default() }] {
            let mut one = TransactionLogBuilder::new(options);
            records.iter().for_each(|r| push(&mut one, r));
            let one = one.build();
            for cut in [1, 7, 250, 1000, 2999, 3000] {
                let parts: Vec<TransactionLogBuilder> = records
                    .chunks(cut)
                    .map(|chunk| {
                        let mut b = TransactionLogBuilder::new(options);
                        chunk.iter().for_each(|r| push(&mut b, r));
                        b
                    })
                    .collect();
                assert_eq!(TransactionLogBuilder::build_parts(options, parts).unwrap(), one, "{cut} {options:?}");
            }
        }
    }

    #[test]
    fn keeps_same_day_purchases_apart_when_asked() {
        let mut b = TransactionLogBuilder::new(LogOptions { merge_same_day: false, ..Default::default() });
        let at = date(2024, 1, 5).and_hms_opt(10, 0, 0).unwrap();
        b.push(7u64, at, 500).unwrap();
        b.push(7u64, date(2024, 1, 5).and_hms_opt(9, 0, 0).unwrap(), 100).unwrap();
        let log = b.build();
        assert_eq!(log.transaction_count(), 2);
        assert_eq!(log.amounts(), &[100, 500]);
        assert_eq!(log.seconds_of_day().unwrap(), &[9 * 3600, 10 * 3600]);
    }

    #[test]
    fn rejects_negative_amounts() {
        let mut b = TransactionLogBuilder::new(LogOptions::default());
        let err = b.push(1u64, date(2024, 1, 1), -5).unwrap_err();
        assert!(matches!(err, AnalyticsError::NegativeAmount { record: 0, amount_minor: -5 }));
    }

    #[test]
    fn short_texts_compare_as_bytes() {
        let text = b"0123456789abcdefghij";
        for len in 0..=20 {
            let a = &text[..len];
            assert!(same_text(a, a));
            assert!(!same_text(a, &text[..len.saturating_sub(1)]) || len == 0);
            for at in 0..len {
                let mut b = a.to_vec();
                b[at] ^= 1;
                assert!(!same_text(a, &b), "{len} {at}");
            }
        }
    }

    #[test]
    fn day_numbers_round_trip() {
        assert_eq!(day_number(date(1970, 1, 1)), 0);
        assert_eq!(date_of_day_number(day_number(date(1997, 9, 30))), date(1997, 9, 30));
    }
}
