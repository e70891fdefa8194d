//! Sniffing the first bytes of a file: the delimiter, and the format from the header.

use crate::format::Format;

/// The separator of the fields of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delimiter {
    Comma,
    Semicolon,
    Tab,
    Pipe,
    /// One or more spaces or tabs (CDNOW).
    Whitespace,
}

impl Delimiter {
    pub(crate) fn byte(self) -> u8 {
        match self {
            Delimiter::Comma => b',',
            Delimiter::Semicolon => b';',
            Delimiter::Tab => b'\t',
            Delimiter::Pipe => b'|',
            Delimiter::Whitespace => b' ',
        }
    }
}

/// The first line of the sample (without its line end), quotes kept.
pub(crate) fn first_line(sample: &[u8]) -> &str {
    let text = match std::str::from_utf8(sample) {
        Ok(t) => t,
        Err(e) => std::str::from_utf8(&sample[..e.valid_up_to()]).unwrap_or(""),
    };
    let text = text.trim_start_matches(['\r', '\n']);
    text.split('\n').next().unwrap_or("").trim_end_matches('\r')
}

/// The delimiter of a header line: whichever of `,` `;` tab `|` occurs most often outside double quotes;
/// when none occurs and the line has several space-separated words, whitespace; otherwise a comma (a file of
/// one column).
pub fn sniff_delimiter(line: &str) -> Delimiter {
    let mut counts = [0usize; 4];
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => counts[0] += 1,
            ';' if !quoted => counts[1] += 1,
            '\t' if !quoted => counts[2] += 1,
            '|' if !quoted => counts[3] += 1,
            _ => {}
        }
    }
    let candidates = [Delimiter::Comma, Delimiter::Semicolon, Delimiter::Tab, Delimiter::Pipe];
    let (best, count) = counts.iter().enumerate().max_by_key(|&(i, c)| (*c, std::cmp::Reverse(i))).expect("four");
    if *count > 0 {
        candidates[best]
    } else if line.split_ascii_whitespace().count() > 1 {
        Delimiter::Whitespace
    } else {
        Delimiter::Comma
    }
}

/// Recognises a format from the first line, split by its delimiter. `None` when nothing matches.
pub(crate) fn sniff_format(line: &str, delimiter: Delimiter) -> Option<Format> {
    if delimiter == Delimiter::Whitespace {
        let words: Vec<&str> = line.split_ascii_whitespace().collect();
        let numeric = |w: &&str| w.bytes().all(|b| b.is_ascii_digit() || b == b'.');
        let cdnow_header = words.first().is_some_and(|w| w.eq_ignore_ascii_case("customer_id"));
        let cdnow_row = (words.len() == 4 || words.len() == 5) && words.iter().all(numeric);
        return (cdnow_header || cdnow_row).then_some(Format::Cdnow);
    }
    let mut reader =
        csv::ReaderBuilder::new().has_headers(false).delimiter(delimiter.byte()).from_reader(line.as_bytes());
    let header = reader.records().next()?.ok()?;
    let names: Vec<String> = header.iter().map(|h| h.trim().to_ascii_lowercase()).collect();
    let has = |name: &str| names.iter().any(|n| n == name);
    if has("name") && has("lineitem quantity") && has("lineitem name") {
        Some(Format::Shopify)
    } else if (has("order id") || has("order number")) && has("order date") {
        Some(Format::WooCommerce)
    } else if has("id") && has("created date (utc)") && has("amount") {
        Some(Format::Stripe)
    } else if has("order_id") && has("placed_at") && has("sku") && has("quantity") && has("unit_price") {
        Some(Format::Generic)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiters_are_sniffed_from_the_header() {
        assert_eq!(sniff_delimiter("a,b,c"), Delimiter::Comma);
        assert_eq!(sniff_delimiter("a;b;\"c,d\""), Delimiter::Semicolon);
        assert_eq!(sniff_delimiter("a\tb\tc"), Delimiter::Tab);
        assert_eq!(sniff_delimiter("a|b|c"), Delimiter::Pipe);
        assert_eq!(sniff_delimiter(" customer_id  date number_of_cds  dollar_value"), Delimiter::Whitespace);
        assert_eq!(sniff_delimiter("only"), Delimiter::Comma);
    }

    #[test]
    fn formats_are_recognised_from_the_header() {
        let sniff = |line: &str| sniff_format(line, sniff_delimiter(line));
        assert_eq!(sniff(" 00004 0001 19970101  2   29.33"), Some(Format::Cdnow));
        assert_eq!(sniff("Name,Email,Lineitem quantity,Lineitem name"), Some(Format::Shopify));
        assert_eq!(sniff("Order ID;Order Date;Billing Email"), Some(Format::WooCommerce));
        assert_eq!(sniff("id,Created date (UTC),Amount,Currency"), Some(Format::Stripe));
        assert_eq!(sniff("order_id,customer_id,placed_at,currency,sku,quantity,unit_price"), Some(Format::Generic));
        assert_eq!(sniff("when,what,how much"), None);
    }
}
