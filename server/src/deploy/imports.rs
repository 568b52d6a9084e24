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
/// name is computed (e.g. `Fn::Join` of resource attributes) are left to CloudFormation.
pub fn imported_exports(doc: &Value, vars: &BTreeMap<String, String>) -> Vec<String> {
    let mut found = Vec::new();
    walk(doc, vars, &mut found);
    let mut names: Vec<String> = found.into_iter().flatten().collect();
    names.sort();
    names.dedup();
    names
}

/// How many of the template's imports have a name computed at deploy time (which no check
/// before deploying can look up).
pub fn computed_imports(doc: &Value, vars: &BTreeMap<String, String>) -> usize {
    let mut found = Vec::new();
    walk(doc, vars, &mut found);
    found.iter().filter(|name| name.is_none()).count()
}

/// The export names the template's outputs declare. `None` when one of them cannot be known
/// before deploying (e.g. built with `Fn::GetAtt`): then which exports go away is unknown.
pub fn exported_names(doc: &Value, vars: &BTreeMap<String, String>) -> Option<Vec<String>> {
    let mut names = Vec::new();
    let Some(outputs) = doc.get("Outputs").and_then(Value::as_mapping) else {
        return Some(names);
    };
    for output in outputs.values() {
        let Some(export) = output.get("Export") else {
            continue;
        };
        match export.get("Name").and_then(|name| resolve(name, vars)) {
            Some(name) => names.push(name),
            None => return None,
        }
    }
    names.sort();
    names.dedup();
    Some(names)
}

/// Every `Fn::ImportValue` of the template: `Some(name)` when the name can be known before
/// deploying, `None` when it is computed.
fn walk(value: &Value, vars: &BTreeMap<String, String>, out: &mut Vec<Option<String>>) {
    match value {
        Value::Mapping(map) => {
            for (key, inner) in map {
                if key.as_str() == Some("Fn::ImportValue") {
                    out.push(resolve(inner, vars));
                } else {
                    walk(inner, vars, out);
                }
            }
        }
        Value::Sequence(items) => items.iter().for_each(|v| walk(v, vars, out)),
        Value::Tagged(tagged) if tagged.tag == "ImportValue" => {
            out.push(resolve(&tagged.value, vars));
        }
        Value::Tagged(tagged) => walk(&tagged.value, vars, out),
        _ => {}
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
    fn an_unknown_variable_leaves_the_import_to_cloudformation() {
        let yaml = "Outputs:\n  X:\n    Value: !ImportValue {'Fn::Sub': '${Nope}-x'}\n";
        assert!(imported_exports(&parse(yaml).unwrap(), &vars()).is_empty());
    }
}
