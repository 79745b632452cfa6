//! Random Cut Forest: the anomaly scores of `RANDOM_CUT_FOREST` and
//! `RANDOM_CUT_FOREST_WITH_EXPLANATION`.
//!
//! The forest follows Guha, Mishra, Roy and Schrijvers, "Robust Random Cut
//! Forest Based Anomaly Detection On Streams" (ICML 2016).
//!
//! - A record's numeric columns, in column order, are a point. With
//!   `shingleSize` s > 1 the point scored is the concatenation of the last s
//!   records' points, oldest first; records before the first full shingle
//!   are not scored and not learned.
//! - Each of the `numberOfTrees` trees keeps its own sample of at most
//!   `subSampleSize` points, chosen by time-decayed reservoir sampling: the
//!   point arriving t-th gets weight e^(t / timeDecay) and the key
//!   ln(-ln u) - t / timeDecay for a uniform u in (0, 1); a tree keeps the
//!   points with the smallest keys, so when its sample is full a newcomer
//!   replaces the sampled point with the largest key if its own key is
//!   smaller. Older points are thus more likely to be dropped.
//! - A tree is a robust random cut tree over its sample. A cut of a node
//!   picks a dimension with probability proportional to the side length of
//!   the node's bounding box in it, and a value uniform on that side. A
//!   point is inserted as the paper's InsertPoint does: at each node a cut
//!   is drawn on the box grown to the point; if the cut separates the point
//!   from the box, a new node with that cut gets the point and the old
//!   subtree as children, otherwise the point follows the node's own cut. A
//!   point equal to a leaf's point raises that leaf's mass instead, so
//!   repeated values never deepen a tree. Deleting a point lowers its leaf's
//!   mass, and a leaf left without mass is replaced by its sibling (the
//!   paper's ForgetPoint).
//! - The score of a point x in a tree is its expected collusive
//!   displacement (CoDisp) in the tree x would make: for an insertion that
//!   separates x at node v, CoDisp is the largest |sibling(C)| / |C| over
//!   the subtrees C that contain x, which is the mass of v for C = {x} and
//!   |sibling(u)| / (|u| + 1) for each u on the path from the root to v
//!   (u other than the root). The probability that the insertion separates
//!   x at a node is the share of the grown box's side lengths lying outside
//!   the node's box, given it was not separated above; a point equal to a
//!   sampled one joins its leaf. The expectation is exact, so scoring draws
//!   no random numbers and does not change the forest.
//! - `ANOMALY_SCORE` is the mean CoDisp over the trees divided by
//!   log2(1 + `subSampleSize`), so that scores of different sample sizes
//!   compare; it is 0 for the first `subSampleSize` points while every
//!   tree's sample fills ("The algorithm returns zero for the first
//!   subSampleSize records while the machine learning model is trained").
//!   Each point is scored before the forest learns it.
//! - Attribution splits each separation's share of the score among the
//!   dimensions in proportion to how far x sticks out of the node's box in
//!   each, above (HIGH) or below (LOW); the share of joining an equal leaf is
//!   split evenly with no direction. The attributions of a column sum its
//!   shingle positions, and all columns' attributions sum to the score.
//!   `STRENGTH` is the absolute difference between a column's HIGH and LOW
//!   parts, and `DIRECTION` is `HIGH` when the HIGH part is the larger, else
//!   `LOW` (as in the learning phase).
//! - A point with a NaN or infinite coordinate, or with a number of
//!   coordinates other than the forest's, is not learned and scores 0.
//!
//! Parameters and their ranges are AWS's: `numberOfTrees` 1 to 1,000
//! (default 100), `subSampleSize` 10 to 1,000 (default 256) and less than
//! `timeDecay`, `timeDecay` 1 to 2,147,483,647 (default 100,000),
//! `shingleSize` 1 to 30 (default 1), and 1 to 30 numeric columns. Memory
//! is a tree of at most 2 × `subSampleSize` nodes per tree, each internal
//! node holding its bounding box; inserting, deleting and scoring a point
//! costs time proportional to the number of trees times the trees' depth
//! times the dimension. All walks are loops, so no input deepens a stack.
//! Random numbers come from a xoshiro256** generator seeded through
//! splitmix64, so a forest's scores are a function of its seed and input.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// AWS's default `numberOfTrees`.
pub const DEFAULT_TREES: usize = 100;
/// AWS's default `subSampleSize`.
pub const DEFAULT_SAMPLE_SIZE: usize = 256;
/// AWS's default `timeDecay`.
pub const DEFAULT_TIME_DECAY: f64 = 100_000.0;
/// AWS's default `shingleSize`.
pub const DEFAULT_SHINGLE_SIZE: usize = 1;
/// The most numeric columns the functions take.
pub const MAX_COLUMNS: usize = 30;

/// The forest's parameters, in the SQL functions' order, and the seed of
/// its random numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ForestParams {
    /// `numberOfTrees`.
    pub trees: usize,
    /// `subSampleSize`.
    pub sample_size: usize,
    /// `timeDecay`, in points.
    pub time_decay: f64,
    /// `shingleSize`.
    pub shingle_size: usize,
    pub seed: u64,
}

impl Default for ForestParams {
    fn default() -> Self {
        ForestParams {
            trees: DEFAULT_TREES,
            sample_size: DEFAULT_SAMPLE_SIZE,
            time_decay: DEFAULT_TIME_DECAY,
            shingle_size: DEFAULT_SHINGLE_SIZE,
            seed: 0,
        }
    }
}

/// One column's part of an anomaly score.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Attribution {
    /// `ATTRIBUTION_SCORE`: `high + low`.
    pub score: f64,
    /// The part due to the value being above what the forest has seen.
    pub high: f64,
    /// The part due to the value being below what the forest has seen.
    pub low: f64,
}

impl Attribution {
    /// `STRENGTH`: how much one direction outweighs the other.
    pub fn strength(&self) -> f64 {
        (self.high - self.low).abs()
    }

    /// `DIRECTION`: `HIGH` when the part above outweighs the part below,
    /// else `LOW`.
    pub fn direction(&self) -> &'static str {
        if self.high > self.low {
            "HIGH"
        } else {
            "LOW"
        }
    }
}

/// The `ANOMALY_EXPLANATION` text: an object with one member per column,
/// in column order, each `{"ATTRIBUTION_SCORE":"x"}` or, with
/// directionality, `{"DIRECTION":"HIGH","STRENGTH":"y","ATTRIBUTION_SCORE":"x"}`,
/// numbers as strings with four decimals as AWS prints them. Columns
/// without an attribution get zeros.
pub fn explanation_json(
    columns: &[String],
    attributions: &[Attribution],
    with_directionality: bool,
) -> String {
    let mut out = String::from("{");
    for (i, column) in columns.iter().enumerate() {
        let a = attributions.get(i).copied().unwrap_or_default();
        if i > 0 {
            out.push(',');
        }
        out.push_str(&json_string(column));
        out.push_str(":{");
        if with_directionality {
            out.push_str(&format!(
                "\"DIRECTION\":\"{}\",\"STRENGTH\":\"{}\",",
                a.direction(),
                decimals4(a.strength())
            ));
        }
        out.push_str(&format!(
            "\"ATTRIBUTION_SCORE\":\"{}\"}}",
            decimals4(a.score)
        ));
    }
    out.push('}');
    out
}

fn decimals4(x: f64) -> String {
    if x.is_finite() {
        format!("{:.4}", x)
    } else {
        "0.0000".into()
    }
}

fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// A Random Cut Forest over a stream of points.
#[derive(Debug, Clone)]
pub struct Forest {
    params: ForestParams,
    /// Coordinates of one record's point.
    dims: usize,
    /// Coordinates of a shingled point.
    dim: usize,
    lambda: f64,
    trees: Vec<Tree>,
    rng: Rng,
    /// The last `shingle_size` records' points, oldest first once full.
    shingle: Vec<f64>,
    shingled: usize,
    /// Points the forest has taken in.
    seen: u64,
    point: Vec<f64>,
    scratch: Scratch,
}

impl Forest {
    /// A forest for points of `dims` coordinates; `Err` names the
    /// parameter out of AWS's range.
    pub fn new(params: ForestParams, dims: usize) -> Result<Forest, String> {
        if !(1..=1000).contains(&params.trees) {
            return Err(format!(
                "numberOfTrees must be between 1 and 1000 (inclusive), got {}",
                params.trees
            ));
        }
        if !(10..=1000).contains(&params.sample_size) {
            return Err(format!(
                "subSampleSize must be between 10 and 1000 (inclusive), got {}",
                params.sample_size
            ));
        }
        if !(params.time_decay.is_finite() && (1.0..=2_147_483_647.0).contains(&params.time_decay))
        {
            return Err(format!(
                "timeDecay must be between 1 and 2147483647 (inclusive), got {}",
                params.time_decay
            ));
        }
        if params.sample_size as f64 >= params.time_decay {
            return Err(format!(
                "subSampleSize must be less than timeDecay, got subSampleSize {} and timeDecay {}",
                params.sample_size, params.time_decay
            ));
        }
        if !(1..=30).contains(&params.shingle_size) {
            return Err(format!(
                "shingleSize must be between 1 and 30 (inclusive), got {}",
                params.shingle_size
            ));
        }
        if !(1..=MAX_COLUMNS).contains(&dims) {
            return Err(format!(
                "the input stream must have between 1 and {MAX_COLUMNS} numeric columns, got {dims}"
            ));
        }
        let dim = dims * params.shingle_size;
        Ok(Forest {
            params,
            dims,
            dim,
            lambda: 1.0 / params.time_decay,
            trees: (0..params.trees).map(|_| Tree::new()).collect(),
            rng: Rng::new(params.seed),
            shingle: Vec::with_capacity(dim),
            shingled: 0,
            seen: 0,
            point: Vec::with_capacity(dim),
            scratch: Scratch::default(),
        })
    }

    pub fn params(&self) -> ForestParams {
        self.params
    }

    /// Coordinates of one record's point.
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// Points the forest has taken in (shingles, when shingled).
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// Scores the point (after shingling), then adds it to the forest.
    pub fn score_then_update(&mut self, point: &[f64]) -> f64 {
        self.step(point, false).0
    }

    /// The same with each column's attribution; the attributions sum to
    /// the score.
    pub fn explain_then_update(&mut self, point: &[f64]) -> (f64, Vec<Attribution>) {
        self.step(point, true)
    }

    fn step(&mut self, point: &[f64], explain: bool) -> (f64, Vec<Attribution>) {
        let mut attributions = if explain {
            vec![Attribution::default(); self.dims]
        } else {
            Vec::new()
        };
        if point.len() != self.dims || point.iter().any(|v| !v.is_finite()) {
            return (0.0, attributions);
        }
        // Shingle: drop the oldest record once full, append this one.
        if self.shingled == self.params.shingle_size {
            self.shingle.drain(..self.dims);
        } else {
            self.shingled += 1;
        }
        self.shingle.extend_from_slice(point);
        if self.shingled < self.params.shingle_size {
            return (0.0, attributions);
        }
        self.point.clear();
        self.point.extend_from_slice(&self.shingle);

        let mut score = 0.0;
        if self.seen >= self.params.sample_size as u64 {
            let trees = self.trees.len() as f64;
            let norm = 1.0 / ((1.0 + self.params.sample_size as f64).log2() * trees);
            let mut parts = if explain {
                vec![0.0; 2 * self.dim]
            } else {
                Vec::new()
            };
            for tree in &self.trees {
                let acc = if explain {
                    Some(parts.as_mut_slice())
                } else {
                    None
                };
                score += tree.codisp(&self.point, &mut self.scratch, acc);
            }
            score *= norm;
            for (d, pair) in parts.chunks_exact(2).enumerate() {
                if let Some(a) = attributions.get_mut(d % self.dims) {
                    a.high += pair[0] * norm;
                    a.low += pair[1] * norm;
                }
            }
            for a in &mut attributions {
                a.score = a.high + a.low;
            }
        }
        self.learn();
        (score, attributions)
    }

    /// Offers `self.point` to every tree's time-decayed reservoir.
    fn learn(&mut self) {
        let t = self.seen as f64;
        let cap = self.params.sample_size;
        for tree in &mut self.trees {
            let u = self.rng.open01();
            let key = (-u.ln()).ln() - self.lambda * t;
            if tree.reservoir.len() < cap {
                let leaf = tree.insert(&self.point, &mut self.rng, &mut self.scratch);
                tree.reservoir.push(Entry { key, leaf });
            } else if let Some(oldest) = tree.reservoir.peek().copied() {
                if key < oldest.key {
                    tree.reservoir.pop();
                    tree.delete(oldest.leaf, &mut self.scratch);
                    let leaf = tree.insert(&self.point, &mut self.rng, &mut self.scratch);
                    tree.reservoir.push(Entry { key, leaf });
                }
            }
        }
        self.seen = self.seen.saturating_add(1);
    }
}

/// xoshiro256** seeded by splitmix64.
#[derive(Debug, Clone)]
struct Rng {
    s: [u64; 4],
}

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng {
            s: [next(), next(), next(), next()],
        }
    }

    fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform on the open interval (0, 1).
    fn open01(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
    }
}

const NONE: u32 = u32::MAX;

/// A tree node. A leaf has no children and keeps its point in `lo`.
#[derive(Debug, Clone)]
struct Node {
    parent: u32,
    left: u32,
    right: u32,
    /// Sampled points under the node (a leaf's copies of its point).
    mass: u32,
    cut_dim: usize,
    /// Points with `x[cut_dim] <= cut` go left.
    cut: f64,
    lo: Vec<f64>,
    hi: Vec<f64>,
}

impl Node {
    fn is_leaf(&self) -> bool {
        self.left == NONE
    }

    fn bounds(&self) -> (&[f64], &[f64]) {
        if self.is_leaf() {
            (&self.lo, &self.lo)
        } else {
            (&self.lo, &self.hi)
        }
    }
}

/// A sampled point: its reservoir key and its leaf.
#[derive(Debug, Clone, Copy)]
struct Entry {
    key: f64,
    leaf: u32,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key
            .total_cmp(&other.key)
            .then(self.leaf.cmp(&other.leaf))
    }
}

/// Buffers reused between points.
#[derive(Debug, Clone, Default)]
struct Scratch {
    path: Vec<u32>,
    /// Per dimension: half-lengths above and below the box, and of the
    /// box grown to the point.
    above: Vec<f64>,
    below: Vec<f64>,
    grown: Vec<f64>,
    lo: Vec<f64>,
    hi: Vec<f64>,
}

/// Half of `b - a`, which cannot overflow for finite `a <= b`.
fn half(a: f64, b: f64) -> f64 {
    b * 0.5 - a * 0.5
}

/// Fills the scratch's per-dimension lengths for `x` against the box
/// `[lo, hi]`; returns (total outside, total of the grown box), scaled
/// alike so that neither overflows.
fn outside(lo: &[f64], hi: &[f64], x: &[f64], s: &mut Scratch) -> (f64, f64) {
    s.above.clear();
    s.below.clear();
    s.grown.clear();
    let mut out = 0.0;
    let mut total = 0.0;
    for ((&l, &h), &v) in lo.iter().zip(hi).zip(x) {
        let above = if v > h { half(h, v) } else { 0.0 };
        let below = if v < l { half(v, l) } else { 0.0 };
        let grown = half(l.min(v), h.max(v));
        out += above + below;
        total += grown;
        s.above.push(above);
        s.below.push(below);
        s.grown.push(grown);
    }
    if !total.is_finite() || !out.is_finite() {
        let k = f64::powi(2.0, -64);
        out = 0.0;
        total = 0.0;
        for ((a, b), g) in s.above.iter_mut().zip(&mut s.below).zip(&mut s.grown) {
            *a *= k;
            *b *= k;
            *g *= k;
            out += *a + *b;
            total += *g;
        }
    }
    (out, total)
}

#[derive(Debug, Clone)]
struct Tree {
    nodes: Vec<Node>,
    free: Vec<u32>,
    root: u32,
    /// Sampled points; the top is the next to be replaced.
    reservoir: BinaryHeap<Entry>,
}

impl Tree {
    fn new() -> Tree {
        Tree {
            nodes: Vec::new(),
            free: Vec::new(),
            root: NONE,
            reservoir: BinaryHeap::new(),
        }
    }

    fn node(&self, id: u32) -> &Node {
        &self.nodes[id as usize]
    }

    fn node_mut(&mut self, id: u32) -> &mut Node {
        &mut self.nodes[id as usize]
    }

    fn alloc(&mut self, node: Node) -> u32 {
        match self.free.pop() {
            Some(id) => {
                *self.node_mut(id) = node;
                id
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        }
    }

    fn leaf(point: &[f64], parent: u32) -> Node {
        Node {
            parent,
            left: NONE,
            right: NONE,
            mass: 1,
            cut_dim: 0,
            cut: 0.0,
            lo: point.to_vec(),
            hi: Vec::new(),
        }
    }

    /// Points `parent`'s link to `old` at `new` (or the root).
    fn relink(&mut self, parent: u32, old: u32, new: u32) {
        if parent == NONE {
            self.root = new;
        } else {
            let p = self.node_mut(parent);
            if p.left == old {
                p.left = new;
            } else {
                p.right = new;
            }
        }
        self.node_mut(new).parent = parent;
    }

    /// Inserts `x`; returns its leaf.
    fn insert(&mut self, x: &[f64], rng: &mut Rng, s: &mut Scratch) -> u32 {
        if self.root == NONE {
            let id = self.alloc(Tree::leaf(x, NONE));
            self.root = id;
            return id;
        }
        let mut v = self.root;
        loop {
            let node = self.node(v);
            if node.is_leaf() && node.lo.as_slice() == x {
                self.node_mut(v).mass += 1;
                return v;
            }
            let (lo, hi) = node.bounds();
            let (_, total) = outside(lo, hi, x, s);
            let (d, cut) = choose_cut(lo, hi, x, total, rng, s);
            let (l, h) = (lo[d], hi[d]);
            let xd = x[d];
            let separates = (xd < l && cut < l) || (xd > h && cut >= h);
            if separates {
                let parent = node.parent;
                let mass = node.mass + 1;
                let mut glo = lo.to_vec();
                let mut ghi = hi.to_vec();
                for ((a, b), &p) in glo.iter_mut().zip(&mut ghi).zip(x) {
                    *a = a.min(p);
                    *b = b.max(p);
                }
                let w = self.alloc(Node {
                    parent,
                    left: NONE,
                    right: NONE,
                    mass,
                    cut_dim: d,
                    cut,
                    lo: glo,
                    hi: ghi,
                });
                let leaf = self.alloc(Tree::leaf(x, w));
                let (left, right) = if xd <= cut { (leaf, v) } else { (v, leaf) };
                {
                    let wn = self.node_mut(w);
                    wn.left = left;
                    wn.right = right;
                }
                self.relink(parent, v, w);
                self.node_mut(v).parent = w;
                return leaf;
            }
            // Not separated: x goes under v, by v's own cut.
            let n = self.node_mut(v);
            n.mass += 1;
            for ((a, b), &p) in n.lo.iter_mut().zip(&mut n.hi).zip(x) {
                *a = a.min(p);
                *b = b.max(p);
            }
            v = if x[n.cut_dim] <= n.cut {
                n.left
            } else {
                n.right
            };
        }
    }

    /// Removes one copy of the point at `leaf`.
    fn delete(&mut self, leaf: u32, s: &mut Scratch) {
        let mut a = leaf;
        while a != NONE {
            let n = self.node_mut(a);
            n.mass = n.mass.saturating_sub(1);
            a = n.parent;
        }
        if self.node(leaf).mass > 0 {
            return;
        }
        let parent = self.node(leaf).parent;
        self.free.push(leaf);
        if parent == NONE {
            self.root = NONE;
            return;
        }
        let p = self.node(parent);
        let sibling = if p.left == leaf { p.right } else { p.left };
        let grand = p.parent;
        self.relink(grand, parent, sibling);
        self.free.push(parent);
        // Shrink the boxes above; stop where a box is unchanged.
        let mut a = grand;
        while a != NONE {
            let n = self.node(a);
            let (ll, lh) = self.node(n.left).bounds();
            let (rl, rh) = self.node(n.right).bounds();
            s.lo.clear();
            s.hi.clear();
            s.lo.extend(ll.iter().zip(rl).map(|(x, y)| x.min(*y)));
            s.hi.extend(lh.iter().zip(rh).map(|(x, y)| x.max(*y)));
            if s.lo == n.lo && s.hi == n.hi {
                break;
            }
            let n = self.node_mut(a);
            n.lo.clone_from(&s.lo);
            n.hi.clone_from(&s.hi);
            a = n.parent;
        }
    }

    /// The expected CoDisp of `x` in this tree with `x` inserted. With
    /// `parts`, adds each dimension's (above, below) shares at `2d`,
    /// `2d + 1`.
    fn codisp(&self, x: &[f64], s: &mut Scratch, mut parts: Option<&mut [f64]>) -> f64 {
        if self.root == NONE {
            return 0.0;
        }
        let mut path = std::mem::take(&mut s.path);
        path.clear();
        let mut v = self.root;
        loop {
            path.push(v);
            let n = self.node(v);
            if n.is_leaf() {
                break;
            }
            v = if x[n.cut_dim] <= n.cut {
                n.left
            } else {
                n.right
            };
        }
        let mut reach = 1.0;
        let mut ancestors: f64 = 0.0;
        let mut expected = 0.0;
        for &id in &path {
            let n = self.node(id);
            let mass = f64::from(n.mass);
            if n.parent != NONE {
                let p = self.node(n.parent);
                let sibling = if p.left == id { p.right } else { p.left };
                ancestors = ancestors.max(f64::from(self.node(sibling).mass) / (mass + 1.0));
            }
            let (lo, hi) = n.bounds();
            let (out, total) = outside(lo, hi, x, s);
            if out <= 0.0 || total <= 0.0 {
                continue;
            }
            let separate = if n.is_leaf() {
                1.0
            } else {
                (out / total).min(1.0)
            };
            let codisp = mass.max(ancestors);
            let weight = reach * separate * codisp;
            expected += weight;
            if let Some(parts) = parts.as_deref_mut() {
                let k = weight / out;
                for (d, pair) in parts.chunks_exact_mut(2).enumerate() {
                    pair[0] += k * s.above[d];
                    pair[1] += k * s.below[d];
                }
            }
            reach *= 1.0 - separate;
        }
        if reach > 0.0 {
            // x equals the leaf's point and joins it.
            let weight = reach * ancestors;
            expected += weight;
            if let Some(parts) = parts {
                let each = weight / parts.len() as f64;
                for p in parts.iter_mut() {
                    *p += each;
                }
            }
        }
        s.path = path;
        expected
    }
}

/// A random cut of the box `[lo, hi]` grown to `x`: a dimension with
/// probability proportional to its side, a value uniform on the side.
fn choose_cut(
    lo: &[f64],
    hi: &[f64],
    x: &[f64],
    total: f64,
    rng: &mut Rng,
    s: &Scratch,
) -> (usize, f64) {
    let r = rng.open01() * total;
    let mut acc = 0.0;
    let mut pick = None;
    for (d, &g) in s.grown.iter().enumerate() {
        if g <= 0.0 {
            continue;
        }
        if r < acc + g {
            pick = Some((d, ((r - acc) / g).clamp(0.0, 1.0)));
            break;
        }
        acc += g;
        pick = Some((d, 1.0));
    }
    let (d, frac) = match pick {
        Some(p) => p,
        // Sides too small to measure: cut the first dimension that
        // differs at its low end.
        None => match (0..x.len()).find(|&d| lo[d].min(x[d]) < hi[d].max(x[d])) {
            Some(d) => (d, 0.0),
            None => (0, 0.0),
        },
    };
    let low = lo[d].min(x[d]);
    let high = hi[d].max(x[d]);
    let step = frac * half(low, high);
    let cut = low + step + step;
    // A cut must leave a point on each side.
    if cut < high {
        (d, cut)
    } else {
        (d, low)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(trees: usize, sample_size: usize, shingle_size: usize, seed: u64) -> ForestParams {
        ForestParams {
            trees,
            sample_size,
            time_decay: DEFAULT_TIME_DECAY,
            shingle_size,
            seed,
        }
    }

    /// Bell-shaped values in (-2, 2) from the test's own generator.
    fn noise(rng: &mut Rng) -> f64 {
        (0..4).map(|_| rng.open01()).sum::<f64>() - 2.0
    }

    fn median(v: &mut [f64]) -> f64 {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }

    /// Every tree's boxes are the union of its children's, masses add up,
    /// and the reservoir accounts for every sampled copy.
    fn check_trees(f: &Forest) {
        for t in &f.trees {
            let mut live = 0;
            let mut leaf_mass = 0;
            let mut stack = vec![t.root];
            while let Some(id) = stack.pop() {
                if id == NONE {
                    continue;
                }
                live += 1;
                let n = t.node(id);
                if n.is_leaf() {
                    leaf_mass += n.mass;
                    assert!(n.mass > 0);
                    continue;
                }
                let (l, r) = (t.node(n.left), t.node(n.right));
                assert_eq!(l.parent, id);
                assert_eq!(r.parent, id);
                assert_eq!(n.mass, l.mass + r.mass);
                let (ll, lh) = l.bounds();
                let (rl, rh) = r.bounds();
                for d in 0..n.lo.len() {
                    assert_eq!(n.lo[d], ll[d].min(rl[d]));
                    assert_eq!(n.hi[d], lh[d].max(rh[d]));
                    if d == n.cut_dim {
                        assert!(lh[d] <= n.cut && rl[d] > n.cut);
                    }
                }
                stack.push(n.left);
                stack.push(n.right);
            }
            assert_eq!(leaf_mass as usize, t.reservoir.len());
            assert!(t.reservoir.len() <= f.params.sample_size);
            assert!(live < 2 * f.params.sample_size);
            assert!(t.nodes.len() < 2 * f.params.sample_size);
        }
    }

    #[test]
    fn parameters_out_of_range_are_named() {
        let ok = ForestParams::default();
        assert_eq!(
            ok,
            ForestParams {
                trees: 100,
                sample_size: 256,
                time_decay: 100_000.0,
                shingle_size: 1,
                seed: 0
            }
        );
        let err = |p: ForestParams, dims: usize| Forest::new(p, dims).unwrap_err();
        assert_eq!(
            err(ForestParams { trees: 0, ..ok }, 1),
            "numberOfTrees must be between 1 and 1000 (inclusive), got 0"
        );
        assert_eq!(
            err(ForestParams { trees: 1001, ..ok }, 1),
            "numberOfTrees must be between 1 and 1000 (inclusive), got 1001"
        );
        assert_eq!(
            err(
                ForestParams {
                    sample_size: 9,
                    ..ok
                },
                1
            ),
            "subSampleSize must be between 10 and 1000 (inclusive), got 9"
        );
        assert_eq!(
            err(
                ForestParams {
                    sample_size: 1001,
                    ..ok
                },
                1
            ),
            "subSampleSize must be between 10 and 1000 (inclusive), got 1001"
        );
        assert_eq!(
            err(
                ForestParams {
                    time_decay: 0.0,
                    ..ok
                },
                1
            ),
            "timeDecay must be between 1 and 2147483647 (inclusive), got 0"
        );
        assert_eq!(
            err(
                ForestParams {
                    time_decay: 2_147_483_648.0,
                    ..ok
                },
                1
            ),
            "timeDecay must be between 1 and 2147483647 (inclusive), got 2147483648"
        );
        assert_eq!(
            err(
                ForestParams {
                    time_decay: f64::NAN,
                    ..ok
                },
                1
            ),
            "timeDecay must be between 1 and 2147483647 (inclusive), got NaN"
        );
        assert_eq!(
            err(
                ForestParams {
                    time_decay: 256.0,
                    ..ok
                },
                1
            ),
            "subSampleSize must be less than timeDecay, got subSampleSize 256 and timeDecay 256"
        );
        assert_eq!(
            err(
                ForestParams {
                    shingle_size: 0,
                    ..ok
                },
                1
            ),
            "shingleSize must be between 1 and 30 (inclusive), got 0"
        );
        assert_eq!(
            err(
                ForestParams {
                    shingle_size: 31,
                    ..ok
                },
                1
            ),
            "shingleSize must be between 1 and 30 (inclusive), got 31"
        );
        assert_eq!(
            err(ok, 0),
            "the input stream must have between 1 and 30 numeric columns, got 0"
        );
        assert_eq!(
            err(ok, 31),
            "the input stream must have between 1 and 30 numeric columns, got 31"
        );
        let edge = ForestParams {
            trees: 1000,
            sample_size: 10,
            time_decay: 11.0,
            shingle_size: 30,
            seed: 1,
        };
        assert!(Forest::new(edge, 30).is_ok());
    }

    #[test]
    fn first_sample_size_points_score_zero() {
        let mut f = Forest::new(params(20, 32, 1, 3), 1).unwrap();
        for i in 0..32 {
            assert_eq!(f.score_then_update(&[f64::from(i % 7)]), 0.0, "point {i}");
        }
        assert_eq!(f.seen(), 32);
        assert!(f.score_then_update(&[3.5]) > 0.0);
        check_trees(&f);
    }

    #[test]
    fn repeated_points_share_a_leaf_and_score_zero() {
        let mut f = Forest::new(params(10, 16, 1, 5), 2).unwrap();
        for _ in 0..500 {
            let (score, attr) = f.explain_then_update(&[4.0, -1.0]);
            assert_eq!(score, 0.0);
            assert_eq!(attr, vec![Attribution::default(); 2]);
        }
        for t in &f.trees {
            assert_eq!(t.nodes.len(), 1);
            assert_eq!(t.node(t.root).mass, 16);
        }
        // A new point splits off a leaf of mass 16 in every tree: CoDisp
        // 16, split 1 : 3 between the columns by how far each sticks out.
        let (score, attr) = f.explain_then_update(&[5.0, -4.0]);
        let expected = 16.0 / 17f64.log2();
        assert!((score - expected).abs() < 1e-12, "{score}");
        assert!((attr[0].high - expected * 0.25).abs() < 1e-12);
        assert_eq!(attr[0].low, 0.0);
        assert_eq!(attr[1].high, 0.0);
        assert!((attr[1].low - expected * 0.75).abs() < 1e-12);
        assert_eq!(attr[0].direction(), "HIGH");
        assert_eq!(attr[1].direction(), "LOW");
        assert!((attr[1].strength() - expected * 0.75).abs() < 1e-12);
        check_trees(&f);
    }

    #[test]
    fn an_outlier_scores_well_above_a_steady_stream() {
        let mut f = Forest::new(params(100, 256, 1, 7), 2).unwrap();
        let mut rng = Rng::new(99);
        let mut normal = Vec::new();
        for i in 0..1500 {
            let s = f.score_then_update(&[10.0 + noise(&mut rng), 5.0 + noise(&mut rng)]);
            if i >= 1000 {
                normal.push(s);
            }
        }
        let m = median(&mut normal);
        assert!(m > 0.0 && m < 1.5, "median {m}");
        let outlier = f.score_then_update(&[10.0, 14.0]);
        assert!(outlier > 10.0 * m, "outlier {outlier}, median {m}");
        let edge = f.score_then_update(&[12.5, 5.0]);
        assert!(edge > 3.0 * m && edge < outlier, "edge {edge}, median {m}");
        check_trees(&f);
    }

    #[test]
    fn the_shifted_column_gets_the_attribution_and_direction() {
        let mut f = Forest::new(params(100, 128, 1, 11), 3).unwrap();
        let mut rng = Rng::new(5);
        for _ in 0..1000 {
            let p = [
                noise(&mut rng),
                100.0 + noise(&mut rng),
                -50.0 + noise(&mut rng),
            ];
            f.score_then_update(&p);
        }
        for (point, column, direction) in [
            ([0.0, 112.0, -50.0], 1, "HIGH"),
            ([0.0, 100.0, -61.0], 2, "LOW"),
            ([-9.0, 100.0, -50.0], 0, "LOW"),
        ] {
            let (score, attr) = f.explain_then_update(&point);
            let sum: f64 = attr.iter().map(|a| a.score).sum();
            assert!((sum - score).abs() <= 1e-9 * score, "{sum} vs {score}");
            for (c, a) in attr.iter().enumerate() {
                if c != column {
                    assert!(a.score * 3.0 < attr[column].score, "{attr:?}");
                }
            }
            assert_eq!(attr[column].direction(), direction, "{attr:?}");
            assert!(attr[column].strength() > 0.5 * attr[column].score);
        }
    }

    #[test]
    fn same_seed_same_scores_bit_for_bit() {
        let run = |seed: u64| {
            let mut f = Forest::new(params(30, 64, 2, seed), 2).unwrap();
            let mut rng = Rng::new(42);
            (0..400)
                .map(|_| {
                    let (s, a) = f.explain_then_update(&[noise(&mut rng), noise(&mut rng) * 3.0]);
                    (
                        s.to_bits(),
                        a.iter().map(|x| x.high.to_bits()).collect::<Vec<_>>(),
                    )
                })
                .collect::<Vec<_>>()
        };
        let a = run(1);
        assert_eq!(a, run(1));
        assert_ne!(a, run(2));
        assert!(a[100..].iter().all(|(s, _)| f64::from_bits(*s) > 0.0));
    }

    #[test]
    fn shingles_score_shapes_not_values() {
        // 0, 1, 0, 1, ...: every value is common, but two 1s in a row are
        // a shape the stream has never had.
        let mut plain = Forest::new(params(50, 64, 1, 1), 1).unwrap();
        let mut shingled = Forest::new(params(50, 64, 2, 1), 1).unwrap();
        assert_eq!(shingled.score_then_update(&[0.0]), 0.0);
        assert_eq!(shingled.seen(), 0, "the first record only starts a shingle");
        let mut last = (0.0, 0.0);
        for i in 1..400 {
            let v = f64::from(i % 2);
            last = (
                plain.score_then_update(&[v]),
                shingled.score_then_update(&[v]),
            );
        }
        assert_eq!(shingled.seen(), 399);
        // A value or shape joining a leaf of c copies whose sibling holds
        // about as many displaces at most about c / (c + 1).
        assert!(last.0 < 0.25 && last.1 < 0.25, "{last:?}");
        // The stream ended on 1; repeat it.
        let (score, attr) = shingled.explain_then_update(&[1.0]);
        assert!(plain.score_then_update(&[1.0]) < 0.25);
        assert!(score > 1.0, "{score}");
        assert_eq!(attr.len(), 1);
        assert!((attr[0].score - score).abs() <= 1e-12 * score);
        // Shingle (1, 1) against the sampled (1, 0) and (0, 1): HIGH.
        assert_eq!(attr[0].direction(), "HIGH");
    }

    #[test]
    fn invalid_points_score_zero_and_are_not_learned() {
        let mut f = Forest::new(params(5, 10, 1, 1), 2).unwrap();
        for i in 0..20 {
            f.score_then_update(&[f64::from(i), 1.0]);
        }
        for bad in [
            vec![f64::NAN, 1.0],
            vec![1.0, f64::INFINITY],
            vec![f64::NEG_INFINITY, 1.0],
            vec![1.0],
            vec![1.0, 2.0, 3.0],
            vec![],
        ] {
            assert_eq!(f.score_then_update(&bad), 0.0);
            let (s, a) = f.explain_then_update(&bad);
            assert_eq!(s, 0.0);
            assert_eq!(a, vec![Attribution::default(); 2]);
        }
        assert_eq!(f.seen(), 20);
        check_trees(&f);
    }

    #[test]
    fn extreme_values_keep_scores_finite() {
        let mut f = Forest::new(params(10, 10, 2, 9), 3).unwrap();
        let mut rng = Rng::new(3);
        for i in 0..300 {
            let big = if i % 3 == 0 { f64::MAX } else { -f64::MAX };
            let p = [
                big,
                noise(&mut rng) * 1e-300,
                f64::MIN_POSITIVE * f64::from(i % 5),
            ];
            let (s, a) = f.explain_then_update(&p);
            assert!(s.is_finite() && s >= 0.0, "{s}");
            assert!(a.iter().all(|x| x.score.is_finite()));
        }
        check_trees(&f);
    }

    #[test]
    fn time_decay_forgets_old_levels() {
        // Share of each forest's samples from after a level shift.
        let share_new = |time_decay: f64| {
            let p = ForestParams {
                trees: 20,
                sample_size: 50,
                time_decay,
                shingle_size: 1,
                seed: 4,
            };
            let mut f = Forest::new(p, 1).unwrap();
            let mut rng = Rng::new(8);
            for _ in 0..2000 {
                f.score_then_update(&[noise(&mut rng)]);
            }
            for _ in 0..300 {
                f.score_then_update(&[100.0 + noise(&mut rng)]);
            }
            check_trees(&f);
            let (mut new, mut all) = (0, 0);
            for t in &f.trees {
                for e in t.reservoir.iter() {
                    all += 1;
                    if t.node(e.leaf).lo[0] > 50.0 {
                        new += 1;
                    }
                }
            }
            f64::from(new) / f64::from(all)
        };
        let fast = share_new(100.0);
        let slow = share_new(100_000.0);
        assert!(fast > 0.95, "{fast}");
        assert!(slow < 0.5, "{slow}");
    }

    #[test]
    fn explanation_text_is_awss_shape() {
        let columns = vec!["Systolic".to_string(), "Dia\"stolic".to_string()];
        let attr = [
            Attribution {
                score: 1.74474,
                high: 1.3,
                low: 0.44474,
            },
            Attribution {
                score: 0.3323,
                high: 0.1,
                low: 0.2323,
            },
        ];
        assert_eq!(
            explanation_json(&columns, &attr, true),
            "{\"Systolic\":{\"DIRECTION\":\"HIGH\",\"STRENGTH\":\"0.8553\",\"ATTRIBUTION_SCORE\":\"1.7447\"},\
             \"Dia\\\"stolic\":{\"DIRECTION\":\"LOW\",\"STRENGTH\":\"0.1323\",\"ATTRIBUTION_SCORE\":\"0.3323\"}}"
        );
        assert_eq!(
            explanation_json(&columns, &attr, false),
            "{\"Systolic\":{\"ATTRIBUTION_SCORE\":\"1.7447\"},\"Dia\\\"stolic\":{\"ATTRIBUTION_SCORE\":\"0.3323\"}}"
        );
        assert_eq!(
            explanation_json(&columns[..1], &[], true),
            "{\"Systolic\":{\"DIRECTION\":\"LOW\",\"STRENGTH\":\"0.0000\",\"ATTRIBUTION_SCORE\":\"0.0000\"}}"
        );
        assert_eq!(explanation_json(&[], &[], true), "{}");
    }
}
