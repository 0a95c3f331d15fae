//! A safe reader for the Python pickles RuQi 1.x stored in `ruqi_jobs.job_state`, so RuQi can adopt 1.x job rows.
//!
//! [`parse`] runs the opcodes of pickle protocols 0, 1 and 2 and builds an inert [`Value`] tree: `GLOBAL` only records
//! `(module, name)`, `REDUCE`, `NEWOBJ`, `INST` and `OBJ` only record the callable and its arguments, and `BUILD`
//! attaches the state. Nothing is ever imported, looked up or called. Input size, stack size, nesting and the size of
//! the finished tree are bounded; malformed input gives a [`PickleError`], never a panic. Refused with an error: the
//! opcodes of protocols 3 and later, binary integers over 128 bits, and appending to or setting items on instances.
//!
//! [`decode_job_state`] reads what RuQi needs out of an APScheduler job state (`Job.__getstate__()`).

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveDateTime};

/// Largest pickle [`parse`] accepts, in bytes.
pub const MAX_INPUT: usize = 1 << 20;
/// Most items (values and marks) the unpickling stack may hold.
pub const MAX_STACK: usize = 4096;
/// Deepest nesting of the finished tree; a pickle that refers to itself also stops here.
pub const MAX_DEPTH: usize = 1000;
/// Most memory (roughly, in bytes) the finished tree may take; bounds the copying of shared references.
pub const MAX_TREE: usize = 64 << 20;

/// Why a pickle could not be read, or does not look like a 1.x job state.
#[derive(Debug, thiserror::Error)]
pub enum PickleError {
    /// The input is over [`MAX_INPUT`].
    #[error("pickle is {0} bytes, over the limit of {MAX_INPUT}")]
    TooLarge(usize),
    /// The input ends without a `STOP` opcode.
    #[error("pickle ends at offset {0} without STOP")]
    NoStop(usize),
    /// A byte that is not an opcode of protocols 0 to 2, and its offset.
    #[error("unknown pickle opcode 0x{0:02x} at offset {1}")]
    UnknownOpcode(u8, usize),
    /// An opcode that cannot be read or applied: truncated, bad argument, stack underflow, missing memo entry, limit.
    #[error("pickle {opcode} at offset {offset}: {msg}")]
    Bad {
        /// Name of the opcode.
        opcode: &'static str,
        /// Its offset in the input.
        offset: usize,
        /// What is wrong.
        msg: String,
    },
    /// The finished value nests too deep (or refers to itself) or is too large.
    #[error("pickle value {0}")]
    Tree(String),
    /// The pickle is readable but is not shaped like a 1.x job state.
    #[error("job_state: {0}")]
    Shape(String),
}

/// An inert unpickled value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `None`.
    None,
    /// `True` or `False`.
    Bool(bool),
    /// An integer that fits in 64 bits.
    Int(i64),
    /// A larger integer, in decimal.
    BigInt(String),
    /// A float.
    Float(f64),
    /// A Python 2 `str` (bytes).
    Bytes(Vec<u8>),
    /// A `unicode` string.
    Str(String),
    /// A list.
    List(Vec<Value>),
    /// A tuple.
    Tuple(Vec<Value>),
    /// A dict, as its items in pickle order; if a key repeats, the later item wins (see [`Value::get`]).
    Dict(Vec<(Value, Value)>),
    /// A reference to `module.name`, never resolved.
    Global {
        /// The module.
        module: String,
        /// The name in it.
        name: String,
    },
    /// A call the pickle asks for, never made: `class(*args)`, plus the state `BUILD` gave it.
    Object {
        /// The callable, usually a [`Value::Global`].
        class: Box<Value>,
        /// Its arguments.
        args: Vec<Value>,
        /// The state from `BUILD`, if any.
        state: Option<Box<Value>>,
    },
}

impl Value {
    /// A short name of the variant, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::BigInt(_) => "int",
            Value::Float(_) => "float",
            Value::Bytes(_) => "bytes",
            Value::Str(_) => "str",
            Value::List(_) => "list",
            Value::Tuple(_) => "tuple",
            Value::Dict(_) => "dict",
            Value::Global { .. } => "global",
            Value::Object { .. } => "object",
        }
    }

    /// The text of a `unicode` string, or of a byte string that is valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            Value::Bytes(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// The value under a string key of a dict (the last one if the key repeats).
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(items) => items.iter().rev().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v),
            _ => None,
        }
    }

    /// `(module, name)` of a [`Value::Global`].
    pub fn global(&self) -> Option<(&str, &str)> {
        match self {
            Value::Global { module, name } => Some((module, name)),
            _ => None,
        }
    }
}

/// Reads a pickle of protocol 0, 1 or 2 into an inert [`Value`]; nothing in it is imported or called.
pub fn parse(data: &[u8]) -> Result<Value, PickleError> {
    if data.len() > MAX_INPUT {
        return Err(PickleError::TooLarge(data.len()));
    }
    let mut vm = Vm { data, pos: 0, at: 0, op: 0, nodes: Vec::new(), stack: Vec::new(), marks: Vec::new() };
    let top = vm.run()?;
    vm.tree(top)
}

/// Opcode bytes, and their names in the same order.
const CODES: &[u8] = b"(.012FIJKML\x8a\x8bN\x88\x89STUVXael]t)\x85\x86\x87d}sughjpqrcRbio\x81\x80G";
const NAMES: &str = "MARK STOP POP POP_MARK DUP FLOAT INT BININT BININT1 BININT2 LONG LONG1 LONG4 NONE NEWTRUE \
    NEWFALSE STRING BINSTRING SHORT_BINSTRING UNICODE BINUNICODE APPEND APPENDS LIST EMPTY_LIST TUPLE EMPTY_TUPLE \
    TUPLE1 TUPLE2 TUPLE3 DICT EMPTY_DICT SETITEM SETITEMS GET BINGET LONG_BINGET PUT BINPUT LONG_BINPUT \
    GLOBAL REDUCE BUILD INST OBJ NEWOBJ PROTO BINFLOAT";

fn op_name(code: u8) -> Option<&'static str> {
    NAMES.split_whitespace().nth(CODES.iter().position(|&c| c == code)?)
}

/// A value under construction. Containers hold node indices, so the memo shares (and sees later changes to) them.
enum Node {
    Leaf(Value),
    List(Vec<usize>),
    Tuple(Vec<usize>),
    Dict(Vec<(usize, usize)>),
    /// `args` is a [`Node::Tuple`], shared rather than copied.
    Object {
        class: usize,
        args: usize,
        state: Option<usize>,
    },
}

struct Vm<'a> {
    data: &'a [u8],
    pos: usize,
    /// Offset and byte of the opcode being run, for errors.
    at: usize,
    op: u8,
    nodes: Vec<Node>,
    stack: Vec<usize>,
    /// Stack lengths at each MARK.
    marks: Vec<usize>,
}

type Res<T> = Result<T, PickleError>;

fn leaf(value: Value) -> Res<Option<Node>> {
    Ok(Some(Node::Leaf(value)))
}

impl<'a> Vm<'a> {
    fn bad(&self, msg: impl Into<String>) -> PickleError {
        PickleError::Bad { opcode: op_name(self.op).unwrap_or("?"), offset: self.at, msg: msg.into() }
    }

    fn take(&mut self, n: usize) -> Res<&'a [u8]> {
        let data = self.data;
        let end = self.pos.checked_add(n).filter(|&end| end <= data.len());
        let end = end.ok_or_else(|| self.bad("runs past the end of the input"))?;
        let out = data.get(self.pos..end).unwrap_or_default();
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Res<[u8; N]> {
        Ok(self.take(N)?.try_into().unwrap_or([0; N]))
    }

    fn byte(&mut self) -> Res<u8> {
        Ok(self.array::<1>()?[0])
    }

    fn len_i32(&mut self) -> Res<usize> {
        let n = i32::from_le_bytes(self.array()?);
        usize::try_from(n).map_err(|_| self.bad(format!("negative length {n}")))
    }

    fn line(&mut self) -> Res<&'a [u8]> {
        let data = self.data;
        let rest = data.get(self.pos..).unwrap_or_default();
        let n = rest.iter().position(|&b| b == b'\n').ok_or_else(|| self.bad("runs past the end of the input"))?;
        self.pos += n + 1;
        Ok(&rest[..n])
    }

    fn text_line(&mut self) -> Res<&'a str> {
        let line = self.line()?;
        std::str::from_utf8(line).map_err(|_| self.bad("argument line is not utf-8"))
    }

    fn memo_index(&mut self, code: u8) -> Res<u32> {
        match code {
            b'g' | b'p' => {
                let text = self.text_line()?;
                text.trim().parse().map_err(|_| self.bad(format!("bad memo index {text:?}")))
            }
            b'h' | b'q' => self.byte().map(u32::from),
            _ => Ok(u32::from_le_bytes(self.array()?)),
        }
    }

    fn kind(&self, id: usize) -> &'static str {
        match &self.nodes[id] {
            Node::Leaf(v) => v.kind(),
            Node::List(_) => "list",
            Node::Tuple(_) => "tuple",
            Node::Dict(_) => "dict",
            Node::Object { .. } => "object",
        }
    }

    fn room(&self) -> Res<()> {
        let full = self.stack.len() + self.marks.len() >= MAX_STACK;
        if full { Err(self.bad(format!("stack exceeds {MAX_STACK} items"))) } else { Ok(()) }
    }

    fn push_id(&mut self, id: usize) -> Res<Option<Node>> {
        self.room()?;
        self.stack.push(id);
        Ok(None)
    }

    fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn top(&self) -> Res<usize> {
        match self.stack.last() {
            Some(&id) if self.stack.len() > self.floor() => Ok(id),
            _ => Err(self.bad("stack underflow")),
        }
    }

    /// Pops the top `n` items (above the last mark), in stack order.
    fn pop_n(&mut self, n: usize) -> Res<Vec<usize>> {
        let len = self.stack.len();
        if len < self.floor() + n {
            return Err(self.bad("stack underflow"));
        }
        Ok(self.stack.split_off(len - n))
    }

    fn pop_mark(&mut self) -> Res<Vec<usize>> {
        let mark = self.marks.pop().ok_or_else(|| self.bad("no MARK on the stack"))?;
        Ok(self.stack.split_off(mark.min(self.stack.len())))
    }

    fn pairs(&self, items: &[usize]) -> Res<Vec<(usize, usize)>> {
        if !items.len().is_multiple_of(2) {
            return Err(self.bad("odd number of items for a dict"));
        }
        Ok(items.chunks(2).map(|kv| (kv[0], kv[1])).collect())
    }

    fn global(&mut self) -> Res<usize> {
        let module = self.text_line()?.to_owned();
        let name = self.text_line()?.to_owned();
        self.nodes.push(Node::Leaf(Value::Global { module, name }));
        Ok(self.nodes.len() - 1)
    }

    /// `class(*args)` for `INST` and `OBJ`.
    fn object(&mut self, class: usize, args: Vec<usize>) -> Res<Option<Node>> {
        self.nodes.push(Node::Tuple(args));
        Ok(Some(Node::Object { class, args: self.nodes.len() - 1, state: None }))
    }

    /// `callable(*args)` from the two top items, for `REDUCE` and `NEWOBJ`.
    fn call(&mut self) -> Res<Option<Node>> {
        let items = self.pop_n(2)?;
        match &self.nodes[items[1]] {
            Node::Tuple(_) => Ok(Some(Node::Object { class: items[0], args: items[1], state: None })),
            _ => Err(self.bad(format!("expected an argument tuple, found {}", self.kind(items[1])))),
        }
    }

    /// Adds items to the list (or, with `dict`, key/value pairs to the dict) on top of the stack.
    fn extend(&mut self, items: Vec<usize>, dict: bool) -> Res<Option<Node>> {
        let id = self.top()?;
        let pairs = if dict { self.pairs(&items)? } else { Vec::new() };
        match &mut self.nodes[id] {
            Node::List(list) if !dict => list.extend(items),
            Node::Dict(map) if dict => map.extend(pairs),
            _ => {
                let want = if dict { "a dict to set items in" } else { "a list to append to" };
                return Err(self.bad(format!("expected {want}, found {}", self.kind(id))));
            }
        }
        Ok(None)
    }

    fn run(&mut self) -> Res<usize> {
        let mut memo: HashMap<u32, usize> = HashMap::new();
        loop {
            self.at = self.pos;
            let Some(&code) = self.data.get(self.pos) else { return Err(PickleError::NoStop(self.pos)) };
            self.pos += 1;
            self.op = code;
            let node = match code {
                b'(' => {
                    self.room()?;
                    self.marks.push(self.stack.len());
                    Ok(None)
                }
                b'.' => return self.pop_n(1).map(|top| top[0]),
                b'0' if !self.marks.is_empty() && self.stack.len() == self.floor() => {
                    self.marks.pop();
                    Ok(None)
                }
                b'0' => self.pop_n(1).map(|_| None),
                b'1' => self.pop_mark().map(|_| None),
                b'2' => self.top().and_then(|id| self.push_id(id)),
                b'F' => {
                    let text = self.text_line()?;
                    leaf(Value::Float(text.trim().parse().map_err(|_| self.bad(format!("bad float {text:?}")))?))
                }
                b'I' if matches!(self.data.get(self.pos..self.pos + 3), Some(b"00\n" | b"01\n")) => {
                    leaf(Value::Bool(self.line()? == b"01"))
                }
                b'I' | b'L' => {
                    let text = self.text_line()?;
                    let digits = if code == b'L' { text.strip_suffix('L').unwrap_or(text) } else { text };
                    leaf(int_text(digits).ok_or_else(|| self.bad(format!("bad integer {text:?}")))?)
                }
                b'J' => leaf(Value::Int(i32::from_le_bytes(self.array()?).into())),
                b'K' => leaf(Value::Int(self.byte()?.into())),
                b'M' => leaf(Value::Int(u16::from_le_bytes(self.array()?).into())),
                0x8a | 0x8b => {
                    let n = if code == 0x8a { self.byte()?.into() } else { self.len_i32()? };
                    let bytes = self.take(n)?;
                    leaf(long_bytes(bytes).ok_or_else(|| self.bad(format!("integer of {n} bytes is too large")))?)
                }
                b'N' => leaf(Value::None),
                0x88 | 0x89 => leaf(Value::Bool(code == 0x88)),
                b'S' => leaf(Value::Bytes(string_escape(self.line()?).map_err(|e| self.bad(e))?)),
                b'T' | b'U' => {
                    let n = if code == b'U' { self.byte()?.into() } else { self.len_i32()? };
                    leaf(Value::Bytes(self.take(n)?.to_vec()))
                }
                b'V' => leaf(Value::Str(raw_unicode_escape(self.line()?).map_err(|e| self.bad(e))?)),
                b'X' => {
                    let n = u32::from_le_bytes(self.array()?) as usize;
                    let text = String::from_utf8(self.take(n)?.to_vec());
                    leaf(Value::Str(text.map_err(|_| self.bad("string is not utf-8"))?))
                }
                b'a' => self.pop_n(1).and_then(|items| self.extend(items, false)),
                b'e' => self.pop_mark().and_then(|items| self.extend(items, false)),
                b's' => self.pop_n(2).and_then(|items| self.extend(items, true)),
                b'u' => self.pop_mark().and_then(|items| self.extend(items, true)),
                b'l' => self.pop_mark().map(|items| Some(Node::List(items))),
                b't' => self.pop_mark().map(|items| Some(Node::Tuple(items))),
                b'd' => self.pop_mark().and_then(|items| Ok(Some(Node::Dict(self.pairs(&items)?)))),
                b']' => Ok(Some(Node::List(Vec::new()))),
                b')' => Ok(Some(Node::Tuple(Vec::new()))),
                b'}' => Ok(Some(Node::Dict(Vec::new()))),
                0x85..=0x87 => self.pop_n(usize::from(code - 0x84)).map(|items| Some(Node::Tuple(items))),
                b'g' | b'h' | b'j' => {
                    let index = self.memo_index(code)?;
                    let id = *memo.get(&index).ok_or_else(|| self.bad(format!("memo has no entry {index}")))?;
                    self.push_id(id)
                }
                b'p' | b'q' | b'r' => {
                    let index = self.memo_index(code)?;
                    memo.insert(index, self.top()?);
                    Ok(None)
                }
                b'c' => self.global().and_then(|id| self.push_id(id)),
                b'R' | 0x81 => self.call(),
                b'b' => {
                    let state = self.pop_n(1)?[0];
                    let id = self.top()?;
                    match &mut self.nodes[id] {
                        Node::Object { state: slot, .. } => *slot = Some(state),
                        _ => return Err(self.bad(format!("expected an object to build, found {}", self.kind(id)))),
                    }
                    Ok(None)
                }
                b'i' => {
                    let class = self.global()?;
                    self.pop_mark().and_then(|args| self.object(class, args))
                }
                b'o' => match self.pop_mark()?.split_first() {
                    Some((&class, args)) => self.object(class, args.to_vec()),
                    None => Err(self.bad("no class before OBJ")),
                },
                0x80 => match self.byte()? {
                    0..=2 => Ok(None),
                    proto => Err(self.bad(format!("protocol {proto} is not supported (0 to 2 are)"))),
                },
                b'G' => leaf(Value::Float(f64::from_be_bytes(self.array()?))),
                _ => Err(PickleError::UnknownOpcode(code, self.at)),
            };
            if let Some(node) = node? {
                self.nodes.push(node);
                self.push_id(self.nodes.len() - 1)?;
            }
        }
    }

    /// The nodes `id` refers to, in order (for an object: class, args, then state if any).
    fn children(&self, id: usize) -> Vec<usize> {
        match &self.nodes[id] {
            Node::Leaf(_) => Vec::new(),
            Node::List(items) | Node::Tuple(items) => items.clone(),
            Node::Dict(items) => items.iter().flat_map(|&(k, v)| [k, v]).collect(),
            Node::Object { class, args, state } => {
                let args = match &self.nodes[*args] {
                    Node::Tuple(items) => items.as_slice(),
                    _ => &[],
                };
                [*class].into_iter().chain(args.iter().copied()).chain(*state).collect()
            }
        }
    }

    /// Turns node `root` into an owned tree, copying shared nodes, within [`MAX_DEPTH`] and [`MAX_TREE`]. Works
    /// without recursion, so no input can overflow the thread's stack.
    fn tree(&self, root: usize) -> Res<Value> {
        let mut budget = MAX_TREE;
        let mut charge = |id: usize| {
            let payload = match &self.nodes[id] {
                Node::Leaf(Value::Bytes(b)) => b.len(),
                Node::Leaf(Value::Str(s) | Value::BigInt(s)) => s.len(),
                Node::Leaf(Value::Global { module, name }) => module.len() + name.len(),
                _ => 0,
            };
            let left = budget.checked_sub(std::mem::size_of::<Value>() + payload);
            budget = left.ok_or_else(|| PickleError::Tree(format!("expands beyond {MAX_TREE} bytes")))?;
            Ok(())
        };
        charge(root)?;
        // (node, depth, children already on `done`); a container is visited once to queue its children, once to build.
        let mut todo = vec![(root, 0, false)];
        let mut done: Vec<Value> = Vec::new();
        while let Some((id, depth, built)) = todo.pop() {
            let children = self.children(id);
            let node = &self.nodes[id];
            if let Node::Leaf(value) = node {
                done.push(value.clone());
            } else if !built {
                if depth >= MAX_DEPTH {
                    return Err(PickleError::Tree(format!("nests deeper than {MAX_DEPTH} levels or refers to itself")));
                }
                todo.push((id, depth, true));
                for &child in children.iter().rev() {
                    charge(child)?;
                    todo.push((child, depth + 1, false));
                }
            } else {
                let mut kids = done.split_off(done.len().saturating_sub(children.len()));
                done.push(match node {
                    Node::Tuple(_) => Value::Tuple(kids),
                    Node::Dict(_) => {
                        let mut kids = kids.into_iter();
                        Value::Dict(std::iter::from_fn(|| Some((kids.next()?, kids.next()?))).collect())
                    }
                    Node::Object { state, .. } => {
                        let state = if state.is_some() { kids.pop().map(Box::new) } else { None };
                        let mut kids = kids.into_iter();
                        let class = Box::new(kids.next().unwrap_or(Value::None));
                        Value::Object { class, args: kids.collect(), state }
                    }
                    _ => Value::List(kids),
                });
            }
        }
        done.pop().ok_or_else(|| PickleError::Tree("is missing".into()))
    }
}

/// A decimal integer (`INT` or `LONG` text), as [`Value::Int`] if it fits.
fn int_text(text: &str) -> Option<Value> {
    let text = text.trim();
    if let Ok(n) = text.parse() {
        return Some(Value::Int(n));
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    let valid = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    valid.then(|| Value::BigInt(text.trim_start_matches('+').to_owned()))
}

/// A little-endian two's complement integer (`LONG1`, `LONG4`) of at most 16 bytes.
fn long_bytes(bytes: &[u8]) -> Option<Value> {
    let fill = if bytes.last().is_some_and(|&b| b & 0x80 != 0) { 0xff } else { 0 };
    let mut buf = [fill; 16];
    buf.get_mut(..bytes.len())?.copy_from_slice(bytes);
    let n = i128::from_le_bytes(buf);
    Some(i64::try_from(n).map_or_else(|_| Value::BigInt(n.to_string()), Value::Int))
}

/// The argument of a protocol 0 `STRING`: a quoted Python 2 `repr`, with `string-escape` escapes.
fn string_escape(line: &[u8]) -> Result<Vec<u8>, &'static str> {
    let [quote @ (b'\'' | b'"'), body @ .., end] = line else { return Err("string is not quoted") };
    if end != quote {
        return Err("string is not quoted");
    }
    let mut out = Vec::with_capacity(body.len());
    let mut bytes = body.iter().copied().peekable();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let escape = bytes.next().ok_or("string ends with a lone backslash")?;
        let byte = match escape {
            b'\\' | b'\'' | b'"' => escape,
            b'a' => 7,
            b'b' => 8,
            b'f' => 12,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'v' => 11,
            b'x' => {
                let mut digit = || bytes.next().and_then(|d| char::from(d).to_digit(16)).ok_or("invalid \\x escape");
                (digit()? * 16 + digit()?) as u8
            }
            b'0'..=b'7' => {
                let mut n = u32::from(escape - b'0');
                for _ in 0..2 {
                    let Some(d) = bytes.next_if(|d| (b'0'..=b'7').contains(d)) else { break };
                    n = n * 8 + u32::from(d - b'0');
                }
                (n & 0xff) as u8
            }
            _ => {
                out.push(b'\\');
                escape
            }
        };
        out.push(byte);
    }
    Ok(out)
}

/// The argument of a protocol 0 `UNICODE`: `raw-unicode-escape` (`\uXXXX`, `\UXXXXXXXX`, other bytes latin-1).
fn raw_unicode_escape(line: &[u8]) -> Result<String, &'static str> {
    let mut points: Vec<u32> = Vec::with_capacity(line.len());
    let (mut i, mut run) = (0, 0); // `run`: backslashes just read; an odd run before `u` or `U` starts an escape
    while let Some(&b) = line.get(i) {
        i += 1;
        points.push(b.into());
        run = if b == b'\\' { run + 1 } else { 0 };
        let width = match line.get(i) {
            Some(b'u') if run % 2 == 1 => 4,
            Some(b'U') if run % 2 == 1 => 8,
            _ => continue,
        };
        let hex = line.get(i + 1..i + 1 + width).ok_or("truncated \\uXXXX escape")?;
        let hex = std::str::from_utf8(hex).ok().filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
        points.pop();
        points.push(hex.and_then(|h| u32::from_str_radix(h, 16).ok()).ok_or("bad \\uXXXX escape")?);
        (i, run) = (i + 1 + width, 0);
    }
    let mut out = String::with_capacity(points.len());
    let mut points = points.into_iter().peekable();
    while let Some(p) = points.next() {
        let low = points.next_if(|low| (0xdc00..0xe000).contains(low) && (0xd800..0xdc00).contains(&p));
        let p = low.map_or(p, |low| 0x10000 + ((p - 0xd800) << 10) + (low - 0xdc00));
        out.push(char::from_u32(p).ok_or("lone surrogate or code point out of range")?);
    }
    Ok(out)
}

/// What RuQi needs from a 1.x job state.
#[derive(Debug, Clone, PartialEq)]
pub struct LegacyJobState {
    /// `state['id']`.
    pub id: Option<String>,
    /// `state['kwargs']['cmd']`.
    pub cmd: String,
    /// `kwargs['job_name']`, else `state['name']`.
    pub job_name: Option<String>,
    /// `state['func']`, e.g. `xlib.apscheduler.manager:run_cmd`.
    pub func: Option<String>,
    /// Naive local wall time of the next run; `None` when the job is paused.
    pub next_run_time: Option<NaiveDateTime>,
    /// The trigger.
    pub trigger: LegacyTrigger,
}

/// The trigger of a 1.x job, decided by the class of the pickled trigger object.
#[derive(Debug, Clone, PartialEq)]
pub enum LegacyTrigger {
    /// `…triggers.date.DateTrigger`: one run.
    Date {
        /// Naive local wall time of the run.
        run_date: NaiveDateTime,
    },
    /// `…triggers.interval.IntervalTrigger`.
    Interval {
        /// Naive local wall time of the first run, if set.
        start_date: Option<NaiveDateTime>,
        /// The interval in microseconds, always positive.
        interval_micros: i64,
    },
    /// `…triggers.cron.CronTrigger`; the rule itself comes from the row's `job_rule` column.
    Cron {
        /// The zone the trigger names (`timezone`, else the tzinfo of `start_date`), if any.
        timezone: Option<String>,
    },
    /// Any other trigger class, as `module.name`, for the caller to report.
    Other {
        /// The class.
        class: String,
    },
}

fn shape(msg: impl Into<String>) -> PickleError {
    PickleError::Shape(msg.into())
}

/// Reads a 1.x `job_state` pickle (APScheduler's `Job.__getstate__()` dict) into what RuQi needs.
pub fn decode_job_state(bytes: &[u8]) -> Result<LegacyJobState, PickleError> {
    let state = parse(bytes)?;
    if !matches!(state, Value::Dict(_)) {
        return Err(shape(format!("expected a dict at the top, found {}", state.kind())));
    }
    let kwargs = state.get("kwargs").ok_or_else(|| shape("no kwargs"))?;
    if !matches!(kwargs, Value::Dict(_)) {
        return Err(shape(format!("kwargs: expected a dict, found {}", kwargs.kind())));
    }
    let next_run_time = match state.get("next_run_time").ok_or_else(|| shape("no next_run_time"))? {
        Value::None => None,
        value => Some(datetime(value, "next_run_time")?),
    };
    Ok(LegacyJobState {
        id: opt_str(state.get("id"), "id")?,
        cmd: opt_str(kwargs.get("cmd"), "kwargs cmd")?.ok_or_else(|| shape("kwargs has no cmd"))?,
        job_name: match opt_str(kwargs.get("job_name"), "kwargs job_name")? {
            None => opt_str(state.get("name"), "name")?,
            name => name,
        },
        func: opt_str(state.get("func"), "func")?,
        next_run_time,
        trigger: trigger(state.get("trigger").ok_or_else(|| shape("no trigger"))?)?,
    })
}

/// A string that may be missing or `None`.
fn opt_str(value: Option<&Value>, what: &str) -> Result<Option<String>, PickleError> {
    match value {
        None | Some(Value::None) => Ok(None),
        Some(v) => {
            Ok(Some(v.as_str().ok_or_else(|| shape(format!("{what}: expected a string, found {}", v.kind())))?.into()))
        }
    }
}

/// The arguments of a pickled call of `module.name`.
fn call_args<'v>(value: &'v Value, module: &str, name: &str, what: &str) -> Result<&'v [Value], PickleError> {
    match value {
        Value::Object { class, args, .. } if class.global() == Some((module, name)) => Ok(args),
        _ => Err(shape(format!("{what}: expected a {module}.{name}, found {}", value.kind()))),
    }
}

/// The naive wall time of a pickled `datetime.datetime`; a tzinfo argument is ignored.
fn datetime(value: &Value, what: &str) -> Result<NaiveDateTime, PickleError> {
    let b: [u8; 10] = match call_args(value, "datetime", "datetime", what)?.first() {
        Some(Value::Bytes(b)) => b.as_slice().try_into().map_err(|_| format!("{} bytes", b.len())),
        arg => Err(arg.map_or("no argument", Value::kind).to_owned()),
    }
    .map_err(|found| shape(format!("{what}: expected 10 bytes of datetime state, found {found}")))?;
    let micro = u32::from(b[7]) << 16 | u32::from(b[8]) << 8 | u32::from(b[9]);
    NaiveDate::from_ymd_opt(i32::from(b[0]) << 8 | i32::from(b[1]), u32::from(b[2] & 0x7f), b[3].into())
        .and_then(|d| d.and_hms_micro_opt(b[4].into(), b[5].into(), b[6].into(), micro))
        .filter(|_| micro < 1_000_000)
        .ok_or_else(|| shape(format!("{what}: invalid datetime state {b:02x?}")))
}

/// A pickled `datetime.timedelta(days, seconds, microseconds)`, in microseconds.
fn timedelta_micros(value: &Value, what: &str) -> Result<i64, PickleError> {
    let micros = match call_args(value, "datetime", "timedelta", what)? {
        [Value::Int(days), Value::Int(secs), Value::Int(us)] => days
            .checked_mul(86_400_000_000)
            .zip(secs.checked_mul(1_000_000))
            .and_then(|(d, s)| d.checked_add(s)?.checked_add(*us)),
        _ => None,
    };
    micros.ok_or_else(|| shape(format!("{what}: expected timedelta(days, seconds, microseconds) in range")))
}

/// `(module, name)` of a pickled instance: `copy_reg._reconstructor(cls, object, None)`, `NEWOBJ(cls)` or `INST`.
fn class_of(value: &Value) -> Option<(&str, &str)> {
    let Value::Object { class, args, .. } = value else { return None };
    match class.global()? {
        ("copy_reg" | "copyreg", "_reconstructor") => args.first()?.global(),
        global => Some(global),
    }
}

/// The zone name of a pickled tzinfo: a string, `pytz._p('Zone', …)`, `pytz._UTC()`, or an object with a `zone`.
fn tz_name(value: &Value) -> Option<String> {
    let name = match value {
        Value::Object { class, args, state } => match class.global() {
            Some(("pytz", "_p")) => args.first()?.as_str(),
            Some(("pytz", "_UTC")) => Some("UTC"),
            _ => state.as_deref()?.get("zone")?.as_str(),
        },
        _ => value.as_str(),
    };
    name.map(str::to_owned)
}

/// The trigger object, by its class; the module may be `apscheduler.triggers.…` or a fork's `….triggers.…`.
fn trigger(value: &Value) -> Result<LegacyTrigger, PickleError> {
    let (module, name) = class_of(value)
        .ok_or_else(|| shape(format!("trigger: expected an instance of a named class, found {}", value.kind())))?;
    let is = |kind: &str, class: &str| {
        name == class && (module == kind || module.strip_suffix(kind).is_some_and(|m| m.ends_with('.')))
    };
    let state = match value {
        Value::Object { state: Some(state), .. } => &**state,
        _ => &Value::None,
    };
    let date = |key: &str| match state.get(key) {
        None | Some(Value::None) => Ok(None),
        Some(v) => datetime(v, &format!("trigger {key}")).map(Some),
    };
    Ok(if is("triggers.date", "DateTrigger") {
        LegacyTrigger::Date { run_date: date("run_date")?.ok_or_else(|| shape("trigger has no run_date"))? }
    } else if is("triggers.interval", "IntervalTrigger") {
        let interval = state.get("interval").ok_or_else(|| shape("trigger has no interval"))?;
        let interval_micros = timedelta_micros(interval, "trigger interval")?;
        if interval_micros <= 0 {
            return Err(shape(format!("trigger interval: expected a positive interval, found {interval_micros} µs")));
        }
        LegacyTrigger::Interval { start_date: date("start_date")?, interval_micros }
    } else if is("triggers.cron", "CronTrigger") {
        let start_zone = || match state.get("start_date") {
            Some(Value::Object { args, .. }) => args.get(1).and_then(tz_name),
            _ => None,
        };
        LegacyTrigger::Cron { timezone: state.get("timezone").and_then(tz_name).or_else(start_zone) }
    } else {
        LegacyTrigger::Other { class: format!("{module}.{name}") }
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Bytes from hex text.
    pub(crate) fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn dt(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
    }

    /// `bytes` with the one occurrence of `from` replaced by `to`.
    pub(crate) fn edit(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
        let (from, to) = (from.as_bytes(), to.as_bytes());
        let at = bytes.windows(from.len()).position(|w| w == from).expect("text to edit is in the fixture");
        [&bytes[..at], to, &bytes[at + from.len()..]].concat()
    }

    fn interval(start: &str, secs: i64) -> LegacyTrigger {
        LegacyTrigger::Interval { start_date: Some(dt(start)), interval_micros: secs * 1_000_000 }
    }

    #[test]
    fn fixture_rows_decode() {
        let (cron, date) = (LegacyTrigger::Cron { timezone: None }, |s| LegacyTrigger::Date { run_date: dt(s) });
        #[rustfmt::skip]
        let rows = [
            ("baichuan", FX_BAICHUAN, r#"/demo_api/hello#{"x": 1}#msg-1"#, "run_mq", Some("2026-11-25 03:16:44.156788"),
                interval("2026-11-25 03:16:44.156788", 3600)),
            ("cron-nightly", FX_CRON_NIGHTLY, "bash scripts/test.sh nightly", "run_cmd", Some("2026-11-25 02:30:00"),
                cron.clone()),
            ("date", FX_DATE, "bash scripts/test.sh later", "run_cmd", Some("2031-06-01 08:00:00"),
                date("2031-06-01 08:00:00")),
            ("date-us", FX_DATE_US, "bash scripts/test.sh micro", "run_cmd", Some("2031-06-01 08:00:00.123456"),
                date("2031-06-01 08:00:00.123456")),
            ("http", FX_HTTP, r#"http://127.0.0.1:9/hook#{"a": 1, "名": "值"}"#, "run_http", Some("2026-11-25 03:00:00"),
                cron),
            ("interval", FX_INTERVAL, "python scripts/test.py a b", "run_cmd", Some("2026-11-25 02:21:44.046139"),
                interval("2026-11-25 02:21:44.046139", 300)),
            ("paused", FX_PAUSED, "bash scripts/test.sh paused", "run_cmd", None,
                interval("2026-11-25 02:16:54.225737", 10)),
            ("unicode", FX_UNICODE, "bash scripts/test.sh 你好", "run_cmd", Some("2026-11-25 04:16:44.182132"),
                interval("2026-11-25 04:16:44.182132", 7200)),
        ];
        for (id, fixture, cmd, func, next, trigger) in rows {
            let want = LegacyJobState {
                id: Some(format!("fx-{id}")),
                cmd: cmd.into(),
                job_name: Some("fixture".into()),
                func: Some(format!("xlib.apscheduler.manager:{func}")),
                next_run_time: next.map(dt),
                trigger,
            };
            assert_eq!(decode_job_state(&hex(fixture)).unwrap(), want, "fx-{id}");
        }
    }

    #[test]
    fn corrupt_pickles_are_errors() {
        let fx = hex(FX_DATE_US);
        let err = |bytes: &[u8]| decode_job_state(bytes).unwrap_err().to_string();
        assert_eq!(err(&fx[..fx.len() - 1]), format!("pickle ends at offset {} without STOP", fx.len() - 1));
        assert_eq!(err(&fx[..100]), "pickle STRING at offset 84: runs past the end of the input");
        assert_eq!(err(b"\xffgarbage"), "unknown pickle opcode 0xff at offset 0");
        assert_eq!(err(br#"{"v": 1}"#), "unknown pickle opcode 0x7b at offset 0"); // RuQi's own JSON job_state
        assert_eq!(err(b"(S'x\n."), "pickle STRING at offset 1: string is not quoted");
        assert_eq!(err(b"g5\n."), "pickle GET at offset 0: memo has no entry 5");
        assert_eq!(err(b"N\x80\x04."), "pickle PROTO at offset 1: protocol 4 is not supported (0 to 2 are)");
        assert_eq!(err(b"(tR."), "pickle REDUCE at offset 2: stack underflow");
        assert_eq!(
            err(&vec![b'N'; MAX_INPUT + 1]),
            format!("pickle is {} bytes, over the limit of {MAX_INPUT}", MAX_INPUT + 1)
        );
        assert!(err(&b"]".repeat(MAX_STACK + 1)).ends_with(&format!("stack exceeds {MAX_STACK} items")));
        // Each list holds the previous one (depth), or two references to it (size).
        let deep = [b"]q\x000".as_slice(), &b"]h\x00aq\x000".repeat(MAX_DEPTH + 1), b"h\x00."].concat();
        assert_eq!(err(&deep), format!("pickle value nests deeper than {MAX_DEPTH} levels or refers to itself"));
        let wide = [b"]q\x000".as_slice(), &b"(h\x00h\x00lq\x000".repeat(40), b"h\x00."].concat();
        assert_eq!(err(&wide), format!("pickle value expands beyond {MAX_TREE} bytes"));
        // Python 2: n = New(); n.y = [n]; pickle.dumps(n, 2)
        assert!(
            err(b"\x80\x02c__main__\nNew\nq\x00)\x81q\x01}q\x02U\x01yq\x03]q\x04h\x01asb.")
                .contains("refers to itself")
        );
    }

    #[test]
    fn unexpected_shapes_are_errors() {
        let fx = hex(FX_DATE_US);
        let err = |bytes: &[u8]| decode_job_state(bytes).unwrap_err().to_string();
        assert_eq!(err(b"(lp0\nI1\na."), "job_state: expected a dict at the top, found list");
        assert_eq!(err(&edit(&fx, "S'cmd'", "S'cnd'")), "job_state: kwargs has no cmd");
        assert_eq!(
            err(&edit(&fx, "Vbash scripts/test.sh micro", "I42")),
            "job_state: kwargs cmd: expected a string, found int"
        );
        assert_eq!(err(&edit(&fx, "S'kwargs'", "S'kw'")), "job_state: no kwargs");
        let bad_date = edit(&fx, "datetime\ndatetime", "datetime\ndate");
        assert_eq!(err(&bad_date), "job_state: next_run_time: expected a datetime.datetime, found object");
        let moon = edit(&fx, "triggers.date\nDateTrigger", "triggers.date\nMoonTrigger");
        let class = "xlib.apscheduler.triggers.date.MoonTrigger".into();
        assert_eq!(decode_job_state(&moon).unwrap().trigger, LegacyTrigger::Other { class });
        let zero = edit(&hex(FX_INTERVAL), "I300\n", "I0\n");
        assert_eq!(err(&zero), "job_state: trigger interval: expected a positive interval, found 0 µs");
    }

    #[test]
    fn cron_timezone_and_plain_apscheduler_module() {
        let tz = "S'jitter'\np85\nNsS'timezone'\ncpytz\n_p\n(S'Asia/Shanghai'\nI28800\nI0\nS'CST'\ntR";
        let fx = edit(
            &edit(&hex(FX_CRON_NIGHTLY), "S'jitter'\np85\nN", tz),
            "cxlib.apscheduler.triggers.cron\n",
            "capscheduler.triggers.cron\n",
        );
        assert_eq!(
            decode_job_state(&fx).unwrap().trigger,
            LegacyTrigger::Cron { timezone: Some("Asia/Shanghai".into()) }
        );
    }

    #[test]
    fn protocols_0_1_2_agree() {
        // Python 2: cPickle.dumps({'n': [...], 's': [...], 'd': datetime(...), 't': timedelta(1, 2, 3)}, protocol)
        let value = parse(&hex(PROTO0)).unwrap();
        assert_eq!(parse(&hex(PROTO1)).unwrap(), value);
        assert_eq!(parse(&hex(PROTO2)).unwrap(), value);
        let big = |s: &str| Value::BigInt(s.into());
        let ints = [1, -2, 300, 70000, -70000, 1 << 40].map(Value::Int);
        let n =
            [&ints[..], &[big("1180591620717411303424"), big("-1180591620717411303424"), Value::Float(1.5)]].concat();
        let n = [n, vec![Value::None, Value::Bool(true), Value::Bool(false)]].concat();
        assert_eq!(value.get("n"), Some(&Value::List(n)));
        let s = value.get("s").unwrap();
        let Value::List(s) = s else { panic!("{s:?}") };
        assert_eq!(
            (s[0].as_str(), s[1].as_str(), &s[6]),
            (Some("x"), Some("你😀café"), &Value::Tuple((1..=4).map(Value::Int).collect()))
        );
        let micros = timedelta_micros(value.get("t").unwrap(), "t").unwrap();
        assert_eq!(
            (datetime(value.get("d").unwrap(), "d").unwrap(), micros),
            (dt("2031-06-01 08:00:00.123456"), 86_400_000_000 + 2_000_003)
        );
        // Python 2: old-style instance with o.x = 1, protocols 0 (INST) and 1 (OBJ)
        let old = Value::Object {
            class: Box::new(Value::Global { module: "__main__".into(), name: "Old".into() }),
            args: Vec::new(),
            state: Some(Box::new(Value::Dict(vec![(Value::Bytes(b"x".to_vec()), Value::Int(1))]))),
        };
        assert_eq!(parse(b"(i__main__\nOld\np0\n(dp1\nS'x'\np2\nI1\nsb.").unwrap(), old);
        assert_eq!(parse(b"(c__main__\nOld\nq\x00oq\x01}q\x02U\x01xq\x03K\x01sb.").unwrap(), old);
    }

    #[test]
    fn text_escapes() {
        assert_eq!(string_escape(br#"'a\x07\n\\\'\"\101\q'"#).unwrap(), b"a\x07\n\\'\"A\\q");
        assert_eq!(string_escape(br"'\x4'"), Err("invalid \\x escape"));
        assert_eq!(raw_unicode_escape(br"\u4f60\U0001F600caf\xe9".as_slice()).unwrap(), "你😀caf\\xe9");
        assert_eq!(
            raw_unicode_escape(b"caf\xe9 \\\\u0041 \\\\\\u0041 \\ud83d\\ude00").unwrap(),
            "café \\\\u0041 \\\\A 😀"
        );
        assert!(raw_unicode_escape(br"\ud83d").is_err() && raw_unicode_escape(br"\u12").is_err());
        let codes = CODES.iter().map(|&c| op_name(c).unwrap());
        assert_eq!(
            (codes.count(), op_name(0x8b), op_name(b'G'), op_name(b'Z')),
            (48, Some("LONG4"), Some("BINFLOAT"), None)
        );
    }

    #[test]
    fn never_panics() {
        for fixture in [FX_BAICHUAN, FX_HTTP] {
            let fx = hex(fixture);
            for end in 0..fx.len() {
                let _ = decode_job_state(&fx[..end]);
            }
            let mut seed = 0x2545_f491_4f6c_dd1d_u64;
            for i in 0..fx.len() * 4 {
                let mut bytes = fx.clone();
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                bytes[i % fx.len()] ^= [0x01, 0x20, 0x80, seed as u8][i % 4];
                let _ = decode_job_state(&bytes);
                bytes.insert((seed >> 8) as usize % fx.len(), (seed >> 16) as u8);
                bytes.remove((seed >> 24) as usize % fx.len());
                let _ = decode_job_state(&bytes);
            }
        }
    }

    // job_state of rows in /work/shared/fixtures/ruqi-1x/jobs.sql, as dumped.
    /// A `job_state` of the RuQi 1.x fixture (`jobs.sql`), as hex.
    pub(crate) const FX_BAICHUAN: &str = "\
286470310A532761726773270A70320A28747353276578656375746F72270A70330A532764656661756C74270A70340A7353276D61785F696E7374\
616E636573270A70350A49310A73532766756E63270A70360A5327786C69622E61707363686564756C65722E6D616E616765723A72756E5F6D7127\
0A70370A7353276964270A70380A5666782D626169636875616E0A70390A7353276E6578745F72756E5F74696D65270A7031300A63646174657469\
6D650A6461746574696D650A7031310A2853275C7830375C7865615C7830625C7831395C7830335C7831302C5C7830326474270A74527031320A73\
53276E616D65270A7031330A56666978747572650A7031340A7353276D6973666972655F67726163655F74696D65270A7031350A4933300A735327\
74726967676572270A7031360A63636F70795F7265670A5F7265636F6E7374727563746F720A7031370A2863786C69622E61707363686564756C65\
722E74726967676572732E696E74657276616C0A496E74657276616C547269676765720A7031380A635F5F6275696C74696E5F5F0A6F626A656374\
0A7031390A4E74527032300A28647032310A532776657273696F6E270A7032320A49320A7353276A6974746572270A7032330A4E73532773746172\
745F64617465270A7032340A6731320A735327656E645F64617465270A7032350A4E735327696E74657276616C270A7032360A636461746574696D\
650A74696D6564656C74610A7032370A2849300A49333630300A49300A74527032380A7362735327636F616C65736365270A7032390A4930300A73\
6732320A49310A7353276B7761726773270A7033300A28647033310A5327636D64270A7033320A562F64656D6F5F6170692F68656C6C6F237B2278\
223A20317D236D73672D310A7033330A7353276A6F625F6964270A7033340A67390A7353276A6F625F6E616D65270A7033350A6731340A73732E";
    /// A `job_state` of the RuQi 1.x fixture (`jobs.sql`), as hex.
    pub(crate) const FX_CRON_NIGHTLY: &str = "\
286470310A532761726773270A70320A28747353276578656375746F72270A70330A532764656661756C74270A70340A7353276D61785F696E7374\
616E636573270A70350A49310A73532766756E63270A70360A5327786C69622E61707363686564756C65722E6D616E616765723A72756E5F636D64\
270A70370A7353276964270A70380A5666782D63726F6E2D6E696768746C790A70390A7353276E6578745F72756E5F74696D65270A7031300A6364\
61746574696D650A6461746574696D650A7031310A2853275C7830375C7865615C7830625C7831395C7830325C7831655C7830305C7830305C7830\
305C783030270A74527031320A7353276E616D65270A7031330A56666978747572650A7031340A7353276D6973666972655F67726163655F74696D\
65270A7031350A4933300A73532774726967676572270A7031360A63636F70795F7265670A5F7265636F6E7374727563746F720A7031370A286378\
6C69622E61707363686564756C65722E74726967676572732E63726F6E0A43726F6E547269676765720A7031380A635F5F6275696C74696E5F5F0A\
6F626A6563740A7031390A4E74527032300A28647032310A53276669656C6473270A7032320A286C7032330A6731370A2863786C69622E61707363\
686564756C65722E74726967676572732E63726F6E2E6669656C64730A426173654669656C640A7032340A6731390A4E74527032350A2864703236\
0A532769735F64656661756C74270A7032370A4930310A73532765787072657373696F6E73270A7032380A286C7032390A6731370A2863786C6962\
2E61707363686564756C65722E74726967676572732E63726F6E2E65787072657373696F6E730A416C6C45787072657373696F6E0A7033300A6731\
390A4E74527033310A28647033320A532773746570270A7033330A4E736261736731330A532779656172270A7033340A7362616731370A2863786C\
69622E61707363686564756C65722E74726967676572732E63726F6E2E6669656C64730A4D6F6E74684669656C640A7033350A6731390A4E745270\
33360A28647033370A6732370A4930300A736732380A286C7033380A6731370A286733300A6731390A4E74527033390A28647034300A6733330A4E\
736261736731330A53276D6F6E7468270A7034310A7362616731370A2863786C69622E61707363686564756C65722E74726967676572732E63726F\
6E2E6669656C64730A4461794F664D6F6E74684669656C640A7034320A6731390A4E74527034330A28647034340A6732370A4930300A736732380A\
286C7034350A6731370A286733300A6731390A4E74527034360A28647034370A6733330A4E736261736731330A5327646179270A7034380A736261\
6731370A2863786C69622E61707363686564756C65722E74726967676572732E63726F6E2E6669656C64730A5765656B4669656C640A7034390A67\
31390A4E74527035300A28647035310A6732370A4930310A736732380A286C7035320A6731370A286733300A6731390A4E74527035330A28647035\
340A6733330A4E736261736731330A53277765656B270A7035350A7362616731370A2863786C69622E61707363686564756C65722E747269676765\
72732E63726F6E2E6669656C64730A4461794F665765656B4669656C640A7035360A6731390A4E74527035370A28647035380A6732370A4930300A\
736732380A286C7035390A6731370A286733300A6731390A4E74527036300A28647036310A6733330A4E736261736731330A53276461795F6F665F\
7765656B270A7036320A7362616731370A286732340A6731390A4E74527036330A28647036340A6732370A4930300A736732380A286C7036350A67\
31370A2863786C69622E61707363686564756C65722E74726967676572732E63726F6E2E65787072657373696F6E730A52616E6765457870726573\
73696F6E0A7036360A6731390A4E74527036370A28647036380A6733330A4E7353276C617374270A7036390A49320A7353276669727374270A7037\
300A49320A736261736731330A5327686F7572270A7037310A7362616731370A286732340A6731390A4E74527037320A28647037330A6732370A49\
30300A736732380A286C7037340A6731370A286736360A6731390A4E74527037350A28647037360A6733330A4E736736390A4933300A736737300A\
4933300A736261736731330A53276D696E757465270A7037370A7362616731370A286732340A6731390A4E74527037380A28647037390A6732370A\
4930300A736732380A286C7038300A6731370A286736360A6731390A4E74527038310A28647038320A6733330A4E736736390A49300A736737300A\
49300A736261736731330A53277365636F6E64270A7038330A73626173532776657273696F6E270A7038340A49320A7353276A6974746572270A70\
38350A4E73532773746172745F64617465270A7038360A4E735327656E645F64617465270A7038370A4E7362735327636F616C65736365270A7038\
380A4930300A736738340A49310A7353276B7761726773270A7038390A28647039300A5327636D64270A7039310A56626173682073637269707473\
2F746573742E7368206E696768746C790A7039320A7353276A6F625F6964270A7039330A67390A7353276A6F625F6E616D65270A7039340A673134\
0A73732E";
    /// A `job_state` of the RuQi 1.x fixture (`jobs.sql`), as hex.
    pub(crate) const FX_DATE: &str = "\
286470310A532761726773270A70320A28747353276578656375746F72270A70330A532764656661756C74270A70340A7353276D61785F696E7374\
616E636573270A70350A49310A73532766756E63270A70360A5327786C69622E61707363686564756C65722E6D616E616765723A72756E5F636D64\
270A70370A7353276964270A70380A5666782D646174650A70390A7353276E6578745F72756E5F74696D65270A7031300A636461746574696D650A\
6461746574696D650A7031310A2853275C7830375C7865665C7830365C7830315C7830385C7830305C7830305C7830305C7830305C783030270A74\
527031320A7353276E616D65270A7031330A56666978747572650A7031340A7353276D6973666972655F67726163655F74696D65270A7031350A49\
33300A73532774726967676572270A7031360A63636F70795F7265670A5F7265636F6E7374727563746F720A7031370A2863786C69622E61707363\
686564756C65722E74726967676572732E646174650A44617465547269676765720A7031380A635F5F6275696C74696E5F5F0A6F626A6563740A70\
31390A4E74527032300A28647032310A532776657273696F6E270A7032320A49310A73532772756E5F64617465270A7032330A6731320A73627353\
27636F616C65736365270A7032340A4930300A736732320A49310A7353276B7761726773270A7032350A28647032360A5327636D64270A7032370A\
566261736820736372697074732F746573742E7368206C617465720A7032380A7353276A6F625F6964270A7032390A67390A7353276A6F625F6E61\
6D65270A7033300A6731340A73732E";
    /// A `job_state` of the RuQi 1.x fixture (`jobs.sql`), as hex.
    pub(crate) const FX_DATE_US: &str = "\
286470310A532761726773270A70320A28747353276578656375746F72270A70330A532764656661756C74270A70340A7353276D61785F696E7374\
616E636573270A70350A49310A73532766756E63270A70360A5327786C69622E61707363686564756C65722E6D616E616765723A72756E5F636D64\
270A70370A7353276964270A70380A5666782D646174652D75730A70390A7353276E6578745F72756E5F74696D65270A7031300A63646174657469\
6D650A6461746574696D650A7031310A2853275C7830375C7865665C7830365C7830315C7830385C7830305C7830305C7830315C78653240270A74\
527031320A7353276E616D65270A7031330A56666978747572650A7031340A7353276D6973666972655F67726163655F74696D65270A7031350A49\
33300A73532774726967676572270A7031360A63636F70795F7265670A5F7265636F6E7374727563746F720A7031370A2863786C69622E61707363\
686564756C65722E74726967676572732E646174650A44617465547269676765720A7031380A635F5F6275696C74696E5F5F0A6F626A6563740A70\
31390A4E74527032300A28647032310A532776657273696F6E270A7032320A49310A73532772756E5F64617465270A7032330A6731320A73627353\
27636F616C65736365270A7032340A4930300A736732320A49310A7353276B7761726773270A7032350A28647032360A5327636D64270A7032370A\
566261736820736372697074732F746573742E7368206D6963726F0A7032380A7353276A6F625F6964270A7032390A67390A7353276A6F625F6E61\
6D65270A7033300A6731340A73732E";
    /// A `job_state` of the RuQi 1.x fixture (`jobs.sql`), as hex.
    pub(crate) const FX_HTTP: &str = "\
286470310A532761726773270A70320A28747353276578656375746F72270A70330A532764656661756C74270A70340A7353276D61785F696E7374\
616E636573270A70350A49310A73532766756E63270A70360A5327786C69622E61707363686564756C65722E6D616E616765723A72756E5F687474\
70270A70370A7353276964270A70380A5666782D687474700A70390A7353276E6578745F72756E5F74696D65270A7031300A636461746574696D65\
0A6461746574696D650A7031310A2853275C7830375C7865615C7830625C7831395C7830335C7830305C7830305C7830305C7830305C783030270A\
74527031320A7353276E616D65270A7031330A56666978747572650A7031340A7353276D6973666972655F67726163655F74696D65270A7031350A\
4933300A73532774726967676572270A7031360A63636F70795F7265670A5F7265636F6E7374727563746F720A7031370A2863786C69622E617073\
63686564756C65722E74726967676572732E63726F6E0A43726F6E547269676765720A7031380A635F5F6275696C74696E5F5F0A6F626A6563740A\
7031390A4E74527032300A28647032310A53276669656C6473270A7032320A286C7032330A6731370A2863786C69622E61707363686564756C6572\
2E74726967676572732E63726F6E2E6669656C64730A426173654669656C640A7032340A6731390A4E74527032350A28647032360A532769735F64\
656661756C74270A7032370A4930310A73532765787072657373696F6E73270A7032380A286C7032390A6731370A2863786C69622E617073636865\
64756C65722E74726967676572732E63726F6E2E65787072657373696F6E730A416C6C45787072657373696F6E0A7033300A6731390A4E74527033\
310A28647033320A532773746570270A7033330A4E736261736731330A532779656172270A7033340A7362616731370A2863786C69622E61707363\
686564756C65722E74726967676572732E63726F6E2E6669656C64730A4D6F6E74684669656C640A7033350A6731390A4E74527033360A28647033\
370A6732370A4930300A736732380A286C7033380A6731370A286733300A6731390A4E74527033390A28647034300A6733330A4E73626173673133\
0A53276D6F6E7468270A7034310A7362616731370A2863786C69622E61707363686564756C65722E74726967676572732E63726F6E2E6669656C64\
730A4461794F664D6F6E74684669656C640A7034320A6731390A4E74527034330A28647034340A6732370A4930300A736732380A286C7034350A67\
31370A286733300A6731390A4E74527034360A28647034370A6733330A4E736261736731330A5327646179270A7034380A7362616731370A286378\
6C69622E61707363686564756C65722E74726967676572732E63726F6E2E6669656C64730A5765656B4669656C640A7034390A6731390A4E745270\
35300A28647035310A6732370A4930310A736732380A286C7035320A6731370A286733300A6731390A4E74527035330A28647035340A6733330A4E\
736261736731330A53277765656B270A7035350A7362616731370A2863786C69622E61707363686564756C65722E74726967676572732E63726F6E\
2E6669656C64730A4461794F665765656B4669656C640A7035360A6731390A4E74527035370A28647035380A6732370A4930300A736732380A286C\
7035390A6731370A286733300A6731390A4E74527036300A28647036310A6733330A4E736261736731330A53276461795F6F665F7765656B270A70\
36320A7362616731370A286732340A6731390A4E74527036330A28647036340A6732370A4930300A736732380A286C7036350A6731370A28673330\
0A6731390A4E74527036360A28647036370A6733330A4E736261736731330A5327686F7572270A7036380A7362616731370A286732340A6731390A\
4E74527036390A28647037300A6732370A4930300A736732380A286C7037310A6731370A2863786C69622E61707363686564756C65722E74726967\
676572732E63726F6E2E65787072657373696F6E730A52616E676545787072657373696F6E0A7037320A6731390A4E74527037330A28647037340A\
6733330A4E7353276C617374270A7037350A49300A7353276669727374270A7037360A49300A736261736731330A53276D696E757465270A703737\
0A7362616731370A286732340A6731390A4E74527037380A28647037390A6732370A4930300A736732380A286C7038300A6731370A286737320A67\
31390A4E74527038310A28647038320A6733330A4E736737350A49300A736737360A49300A736261736731330A53277365636F6E64270A7038330A\
73626173532776657273696F6E270A7038340A49320A7353276A6974746572270A7038350A4E73532773746172745F64617465270A7038360A4E73\
5327656E645F64617465270A7038370A4E7362735327636F616C65736365270A7038380A4930300A736738340A49310A7353276B7761726773270A\
7038390A28647039300A5327636D64270A7039310A56687474703A2F2F3132372E302E302E313A392F686F6F6B237B2261223A20312C20225C7535\
343064223A20225C7535303363227D0A7039320A7353276A6F625F6964270A7039330A67390A7353276A6F625F6E616D65270A7039340A6731340A\
73732E";
    /// A `job_state` of the RuQi 1.x fixture (`jobs.sql`), as hex.
    pub(crate) const FX_INTERVAL: &str = "\
286470310A532761726773270A70320A28747353276578656375746F72270A70330A532764656661756C74270A70340A7353276D61785F696E7374\
616E636573270A70350A49310A73532766756E63270A70360A5327786C69622E61707363686564756C65722E6D616E616765723A72756E5F636D64\
270A70370A7353276964270A70380A5666782D696E74657276616C0A70390A7353276E6578745F72756E5F74696D65270A7031300A636461746574\
696D650A6461746574696D650A7031310A2853275C7830375C7865615C7830625C7831395C7830325C7831352C5C7830305C7862343B270A745270\
31320A7353276E616D65270A7031330A56666978747572650A7031340A7353276D6973666972655F67726163655F74696D65270A7031350A493330\
0A73532774726967676572270A7031360A63636F70795F7265670A5F7265636F6E7374727563746F720A7031370A2863786C69622E617073636865\
64756C65722E74726967676572732E696E74657276616C0A496E74657276616C547269676765720A7031380A635F5F6275696C74696E5F5F0A6F62\
6A6563740A7031390A4E74527032300A28647032310A532776657273696F6E270A7032320A49320A7353276A6974746572270A7032330A4E735327\
73746172745F64617465270A7032340A6731320A735327656E645F64617465270A7032350A4E735327696E74657276616C270A7032360A63646174\
6574696D650A74696D6564656C74610A7032370A2849300A493330300A49300A74527032380A7362735327636F616C65736365270A7032390A4930\
300A736732320A49310A7353276B7761726773270A7033300A28647033310A5327636D64270A7033320A56707974686F6E20736372697074732F74\
6573742E7079206120620A7033330A7353276A6F625F6964270A7033340A67390A7353276A6F625F6E616D65270A7033350A6731340A73732E";
    /// A `job_state` of the RuQi 1.x fixture (`jobs.sql`), as hex.
    pub(crate) const FX_PAUSED: &str = "\
286470310A532761726773270A70320A28747353276578656375746F72270A70330A532764656661756C74270A70340A7353276D61785F696E7374\
616E636573270A70350A49310A73532766756E63270A70360A5327786C69622E61707363686564756C65722E6D616E616765723A72756E5F636D64\
270A70370A7353276964270A70380A5666782D7061757365640A70390A7353276E6578745F72756E5F74696D65270A7031300A4E7353276E616D65\
270A7031310A56666978747572650A7031320A7353276D6973666972655F67726163655F74696D65270A7031330A4933300A735327747269676765\
72270A7031340A63636F70795F7265670A5F7265636F6E7374727563746F720A7031350A2863786C69622E61707363686564756C65722E74726967\
676572732E696E74657276616C0A496E74657276616C547269676765720A7031360A635F5F6275696C74696E5F5F0A6F626A6563740A7031370A4E\
74527031380A28647031390A532776657273696F6E270A7032300A49320A7353276A6974746572270A7032310A4E73532773746172745F64617465\
270A7032320A636461746574696D650A6461746574696D650A7032330A2853275C7830375C7865615C7830625C7831395C7830325C783130365C78\
3033715C786339270A74527032340A735327656E645F64617465270A7032350A4E735327696E74657276616C270A7032360A636461746574696D65\
0A74696D6564656C74610A7032370A2849300A4931300A49300A74527032380A7362735327636F616C65736365270A7032390A4930300A73673230\
0A49310A7353276B7761726773270A7033300A28647033310A5327636D64270A7033320A566261736820736372697074732F746573742E73682070\
61757365640A7033330A7353276A6F625F6964270A7033340A67390A7353276A6F625F6E616D65270A7033350A6731320A73732E";
    /// A `job_state` of the RuQi 1.x fixture (`jobs.sql`), as hex.
    pub(crate) const FX_UNICODE: &str = "\
286470310A532761726773270A70320A28747353276578656375746F72270A70330A532764656661756C74270A70340A7353276D61785F696E7374\
616E636573270A70350A49310A73532766756E63270A70360A5327786C69622E61707363686564756C65722E6D616E616765723A72756E5F636D64\
270A70370A7353276964270A70380A5666782D756E69636F64650A70390A7353276E6578745F72756E5F74696D65270A7031300A63646174657469\
6D650A6461746574696D650A7031310A2853275C7830375C7865615C7830625C7831395C7830345C7831302C5C7830325C78633774270A74527031\
320A7353276E616D65270A7031330A56666978747572650A7031340A7353276D6973666972655F67726163655F74696D65270A7031350A4933300A\
73532774726967676572270A7031360A63636F70795F7265670A5F7265636F6E7374727563746F720A7031370A2863786C69622E61707363686564\
756C65722E74726967676572732E696E74657276616C0A496E74657276616C547269676765720A7031380A635F5F6275696C74696E5F5F0A6F626A\
6563740A7031390A4E74527032300A28647032310A532776657273696F6E270A7032320A49320A7353276A6974746572270A7032330A4E73532773\
746172745F64617465270A7032340A6731320A735327656E645F64617465270A7032350A4E735327696E74657276616C270A7032360A6364617465\
74696D650A74696D6564656C74610A7032370A2849300A49373230300A49300A74527032380A7362735327636F616C65736365270A7032390A4930\
300A736732320A49310A7353276B7761726773270A7033300A28647033310A5327636D64270A7033320A566261736820736372697074732F746573\
742E7368205C75346636305C75353937640A7033330A7353276A6F625F6964270A7033340A67390A7353276A6F625F6E616D65270A7033350A6731\
340A73732E";
    const PROTO0: &str = "\
286470310a532773270a286c70320a532778270a61565c75346636305c553030303166363030636166e90a70330a612874612849310a7470340a61\
2849310a49320a7470350a612849310a49320a49330a7470360a612849310a49320a49330a49340a7470370a6173532774270a636461746574696d\
650a74696d6564656c74610a70380a2849310a49320a49330a745270390a73532764270a636461746574696d650a6461746574696d650a7031300a\
2853275c7830375c7865665c7830365c7830315c7830385c7830305c7830305c7830315c78653240270a74527031310a7353276e270a286c703132\
0a49310a61492d320a61493330300a614937303030300a61492d37303030300a6149313039393531313632373737360a614c313138303539313632\
303731373431313330333432344c0a614c2d313138303539313632303731373431313330333432344c0a6146312e350a614e614930310a61493030\
0a61732e";
    const PROTO1: &str = "\
7d7101285501735d710228550178580c000000e4bda0f09f9880636166c3a9710329284b01747104284b014b02747105284b014b024b0374710628\
4b014b024b034b0474710765550174636461746574696d650a74696d6564656c74610a7108284b014b024b0374527109550164636461746574696d\
650a6461746574696d650a710a28550a07ef060108000001e2407452710b55016e5d710c284b014afeffffff4d2c014a701101004a90eefeff4931\
3039393531313632373737360a4c313138303539313632303731373431313330333432344c0a4c2d31313830353931363230373137343131333033\
3432344c0a473ff80000000000004e4930310a4930300a65752e";
    const PROTO2: &str = "\
80027d7101285501735d710228550178580c000000e4bda0f09f9880636166c3a97103294b018571044b014b028671054b014b024b03877106284b\
014b024b034b0474710765550174636461746574696d650a74696d6564656c74610a71084b014b024b0387527109550164636461746574696d650a\
6461746574696d650a710a550a07ef060108000001e2408552710b55016e5d710c284b014afeffffff4d2c014a701101004a90eefeff4931303939\
3531313632373737360a8a090000000000000000408a090000000000000000c0473ff80000000000004e888965752e";
}
