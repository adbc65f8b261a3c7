//! The route tree: one node per distinct pattern prefix, keyed by path
//! segment. Built (and checked) once from the patterns, then flattened into
//! three arrays that a lookup walks without allocating.
//!
//! A node has up to three kinds of children, tried in this order:
//!
//! 1. static edges, one per segment text, sorted for a binary search;
//! 2. one parameter child (`:name`), for any non-empty segment;
//! 3. one catch-all (`*name`), a leaf that takes the rest of the path.
//!
//! The walk is a depth-first search in that order that backtracks when a
//! branch cannot reach an endpoint. Every tree node sits at a fixed depth and
//! the path's segment at that depth is fixed too, so a lookup visits each
//! node at most once: its worst case is the size of the tree, never
//! exponential in the path.

use super::pattern::Segment;
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

struct Node {
    /// This node's static edges: `edges[start..end]`, sorted by segment.
    edges: (u32, u32),
    param: Option<(Box<str>, u32)>,
    /// (name, endpoint index).
    catch_all: Option<(Box<str>, u32)>,
    endpoint: Option<u32>,
}

/// The route tree, flattened. Node 0 is the root: the position before the
/// path's first segment.
pub(super) struct Tree {
    nodes: Box<[Node]>,
    edges: Box<[(Box<str>, u32)]>,
    pub(super) endpoints: Box<[Endpoint]>,
}

/// Edge counts up to this are scanned; larger ones are binary-searched.
const LINEAR_EDGES: usize = 8;

impl Tree {
    /// The endpoint whose pattern matches `path`, with its captures in `caps`.
    /// Allocates nothing.
    #[inline]
    pub(super) fn find<'r, 'p>(
        &'r self,
        path: &'p str,
        caps: &mut Captures<'r, 'p>,
    ) -> Option<&'r Endpoint> {
        let tail = path.strip_prefix('/')?;
        let endpoint = self.walk(0, Some(tail), caps)?;
        Some(&self.endpoints[endpoint as usize])
    }

    /// Matches what is left of the path at `node`. `tail` is `None` once the
    /// path is used up, or the text after the last `/` consumed. Returns the
    /// endpoint index; on `None`, `caps` is as it was.
    fn walk<'r, 'p>(
        &'r self,
        node: u32,
        tail: Option<&'p str>,
        caps: &mut Captures<'r, 'p>,
    ) -> Option<u32> {
        let node = &self.nodes[node as usize];
        let Some(tail) = tail else {
            return node.endpoint;
        };
        let (segment, next) = match tail.find('/') {
            Some(i) => (&tail[..i], Some(&tail[i + 1..])),
            None => (tail, None),
        };
        if let Some(child) = self.static_child(node, segment) {
            if let found @ Some(_) = self.walk(child, next, caps) {
                return found;
            }
        }
        if let Some((name, child)) = &node.param {
            if !segment.is_empty() {
                caps.push(name, segment);
                if let found @ Some(_) = self.walk(*child, next, caps) {
                    return found;
                }
                caps.len -= 1;
            }
        }
        let (name, endpoint) = node.catch_all.as_ref()?;
        caps.push(name, tail);
        Some(*endpoint)
    }

    #[inline]
    fn static_child(&self, node: &Node, segment: &str) -> Option<u32> {
        let edges = &self.edges[node.edges.0 as usize..node.edges.1 as usize];
        if edges.len() <= LINEAR_EDGES {
            edges
                .iter()
                .find(|(s, _)| &**s == segment)
                .map(|&(_, child)| child)
        } else {
            edges
                .binary_search_by(|(s, _)| (**s).cmp(segment))
                .ok()
                .map(|i| edges[i].1)
        }
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
        Tree {
            nodes: nodes.into_boxed_slice(),
            edges: edges.into_boxed_slice(),
            endpoints: endpoints.into_boxed_slice(),
        }
    }
}

/// Appends `node` and everything under it; returns its index. A node's
/// static edges are contiguous and, coming from a `BTreeMap`, sorted.
fn flatten(
    node: BuildNode,
    nodes: &mut Vec<Node>,
    edges: &mut Vec<(Box<str>, u32)>,
    endpoints: &mut Vec<Endpoint>,
) -> u32 {
    let index = nodes.len();
    nodes.push(Node {
        edges: (0, 0),
        param: None,
        catch_all: None,
        endpoint: None,
    });
    let mut own_edges: Vec<(Box<str>, u32)> = Vec::with_capacity(node.statics.len());
    for (segment, child) in node.statics {
        let child = flatten(child, nodes, edges, endpoints);
        own_edges.push((segment.into_boxed_str(), child));
    }
    let start = edges.len() as u32;
    edges.extend(own_edges);
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
        edges: (start, edges.len() as u32),
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
        Endpoint {
            pattern: self.pattern.into_boxed_str(),
            methods: self
                .methods
                .into_iter()
                .map(|(m, h)| (m.into_boxed_str(), h))
                .collect(),
            allow,
        }
    }
}
