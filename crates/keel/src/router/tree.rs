//! The route tree: one node per distinct pattern prefix, keyed by path
//! segment. Built (and checked) once from the patterns, then flattened into
//! arrays that a lookup walks without allocating.
//!
//! A node has up to three kinds of children, tried in this order:
//!
//! 1. static edges, one per segment text: a short scan, or a hash table for
//!    a node with many (both compare an 8-byte key first, see [`split`]);
//! 2. one parameter child (`:name`), for any non-empty segment;
//! 3. one catch-all (`*name`), a leaf that takes the rest of the path.
//!
//! The walk is a depth-first search in that order that backtracks when a
//! branch cannot reach an endpoint. Every tree node sits at a fixed depth and
//! the path's segment at that depth is fixed too, so a lookup visits each
//! node at most once: its worst case is the size of the tree, never
//! exponential in the path.

use super::pattern::{self, Segment};
use super::{RouteError, MAX_PARAMS};
use std::collections::BTreeMap;

/// Parameters captured during a walk, as (name from the tree, raw value from
/// the path), in path order. A fixed array: capturing never allocates.
pub(super) struct Captures<'r, 'p> {
    pub(super) slots: [(&'r str, &'p str); MAX_PARAMS],
    pub(super) len: usize,
}

impl<'r, 'p> Captures<'r, 'p> {
    pub(super) fn new() -> Self {
        Captures {
            slots: [("", ""); MAX_PARAMS],
            len: 0,
        }
    }

    #[inline]
    fn push(&mut self, name: &'r str, value: &'p str) {
        // Never out of bounds: a walk only goes down nodes that some route
        // created, and `pattern::parse` kept each route to MAX_PARAMS.
        self.slots[self.len] = (name, value);
        self.len += 1;
    }
}

/// What one path answers to: its methods and the `Allow` value built for them.
pub(super) struct Endpoint {
    /// The pattern as registered (with any nest prefix).
    pub(super) pattern: Box<str>,
    /// (method, handler index), sorted by method.
    methods: Box<[(Box<str>, u32)]>,
    /// The methods this path accepts, `HEAD` and `OPTIONS` included, for the
    /// `Allow` header of a 405 or an automatic OPTIONS answer.
    pub(super) allow: Box<str>,
    /// The pattern's parameter names in path order: the names a walk to
    /// this endpoint captures.
    pub(super) params: Box<[Box<str>]>,
}

impl Endpoint {
    /// The handler registered for `method`; for `HEAD` without a route of its
    /// own, the `GET` one.
    #[inline]
    pub(super) fn handler(&self, method: &str) -> Option<u32> {
        let find = |m: &str| {
            self.methods
                .iter()
                .find(|(name, _)| &**name == m)
                .map(|&(_, h)| h)
        };
        find(method).or_else(|| if method == "HEAD" { find("GET") } else { None })
    }
}

/// A static edge. Its key, the first 8 bytes of its segment ([`prefix`]),
/// lives apart in [`Tree::keys`], so that a search runs over a dense array of
/// integers and looks at the text at most once.
struct Edge {
    len: u32,
    child: u32,
    text: Box<str>,
}

impl Edge {
    /// Whether `segment`, whose key equals this edge's, is this edge's text.
    #[inline]
    fn matches(&self, segment: &str) -> bool {
        let (text, segment) = (self.text.as_bytes(), segment.as_bytes());
        let len = segment.len();
        // Same length and the same first min(len, 8) bytes (the key): only
        // the bytes after the 8th remain to compare.
        let last8 = |s: &[u8]| s.last_chunk::<8>().map(|&b| u64::from_le_bytes(b));
        self.len as usize == len
            && match len {
                0..=8 => true,
                9..=16 => last8(text) == last8(segment),
                _ => text[8..] == segment[8..],
            }
    }
}

/// The first 8 bytes of `segment` as a little-endian number, zero-padded:
/// the key [`split`] computes for a path segment.
fn prefix(segment: &[u8]) -> u64 {
    segment
        .iter()
        .take(8)
        .enumerate()
        .fold(0, |key, (i, &b)| key | u64::from(b) << (8 * i))
}

/// The length of the first segment of `tail` (up to its first `/`, or all of
/// it) and that segment's [`prefix`]. Eight bytes at a time where it can.
#[inline]
fn split(tail: &[u8]) -> (usize, u64) {
    const SLASHES: u64 = u64::from_le_bytes([b'/'; 8]);
    const LOW: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    let Some(&first) = tail.first_chunk::<8>() else {
        let len = tail.iter().position(|&b| b == b'/').unwrap_or(tail.len());
        return (len, prefix(&tail[..len]));
    };
    let word = u64::from_le_bytes(first);
    // A zero byte of `x` is a '/'. The lowest flagged byte of `found` is the
    // first zero byte (a borrow can flag bytes above it only), and the
    // lowest byte is the first in memory.
    let x = word ^ SLASHES;
    let found = x.wrapping_sub(LOW) & !x & HIGH;
    if found != 0 {
        let len = (found.trailing_zeros() / 8) as usize;
        // len < 8, so the shift is in range
        return (len, word & ((1u64 << (8 * len)) - 1));
    }
    let rest = tail[8..].iter().position(|&b| b == b'/');
    (8 + rest.unwrap_or(tail.len() - 8), word)
}

struct Node {
    /// This node's static edges: `edges[start..end]` and `keys[start..end]`.
    edges: (u32, u32),
    /// For more than [`LINEAR_EDGES`] edges, a hash table of them:
    /// `slots[start..start + (1 << bits)]`, as (start, bits).
    table: (u32, u32),
    param: Option<(Box<str>, u32)>,
    /// (name, endpoint index).
    catch_all: Option<(Box<str>, u32)>,
    endpoint: Option<u32>,
}

/// The route tree, flattened. Node 0 is the root: the position before the
/// path's first segment.
pub(super) struct Tree {
    nodes: Box<[Node]>,
    /// Every edge's key, in `edges` order.
    keys: Box<[u64]>,
    edges: Box<[Edge]>,
    /// The nodes' hash tables: open addressing, linear probing, at most half
    /// full; a slot holds an index into `edges` plus one, or 0 when empty.
    slots: Box<[u32]>,
    pub(super) endpoints: Box<[Endpoint]>,
}

/// Edge counts up to this are scanned; larger ones are looked up in a hash
/// table (a static segment with forty siblings, like `/repos/:o/:r/*`, costs
/// one multiplication and usually one probe).
const LINEAR_EDGES: usize = 4;

/// Where a segment with this key and length starts probing in a table of
/// `1 << bits` slots (Fibonacci hashing: the top bits of a multiplication).
/// The length tells apart siblings that share their first 8 bytes.
#[inline]
fn home(key: u64, len: usize, bits: u32) -> usize {
    let mixed = key ^ (len as u64).rotate_right(8);
    (mixed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
}

impl Tree {
    /// The endpoint whose pattern matches `path`, with its captures in `caps`.
    /// Allocates nothing.
    #[inline]
    pub(super) fn find<'r, 'p>(
        &'r self,
        path: &'p str,
        caps: &mut Captures<'r, 'p>,
    ) -> Option<(u32, &'r Endpoint)> {
        let tail = path.strip_prefix('/')?;
        let endpoint = self.walk(0, Some(tail), caps)?;
        Some((endpoint, &self.endpoints[endpoint as usize]))
    }

    /// Matches what is left of the path at `node`. `tail` is `None` once the
    /// path is used up, or the text after the last `/` consumed. Returns the
    /// endpoint index; on `None`, `caps` is as it was.
    ///
    /// Recurses only where a node offers a second choice to come back to
    /// (a static child and a parameter or catch-all); a single way on is
    /// followed in the loop.
    fn walk<'r, 'p>(
        &'r self,
        mut node: u32,
        mut tail: Option<&'p str>,
        caps: &mut Captures<'r, 'p>,
    ) -> Option<u32> {
        let mark = caps.len;
        let found = loop {
            let here = &self.nodes[node as usize];
            let Some(rest) = tail else {
                break here.endpoint;
            };
            let (len, key) = split(rest.as_bytes());
            // `len` is at a '/' or the end: a char boundary
            let (segment, next) = (&rest[..len], rest.get(len + 1..));
            let param = here.param.as_ref().filter(|_| !segment.is_empty());
            let alternative = param.is_some() || here.catch_all.is_some();
            if let Some(child) = self.static_child(here, segment, key) {
                if !alternative {
                    (node, tail) = (child, next);
                    continue;
                }
                if let found @ Some(_) = self.walk(child, next, caps) {
                    return found;
                }
            }
            if let Some((name, child)) = param {
                caps.push(name, segment);
                if here.catch_all.is_none() {
                    (node, tail) = (*child, next);
                    continue;
                }
                if let found @ Some(_) = self.walk(*child, next, caps) {
                    return found;
                }
                caps.len -= 1;
            }
            break here.catch_all.as_ref().map(|(name, endpoint)| {
                caps.push(name, rest);
                *endpoint
            });
        };
        if found.is_none() {
            caps.len = mark;
        }
        found
    }

    #[inline]
    fn static_child(&self, node: &Node, segment: &str, key: u64) -> Option<u32> {
        let (start, end) = (node.edges.0 as usize, node.edges.1 as usize);
        let is_it = |i: usize| self.keys[i] == key && self.edges[i].matches(segment);
        let found = if end - start <= LINEAR_EDGES {
            (start..end).find(|&i| is_it(i))?
        } else {
            let (table, bits) = (node.table.0 as usize, node.table.1);
            let slots = &self.slots[table..table + (1 << bits)];
            let mask = slots.len() - 1;
            let mut at = home(key, segment.len(), bits);
            loop {
                // at most half full: an empty slot ends every probe sequence
                let i = slots[at].checked_sub(1)? as usize;
                if is_it(i) {
                    break i;
                }
                at = (at + 1) & mask;
            }
        };
        Some(self.edges[found].child)
    }
}

/// The tree while routes are added: nested and easy to change.
#[derive(Default)]
pub(super) struct TreeBuilder {
    root: BuildNode,
}

#[derive(Default)]
struct BuildNode {
    statics: BTreeMap<String, BuildNode>,
    param: Option<(String, Box<BuildNode>)>,
    catch_all: Option<(String, BuildEndpoint)>,
    endpoint: Option<BuildEndpoint>,
}

struct BuildEndpoint {
    pattern: String,
    methods: BTreeMap<String, u32>,
}

impl TreeBuilder {
    /// Adds `method pattern -> handler`. `segments` is `pattern` parsed.
    ///
    /// # Errors
    ///
    /// [`RouteError::ParamNameConflict`] and [`RouteError::DuplicateRoute`].
    pub(super) fn insert(
        &mut self,
        pattern: &str,
        segments: &[Segment<'_>],
        method: &str,
        handler: u32,
    ) -> Result<(), RouteError> {
        let conflict = |name: &str, existing: &str| RouteError::ParamNameConflict {
            pattern: pattern.to_owned(),
            name: name.to_owned(),
            existing: existing.to_owned(),
        };
        let new_endpoint = || BuildEndpoint {
            pattern: pattern.to_owned(),
            methods: BTreeMap::new(),
        };
        let mut node = &mut self.root;
        let mut endpoint = None;
        for segment in segments {
            match *segment {
                Segment::Static(text) => {
                    node = node.statics.entry(text.to_owned()).or_default();
                }
                Segment::Param(name) => {
                    let (existing, child) = node
                        .param
                        .get_or_insert_with(|| (name.to_owned(), Box::default()));
                    if existing != name {
                        return Err(conflict(name, existing));
                    }
                    node = child;
                }
                Segment::CatchAll(name) => {
                    // Always last: `pattern::parse` checked.
                    let (existing, leaf) = node
                        .catch_all
                        .get_or_insert_with(|| (name.to_owned(), new_endpoint()));
                    if existing != name {
                        return Err(conflict(name, existing));
                    }
                    endpoint = Some(leaf);
                    break;
                }
            }
        }
        let endpoint = match endpoint {
            Some(leaf) => leaf,
            None => node.endpoint.get_or_insert_with(new_endpoint),
        };
        if endpoint
            .methods
            .insert(method.to_owned(), handler)
            .is_some()
        {
            return Err(RouteError::DuplicateRoute {
                method: method.to_owned(),
                pattern: pattern.to_owned(),
            });
        }
        Ok(())
    }

    /// Flattens the tree for lookups and builds each endpoint's `Allow` value.
    pub(super) fn freeze(self) -> Tree {
        let (mut nodes, mut edges, mut endpoints) = (Vec::new(), Vec::new(), Vec::new());
        flatten(self.root, &mut nodes, &mut edges, &mut endpoints);
        let (keys, edges): (Vec<u64>, Vec<Edge>) = edges.into_iter().unzip();
        let mut slots = Vec::new();
        for node in nodes.iter_mut() {
            let (start, end) = (node.edges.0 as usize, node.edges.1 as usize);
            if end - start <= LINEAR_EDGES {
                continue;
            }
            // at least twice as many slots as edges
            let bits = (2 * (end - start)).next_power_of_two().trailing_zeros();
            let table = slots.len();
            slots.resize(table + (1 << bits), 0);
            let mask = (1 << bits) - 1;
            for (edge, &key) in keys.iter().enumerate().take(end).skip(start) {
                let mut at = home(key, edges[edge].len as usize, bits);
                while slots[table + at] != 0 {
                    at = (at + 1) & mask;
                }
                slots[table + at] = edge as u32 + 1;
            }
            node.table = (table as u32, bits);
        }
        Tree {
            nodes: nodes.into_boxed_slice(),
            keys: keys.into_boxed_slice(),
            edges: edges.into_boxed_slice(),
            slots: slots.into_boxed_slice(),
            endpoints: endpoints.into_boxed_slice(),
        }
    }
}

/// Appends `node` and everything under it; returns its index. A node's
/// static edges are contiguous.
fn flatten(
    node: BuildNode,
    nodes: &mut Vec<Node>,
    edges: &mut Vec<(u64, Edge)>,
    endpoints: &mut Vec<Endpoint>,
) -> u32 {
    let index = nodes.len();
    nodes.push(Node {
        edges: (0, 0),
        table: (0, 0),
        param: None,
        catch_all: None,
        endpoint: None,
    });
    let mut own_edges = Vec::with_capacity(node.statics.len());
    for (segment, child) in node.statics {
        let edge = Edge {
            len: segment.len() as u32,
            child: flatten(child, nodes, edges, endpoints),
            text: segment.into_boxed_str(),
        };
        own_edges.push((prefix(edge.text.as_bytes()), edge));
    }
    let start = edges.len() as u32;
    edges.extend(own_edges);
    // before the parameter's subtree adds its own edges
    let end = edges.len() as u32;
    let param = node.param.map(|(name, child)| {
        let child = flatten(*child, nodes, edges, endpoints);
        (name.into_boxed_str(), child)
    });
    let mut endpoint_index = |endpoint: BuildEndpoint| {
        endpoints.push(endpoint.freeze());
        endpoints.len() as u32 - 1
    };
    let catch_all = node
        .catch_all
        .map(|(name, leaf)| (name.into_boxed_str(), endpoint_index(leaf)));
    let endpoint = node.endpoint.map(endpoint_index);
    nodes[index] = Node {
        edges: (start, end),
        table: (0, 0),
        param,
        catch_all,
        endpoint,
    };
    index as u32
}

impl BuildEndpoint {
    fn freeze(self) -> Endpoint {
        let mut allow: Vec<&str> = self.methods.keys().map(String::as_str).collect();
        if self.methods.contains_key("GET") {
            allow.push("HEAD");
        }
        allow.push("OPTIONS");
        allow.sort_unstable();
        allow.dedup();
        let allow = allow.join(", ").into_boxed_str();
        // The pattern parsed when it was inserted: it cannot fail here.
        let params = pattern::parse(&self.pattern)
            .unwrap_or_default()
            .iter()
            .filter_map(pattern::param_name)
            .map(Box::from)
            .collect();
        Endpoint {
            pattern: self.pattern.into_boxed_str(),
            methods: self
                .methods
                .into_iter()
                .map(|(m, h)| (m.into_boxed_str(), h))
                .collect(),
            allow,
            params,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_agrees_with_a_byte_loop() {
        // '/' and its neighbours, 0x01 (a borrow's false positive), high bytes.
        let alphabet = [b'/', b'.', b'0', 0x01, 0x00, 0xff, b'a'];
        let mut tail = Vec::new();
        for len in 0..20 {
            for seed in 0..200usize {
                tail.clear();
                tail.extend((0..len).map(|i| alphabet[(seed * 7 + i * i * 3 + seed / 7 * i) % 7]));
                let want_len = tail.iter().position(|&b| b == b'/').unwrap_or(tail.len());
                let want_key = prefix(&tail[..want_len]);
                assert_eq!(split(&tail), (want_len, want_key), "{tail:?}");
            }
        }
    }
}
