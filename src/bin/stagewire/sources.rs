//! `--var NAME=SOURCE`: the variable and its source as `Custom::StageBinding` properties.

use serde_json::Value;
use stagewire::domain::source;

/// The long help of `bind`'s sources; its list comes from the table of source kinds.
pub fn help() -> String {
    source::cli_help()
}

/// `NAME=SOURCE` into the variable name and its source as `Custom::StageBinding` properties.
pub fn parse_var(s: &str) -> Result<(String, Value), String> {
    let (name, source) = s.split_once('=').ok_or_else(|| {
        format!(
            "expected NAME=SOURCE with SOURCE one of {}",
            source::cli_forms()
        )
    })?;
    if name.is_empty() {
        return Err("the variable name before '=' is empty".into());
    }
    Ok((name.to_string(), parse_source(source)?))
}

/// `kind:...` into the kind's properties, as the table of source kinds declares them. A
/// wrapping kind's property is another source's form, parsed in turn (`vpclink-for:lb:NAME`).
fn parse_source(s: &str) -> Result<Value, String> {
    let unknown = || format!("unknown source {s:?}: use {}", source::cli_forms());
    let (prefix, rest) = s.split_once(':').ok_or_else(unknown)?;
    let kind = source::kind_of_cli_prefix(prefix).ok_or_else(unknown)?;
    let props = kind
        .cli_properties(rest)
        .ok_or_else(|| format!("source {s:?} must have the form {}", kind.cli_form))?;
    let mut object = serde_json::Map::new();
    for (key, value) in props {
        let wrapped = kind
            .required
            .iter()
            .any(|f| f.key == key && f.ty == source::FieldType::Source);
        let value = match wrapped {
            true => parse_source(&value)
                .map_err(|e| format!("in source {s:?}, {}: {e}", kind.cli_form))?,
            false => Value::String(value),
        };
        object.insert(key.to_string(), value);
    }
    Ok(Value::Object(object))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sources() {
        assert_eq!(
            parse_var("helloworldElb=stack:EcsHelloworldProd/EcsElbDnsName").unwrap(),
            (
                "helloworldElb".to_string(),
                json!({"StackName": "EcsHelloworldProd", "OutputKey": "EcsElbDnsName"})
            )
        );
        assert_eq!(
            parse_source("stack:arn:aws:cloudformation:us-east-1:1:stack/S/uuid/Out").unwrap(),
            json!({"StackName": "arn:aws:cloudformation:us-east-1:1:stack/S/uuid", "OutputKey": "Out"})
        );
        assert_eq!(
            parse_source("ecs:prod/orders").unwrap(),
            json!({"Cluster": "prod", "Service": "orders"})
        );
        assert_eq!(
            parse_source("lb:my-alb").unwrap(),
            json!({"LoadBalancer": "my-alb"})
        );
        assert_eq!(parse_source("value:a=b").unwrap(), json!({"Value": "a=b"}));
        assert_eq!(parse_var("v=value:x=y").unwrap().1, json!({"Value": "x=y"}));
        assert_eq!(
            parse_var("vpcLinkId=vpclink-for:lb:arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/net/n/1")
                .unwrap()
                .1,
            json!({"VpcLinkFor": {"LoadBalancer": "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/net/n/1"}})
        );
        assert_eq!(
            parse_source("vpclink-for:stack:S/Nlb,Region=eu-west-1").unwrap(),
            json!({"VpcLinkFor": {"StackName": "S", "OutputKey": "Nlb", "Region": "eu-west-1"}})
        );
    }

    #[test]
    fn every_kind_has_a_cli_form_the_properties_accept() {
        let about = crate::bind::long_about();
        for kind in stagewire::domain::SOURCE_KINDS {
            assert!(
                about.contains(kind.cli_form) && about.contains(kind.help),
                "{kind:?}"
            );
            let arg = match kind.required.len() {
                _ if kind.wraps() => format!("v={}:lb:x", kind.cli_prefix),
                1 => format!("v={}:x", kind.cli_prefix),
                _ => format!("v={}:x/y", kind.cli_prefix),
            };
            let (_, source) = parse_var(&arg).unwrap();
            let props = json!({"RestApiId": "a", "StageName": "p", "Variables": {"v": source}});
            stagewire::props::parse(&props).unwrap_or_else(|e| panic!("{arg}: {e}"));
        }
    }

    #[test]
    fn bad_sources_name_the_accepted_forms() {
        for bad in ["s3:bucket", "nocolon", "=value:x", "v"] {
            let e = parse_var(bad).unwrap_err();
            assert!(
                e.contains("stack:STACK/OUTPUTKEY") || e.contains("name before"),
                "{bad}: {e}"
            );
        }
        assert!(parse_source("stack:only")
            .unwrap_err()
            .contains("stack:STACK/OUTPUTKEY"));
        assert!(parse_source("ecs:/svc")
            .unwrap_err()
            .contains("ecs:CLUSTER/SERVICE"));
        assert!(parse_source("lb:").is_err());
        // A wrapping source needs another source inside, which must name a load balancer.
        assert!(parse_source("vpclink-for:")
            .unwrap_err()
            .contains("vpclink-for:SOURCE"));
        let e = parse_source("vpclink-for:nlb-1").unwrap_err();
        assert!(
            e.contains("vpclink-for:SOURCE") && e.contains("lb:NAME_OR_ARN"),
            "{e}"
        );
        let (_, literal) = parse_var("v=vpclink-for:value:x").unwrap();
        let props = json!({"RestApiId": "a", "StageName": "p", "Variables": {"v": literal}});
        let e = stagewire::props::parse(&props).unwrap_err().to_string();
        assert!(
            e.contains("Variables.v.VpcLinkFor") && e.contains("LoadBalancer"),
            "{e}"
        );
        assert!(parse_source("value:").is_err());
    }
}
