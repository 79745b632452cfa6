//! The clickstream: users browse a catalog in sessions, view products and
//! sometimes buy one. Everything is drawn from one seeded generator, so a
//! seed gives the same sessions in the same order on every run; only the
//! `event_time` stamps depend on when they are sent.
//!
//! - Products `p001`... have a category and a price; their popularity is
//!   Zipf-like (weight `1 / rank^1.1`, ranks shuffled by the seed).
//! - A few bundles of products are often viewed together: after viewing
//!   a bundle member, the next view is usually another member.
//! - Otherwise the next view is often from the same category.
//! - About 5% of sessions end with a purchase of a viewed product.
//! - Sessions are scheduled on a virtual clock at the requested rate;
//!   during a burst (from [`BURST_AT`] for [`BURST_SECS`] seconds, again
//!   every [`BURST_EVERY`] seconds) they come [`BURST_FACTOR`] times as
//!   fast: the anomaly for the forest to find.

use serde_json::json;

pub const PRODUCTS: usize = 50;
pub const USERS: u64 = 2000;
const CATEGORIES: [&str; 8] = [
    "books", "music", "games", "toys", "garden", "kitchen", "sports", "beauty",
];
const BUNDLES: usize = 5;
const BUNDLE_SIZE: usize = 3;
const MAX_VIEWS: usize = 8;
const PURCHASE_PERCENT: u64 = 5;

/// The first burst starts this many seconds in: after the forest has
/// learned from a minute of one-second windows.
pub const BURST_AT: f64 = 80.0;
pub const BURST_SECS: f64 = 5.0;
pub const BURST_EVERY: f64 = 120.0;
pub const BURST_FACTOR: f64 = 6.0;

/// SplitMix64: small, fast and the same everywhere.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5EED_C11C_CA7A_1065)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        // Multiply-shift: no modulo bias worth speaking of for small n.
        ((self.next_u64() >> 32) * n) >> 32
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
}

#[derive(Debug, Clone)]
pub struct Product {
    pub id: String,
    pub category: &'static str,
    pub price: f64,
}

/// One click.
#[derive(Debug, Clone, PartialEq)]
pub struct Click {
    pub user: u64,
    pub session: u64,
    pub purchase: bool,
    pub product: usize,
}

/// A session: its clicks, sent together, and when it is due on the
/// virtual clock (seconds from the start).
#[derive(Debug, Clone)]
pub struct Session {
    pub due: f64,
    pub clicks: Vec<Click>,
}

pub struct Generator {
    rng: Rng,
    pub products: Vec<Product>,
    /// Cumulative popularity weights by product index.
    cumulative: Vec<f64>,
    /// The bundle of each product, if any.
    bundle_of: Vec<Option<usize>>,
    bundles: Vec<Vec<usize>>,
    rate: f64,
    clock: f64,
    next_session: u64,
}

impl Generator {
    pub fn new(seed: u64, rate: f64) -> Generator {
        let mut rng = Rng::new(seed);
        let products: Vec<Product> = (0..PRODUCTS)
            .map(|i| {
                let category = CATEGORIES[rng.below(CATEGORIES.len() as u64) as usize];
                let cents = 499 + rng.below(60) * 100 + [0, 50, 100][rng.below(3) as usize] as u64;
                Product {
                    id: format!("p{:03}", i + 1),
                    category,
                    price: cents as f64 / 100.0,
                }
            })
            .collect();
        // Popularity ranks: a shuffled order, rank r weighs 1 / r^1.1.
        let mut order: Vec<usize> = (0..PRODUCTS).collect();
        for i in (1..PRODUCTS).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            order.swap(i, j);
        }
        let mut weight = vec![0.0; PRODUCTS];
        for (rank, &p) in order.iter().enumerate() {
            weight[p] = 1.0 / ((rank + 1) as f64).powf(1.1);
        }
        let mut total = 0.0;
        let cumulative = weight
            .iter()
            .map(|w| {
                total += w;
                total
            })
            .collect();
        // Bundles from the twenty most popular products.
        let mut pool: Vec<usize> = order[..20].to_vec();
        let mut bundles = Vec::new();
        let mut bundle_of = vec![None; PRODUCTS];
        for b in 0..BUNDLES {
            let mut members = Vec::new();
            for _ in 0..BUNDLE_SIZE {
                let p = pool.swap_remove(rng.below(pool.len() as u64) as usize);
                bundle_of[p] = Some(b);
                members.push(p);
            }
            bundles.push(members);
        }
        Generator {
            rng,
            products,
            cumulative,
            bundle_of,
            bundles,
            rate,
            clock: 0.0,
            next_session: 1,
        }
    }

    fn popular(&mut self) -> usize {
        let total = self.cumulative[PRODUCTS - 1];
        let x = self.rng.unit() * total;
        self.cumulative
            .partition_point(|c| *c <= x)
            .min(PRODUCTS - 1)
    }

    /// The view after `last` in a session that has seen `seen`.
    fn next_view(&mut self, last: usize, seen: &[usize]) -> Option<usize> {
        if let Some(b) = self.bundle_of[last] {
            if self.rng.percent(75) {
                let left: Vec<usize> = self.bundles[b]
                    .iter()
                    .copied()
                    .filter(|p| !seen.contains(p))
                    .collect();
                if !left.is_empty() {
                    return Some(left[self.rng.below(left.len() as u64) as usize]);
                }
            }
        }
        let same_category = self.rng.percent(50);
        for _ in 0..8 {
            let p = self.popular();
            if seen.contains(&p) {
                continue;
            }
            if same_category && self.products[p].category != self.products[last].category {
                continue;
            }
            return Some(p);
        }
        None
    }

    /// True during a burst of the virtual clock.
    pub fn bursting(at: f64) -> bool {
        at >= BURST_AT && (at - BURST_AT) % BURST_EVERY < BURST_SECS
    }

    /// The next session.
    pub fn session(&mut self) -> Session {
        let user = 1 + self.rng.below(USERS);
        let session = self.next_session;
        self.next_session += 1;
        let mut seen = vec![self.popular()];
        while seen.len() < MAX_VIEWS && self.rng.percent(65) {
            let last = seen[seen.len() - 1];
            match self.next_view(last, &seen) {
                Some(p) => seen.push(p),
                None => break,
            }
        }
        let mut clicks: Vec<Click> = seen
            .iter()
            .map(|&product| Click {
                user,
                session,
                purchase: false,
                product,
            })
            .collect();
        if self.rng.percent(PURCHASE_PERCENT) {
            let product = seen[self.rng.below(seen.len() as u64) as usize];
            clicks.push(Click {
                user,
                session,
                purchase: true,
                product,
            });
        }
        let due = self.clock;
        let rate = if Self::bursting(due) {
            self.rate * BURST_FACTOR
        } else {
            self.rate
        };
        self.clock += clicks.len() as f64 / rate;
        Session { due, clicks }
    }

    /// A click as the JSON record sent.
    pub fn record(&self, c: &Click, event_time_ms: i64) -> Vec<u8> {
        let p = &self.products[c.product];
        let v = json!({
            "event_time": iso_time(event_time_ms),
            "user_id": format!("u{}", c.user),
            "session_id": format!("s{}", c.session),
            "event": if c.purchase { "purchase" } else { "view" },
            "product_id": p.id,
            "category": p.category,
            "price": p.price,
        });
        let mut out = serde_json::to_vec(&v).unwrap_or_default();
        out.push(b'\n');
        out
    }
}

/// `yyyy-MM-ddTHH:mm:ss.SSSZ` of milliseconds since the epoch.
pub fn iso_time(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let t = ms.rem_euclid(86_400_000);
    // Days to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        t / 3_600_000,
        t / 60_000 % 60,
        t / 1000 % 60,
        t % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_sessions() {
        let mut a = Generator::new(7, 300.0);
        let mut b = Generator::new(7, 300.0);
        let mut c = Generator::new(8, 300.0);
        let sa: Vec<_> = (0..200).map(|_| a.session().clicks).collect();
        let sb: Vec<_> = (0..200).map(|_| b.session().clicks).collect();
        let sc: Vec<_> = (0..200).map(|_| c.session().clicks).collect();
        assert_eq!(sa, sb);
        assert_ne!(sa, sc);
    }

    #[test]
    fn sessions_view_distinct_products_and_sometimes_buy_one() {
        let mut g = Generator::new(1, 200.0);
        let mut sessions = 0;
        let mut bought = 0;
        for _ in 0..10_000 {
            let s = g.session();
            sessions += 1;
            let views: Vec<usize> = s
                .clicks
                .iter()
                .filter(|c| !c.purchase)
                .map(|c| c.product)
                .collect();
            let mut distinct = views.clone();
            distinct.sort();
            distinct.dedup();
            assert_eq!(distinct.len(), views.len());
            assert!(!views.is_empty() && views.len() <= MAX_VIEWS);
            let buys: Vec<&Click> = s.clicks.iter().filter(|c| c.purchase).collect();
            assert!(buys.len() <= 1);
            if let Some(b) = buys.first() {
                assert!(views.contains(&b.product));
                assert!(s.clicks.last().is_some_and(|c| c.purchase));
                bought += 1;
            }
            assert!(s
                .clicks
                .iter()
                .all(|c| c.session == s.clicks[0].session && c.user == s.clicks[0].user));
        }
        assert!((350..650).contains(&bought), "{bought} of {sessions}");
    }

    #[test]
    fn popularity_is_skewed() {
        let mut g = Generator::new(3, 200.0);
        let mut counts = [0u32; PRODUCTS];
        for _ in 0..20_000 {
            counts[g.popular()] += 1;
        }
        let mut sorted = counts;
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        // The most popular product is drawn far more than the median one.
        assert!(sorted[0] > 8 * sorted[PRODUCTS / 2], "{sorted:?}");
    }

    #[test]
    fn the_virtual_clock_keeps_the_rate_and_bursts() {
        let mut g = Generator::new(5, 100.0);
        let mut clicks = 0;
        let mut burst_clicks = 0;
        loop {
            let s = g.session();
            if s.due >= BURST_AT + BURST_SECS {
                break;
            }
            if s.due < BURST_AT {
                clicks += s.clicks.len();
            } else {
                burst_clicks += s.clicks.len();
            }
        }
        let base = 100.0 * BURST_AT;
        assert!((clicks as f64 - base).abs() < 10.0, "{clicks}");
        let burst = 100.0 * BURST_FACTOR * BURST_SECS;
        assert!((burst_clicks as f64 - burst).abs() < 60.0, "{burst_clicks}");
        assert!(Generator::bursting(BURST_AT + BURST_EVERY + 1.0));
        assert!(!Generator::bursting(BURST_AT + BURST_SECS + 1.0));
    }

    #[test]
    fn event_times_are_iso_8601() {
        assert_eq!(iso_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_time(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(iso_time(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
