//! Plausible customers: names, e-mail addresses, phone numbers, locales and time zones of the people who
//! might come into a café and bookshop in a central European city.

use rand::Rng;
use rand::seq::SliceRandom;

/// A locale with its zone, names and phone numbering.
pub(crate) struct Origin {
    pub locale: &'static str,
    pub time_zone: &'static str,
    /// Relative share of customers.
    pub weight: u32,
    pub first_names: &'static [&'static str],
    pub last_names: &'static [&'static str],
    /// Country code and mobile prefixes, e.g. `+49` and `151`.
    pub country_code: &'static str,
    pub mobile_prefixes: &'static [&'static str],
    pub subscriber_digits: usize,
}

pub(crate) const ORIGINS: &[Origin] = &[
    Origin {
        locale: "de-DE",
        time_zone: "Europe/Berlin",
        weight: 45,
        first_names: &[
            "Anna",
            "Lena",
            "Sophie",
            "Marie",
            "Laura",
            "Julia",
            "Katharina",
            "Hannah",
            "Lea",
            "Sarah",
            "Jonas",
            "Lukas",
            "Felix",
            "Maximilian",
            "Leon",
            "Paul",
            "Tobias",
            "Jan",
            "Moritz",
            "Niklas",
            "Jürgen",
            "Sabine",
            "Uwe",
            "Heike",
        ],
        last_names: &[
            "Müller",
            "Schmidt",
            "Schneider",
            "Fischer",
            "Weber",
            "Meyer",
            "Wagner",
            "Becker",
            "Schulz",
            "Hoffmann",
            "Koch",
            "Richter",
            "Klein",
            "Wolf",
            "Schröder",
            "Neumann",
            "Schwarz",
            "Braun",
            "Zimmermann",
            "Krüger",
        ],
        country_code: "+49",
        mobile_prefixes: &["151", "152", "157", "160", "170", "171", "176", "178"],
        subscriber_digits: 8,
    },
    Origin {
        locale: "en-GB",
        time_zone: "Europe/London",
        weight: 12,
        first_names: &[
            "Oliver", "George", "Harry", "Jack", "Charlie", "Amelia", "Olivia", "Isla", "Emily", "Poppy", "Grace",
            "Ruby",
        ],
        last_names: &[
            "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Evans", "Thomas", "Roberts", "Walker",
        ],
        country_code: "+44",
        mobile_prefixes: &["7700", "7711", "7723", "7800", "7900"],
        subscriber_digits: 6,
    },
    Origin {
        locale: "fr-FR",
        time_zone: "Europe/Paris",
        weight: 10,
        first_names: &[
            "Camille", "Léa", "Chloé", "Manon", "Inès", "Lucas", "Hugo", "Louis", "Théo", "Gabriel", "Émile",
        ],
        last_names: &[
            "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau",
        ],
        country_code: "+33",
        mobile_prefixes: &["6", "7"],
        subscriber_digits: 8,
    },
    Origin {
        locale: "it-IT",
        time_zone: "Europe/Rome",
        weight: 8,
        first_names: &["Giulia", "Chiara", "Francesca", "Sara", "Alessandro", "Lorenzo", "Matteo", "Andrea", "Marco"],
        last_names: &["Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci", "Greco"],
        country_code: "+39",
        mobile_prefixes: &["320", "333", "347", "380"],
        subscriber_digits: 7,
    },
    Origin {
        locale: "es-ES",
        time_zone: "Europe/Madrid",
        weight: 8,
        first_names: &["Lucía", "Martina", "María", "Paula", "Hugo", "Martín", "Pablo", "Álvaro", "Javier", "Carmen"],
        last_names: &["García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez", "Pérez", "Gómez"],
        country_code: "+34",
        mobile_prefixes: &["6", "7"],
        subscriber_digits: 8,
    },
    Origin {
        locale: "nl-NL",
        time_zone: "Europe/Amsterdam",
        weight: 7,
        first_names: &["Emma", "Julia", "Tess", "Sanne", "Daan", "Sem", "Bram", "Lars", "Thijs", "Femke"],
        last_names: &["de Jong", "Jansen", "de Vries", "van Dijk", "Bakker", "Visser", "Smit", "Meijer", "Mulder"],
        country_code: "+31",
        mobile_prefixes: &["6"],
        subscriber_digits: 8,
    },
    Origin {
        locale: "tr-TR",
        time_zone: "Europe/Istanbul",
        weight: 5,
        first_names: &["Elif", "Zeynep", "Ayşe", "Emre", "Mehmet", "Can", "Deniz", "Yusuf", "Selin"],
        last_names: &["Yılmaz", "Kaya", "Demir", "Şahin", "Çelik", "Yıldız", "Öztürk", "Aydın", "Arslan"],
        country_code: "+90",
        mobile_prefixes: &["530", "532", "542", "555"],
        subscriber_digits: 7,
    },
    Origin {
        locale: "pl-PL",
        time_zone: "Europe/Warsaw",
        weight: 5,
        first_names: &["Zofia", "Maja", "Hanna", "Julia", "Jakub", "Antoni", "Szymon", "Kacper", "Wojciech"],
        last_names: &["Nowak", "Kowalski", "Wiśniewski", "Wójcik", "Kowalczyk", "Kamiński", "Lewandowski", "Zieliński"],
        country_code: "+48",
        mobile_prefixes: &["50", "51", "60", "69", "72", "79"],
        subscriber_digits: 7,
    },
];

const EMAIL_DOMAINS: &[&str] = &["example.com", "example.net", "example.org", "mail.example", "post.example"];

pub(crate) fn pick_origin(rng: &mut impl Rng) -> &'static Origin {
    let total: u32 = ORIGINS.iter().map(|o| o.weight).sum();
    let mut ticket = rng.gen_range(0..total);
    for origin in ORIGINS {
        if ticket < origin.weight {
            return origin;
        }
        ticket -= origin.weight;
    }
    &ORIGINS[0]
}

/// A first and last name of the origin.
pub(crate) fn name(origin: &Origin, rng: &mut impl Rng) -> (&'static str, &'static str) {
    (origin.first_names.choose(rng).expect("names"), origin.last_names.choose(rng).expect("names"))
}

/// An address unique to the customer number: `first.last.<number>@domain`, folded to ASCII.
pub(crate) fn email(first: &str, last: &str, number: u64, rng: &mut impl Rng) -> String {
    let domain = EMAIL_DOMAINS.choose(rng).expect("domains");
    let style = rng.gen_range(0..3);
    let (first, last) = (ascii_fold(first), ascii_fold(last).replace(' ', ""));
    match style {
        0 => format!("{first}.{last}.{number}@{domain}"),
        1 => format!("{}{last}{number}@{domain}", &first[..1]),
        _ => format!("{last}.{first}{number}@{domain}"),
    }
}

/// A mobile number of the origin, written the way people type it (spaces included).
pub(crate) fn phone(origin: &Origin, rng: &mut impl Rng) -> String {
    let prefix = origin.mobile_prefixes.choose(rng).expect("prefixes");
    let digits: String = (0..origin.subscriber_digits).map(|_| char::from(b'0' + rng.gen_range(0..10u8))).collect();
    format!("{} {prefix} {digits}", origin.country_code)
}

/// Lower-case ASCII for an e-mail local part: umlauts as `ae`, accents dropped.
fn ascii_fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.to_lowercase().chars() {
        match c {
            'ä' => out.push_str("ae"),
            'ö' => out.push_str("oe"),
            'ü' => out.push_str("ue"),
            'ß' => out.push_str("ss"),
            'à' | 'á' | 'â' => out.push('a'),
            'é' | 'è' | 'ê' | 'ë' => out.push('e'),
            'í' | 'ì' | 'ı' => out.push('i'),
            'ó' | 'ò' | 'ô' => out.push('o'),
            'ú' | 'ù' => out.push('u'),
            'ç' | 'č' => out.push('c'),
            'ş' | 'ś' => out.push('s'),
            'ğ' => out.push('g'),
            'ł' => out.push('l'),
            'ń' | 'ñ' => out.push('n'),
            'ż' | 'ź' => out.push('z'),
            c if c.is_ascii_alphanumeric() => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use regulars_core::{Email, Phone};

    use super::*;

    #[test]
    fn generated_contacts_parse() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for n in 0..500 {
            let origin = pick_origin(&mut rng);
            let (first, last) = name(origin, &mut rng);
            Email::parse("email", &email(first, last, n, &mut rng)).unwrap();
            Phone::parse("phone", &phone(origin, &mut rng)).unwrap();
            regulars_core::customer::parse_time_zone("tz", origin.time_zone).unwrap();
            regulars_core::customer::parse_locale("locale", origin.locale).unwrap();
        }
        assert_eq!(ascii_fold("Şahin Müller"), "sahinmueller");
    }
}
