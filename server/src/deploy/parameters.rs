//! Parameters files: every shape teams write, merged with the environment's overrides, then
//! checked against the parameters the template declares.

use std::collections::BTreeMap;

use serde_json::Value;

/// Parameters and stack tags read from a build's files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParameterSet {
    pub values: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
}

pub use crate::aws::cfn::Declared;

/// Reads one parameters file. Accepted shapes:
/// - `{"Key": "Value"}`
/// - CloudFormation's `[{"ParameterKey": "Key", "ParameterValue": "Value"}]`
/// - CodePipeline's `{"Parameters": {"Key": "Value"}, "Tags": {"Key": "Value"}}`
/// - `["Key=Value"]`
///
/// Errors name the file and, for malformed JSON, the line and column.
pub fn parse(file: &str, text: &str) -> Result<ParameterSet, String> {
    let json: Value = serde_json::from_str(text).map_err(|e| {
        format!(
            "{file} is not valid JSON: line {}, column {}: {}",
            e.line(),
            e.column(),
            describe(&e)
        )
    })?;
    // serde_json keeps the last of two equal keys without a word; a file that sets a parameter
    // twice is ambiguous, so it is refused with the line of the second one.
    serde_json::from_str::<NoDuplicateKeys>(text).map_err(|e| format!("{file}: {e}"))?;
    let mut set = ParameterSet::default();
    match json {
        Value::Object(map) if is_codepipeline(&map) => {
            for (key, value) in map {
                let target = match key.as_str() {
                    "Parameters" => &mut set.values,
                    "Tags" => &mut set.tags,
                    "StackPolicy" => continue,
                    _ => {
                        return Err(format!(
                            "{file}: unexpected key {key:?} next to \"Parameters\""
                        ));
                    }
                };
                let Value::Object(inner) = value else {
                    return Err(format!(
                        "{file}: \"{key}\" must be an object of names to values"
                    ));
                };
                for (k, v) in inner {
                    target.insert(k.clone(), scalar(file, &k, &v)?);
                }
            }
        }
        Value::Object(map) => {
            for (key, value) in map {
                let value = scalar(file, &key, &value)?;
                set.values.insert(key, value);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.into_iter().enumerate() {
                match item {
                    Value::String(pair) => {
                        let Some((k, v)) = pair.split_once('=') else {
                            return Err(format!(
                                "{file}: item {} ({pair:?}) is not Key=Value",
                                i + 1
                            ));
                        };
                        set.values.insert(k.trim().to_owned(), v.to_owned());
                    }
                    Value::Object(obj) => {
                        let key =
                            obj.get("ParameterKey")
                                .and_then(Value::as_str)
                                .ok_or_else(|| {
                                    format!("{file}: item {} has no \"ParameterKey\"", i + 1)
                                })?;
                        if obj.get("UsePreviousValue").and_then(Value::as_bool) == Some(true) {
                            return Err(format!(
                                "{file}: {key} uses UsePreviousValue; a build must carry its values"
                            ));
                        }
                        let value = obj
                            .get("ParameterValue")
                            .ok_or_else(|| format!("{file}: {key} has no \"ParameterValue\""))?;
                        set.values.insert(key.to_owned(), scalar(file, key, value)?);
                    }
                    _ => {
                        return Err(format!(
                            "{file}: item {} must be \"Key=Value\" or {{\"ParameterKey\", \"ParameterValue\"}}",
                            i + 1
                        ));
                    }
                }
            }
        }
        _ => {
            return Err(format!(
                "{file} must hold an object or a list of parameters"
            ));
        }
    }
    if let Some(empty) = set.values.keys().find(|k| k.is_empty()) {
        return Err(format!("{file}: a parameter has an empty name ({empty:?})"));
    }
    Ok(set)
}

fn describe(e: &serde_json::Error) -> String {
    let text = e.to_string();
    // serde_json appends " at line L column C"; the line is already said.
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

fn is_codepipeline(map: &serde_json::Map<String, Value>) -> bool {
    map.get("Parameters").is_some_and(Value::is_object)
        && map
            .keys()
            .all(|k| matches!(k.as_str(), "Parameters" | "Tags" | "StackPolicy"))
}

fn scalar(file: &str, key: &str, value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        // CommaDelimitedList and List<> parameters are written as JSON lists by some tools.
        Value::Array(items) if items.iter().all(|v| v.is_string() || v.is_number()) => Ok(items
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(",")),
        _ => Err(format!(
            "{file}: the value of {key} must be a string, number or boolean"
        )),
    }
}

/// Applies overrides on top of the base set (values and tags).
pub fn merge(mut base: ParameterSet, overrides: ParameterSet) -> ParameterSet {
    base.values.extend(overrides.values);
    base.tags.extend(overrides.tags);
    base
}

/// Checks the values against the template's declarations: every name must be declared, and
/// every declared parameter without a default must have a value.
pub fn check(set: &ParameterSet, declared: &[Declared]) -> Result<(), String> {
    let unknown: Vec<&str> = set
        .values
        .keys()
        .filter(|k| !declared.iter().any(|d| &d.key == *k))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "the template declares no parameter {} (it declares: {})",
            quote_list(&unknown),
            declared
                .iter()
                .map(|d| d.key.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let missing: Vec<&str> = declared
        .iter()
        .filter(|d| d.default.is_none() && !set.values.contains_key(&d.key))
        .map(|d| d.key.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "required parameter {} has no value and no default",
            quote_list(&missing)
        ));
    }
    Ok(())
}

fn quote_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| format!("{i:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Walks a JSON document, failing on the first object that has a key twice.
struct NoDuplicateKeys;

impl<'de> serde::Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NoDuplicateKeysVisitor)
    }
}

struct NoDuplicateKeysVisitor;

impl<'de> serde::de::Visitor<'de> for NoDuplicateKeysVisitor {
    type Value = NoDuplicateKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<NoDuplicateKeys>()?.is_some() {}
        Ok(NoDuplicateKeys)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!(
                    "the key {key:?} appears twice"
                )));
            }
            map.next_value::<NoDuplicateKeys>()?;
        }
        Ok(NoDuplicateKeys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(set: &ParameterSet) -> Vec<(&str, &str)> {
        set.values
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn every_common_shape_reads_the_same() {
        let shapes = [
            r#"{"ImageId": "ami-1", "Count": 2}"#,
            r#"[{"ParameterKey": "ImageId", "ParameterValue": "ami-1"}, {"ParameterKey": "Count", "ParameterValue": "2"}]"#,
            r#"{"Parameters": {"ImageId": "ami-1", "Count": "2"}}"#,
            r#"["ImageId=ami-1", "Count=2"]"#,
        ];
        for text in shapes {
            let set = parse("parameters.json", text).unwrap();
            assert_eq!(
                values(&set),
                [("Count", "2"), ("ImageId", "ami-1")],
                "{text}"
            );
        }
    }

    #[test]
    fn codepipeline_tags_become_stack_tags() {
        let set = parse(
            "p.json",
            r#"{"Parameters": {"A": "1"}, "Tags": {"team": "search"}}"#,
        )
        .unwrap();
        assert_eq!(set.tags.get("team").map(String::as_str), Some("search"));
    }

    #[test]
    fn malformed_json_names_the_file_and_line() {
        let err = parse("parameters.json", "{\n  \"A\": \"1\",\n  \"B\" \"2\"\n}").unwrap_err();
        assert!(
            err.starts_with("parameters.json is not valid JSON: line 3"),
            "{err}"
        );
    }

    #[test]
    fn overrides_win_and_values_with_equals_signs_survive() {
        let base = parse("parameters.json", r#"["Url=https://x/?a=b", "Env=dev"]"#).unwrap();
        let over = parse("parameters.PRD.json", r#"{"Env": "prd"}"#).unwrap();
        let merged = merge(base, over);
        assert_eq!(values(&merged), [("Env", "prd"), ("Url", "https://x/?a=b")]);
    }

    #[test]
    fn an_unknown_parameter_is_named() {
        let set = parse("p.json", r#"{"ImageId": "ami-1", "Typo": "x"}"#).unwrap();
        let declared = [Declared {
            key: "ImageId".into(),
            default: None,
        }];
        let err = check(&set, &declared).unwrap_err();
        assert!(err.contains("\"Typo\""), "{err}");
    }

    #[test]
    fn a_required_parameter_without_value_is_named() {
        let set = parse("p.json", r#"{"ImageId": "ami-1"}"#).unwrap();
        let declared = [
            Declared {
                key: "ImageId".into(),
                default: None,
            },
            Declared {
                key: "EnvName".into(),
                default: None,
            },
            Declared {
                key: "Size".into(),
                default: Some("1".into()),
            },
        ];
        let err = check(&set, &declared).unwrap_err();
        assert!(
            err.contains("\"EnvName\"") && !err.contains("Size"),
            "{err}"
        );
    }

    #[test]
    fn nested_objects_are_refused_with_the_key() {
        let err = parse("p.json", r#"{"A": {"b": 1}}"#).unwrap_err();
        assert!(err.contains("value of A"), "{err}");
    }

    #[test]
    fn a_parameter_set_twice_is_refused_with_its_line() {
        let e = parse(
            "parameters.json",
            "{\n  \"Greeting\": \"a\",\n  \"Greeting\": \"b\"\n}",
        )
        .unwrap_err();
        assert!(
            e.contains("\"Greeting\" appears twice") && e.contains("line 3"),
            "{e}"
        );
        let e = parse("p.json", r#"{"Parameters": {"A": "1", "A": "2"}}"#).unwrap_err();
        assert!(e.contains("\"A\" appears twice"), "{e}");
        // The same key in different objects is not a duplicate.
        let list = r#"[{"ParameterKey": "A", "ParameterValue": "1"},
                       {"ParameterKey": "B", "ParameterValue": "2"}]"#;
        assert_eq!(parse("p.json", list).unwrap().values.len(), 2);
    }
}
