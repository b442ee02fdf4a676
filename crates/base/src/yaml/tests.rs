//! Expected values are PyYAML 6.0's (`yaml.safe_load`) unless a test says otherwise.
use super::*;
use serde_json::json;

fn load(text: &str) -> Node {
    parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn js(text: &str) -> serde_json::Value {
    load(text).to_json()
}

/// The value of `a` in `a: <scalar>`.
fn val(scalar: &str) -> NodeKind {
    let node = load(&format!("a: {scalar}"));
    node.get("a").unwrap_or_else(|| panic!("no a in {scalar:?}")).kind.clone()
}

fn err(text: &str) -> YamlError {
    match parse(text) {
        Ok(n) => panic!("{text:?} parsed as {:?}", n.to_json()),
        Err(e) => e,
    }
}

fn m(line: usize, col: usize) -> Mark {
    Mark { line, col }
}

fn is_str(k: &NodeKind, s: &str) -> bool {
    matches!(k, NodeKind::Str(x) if x == s)
}

#[test]
fn booleans() {
    for t in ["yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"] {
        assert!(matches!(val(t), NodeKind::Bool(true)), "{t}");
    }
    for f in ["no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"] {
        assert!(matches!(val(f), NodeKind::Bool(false)), "{f}");
    }
    for s in ["y", "n", "Y", "N", "yEs", "FaLsE", "oN", "yes please", "truthy"] {
        assert!(is_str(&val(s), s), "{s}");
    }
    // Keys are resolved too: GitHub-style `on:` is the boolean True.
    assert_eq!(js("on: push"), json!({"True": "push"}));
}

#[test]
fn nulls() {
    for n in ["~", "null", "Null", "NULL", ""] {
        assert!(matches!(val(n), NodeKind::Null), "{n:?}");
    }
    assert!(is_str(&val("nULL"), "nULL"));
    assert_eq!(js("- ~\n-\n- ''\n- 'null'\n- \"~\""), json!([null, null, "", "null", "~"]));
}

#[test]
fn integers() {
    let cases: &[(&str, i64)] = &[
        ("0", 0),
        ("-0", 0),
        ("+1", 1),
        ("42", 42),
        ("-17", -17),
        ("1_000", 1000),
        ("1__0", 10),
        ("1_", 1),
        ("0b1010", 10),
        ("0b_1", 1),
        ("+0b11", 3),
        ("-0b11", -3),
        ("0644", 420),
        ("00", 0),
        ("0_1", 1),
        ("-0_", 0),
        ("07_7", 63),
        ("-012", -10),
        ("0x1F", 31),
        ("0x1f_", 31),
        ("0x_1F", 31),
        ("-0x1F", -31),
        ("1:30", 90),
        ("1:5", 65),
        ("-1:30", -90),
        ("1:30:00", 5400),
        ("190:20:30", 685230),
        ("1_0:30", 630),
        ("9223372036854775807", i64::MAX),
        ("-9223372036854775808", i64::MIN),
    ];
    for (text, want) in cases {
        match val(text) {
            NodeKind::Int(i) => assert_eq!(i, *want, "{text}"),
            other => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn strings_that_look_numeric() {
    for s in [
        "0o644", "0O17", "09", "0b", "0x", "0o", "-0b", "0b2", "0xg", "0X1F", "_1", "1:60", "0:30", "01:30", "1:30_", "1:3_0", "1e3", "1e+3", "1.0e3", "1.5e3",
        "12e03", "1.e3", "1e", "-.5", "+.5", ".", "._", "1.2.3", "+", "-.nan", "1:30:60", "1 2", "0x-1", "1.5e+", "0b_", "0x_",
    ] {
        assert!(is_str(&val(s), s), "{s} -> {:?}", val(s));
    }
}

#[test]
fn floats() {
    let cases: &[(&str, f64)] = &[
        ("1.5", 1.5),
        ("1.", 1.0),
        ("0.", 0.0),
        ("1.0", 1.0),
        (".5", 0.5),
        ("-1_0.", -10.0),
        ("1_0.5", 10.5),
        ("1.5_0", 1.5),
        ("08.5", 8.5),
        ("1.5E+3", 1500.0),
        ("1.5e-3", 0.0015),
        (".1e+3", 100.0),
        ("+1.0e+3", 1000.0),
        ("1:30.5", 90.5),
        ("1:20.5", 80.5),
        ("1_0:3.", 603.0),
        ("-1:0.5", -60.5),
        ("1.0e+400", f64::INFINITY),
        (".inf", f64::INFINITY),
        (".Inf", f64::INFINITY),
        ("+.INF", f64::INFINITY),
        ("-.Inf", f64::NEG_INFINITY),
        ("-.inf", f64::NEG_INFINITY),
    ];
    for (text, want) in cases {
        match val(text) {
            NodeKind::Float(f) => assert_eq!(f, *want, "{text}"),
            other => panic!("{text}: {other:?}"),
        }
    }
    for nan in [".nan", ".NaN", ".NAN"] {
        assert!(matches!(val(nan), NodeKind::Float(f) if f.is_nan()), "{nan}");
    }
}

#[test]
fn big_integers_become_floats() {
    // PyYAML keeps Python's unbounded int; we give the nearest f64 past the i64 range.
    assert!(matches!(val("9223372036854775808"), NodeKind::Float(f) if f == 9223372036854775808.0));
    assert!(matches!(val("-9223372036854775809"), NodeKind::Float(f) if f == -9223372036854775809.0));
    assert!(matches!(val("123456789012345678901234567890"), NodeKind::Float(f) if f == 1.2345678901234568e29));
    assert!(matches!(val("0x1_0000_0000_0000_0000"), NodeKind::Float(f) if f == 18446744073709551616.0));
    assert_eq!(js("a: 123456789012345678901234567890"), json!({"a": 1.2345678901234568e29}));
}

#[test]
fn quoted_and_block_scalars_are_strings() {
    assert_eq!(
        js("- 'yes'\n- \"123\"\n- '1.5'\n- \"null\"\n- '~'\n- |\n  yes\n- >\n  1\n- \"<<\""),
        json!(["yes", "123", "1.5", "null", "~", "yes\n", "1\n", "<<"])
    );
    assert_eq!(js("a: 'it''s'\nb: \"t\\tn\\n\\u00e9\""), json!({"a": "it's", "b": "t\tn\n\u{e9}"}));
    assert_eq!(js("a: b c d\nb: yes please\nc: a\n  b"), json!({"a": "b c d", "b": "yes please", "c": "a b"}));
}

#[test]
fn explicit_tags() {
    assert!(is_str(&val("!!str 123"), "123"));
    assert!(is_str(&val("!!str yes"), "yes"));
    assert!(is_str(&val("!!str"), ""));
    assert!(matches!(val("!!int \"12\""), NodeKind::Int(12)));
    assert!(matches!(val("!!int 0o17"), NodeKind::Int(15)));
    assert!(matches!(val("!!int 017"), NodeKind::Int(15)));
    assert!(matches!(val("!!int -0b101"), NodeKind::Int(-5)));
    assert!(matches!(val("!!int +0x_f"), NodeKind::Int(15)));
    assert!(matches!(val("!!int 1:30"), NodeKind::Int(90)));
    assert!(matches!(val("!!int \" 12\""), NodeKind::Int(12)));
    assert!(matches!(val("!!bool \"yes\""), NodeKind::Bool(true)));
    assert!(matches!(val("!!bool TRUE"), NodeKind::Bool(true)));
    assert!(matches!(val("!!bool no"), NodeKind::Bool(false)));
    assert!(matches!(val("!!bool Off"), NodeKind::Bool(false)));
    assert!(matches!(val("!!float \"1\""), NodeKind::Float(f) if f == 1.0));
    assert!(matches!(val("!!float 1e3"), NodeKind::Float(f) if f == 1000.0));
    assert!(matches!(val("!!float 1:30"), NodeKind::Float(f) if f == 90.0));
    assert!(matches!(val("!!float \"1_000.5\""), NodeKind::Float(f) if f == 1000.5));
    assert!(matches!(val("!!float -.INF"), NodeKind::Float(f) if f == f64::NEG_INFINITY));
    assert!(matches!(val("!!float inf"), NodeKind::Float(f) if f == f64::INFINITY));
    assert!(matches!(val("!!float .NaN"), NodeKind::Float(f) if f.is_nan()));
    assert!(matches!(val("!!null \"\""), NodeKind::Null));
    assert!(matches!(val("!!null x"), NodeKind::Null));
    // Verbatim form, and the non-specific `!` which PyYAML resolves as plain even if quoted.
    assert!(matches!(val("!<tag:yaml.org,2002:int> '5'"), NodeKind::Int(5)));
    assert!(matches!(val("! 123"), NodeKind::Int(123)));
    assert!(matches!(val("! \"123\""), NodeKind::Int(123)));
    // Collection tags that agree with the node.
    assert_eq!(js("a: !!seq [1]\nb: !!map {x: 1}"), json!({"a": [1], "b": {"x": 1}}));
    // A timestamp stays its text (PyYAML builds a date; see module docs).
    assert!(is_str(&val("2024-01-01"), "2024-01-01"));
    assert!(is_str(&val("!!timestamp 2024-01-01"), "2024-01-01"));
}

#[test]
fn explicit_tag_errors() {
    for (text, needle) in [
        ("a: !!int abc", "!!int"),
        ("a: !!int 1.5", "!!int"),
        ("a: !!int \"\"", "!!int"),
        ("a: !!float abc", "!!float"),
        ("a: !!bool y", "!!bool"),
        ("a: !!bool", "!!bool"),
        ("a: !!str [1]", "expected a scalar"),
        ("a: !!str {x: 1}", "expected a scalar"),
        ("a: !!map [1]", "expected a mapping"),
        ("a: !!seq {x: 1}", "expected a sequence"),
        ("a: !!seq x", "expected a collection"),
    ] {
        let e = err(text);
        assert!(e.message.contains(needle), "{text}: {e}");
        assert_eq!(e.mark, m(1, 4), "{text}: {e}");
    }
}

#[test]
fn unsafe_tag_is_a_plain_string() {
    // Ansible's `!unsafe` (PyYAML alone rejects it): always a string, never resolved.
    assert_eq!(
        js("a: !unsafe \"{{ x }}\"\nb: !unsafe 123\nc: !unsafe yes\nd: !unsafe '{% raw %}'"),
        json!({"a": "{{ x }}", "b": "123", "c": "yes", "d": "{% raw %}"})
    );
    // On a collection the tag is accepted and the content loaded as usual.
    assert_eq!(js("a: !unsafe [1, x]"), json!({"a": [1, "x"]}));
}

#[test]
fn unknown_tags_are_errors_naming_the_tag() {
    let e = err("- ok\n- !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  3031\n");
    assert!(e.message.contains("'!vault'"), "{e}");
    assert_eq!(e.mark, m(2, 3));
    let e = err("key:\n  nested: !foo bar");
    assert!(e.message.contains("'!foo'"), "{e}");
    assert_eq!(e.mark, m(2, 11));
    let e = err("a: !custom {x: 1}");
    assert!(e.message.contains("'!custom'"), "{e}");
    assert_eq!(e.mark, m(1, 4));
    let e = err("a: !!python/name:os.system x");
    assert!(e.message.contains("tag:yaml.org,2002:python/name:os.system"), "{e}");
    for unsupported in ["a: !!binary aGk=", "a: !!set {x, y}", "a: !!omap [{a: 1}]"] {
        assert!(err(unsupported).message.contains("could not determine a constructor"), "{unsupported}");
    }
}

#[test]
fn anchors_and_aliases() {
    assert_eq!(
        js("x: &a [1, {k: v}]\ny: *a\nz: &s scalar\nw: [*s, *s]"),
        json!({"x": [1, {"k": "v"}], "y": [1, {"k": "v"}], "z": "scalar", "w": ["scalar", "scalar"]})
    );
    // An alias is a copy of the anchored node, mark included (PyYAML shares the node).
    let n = load("a: &x\n  k: 1\nb: *x");
    assert_eq!(n.get("b").unwrap().mark, m(2, 3));
    assert_eq!(n.get("b").unwrap().get("k").unwrap().as_i64(), Some(1));
    // A redefined anchor: later aliases see the new node (PyYAML refuses duplicate anchors).
    assert_eq!(js("[&a 1, *a, &a 2, *a]"), json!([1, 1, 2, 2]));
}

#[test]
fn alias_errors() {
    let e = err("- *nope");
    assert_eq!(e.mark, m(1, 3));
    assert!(e.message.contains("unknown anchor"), "{e}");
    // Recursive structures are not supported.
    assert_eq!(err("[&a [*a]]").mark, m(1, 6));
    // Anchors do not cross documents.
    assert!(parse_documents("a: &x 1\n---\nb: *x").is_err());
    // "Billion laughs" stops at MAX_ALIAS_NODES copied nodes.
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let prev = format!("*a{}", i - 1);
        text.push_str(&format!("a{i}: &a{i} [{}]\n", [prev.as_str(); 10].join(", ")));
    }
    assert!(err(&text).message.contains("aliases expand"));
}

#[test]
fn merge_keys() {
    // Explicit keys win over merged ones, wherever `<<` stands; merged keys come first.
    assert_eq!(js("b: &x {a: 1, b: 2}\nc:\n  a: 9\n  <<: *x\n  d: 4"), json!({"b": {"a": 1, "b": 2}, "c": {"a": 9, "b": 2, "d": 4}}));
    assert_eq!(js("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  x: 10"), json!({"base": {"x": 1, "y": 2}, "d": {"x": 10, "y": 2}}));
    // A list: earlier mappings win; keys ordered as PyYAML's flatten_mapping leaves them.
    let v = js("p: &p {x: 1}\nq: &q {y: 2, x: 3}\nr:\n  z: 0\n  <<: [*p, *q]");
    assert_eq!(v["r"], json!({"y": 2, "x": 1, "z": 0}));
    assert_eq!(v["r"].as_object().unwrap().keys().collect::<Vec<_>>(), ["y", "x", "z"]);
    // Merges of merges, and two `<<` keys in one mapping.
    assert_eq!(js("a: &a {x: 1}\nb: &b {<<: *a, y: 2}\nc: {<<: *b, z: 3}")["c"], json!({"x": 1, "y": 2, "z": 3}));
    assert_eq!(js("a: {<<: [{x: 1}, {x: 2, y: 3}], <<: {y: 9, q: 1}}")["a"], json!({"x": 1, "y": 9, "q": 1}));
    assert_eq!(js("a: {<<: {}, k: 1}\nb: {<<: []}"), json!({"a": {"k": 1}, "b": {}}));
    // Only a plain `<<` merges.
    assert_eq!(js("a: {'<<': {x: 1}}"), json!({"a": {"<<": {"x": 1}}}));
    assert_eq!(js("a: <<"), json!({"a": "<<"}));
    // An explicit `!!merge` tag merges as well.
    assert_eq!(js("a: {!!merge x: {k: 1}}"), json!({"a": {"k": 1}}));
}

#[test]
fn merge_errors() {
    let e = err("a: &a 1\nb: {<<: *a}");
    assert!(e.message.contains("expected a mapping or list of mappings for merging"), "{e}");
    assert_eq!(e.mark, m(1, 7));
    let e = err("a: {<<: [{x: 1}, 2]}");
    assert!(e.message.contains("expected a mapping for merging, but found an int"), "{e}");
    assert_eq!(e.mark, m(1, 18));
    assert!(err("a: {<<: null}").message.contains("merging"));
}

#[test]
fn duplicate_keys_keep_the_last_value_at_the_first_position() {
    let v = js("a: 1\nb: 2\na: 3");
    assert_eq!(v, json!({"a": 3, "b": 2}));
    assert_eq!(v.as_object().unwrap().keys().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(js("a: {x: 1, x: 2, y: 3}"), json!({"a": {"x": 2, "y": 3}}));
    // Python's dict: 1 == 1.0 == True, the first key object stays.
    assert_eq!(js("{1: a, true: b, 1.0: c}"), json!({"1": "c"}));
    assert_eq!(js("{0: a, false: b, -0.0: c, ~: d, null: e}"), json!({"0": "c", "None": "e"}));
    // Many keys take the hashing path.
    let mut text: String = (0..40).map(|i| format!("k{i}: {i}\n")).collect();
    text.push_str("k7: last\n");
    let v = js(&text);
    assert_eq!(v.as_object().unwrap().len(), 40);
    assert_eq!(v["k7"], json!("last"));
    assert_eq!(v.as_object().unwrap().keys().nth(7).unwrap(), "k7");
}

#[test]
fn unhashable_keys_are_errors() {
    let e = err("? [1, 2]\n: x");
    assert!(e.message.contains("unhashable key"), "{e}");
    assert_eq!(e.mark, m(1, 3));
    assert_eq!(err("[1,2]: x").mark, m(1, 1));
    assert!(err("? {a: 1}\n: x").message.contains("unhashable"));
}

#[test]
fn documents() {
    assert!(parse_documents("").unwrap().is_empty());
    assert!(parse_documents("# only a comment\n\n").unwrap().is_empty());
    let docs = parse_documents("---\n").unwrap();
    assert_eq!(docs.len(), 1);
    assert!(docs[0].is_null());
    let docs = parse_documents("a: 1\n---\n- x\n...\n--- 3\n").unwrap();
    assert_eq!(docs.iter().map(Node::to_json).collect::<Vec<_>>(), [json!({"a": 1}), json!(["x"]), json!(3)]);
    assert_eq!(docs[1].mark, m(3, 1));
    assert_eq!(docs[2].mark, m(5, 5));
    // `parse` wants a single document, as PyYAML's safe_load.
    assert!(parse("").unwrap().is_null());
    assert_eq!(parse("").unwrap().mark, m(1, 1));
    assert_eq!(js("---\na: 1\n...\n"), json!({"a": 1}));
    let e = err("a: 1\n---\nb: 2");
    assert!(e.message.contains("expected a single document"), "{e}");
    assert_eq!(e.mark, m(2, 1));
    assert_eq!(parse_json("x: [1, 2]").unwrap(), json!({"x": [1, 2]}));
}

#[test]
fn syntax_errors_have_marks() {
    let e = err("key: value: other");
    assert_eq!(e.mark, m(1, 11));
    assert!(e.message.contains("mapping values are not allowed"), "{e}");
    let e = err("a:\n  b: 1\n c: 2");
    assert_eq!(e.mark.line, 3);
    assert!(e.message.contains("block mapping"), "{e}");
    let e = err("a: [1, 2\nb: 3\n");
    assert_eq!(e.mark.line, 2);
    assert_eq!(err("a: @x").mark, m(1, 4));
    assert_eq!(err("a: - 1").mark, m(1, 4));
    assert!(parse_json("{").is_err());
    // Display names the position.
    assert!(err("a: @x").to_string().ends_with("(line 1, column 4)"));
}

#[test]
fn marks_of_nested_nodes() {
    let text = "\
# comment
- name: Install things
  vars:
    pkgs: [a, \"b\", {c: 1}]
    list:
    - x
    -   y
    nested:
    - - a
    lit: |2- # a > b
       text
    empty:
  tasks:
    - name: é ü
      when: >
        foo
    -   debug: msg=hi
";
    let n = load(text);
    assert_eq!(n.mark, m(2, 1)); // the root block sequence: its `-`
    let play = &n.as_seq().unwrap()[0];
    assert_eq!(play.mark, m(2, 3)); // block mapping: its first key
    let (k, v) = &play.as_map().unwrap()[0];
    assert_eq!((k.mark, v.mark), (m(2, 3), m(2, 9)));
    let vars = play.get("vars").unwrap();
    assert_eq!(vars.mark, m(4, 5));
    assert_eq!(play.as_map().unwrap()[1].0.mark, m(3, 3)); // the key `vars`
    let pkgs = vars.get("pkgs").unwrap();
    assert_eq!(pkgs.mark, m(4, 11)); // flow sequence: its `[`
    let items = pkgs.as_seq().unwrap();
    assert_eq!((items[0].mark, items[1].mark, items[2].mark), (m(4, 12), m(4, 15), m(4, 20)));
    assert_eq!(items[2].as_map().unwrap()[0].0.mark, m(4, 21));
    // A sequence not indented under its key starts at its `-` (as in PyYAML).
    let list = vars.get("list").unwrap();
    assert_eq!(list.mark, m(6, 5));
    assert_eq!(list.as_seq().unwrap()[1].mark, m(7, 9));
    let nested = vars.get("nested").unwrap();
    assert_eq!(nested.mark, m(9, 5));
    assert_eq!(nested.as_seq().unwrap()[0].mark, m(9, 7));
    // A block scalar starts at its indicator; an empty value at its key.
    assert_eq!(vars.get("lit").unwrap().mark, m(10, 10));
    assert!(is_str(&vars.get("lit").unwrap().kind, " text"));
    assert_eq!(vars.get("empty").unwrap().mark, m(12, 5));
    let tasks = play.get("tasks").unwrap().as_seq().unwrap();
    assert_eq!(tasks[0].mark, m(14, 7));
    assert_eq!(tasks[0].get("name").unwrap().mark, m(14, 13));
    // Columns count characters, not bytes.
    assert_eq!(tasks[0].as_map().unwrap()[1].0.mark, m(15, 7));
    assert_eq!(tasks[0].get("when").unwrap().mark, m(15, 13));
    assert_eq!(tasks[1].mark, m(17, 9));
    assert!(is_str(&tasks[1].get("debug").unwrap().kind, "msg=hi"));
}

#[test]
fn marks_in_ascii_text() {
    // The same fix-ups as above on the ASCII fast path (char index = byte index).
    let n = load(
        "a:
- x
- - y
b:
  - &z k
c: >-
  text
d:
-   [1]
",
    );
    assert_eq!(n.mark, m(1, 1));
    assert_eq!(n.get("a").unwrap().mark, m(2, 1));
    assert_eq!(n.get("a").unwrap().as_seq().unwrap()[1].mark, m(3, 3));
    assert_eq!(n.get("b").unwrap().mark, m(5, 3));
    assert_eq!(n.get("c").unwrap().mark, m(6, 4));
    assert_eq!(n.get("d").unwrap().mark, m(9, 1));
    assert_eq!(n.get("d").unwrap().as_seq().unwrap()[0].mark, m(9, 5));
    let n = load(
        "k:
- &anchored v
",
    );
    assert_eq!(n.get("k").unwrap().mark, m(2, 1));
}

#[test]
fn to_json_keys_and_numbers() {
    let v = js("2: a\n1.5: b\ntrue: c\nno: d\n~: e\n-1.5: f\n1.0e+20: g\n0.00001: h\n.inf: i\n-.inf: j\n.nan: k\n10.0: l");
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["2", "1.5", "True", "False", "None", "-1.5", "1e+20", "1e-05", "inf", "-inf", "nan", "10.0"]);
    assert_eq!(js("- 1.0\n- 10.0\n- .nan\n- .inf\n- -.inf\n- -0.0\n- 3"), json!([1.0, 10.0, "nan", "inf", "-inf", -0.0, 3]));
    assert_eq!(serde_json::to_string(&js("a: 1.0")).unwrap(), r#"{"a":1.0}"#);
    // Document order is kept.
    let v = js("z: 1\na: 2\nm: 3");
    assert_eq!(v.as_object().unwrap().keys().collect::<Vec<_>>(), ["z", "a", "m"]);
    // `into_json` (which `parse_json` uses) gives what `to_json` gives, key order included.
    for text in ["{1: a, '1': b, 2.5: c, ~: d, true: [x, {y: .nan}], s: -.inf}", "- [1, 2]\n- {a: {b: c}}\n- 0644"] {
        let (a, b) = (load(text).to_json(), parse_json(text).unwrap());
        assert_eq!(a.to_string(), b.to_string(), "{text}");
    }
}

#[test]
fn helpers() {
    let n = load("s: text\ni: 3\nb: yes\nl: [1]\nm: {k: v}\nn:\nf: 1.5\n1: int key");
    assert_eq!(n.get("s").and_then(Node::as_str), Some("text"));
    assert_eq!(n.get("i").and_then(Node::as_i64), Some(3));
    assert_eq!(n.get("b").and_then(Node::as_bool), Some(true));
    assert_eq!(n.get("l").and_then(Node::as_seq).map(<[Node]>::len), Some(1));
    assert_eq!(n.get("m").and_then(Node::as_map).map(<[(Node, Node)]>::len), Some(1));
    assert!(n.get("n").unwrap().is_null());
    assert!(n.get("missing").is_none());
    assert!(n.get("1").is_none()); // only string keys match
    assert!(n.get("s").unwrap().get("x").is_none());
    let names: Vec<&str> = n.as_map().unwrap().iter().map(|(_, v)| v.type_name()).collect();
    assert_eq!(names, ["str", "int", "bool", "list", "dict", "NoneType", "float", "str"]);
    assert_eq!(n.as_map().unwrap()[7].0.key_string(), "1");
    assert_eq!(n.get("i").unwrap().as_str(), None);
}

#[test]
fn nesting_limit() {
    let deep = "- ".repeat(MAX_DEPTH + 1) + "x";
    let e = err(&deep);
    assert!(e.message.contains("nested"), "{e}");
    assert_eq!(e.mark, m(1, 2 * MAX_DEPTH + 1));
    assert!(parse(&("- ".repeat(MAX_DEPTH) + "x")).is_ok());
    // yaml-rust2 itself stops flow collections at 255 levels.
    assert!(parse(&("[".repeat(300) + &"]".repeat(300))).is_err());
    assert!(parse(&("[".repeat(100) + &"]".repeat(100))).is_ok());
}

#[test]
fn large_playbook_loads_with_merge_keys_and_marks_to_the_end() {
    let mut text = String::from("- hosts: all\n  vars:\n    base: &defaults {owner: root, mode: '0644'}\n  tasks:\n");
    for i in 0..2000 {
        text.push_str(&format!(
                "    - name: task {i}\n      copy:\n        <<: *defaults\n        src: files/{i}.conf\n        dest: /etc/app/{i}.conf\n      when: item_{i} is defined and on\n      tags: [a, b, 'c{i}']\n      retries: 3\n      delay: 1.5\n"
            ));
    }
    let n = parse(&text).unwrap();
    let tasks = n.as_seq().unwrap()[0].get("tasks").unwrap().as_seq().unwrap();
    assert_eq!(tasks.len(), 2000);
    let copy = tasks[1999].get("copy").unwrap();
    assert_eq!(copy.get("owner").and_then(Node::as_str), Some("root"));
    assert_eq!(copy.get("mode").and_then(Node::as_str), Some("0644"));
    assert_eq!(tasks[1999].mark.line, 4 + 1999 * 9 + 1);
    // Its speed is measured in benches/yaml.sh, not asserted here.
}

/// A repository index as `helm repo index` writes it (lists not indented under their key,
/// `|-` for multi-line descriptions), `charts` charts of `versions` versions each, with
/// a maintainer's name in non-ASCII letters. Also gives, for the last entry, the lines of
/// its chart's first `-`, its first key, its `description`, and the first `-` of its
/// `keywords` and of its `maintainers`.
fn helm_index(charts: usize, versions: usize) -> (String, [usize; 5]) {
    use std::fmt::Write;
    let mut text = String::from("apiVersion: v1\nentries:\n");
    let mut line = 3;
    let mut last = [0; 5];
    for c in 0..charts {
        let name = format!("chart-{c:04}");
        writeln!(text, "  {name}:").unwrap();
        line += 1;
        last[0] = line;
        for v in (0..versions).rev() {
            let version = format!("{}.{v}.{}", 1 + c % 3, c % 7);
            last[1] = line;
            last[2] = line + 5;
            last[3] = line + 10;
            last[4] = line + 13;
            writeln!(
                text,
                "  - annotations:\n      category: GPU\n    apiVersion: v2\n    appVersion: {version}\n    \
                     created: \"2024-10-28T18:29:03.{c:05}{v:04}Z\"\n    description: |-\n      {name} {version} for GPUs.\n      \
                     Second line.\n    digest: {:064x}\n    keywords:\n    - gpu\n    - cuda\n    maintainers:\n    \
                     - email: jurgen@example.com\n      name: Jürgen Müller\n    name: {name}\n    urls:\n    \
                     - https://charts.example.com/{name}-{version}.tgz\n    version: {version}",
                c * versions + v
            )
            .unwrap();
            line += 19;
        }
    }
    text.push_str("generated: \"2024-10-29T00:00:00Z\"\n");
    (text, last)
}

#[test]
fn big_helm_index_keeps_its_marks_to_the_end() {
    let (text, [list_line, entry_line, description_line, keywords_line, maintainers_line]) = helm_index(400, 20);
    let index = load(&text);
    let entries = index.get("entries").unwrap().as_map().unwrap();
    assert_eq!(entries.len(), 400);
    assert_eq!(entries.iter().map(|(_, v)| v.as_seq().unwrap().len()).sum::<usize>(), 8000);
    let (key, versions) = entries.last().unwrap();
    assert_eq!(key.as_str(), Some("chart-0399"));
    // The unindented list of the last chart at its `-`, its last entry at its first key.
    assert_eq!(versions.mark, m(list_line, 3));
    let e = versions.as_seq().unwrap().last().unwrap();
    assert_eq!(e.mark, m(entry_line, 5));
    assert_eq!(e.get("version").and_then(Node::as_str), Some("1.0.0"));
    let d = e.get("description").unwrap();
    assert_eq!(d.mark, m(description_line, 18));
    assert_eq!(d.as_str(), Some("chart-0399 1.0.0 for GPUs.\nSecond line."));
    assert_eq!(e.get("keywords").unwrap().mark, m(keywords_line, 5));
    let maintainers = e.get("maintainers").unwrap();
    assert_eq!(maintainers.mark, m(maintainers_line, 5));
    let person = &maintainers.as_seq().unwrap()[0];
    assert_eq!(person.mark, m(maintainers_line, 7));
    assert_eq!(person.get("name").unwrap().mark, m(maintainers_line + 1, 13));
    assert_eq!(person.get("name").and_then(Node::as_str), Some("Jürgen Müller"));
    assert_eq!(index.get("generated").unwrap().mark.line, text.lines().count());
}
