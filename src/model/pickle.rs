//! A small, safe interpreter for the subset of Python's pickle format that `torch.save` writes
//! (protocols 2 to 5, binary opcodes only).
//!
//! Nothing is ever executed. Class and function references (`GLOBAL`, `STACK_GLOBAL`) become
//! names, and "calling" them (`REDUCE`, `NEWOBJ`) builds inert values: a fixed set of torch and
//! `collections` callables is interpreted into tensors, storages and dicts, and every other class
//! becomes a [`Value::Object`] stub that only records its arguments and state. This is how the
//! trainer's `lib.train.admin.settings.Settings` object is tolerated without the trainer's code.
//!
//! Hostile input is expected: every read, stack, mark and memo access is checked, lengths are
//! checked against the bytes actually left before anything is allocated, nesting depth is
//! bounded (so building, cloning and dropping values cannot overflow the Rust stack), and the
//! total memory copied by memo fetches and DUP is bounded in bytes (so a few hundred bytes cannot
//! expand into gigabytes by repeatedly duplicating a memoised list or a long string).

use std::collections::HashMap;

/// Deepest nesting of containers accepted. Real checkpoints nest fewer than 10 levels.
const MAX_DEPTH: u32 = 128;

/// Budget of bytes copied by memo fetches and DUP: a constant plus this many bytes per input
/// byte. A copy costs [`NODE_COST_BYTES`] per value plus the bytes of every string and bytes
/// object in it, so fetching one long string a thousand times is charged a thousand times its
/// length. Honest `torch.save` pickles copy short tuples and class references (well under one
/// byte per input byte); exponential duplication or a repeated big string runs into it quickly.
const CLONE_BYTES_PER_INPUT_BYTE: u64 = 16;
const CLONE_BYTES_BASE: u64 = 64 << 20;

/// What one value costs to copy besides its string/bytes payload: about the size of a `Value`
/// and its allocation overhead.
const NODE_COST_BYTES: u64 = 64;

/// Highest pickle protocol understood (Python 3.8+ writes at most 5).
const MAX_PROTOCOL: u8 = 5;

/// Why a pickle could not be interpreted. `offset_bytes` is the position of the opcode.
#[derive(Debug, thiserror::Error)]
pub enum PickleError {
    #[error("pickle ends early at byte {offset_bytes}: {needed_bytes} more bytes needed")]
    Truncated { offset_bytes: usize, needed_bytes: u64 },
    #[error("pickle ends at byte {offset_bytes} without a STOP opcode")]
    NoStop { offset_bytes: usize },
    #[error("unsupported pickle opcode 0x{opcode:02x} ({name}) at byte {offset_bytes}")]
    UnsupportedOpcode { opcode: u8, name: &'static str, offset_bytes: usize },
    #[error("pickle stack underflow in {opcode} at byte {offset_bytes}")]
    StackUnderflow { opcode: &'static str, offset_bytes: usize },
    #[error("pickle {opcode} at byte {offset_bytes} needs a MARK, but none is open")]
    NoMark { opcode: &'static str, offset_bytes: usize },
    #[error("pickle memo key {key} used at byte {offset_bytes} was never stored")]
    MissingMemo { key: u32, offset_bytes: usize },
    #[error("invalid pickle at byte {offset_bytes} ({opcode}): {reason}")]
    Invalid { opcode: &'static str, offset_bytes: usize, reason: String },
    #[error("pickle at byte {offset_bytes} exceeds a safety limit: {reason}")]
    Limit { offset_bytes: usize, reason: String },
}

type Result<T> = std::result::Result<T, PickleError>;

/// A storage referenced through the persistent id `('storage', torch.<Type>Storage, key,
/// location, numel)`; its bytes live in the zip entry `<prefix>/data/<key>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageRef {
    /// Class name without the module, e.g. `FloatStorage`.
    pub storage_type: String,
    pub key: String,
    /// Device the tensor was saved from, e.g. `cpu` or `cuda:0` (informational only).
    pub location: String,
    /// Number of elements of `storage_type`'s dtype.
    pub numel: u64,
}

/// A tensor as `torch._utils._rebuild_tensor_v2` would build it: a strided view into a storage.
/// Sizes, strides and offset are in elements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorRef {
    pub storage: StorageRef,
    pub storage_offset: u64,
    pub size: Vec<u64>,
    pub stride: Vec<u64>,
    pub requires_grad: bool,
    /// Wrapped by `torch._utils._rebuild_parameter` (an `nn.Parameter`).
    pub is_parameter: bool,
}

/// An instance of a class this interpreter does not know, kept as an inert record.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub module: String,
    pub name: String,
    /// Positional arguments of the `REDUCE`/`NEWOBJ` call that created it.
    pub args: Vec<Value>,
    /// Keyword arguments of a `NEWOBJ_EX` call.
    pub kwargs: Vec<(Value, Value)>,
    /// Argument of `BUILD` (usually the instance `__dict__`).
    pub state: Option<Value>,
    /// Items added by `APPEND`/`APPENDS` (list subclasses).
    pub list_items: Vec<Value>,
    /// Items added by `SETITEM`/`SETITEMS` (dict subclasses such as `defaultdict`).
    pub dict_items: Vec<(Value, Value)>,
}

/// A value produced by the interpreter.
///
/// Containers have value semantics: a value fetched from the memo is a copy of what was stored,
/// so mutations after memoisation are not seen through the copy. `torch.save` output never
/// relies on that (tensors, storages and tuples are immutable once memoised).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    Set(Vec<Value>),
    /// Insertion-ordered; `OrderedDict` is also a `Dict`. Duplicate keys are kept in order of
    /// arrival (Python would let the last one win; consumers apply that rule).
    Dict(Vec<(Value, Value)>),
    /// A class or function reference that has not been called.
    Global {
        module: String,
        name: String,
    },
    Object(Box<Object>),
    Storage(StorageRef),
    Tensor(Box<TensorRef>),
}

impl Value {
    /// Short type name for error messages.
    pub fn type_name(&self) -> String {
        match self {
            Value::None => "None".into(),
            Value::Bool(_) => "bool".into(),
            Value::Int(_) => "int".into(),
            Value::Float(_) => "float".into(),
            Value::Str(_) => "str".into(),
            Value::Bytes(_) => "bytes".into(),
            Value::List(_) => "list".into(),
            Value::Tuple(_) => "tuple".into(),
            Value::Set(_) => "set".into(),
            Value::Dict(_) => "dict".into(),
            Value::Global { module, name } => format!("reference to {module}.{name}"),
            Value::Object(o) => format!("{}.{} object", o.module, o.name),
            Value::Storage(_) => "storage".into(),
            Value::Tensor(_) => "tensor".into(),
        }
    }
}

/// Interprets a whole pickle and returns the value left by `STOP`.
pub fn load(data: &[u8]) -> Result<Value> {
    let budget = CLONE_BYTES_BASE.saturating_add(CLONE_BYTES_PER_INPUT_BYTE.saturating_mul(data.len() as u64));
    Machine {
        data,
        pos: 0,
        op_pos: 0,
        op: "",
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        clone_budget_bytes: budget,
    }
    .run()
}

/// A value on the stack or in the memo, with the bookkeeping that keeps copies and drops bounded.
#[derive(Clone)]
struct Item {
    value: Value,
    /// Container nesting depth (scalars 0).
    depth: u32,
    /// What cloning the tree costs, in bytes: [`NODE_COST_BYTES`] per value plus the payload of
    /// every string and bytes object.
    cost_bytes: u64,
}

impl Item {
    fn leaf(value: Value) -> Item {
        let payload = match &value {
            Value::Str(s) => s.len(),
            Value::Bytes(b) => b.len(),
            Value::Global { module, name } => module.len() + name.len(),
            _ => 0,
        };
        Item { value, depth: 0, cost_bytes: NODE_COST_BYTES.saturating_add(payload as u64) }
    }

    fn empty_container(value: Value) -> Item {
        Item { value, depth: 1, cost_bytes: NODE_COST_BYTES }
    }
}

/// Splits items into their values and the depth/copy cost of a container holding them.
fn gather(items: Vec<Item>) -> (Vec<Value>, u32, u64) {
    let mut depth = 0;
    let mut cost_bytes: u64 = NODE_COST_BYTES;
    let mut values = Vec::with_capacity(items.len());
    for item in items {
        depth = depth.max(item.depth);
        cost_bytes = cost_bytes.saturating_add(item.cost_bytes);
        values.push(item.value);
    }
    (values, depth.saturating_add(1), cost_bytes)
}

fn pairs(values: Vec<Value>) -> Option<Vec<(Value, Value)>> {
    if !values.len().is_multiple_of(2) {
        return None;
    }
    let mut out = Vec::with_capacity(values.len() / 2);
    let mut it = values.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Some(out)
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    /// Position and name of the opcode being executed, for error messages.
    op_pos: usize,
    op: &'static str,
    stack: Vec<Item>,
    /// Stack lengths at each open MARK. Python gives each MARK a fresh stack, so nothing below
    /// the innermost mark may be popped.
    marks: Vec<usize>,
    memo: HashMap<u32, Item>,
    clone_budget_bytes: u64,
}

impl<'a> Machine<'a> {
    fn run(mut self) -> Result<Value> {
        loop {
            self.op_pos = self.pos;
            let Some(&opcode) = self.data.get(self.pos) else {
                return Err(PickleError::NoStop { offset_bytes: self.pos });
            };
            self.pos += 1;
            self.op = opcode_name(opcode);
            if opcode == b'.' {
                return Ok(self.pop()?.value);
            }
            self.step(opcode)?;
        }
    }

    // ---- errors -------------------------------------------------------------------------------

    fn invalid(&self, reason: impl Into<String>) -> PickleError {
        PickleError::Invalid { opcode: self.op, offset_bytes: self.op_pos, reason: reason.into() }
    }

    fn limit(&self, reason: impl Into<String>) -> PickleError {
        PickleError::Limit { offset_bytes: self.op_pos, reason: reason.into() }
    }

    // ---- input --------------------------------------------------------------------------------

    /// The next `len` bytes; `len` comes from the input, so it is checked against what is left
    /// before anything is sliced or allocated.
    fn bytes(&mut self, len: u64) -> Result<&'a [u8]> {
        let left = self.data.len().saturating_sub(self.pos) as u64;
        let truncated = PickleError::Truncated { offset_bytes: self.op_pos, needed_bytes: len.saturating_sub(left) };
        if len > left {
            return Err(truncated);
        }
        let end = self.pos + len as usize;
        let out = self.data.get(self.pos..end).ok_or(truncated)?;
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let bytes = self.bytes(N as u64)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A length field that the format declares signed (negative is an error).
    fn len_i32(&mut self) -> Result<u64> {
        let len = self.i32()?;
        u64::try_from(len).map_err(|_| self.invalid(format!("negative length {len}")))
    }

    /// A newline-terminated name (GLOBAL's module and qualified name).
    fn line(&mut self) -> Result<String> {
        let rest = self.data.get(self.pos..).unwrap_or_default();
        let Some(len) = rest.iter().position(|&b| b == b'\n') else {
            return Err(PickleError::Truncated { offset_bytes: self.op_pos, needed_bytes: 1 });
        };
        let line = self.bytes(len as u64 + 1)?;
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        match std::str::from_utf8(text) {
            Ok(t) => Ok(t.to_string()),
            Err(_) => Err(self.invalid("name is not UTF-8")),
        }
    }

    fn utf8(&mut self, len: u64) -> Result<Value> {
        let bytes = self.bytes(len)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(Value::Str(s.to_string())),
            Err(e) => Err(self.invalid(format!("string is not UTF-8: {e}"))),
        }
    }

    fn raw_bytes(&mut self, len: u64) -> Result<Value> {
        Ok(Value::Bytes(self.bytes(len)?.to_vec()))
    }

    /// LONG1/LONG4 payload: little-endian two's complement; only values fitting i64 are used by
    /// torch checkpoints.
    fn long(&mut self, len: u64) -> Result<Value> {
        if len > 8 {
            return Err(self.invalid(format!("{len}-byte integer does not fit in 64 bits")));
        }
        let bytes = self.bytes(len)?;
        let Some(&last) = bytes.last() else {
            return Ok(Value::Int(0));
        };
        let mut buf = if last & 0x80 != 0 { [0xffu8; 8] } else { [0u8; 8] };
        buf[..bytes.len()].copy_from_slice(bytes);
        Ok(Value::Int(i64::from_le_bytes(buf)))
    }

    // ---- stack, marks, memo -------------------------------------------------------------------

    fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn underflow(&self) -> PickleError {
        PickleError::StackUnderflow { opcode: self.op, offset_bytes: self.op_pos }
    }

    fn push(&mut self, item: Item) -> Result<()> {
        if item.depth > MAX_DEPTH {
            return Err(self.limit(format!("containers nested deeper than {MAX_DEPTH}")));
        }
        self.stack.push(item);
        Ok(())
    }

    fn push_leaf(&mut self, value: Value) -> Result<()> {
        self.push(Item::leaf(value))
    }

    fn pop(&mut self) -> Result<Item> {
        if self.stack.len() <= self.floor() {
            return Err(self.underflow());
        }
        self.stack.pop().ok_or_else(|| self.underflow())
    }

    fn pop_n(&mut self, n: usize) -> Result<Vec<Item>> {
        let floor = self.floor();
        if self.stack.len() < floor + n {
            return Err(self.underflow());
        }
        Ok(self.stack.split_off(self.stack.len() - n))
    }

    fn pop_mark(&mut self) -> Result<Vec<Item>> {
        let Some(mark) = self.marks.pop() else {
            return Err(PickleError::NoMark { opcode: self.op, offset_bytes: self.op_pos });
        };
        Ok(self.stack.split_off(mark.min(self.stack.len())))
    }

    fn top_mut(&mut self) -> Result<&mut Item> {
        if self.stack.len() <= self.floor() {
            return Err(self.underflow());
        }
        let err = self.underflow();
        self.stack.last_mut().ok_or(err)
    }

    /// Charges a copy costing `bytes` to the clone budget.
    fn spend_clone(&mut self, bytes: u64) -> Result<()> {
        match self.clone_budget_bytes.checked_sub(bytes) {
            Some(left) => {
                self.clone_budget_bytes = left;
                Ok(())
            }
            None => Err(self.limit(format!(
                "more than {} bytes copied through the memo for a {}-byte pickle (duplication bomb?)",
                CLONE_BYTES_BASE.saturating_add(CLONE_BYTES_PER_INPUT_BYTE.saturating_mul(self.data.len() as u64)),
                self.data.len()
            ))),
        }
    }

    /// A copy of the top of the stack (DUP, memo stores).
    fn clone_top(&mut self) -> Result<Item> {
        let cost_bytes = self.top_mut()?.cost_bytes;
        self.spend_clone(cost_bytes)?;
        Ok(self.top_mut()?.clone())
    }

    fn memo_put(&mut self, key: u32) -> Result<()> {
        let item = self.clone_top()?;
        self.memo.insert(key, item);
        Ok(())
    }

    fn memo_get(&mut self, key: u32) -> Result<()> {
        let Some(cost_bytes) = self.memo.get(&key).map(|item| item.cost_bytes) else {
            return Err(PickleError::MissingMemo { key, offset_bytes: self.op_pos });
        };
        self.spend_clone(cost_bytes)?;
        let item = self.memo.get(&key).cloned().ok_or(PickleError::MissingMemo { key, offset_bytes: self.op_pos })?;
        self.push(item)
    }

    /// Replaces the top item after adding `children` to it (APPEND, SETITEM, BUILD ...).
    fn grow_top(&mut self, children_depth: u32, children_cost_bytes: u64) -> Result<()> {
        let top = self.top_mut()?;
        top.depth = top.depth.max(children_depth.saturating_add(1));
        top.cost_bytes = top.cost_bytes.saturating_add(children_cost_bytes);
        if top.depth > MAX_DEPTH {
            return Err(self.limit(format!("containers nested deeper than {MAX_DEPTH}")));
        }
        Ok(())
    }

    fn pop_str(&mut self, what: &str) -> Result<String> {
        match self.pop()?.value {
            Value::Str(s) => Ok(s),
            other => Err(self.invalid(format!("{what} must be a str, found {}", other.type_name()))),
        }
    }

    // ---- opcodes ------------------------------------------------------------------------------

    fn step(&mut self, opcode: u8) -> Result<()> {
        match opcode {
            // PROTO
            0x80 => {
                let version = self.u8()?;
                if version > MAX_PROTOCOL {
                    return Err(self.invalid(format!("unsupported pickle protocol {version}")));
                }
            }
            // FRAME: only a buffering hint for readers; the payload follows inline.
            0x95 => {
                self.u64()?;
            }
            b'(' => self.marks.push(self.stack.len()),
            b'0' => {
                if self.stack.len() > self.floor() {
                    self.pop()?;
                } else {
                    self.pop_mark()?;
                }
            }
            b'1' => {
                self.pop_mark()?;
            }
            b'2' => {
                let copy = self.clone_top()?;
                self.push(copy)?;
            }
            b'}' => self.push(Item::empty_container(Value::Dict(Vec::new())))?,
            b']' => self.push(Item::empty_container(Value::List(Vec::new())))?,
            b')' => self.push(Item::empty_container(Value::Tuple(Vec::new())))?,
            0x8f => self.push(Item::empty_container(Value::Set(Vec::new())))?,
            b't' => {
                let items = self.pop_mark()?;
                self.push_container(items, Value::Tuple)?;
            }
            0x85..=0x87 => {
                let items = self.pop_n(usize::from(opcode - 0x84))?;
                self.push_container(items, Value::Tuple)?;
            }
            b'l' => {
                let items = self.pop_mark()?;
                self.push_container(items, Value::List)?;
            }
            0x91 => {
                let items = self.pop_mark()?;
                self.push_container(items, Value::Set)?;
            }
            b'd' => {
                let items = self.pop_mark()?;
                let (values, depth, cost_bytes) = gather(items);
                let pairs = pairs(values).ok_or_else(|| self.invalid("odd number of dict items"))?;
                self.push(Item { value: Value::Dict(pairs), depth, cost_bytes })?;
            }
            // Strings and bytes
            b'X' => {
                let len = self.u32()?;
                let v = self.utf8(u64::from(len))?;
                self.push_leaf(v)?;
            }
            0x8c => {
                let len = self.u8()?;
                let v = self.utf8(u64::from(len))?;
                self.push_leaf(v)?;
            }
            0x8d => {
                let len = self.u64()?;
                let v = self.utf8(len)?;
                self.push_leaf(v)?;
            }
            // SHORT_BINSTRING / BINSTRING: Python 2 `str`, decoded like Python 3 does (text).
            b'U' => {
                let len = self.u8()?;
                let v = self.utf8(u64::from(len))?;
                self.push_leaf(v)?;
            }
            b'T' => {
                let len = self.len_i32()?;
                let v = self.utf8(len)?;
                self.push_leaf(v)?;
            }
            b'B' => {
                let len = self.u32()?;
                let v = self.raw_bytes(u64::from(len))?;
                self.push_leaf(v)?;
            }
            b'C' => {
                let len = self.u8()?;
                let v = self.raw_bytes(u64::from(len))?;
                self.push_leaf(v)?;
            }
            0x8e | 0x96 => {
                let len = self.u64()?;
                let v = self.raw_bytes(len)?;
                self.push_leaf(v)?;
            }
            // Numbers and constants
            b'J' => {
                let v = self.i32()?;
                self.push_leaf(Value::Int(i64::from(v)))?;
            }
            b'K' => {
                let v = self.u8()?;
                self.push_leaf(Value::Int(i64::from(v)))?;
            }
            b'M' => {
                let v = self.u16()?;
                self.push_leaf(Value::Int(i64::from(v)))?;
            }
            0x8a => {
                let len = self.u8()?;
                let v = self.long(u64::from(len))?;
                self.push_leaf(v)?;
            }
            0x8b => {
                let len = self.len_i32()?;
                let v = self.long(len)?;
                self.push_leaf(v)?;
            }
            // BINFLOAT is big-endian, unlike every other binary field.
            b'G' => {
                let v = f64::from_be_bytes(self.array()?);
                self.push_leaf(Value::Float(v))?;
            }
            0x88 => self.push_leaf(Value::Bool(true))?,
            0x89 => self.push_leaf(Value::Bool(false))?,
            b'N' => self.push_leaf(Value::None)?,
            // Memo
            b'q' => {
                let key = self.u8()?;
                self.memo_put(u32::from(key))?;
            }
            b'r' => {
                let key = self.u32()?;
                self.memo_put(key)?;
            }
            0x94 => {
                let key = u32::try_from(self.memo.len()).map_err(|_| self.limit("memo has more than 2^32 entries"))?;
                self.memo_put(key)?;
            }
            b'h' => {
                let key = self.u8()?;
                self.memo_get(u32::from(key))?;
            }
            b'j' => {
                let key = self.u32()?;
                self.memo_get(key)?;
            }
            // Class/function references and calls
            b'c' => {
                let module = self.line()?;
                let name = self.line()?;
                self.push_leaf(Value::Global { module, name })?;
            }
            0x93 => {
                let name = self.pop_str("STACK_GLOBAL name")?;
                let module = self.pop_str("STACK_GLOBAL module")?;
                self.push_leaf(Value::Global { module, name })?;
            }
            b'R' => {
                let args = self.pop()?;
                let callable = self.pop()?;
                let item = self.call(callable, args)?;
                self.push(item)?;
            }
            0x81 => {
                let args = self.pop()?;
                let class = self.pop()?;
                let item = self.call(class, args)?;
                self.push(item)?;
            }
            0x92 => {
                let kwargs = self.pop()?;
                let args = self.pop()?;
                let class = self.pop()?;
                let mut item = self.call(class, args)?;
                match (&mut item.value, kwargs.value) {
                    (Value::Object(obj), Value::Dict(kw)) => {
                        obj.kwargs = kw;
                        item.depth = item.depth.max(kwargs.depth.saturating_add(1));
                        item.cost_bytes = item.cost_bytes.saturating_add(kwargs.cost_bytes);
                    }
                    (Value::Object(_), other) => {
                        return Err(
                            self.invalid(format!("keyword arguments must be a dict, found {}", other.type_name()))
                        )
                    }
                    _ => return Err(self.invalid("keyword arguments for a built-in type")),
                }
                self.push(item)?;
            }
            b'b' => {
                let state = self.pop()?;
                let (depth, cost_bytes) = (state.depth, state.cost_bytes);
                let top = self.top_mut()?;
                match &mut top.value {
                    Value::Object(obj) => obj.state = Some(state.value),
                    // Attributes of dict/list subclasses, e.g. the `_metadata` that
                    // `Module.state_dict()` attaches to its OrderedDict: not needed here.
                    Value::Dict(_) | Value::List(_) | Value::Set(_) => return Ok(()),
                    other => {
                        let found = other.type_name();
                        return Err(self.invalid(format!("BUILD on a {found}")));
                    }
                }
                self.grow_top(depth, cost_bytes)?;
            }
            // Container filling
            b's' => {
                let items = self.pop_n(2)?;
                self.set_items(items)?;
            }
            b'u' => {
                let items = self.pop_mark()?;
                self.set_items(items)?;
            }
            b'a' => {
                let item = self.pop()?;
                self.append_items(vec![item])?;
            }
            b'e' => {
                let items = self.pop_mark()?;
                self.append_items(items)?;
            }
            0x90 => {
                let items = self.pop_mark()?;
                let (values, depth, cost_bytes) = gather(items);
                match &mut self.top_mut()?.value {
                    Value::Set(set) => set.extend(values),
                    other => {
                        let found = other.type_name();
                        return Err(self.invalid(format!("ADDITEMS on a {found}")));
                    }
                }
                self.grow_top(depth - 1, cost_bytes - NODE_COST_BYTES)?;
            }
            b'Q' => {
                let pid = self.pop()?;
                let storage = self.persistent_load(pid.value)?;
                self.push_leaf(Value::Storage(storage))?;
            }
            _ => return Err(PickleError::UnsupportedOpcode { opcode, name: self.op, offset_bytes: self.op_pos }),
        }
        Ok(())
    }

    fn push_container(&mut self, items: Vec<Item>, make: fn(Vec<Value>) -> Value) -> Result<()> {
        let (values, depth, cost_bytes) = gather(items);
        self.push(Item { value: make(values), depth, cost_bytes })
    }

    fn set_items(&mut self, items: Vec<Item>) -> Result<()> {
        let (values, depth, cost_bytes) = gather(items);
        let new = pairs(values).ok_or_else(|| self.invalid("odd number of dict items"))?;
        match &mut self.top_mut()?.value {
            Value::Dict(dict) => dict.extend(new),
            Value::Object(obj) => obj.dict_items.extend(new),
            other => {
                let found = other.type_name();
                return Err(self.invalid(format!("setting items on a {found}")));
            }
        }
        // `gather` counted one container level/node that is not there.
        self.grow_top(depth - 1, cost_bytes - NODE_COST_BYTES)
    }

    fn append_items(&mut self, items: Vec<Item>) -> Result<()> {
        let (values, depth, cost_bytes) = gather(items);
        match &mut self.top_mut()?.value {
            Value::List(list) => list.extend(values),
            Value::Object(obj) => obj.list_items.extend(values),
            other => {
                let found = other.type_name();
                return Err(self.invalid(format!("appending to a {found}")));
            }
        }
        self.grow_top(depth - 1, cost_bytes - NODE_COST_BYTES)
    }

    // ---- calls --------------------------------------------------------------------------------

    /// `callable(*args)` for REDUCE/NEWOBJ, without executing anything.
    fn call(&mut self, callable: Item, args: Item) -> Result<Item> {
        let Value::Global { module, name } = callable.value else {
            return Err(
                self.invalid(format!("can only call class/function references, not a {}", callable.value.type_name()))
            );
        };
        let Value::Tuple(arg_values) = args.value else {
            return Err(
                self.invalid(format!("arguments of {module}.{name} must be a tuple, found {}", args.value.type_name()))
            );
        };
        let depth = args.depth.max(1);
        let cost_bytes = args.cost_bytes.saturating_add(NODE_COST_BYTES);
        let value = self.call_known(&module, &name, arg_values)?;
        Ok(Item { value, depth, cost_bytes })
    }

    fn call_known(&self, module: &str, name: &str, args: Vec<Value>) -> Result<Value> {
        match (module, name) {
            ("collections", "OrderedDict") => self.ordered_dict(args),
            ("torch._utils", "_rebuild_tensor_v2") => {
                if !(6..=7).contains(&args.len()) {
                    return Err(self.bad_args(name, "6 or 7", args.len()));
                }
                self.rebuild_tensor(args)
            }
            ("torch._utils", "_rebuild_tensor") => {
                if args.len() != 4 {
                    return Err(self.bad_args(name, "4", args.len()));
                }
                self.rebuild_tensor(args)
            }
            ("torch._utils", "_rebuild_parameter") | ("torch._utils", "_rebuild_parameter_with_state") => {
                let expected = if name == "_rebuild_parameter" { 3 } else { 4 };
                if args.len() != expected {
                    return Err(self.bad_args(name, &expected.to_string(), args.len()));
                }
                let mut args = args.into_iter();
                let (Some(Value::Tensor(mut tensor)), Some(Value::Bool(requires_grad))) = (args.next(), args.next())
                else {
                    return Err(self.invalid(format!("{name} expects (tensor, bool, hooks)")));
                };
                tensor.requires_grad = requires_grad;
                tensor.is_parameter = true;
                Ok(Value::Tensor(tensor))
            }
            // Tensors carrying Python attributes: rebuild the plain tensor, drop the attributes.
            ("torch._tensor", "_rebuild_from_type_v2") => {
                let mut args = args.into_iter();
                let (Some(Value::Global { module: fm, name: fname }), _, Some(Value::Tuple(fargs))) =
                    (args.next(), args.next(), args.next())
                else {
                    return Err(self.invalid("_rebuild_from_type_v2 expects (func, type, args, state)"));
                };
                if fname == "_rebuild_from_type_v2" {
                    return Err(self.invalid("nested _rebuild_from_type_v2"));
                }
                self.call_known(&fm, &fname, fargs)
            }
            // Protocol 2 pickles `bytes` as `_codecs.encode(text, 'latin1')`.
            ("_codecs", "encode") => {
                if let [Value::Str(text), Value::Str(encoding)] = args.as_slice() {
                    if encoding == "latin1" || encoding == "latin-1" {
                        return text
                            .chars()
                            .map(|c| u8::try_from(u32::from(c)).ok())
                            .collect::<Option<Vec<u8>>>()
                            .map(Value::Bytes)
                            .ok_or_else(|| self.invalid("latin1 text above U+00FF"));
                    }
                }
                Ok(stub(module, name, args))
            }
            ("builtins" | "__builtin__", "set" | "frozenset") if args.len() <= 1 => match args.into_iter().next() {
                None => Ok(Value::Set(Vec::new())),
                Some(Value::List(v) | Value::Tuple(v) | Value::Set(v)) => Ok(Value::Set(v)),
                Some(other) => Ok(stub(module, name, vec![other])),
            },
            _ => Ok(stub(module, name, args)),
        }
    }

    fn bad_args(&self, name: &str, expected: &str, found: usize) -> PickleError {
        self.invalid(format!("{name} takes {expected} arguments, found {found}"))
    }

    fn ordered_dict(&self, args: Vec<Value>) -> Result<Value> {
        let mut args = args.into_iter();
        match (args.next(), args.next()) {
            (None, _) => Ok(Value::Dict(Vec::new())),
            (Some(Value::Dict(d)), None) => Ok(Value::Dict(d)),
            (Some(Value::List(items) | Value::Tuple(items)), None) => items
                .into_iter()
                .map(|pair| match pair {
                    Value::Tuple(kv) | Value::List(kv) if kv.len() == 2 => {
                        let mut kv = kv.into_iter();
                        match (kv.next(), kv.next()) {
                            (Some(k), Some(v)) => Ok((k, v)),
                            _ => Err(self.invalid("OrderedDict item is not a pair")),
                        }
                    }
                    _ => Err(self.invalid("OrderedDict item is not a pair")),
                })
                .collect::<Result<Vec<_>>>()
                .map(Value::Dict),
            _ => Err(self.invalid("unsupported OrderedDict arguments")),
        }
    }

    /// `(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])`;
    /// the legacy `_rebuild_tensor` passes only the first four.
    fn rebuild_tensor(&self, args: Vec<Value>) -> Result<Value> {
        let mut args = args.into_iter();
        let (Some(storage), Some(offset), Some(size), Some(stride)) =
            (args.next(), args.next(), args.next(), args.next())
        else {
            return Err(self.invalid("tensor rebuild needs storage, offset, size, stride"));
        };
        let requires_grad = match args.next() {
            None => false,
            Some(Value::Bool(b)) => b,
            Some(other) => {
                return Err(self.invalid(format!("requires_grad must be a bool, found {}", other.type_name())))
            }
        };
        let Value::Storage(storage) = storage else {
            return Err(
                self.invalid(format!("tensor storage must be a persistent storage, found {}", storage.type_name()))
            );
        };
        let storage_offset = self.non_negative(&offset, "storage offset")?;
        let size = self.int_tuple(size, "size")?;
        let stride = self.int_tuple(stride, "stride")?;
        if size.len() != stride.len() {
            return Err(self.invalid(format!("size has {} dims but stride has {}", size.len(), stride.len())));
        }
        Ok(Value::Tensor(Box::new(TensorRef {
            storage,
            storage_offset,
            size,
            stride,
            requires_grad,
            is_parameter: false,
        })))
    }

    fn non_negative(&self, v: &Value, what: &str) -> Result<u64> {
        match v {
            Value::Int(i) => u64::try_from(*i).map_err(|_| self.invalid(format!("negative {what} {i}"))),
            other => Err(self.invalid(format!("{what} must be an int, found {}", other.type_name()))),
        }
    }

    fn int_tuple(&self, v: Value, what: &str) -> Result<Vec<u64>> {
        match v {
            Value::Tuple(items) | Value::List(items) => items.iter().map(|i| self.non_negative(i, what)).collect(),
            other => Err(self.invalid(format!("{what} must be a tuple, found {}", other.type_name()))),
        }
    }

    /// torch's zip format: `('storage', torch.<Type>Storage, key, location, numel)`.
    fn persistent_load(&self, pid: Value) -> Result<StorageRef> {
        let Value::Tuple(fields) = pid else {
            return Err(self.invalid(format!("persistent id must be a tuple, found {}", pid.type_name())));
        };
        let mut fields = fields.into_iter();
        match (fields.next(), fields.next(), fields.next(), fields.next(), fields.next()) {
            (
                Some(Value::Str(tag)),
                Some(Value::Global { module, name: storage_type }),
                Some(Value::Str(key)),
                Some(Value::Str(location)),
                Some(numel),
            ) if tag == "storage" && module == "torch" && fields.next().is_none() => {
                let numel = self.non_negative(&numel, "storage numel")?;
                Ok(StorageRef { storage_type, key, location, numel })
            }
            _ => Err(self.invalid("persistent id is not ('storage', torch.<Type>Storage, key, location, numel)")),
        }
    }
}

fn stub(module: &str, name: &str, args: Vec<Value>) -> Value {
    Value::Object(Box::new(Object {
        module: module.to_string(),
        name: name.to_string(),
        args,
        kwargs: Vec::new(),
        state: None,
        list_items: Vec::new(),
        dict_items: Vec::new(),
    }))
}

fn opcode_name(opcode: u8) -> &'static str {
    match opcode {
        b'(' => "MARK",
        b'.' => "STOP",
        b'0' => "POP",
        b'1' => "POP_MARK",
        b'2' => "DUP",
        b'F' => "FLOAT",
        b'I' => "INT",
        b'J' => "BININT",
        b'K' => "BININT1",
        b'L' => "LONG",
        b'M' => "BININT2",
        b'N' => "NONE",
        b'P' => "PERSID",
        b'Q' => "BINPERSID",
        b'R' => "REDUCE",
        b'S' => "STRING",
        b'T' => "BINSTRING",
        b'U' => "SHORT_BINSTRING",
        b'V' => "UNICODE",
        b'X' => "BINUNICODE",
        b'a' => "APPEND",
        b'b' => "BUILD",
        b'c' => "GLOBAL",
        b'd' => "DICT",
        b'}' => "EMPTY_DICT",
        b'e' => "APPENDS",
        b'g' => "GET",
        b'h' => "BINGET",
        b'i' => "INST",
        b'j' => "LONG_BINGET",
        b'l' => "LIST",
        b']' => "EMPTY_LIST",
        b'o' => "OBJ",
        b'p' => "PUT",
        b'q' => "BINPUT",
        b'r' => "LONG_BINPUT",
        b's' => "SETITEM",
        b't' => "TUPLE",
        b')' => "EMPTY_TUPLE",
        b'u' => "SETITEMS",
        b'G' => "BINFLOAT",
        b'B' => "BINBYTES",
        b'C' => "SHORT_BINBYTES",
        0x80 => "PROTO",
        0x81 => "NEWOBJ",
        0x82 => "EXT1",
        0x83 => "EXT2",
        0x84 => "EXT4",
        0x85 => "TUPLE1",
        0x86 => "TUPLE2",
        0x87 => "TUPLE3",
        0x88 => "NEWTRUE",
        0x89 => "NEWFALSE",
        0x8a => "LONG1",
        0x8b => "LONG4",
        0x8c => "SHORT_BINUNICODE",
        0x8d => "BINUNICODE8",
        0x8e => "BINBYTES8",
        0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        0x92 => "NEWOBJ_EX",
        0x93 => "STACK_GLOBAL",
        0x94 => "MEMOIZE",
        0x95 => "FRAME",
        0x96 => "BYTEARRAY8",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Value {
        Value::Str(text.to_string())
    }

    // python3 -c "import pickle,sys; sys.stdout.buffer.write(pickle.dumps({'a': 1, 'b': [1.5,
    //   None, True, False], 'c': ('x', -2, 300, 70000, 2**40, -2**63, 'é')}, protocol=2))"
    const SCALARS_P2: &[u8] = b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01K\x01X\x01\x00\x00\x00bq\x02]q\x03(G?\xf8\x00\x00\x00\x00\x00\x00N\x88\x89eX\x01\x00\x00\x00cq\x04(X\x01\x00\x00\x00xq\x05J\xfe\xff\xff\xffM,\x01Jp\x11\x01\x00\x8a\x06\x00\x00\x00\x00\x00\x01\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80X\x02\x00\x00\x00\xc3\xa9q\x06tq\x07u.";

    // python3 -c "import pickle,sys,collections; sys.stdout.buffer.write(pickle.dumps(
    //   collections.OrderedDict(a=b'xy'), protocol=4))"
    const ORDERED_DICT_P4: &[u8] = b"\x80\x04\x95,\x00\x00\x00\x00\x00\x00\x00\x8c\x0bcollections\x94\x8c\x0bOrderedDict\x94\x93\x94)R\x94\x8c\x01a\x94C\x02xy\x94s.";

    // What `Module.state_dict()` pickles to: an OrderedDict carrying a `_metadata` attribute.
    // python3 -c "import pickle,sys,collections as c; d=c.OrderedDict([('w',1),('v',2)]);
    //   d._metadata=c.OrderedDict([('',{'version':1})]);
    //   sys.stdout.buffer.write(pickle.dumps(d, protocol=2))"
    const STATE_DICT_METADATA_P2: &[u8] = b"\x80\x02ccollections\x0aOrderedDict\x0aq\x00)Rq\x01(X\x01\x00\x00\x00wq\x02K\x01X\x01\x00\x00\x00vq\x03K\x02u}q\x04X\x09\x00\x00\x00_metadataq\x05h\x00)Rq\x06X\x00\x00\x00\x00q\x07}q\x08X\x07\x00\x00\x00versionq\x09K\x01sssb.";

    // A class the reader cannot import, made importable for pickling through fake modules:
    // python3 -c "import pickle,sys,types
    // for n in ['lib','lib.train','lib.train.admin','lib.train.admin.settings']:
    //     sys.modules[n]=types.ModuleType(n)
    // class Settings: pass
    // Settings.__module__='lib.train.admin.settings'; sys.modules[Settings.__module__].Settings=Settings
    // s=Settings(); s.lr=0.5; s.name='patrack'
    // sys.stdout.buffer.write(pickle.dumps({'settings': s, 'epoch': 3}, protocol=2))"
    const UNKNOWN_OBJECT_P2: &[u8] = b"\x80\x02}q\x00(X\x08\x00\x00\x00settingsq\x01clib.train.admin.settings\x0aSettings\x0aq\x02)\x81q\x03}q\x04(X\x02\x00\x00\x00lrq\x05G?\xe0\x00\x00\x00\x00\x00\x00X\x04\x00\x00\x00nameq\x06X\x07\x00\x00\x00patrackq\x07ubX\x05\x00\x00\x00epochq\x08K\x03u.";

    // python3 -c "import pickle,sys; sys.stdout.buffer.write(pickle.dumps(b'\x00\xff', protocol=2))"
    const BYTES_P2: &[u8] = b"\x80\x02c_codecs\x0aencode\x0aq\x00X\x03\x00\x00\x00\x00\xc3\xbfq\x01X\x06\x00\x00\x00latin1q\x02\x86q\x03Rq\x04.";

    // python3 -c "import pickle,sys; sys.stdout.buffer.write(pickle.dumps([bytearray(b'ab'), {7},
    //   frozenset([8])], protocol=5))"
    const BYTEARRAY_SET_P5: &[u8] = b"\x80\x05\x95\x1c\x00\x00\x00\x00\x00\x00\x00]\x94(\x96\x02\x00\x00\x00\x00\x00\x00\x00ab\x94\x8f\x94(K\x07\x90(K\x08\x91\x94e.";

    // python3 -c "import pickle,sys; t=(1,2); sys.stdout.buffer.write(pickle.dumps([t,t], protocol=2))"
    const SHARED_MEMO_P2: &[u8] = b"\x80\x02]q\x00(K\x01K\x02\x86q\x01h\x01e.";

    // The structure torch.save writes, produced without torch by fake modules whose objects
    // reduce exactly like torch's:
    // import pickle,sys,types,collections as c,io
    // for n in ['torch','torch._utils']: sys.modules[n]=types.ModuleType(n)
    // T=sys.modules['torch']; U=sys.modules['torch._utils']
    // class FloatStorage: pass
    // FloatStorage.__module__='torch'; T.FloatStorage=FloatStorage
    // def _rebuild_tensor_v2(*a): pass
    // def _rebuild_parameter(*a): pass
    // for f in (_rebuild_tensor_v2,_rebuild_parameter): f.__module__='torch._utils'; setattr(U,f.__name__,f)
    // class S:
    //     def __init__(s,k,n): s.k,s.n=k,n
    // class Tn:
    //     def __init__(s,st,o,sz,sd): s.a=(st,o,sz,sd,False,c.OrderedDict())
    //     def __reduce_ex__(s,p): return (_rebuild_tensor_v2,s.a)
    // class Pm:
    //     def __init__(s,t): s.t=t
    //     def __reduce_ex__(s,p): return (_rebuild_parameter,(s.t,True,c.OrderedDict()))
    // class P(pickle.Pickler):
    //     def persistent_id(self,o):
    //         return ('storage',FloatStorage,o.k,'cpu',o.n) if isinstance(o,S) else None
    // sd=c.OrderedDict(); sd['view']=Tn(S('0',12),2,(2,2),(3,1)); sd['param']=Pm(Tn(S('1',3),0,(3,),(1,)))
    // b=io.BytesIO(); P(b,protocol=2).dump({'net':sd,'epoch':7}); sys.stdout.buffer.write(b.getvalue())
    const TORCH_LIKE_P2: &[u8] = b"\x80\x02}q\x00(X\x03\x00\x00\x00netq\x01ccollections\x0aOrderedDict\x0aq\x02)Rq\x03(X\x04\x00\x00\x00viewq\x04ctorch._utils\x0a_rebuild_tensor_v2\x0aq\x05((X\x07\x00\x00\x00storageq\x06ctorch\x0aFloatStorage\x0aq\x07X\x01\x00\x00\x000q\x08X\x03\x00\x00\x00cpuq\x09K\x0ctq\x0aQK\x02K\x02K\x02\x86q\x0bK\x03K\x01\x86q\x0c\x89h\x02)Rq\x0dtq\x0eRq\x0fX\x05\x00\x00\x00paramq\x10ctorch._utils\x0a_rebuild_parameter\x0aq\x11h\x05((h\x06h\x07X\x01\x00\x00\x001q\x12h\x09K\x03tq\x13QK\x00K\x03\x85q\x14K\x01\x85q\x15\x89h\x02)Rq\x16tq\x17Rq\x18\x88h\x02)Rq\x19\x87q\x1aRq\x1buX\x05\x00\x00\x00epochq\x1cK\x07u.";

    #[test]
    fn scalars_protocol_2() {
        let expected = Value::Dict(vec![
            (s("a"), Value::Int(1)),
            (s("b"), Value::List(vec![Value::Float(1.5), Value::None, Value::Bool(true), Value::Bool(false)])),
            (
                s("c"),
                Value::Tuple(vec![
                    s("x"),
                    Value::Int(-2),
                    Value::Int(300),
                    Value::Int(70000),
                    Value::Int(1 << 40),
                    Value::Int(i64::MIN),
                    s("é"),
                ]),
            ),
        ]);
        assert_eq!(load(SCALARS_P2).unwrap(), expected);
    }

    #[test]
    fn ordered_dict_protocol_4_frames_memoize_stack_global() {
        let expected = Value::Dict(vec![(s("a"), Value::Bytes(b"xy".to_vec()))]);
        assert_eq!(load(ORDERED_DICT_P4).unwrap(), expected);
    }

    #[test]
    fn state_dict_metadata_attribute_is_tolerated() {
        let expected = Value::Dict(vec![(s("w"), Value::Int(1)), (s("v"), Value::Int(2))]);
        assert_eq!(load(STATE_DICT_METADATA_P2).unwrap(), expected);
    }

    #[test]
    fn unknown_class_becomes_inert_stub() {
        let Value::Dict(items) = load(UNKNOWN_OBJECT_P2).unwrap() else { panic!("not a dict") };
        assert_eq!(items.len(), 2);
        let Value::Object(obj) = &items[0].1 else { panic!("settings is {:?}", items[0].1) };
        assert_eq!((obj.module.as_str(), obj.name.as_str()), ("lib.train.admin.settings", "Settings"));
        assert!(obj.args.is_empty());
        let state = Value::Dict(vec![(s("lr"), Value::Float(0.5)), (s("name"), s("patrack"))]);
        assert_eq!(obj.state.as_ref(), Some(&state));
        assert_eq!(items[1], (s("epoch"), Value::Int(3)));
    }

    #[test]
    fn protocol_2_bytes_via_codecs_encode() {
        assert_eq!(load(BYTES_P2).unwrap(), Value::Bytes(vec![0x00, 0xff]));
    }

    #[test]
    fn protocol_5_bytearray_and_sets() {
        let expected = Value::List(vec![
            Value::Bytes(b"ab".to_vec()),
            Value::Set(vec![Value::Int(7)]),
            Value::Set(vec![Value::Int(8)]),
        ]);
        assert_eq!(load(BYTEARRAY_SET_P5).unwrap(), expected);
    }

    #[test]
    fn memo_get_copies_shared_values() {
        let pair = Value::Tuple(vec![Value::Int(1), Value::Int(2)]);
        assert_eq!(load(SHARED_MEMO_P2).unwrap(), Value::List(vec![pair.clone(), pair]));
    }

    #[test]
    fn torch_tensor_and_parameter_references() {
        let Value::Dict(top) = load(TORCH_LIKE_P2).unwrap() else { panic!("not a dict") };
        assert_eq!(top[1], (s("epoch"), Value::Int(7)));
        let Value::Dict(sd) = &top[0].1 else { panic!("net is {:?}", top[0].1) };
        let storage = |key: &str, numel| StorageRef {
            storage_type: "FloatStorage".into(),
            key: key.into(),
            location: "cpu".into(),
            numel,
        };
        let view = TensorRef {
            storage: storage("0", 12),
            storage_offset: 2,
            size: vec![2, 2],
            stride: vec![3, 1],
            requires_grad: false,
            is_parameter: false,
        };
        let param = TensorRef {
            storage: storage("1", 3),
            storage_offset: 0,
            size: vec![3],
            stride: vec![1],
            requires_grad: true,
            is_parameter: true,
        };
        assert_eq!(sd[0], (s("view"), Value::Tensor(Box::new(view))));
        assert_eq!(sd[1], (s("param"), Value::Tensor(Box::new(param))));
    }

    #[test]
    fn every_truncation_is_an_error() {
        for whole in [SCALARS_P2, TORCH_LIKE_P2, ORDERED_DICT_P4, UNKNOWN_OBJECT_P2] {
            for len in 0..whole.len() {
                assert!(load(&whole[..len]).is_err(), "prefix of {len} bytes was accepted");
            }
        }
    }

    #[test]
    fn random_byte_flips_never_panic() {
        // Deterministic xorshift so failures reproduce.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (mut ok, mut err) = (0, 0);
        for _ in 0..5000 {
            let mut bytes = TORCH_LIKE_P2.to_vec();
            for _ in 0..1 + next() % 4 {
                let at = (next() % bytes.len() as u64) as usize;
                bytes[at] ^= 1 << (next() % 8);
            }
            match load(&bytes) {
                Ok(_) => ok += 1,
                Err(_) => err += 1,
            }
        }
        println!("byte flips: {ok} still parse, {err} rejected");
        assert!(err > ok, "most flips should break the structure");
    }

    #[test]
    fn malformed_inputs_give_typed_errors() {
        let cases: &[(&[u8], &str)] = &[
            (b"\x80\x02\x85.", "StackUnderflow"),
            (b"\x80\x02h\x05.", "MissingMemo"),
            // TUPLE1 may not reach below an open MARK.
            (b"\x80\x02K\x01(\x85.", "StackUnderflow"),
            (b"\x80\x02u.", "NoMark"),
            (b"\x80\x02X\xff\xff\xff\xff", "Truncated"),
            (b"\x80\x02\x8d\xff\xff\xff\xff\xff\xff\xff\xff", "Truncated"),
            (b"\x80\x02\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01.", "Invalid"),
            (b"\x80\x02T\xff\xff\xff\xff.", "Invalid"),
            (b"\x80\x02I1\n.", "UnsupportedOpcode"),
            (b"\x80\x09.", "Invalid"),
            (b"\x80\x02K\x01Q.", "Invalid"),
            (b"\x80\x02K\x01)R.", "Invalid"),
            (b"\x80\x02K\x01", "NoStop"),
            (b"\x80\x02X\x02\x00\x00\x00\xff\xfe.", "Invalid"),
            (b"\x80\x02K\x01K\x02b.", "Invalid"),
        ];
        for (bytes, variant) in cases {
            let err = load(bytes).expect_err("malformed input accepted");
            let debug = format!("{err:?}");
            assert!(debug.starts_with(variant), "{bytes:?}: expected {variant}, got {err}");
            println!("{bytes:?} -> {err}");
        }
    }

    #[test]
    fn nesting_depth_is_bounded() {
        let nested = |levels: usize| {
            let mut p = b"\x80\x02".to_vec();
            p.extend(std::iter::repeat_n(b']', levels));
            p.extend(std::iter::repeat_n(b'a', levels - 1));
            p.push(b'.');
            p
        };
        assert!(load(&nested(100)).is_ok());
        let err = load(&nested(100_000)).expect_err("deep nesting accepted");
        assert!(matches!(err, PickleError::Limit { .. }), "{err}");
    }

    #[test]
    fn memo_duplication_bomb_is_bounded() {
        // x = []; repeat: x = (x, x) memoised again: 2^60 nodes from a few hundred bytes.
        let mut p = b"\x80\x02]q\x00".to_vec();
        for _ in 0..60 {
            p.extend_from_slice(b"h\x00h\x00\x86q\x00");
        }
        p.push(b'.');
        let err = load(&p).expect_err("bomb accepted");
        assert!(matches!(err, PickleError::Limit { .. }), "{err}");
    }

    #[test]
    fn memo_fetches_of_a_long_string_are_charged_by_its_bytes() {
        // A 1 MiB string memoised once and fetched 300 times: 300 MiB of copies from a 1 MiB
        // pickle. Counting values (one per fetch) let this through; counting bytes refuses it
        // after about 80 fetches (64 MiB + 16 bytes per input byte).
        let len: u32 = 1 << 20;
        let mut p = b"\x80\x02X".to_vec();
        p.extend_from_slice(&len.to_le_bytes());
        p.extend(std::iter::repeat_n(b'a', len as usize));
        p.extend_from_slice(b"q\x01");
        for _ in 0..300 {
            p.extend_from_slice(b"h\x01");
        }
        p.push(b'.');
        let err = load(&p).expect_err("300 MiB of string copies accepted");
        assert!(matches!(err, PickleError::Limit { .. }), "{err}");
        println!("{err}");
        // Fetching it a few times is what honest pickles do.
        let mut few = p[..p.len() - 1 - 2 * 300].to_vec();
        few.extend_from_slice(b"h\x01h\x01.");
        assert!(load(&few).is_ok());
    }
}
