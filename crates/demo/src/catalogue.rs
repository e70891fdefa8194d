//! The demo shop's catalogue: a café with a deli counter and a small bookshop, about sixty products.

use regulars_core::{Currency, Money, ProductDraft, Sku};

/// One product of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogueItem {
    pub sku: &'static str,
    pub name: &'static str,
    pub category: Category,
    /// Price in euro cents.
    pub price_minor: i64,
}

/// The shop's departments; each customer prefers some of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    Coffee,
    Tea,
    Bakery,
    Deli,
    Pantry,
    Books,
    Stationery,
}

impl Category {
    pub const ALL: [Category; 7] = [
        Category::Coffee,
        Category::Tea,
        Category::Bakery,
        Category::Deli,
        Category::Pantry,
        Category::Books,
        Category::Stationery,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Category::Coffee => "Coffee",
            Category::Tea => "Tea",
            Category::Bakery => "Bakery",
            Category::Deli => "Deli",
            Category::Pantry => "Pantry",
            Category::Books => "Books",
            Category::Stationery => "Stationery",
        }
    }
}

macro_rules! items {
    ($($sku:literal, $name:literal, $category:ident, $price:literal;)*) => {
        &[$(CatalogueItem { sku: $sku, name: $name, category: Category::$category, price_minor: $price }),*]
    };
}

/// Every product, in a fixed order (indices into this slice are stable).
pub const CATALOGUE: &[CatalogueItem] = items![
    "COF-ESP", "Espresso", Coffee, 220;
    "COF-DOP", "Double espresso", Coffee, 290;
    "COF-AME", "Americano", Coffee, 290;
    "COF-FLW", "Flat white", Coffee, 380;
    "COF-CAP", "Cappuccino", Coffee, 360;
    "COF-LAT", "Caffè latte", Coffee, 380;
    "COF-MAC", "Macchiato", Coffee, 260;
    "COF-FIL", "Filter coffee", Coffee, 300;
    "COF-CLB", "Cold brew", Coffee, 400;
    "COF-MOC", "Mocha", Coffee, 420;
    "COF-OAT", "Oat milk flat white", Coffee, 430;
    "TEA-ENG", "English breakfast tea", Tea, 280;
    "TEA-GRN", "Sencha green tea", Tea, 300;
    "TEA-CHA", "Chai latte", Tea, 390;
    "TEA-MAT", "Matcha latte", Tea, 440;
    "TEA-MNT", "Fresh mint tea", Tea, 300;
    "TEA-HOT", "Hot chocolate", Tea, 370;
    "BAK-CRO", "Butter croissant", Bakery, 240;
    "BAK-PAC", "Pain au chocolat", Bakery, 270;
    "BAK-ALM", "Almond croissant", Bakery, 320;
    "BAK-CIN", "Cinnamon bun", Bakery, 330;
    "BAK-BAN", "Banana bread slice", Bakery, 310;
    "BAK-BRO", "Chocolate brownie", Bakery, 290;
    "BAK-SCO", "Scone with jam and cream", Bakery, 350;
    "BAK-SOU", "Sourdough loaf", Bakery, 580;
    "BAK-BAG", "Sesame bagel", Bakery, 220;
    "BAK-CHE", "Cheesecake slice", Bakery, 420;
    "DEL-HAM", "Ham and cheese toastie", Deli, 650;
    "DEL-CAP", "Caprese sandwich", Deli, 690;
    "DEL-SAL", "Smoked salmon bagel", Deli, 790;
    "DEL-SOU", "Soup of the day", Deli, 550;
    "DEL-QUI", "Spinach and feta quiche", Deli, 620;
    "DEL-BOW", "Grain bowl", Deli, 890;
    "DEL-AVO", "Avocado toast", Deli, 820;
    "DEL-OLV", "Marinated olives, 200 g", Deli, 450;
    "DEL-CHZ", "Aged Gouda, 250 g", Deli, 690;
    "DEL-SLM", "Fennel salami, 150 g", Deli, 740;
    "PAN-BEA", "House espresso beans, 250 g", Pantry, 990;
    "PAN-BEK", "House espresso beans, 1 kg", Pantry, 3290;
    "PAN-DEC", "Decaf beans, 250 g", Pantry, 1090;
    "PAN-TEA", "Loose leaf Earl Grey, 100 g", Pantry, 790;
    "PAN-JAM", "Apricot jam", Pantry, 590;
    "PAN-HON", "Wildflower honey", Pantry, 890;
    "PAN-OIL", "Extra virgin olive oil, 500 ml", Pantry, 1490;
    "PAN-CHO", "Dark chocolate bar, 70 %", Pantry, 390;
    "PAN-GRA", "Granola, 400 g", Pantry, 690;
    "BOO-NOV", "Novel of the month", Books, 2200;
    "BOO-PAP", "Paperback classic", Books, 1200;
    "BOO-CKB", "Seasonal cookbook", Books, 3400;
    "BOO-KID", "Picture book", Books, 1600;
    "BOO-TRV", "City walking guide", Books, 1800;
    "BOO-POE", "Poetry collection", Books, 1500;
    "BOO-CRM", "Crime paperback", Books, 1300;
    "BOO-COF", "The coffee atlas", Books, 2900;
    "BOO-MAG", "Food magazine", Books, 900;
    "STA-NOT", "Dotted notebook A5", Stationery, 1400;
    "STA-PEN", "Fountain pen", Stationery, 2500;
    "STA-CAR", "Greeting card", Stationery, 350;
    "STA-PCS", "Postcard set", Stationery, 800;
    "STA-CAL", "Wall calendar", Stationery, 1900;
    "STA-GFT", "Gift voucher 25 EUR", Stationery, 2500;
];

/// The catalogue as product drafts in `currency` (prices are taken as written, in minor units).
pub fn product_drafts(currency: Currency) -> Vec<ProductDraft> {
    CATALOGUE.iter().map(|item| product_draft(item, currency)).collect()
}

pub(crate) fn product_draft(item: &CatalogueItem, currency: Currency) -> ProductDraft {
    ProductDraft {
        sku: Sku::parse("sku", item.sku).expect("catalogue SKUs are valid"),
        name: item.name.to_owned(),
        category: Some(item.category.name().to_owned()),
        price: Some(Money::new(item.price_minor, currency)),
    }
}

/// Indices into [`CATALOGUE`] of the products of one category.
pub(crate) fn of_category(category: Category) -> Vec<usize> {
    CATALOGUE.iter().enumerate().filter(|(_, item)| item.category == category).map(|(i, _)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_is_valid_and_has_unique_skus() {
        let eur = Currency::parse("currency", "EUR").unwrap();
        let products = product_drafts(eur);
        assert!((55..=65).contains(&products.len()));
        let mut skus: Vec<&str> = CATALOGUE.iter().map(|i| i.sku).collect();
        skus.sort_unstable();
        skus.dedup();
        assert_eq!(skus.len(), CATALOGUE.len());
        for category in Category::ALL {
            assert!(!of_category(category).is_empty(), "{category:?}");
        }
    }
}
