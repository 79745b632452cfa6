//! HOTSPOTS: the relatively dense regions of a sliding window of records.
//!
//! `HOTSPOTS(inputStream, windowSize, scanRadius,
//! minimumNumberOfPointsInAHotspot)` looks at a record's numeric columns,
//! in column order, as a point, and after each record describes the
//! hotspots among the last `windowSize` points in `HOTSPOTS_RESULT`.
//!
//! - A hotspot is a cluster as DBSCAN finds it, with `scanRadius` as ε and
//!   `minimumNumberOfPointsInAHotspot` as the minimum points: two points
//!   are neighbours when their Euclidean distance is at most `scanRadius`;
//!   a point with at least `minimumNumberOfPointsInAHotspot` points within
//!   that distance (itself included) is a core point; core points that are
//!   neighbours belong to the same hotspot, and so does every neighbour of
//!   its core points (a border point goes to the first hotspot, in arrival
//!   order of its oldest point, that reaches it). Other points are noise.
//! - A hotspot's `minValues` and `maxValues` are, per column, the least
//!   and greatest value of its points; its `density` is its number of
//!   points divided by the volume of that box, a side narrower than
//!   `scanRadius` counting as `scanRadius` wide (so a hotspot of equal
//!   values has a finite density). Densities beyond the largest double are
//!   reported as the largest double.
//! - The result is `{"hotspots":[{"density":d,"maxValues":[..],"minValues":[..]},..]}`,
//!   every hotspot found (the application filters by density), densest
//!   first, ties by age; `{"hotspots":[]}` when there is none, including
//!   while the window holds fewer than `minimumNumberOfPointsInAHotspot`
//!   points. The window is the last `windowSize` points, fewer until that
//!   many have arrived.
//! - A record with a NaN or infinite value, or with a number of values
//!   other than the function's, does not enter the window; it gets the
//!   current window's hotspots.
//!
//! Parameter ranges are AWS's: `windowSize` 100 to 1,000, `scanRadius`
//! greater than zero, `minimumNumberOfPointsInAHotspot` 2 to `windowSize`.
//! Neighbour lists are kept as points arrive and leave, so a record costs
//! its distances to the window plus one pass over the window's neighbour
//! pairs; memory is the window and those pairs.

/// The HOTSPOTS state of one stream.
#[derive(Debug, Clone)]
pub struct Hotspots {
    window_size: usize,
    radius: f64,
    min_points: usize,
    dims: usize,
    /// Point of each slot; the i-th point to arrive takes slot i mod
    /// `window_size`.
    points: Vec<f64>,
    /// Slots within `radius` of each slot (itself not included).
    neighbors: Vec<Vec<u32>>,
    /// Slots in use: `0..filled`.
    filled: usize,
    /// The slot of the next point, which is the oldest when full.
    next: usize,
}

struct Cluster {
    count: usize,
    /// Position in arrival order of its oldest point.
    age: usize,
    min: Vec<f64>,
    max: Vec<f64>,
    density: f64,
}

const UNSEEN: u32 = u32::MAX;

impl Hotspots {
    /// HOTSPOTS over `dims` numeric columns; `Err` names the parameter out
    /// of AWS's range.
    pub fn new(
        window_size: usize,
        scan_radius: f64,
        minimum_points: usize,
        dims: usize,
    ) -> Result<Hotspots, String> {
        if !(100..=1000).contains(&window_size) {
            return Err(format!(
                "windowSize must be between 100 and 1000 (inclusive), got {window_size}"
            ));
        }
        if !(scan_radius.is_finite() && scan_radius > 0.0) {
            return Err(format!(
                "scanRadius must be a finite number greater than 0, got {scan_radius}"
            ));
        }
        if !(2..=window_size).contains(&minimum_points) {
            return Err(format!(
                "minimumNumberOfPointsInAHotspot must be between 2 and windowSize ({window_size}) (inclusive), got {minimum_points}"
            ));
        }
        if dims == 0 {
            return Err("the input stream must have at least one numeric column".into());
        }
        Ok(Hotspots {
            window_size,
            radius: scan_radius,
            min_points: minimum_points,
            dims,
            points: vec![0.0; window_size * dims],
            neighbors: vec![Vec::new(); window_size],
            filled: 0,
            next: 0,
        })
    }

    /// Points in the window.
    pub fn len(&self) -> usize {
        self.filled
    }

    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// Adds a point and returns the HOTSPOTS_RESULT JSON text for the
    /// current window.
    pub fn push(&mut self, point: &[f64]) -> String {
        if point.len() == self.dims && point.iter().all(|v| v.is_finite()) {
            self.add(point);
        }
        self.result()
    }

    fn point(&self, slot: usize) -> &[f64] {
        let start = slot * self.dims;
        &self.points[start..start + self.dims]
    }

    fn add(&mut self, point: &[f64]) {
        let slot = self.next;
        if self.filled == self.window_size {
            // Forget the oldest point.
            let old = std::mem::take(&mut self.neighbors[slot]);
            for n in old {
                self.neighbors[n as usize].retain(|&s| s as usize != slot);
            }
        } else {
            self.filled += 1;
        }
        let start = slot * self.dims;
        self.points[start..start + self.dims].copy_from_slice(point);
        let r2 = self.radius * self.radius;
        for other in 0..self.filled {
            if other == slot {
                continue;
            }
            let d2: f64 = self
                .point(other)
                .iter()
                .zip(point)
                .map(|(a, b)| (a - b) * (a - b))
                .sum();
            if d2 <= r2 {
                self.neighbors[slot].push(other as u32);
                self.neighbors[other].push(slot as u32);
            }
        }
        self.next = (slot + 1) % self.window_size;
    }

    /// The window's hotspots as HOTSPOTS_RESULT.
    fn result(&self) -> String {
        let mut clusters = self.clusters();
        clusters.sort_by(|a, b| b.density.total_cmp(&a.density).then(a.age.cmp(&b.age)));
        let mut out = String::from("{\"hotspots\":[");
        for (i, c) in clusters.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"density\":");
            out.push_str(&number(c.density));
            out.push_str(",\"maxValues\":");
            out.push_str(&numbers(&c.max));
            out.push_str(",\"minValues\":");
            out.push_str(&numbers(&c.min));
            out.push('}');
        }
        out.push_str("]}");
        out
    }

    /// DBSCAN over the window, visiting points oldest first.
    fn clusters(&self) -> Vec<Cluster> {
        let n = self.filled;
        let oldest = if n == self.window_size { self.next } else { 0 };
        let core = |s: usize| self.neighbors[s].len() + 1 >= self.min_points;
        let mut label = vec![UNSEEN; n];
        let mut clusters: Vec<Cluster> = Vec::new();
        let mut stack = Vec::new();
        for age in 0..n {
            let start = (oldest + age) % self.window_size;
            if label[start] != UNSEEN || !core(start) {
                continue;
            }
            let id = clusters.len() as u32;
            let p = self.point(start);
            let mut c = Cluster {
                count: 0,
                age,
                min: p.to_vec(),
                max: p.to_vec(),
                density: 0.0,
            };
            label[start] = id;
            stack.push(start);
            while let Some(s) = stack.pop() {
                c.count += 1;
                for ((lo, hi), &v) in c.min.iter_mut().zip(&mut c.max).zip(self.point(s)) {
                    *lo = lo.min(v);
                    *hi = hi.max(v);
                }
                if !core(s) {
                    continue;
                }
                for &m in &self.neighbors[s] {
                    let m = m as usize;
                    if label[m] == UNSEEN {
                        label[m] = id;
                        stack.push(m);
                    }
                }
            }
            let volume: f64 = c
                .min
                .iter()
                .zip(&c.max)
                .map(|(lo, hi)| (hi - lo).max(self.radius))
                .product();
            let density = c.count as f64 / volume;
            c.density = if density.is_nan() {
                0.0
            } else {
                density.min(f64::MAX)
            };
            clusters.push(c);
        }
        clusters
    }
}

fn number(x: f64) -> String {
    serde_json::Value::from(x).to_string()
}

fn numbers(xs: &[f64]) -> String {
    let parts: Vec<String> = xs.iter().map(|&x| number(x)).collect();
    format!("[{}]", parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A point far from every other: x = 1000 + 10 k.
    fn lone(k: usize) -> [f64; 2] {
        [1000.0 + 10.0 * k as f64, 50.0]
    }

    #[test]
    fn parameters_out_of_range_are_named() {
        let err = |w, r, m, d| Hotspots::new(w, r, m, d).unwrap_err();
        assert_eq!(
            err(99, 0.2, 17, 2),
            "windowSize must be between 100 and 1000 (inclusive), got 99"
        );
        assert_eq!(
            err(1001, 0.2, 17, 2),
            "windowSize must be between 100 and 1000 (inclusive), got 1001"
        );
        assert_eq!(
            err(1000, 0.0, 17, 2),
            "scanRadius must be a finite number greater than 0, got 0"
        );
        assert_eq!(
            err(1000, -1.5, 17, 2),
            "scanRadius must be a finite number greater than 0, got -1.5"
        );
        assert_eq!(
            err(1000, f64::INFINITY, 17, 2),
            "scanRadius must be a finite number greater than 0, got inf"
        );
        assert_eq!(
            err(1000, 0.2, 1, 2),
            "minimumNumberOfPointsInAHotspot must be between 2 and windowSize (1000) (inclusive), got 1"
        );
        assert_eq!(
            err(100, 0.2, 101, 2),
            "minimumNumberOfPointsInAHotspot must be between 2 and windowSize (100) (inclusive), got 101"
        );
        assert_eq!(
            err(100, 0.2, 17, 0),
            "the input stream must have at least one numeric column"
        );
        assert!(Hotspots::new(100, 1e-300, 100, 30).is_ok());
    }

    #[test]
    fn a_line_of_close_points_becomes_a_hotspot_at_the_minimum() {
        // Cluster points 1/64 apart on y = 1, radius 1/16: each has the 4
        // nearest on either side as neighbours.
        let mut h = Hotspots::new(100, 0.0625, 5, 2).unwrap();
        assert_eq!(h.push(&lone(0)), "{\"hotspots\":[]}");
        for i in 0..4 {
            assert_eq!(h.push(&[1.0 + i as f64 / 64.0, 1.0]), "{\"hotspots\":[]}");
        }
        assert_eq!(
            h.push(&[1.0 + 4.0 / 64.0, 1.0]),
            "{\"hotspots\":[{\"density\":1280.0,\"maxValues\":[1.0625,1.0],\"minValues\":[1.0,1.0]}]}"
        );
        for i in 5..20 {
            h.push(&[1.0 + i as f64 / 64.0, 1.0]);
        }
        // 20 points in 19/64 by (at least) 1/16.
        let twenty = "{\"hotspots\":[{\"density\":1077.8947368421052,\"maxValues\":[1.296875,1.0],\"minValues\":[1.0,1.0]}]}";
        assert_eq!(h.push(&lone(1)), twenty);
        assert_eq!(h.len(), 22);
        // Rows that cannot be points leave the window as it was.
        assert_eq!(h.push(&[f64::NAN, 1.0]), twenty);
        assert_eq!(h.push(&[1.0, f64::NEG_INFINITY]), twenty);
        assert_eq!(h.push(&[1.0]), twenty);
        assert_eq!(h.len(), 22);
        // A border point within reach of a core point joins the hotspot
        // without being a core point itself: 21 points, the box's y side
        // now exactly the radius.
        let with_border = "{\"hotspots\":[{\"density\":1131.7894736842106,\"maxValues\":[1.296875,1.0],\"minValues\":[1.0,0.9375]}]}";
        assert_eq!(h.push(&[1.0, 0.9375]), with_border);
        // Slide the window past the cluster: the hotspot shrinks and then
        // goes.
        let mut last = String::new();
        let mut shrank = false;
        for k in 2..100 {
            last = h.push(&lone(k));
            shrank |= last.contains("\"maxValues\":[1.296875,1.0],\"minValues\":[1.03125,");
        }
        assert!(shrank);
        assert_eq!(last, "{\"hotspots\":[]}");
        assert_eq!(h.len(), 100);
    }

    #[test]
    fn equal_points_have_a_finite_density_and_hotspots_sort_densest_first() {
        let mut h = Hotspots::new(100, 0.5, 3, 1).unwrap();
        for _ in 0..3 {
            h.push(&[7.0]);
        }
        for i in 0..4 {
            h.push(&[-20.0 + i as f64 * 0.25]);
        }
        // 3 points over 0.5 (the radius) and 4 points over 0.75.
        assert_eq!(
            h.push(&[100.0]),
            "{\"hotspots\":[{\"density\":6.0,\"maxValues\":[7.0],\"minValues\":[7.0]},\
             {\"density\":5.333333333333333,\"maxValues\":[-19.25],\"minValues\":[-20.0]}]}"
        );
    }

    #[test]
    fn a_dense_cluster_stands_out_of_uniform_noise() {
        // AWS's example parameters: window 1000, radius 0.2, 17 points,
        // over noise on [0, 10]² with every fourth point in [2, 2.5] x [7, 7.5].
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut uniform = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut h = Hotspots::new(1000, 0.2, 17, 2).unwrap();
        let mut last = String::new();
        for i in 0..1200 {
            let p = if i % 4 == 0 {
                [2.0 + 0.5 * uniform(), 7.0 + 0.5 * uniform()]
            } else {
                [10.0 * uniform(), 10.0 * uniform()]
            };
            last = h.push(&p);
        }
        let v: serde_json::Value = serde_json::from_str(&last).unwrap();
        let spots = v["hotspots"].as_array().unwrap();
        assert_eq!(spots.len(), 1, "{last}");
        let spot = &spots[0];
        let min: Vec<f64> = serde_json::from_value(spot["minValues"].clone()).unwrap();
        let max: Vec<f64> = serde_json::from_value(spot["maxValues"].clone()).unwrap();
        // The cluster's box, give or take border points within the radius.
        assert!(min[0] >= 1.8 && min[0] <= 2.1, "{last}");
        assert!(min[1] >= 6.8 && min[1] <= 7.1, "{last}");
        assert!(max[0] >= 2.4 && max[0] <= 2.7, "{last}");
        assert!(max[1] >= 7.4 && max[1] <= 7.7, "{last}");
        // About 250 cluster points over about a quarter unit, against a
        // background of 7.5 points a unit.
        let density = spot["density"].as_f64().unwrap();
        assert!(density > 300.0 && density < 1300.0, "{last}");
    }

    #[test]
    fn huge_values_do_not_break_the_result() {
        let mut h = Hotspots::new(100, 1.0, 2, 2).unwrap();
        h.push(&[f64::MAX, -f64::MAX]);
        h.push(&[f64::MAX, -f64::MAX]);
        h.push(&[-f64::MAX, f64::MAX]);
        let last = h.push(&[-f64::MAX, f64::MAX]);
        let v: serde_json::Value = serde_json::from_str(&last).unwrap();
        assert_eq!(v["hotspots"].as_array().unwrap().len(), 2, "{last}");
        assert_eq!(v["hotspots"][0]["density"], 2.0);
    }
}
