//! Policy conditions: CEL expressions (the `cel` crate) over what a
//! request carries. The server compiles them when a policy is written, so
//! a syntax error, an unknown variable or an unknown function is a
//! plan-time error at `condition` with its position; every node compiles
//! them again once per applied revision and evaluates them per request.

use cel::{
    Context, IdedExpr, Program,
    common::ast::{EntryExpr, Expr},
};

/// The longest condition accepted, in characters.
pub const MAX_LENGTH: usize = 1000;

/// How deeply brackets and operators may nest (parsing and evaluation
/// recurse once per level).
const MAX_DEPTH: usize = 48;

/// How deeply a parsed condition may nest (evaluation recurses per level
/// on the request's own thread).
const MAX_TREE_DEPTH: usize = 64;

/// The stack of the thread that parses a condition.
const PARSER_STACK: usize = 256 << 20;

/// The variables a cluster-phase policy (ACLs) can read, per request.
pub const CLUSTER_VARIABLES: &[&str] = &[
    "principal",
    "client_id",
    "virtual_cluster",
    "listener",
    "api",
];

/// The variables a produce- or consume-phase policy can read, per record:
/// the cluster ones (`api` is `Produce` or `Fetch`), the record's topic (as the client names it),
/// partition, offset (consume only; -1 on produce), timestamp (ms), key
/// and value as text (UTF-8, lossy), the value parsed as JSON (`null`
/// when it is not JSON) and the headers as a map of text.
pub const RECORD_VARIABLES: &[&str] = &[
    "api",
    "principal",
    "client_id",
    "virtual_cluster",
    "listener",
    "topic",
    "partition",
    "offset",
    "timestamp",
    "key",
    "value",
    "value_text",
    "headers",
];

/// The variables of [`RECORD_VARIABLES`] that are the same for every
/// record of a partition: a condition reading only these is evaluated
/// once per partition, and the records of a partition it rules out are
/// never decoded.
pub const PARTITION_VARIABLES: &[&str] = &[
    "api",
    "principal",
    "client_id",
    "virtual_cluster",
    "listener",
    "topic",
    "partition",
];

pub use cel::Value;

/// The functions and macros a condition may call (the `cel` crate's
/// standard ones, without time functions).
const FUNCTIONS: &[&str] = &[
    "contains",
    "size",
    "max",
    "min",
    "startsWith",
    "endsWith",
    "string",
    "bytes",
    "double",
    "int",
    "uint",
    // Not `matches`: it compiles its regex at every evaluation.
    "has",
    "all",
    "exists",
    "exists_one",
    "map",
    "filter",
];

/// A compiled condition.
#[derive(Debug)]
pub struct Condition {
    program: Program,
    /// The variables it reads, each once.
    reads: Vec<String>,
}

impl Condition {
    /// Compiles `source`, which may read `variables`; the error says what
    /// is wrong and where (`line 1, column 12: ...`).
    pub fn compile(source: &str, variables: &[&str]) -> Result<Condition, String> {
        if source.chars().count() > MAX_LENGTH {
            return Err(format!("longer than {MAX_LENGTH} characters"));
        }
        if let Some(column) = too_deep(source) {
            return Err(format!(
                "line 1, column {column}: nested more than {MAX_DEPTH} levels deep"
            ));
        }
        // The parser recurses once per operator of a chain (`1+1+...`):
        // it runs on a thread whose stack holds the longest condition.
        let source = source.to_string();
        let variables: Vec<String> = variables.iter().map(|v| v.to_string()).collect();
        std::thread::Builder::new()
            .name("condition-compile".into())
            .stack_size(PARSER_STACK)
            .spawn(move || {
                let variables: Vec<&str> = variables.iter().map(String::as_str).collect();
                parse(&source, &variables)
            })
            .map_err(|e| format!("cannot compile now: {e}"))?
            .join()
            .map_err(|_| "cannot be compiled".to_string())?
            .map(|(program, reads)| Condition { program, reads })
    }

    /// Whether it reads variable `name`.
    pub fn reads(&self, name: &str) -> bool {
        self.reads.iter().any(|r| r == name)
    }

    /// Whether every variable it reads is among `names`.
    pub fn reads_only(&self, names: &[&str]) -> bool {
        self.reads.iter().all(|r| names.contains(&r.as_str()))
    }
}

/// Parses and checks one condition (on the compiling thread).
fn parse(source: &str, variables: &[&str]) -> Result<(Program, Vec<String>), String> {
    let program = Program::compile(source).map_err(|errors| {
        errors
            .errors
            .first()
            .map(|e| format!("line {}, column {}: {}", e.pos.0.max(1), e.pos.1 + 1, e.msg))
            .unwrap_or_else(|| "not a CEL expression".to_string())
    })?;
    let mut reads = Vec::new();
    check(
        program.expression(),
        variables,
        &mut Vec::new(),
        &mut reads,
        0,
    )?;
    Ok((program, reads))
}

impl Condition {
    /// Whether the condition holds for `values` (every variable it may
    /// read, by name); an error when it cannot be evaluated or is not a
    /// boolean (the caller fails closed).
    pub fn holds(&self, values: &[(&str, &str)]) -> Result<bool, String> {
        let mut context = Context::default();
        for (name, value) in values {
            context.add_variable_from_value(*name, Value::from(value.to_string()));
        }
        match self.program.execute(&context) {
            Ok(Value::Bool(b)) => Ok(b),
            Ok(other) => Err(not_boolean(&other)),
            Err(e) => Err(describe(&e)),
        }
    }

    /// Whether the condition holds for `values` (typed, by name); an
    /// error as for [`Condition::holds`].
    pub fn holds_for<'a>(
        &self,
        values: impl IntoIterator<Item = (&'a str, Value)>,
    ) -> Result<bool, String> {
        let mut context = Context::default();
        for (name, value) in values {
            context.add_variable_from_value(name, value);
        }
        match self.program.execute(&context) {
            Ok(Value::Bool(b)) => Ok(b),
            Ok(other) => Err(not_boolean(&other)),
            Err(e) => Err(describe(&e)),
        }
    }
}

fn not_boolean(value: &Value) -> String {
    format!("evaluates to a {:?}, not a boolean", value.type_of())
}

/// What went wrong evaluating a condition, without the values involved
/// (they are the request's or the record's content, and errors go into
/// logs, counts and events).
fn describe(e: &cel::ExecutionError) -> String {
    use cel::ExecutionError as E;
    match e {
        E::NoSuchKey(key) => format!(
            "no member {:?} (test it with has() first)",
            key.chars().take(64).collect::<String>()
        ),
        E::UnexpectedType { got, want } => format!("a {got} where a {want} is needed"),
        E::NoSuchOverload
        | E::UnsupportedBinaryOperator(..)
        | E::UnsupportedUnaryOperator(..)
        | E::ValuesNotComparable(..) => "an operator applied to values of the wrong types".into(),
        E::UnsupportedIndex(..)
        | E::UnsupportedMapIndex(..)
        | E::UnsupportedListIndex(..)
        | E::IndexOutOfBounds(..) => "an index that does not apply to the value".into(),
        E::DivisionByZero(..) | E::RemainderByZero(..) => "a division by zero".into(),
        E::Overflow(..) => "an arithmetic overflow".into(),
        E::FunctionError { function, .. } => format!("function {function} failed"),
        E::InvalidArgumentCount { expected, actual } => {
            format!("a function called with {actual} arguments instead of {expected}")
        }
        _ => "cannot be evaluated for this input".into(),
    }
}

/// A map of text (record headers) as a condition value.
pub fn text_map(map: std::collections::HashMap<String, String>) -> Value {
    cel::to_value(&map).unwrap_or(Value::Null)
}

/// A JSON document as a condition value.
pub fn json_value(json: &serde_json::Value) -> Value {
    cel::to_value(json).unwrap_or(Value::Null)
}

/// The column where brackets nest deeper than allowed, if they do
/// (checked before parsing: the parser recurses per level).
fn too_deep(source: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut unary = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (column, c) in source.chars().enumerate() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        // Runs of prefix operators nest as deeply as brackets.
        if c == '!' || c == '-' {
            unary += 1;
        } else if !c.is_whitespace() {
            unary = 0;
        }
        if depth + unary > MAX_DEPTH {
            return Some(column + 1);
        }
    }
    None
}

/// Checks every identifier and call of `expr`: variables must be among
/// `variables` (or a comprehension's own), functions among [`FUNCTIONS`].
fn check(
    expr: &IdedExpr,
    variables: &[&str],
    scope: &mut Vec<String>,
    reads: &mut Vec<String>,
    depth: usize,
) -> Result<(), String> {
    if depth > MAX_TREE_DEPTH {
        return Err(format!(
            "nested more than {MAX_TREE_DEPTH} operators deep; split it (`a || b` chains count)"
        ));
    }
    let next = depth + 1;
    match &expr.expr {
        Expr::Ident(name) => {
            if !name.starts_with('@')
                && !variables.contains(&name.as_str())
                && !scope.iter().any(|s| s == name)
            {
                return Err(format!(
                    "unknown variable `{name}` (known here: {})",
                    variables.join(", ")
                ));
            }
            if variables.contains(&name.as_str())
                && !scope.iter().any(|s| s == name)
                && !reads.contains(name)
            {
                reads.push(name.clone());
            }
        }
        Expr::Call(call) => {
            let name = call.func_name.as_str();
            let operator = name.starts_with(['_', '@', '!', '-']);
            if !operator && !FUNCTIONS.contains(&name) {
                return Err(format!("unknown function `{name}`"));
            }
            if let Some(target) = &call.target {
                check(target, variables, scope, reads, next)?;
            }
            for arg in &call.args {
                check(arg, variables, scope, reads, next)?;
            }
        }
        Expr::Comprehension(c) => {
            // One macro over a list costs its length; one inside another
            // the product (a few hundred characters could ask for 10^8
            // steps per request).
            if !scope.is_empty() {
                return Err(
                    "a macro (all, exists, exists_one, map, filter) inside another is not \
                     allowed: its cost is the product of the lists"
                        .into(),
                );
            }
            check(&c.iter_range, variables, scope, reads, next)?;
            let before = scope.len();
            scope.push(c.iter_var.clone());
            scope.extend(c.iter_var2.clone());
            scope.push(c.accu_var.clone());
            let inner = [&c.accu_init, &c.loop_cond, &c.loop_step, &c.result];
            let result = inner
                .into_iter()
                .try_for_each(|e| check(e, variables, scope, reads, next));
            scope.truncate(before);
            result?;
        }
        Expr::List(list) => {
            for e in &list.elements {
                check(e, variables, scope, reads, next)?;
            }
        }
        Expr::Map(map) => {
            for entry in &map.entries {
                match &entry.expr {
                    EntryExpr::StructField(f) => check(&f.value, variables, scope, reads, next)?,
                    EntryExpr::MapEntry(m) => {
                        check(&m.key, variables, scope, reads, next)?;
                        check(&m.value, variables, scope, reads, next)?;
                    }
                }
            }
        }
        Expr::Select(select) => check(&select.operand, variables, scope, reads, next)?,
        Expr::Struct(_) => return Err("message construction is not supported".into()),
        Expr::Literal(_) | Expr::Unspecified => {}
        #[allow(unreachable_patterns)]
        _ => return Err("an expression form this version does not support".into()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holds(source: &str, values: &[(&str, &str)]) -> Result<bool, String> {
        Condition::compile(source, CLUSTER_VARIABLES)?.holds(values)
    }

    #[test]
    fn conditions_read_the_request() {
        let alice = [("principal", "User:alice"), ("api", "Produce")];
        assert_eq!(holds("principal == 'User:alice'", &alice), Ok(true));
        assert_eq!(holds("principal.startsWith('User:b')", &alice), Ok(false));
        assert_eq!(
            holds("api in ['Produce', 'Fetch'] && principal != ''", &alice),
            Ok(true)
        );
        assert_eq!(
            holds("['User:alice'].exists(p, p == principal)", &alice),
            Ok(true)
        );
        assert!(holds("principal", &alice).is_err(), "not a boolean");
    }

    #[test]
    fn mistakes_are_named_with_their_position() {
        let err = Condition::compile("principal == ", CLUSTER_VARIABLES).unwrap_err();
        assert!(err.starts_with("line 1, column"), "{err}");
        let err = Condition::compile("topic == 'a'", CLUSTER_VARIABLES).unwrap_err();
        assert!(err.contains("unknown variable `topic`"), "{err}");
        let err = Condition::compile("now() > 1", CLUSTER_VARIABLES).unwrap_err();
        assert!(err.contains("unknown function `now`"), "{err}");
        let long = "a".repeat(MAX_LENGTH + 1);
        assert!(Condition::compile(&long, CLUSTER_VARIABLES).is_err());
    }

    #[test]
    fn hostile_nesting_is_refused_or_survived() {
        let n = MAX_LENGTH / 2 - 1;
        for source in [
            format!("{}true{}", "(".repeat(n), ")".repeat(n)),
            format!("{}true", "!".repeat(MAX_LENGTH - 4)),
            format!("{}1 == 1", "-".repeat(MAX_LENGTH - 6)),
            format!("{}[]{}", "[".repeat(n - 1), "]".repeat(n - 1)),
        ] {
            assert!(Condition::compile(&source, CLUSTER_VARIABLES).is_err());
        }
        // Long flat chains parse (and evaluate) without recursing too deep.
        let chain = format!("{}true", "principal == '' || ".repeat(40));
        assert!(chain.len() <= MAX_LENGTH);
        assert_eq!(holds(&chain, &[("principal", "x")]), Ok(true));
        let sum = format!("{}1 > 0", "1 + ".repeat(60));
        assert_eq!(holds(&sum, &[]), Ok(true));
        // Deeper chains parse, and are refused.
        let sum = format!("{}1 > 0", "1+".repeat(495));
        assert!(Condition::compile(&sum, CLUSTER_VARIABLES).is_err());
        // A macro inside a macro is refused (its cost multiplies).
        let nested = "[1,2].all(a, [1,2].exists(b, a == b))";
        let err = Condition::compile(nested, CLUSTER_VARIABLES).unwrap_err();
        assert!(err.contains("inside another"), "{err}");
        assert_eq!(holds("[1,2].exists(a, a == 2)", &[]), Ok(true));
        // Quoted brackets do not count.
        let quoted = format!("principal == '{}'", "(".repeat(200));
        assert_eq!(holds(&quoted, &[("principal", "x")]), Ok(false));
    }

    #[test]
    fn record_conditions_read_typed_values() {
        let c = Condition::compile(
            "topic == 'orders' && value.total > 100 && headers['tier'] == 'gold'",
            RECORD_VARIABLES,
        )
        .unwrap();
        assert!(c.reads("value") && c.reads("headers") && !c.reads("key"));
        assert!(!c.reads_only(PARTITION_VARIABLES));
        let json: serde_json::Value = serde_json::json!({"total": 120});
        let headers: std::collections::HashMap<String, String> =
            [("tier".to_string(), "gold".to_string())].into();
        let values = || {
            [
                ("topic", Value::from("orders")),
                ("value", json_value(&json)),
                ("headers", cel::to_value(&headers).unwrap()),
            ]
        };
        assert_eq!(c.holds_for(values()), Ok(true));
        let partition = Condition::compile("topic.startsWith('ord')", RECORD_VARIABLES).unwrap();
        assert!(partition.reads_only(PARTITION_VARIABLES));
        // A comprehension's own variable is not a read.
        let own = Condition::compile("[1].exists(topic, topic == 1)", RECORD_VARIABLES).unwrap();
        assert!(!own.reads("topic"));
    }
}
