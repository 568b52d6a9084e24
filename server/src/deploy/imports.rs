//! Pre-flight for exports: the export names a template imports (`Fn::ImportValue`) and the ones
//! it exports (`Outputs.*.Export.Name`), resolved from the parameters where they are literal or a
//! `Fn::Sub` of known values. A missing import, or an export removed while another stack imports
//! it, makes CloudFormation fail (and roll back) half-way; the deployer refuses before touching
//! the stack.

use std::collections::BTreeMap;

use serde_yaml::Value;

/// Reads a template once for both checks. YAML is a superset of JSON: one parser reads both,
/// short-form tags (`!ImportValue`) included.
pub fn parse(template: &str) -> Result<Value, String> {
    serde_yaml::from_str(template)
        .map_err(|e| format!("the template is not valid YAML or JSON: {e}"))
}

/// The parameters the template declares `NoEcho` (`true` or `"true"`, as CloudFormation takes).
pub fn no_echo_parameters(doc: &Value) -> Vec<String> {
    let Some(Value::Mapping(parameters)) = doc.get("Parameters") else {
        return Vec::new();
    };
    parameters
        .iter()
        .filter(|(_, p)| match p.get("NoEcho") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
            _ => false,
        })
        .filter_map(|(k, _)| k.as_str().map(str::to_owned))
        .collect()
}

/// The export names the template imports that can be known before deploying. Imports whose
/// name is computed (e.g. `Fn::Join` of resource attributes) are left to CloudFormation; those
/// of a resource or output whose `Condition` is false, or in the branch of an `Fn::If` not
/// taken, are no imports (when the condition can be known before deploying).
pub fn imported_exports(doc: &Value, vars: &BTreeMap<String, String>) -> Vec<String> {
    let mut names: Vec<String> = all_imports(doc, vars).into_iter().flatten().collect();
    names.sort();
    names.dedup();
    names
}

/// How many of the template's imports have a name computed at deploy time (which no check
/// before deploying can look up).
pub fn computed_imports(doc: &Value, vars: &BTreeMap<String, String>) -> usize {
    all_imports(doc, vars)
        .iter()
        .filter(|name| name.is_none())
        .count()
}

/// The export names the template's outputs declare. `None` when one of them cannot be known
/// before deploying (e.g. built with `Fn::GetAtt`): then which exports go away is unknown.
pub fn exported_names(doc: &Value, vars: &BTreeMap<String, String>) -> Option<Vec<String>> {
    let mut names = Vec::new();
    let Some(outputs) = doc.get("Outputs").and_then(Value::as_mapping) else {
        return Some(names);
    };
    let ctx = Ctx { doc, vars };
    for output in outputs.values() {
        let Some(export) = output.get("Export") else {
            continue;
        };
        if ctx.holds_for(output) == Some(false) {
            continue;
        }
        match export.get("Name").and_then(|name| resolve(name, vars)) {
            Some(name) => names.push(name),
            None => return None,
        }
    }
    names.sort();
    names.dedup();
    Some(names)
}

/// The template and the values its names and conditions are worked out with.
struct Ctx<'a> {
    doc: &'a Value,
    vars: &'a BTreeMap<String, String>,
}

/// Every `Fn::ImportValue` of the template: `Some(name)` when the name can be known before
/// deploying, `None` when it is computed.
fn all_imports(doc: &Value, vars: &BTreeMap<String, String>) -> Vec<Option<String>> {
    let ctx = Ctx { doc, vars };
    let mut out = Vec::new();
    match doc {
        Value::Mapping(sections) => {
            for (section, inner) in sections {
                match (section.as_str(), inner) {
                    (Some("Resources" | "Outputs"), Value::Mapping(entries)) => {
                        for entry in entries.values() {
                            if ctx.holds_for(entry) != Some(false) {
                                ctx.walk(entry, &mut out);
                            }
                        }
                    }
                    _ => ctx.walk(inner, &mut out),
                }
            }
        }
        other => ctx.walk(other, &mut out),
    }
    out
}

/// How deep conditions may refer to conditions (a loop in a broken template ends here).
const CONDITION_DEPTH: u8 = 16;

impl Ctx<'_> {
    fn walk(&self, value: &Value, out: &mut Vec<Option<String>>) {
        match value {
            Value::Mapping(map) => {
                for (key, inner) in map {
                    match key.as_str() {
                        Some("Fn::ImportValue") => out.push(resolve(inner, self.vars)),
                        Some("Fn::If") => self.walk_if(inner, out),
                        _ => self.walk(inner, out),
                    }
                }
            }
            Value::Sequence(items) => items.iter().for_each(|v| self.walk(v, out)),
            Value::Tagged(tagged) if tagged.tag == "ImportValue" => {
                out.push(resolve(&tagged.value, self.vars));
            }
            Value::Tagged(tagged) if tagged.tag == "If" => self.walk_if(&tagged.value, out),
            Value::Tagged(tagged) => self.walk(&tagged.value, out),
            _ => {}
        }
    }

    /// `Fn::If: [condition, when true, when false]`: the branch taken, or both when the
    /// condition cannot be known before deploying.
    fn walk_if(&self, args: &Value, out: &mut Vec<Option<String>>) {
        match args.as_sequence().map(Vec::as_slice) {
            Some([condition, yes, no]) => {
                let holds = condition
                    .as_str()
                    .and_then(|name| self.condition(name, CONDITION_DEPTH));
                if holds != Some(false) {
                    self.walk(yes, out);
                }
                if holds != Some(true) {
                    self.walk(no, out);
                }
            }
            _ => self.walk(args, out),
        }
    }

    /// Whether a resource's or output's `Condition` holds (`Some(true)` without one).
    fn holds_for(&self, entry: &Value) -> Option<bool> {
        match entry.get("Condition") {
            None => Some(true),
            Some(name) => self.condition(name.as_str()?, CONDITION_DEPTH),
        }
    }

    /// The template's condition `name`, when it can be known before deploying.
    fn condition(&self, name: &str, depth: u8) -> Option<bool> {
        let depth = depth.checked_sub(1)?;
        let spec = self.doc.get("Conditions")?.get(name)?;
        self.evaluate(spec, depth)
    }

    /// `Fn::Equals`, `Fn::Not`, `Fn::And`, `Fn::Or` and `Condition` of values known before
    /// deploying; `None` for anything else.
    fn evaluate(&self, value: &Value, depth: u8) -> Option<bool> {
        match value {
            Value::Bool(b) => Some(*b),
            Value::Mapping(map) if map.len() == 1 => {
                let (key, args) = map.iter().next()?;
                let key = key.as_str()?;
                self.apply(key.strip_prefix("Fn::").unwrap_or(key), args, depth)
            }
            Value::Tagged(tagged) => {
                let function = ["Condition", "Equals", "Not", "And", "Or"]
                    .into_iter()
                    .find(|f| tagged.tag == *f)?;
                self.apply(function, &tagged.value, depth)
            }
            _ => None,
        }
    }

    fn apply(&self, function: &str, args: &Value, depth: u8) -> Option<bool> {
        let depth = depth.checked_sub(1)?;
        match function {
            "Condition" => self.condition(args.as_str()?, depth),
            "Equals" => match args.as_sequence().map(Vec::as_slice) {
                Some([a, b]) => Some(scalar(a, self.vars)? == scalar(b, self.vars)?),
                _ => None,
            },
            "Not" => match args.as_sequence().map(Vec::as_slice) {
                Some([a]) => self.evaluate(a, depth).map(|b| !b),
                _ => None,
            },
            "And" | "Or" => {
                let all = function == "And";
                let mut unknown = false;
                for item in args.as_sequence()? {
                    match self.evaluate(item, depth) {
                        Some(b) if b != all => return Some(b),
                        Some(_) => {}
                        None => unknown = true,
                    }
                }
                (!unknown).then_some(all)
            }
            _ => None,
        }
    }
}

/// A value compared by `Fn::Equals`: text, a number or a boolean as CloudFormation compares
/// them (as strings), or a name known before deploying.
fn scalar(value: &Value, vars: &BTreeMap<String, String>) -> Option<String> {
    match value {
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        other => resolve(other, vars),
    }
}

/// The import's name, when it is a literal or a substitution of known values.
fn resolve(value: &Value, vars: &BTreeMap<String, String>) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Tagged(tagged) if tagged.tag == "Sub" => sub(&tagged.value, vars),
        Value::Mapping(map) if map.len() == 1 => {
            let (key, inner) = map.iter().next()?;
            match key.as_str()? {
                "Fn::Sub" => sub(inner, vars),
                "Ref" => vars.get(inner.as_str()?).cloned(),
                _ => None,
            }
        }
        Value::Tagged(tagged) if tagged.tag == "Ref" => vars.get(tagged.value.as_str()?).cloned(),
        _ => None,
    }
}

/// `Fn::Sub` in both forms: `"text ${Var}"` or `["text ${Var}", {Var: value}]`.
fn sub(value: &Value, vars: &BTreeMap<String, String>) -> Option<String> {
    match value {
        Value::String(text) => substitute(text, vars),
        Value::Sequence(items) if items.len() == 2 => {
            let text = items[0].as_str()?;
            let mut local = vars.clone();
            for (k, v) in items[1].as_mapping()? {
                local.insert(k.as_str()?.to_owned(), resolve(v, vars)?);
            }
            substitute(text, &local)
        }
        _ => None,
    }
}

fn substitute(text: &str, vars: &BTreeMap<String, String>) -> Option<String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}')?;
        let name = &after[..end];
        if let Some(literal) = name.strip_prefix('!') {
            out.push_str("${");
            out.push_str(literal);
            out.push('}');
        } else {
            out.push_str(vars.get(name)?);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, String> {
        [("EnvName", "DEV"), ("AWS::Region", "eu-west-1")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    #[test]
    fn finds_imports_in_long_short_and_json_forms() {
        let yaml = r#"
Resources:
  A:
    Type: AWS::SSM::Parameter
    Properties:
      Value:
        Fn::ImportValue: !Sub "${EnvName}-network-Topic"
  B:
    Type: AWS::SSM::Parameter
    Properties:
      Value: !ImportValue shared-vpc-id
  C:
    Type: AWS::SSM::Parameter
    Properties:
      Value:
        Fn::ImportValue:
          Fn::Sub: ["${Prefix}-db-${AWS::Region}", {Prefix: !Ref EnvName}]
  D:
    Type: AWS::SSM::Parameter
    Properties:
      Value: !ImportValue
        Fn::Join: ["-", [a, b]]
"#;
        assert_eq!(
            imported_exports(&parse(yaml).unwrap(), &vars()),
            ["DEV-db-eu-west-1", "DEV-network-Topic", "shared-vpc-id"]
        );
        let json = r#"{"Resources": {"A": {"Type": "AWS::SNS::Topic", "Properties":
            {"TopicName": {"Fn::ImportValue": {"Fn::Sub": "${EnvName}-name"}}}}}}"#;
        assert_eq!(
            imported_exports(&parse(json).unwrap(), &vars()),
            ["DEV-name"]
        );
    }

    #[test]
    fn finds_export_names_literal_and_substituted() {
        let template = r#"
Outputs:
  Vpc:
    Value: !Ref Vpc
    Export:
      Name: !Sub "${EnvName}-vpc"
  Subnets:
    Value: x
    Export: { Name: { "Fn::Sub": "${AWS::Region}-subnets" } }
  Plain:
    Value: y
    Export:
      Name: shared-zone
  NotExported:
    Value: z
"#;
        assert_eq!(
            exported_names(&parse(template).unwrap(), &vars()),
            Some(vec![
                "DEV-vpc".to_owned(),
                "eu-west-1-subnets".to_owned(),
                "shared-zone".to_owned()
            ])
        );
        assert_eq!(
            exported_names(&parse("Resources: {}").unwrap(), &vars()),
            Some(vec![])
        );
        let computed = "Outputs:\n  A:\n    Value: x\n    Export:\n      Name: !GetAtt Vpc.Name\n";
        assert_eq!(exported_names(&parse(computed).unwrap(), &vars()), None);
    }

    #[test]
    fn imports_and_exports_under_a_false_condition_are_none() {
        let yaml = r#"
Conditions:
  IsDev: !Equals [!Ref EnvName, DEV]
  IsPrd: {"Fn::Equals": [{"Ref": "EnvName"}, "PRD"]}
  NotDev: !Not [!Condition IsDev]
  Either: !Or [!Condition IsPrd, !Equals [!Ref Unknown, x]]
Resources:
  InDev:
    Type: AWS::SSM::Parameter
    Condition: IsDev
    Properties:
      Value: !ImportValue dev-only
  InPrd:
    Type: AWS::SSM::Parameter
    Condition: NotDev
    Properties:
      Value: !ImportValue prd-only
  Branches:
    Type: AWS::SSM::Parameter
    Properties:
      Value: !If [IsPrd, !ImportValue if-prd, !ImportValue if-not-prd]
  Unknowable:
    Type: AWS::SSM::Parameter
    Condition: Either
    Properties:
      Value: !ImportValue maybe
Outputs:
  Prd:
    Condition: IsPrd
    Value: x
    Export:
      Name: prd-export
  Always:
    Value: y
    Export:
      Name: always
"#;
        let doc = parse(yaml).unwrap();
        assert_eq!(
            imported_exports(&doc, &vars()),
            ["dev-only", "if-not-prd", "maybe"],
            "a condition that cannot be known counts the import"
        );
        assert_eq!(
            exported_names(&doc, &vars()),
            Some(vec!["always".to_owned()])
        );
    }

    #[test]
    fn an_unknown_variable_leaves_the_import_to_cloudformation() {
        let yaml = "Outputs:\n  X:\n    Value: !ImportValue {'Fn::Sub': '${Nope}-x'}\n";
        assert!(imported_exports(&parse(yaml).unwrap(), &vars()).is_empty());
    }
}
